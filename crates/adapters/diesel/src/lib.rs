//! colloquy's storage on SQLite, through Diesel: [`SqliteRepository`]
//! implements the [`ChatRepository`](colloquy_ports::ChatRepository) port,
//! and the [`ApiKeyStore`](colloquy_ports::ApiKeyStore) and
//! [`UsageLedger`](colloquy_ports::UsageLedger) ports in the same database.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use colloquy_diesel::SqliteRepository;
//! use colloquy_ports::ChatRepository;
//!
//! // Creates the file and applies pending migrations.
//! let repository = SqliteRepository::connect("sqlite://data/colloquy.db", 8)?;
//! let stopped = repository.interrupt_streaming().await?;
//! # let _ = stopped;
//! # Ok(())
//! # }
//! ```
//!
//! Diesel is synchronous; every repository call runs on Tokio's blocking
//! thread pool with a connection from an r2d2 pool, so callers only await.
//! Each connection runs in WAL mode with `synchronous = NORMAL`, a 5 s busy
//! timeout and foreign keys on; writes take the write lock up front
//! (`BEGIN IMMEDIATE`), so concurrent writers queue instead of failing.
//!
//! **Invariant:** ids are stored as hyphenated lower-case UUID v7 text, so
//! ordering by `id` is ordering by creation, and cursors are comparisons.
//!
//! **Invariant:** every query that reads or writes a session or its messages
//! is scoped by the owner in the query itself: a `WHERE sessions.owner = ?`
//! on the session, or for messages a condition on the owning session in the
//! same statement (`session_id IN (SELECT id FROM sessions WHERE id = ? AND
//! owner = ?)`) or an owner-scoped existence check in the same transaction.
//! Rows are never read first and filtered in Rust, so another principal's
//! session or message is [`RepoError::NotFound`](colloquy_ports::RepoError::NotFound),
//! exactly like one that does not exist.

mod error;
mod keys;
mod location;
mod migrations;
mod pool;
mod queries;
mod repository;
mod rows;
mod schema;
mod usage;

pub use pool::ConnectionSettings;
pub use repository::SqliteRepository;

/// Opens (creating if missing) the database at `location` and applies the
/// pending migrations, for `colloquy migrate`. Returns the names of the
/// migrations it applied, oldest first: empty when the schema was current.
///
/// `location` takes the forms [`SqliteRepository::connect`] accepts. This
/// blocks; it opens a single connection and closes it before returning.
///
/// # Errors
/// When `location` cannot be parsed, the file cannot be created or opened,
/// or a migration fails (nothing of that migration is kept then).
pub fn migrate(location: &str) -> anyhow::Result<Vec<String>> {
    migrations::migrate_location(&location::Location::parse(location)?)
}
