//! The JSON of the contract. Domain types stay free of serde; these mirror
//! them field by field and are built with `From`. Assistants' are in
//! `wire/assistants.rs`.

mod archive;
mod assistants;
mod branches;

use std::time::SystemTime;

use colloquy_app::{Account, SendOutcome};
use colloquy_domain::{
    ErrorCode, Message, MessageStatus, Role, Session, SessionId, Timestamp, ToolCall, Usage,
};
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{IntoParams, ToSchema};

pub use archive::{ExportBody, ExportQuery, SearchHitBody, SearchQuery, EXPORT_FORMAT};
pub(crate) use assistants::assistant_ids;
pub use assistants::{
    assistant_id, AssistantBody, AssistantPageQuery, CreateAssistantRequest, PatchAssistantRequest,
    RepliesRequest,
};
pub use branches::{message_id, EditMessageRequest, ListedMessageBody, RegenerateRequest};

pub fn rfc3339(time: Timestamp) -> String {
    humantime::format_rfc3339_micros(time.to_system_time().max(SystemTime::UNIX_EPOCH)).to_string()
}

/// A string schema allowing exactly `values`: the domain's own words, so the
/// document cannot drift from what the service sends.
fn one_of_strings(values: impl IntoIterator<Item = &'static str>) -> Schema {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(values))
        .into()
}

fn role_schema() -> Schema {
    one_of_strings([Role::User.as_str(), Role::Assistant.as_str()])
}

fn status_schema() -> Schema {
    one_of_strings(MessageStatus::ALL.map(MessageStatus::as_str))
}

fn error_code_schema() -> Schema {
    one_of_strings(ErrorCode::ALL.map(ErrorCode::as_str))
}

/// A chat: its settings and how many messages it holds.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Session)]
pub struct SessionBody {
    #[schema(format = "uuid", example = "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f")]
    pub id: String,
    #[schema(required = true, example = "Trip to Lisbon")]
    pub title: Option<String>,
    #[schema(required = true)]
    pub system_prompt: Option<String>,
    #[schema(example = "gpt-4o-mini")]
    pub model: String,
    /// The assistant that answers a message naming none; `null` for the
    /// service's default voice.
    #[schema(required = true, format = "uuid")]
    pub assistant_id: Option<String>,
    #[schema(format = DateTime, example = "2026-11-23T10:15:30.123456Z")]
    pub created_at: String,
    #[schema(format = DateTime, example = "2026-11-23T10:15:30.123456Z")]
    pub updated_at: String,
    /// The newest message of the active branch, which history, the
    /// context sent to the model and the Markdown export follow; `null`
    /// while the session is empty.
    #[schema(required = true, format = "uuid")]
    pub head_message_id: Option<String>,
    /// How many messages the active branch holds (not every branch).
    #[schema(example = 2)]
    pub message_count: u64,
}

impl From<&Session> for SessionBody {
    fn from(session: &Session) -> Self {
        Self {
            id: session.id.to_string(),
            title: session
                .title
                .as_ref()
                .map(|title| title.as_str().to_owned()),
            system_prompt: session
                .system_prompt
                .as_ref()
                .map(|prompt| prompt.as_str().to_owned()),
            model: session.model.as_str().to_owned(),
            assistant_id: session.assistant_id.map(|id| id.to_string()),
            created_at: rfc3339(session.created_at),
            updated_at: rfc3339(session.updated_at),
            head_message_id: session.head_message_id.map(|id| id.to_string()),
            message_count: session.message_count,
        }
    }
}

/// Tokens the upstream counted for one reply.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Usage)]
pub struct UsageBody {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl From<Usage> for UsageBody {
    fn from(usage: Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
        }
    }
}

/// Why a reply failed or was interrupted.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = MessageError)]
pub struct ErrorBody {
    #[schema(schema_with = error_code_schema)]
    pub code: &'static str,
    pub message: String,
}

/// A tool the reply called, with what it returned.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ToolCall)]
pub struct ToolCallBody {
    pub id: String,
    #[schema(example = "current_time")]
    pub name: String,
    /// The arguments the model gave, parsed when they are JSON.
    pub arguments: serde_json::Value,
    #[schema(required = true)]
    pub result: Option<serde_json::Value>,
    #[schema(required = true)]
    pub error: Option<String>,
}

/// JSON text the model wrote is shown parsed when it parses, else as the string it was.
fn json_or_string(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_owned()))
}

impl From<&ToolCall> for ToolCallBody {
    fn from(call: &ToolCall) -> Self {
        Self {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: json_or_string(&call.arguments),
            result: call.result.as_deref().map(json_or_string),
            error: call.error.clone(),
        }
    }
}

