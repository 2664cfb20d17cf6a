//! The adapter's own errors and their translation into [`RepoError`], for
//! both backends.

use colloquy_ports::RepoError;
use diesel::result::{DatabaseErrorKind, Error as DieselError};

use crate::{postgres, sqlite};

/// What can fail inside one repository call, before it is told to the core.
///
/// Kept separate from [`RepoError`] because Diesel's transaction helpers need
/// an error type they can build from [`DieselError`], which the orphan rule
/// does not allow for the port's enum.
#[derive(Debug)]
pub(crate) enum StoreError {
    Diesel(DieselError),
    /// A write's transaction failed before its COMMIT was sent, so nothing
    /// of it took effect whatever became of the connection: it may be made
    /// again.
    NotCommitted(DieselError),
    /// The store cannot serve the call right now: no connection became free
    /// in time, the server cannot be reached, or the connection was lost.
    Unavailable(anyhow::Error),
    /// The row or session the call is about does not exist.
    NotFound,
    /// A unique index refused the row: the value is taken.
    Conflict,
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

/// The unique index on `assistants (owner, name)`, as both migrations name it.
const ASSISTANT_NAME_INDEX: &str = "assistants_owner_name";

impl StoreError {
    /// `error`, from a statement that writes an assistant: a conflict when
    /// the unique index on its owner's names refused it, as any other error
    /// otherwise (a duplicate id stays a plain error: no caller chose it).
    ///
    /// PostgreSQL names the index that refused; SQLite names its columns,
    /// in a message whose form is stable (`UNIQUE constraint failed:
    /// assistants.owner, assistants.name`).
    pub(crate) fn from_assistant_write(error: DieselError) -> Self {
        let name_taken = match &error {
            DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, info) => {
                info.constraint_name() == Some(ASSISTANT_NAME_INDEX)
                    || info.message().contains(ASSISTANT_NAME_INDEX)
                    || info.message().contains("assistants.name")
            }
            _ => false,
        };
        if name_taken {
            Self::Conflict
        } else {
            Self::from(error)
        }
    }
}

/// Why applying migrations failed. Diesel's transaction helpers need an
/// error type that a [`DieselError`] converts into.
#[derive(Debug)]
pub(crate) enum MigrationError {
    Diesel(DieselError),
    Migration(Box<dyn std::error::Error + Send + Sync>),
}

impl From<DieselError> for MigrationError {
    fn from(error: DieselError) -> Self {
        Self::Diesel(error)
    }
}

impl From<MigrationError> for anyhow::Error {
    fn from(error: MigrationError) -> Self {
        match error {
            MigrationError::Diesel(error) => Self::new(error),
            MigrationError::Migration(error) => Self::from_boxed(error),
        }
    }
}

/// The database a call ran on: it names the store in error messages, and
/// knows which of its own errors pass by themselves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    const fn name(self) -> &'static str {
        match self {
            Self::Sqlite => "SQLite repository",
            Self::Postgres => "PostgreSQL repository",
        }
    }

    /// Whether `error` is a condition that passes (a lock held too long, a
    /// lost connection), as opposed to a broken query or a corrupt store.
    fn is_transient(self, error: &DieselError) -> bool {
        match self {
            Self::Sqlite => sqlite::is_contention(error),
            Self::Postgres => postgres::is_transient(error),
        }
    }
}

impl StoreError {
    /// The port's view of this error; `operation` names the repository method
    /// in the message, so a logged 500 says what was being done.
    pub(crate) fn into_repo_error(self, backend: Backend, operation: &'static str) -> RepoError {
        let context = || format!("{}: {operation}", backend.name());
        match self {
            Self::NotFound => RepoError::NotFound,
            Self::Conflict => RepoError::Conflict,
            Self::Unavailable(error) => RepoError::Unavailable(error.context(context())),
            Self::Diesel(error) | Self::NotCommitted(error) if backend.is_transient(&error) => {
                RepoError::Unavailable(anyhow::Error::new(error).context(context()))
            }
            Self::Diesel(error) | Self::NotCommitted(error) => {
                RepoError::Unknown(anyhow::Error::new(error).context(context()))
            }
            Self::Corrupt(detail) => {
                RepoError::Unknown(anyhow::anyhow!("{}: corrupt row: {detail}", context()))
            }
            Self::Invalid(detail) => RepoError::Unknown(anyhow::anyhow!("{}: {detail}", context())),
            Self::Other(error) => RepoError::Unknown(error.context(context())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diesel_not_found_is_not_found_on_both_backends() {
        for backend in [Backend::Sqlite, Backend::Postgres] {
            assert!(matches!(
                StoreError::from(DieselError::NotFound).into_repo_error(backend, "get_session"),
                RepoError::NotFound
            ));
        }
    }

    #[test]
    fn only_the_index_of_assistant_names_makes_a_conflict() {
        let unique = |message: &str| {
            DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                Box::new(message.to_owned()),
            )
        };
        for taken in [
            "UNIQUE constraint failed: assistants.owner, assistants.name",
            "duplicate key value violates unique constraint \"assistants_owner_name\"",
        ] {
            assert!(
                matches!(
                    StoreError::from_assistant_write(unique(taken))
                        .into_repo_error(Backend::Sqlite, "create_assistant"),
                    RepoError::Conflict
                ),
                "{taken}"
            );
        }
        for other in [
            "UNIQUE constraint failed: assistants.id",
            "duplicate key value violates unique constraint \"assistants_pkey\"",
        ] {
            assert!(
                matches!(
                    StoreError::from_assistant_write(unique(other)),
                    StoreError::Diesel(_)
                ),
                "{other}"
            );
        }
        assert!(matches!(
            StoreError::from_assistant_write(DieselError::NotFound),
            StoreError::NotFound
        ));
    }

    #[test]
    fn an_unavailable_store_says_which_store_and_what_call() {
        let error = StoreError::Unavailable(anyhow::anyhow!("no free connection"))
            .into_repo_error(Backend::Postgres, "list_sessions");
        let RepoError::Unavailable(cause) = error else {
            panic!("expected Unavailable, got {error:?}");
        };
        let text = format!("{cause:#}");
        assert!(
            text.contains("PostgreSQL repository: list_sessions")
                && text.contains("no free connection"),
            "{text}"
        );
    }
}
