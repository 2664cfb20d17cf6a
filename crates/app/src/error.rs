use colloquy_domain::ValidationError;
use colloquy_ports::{EventLogError, LimitError, LimitReached, LlmError, RepoError};

/// What a use case can refuse or fail with. The HTTP shell maps each to a status.
#[derive(Debug, thiserror::Error)]
pub enum ChatError {
    #[error(transparent)]
    Invalid(#[from] ValidationError),
    #[error("there is no session with that id")]
    SessionNotFound,
    #[error("there is no assistant with that id")]
    AssistantNotFound,
    #[error("there is no message with that id in this session")]
    MessageNotFound,
    /// Regenerating a question or editing an answer: the message is of the
    /// other role.
    #[error("{0}")]
    WrongRole(String),
    /// A search query with no word to look for, or too many.
    #[error("{0}")]
    BadQuery(String),
    /// An import that is not a conversation colloquy can store.
    #[error("{0}")]
    BadImport(String),
    /// A Chat Completions request whose conversation adds nothing to answer.
    #[error("{0}")]
    BadConversation(String),
    /// The caller has an assistant of that name already.
    #[error("you have an assistant named `{0}` already; assistant names are unique")]
    AssistantNameTaken(String),
    /// An assistant names a tool the service does not offer (`COLLOQUY_TOOLS`).
    #[error("{0}")]
    UnknownTool(String),
    /// A turn names no assistant where one is needed, or too many.
    #[error("{0}")]
    BadAssistants(String),
    /// The model is not one of `COLLOQUY_MODELS`.
    #[error("the model `{0}` is not offered here; GET /api/v1/models lists those that are")]
    ModelNotAllowed(String),
    /// The caller reached one of its limits.
    #[error(transparent)]
    LimitReached(#[from] LimitReached),
    #[error("the limits cannot be checked right now")]
    LimitsUnavailable(#[source] LimitError),
    #[error("a reply is already being generated in this session; wait for it or cancel it")]
    ReplyInProgress,
    #[error("the server is shutting down and takes no new messages")]
    ShuttingDown,
    #[error("the database is unavailable right now")]
    StoreUnavailable(#[source] RepoError),
    #[error("the event log is unavailable right now")]
    EventsUnavailable(#[source] EventLogError),
    /// The model is rate limited, down or too slow right now; trying later may work.
    #[error("the model is unavailable right now: {0}")]
    ModelUnavailable(#[source] LlmError),
    /// The model refused the request or broke the protocol.
    #[error("the model failed: {0}")]
    ModelFailed(#[source] LlmError),
    /// The model answered, but not with what was asked for.
    #[error("the model's answer was unusable: {0}")]
    BadModelOutput(String),
    #[error(transparent)]
    Unexpected(anyhow::Error),
}

impl From<LlmError> for ChatError {
    fn from(error: LlmError) -> Self {
        if error.is_retryable() {
            Self::ModelUnavailable(error)
        } else {
            Self::ModelFailed(error)
        }
    }
}

impl From<RepoError> for ChatError {
    fn from(error: RepoError) -> Self {
        match error {
            RepoError::NotFound => Self::SessionNotFound,
            // Only assistants have unique names; their use cases say which.
            RepoError::Conflict => Self::Unexpected(anyhow::anyhow!("a unique value is taken")),
            RepoError::Unavailable(_) => Self::StoreUnavailable(error),
            RepoError::Unknown(cause) => Self::Unexpected(cause),
        }
    }
}

impl From<EventLogError> for ChatError {
    fn from(error: EventLogError) -> Self {
        match error {
            EventLogError::Unavailable(_) => Self::EventsUnavailable(error),
            EventLogError::Unknown(cause) => Self::Unexpected(cause),
        }
    }
}

impl From<LimitError> for ChatError {
    fn from(error: LimitError) -> Self {
        match error {
            LimitError::Reached(reached) => Self::LimitReached(reached),
            LimitError::Unavailable(_) => Self::LimitsUnavailable(error),
        }
    }
}
