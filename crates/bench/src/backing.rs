//! What the shared modes run on: a PostgreSQL database of the run's own
//! (created on the server `--postgres-url` names, dropped after) and a
//! Redis server, with the counters read before and after a load — writes
//! per turn from PostgreSQL's statistics, commands per delta from Redis's.

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, TcpListener};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context as _};
use serde::Serialize;
use tokio_postgres::NoTls;

/// A fresh PostgreSQL database, dropped (`WITH (FORCE)`) by [`drop_now`]
/// or, failing that, when the value drops.
///
/// [`drop_now`]: BenchDatabase::drop_now
#[derive(Debug)]
pub struct BenchDatabase {
    admin_url: String,
    name: String,
    pub url: String,
    dropped: bool,
}

impl BenchDatabase {
    /// Creates `colloquy_bench_<pid>_<time>` on the server of `admin_url`
    /// (a user who may create databases) and applies colloquy's migrations,
    /// so that the servers started on it find nothing to do.
    pub async fn create(admin_url: &str) -> anyhow::Result<Self> {
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        let name = format!("colloquy_bench_{}_{nanos:x}", std::process::id());
        let admin = connect(admin_url).await?;
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .with_context(|| format!("creating the database {name}"))?;
        let database = Self {
            admin_url: admin_url.to_owned(),
            url: with_database(admin_url, &name),
            name,
            dropped: false,
        };
        colloquy_diesel::migrate_postgres(&database.url)
            .await
            .context("migrating the benchmark's database")?;
        Ok(database)
    }

    /// Transactions committed and rows written in this database so far.
    ///
    /// PostgreSQL publishes a backend's counts when it ends (or within about
    /// ten seconds of going idle), so this first waits until no connection
    /// to the database is left: call it with every server stopped.
    pub async fn writes(&self) -> anyhow::Result<PgWrites> {
        let admin = connect(&self.admin_url).await?;
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let row = admin
                .query_one(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = $1",
                    &[&self.name],
                )
                .await?;
            if row.get::<_, i64>(0) == 0 {
                break;
            }
            if Instant::now() > deadline {
                bail!("connections to {} stayed open for 10 s", self.name);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // Read from the administrator's database, so that this read is no
        // transaction of the one measured.
        let commits = admin
            .query_one(
                "SELECT xact_commit FROM pg_stat_database WHERE datname = $1",
                &[&self.name],
            )
            .await?
            .get::<_, i64>(0);
        // Table counts are per database: read them there. The migrations'
        // own bookkeeping is not colloquy's work.
        let here = connect(&self.url).await?;
        let rows = here
            .query_one(
                "SELECT COALESCE(sum(n_tup_ins), 0)::int8, COALESCE(sum(n_tup_upd), 0)::int8, \
                 COALESCE(sum(n_tup_del), 0)::int8 FROM pg_stat_user_tables \
                 WHERE relname <> '__diesel_schema_migrations'",
                &[],
            )
            .await?;
        Ok(PgWrites {
            commits,
            inserted: rows.get(0),
            updated: rows.get(1),
            deleted: rows.get(2),
        })
    }

    /// Drops the database, ending whatever is still connected to it.
    pub async fn drop_now(mut self) -> anyhow::Result<()> {
        self.dropped = true;
        connect(&self.admin_url)
            .await?
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .with_context(|| format!("dropping {}", self.name))
    }
}

impl Drop for BenchDatabase {
    /// A run that failed half-way still leaves nothing behind: the drop runs
    /// on a thread with a runtime of its own, as a `Drop` cannot await.
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async {
                connect(&admin_url)
                    .await?
                    .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .await?;
                anyhow::Ok(())
            })
        })
        .join();
    }
}

/// PostgreSQL's counters of one database.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct PgWrites {
    /// `pg_stat_database.xact_commit`: every committed transaction, reads
    /// included (a statement outside a transaction is one).
    pub commits: i64,
    /// `pg_stat_user_tables`, summed over colloquy's tables.
    pub inserted: i64,
    pub updated: i64,
    pub deleted: i64,
}

impl PgWrites {
    #[must_use]
    pub const fn since(self, before: Self) -> Self {
        Self {
            commits: self.commits - before.commits,
            inserted: self.inserted - before.inserted,
            updated: self.updated - before.updated,
            deleted: self.deleted - before.deleted,
        }
    }

    pub const fn rows(self) -> i64 {
        self.inserted + self.updated + self.deleted
    }
}

/// Whether PostgreSQL answers at `url`.
///
/// # Errors
/// It cannot be reached, or refuses the connection.
pub async fn probe_postgres(url: &str) -> anyhow::Result<()> {
    connect(url).await?.batch_execute("SELECT 1").await?;
    Ok(())
}

