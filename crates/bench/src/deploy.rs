//! colloquy as a run deploys it: one server on SQLite with the in-process
//! hub, or one or more replicas on a PostgreSQL database and a Redis key
//! prefix of the run's own; optionally on sessions seeded with history
//! before the servers start.

use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::Context as _;
use colloquy_diesel::{PostgresRepository, SqliteRepository};

use crate::backing::{BenchDatabase, BenchRedis, PgWrites};
use crate::client::Target;
use crate::scenarios::{scratch, Env};
use crate::seed::{self, SeededSession};
use crate::server::Server;
use crate::upstream::Upstream;

/// How colloquy is deployed.
#[derive(Debug, Clone, Copy)]
pub enum Backing<'a> {
    /// One server, SQLite and the in-process hub.
    InProcess,
    /// `replicas` servers on a fresh PostgreSQL database (created on the
    /// server `postgres_url` names) and a key prefix of their own in `redis`.
    Shared {
        postgres_url: &'a str,
        redis: &'a BenchRedis,
        replicas: usize,
    },
}

/// Sessions to seed before the servers start.
#[derive(Debug, Clone, Copy)]
pub struct Seed {
    pub sessions: usize,
    pub turns: usize,
}

/// Running servers and what they stand on; dropping it stops them and
/// drops the PostgreSQL database.
#[derive(Debug)]
pub struct Deployment {
    pub servers: Vec<Server>,
    pub seeded: Vec<SeededSession>,
    /// PostgreSQL's counters once the database was migrated and seeded.
    pg_before: Option<PgWrites>,
    // Dropped after the servers (fields drop in order): the servers' logs
    // and SQLite file live in these directories.
    database: Option<BenchDatabase>,
    _dirs: Vec<tempfile::TempDir>,
}

impl Deployment {
    pub async fn start(
        env: &Env,
        backing: Backing<'_>,
        upstream: &Upstream,
        seed: Option<Seed>,
    ) -> anyhow::Result<Self> {
        match backing {
            Backing::InProcess => {
                let (dir, database) = scratch()?;
                let seeded = match seed {
                    Some(seed) => {
                        let repo = SqliteRepository::connect(&database.to_string_lossy(), 2)?;
                        seed::conversations(&repo, seed.sessions, seed.turns).await?
                    }
                    None => Vec::new(),
                };
                let server = Server::start(
                    &env.server_bin,
                    &database.to_string_lossy(),
                    &upstream.base_url(),
                    dir.path(),
                    &[],
                )
                .await?;
                Ok(Self {
                    servers: vec![server],
                    seeded,
                    pg_before: None,
                    database: None,
                    _dirs: vec![dir],
                })
            }
            Backing::Shared {
                postgres_url,
                redis,
                replicas,
            } => {
                let database = BenchDatabase::create(postgres_url).await?;
                let seeded = match seed {
                    Some(seed) => {
                        let repo = PostgresRepository::connect(&database.url, 4)
                            .await
                            .context("connecting to the benchmark's database to seed it")?;
                        seed::conversations(&repo, seed.sessions, seed.turns).await?
                    }
                    None => Vec::new(),
                };
                let pg_before = database.writes().await?;
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |since| since.as_nanos());
                let prefix = format!("colloquy-bench-{}-{nanos:x}:", std::process::id());
                let extra = [
                    ("COLLOQUY_REDIS_URL", redis.url.clone()),
                    ("COLLOQUY_REDIS_KEY_PREFIX", prefix),
                ];
                let mut dirs = Vec::new();
                let mut servers = Vec::new();
                for _ in 0..replicas.max(1) {
                    let (dir, _) = scratch()?;
                    servers.push(
                        Server::start(
                            &env.server_bin,
                            &database.url,
                            &upstream.base_url(),
                            dir.path(),
                            &extra,
                        )
                        .await?,
                    );
                    dirs.push(dir);
                }
                Ok(Self {
                    servers,
                    seeded,
                    pg_before: Some(pg_before),
                    database: Some(database),
                    _dirs: dirs,
                })
            }
        }
    }

    /// The native API of every server, in order.
    pub fn targets(&self) -> Vec<Target> {
        self.servers
            .iter()
            .map(|server| Target::Colloquy {
                base_url: server.base_url.clone(),
            })
            .collect()
    }

    /// The seeded sessions' ids, for [`crate::load::LoadPlan::sessions`].
    pub fn session_ids(&self) -> Option<std::sync::Arc<[String]>> {
        (!self.seeded.is_empty()).then(|| self.seeded.iter().map(|s| s.id.clone()).collect())
    }

    /// Warnings and errors every server logged so far.
    pub fn logged_problems(&self) -> usize {
        self.servers.iter().map(Server::logged_problems).sum()
    }

    /// Stops the servers and, when on PostgreSQL, returns what they wrote
    /// there since they started (the database is dropped after).
    pub async fn stop(mut self) -> anyhow::Result<Option<PgWrites>> {
        let started = Instant::now();
        self.servers.clear();
        let Some(database) = self.database.take() else {
            return Ok(None);
        };
        let writes = database.writes().await?;
        database.drop_now().await?;
        let before = self.pg_before.unwrap_or_default();
        note_wait(started);
        Ok(Some(writes.since(before)))
    }
}

/// Stopping waits for PostgreSQL to publish the servers' counts; say so
/// when it took a while, so a long pause is not mistaken for a hang.
fn note_wait(started: Instant) {
    let waited = started.elapsed().as_secs_f64();
    if waited > 2.0 {
        eprintln!("  (waited {waited:.1} s for PostgreSQL's counts)");
    }
}
