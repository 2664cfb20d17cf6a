//! The store on PostgreSQL: [`PostgresRepository`].
//!
//! Queries are Diesel's DSL, run by `diesel-async` on `tokio-postgres`, a
//! pure-Rust driver: nothing to install, no libpq, and no blocking thread
//! per call. Connections come from a deadpool pool that checks each one with
//! a `SELECT 1` when it is handed out, so a connection the server closed
//! while it sat idle (a restart, a failover, `pg_terminate_backend`, a proxy's
//! idle timeout) is replaced before any query meets it. A connection lost in
//! the middle of a call is noticed there and taken out of the pool for good;
//! calls whose repetition cannot change their outcome (reads, and writes
//! that set values) are then made once more on a fresh connection, and so
//! are other writes when the error shows they took no effect (the server
//! answered that the statement failed, or the transaction never reached
//! COMMIT); the rest report
//! [`RepoError::Unavailable`](colloquy_ports::RepoError::Unavailable).
//!
//! Connections are made without TLS: a URL whose `sslmode` asks for it
//! (`require`, `verify-ca`, `verify-full`) is refused with what to do
//! instead, rather than connected without it or failed at the handshake.
//!
//! Every connection runs with a 5 s `lock_timeout` (as SQLite's
//! `busy_timeout`: a write waits that long for another writer's row lock)
//! and a 15 s `statement_timeout`; a call that has not finished after 20 s
//! is abandoned as unavailable, so a server that stopped answering never
//! hangs a request.
//!
//! Transactions run at PostgreSQL's default READ COMMITTED: every write here
//! is a single conditional statement, or an owner-scoped statement that
//! locks the row it is about (a session, an assistant) before the rest, so
//! they need nothing stronger.
//! Reads that check the owner and then read a page run in one REPEATABLE
//! READ, READ ONLY transaction, so both see the same snapshot.

mod assistants;
mod chains;
mod connection;
mod errors;
mod keys;
mod migrations;
mod queries;
mod repository;
pub(crate) mod search;
mod tree;
mod usage;

pub(crate) use errors::is_transient;
pub use repository::PostgresRepository;

/// Whether `url` names a PostgreSQL database (`postgres://…` or
/// `postgresql://…`) rather than a SQLite file.
#[must_use]
pub fn is_postgres_url(url: &str) -> bool {
    url.starts_with("postgres://") || url.starts_with("postgresql://")
}

/// `url` as a log line may show it: a PostgreSQL URL without its password
/// or options (`postgres://user@host:5432/database`), anything else as given.
#[must_use]
pub fn printable_database_url(url: &str) -> String {
    if !is_postgres_url(url) {
        return url.to_owned();
    }
    connection::Target::describe_url(url)
        .unwrap_or_else(|| "an unreadable PostgreSQL URL".to_owned())
}

/// Applies the migrations the PostgreSQL database at `url` lacks, for
/// `colloquy migrate`, and returns their names, oldest first: empty when the
/// schema was current. Opens one connection and closes it before returning.
///
/// Several replicas starting at once serialise on an advisory lock, so
/// exactly one of them migrates and the others find nothing to do.
///
/// # Errors
/// When `url` is not a PostgreSQL URL, the server cannot be reached or
/// refuses the connection, or a migration fails (nothing of it is kept then).
pub async fn migrate_postgres(url: &str) -> anyhow::Result<Vec<String>> {
    let target = connection::Target::parse(url)?;
    migrations::migrate(&target).await
}
