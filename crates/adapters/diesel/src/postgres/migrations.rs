//! The PostgreSQL schema migrations, embedded in the binary.

use diesel::connection::Connection as _;
use diesel::sql_types::BigInt;
use diesel::RunQueryDsl as _;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness as _};

use super::connection::Target;
use crate::error::MigrationError;
use crate::statement::cached_query;

/// `migrations/postgres` at the workspace root, three levels above this
/// crate's manifest (`crates/adapters/diesel`).
pub(crate) const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../../migrations/postgres");

/// The advisory lock every colloquy process takes before it looks at the
/// schema: the first eight bytes of "colloquy" read as a big-endian integer,
/// so it is recognisable in `pg_locks` and unlikely to meet another
/// application's key.
const MIGRATION_LOCK: i64 = i64::from_be_bytes(*b"colloquy");

/// Opens a connection to `target`, applies the pending migrations and
/// returns their names, oldest first.
pub(crate) async fn migrate(target: &Target) -> anyhow::Result<Vec<String>> {
    let connection = target.establish().await?;
    run_pending(connection)
        .await
        .map_err(|error| error.context(format!("cannot migrate the PostgreSQL database {target}")))
}

/// Applies the migrations `connection`'s database lacks, and returns their
/// names (`2026-12-01-220000_init`), oldest first; empty when none was pending.
///
/// Everything runs in one transaction that first takes [`MIGRATION_LOCK`]:
/// replicas starting on a fresh database at once serialise there, and the
/// later ones find nothing left to do instead of failing on `CREATE TABLE`
/// (or on creating Diesel's own table of applied migrations, which is why
/// the lock comes before even looking). PostgreSQL's DDL is transactional,
/// so a failed migration leaves nothing of itself or of those before it in
/// this call.
///
/// diesel_migrations is synchronous: the connection is wrapped to look
/// synchronous and driven from the blocking thread pool, which works on
/// either flavour of Tokio runtime.
pub(crate) async fn run_pending(connection: AsyncPgConnection) -> anyhow::Result<Vec<String>> {
    let applied = tokio::task::spawn_blocking(move || {
        let mut connection = AsyncConnectionWrapper::<AsyncPgConnection>::from(connection);
        connection.transaction(|connection| {
            cached_query("SELECT pg_advisory_xact_lock($1)")
                .bind::<BigInt, _>(MIGRATION_LOCK)
                .execute(connection)?;
            apply(connection)
        })
    })
    .await?;
    Ok(applied?)
}

fn apply(
    connection: &mut AsyncConnectionWrapper<AsyncPgConnection>,
) -> Result<Vec<String>, MigrationError> {
    let pending = connection
        .pending_migrations(MIGRATIONS)
        .map_err(MigrationError::Migration)?;
    let mut applied = Vec::with_capacity(pending.len());
    for migration in pending {
        connection
            .run_migration(migration.as_ref())
            .map_err(MigrationError::Migration)?;
        applied.push(migration.name().to_string());
    }
    Ok(applied)
}
