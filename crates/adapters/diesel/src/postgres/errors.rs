//! Which PostgreSQL errors pass by themselves, and telling a lost
//! connection from a failed statement.

use std::time::Duration;

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use diesel::sql_types::Integer;
use diesel::IntoSql as _;
use diesel_async::{AsyncPgConnection, RunQueryDsl as _};

/// How long the `SELECT 1` that asks whether a connection still answers may
/// take after one of its statements failed.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The beginnings of the server's messages for conditions that pass: a
/// statement cancelled by `lock_timeout`, by `statement_timeout` or by a
/// standby replaying WAL (SQLSTATE 55P03, 57014, 40001), a deadlock broken
/// by rolling back one side (40P01), a lock that could not be taken at once
/// (55P03), a serialization failure (40001), or a server shutting down,
/// starting up or in recovery (57P01–57P03).
///
/// Diesel keeps only the message of these (its error kinds do not cover
/// them and the SQLSTATE is not exposed), so the message is what there is to
/// match on. The texts are the server's English ones; a server configured to
/// answer in another language makes these errors `Unknown` instead, which
/// costs a 500 rather than a 503, never data.
const TRANSIENT_MESSAGES: [&str; 6] = [
    "canceling statement due to",
    "deadlock detected",
    "terminating connection",
    "the database system is",
    "could not obtain lock",
    "could not serialize access",
];

/// Whether `error`, from a connection that still answers, is a condition
/// that passes rather than a broken query or a constraint that refused a row.
pub(crate) fn is_transient(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::SerializationFailure, _) => true,
        DieselError::DatabaseError(
            DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
            _,
        ) => true,
        DieselError::DatabaseError(_, info) => {
            let message = info.message();
            TRANSIENT_MESSAGES
                .iter()
                .any(|start| message.starts_with(start))
        }
        _ => false,
    }
}

/// Whether `error` is the server's own answer that the statement failed (an
/// `ErrorResponse`, which carries a SQLSTATE), as opposed to no answer at
/// all. A failed statement took no effect: outside a transaction its
/// implicit one is rolled back, inside one the whole transaction is (a
/// terminated session never commits). So a write that failed this way may
/// be made again even when the connection is gone afterwards, as it is
/// after `pg_terminate_backend`. Without an answer (the socket closed or
/// failed, diesel-async's `UnableToSendCommand`) the statement may have
/// committed just before, and nothing can tell.
pub(crate) fn statement_never_ran(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(DatabaseErrorKind::UnableToSendCommand, _) => false,
        DieselError::DatabaseError(_, _) => true,
        DieselError::RollbackErrorOnCommit { commit_error, .. } => {
            statement_never_ran(commit_error)
        }
        _ => false,
    }
}

/// Whether `error` could mean the connection itself is gone, so that asking
/// the connection is worth a round trip. A refused row, a decoding problem
/// or a transaction rolled back on purpose never means that.
fn may_be_lost(error: &DieselError) -> bool {
    match error {
        DieselError::DatabaseError(kind, _) => !matches!(
            kind,
            DatabaseErrorKind::UniqueViolation
                | DatabaseErrorKind::ForeignKeyViolation
                | DatabaseErrorKind::NotNullViolation
                | DatabaseErrorKind::CheckViolation
                | DatabaseErrorKind::RestrictViolation
                | DatabaseErrorKind::ExclusionViolation
                | DatabaseErrorKind::SerializationFailure
                | DatabaseErrorKind::ReadOnlyTransaction
        ),
        DieselError::BrokenTransactionManager | DieselError::RollbackErrorOnCommit { .. } => true,
        _ => false,
    }
}

/// Whether `connection` was lost, judged after `error` came out of it: the
/// error's kind says the driver could not talk to the server, or the
/// connection no longer answers a `SELECT 1`. Asking the connection is what
/// makes this independent of the server's message texts and language.
pub(crate) async fn connection_lost(
    error: &DieselError,
    connection: &mut AsyncPgConnection,
) -> bool {
    if matches!(
        error,
        DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, _)
    ) {
        return true;
    }
    if !may_be_lost(error) {
        return false;
    }
    let probe = diesel::select(1_i32.into_sql::<Integer>()).get_result::<i32>(connection);
    !matches!(tokio::time::timeout(PROBE_TIMEOUT, probe).await, Ok(Ok(1)))
}

