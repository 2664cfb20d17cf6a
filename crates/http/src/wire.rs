//! The JSON of the contract. Domain types stay free of serde; these mirror
//! them field by field and are built with `From`.

use std::time::SystemTime;

use colloquy_domain::{Message, Session, Timestamp, ToolCall, Usage};
use serde::{Deserialize, Deserializer, Serialize};

pub fn rfc3339(time: Timestamp) -> String {
    humantime::format_rfc3339_micros(time.to_system_time().max(SystemTime::UNIX_EPOCH)).to_string()
}

#[derive(Debug, Serialize)]
pub struct SessionBody {
    pub id: String,
    pub title: Option<String>,
    pub system_prompt: Option<String>,
    pub model: String,
    pub created_at: String,
    pub updated_at: String,
    pub message_count: u64,
}

impl From<&Session> for SessionBody {
    fn from(session: &Session) -> Self {
        Self {
            id: session.id.to_string(),
            title: session.title.as_ref().map(|title| title.as_str().to_owned()),
            system_prompt: session.system_prompt.as_ref().map(|prompt| prompt.as_str().to_owned()),
            model: session.model.as_str().to_owned(),
            created_at: rfc3339(session.created_at),
            updated_at: rfc3339(session.updated_at),
            message_count: session.message_count,
        }
    }
}

#[derive(Debug, Serialize)]
pub struct UsageBody {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

impl From<Usage> for UsageBody {
    fn from(usage: Usage) -> Self {
        Self { prompt_tokens: usage.prompt_tokens, completion_tokens: usage.completion_tokens }
    }
}

#[derive(Debug, Serialize)]
pub struct ErrorBody {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct ToolCallBody {
    pub id: String,
    pub name: String,
    pub arguments: serde_json::Value,
    pub result: Option<serde_json::Value>,
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

#[derive(Debug, Serialize)]
pub struct MessageBody {
    pub id: String,
    pub session_id: String,
    pub role: &'static str,
    pub content: String,
    pub status: &'static str,
    pub model: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Option<UsageBody>,
    pub error: Option<ErrorBody>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCallBody>,
    pub created_at: String,
    pub completed_at: Option<String>,
}

impl From<&Message> for MessageBody {
    fn from(message: &Message) -> Self {
        Self {
            id: message.id.to_string(),
            session_id: message.session_id.to_string(),
            role: message.role.as_str(),
            content: message.content.clone(),
            status: message.status.as_str(),
            model: message.model.clone(),
            finish_reason: message.finish_reason.clone(),
            usage: message.usage.map(UsageBody::from),
            error: message
                .error
                .as_ref()
                .map(|error| ErrorBody { code: error.code.as_str(), message: error.message.clone() }),
            tool_calls: message.tool_calls.iter().map(ToolCallBody::from).collect(),
            created_at: rfc3339(message.created_at),
            completed_at: message.completed_at.map(rfc3339),
        }
    }
}

#[derive(Debug, Serialize)]
pub struct PageBody<T> {
    pub data: Vec<T>,
    pub has_more: bool,
}

#[derive(Debug, Serialize)]
pub struct SendAccepted {
    pub user_message: MessageBody,
    pub assistant_message: MessageBody,
    pub events_url: String,
}

#[derive(Debug, Serialize)]
pub struct CancelBody {
    pub cancelled: bool,
}

#[derive(Debug, Default, Deserialize)]
pub struct CreateSessionRequest {
    pub title: Option<String>,
    pub system_prompt: Option<String>,
    pub model: Option<String>,
}

/// `null` clears a field; leaving it out leaves it alone.
#[derive(Debug, Default, Deserialize)]
pub struct PatchSessionRequest {
    #[serde(default, deserialize_with = "present")]
    pub title: Option<Option<String>>,
    #[serde(default, deserialize_with = "present")]
    pub system_prompt: Option<Option<String>>,
    pub model: Option<String>,
}

fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(deserializer: D) -> Result<Option<Option<T>>, D::Error> {
    Option::<T>::deserialize(deserializer).map(Some)
}

#[derive(Debug, Default, Deserialize)]
pub struct SendMessageRequest {
    pub content: Option<String>,
    /// The original assignment's clients call it `message`.
    pub message: Option<String>,
    #[serde(default)]
    pub cancel_on_disconnect: bool,
}
