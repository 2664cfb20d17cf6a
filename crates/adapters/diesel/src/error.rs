//! The adapter's own errors and their translation into [`RepoError`].

use colloquy_ports::RepoError;
use diesel::r2d2::PoolError;
use diesel::result::Error as DieselError;

/// What can fail inside one repository call, before it is told to the core.
///
/// Kept separate from [`RepoError`] because Diesel's transaction helpers need
/// an error type they can build from [`DieselError`], which the orphan rule
/// does not allow for the port's enum.
#[derive(Debug)]
pub(crate) enum StoreError {
    Diesel(DieselError),
    /// No connection became free in time.
    Pool(PoolError),
    /// The row or session the call is about does not exist.
    NotFound,
    /// A stored row cannot be turned back into a domain value.
    Corrupt(String),
    /// The caller asked for something this store cannot represent.
    Invalid(String),
    /// Anything else, such as a failed migration.
    Other(anyhow::Error),
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => Self::NotFound,
            other => Self::Diesel(other),
        }
    }
}

impl StoreError {
    /// The port's view of this error; `operation` names the repository method
    /// in the message, so a logged 500 says what was being done.
    pub(crate) fn into_repo_error(self, operation: &'static str) -> RepoError {
        let context = || format!("SQLite repository: {operation}");
        match self {
            Self::NotFound => RepoError::NotFound,
            Self::Pool(error) => RepoError::Unavailable(
                anyhow::Error::new(error).context(format!("{}: no free connection", context())),
            ),
            Self::Diesel(error) if is_contention(&error) => {
                RepoError::Unavailable(anyhow::Error::new(error).context(context()))
            }
            Self::Diesel(error) => RepoError::Unknown(anyhow::Error::new(error).context(context())),
            Self::Corrupt(detail) => {
                RepoError::Unknown(anyhow::anyhow!("{}: corrupt row: {detail}", context()))
            }
            Self::Invalid(detail) => RepoError::Unknown(anyhow::anyhow!("{}: {detail}", context())),
            Self::Other(error) => RepoError::Unknown(error.context(context())),
        }
    }
}

/// Whether SQLite refused because another connection held a lock for longer
/// than `busy_timeout`: a condition that passes, unlike a broken query.
///
/// Diesel keeps only the message of errors outside the constraint family, so
/// the message is all there is to match on. SQLite's texts are stable:
/// SQLITE_BUSY is "database is locked", SQLITE_LOCKED is "database table is
/// locked" or "database schema is locked: `name`".
fn is_contention(error: &DieselError) -> bool {
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
    use diesel::result::DatabaseErrorKind;

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
            let error = database_error(message).into_repo_error("append_messages");
            assert!(
                matches!(error, RepoError::Unavailable(_)),
                "{message}: {error:?}"
            );
        }
        let error = database_error("no such table: messages").into_repo_error("get_session");
        assert!(matches!(error, RepoError::Unknown(_)), "{error:?}");
        assert!(
            format!("{error:#}").contains("get_session"),
            "the message names the operation: {error:#}"
        );
    }

    #[test]
    fn diesel_not_found_is_not_found() {
        assert!(matches!(
            StoreError::from(DieselError::NotFound).into_repo_error("get_session"),
            RepoError::NotFound
        ));
    }
}