/// One message of a session: the user's, or the assistant's reply.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Message)]
pub struct MessageBody {
    #[schema(format = "uuid")]
    pub id: String,
    #[schema(format = "uuid")]
    pub session_id: String,
    /// The message this one follows; `null` for the first. Regenerating
    /// a reply or editing a question adds a message beside the old one,
    /// under the same parent.
    #[schema(required = true, format = "uuid")]
    pub parent_id: Option<String>,
    #[schema(schema_with = role_schema)]
    pub role: &'static str,
    #[schema(example = "hey who are you?")]
    pub content: String,
    #[schema(schema_with = status_schema)]
    pub status: &'static str,
    #[schema(required = true)]
    pub model: Option<String>,
    #[schema(required = true, example = "stop")]
    pub finish_reason: Option<String>,
    #[schema(required = true)]
    pub usage: Option<UsageBody>,
    #[schema(required = true)]
    pub error: Option<ErrorBody>,
    /// Only on an assistant message that used tools, in the order they ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallBody>,
    /// The assistant that wrote it; `null` for the session's default voice
    /// and for user messages. It stays when the assistant is deleted.
    #[schema(required = true, format = "uuid")]
    pub assistant_id: Option<String>,
    /// That assistant's name when it wrote the message (kept when it is
    /// renamed or deleted); `null` where `assistant_id` is.
    #[schema(required = true, example = "Critic")]
    pub name: Option<String>,
    #[schema(format = DateTime)]
    pub created_at: String,
    #[schema(required = true, format = DateTime)]
    pub completed_at: Option<String>,
}

impl From<&Message> for MessageBody {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id.to_string(),
            session_id: message.session_id.to_string(),
            parent_id: message.parent_id.map(|id| id.to_string()),
            role: message.role.as_str(),
            content: message.content.clone(),
            status: message.status.as_str(),
            model: message.model.clone(),
            finish_reason: message.finish_reason.clone(),
            usage: message.usage.map(UsageBody::from),
            error: message.error.as_ref().map(|error| ErrorBody {
                code: error.code.as_str(),
                message: error.message.clone(),
            }),
            tool_calls: message.tool_calls.iter().map(ToolCallBody::from).collect(),
            assistant_id: message
                .speaker
                .as_ref()
                .map(|speaker| speaker.id.to_string()),
            name: message.speaker.as_ref().map(|speaker| speaker.name.clone()),
            created_at: rfc3339(message.created_at),
            completed_at: message.completed_at.map(rfc3339),
        }
    }
}

/// One page of a list; `has_more` says whether another follows.
#[derive(Debug, Serialize, ToSchema)]
pub struct PageBody<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

/// A sent message and the replies now being generated for it, in the order
/// they come.
#[derive(Debug, Serialize, ToSchema)]
pub struct SendAccepted {
    /// `null` for a discussion (`POST …/replies`), which adds none.
    #[schema(required = true)]
    pub user_message: Option<MessageBody>,
    /// The first reply, status `streaming`: watch `events_url` for the rest.
    pub assistant_message: MessageBody,
    /// Every reply of the turn, one per assistant that answers, in the
    /// order they speak (the first is `assistant_message`).
    pub assistant_messages: Vec<MessageBody>,
    #[schema(example = "/api/v1/sessions/01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f/events")]
    pub events_url: String,
}

impl SendAccepted {
    /// The `202` of a turn that started in session `session`.
    #[must_use]
    pub fn new(outcome: &SendOutcome, session: SessionId) -> Self {
        Self {
            user_message: outcome.user_message.as_ref().map(MessageBody::from),
            assistant_message: MessageBody::from(outcome.assistant_message()),
            assistant_messages: outcome
                .assistant_messages
                .iter()
                .map(MessageBody::from)
                .collect(),
            events_url: format!("/api/v1/sessions/{session}/events"),
        }
    }
}

/// Whether a reply was running and is now stopped.
#[derive(Debug, Serialize, ToSchema)]
pub struct CancelBody {
    pub cancelled: bool,
}

/// The original assignment's answer to `POST /api/create_session`: the
/// Session, with its id once more under the name those clients read.
#[derive(Debug, Serialize, ToSchema)]
pub struct CompatSessionBody {
    #[serde(flatten)]
    pub session: SessionBody,
    #[schema(format = "uuid")]
    pub session_id: String,
}

/// Every field may be left out; the service's defaults apply.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct CreateSessionRequest {
    /// One line, not blank.
    #[schema(
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\\S[^\\u0000-\\u001f\\u007f-\\u009f]*$",
        example = "Trip to Lisbon"
    )]
    pub title: Option<String>,
    /// Not blank.
    #[schema(
        max_length = 32000,
        pattern = "\\S",
        example = "You are a concise travel agent."
    )]
    pub system_prompt: Option<String>,
    /// No spaces or control characters.
    #[schema(
        max_length = 200,
        pattern = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$",
        example = "gpt-4o-mini"
    )]
    pub model: Option<String>,
    /// The session's default assistant, which answers a message naming
    /// none; without `model`, the session takes the assistant's.
    #[schema(format = "uuid")]
    pub assistant_id: Option<String>,
}

