//! A fresh PostgreSQL database per test, for this crate's test suite and
//! the server's (feature `testing`).
//!
//! Each [`TestDatabase`] is `CREATE DATABASE t_<random>` on the server that
//! `COLLOQUY_TEST_POSTGRES_URL` names (by default the machine's own, with
//! trust authentication), and is dropped `WITH (FORCE)` when the value drops,
//! also when the test fails: runs never see each other, and nothing is left
//! behind. A server that cannot be reached fails the test with a message
//! saying so and how to start it; it never passes silently.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use tokio_postgres::{Client, NoTls};

/// The driver, so that tests can run raw SQL without a dependency of their own.
pub use tokio_postgres;

/// The variable naming the server and the administrator tests connect as.
pub const ADMIN_URL_VARIABLE: &str = "COLLOQUY_TEST_POSTGRES_URL";

/// A user who may create and drop databases, on the machine's own server.
const DEFAULT_ADMIN_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

/// How the machine's PostgreSQL is started when it is stopped.
const START_HINT: &str = "pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start";

/// A database of its own for one test, dropped with this value.
pub struct TestDatabase {
    name: String,
    url: String,
    admin_url: String,
}

impl fmt::Debug for TestDatabase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TestDatabase")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl TestDatabase {
    /// Creates an empty database with a name no other run uses.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses to create the database,
    /// with what is missing and how to start the machine's server.
    pub async fn create() -> Self {
        let admin_url = admin_url();
        let name = unique_name();
        let shown = crate::printable_database_url(&admin_url);
        let admin = connect(&admin_url).await.unwrap_or_else(|error| {
            panic!(
                "PostgreSQL is not reachable at {shown} ({error}). The PostgreSQL tests need \
                 a server that accepts this user without a password and lets it create databases; \
                 set {ADMIN_URL_VARIABLE} to the URL of another. To start this machine's server: {START_HINT}"
            )
        });
        admin
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap_or_else(|error| {
                panic!("cannot create the test database {name} at {shown}: {error}")
            });
        let url = with_database(&admin_url, &name);
        Self {
            name,
            url,
            admin_url,
        }
    }

    /// The database's URL, as `DATABASE_URL` would name it.
    #[must_use]
    pub fn url(&self) -> &str {
        &self.url
    }

    #[must_use]
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A plain connection to this database as the administrator, outside
    /// any repository: to look at what is stored, or to damage it.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn client(&self) -> Client {
        connect(&self.url)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to {}: {error}", self.name))
    }

    /// Terminates every connection to this database but the one asking, as
    /// a server restart or a failover would, and returns how many there were.
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn terminate_connections(&self) -> u64 {
        let admin = connect(&self.admin_url)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the PostgreSQL server: {error}"));
        let row = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = $1 AND pid <> pg_backend_pid()",
                &[&self.name],
            )
            .await
            .unwrap_or_else(|error| panic!("cannot terminate the connections: {error}"));
        u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)
    }
}

impl TestDatabase {
    /// Drops the database now, as an operator's mistake or a lost volume
    /// would, terminating its connections; the value's own drop then finds
    /// nothing left to do.
    ///
    /// # Panics
    /// When the server cannot be reached or refuses.
    pub async fn destroy(&self) {
        let admin = connect(&self.admin_url)
            .await
            .unwrap_or_else(|error| panic!("cannot connect to the PostgreSQL server: {error}"));
        admin
            .batch_execute(&drop_statement(&self.name))
            .await
            .unwrap_or_else(|error| panic!("cannot drop {}: {error}", self.name));
    }
}

fn drop_statement(name: &str) -> String {
    format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")
}

impl Drop for TestDatabase {
    /// Drops the database from a thread of its own with a runtime of its
    /// own: a `Drop` cannot await, and may run inside a test's runtime.
    fn drop(&mut self) {
        let (admin_url, name) = (self.admin_url.clone(), self.name.clone());
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|error| error.to_string())?;
            runtime.block_on(async {
                let admin = connect(&admin_url)
                    .await
                    .map_err(|error| error.to_string())?;
                admin
                    .batch_execute(&drop_statement(&name))
                    .await
                    .map_err(|error| error.to_string())
            })
        })
        .join();
        match dropped {
            Ok(Ok(())) => {}
            Ok(Err(error)) => eprintln!("could not drop the test database {}: {error}", self.name),
            Err(_) => eprintln!("could not drop the test database {}", self.name),
        }
    }
}

/// The URL `COLLOQUY_TEST_POSTGRES_URL` names, or the machine's own server.
fn admin_url() -> String {
    std::env::var(ADMIN_URL_VARIABLE).unwrap_or_else(|_| DEFAULT_ADMIN_URL.to_owned())
}

/// `t_<process>_<nanoseconds>_<count>`: unique across the tests of a run
/// and across runs, on one machine or several sharing a server.
fn unique_name() -> String {
    static MADE: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let count = MADE.fetch_add(1, Ordering::Relaxed);
    format!("t_{}_{nanos:x}_{count}", std::process::id())
}

/// Connects without TLS and drives the connection on the current runtime.
/// The error says why, with its causes (the driver's own message is only
/// "error connecting to server").
async fn connect(url: &str) -> Result<Client, String> {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .map_err(|error| format!("{:#}", anyhow::Error::new(error)))?;
    tokio::spawn(async move {
        // The connection ends when the client drops, or when a test
        // terminates it on purpose: neither is worth a message.
        let _ = connection.await;
    });
    Ok(client)
}

/// `url` with its database replaced by `name`, keeping its query.
fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_start = base.find("://").map_or(0, |index| index + 3);
    let path_start = base[authority_start..]
        .find('/')
        .map_or(base.len(), |index| authority_start + index);
    let mut replaced = format!("{}/{name}", &base[..path_start]);
    if let Some(query) = query {
        replaced.push('?');
        replaced.push_str(query);
    }
    replaced
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn exists(name: &str) -> bool {
        let admin = connect(&admin_url()).await.unwrap();
        let row = admin
            .query_one(
                "SELECT count(*) FROM pg_database WHERE datname = $1",
                &[&name],
            )
            .await
            .unwrap();
        row.get::<_, i64>(0) == 1
    }

    #[tokio::test]
    async fn a_test_that_fails_leaves_no_database_behind() {
        let (named, name) = tokio::sync::oneshot::channel();
        let failed = tokio::spawn(async move {
            let database = TestDatabase::create().await;
            named.send(database.name().to_owned()).unwrap();
            assert!(exists(database.name()).await, "made");
            panic!("this test fails on purpose, to drop its database while unwinding");
        })
        .await;
        assert!(failed.is_err());
        assert!(!exists(&name.await.unwrap()).await, "dropped");
    }

    #[test]
    fn the_database_of_a_url_is_replaced_and_the_rest_kept() {
        assert_eq!(
            with_database("postgres://postgres@127.0.0.1:5432/test", "t_1"),
            "postgres://postgres@127.0.0.1:5432/t_1"
        );
        assert_eq!(
            with_database("postgresql://u:p@h/db?sslmode=disable", "t_2"),
            "postgresql://u:p@h/t_2?sslmode=disable"
        );
        assert_eq!(with_database("postgres://u@h", "t_3"), "postgres://u@h/t_3");
    }
}
