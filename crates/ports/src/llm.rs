use std::time::Duration;

use async_trait::async_trait;
use colloquy_domain::{ErrorCode, Usage};
use futures::stream::BoxStream;

/// Who says a message of a prompt, as the Chat Completions API names them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PromptRole {
    System,
    User,
    Assistant,
    /// The result of a tool call, answering the assistant turn that made it.
    Tool,
}

/// A tool call the model made, as it is sent back in the next request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallRequest {
    pub id: String,
    pub name: String,
    /// JSON text, exactly as the model wrote it.
    pub arguments: String,
}

/// One message of the conversation sent to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PromptMessage {
    pub role: PromptRole,
    pub content: String,
    /// On an assistant turn: the tools it called.
    pub tool_calls: Vec<ToolCallRequest>,
    /// On a tool turn: the call it answers.
    pub tool_call_id: Option<String>,
    /// The participant who wrote it, when several share a role (another
    /// assistant's words, sent as a `user` turn): OpenAI's `name` field.
    pub name: Option<String>,
}

impl PromptMessage {
    #[must_use]
    pub fn new(role: PromptRole, content: impl Into<String>) -> Self {
        Self {
            role,
            content: content.into(),
            tool_calls: Vec::new(),
            tool_call_id: None,
            name: None,
        }
    }
}

/// A tool offered to the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolSpec {
    pub name: String,
    pub description: String,
    /// The JSON Schema of the arguments, as JSON text.
    pub parameters: String,
}

/// Asks the model for output of a given shape.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseFormat {
    /// A JSON object matching `schema` (JSON text), in strict mode.
    JsonSchema { name: String, schema: String },
}

/// One request for a completion.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    pub model: String,
    pub messages: Vec<PromptMessage>,
    pub tools: Vec<ToolSpec>,
    pub response_format: Option<ResponseFormat>,
    /// Most tokens the completion may have; a reply cut there finishes with
    /// `finish_reason` `length`. `None` leaves it to the upstream.
    pub max_tokens: Option<u32>,
    /// The sampling temperature (0 to 2); `None` leaves it to the upstream.
    pub temperature: Option<f32>,
}

impl ChatRequest {
    #[must_use]
    pub fn new(model: impl Into<String>, messages: Vec<PromptMessage>) -> Self {
        Self {
            model: model.into(),
            messages,
            tools: Vec::new(),
            response_format: None,
            max_tokens: None,
            temperature: None,
        }
    }
}

/// A fragment of a tool call, as the model streams it. Fragments with the
/// same `index` belong to one call: `id` and `name` come once, `arguments`
/// arrive in pieces to be joined in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCallDelta {
    pub index: u32,
    pub id: Option<String>,
    pub name: Option<String>,
    pub arguments: String,
}

/// How a completion ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Completion {
    /// The upstream's own word: `stop`, `length`, `tool_calls`, `content_filter`…
    pub finish_reason: String,
    pub usage: Option<Usage>,
}

/// One item of a streamed completion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChatChunk {
    /// The next piece of the reply's text.
    Delta(String),
    ToolCall(ToolCallDelta),
    /// Always the last item of a stream that succeeded.
    Finished(Completion),
}

/// A streamed completion. It either ends with exactly one
/// [`ChatChunk::Finished`] or yields an error; a stream that simply stops is
/// never a finished reply.
pub type ChatStream = BoxStream<'static, Result<ChatChunk, LlmError>>;

/// What can go wrong with a model, in terms of what the core should do next.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LlmError {
    /// `429`: try again, after `retry_after` when the upstream said so.
    #[error("the upstream is rate limiting: {message}")]
    RateLimited {
        retry_after: Option<Duration>,
        message: String,
    },
    /// `408`, `409`, `5xx`, a refused or dropped connection: try again.
    #[error("the upstream is unavailable: {message}")]
    Unavailable {
        retry_after: Option<Duration>,
        message: String,
    },
    /// No answer, or no next chunk, within the time allowed: try again.
    #[error("the upstream timed out: {message}")]
    Timeout { message: String },
    /// A malformed chunk, an `error` object inside the stream, or a stream that
    /// stopped before its end: try again.
    #[error("the upstream broke the protocol: {message}")]
    Protocol { message: String },
    /// `400`, `401`, `403`, `404`, `422`: the same request would fail again.
    #[error("the upstream rejected the request ({status}): {message}")]
    Rejected { status: u16, message: String },
    /// A fault on our side (a request we could not build, say). Not retried.
    #[error("internal error talking to the upstream: {message}")]
    Internal { message: String },
}

impl LlmError {
    /// Whether the same request may succeed if sent again.
    #[must_use]
    pub const fn is_retryable(&self) -> bool {
        matches!(
            self,
            Self::RateLimited { .. }
                | Self::Unavailable { .. }
                | Self::Timeout { .. }
                | Self::Protocol { .. }
        )
    }

    /// How long the upstream asked us to wait before trying again, if it said.
    #[must_use]
    pub const fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::RateLimited { retry_after, .. } | Self::Unavailable { retry_after, .. } => {
                *retry_after
            }
            _ => None,
        }
    }

    /// The same error, its message rewritten by `rewrite` (an adapter
    /// takes out what clients must not see).
    #[must_use]
    pub fn map_message(self, rewrite: impl FnOnce(String) -> String) -> Self {
        match self {
            Self::RateLimited {
                retry_after,
                message,
            } => Self::RateLimited {
                retry_after,
                message: rewrite(message),
            },
            Self::Unavailable {
                retry_after,
                message,
            } => Self::Unavailable {
                retry_after,
                message: rewrite(message),
            },
            Self::Timeout { message } => Self::Timeout {
                message: rewrite(message),
            },
            Self::Protocol { message } => Self::Protocol {
                message: rewrite(message),
            },
            Self::Rejected { status, message } => Self::Rejected {
                status,
                message: rewrite(message),
            },
            Self::Internal { message } => Self::Internal {
                message: rewrite(message),
            },
        }
    }

    /// The code a reply that failed this way is stored with.
    #[must_use]
    pub const fn code(&self) -> ErrorCode {
        match self {
            Self::RateLimited { .. } => ErrorCode::UpstreamRateLimited,
            Self::Unavailable { .. } => ErrorCode::UpstreamUnavailable,
            Self::Timeout { .. } => ErrorCode::UpstreamTimeout,
            Self::Protocol { .. } => ErrorCode::UpstreamProtocolError,
            Self::Rejected { .. } => ErrorCode::UpstreamRejected,
            Self::Internal { .. } => ErrorCode::Internal,
        }
    }
}

/// A language model that streams chat completions.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait LlmClient: Send + Sync {
    /// Starts a streamed completion. Returns once the upstream has accepted
    /// the request (its response headers are in); the chunks follow on the
    /// stream. Implementations make one attempt: retrying is the core's call.
    /// Dropping the stream aborts the upstream request.
    ///
    /// # Errors
    /// An [`LlmError`] saying whether and when to try again.
    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError>;
}
