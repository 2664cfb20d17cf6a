//! The schema migrations, embedded in the binary.

use diesel::sqlite::SqliteConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness as _};

use super::location::Location;
use super::pool;
use crate::error::MigrationError;

/// `migrations/sqlite` at the workspace root, three levels above this
/// crate's manifest (`crates/adapters/diesel`).
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../../migrations/sqlite");

/// Applies the migrations `connection`'s database lacks and returns their
/// names (`2026-11-23-000000_init`), oldest first; empty when none was pending.
///
/// Everything runs in one `BEGIN IMMEDIATE` transaction: two processes
/// starting on a fresh file at once serialise here, and the second finds
/// nothing left to do instead of failing on `CREATE TABLE`. Each migration
/// nests inside as a savepoint; a failure rolls back all this call applied.
/// A future migration that must run outside any transaction (SQLite's
/// table-rebuild procedure switches `foreign_keys`, which a transaction
/// ignores) would need this revisited.
pub(crate) fn run_pending(
    connection: &mut SqliteConnection,
) -> Result<Vec<String>, MigrationError> {
    connection.immediate_transaction(|connection| {
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
    })
}

/// Opens the database at `location` (creating it if missing), applies the
/// pending migrations and returns the names of those it applied.
pub(crate) fn migrate_location(location: &Location) -> anyhow::Result<Vec<String>> {
    location.prepare()?;
    let mut connection = pool::establish(location)?;
    run_pending(&mut connection)
        .map_err(anyhow::Error::from)
        .map_err(|error| error.context(format!("cannot migrate the SQLite database {location}")))
}