/// `null` clears a field; leaving it out leaves it alone.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PatchSessionRequest {
    /// One line, not blank; `null` removes the title.
    #[serde(default, deserialize_with = "present")]
    #[schema(
        max_length = 200,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\\S[^\\u0000-\\u001f\\u007f-\\u009f]*$",
        example = "Lisbon, day two"
    )]
    pub title: Option<Option<String>>,
    /// Not blank; `null` goes back to the service's default prompt.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 32000, pattern = "\\S")]
    pub system_prompt: Option<Option<String>>,
    /// No spaces or control characters; a model cannot be cleared, so
    /// `null` leaves it as it is.
    #[schema(max_length = 200, pattern = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$")]
    pub model: Option<String>,
    /// The session's default assistant; without `model`, the session takes
    /// the assistant's model. `null` goes back to the service's default
    /// voice (the model stays).
    #[serde(default, deserialize_with = "present")]
    #[schema(format = "uuid")]
    pub assistant_id: Option<Option<String>>,
    /// Switches the active branch: to this message of the session, or to
    /// the newest message below it. A session always has a branch, so
    /// `null` leaves it as it is.
    #[schema(format = "uuid")]
    pub head_message_id: Option<String>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

/// The user's next message. `content` is required; the original
/// assignment's clients may call it `message` instead.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"content": "hey who are you?"}))]
pub struct SendMessageRequest {
    /// Not blank; at most `COLLOQUY_MAX_MESSAGE_CHARS` characters (32000 unless configured).
    #[schema(value_type = String, required = false, max_length = 32000, pattern = "\\S", example = "hey who are you?")]
    pub content: Option<String>,
    /// The original assignment's clients call it `message`.
    #[schema(value_type = String, required = false, max_length = 32000, pattern = "\\S")]
    pub message: Option<String>,
    /// Stop the reply when the client reading its event stream goes away.
    #[serde(default)]
    pub cancel_on_disconnect: bool,
    /// The assistants that answer, in order (1–8; one may answer twice),
    /// each seeing the answers before its own. Left out, the session's
    /// voice answers.
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 8)]
    pub assistant_ids: Option<Vec<String>>,
}

/// `GET /api/v1/sessions?limit=&after=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SessionPageQuery {
    /// How many sessions to return, newest first.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<String>,
    /// The last id of the previous page.
    #[param(value_type = Option<String>, format = "uuid")]
    pub after: Option<String>,
}

/// `GET /api/v1/sessions/{id}/messages?leaf=&limit=&after=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessagePageQuery {
    /// The last message of the branch to list; the session's head (its
    /// active branch) when left out.
    #[param(value_type = Option<String>, format = "uuid")]
    pub leaf: Option<String>,
    /// How many messages to return, oldest first.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 1000, default = 1000)]
    pub limit: Option<String>,
    /// The last id of the previous page.
    #[param(value_type = Option<String>, format = "uuid")]
    pub after: Option<String>,
}

/// `GET /api/v1/sessions/{id}/events?last_event_id=`, for clients that
/// cannot set the `Last-Event-ID` header (which wins when both are given).
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Deliver the events after this one, then live ones; empty means from now.
    #[param(pattern = "^[0-9]{0,19}$", example = "1763893530123456")]
    pub last_event_id: Option<String>,
    /// A stream token for this session (`POST …/stream-token`), for clients
    /// that cannot send `Authorization` (a browser's `EventSource` or `WebSocket`).
    pub token: Option<String>,
}

/// `POST /api/v1/sessions/{id}/stream-token`: a short-lived token that opens
/// this session's event stream or WebSocket for its owner.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamTokenBody {
    /// Send as `?token=` when opening the event stream or WebSocket.
    pub token: String,
    /// After this the token opens nothing; a stream already open stays open.
    #[schema(format = "date-time")]
    pub expires_at: String,
}

/// `GET /api/v1/me`: who is asking, what it may use, what it used today.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountBody {
    /// The principal every session and limit of this caller belongs to.
    pub principal: String,
    pub limits: LimitsBody,
    /// Upstream tokens spent since 00:00 UTC, titles and summaries included.
    pub usage_today: UsageBody,
}

/// The caller's limits; `null` where a limit is off.
#[derive(Debug, Serialize, ToSchema)]
pub struct LimitsBody {
    pub requests_per_minute: Option<u32>,
    pub replies_at_once: Option<u32>,
    pub streams_at_once: Option<u32>,
    /// Upstream tokens (prompt + completion) per UTC day.
    pub daily_tokens: Option<u64>,
    /// The most tokens one reply may have.
    pub max_reply_tokens: Option<u32>,
}

impl AccountBody {
    #[must_use]
    pub fn new(account: &Account, max_reply_tokens: Option<u32>) -> Self {
        let limits = account.limits;
        let on_u32 = |value: u32| (value > 0).then_some(value);
        Self {
            principal: account.principal.as_str().to_owned(),
            limits: LimitsBody {
                requests_per_minute: on_u32(limits.requests_per_minute),
                replies_at_once: on_u32(limits.replies_at_once),
                streams_at_once: on_u32(limits.streams_at_once),
                daily_tokens: (limits.daily_tokens > 0).then_some(limits.daily_tokens),
                max_reply_tokens,
            },
            usage_today: account.usage_today.into(),
        }
    }
}

/// `GET /api/v1/models`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelListBody {
    pub data: Vec<ModelBody>,
}

/// A model a session may name.
#[derive(Debug, Serialize, ToSchema)]
pub struct ModelBody {
    #[schema(example = "gpt-4o-mini")]
    pub id: String,
}
