//! Which SQLite errors pass by themselves.

use diesel::result::Error as DieselError;

/// Whether SQLite refused because another connection held a lock for longer
/// than `busy_timeout`: a condition that passes, unlike a broken query.
///
/// Diesel keeps only the message of errors outside the constraint family, so
/// the message is all there is to match on. SQLite's texts are stable:
/// SQLITE_BUSY is "database is locked", SQLITE_LOCKED is "database table is
/// locked" or "database schema is locked: `name`".
pub(crate) fn is_contention(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(_, info) => {
            let message = info.message();
            message.starts_with("database is locked")
                || message.starts_with("database table is locked")
                || message.starts_with("database schema is locked")
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use colloquy_ports::RepoError;
    use diesel::result::DatabaseErrorKind;

    use crate::error::{Backend, StoreError};

    use super::*;

    fn database_error(message: &str) -> StoreError {
        StoreError::from(DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(message.to_owned()),
        ))
    }

    #[test]
    fn lock_contention_is_unavailable_and_other_failures_are_unknown() {
        for message in [
            "database is locked",
            "database table is locked",
            "database schema is locked: main",
        ] {
            let error = database_error(message).into_repo_error(Backend::Sqlite, "append_messages");
            assert!(
                matches!(error, RepoError::Unavailable(_)),
                "{message}: {error:?}"
            );
        }
        let error = database_error("no such table: messages")
            .into_repo_error(Backend::Sqlite, "get_session");
        assert!(matches!(error, RepoError::Unknown(_)), "{error:?}");
        assert!(
            format!("{error:#}").contains("SQLite repository: get_session"),
            "the message names the store and the operation: {error:#}"
        );
    }
}
