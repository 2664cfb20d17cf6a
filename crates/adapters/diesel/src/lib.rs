//! colloquy's storage through Diesel, on SQLite or PostgreSQL:
//! [`SqliteRepository`] and [`PostgresRepository`] each implement the
//! [`ChatRepository`](colloquy_ports::ChatRepository),
//! [`AssistantStore`](colloquy_ports::AssistantStore),
//! [`ApiKeyStore`](colloquy_ports::ApiKeyStore) and
//! [`UsageLedger`](colloquy_ports::UsageLedger) ports in one database.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use colloquy_diesel::{PostgresRepository, SqliteRepository};
//! use colloquy_ports::ChatRepository;
//!
//! // Each creates what is missing and applies pending migrations.
//! let local = SqliteRepository::connect("sqlite://data/colloquy.db", 8)?;
//! let shared = PostgresRepository::connect("postgres://colloquy@db.internal/colloquy", 10).await?;
//! let stopped = local.interrupt_streaming().await?;
//! # let _ = (stopped, shared);
//! # Ok(())
//! # }
//! ```
//!
//! Both backends share one schema in Diesel's view (`schema.rs`), one set of
//! rows and their conversions (`rows/`), and the same SQL semantics; each
//! has its own connections, migrations and error translation (`sqlite/`,
//! `postgres/`). The integration tests run every contract test against both.
//!
//! **Invariant:** ids are stored as hyphenated lower-case UUID v7 text, in
//! byte order (PostgreSQL's columns are `COLLATE "C"`), so ordering by `id`
//! is ordering by creation, and cursors are comparisons. Times are
//! microseconds since the Unix epoch in 64-bit integers, on both backends.
//!
//! **Invariant:** every query that reads or writes a session or its messages
//! is scoped by the owner in the query itself: a `WHERE sessions.owner = ?`
//! on the session, or for messages a condition on the owning session in the
//! same statement (`session_id IN (SELECT id FROM sessions WHERE id = ? AND
//! owner = ?)`) or an owner-scoped existence check in the same transaction.
//! Rows are never read first and filtered in Rust, so another principal's
//! session or message is [`RepoError::NotFound`](colloquy_ports::RepoError::NotFound),
//! exactly like one that does not exist. Assistants are scoped the same
//! way, by `assistants.owner`.
//!
//! **Invariant:** a session's messages form a tree (`tree.rs`): each row
//! keeps its parent and its depth on its branch, written once in the
//! transaction that stores it, with a parent of the same session stored
//! before it; a session's head is the newest message of its active branch,
//! and its `message_count` that branch's length (the head's depth + 1),
//! set in the same transaction. Branches are read by walking up from their
//! leaf through the primary key, so the newest `n` messages of a branch
//! cost `n` lookups however long the session is.
//!
//! **Invariant:** the full-text index follows every write in the writing
//! statement itself (SQLite: triggers on `messages`, the cascade of a
//! session's delete included; PostgreSQL: a generated column), so a search
//! never finds a deleted message or an old text, and finds a streaming
//! reply by the text flushed so far (`search.rs` and each backend's).

mod chains;
mod error;
mod paging;
mod postgres;
mod rows;
mod schema;
mod search;
mod sqlite;
mod statement;
#[cfg(any(test, feature = "testing"))]
pub mod testing;
mod tree;
mod turn_writes;

pub use postgres::{is_postgres_url, migrate_postgres, printable_database_url, PostgresRepository};
pub use sqlite::{ConnectionSettings, SqliteRepository};

/// Opens (creating if missing) the SQLite database at `location` and applies
/// the pending migrations, for `colloquy migrate`. Returns the names of the
/// migrations it applied, oldest first: empty when the schema was current.
///
/// `location` takes the forms [`SqliteRepository::connect`] accepts. This
/// blocks; it opens a single connection and closes it before returning.
/// [`migrate_postgres`] does the same for a PostgreSQL URL.
///
/// # Errors
/// When `location` cannot be parsed, the file cannot be created or opened,
/// or a migration fails (nothing of that migration is kept then).
pub fn migrate(location: &str) -> anyhow::Result<Vec<String>> {
    sqlite::migrate(location)
}