async fn connect(url: &str) -> anyhow::Result<tokio_postgres::Client> {
    let shown = colloquy_diesel::printable_database_url(url);
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .with_context(|| format!("connecting to PostgreSQL at {shown}"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database replaced by `name`, keeping its query.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = url
        .split_once('?')
        .map_or((url, None), |(b, q)| (b, Some(q)));
    let authority = base.find("://").map_or(0, |index| index + 3);
    let path = base[authority..]
        .find('/')
        .map_or(base.len(), |index| authority + index);
    let mut replaced = format!("{}/{name}", &base[..path]);
    if let Some(query) = query {
        replaced.push('?');
        replaced.push_str(query);
    }
    replaced
}

/// The Redis the shared modes use: by default a `redis-server` of the
/// benchmark's own on a free port, keeping nothing on disk, so that its
/// command counts are colloquy's alone; or one the caller names, whose
/// counts then include every other client's.
#[derive(Debug)]
pub struct BenchRedis {
    pub url: String,
    /// The benchmark's own server, killed when this drops.
    child: Option<Child>,
    pub private: bool,
}

impl BenchRedis {
    pub async fn start(external: Option<&str>, server_bin: &str) -> anyhow::Result<Self> {
        if let Some(url) = external {
            return Ok(Self {
                url: url.to_owned(),
                child: None,
                private: false,
            });
        }
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let child = Command::new(server_bin)
            .args(["--bind", "127.0.0.1", "--port", &port.to_string()])
            .args(["--save", "", "--appendonly", "no", "--daemonize", "no"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| {
                format!("starting {server_bin} (install redis-server, or pass --redis-url)")
            })?;
        let redis = Self {
            url: format!("redis://127.0.0.1:{port}"),
            child: Some(child),
            private: true,
        };
        let deadline = Instant::now() + Duration::from_secs(10);
        while redis.command_calls().await.is_err() {
            if Instant::now() > deadline {
                bail!("{server_bin} did not answer on port {port} within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(redis)
    }

    /// Calls of every command so far (`INFO commandstats`), those run inside
    /// scripts included, this `INFO` excluded.
    pub async fn command_calls(&self) -> anyhow::Result<BTreeMap<String, u64>> {
        let client = redis::Client::open(self.url.as_str())?;
        let mut connection = client.get_multiplexed_async_connection().await?;
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query_async(&mut connection)
            .await?;
        Ok(parse_commandstats(&info))
    }

    /// The benchmark's own server's CPU time so far, in seconds.
    pub fn cpu_secs(&self) -> Option<f64> {
        self.child
            .as_ref()
            .and_then(|child| crate::server::cpu_secs(child.id()))
    }
}

impl Drop for BenchRedis {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// `cmdstat_evalsha:calls=12,usec=…` lines into calls per command.
fn parse_commandstats(info: &str) -> BTreeMap<String, u64> {
    info.lines()
        .filter_map(|line| {
            let (name, stats) = line.strip_prefix("cmdstat_")?.split_once(':')?;
            let calls = stats
                .split(',')
                .find_map(|field| field.strip_prefix("calls="))?
                .parse()
                .ok()?;
            (name != "info").then(|| (name.to_owned(), calls))
        })
        .collect()
}

/// `after − before`, command by command, dropping those not called.
pub fn calls_since(
    after: &BTreeMap<String, u64>,
    before: &BTreeMap<String, u64>,
) -> BTreeMap<String, u64> {
    after
        .iter()
        .map(|(name, &calls)| {
            (
                name.clone(),
                calls - before.get(name).copied().unwrap_or(0).min(calls),
            )
        })
        .filter(|(_, calls)| *calls > 0)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commandstats_are_read_without_the_info_that_asked() {
        let info = "# Commandstats\r\ncmdstat_evalsha:calls=12,usec=30,usec_per_call=2.50,rejected_calls=0,failed_calls=0\r\n\
                    cmdstat_info:calls=3,usec=9\r\ncmdstat_xread:calls=4,usec=1\r\n";
        let calls = parse_commandstats(info);
        assert_eq!(calls.get("evalsha"), Some(&12));
        assert_eq!(calls.get("xread"), Some(&4));
        assert_eq!(calls.get("info"), None);
        let before = BTreeMap::from([("evalsha".to_owned(), 10), ("xread".to_owned(), 4)]);
        assert_eq!(
            calls_since(&calls, &before),
            BTreeMap::from([("evalsha".to_owned(), 2)])
        );
    }

    #[test]
    fn the_database_of_a_url_is_replaced() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "b"),
            "postgres://postgres@127.0.0.1:5432/b"
        );
        assert_eq!(
            with_database("postgres://u:p@h/db?sslmode=disable", "b"),
            "postgres://u:p@h/b?sslmode=disable"
        );
    }
}