#[cfg(test)]
mod tests {
    use colloquy_ports::RepoError;

    use super::*;
    use crate::error::{Backend, StoreError};

    fn database_error(kind: DatabaseErrorKind, message: &str) -> StoreError {
        StoreError::from(DieselError::DatabaseError(
            kind,
            Box::new(message.to_owned()),
        ))
    }

    #[test]
    fn conditions_that_pass_are_unavailable() {
        let cases = [
            (
                DatabaseErrorKind::SerializationFailure,
                "could not serialize access due to concurrent update",
            ),
            (DatabaseErrorKind::UnableToSendCommand, "connection closed"),
            (
                DatabaseErrorKind::ClosedConnection,
                "server closed the connection unexpectedly",
            ),
            (
                DatabaseErrorKind::Unknown,
                "canceling statement due to lock timeout",
            ),
            (
                DatabaseErrorKind::Unknown,
                "canceling statement due to statement timeout",
            ),
            (DatabaseErrorKind::Unknown, "deadlock detected"),
            (
                DatabaseErrorKind::Unknown,
                "terminating connection due to administrator command",
            ),
            (
                DatabaseErrorKind::Unknown,
                "the database system is shutting down",
            ),
        ];
        for (kind, message) in cases {
            let error =
                database_error(kind, message).into_repo_error(Backend::Postgres, "update_message");
            assert!(
                matches!(error, RepoError::Unavailable(_)),
                "{message}: {error:?}"
            );
        }
    }

    #[test]
    fn broken_queries_and_refused_rows_are_unknown() {
        let cases = [
            (
                DatabaseErrorKind::UniqueViolation,
                "duplicate key value violates unique constraint \"messages_pkey\"",
            ),
            (
                DatabaseErrorKind::CheckViolation,
                "new row for relation \"sessions\" violates check constraint",
            ),
            (
                DatabaseErrorKind::Unknown,
                "relation \"messages\" does not exist",
            ),
            (
                DatabaseErrorKind::Unknown,
                "invalid byte sequence for encoding \"UTF8\": 0x00",
            ),
        ];
        for (kind, message) in cases {
            let error =
                database_error(kind, message).into_repo_error(Backend::Postgres, "append_messages");
            assert!(
                matches!(error, RepoError::Unknown(_)),
                "{message}: {error:?}"
            );
            assert!(format!("{error:#}").contains("PostgreSQL repository: append_messages"));
        }
    }

    #[test]
    fn only_the_servers_own_answer_says_a_statement_never_ran() {
        let terminated = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(String::from(
                "terminating connection due to administrator command",
            )),
        );
        assert!(statement_never_ran(&terminated));
        let no_answer = DieselError::DatabaseError(
            DatabaseErrorKind::UnableToSendCommand,
            Box::new(String::from("connection closed")),
        );
        assert!(!statement_never_ran(&no_answer));
        assert!(!statement_never_ran(&DieselError::BrokenTransactionManager));
        let commit_unanswered = DieselError::RollbackErrorOnCommit {
            rollback_error: Box::new(DieselError::BrokenTransactionManager),
            commit_error: Box::new(no_answer),
        };
        assert!(!statement_never_ran(&commit_unanswered));
    }

    #[test]
    fn only_errors_that_could_come_from_a_dead_connection_are_probed() {
        let refused = DieselError::DatabaseError(
            DatabaseErrorKind::UniqueViolation,
            Box::new(String::from("duplicate key")),
        );
        assert!(!may_be_lost(&refused));
        assert!(!may_be_lost(&DieselError::NotFound));
        assert!(!may_be_lost(&DieselError::RollbackTransaction));
        let unknown = DieselError::DatabaseError(
            DatabaseErrorKind::Unknown,
            Box::new(String::from(
                "terminating connection due to administrator command",
            )),
        );
        assert!(may_be_lost(&unknown));
        assert!(may_be_lost(&DieselError::BrokenTransactionManager));
    }
}
