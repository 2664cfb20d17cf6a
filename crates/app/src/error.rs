use colloquy_domain::ValidationError;
use colloquy_ports::RepoError;

/// What a use case can refuse or fail with. The HTTP shell maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("there is no session with that id")]
    SessionNotFound,
    #[error("a reply is already being generated in this session; wait for it or cancel it")]
    ReplyInProgress,
    #[error("the server is shutting down and takes no new messages")]
    ShuttingDown,
    #[error("the database is unavailable right now")]
    StoreUnavailable(#[source] RepoError),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<RepoError> for ChatError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::NotFound => Self::SessionNotFound,
            RepoError::Unavailable(_) => Self::StoreUnavailable(error),
            RepoError::Unknown(cause) => Self::Unexpected(cause),
        }
    }
}
