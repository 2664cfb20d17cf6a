//! The store on SQLite (bundled): [`SqliteRepository`].
//!
//! Diesel is synchronous; every repository call runs on Tokio's blocking
//! thread pool with a connection from an r2d2 pool, so callers only await.
//! Each connection runs in WAL mode with `synchronous = NORMAL`, a 5 s busy
//! timeout and foreign keys on; writes take the write lock up front
//! (`BEGIN IMMEDIATE`), so concurrent writers queue instead of failing.

mod assistants;
mod chains;
mod errors;
mod keys;
mod location;
mod migrations;
mod pool;
mod queries;
mod repository;
pub(crate) mod search;
mod tree;
mod usage;
mod writer;

pub(crate) use errors::is_contention;
pub use pool::ConnectionSettings;
pub use repository::SqliteRepository;

/// See [`crate::migrate`].
pub(crate) fn migrate(location: &str) -> anyhow::Result<Vec<String>> {
    migrations::migrate_location(&location::Location::parse(location)?)
}
