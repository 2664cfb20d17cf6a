//! Opening connections: the pragmas every connection gets, and the pool.

use std::time::Duration;

use anyhow::{bail, Context as _};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::r2d2::{ConnectionManager, CustomizeConnection, Pool};
use diesel::sql_types::{BigInt, Text};

use super::location::Location;
use crate::statement::cached_query;

pub(crate) type SqlitePool = Pool<ConnectionManager<SqliteConnection>>;

/// Applied to every connection when it opens.
///
/// `busy_timeout` comes first so that the switch to WAL, which needs a lock
/// the first time a file is opened, waits for a concurrent opener instead of
/// failing. WAL lets readers run alongside the one writer; `synchronous =
/// NORMAL` is durable across application crashes under WAL (only a power
/// loss can undo the last commits) and makes a commit cost microseconds.
/// SQLite ships with foreign keys off, and ON DELETE CASCADE needs them.
/// The page cache is per connection: 8 MiB keeps the hot indexes of a
/// sizeable history in memory without multiplying into much across the pool.
/// The WAL is copied back into the database (a checkpoint, with an fsync of
/// each file) once it holds 8,000 pages (32 MiB) rather than SQLite's 1,000:
/// a chat's writes touch the same few pages again and again, so a longer WAL
/// copies each of them once for many commits, and the fsyncs come an eighth
/// as often (at 1,000 pages, checkpoints were 10 % of the server's CPU at
/// full speed, three quarters of it in fsync).
const CONNECTION_PRAGMAS: &str = "\
    PRAGMA busy_timeout = 5000;\
    PRAGMA wal_autocheckpoint = 8000;\
    PRAGMA journal_mode = WAL;\
    PRAGMA synchronous = NORMAL;\
    PRAGMA foreign_keys = ON;\
    PRAGMA cache_size = -8192;\
    PRAGMA temp_store = MEMORY;";

/// How long a call waits for a free connection before the store counts as
/// unavailable. Longer than `busy_timeout`, so that a caller queued behind
/// one slow writer is not turned away before that writer's own wait ends.
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// Opens one connection outside any pool, with the same pragmas.
pub(crate) fn establish(location: &Location) -> anyhow::Result<SqliteConnection> {
    let uri = location.to_sqlite_uri()?;
    let mut connection = SqliteConnection::establish(&uri)
        .with_context(|| format!("cannot open the SQLite database {location}"))?;
    apply_pragmas(&mut connection)
        .with_context(|| format!("cannot configure the SQLite database {location}"))?;
    Ok(connection)
}

fn apply_pragmas(connection: &mut SqliteConnection) -> QueryResult<()> {
    connection.batch_execute(CONNECTION_PRAGMAS)
}

/// Runs [`CONNECTION_PRAGMAS`] on each connection the pool opens.
#[derive(Debug, Clone, Copy)]
struct Pragmas;

impl CustomizeConnection<SqliteConnection, diesel::r2d2::Error> for Pragmas {
    fn on_acquire(&self, connection: &mut SqliteConnection) -> Result<(), diesel::r2d2::Error> {
        apply_pragmas(connection).map_err(diesel::r2d2::Error::QueryError)
    }
}

/// A pool of `size` connections, all opened now so that a bad path or a
/// locked file fails at start-up rather than at the first request.
///
/// An in-memory database exists only inside the connection that opened it,
/// so [`Location::Memory`] gets exactly one connection that is never
/// recycled; calls then take turns on it.
pub(crate) fn build(location: &Location, size: u32) -> anyhow::Result<SqlitePool> {
    if size == 0 {
        bail!("the SQLite pool size must be at least 1");
    }
    let manager = ConnectionManager::<SqliteConnection>::new(location.to_sqlite_uri()?);
    let builder = Pool::builder()
        .connection_customizer(Box::new(Pragmas))
        .connection_timeout(CHECKOUT_TIMEOUT)
        // A connection to a local file does not go stale the way a network
        // connection does: skip the `SELECT 1` r2d2 would run on each checkout.
        .test_on_check_out(false);
    let builder = match location {
        Location::File(_) => builder.max_size(size).min_idle(Some(size)),
        Location::Memory => builder
            .max_size(1)
            .min_idle(Some(1))
            .idle_timeout(None)
            .max_lifetime(None),
    };
    builder.build(manager).with_context(|| {
        format!("cannot open a pool of connections to the SQLite database {location}")
    })
}

/// The settings a pooled connection actually runs with, read back from SQLite.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSettings {
    /// `wal` for a database file (`memory` for an in-memory database).
    pub journal_mode: String,
    /// `PRAGMA synchronous`: 0 OFF, 1 NORMAL, 2 FULL, 3 EXTRA.
    pub synchronous: i64,
    /// How long a statement waits for another connection's lock.
    pub busy_timeout: Duration,
    /// Whether foreign keys (and so ON DELETE CASCADE) are enforced.
    pub foreign_keys: bool,
    /// `PRAGMA cache_size`: pages when positive, KiB when negative.
    pub cache_size: i64,
}

#[derive(QueryableByName)]
struct SettingsRow {
    #[diesel(sql_type = Text)]
    journal_mode: String,
    #[diesel(sql_type = BigInt)]
    synchronous: i64,
    #[diesel(sql_type = BigInt)]
    busy_timeout: i64,
    #[diesel(sql_type = BigInt)]
    foreign_keys: i64,
    #[diesel(sql_type = BigInt)]
    cache_size: i64,
}

/// Reads the pragmas of `connection` (the table-valued pragma functions let
/// one statement read them all).
pub(crate) fn read_settings(connection: &mut SqliteConnection) -> QueryResult<ConnectionSettings> {
    let row: SettingsRow = cached_query(
        "SELECT \
            (SELECT journal_mode FROM pragma_journal_mode) AS journal_mode, \
            (SELECT synchronous FROM pragma_synchronous) AS synchronous, \
            (SELECT timeout FROM pragma_busy_timeout) AS busy_timeout, \
            (SELECT foreign_keys FROM pragma_foreign_keys) AS foreign_keys, \
            (SELECT cache_size FROM pragma_cache_size) AS cache_size",
    )
    .get_result(connection)?;
    Ok(ConnectionSettings {
        journal_mode: row.journal_mode,
        synchronous: row.synchronous,
        busy_timeout: Duration::from_millis(u64::try_from(row.busy_timeout).unwrap_or(0)),
        foreign_keys: row.foreign_keys != 0,
        cache_size: row.cache_size,
    })
}
