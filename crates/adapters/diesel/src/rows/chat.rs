//! The `sessions` and `messages` rows.

use colloquy_domain::{
    AssistantId, ErrorCode, Message, MessageError, MessageId, MessageStatus, ModelName, Principal,
    Role, Session, SessionId, Speaker, SystemPrompt, Timestamp, Title, ToolCall, Usage,
};
use colloquy_ports::SessionChanges;
use diesel::prelude::*;
use serde::{Deserialize, Serialize};

use super::storable;
use crate::error::StoreError;
use crate::schema::{messages, sessions};

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(
    table_name = sessions,
    check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg)
)]
pub(crate) struct SessionRow {
    pub id: String,
    pub owner: String,
    pub title: Option<String>,
    pub system_prompt: Option<String>,
    pub model: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub message_count: i64,
    pub assistant_id: Option<String>,
    pub head_message_id: Option<String>,
}

/// The stored form of a [`SessionChanges`]: an outer `None` leaves its
/// column out of the UPDATE, `Some(None)` stores NULL. `updated_at` is always
/// written, so the statement never has an empty SET.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = sessions)]
pub(crate) struct SessionChangeset {
    pub title: Option<Option<String>>,
    pub system_prompt: Option<Option<String>>,
    pub model: Option<String>,
    pub assistant_id: Option<Option<String>>,
    pub updated_at: i64,
}

/// A message as stored. `QueryableByName` too, for the recursive queries
/// that walk a branch (raw SQL: see `tree.rs`).
#[derive(Debug, Queryable, QueryableByName, Selectable, Insertable)]
#[diesel(
    table_name = messages,
    check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg)
)]
pub(crate) struct MessageRow {
    pub id: String,
    pub session_id: String,
    pub role: String,
    pub content: String,
    pub status: String,
    pub model: Option<String>,
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub tool_calls: Option<String>,
    pub created_at: i64,
    pub completed_at: Option<i64>,
    /// Who wrote it ([`Speaker`]): both or neither.
    pub assistant_id: Option<String>,
    pub assistant_name: Option<String>,
    pub parent_id: Option<String>,
    /// Its place on its branch, which the store computes from its parent:
    /// not a domain field.
    pub depth: i64,
}

/// What `update_message` may change; as for sessions, `None` clears. Who
/// wrote a message is not among it: that is fixed when it is appended.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = messages, treat_none_as_null = true)]
pub(crate) struct MessageChanges {
    pub content: String,
    pub status: String,
    pub finish_reason: Option<String>,
    pub prompt_tokens: Option<i64>,
    pub completion_tokens: Option<i64>,
    pub error_code: Option<String>,
    pub error_message: Option<String>,
    pub tool_calls: Option<String>,
    pub completed_at: Option<i64>,
}

/// One element of the `tool_calls` JSON array. `arguments` and `result` stay
/// JSON strings holding the model's text: parsing them into nested values
/// would reformat them (key order, spacing, number spelling) and could not
/// hold the invalid JSON a model sometimes writes.
#[derive(Debug, Serialize, Deserialize)]
struct StoredToolCall {
    id: String,
    name: String,
    arguments: String,
    result: Option<String>,
    error: Option<String>,
}

impl SessionRow {
    /// The row for a session about to be created. `message_count` starts at
    /// zero and there is no head, whatever the value says: both describe
    /// stored messages, and there are none yet.
    pub(crate) fn new_session(session: &Session) -> Self {
        Self::imported(session, None, 0)
    }

    /// The row for a session created with its messages: `head` and
    /// `message_count` as the store placed them.
    pub(crate) fn imported(session: &Session, head: Option<String>, message_count: i64) -> Self {
        Self {
            id: session.id.to_string(),
            owner: session.owner.as_str().to_owned(),
            title: title_text(session.title.as_ref()),
            system_prompt: system_prompt_text(session.system_prompt.as_ref()),
            model: session.model.as_str().to_owned(),
            created_at: session.created_at.as_micros(),
            updated_at: session.updated_at.as_micros(),
            message_count,
            assistant_id: session.assistant_id.map(|id| id.to_string()),
            head_message_id: head,
        }
    }

    pub(crate) fn into_domain(self) -> Result<Session, StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("sessions row {}: {what}", self.id));
        let id = SessionId::parse(&self.id).map_err(|error| corrupt(error.to_string()))?;
        let owner = Principal::parse(&self.owner).map_err(|error| corrupt(error.to_string()))?;
        let title = self
            .title
            .as_deref()
            .map(Title::parse)
            .transpose()
            .map_err(|error| corrupt(error.to_string()))?;
        let system_prompt = self
            .system_prompt
            .as_deref()
            .map(SystemPrompt::parse)
            .transpose()
            .map_err(|error| corrupt(error.to_string()))?;
        let model = ModelName::parse(&self.model).map_err(|error| corrupt(error.to_string()))?;
        let message_count = u64::try_from(self.message_count)
            .map_err(|_| corrupt(format!("negative message_count {}", self.message_count)))?;
        let assistant_id = self
            .assistant_id
            .as_deref()
            .map(AssistantId::parse)
            .transpose()
            .map_err(|error| corrupt(error.to_string()))?;
        let head_message_id = self
            .head_message_id
            .as_deref()
            .map(MessageId::parse)
            .transpose()
            .map_err(|error| corrupt(error.to_string()))?;
        Ok(Session {
            id,
            owner,
            title,
            system_prompt,
            model,
            assistant_id,
            created_at: Timestamp::from_micros(self.created_at),
            updated_at: Timestamp::from_micros(self.updated_at),
            head_message_id,
            message_count,
        })
    }
}

fn title_text(title: Option<&Title>) -> Option<String> {
    title.map(|title| title.as_str().to_owned())
}

fn system_prompt_text(prompt: Option<&SystemPrompt>) -> Option<String> {
    prompt.map(|prompt| storable(prompt.as_str()))
}

impl SessionChangeset {
    pub(crate) fn of(changes: &SessionChanges, at: Timestamp) -> Self {
        Self {
            title: changes
                .title
                .as_ref()
                .map(|title| title_text(title.as_ref())),
            system_prompt: changes
                .system_prompt
                .as_ref()
                .map(|prompt| system_prompt_text(prompt.as_ref())),
            model: changes
                .model
                .as_ref()
                .map(|model| model.as_str().to_owned()),
            assistant_id: changes
                .assistant_id
                .map(|assistant| assistant.map(|id| id.to_string())),
            updated_at: at.as_micros(),
        }
    }
}

/// The stored form of a message's mutable fields, shared by insert and update.
struct MutableFields {
    prompt_tokens: Option<i64>,
    completion_tokens: Option<i64>,
    error_code: Option<String>,
    error_message: Option<String>,
    tool_calls: Option<String>,
}

impl MutableFields {
    fn of(message: &Message) -> Result<Self, StoreError> {
        let tokens = |count: u64, field: &str| {
            i64::try_from(count).map_err(|_| {
                StoreError::Invalid(format!(
                    "message {}: {field} {count} does not fit a 64-bit integer",
                    message.id
                ))
            })
        };
        let (prompt_tokens, completion_tokens) = match message.usage {
            Some(usage) => (
                Some(tokens(usage.prompt_tokens, "prompt_tokens")?),
                Some(tokens(usage.completion_tokens, "completion_tokens")?),
            ),
            None => (None, None),
        };
        Ok(Self {
            prompt_tokens,
            completion_tokens,
            error_code: message
                .error
                .as_ref()
                .map(|error| error.code.as_str().to_owned()),
            error_message: message.error.as_ref().map(|error| storable(&error.message)),
            tool_calls: encode_tool_calls(&message.tool_calls)?,
        })
    }
}

impl MessageRow {
    /// The row of `message`, at `depth` on its branch.
    pub(crate) fn from_domain(message: &Message, depth: i64) -> Result<Self, StoreError> {
        let fields = MutableFields::of(message)?;
        Ok(Self {
            id: message.id.to_string(),
            session_id: message.session_id.to_string(),
            role: message.role.as_str().to_owned(),
            content: storable(&message.content),
            status: message.status.as_str().to_owned(),
            model: message.model.as_deref().map(storable),
            finish_reason: message.finish_reason.as_deref().map(storable),
            prompt_tokens: fields.prompt_tokens,
            completion_tokens: fields.completion_tokens,
            error_code: fields.error_code,
            error_message: fields.error_message,
            tool_calls: fields.tool_calls,
            created_at: message.created_at.as_micros(),
            completed_at: message.completed_at.map(Timestamp::as_micros),
            assistant_id: message
                .speaker
                .as_ref()
                .map(|speaker| speaker.id.to_string()),
            assistant_name: message
                .speaker
                .as_ref()
                .map(|speaker| storable(&speaker.name)),
            parent_id: message.parent_id.map(|id| id.to_string()),
            depth,
        })
    }

    pub(crate) fn into_domain(self) -> Result<Message, StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("messages row {}: {what}", self.id));
        let id = MessageId::parse(&self.id).map_err(|error| corrupt(error.to_string()))?;
        let session_id =
            SessionId::parse(&self.session_id).map_err(|error| corrupt(error.to_string()))?;
        let parent_id = self
            .parent_id
            .as_deref()
            .map(MessageId::parse)
            .transpose()
            .map_err(|error| corrupt(error.to_string()))?;
        let role = Role::parse(&self.role)
            .ok_or_else(|| corrupt(format!("unknown role `{}`", self.role)))?;
        let status = MessageStatus::parse(&self.status)
            .ok_or_else(|| corrupt(format!("unknown status `{}`", self.status)))?;
        let usage = match (self.prompt_tokens, self.completion_tokens) {
            (None, None) => None,
            (Some(prompt), Some(completion)) => {
                let count = |value: i64| {
                    u64::try_from(value)
                        .map_err(|_| corrupt(format!("negative token count {value}")))
                };
                Some(Usage {
                    prompt_tokens: count(prompt)?,
                    completion_tokens: count(completion)?,
                })
            }
            _ => {
                return Err(corrupt(
                    "only one of prompt_tokens and completion_tokens is set".to_owned(),
                ))
            }
        };
        let error = match (self.error_code.as_deref(), self.error_message) {
            (None, None) => None,
            (Some(code), Some(message)) => Some(MessageError {
                code: ErrorCode::parse(code)
                    .ok_or_else(|| corrupt(format!("unknown error code `{code}`")))?,
                message,
            }),
            _ => {
                return Err(corrupt(
                    "only one of error_code and error_message is set".to_owned(),
                ))
            }
        };
        let tool_calls = decode_tool_calls(self.tool_calls.as_deref())
            .map_err(|error| corrupt(error.to_string()))?;
        let speaker = match (self.assistant_id.as_deref(), self.assistant_name) {
            (None, None) => None,
            (Some(id), Some(name)) => Some(Speaker {
                id: AssistantId::parse(id).map_err(|error| corrupt(error.to_string()))?,
                name,
            }),
            _ => {
                return Err(corrupt(
                    "only one of assistant_id and assistant_name is set".to_owned(),
                ))
            }
        };
        Ok(Message {
            id,
            session_id,
            parent_id,
            role,
            content: self.content,
            status,
            model: self.model,
            finish_reason: self.finish_reason,
            usage,
            error,
            tool_calls,
            speaker,
            created_at: Timestamp::from_micros(self.created_at),
            completed_at: self.completed_at.map(Timestamp::from_micros),
        })
    }
}

impl MessageChanges {
    pub(crate) fn of(message: &Message) -> Result<Self, StoreError> {
        let fields = MutableFields::of(message)?;
        Ok(Self {
            content: storable(&message.content),
            status: message.status.as_str().to_owned(),
            finish_reason: message.finish_reason.as_deref().map(storable),
            prompt_tokens: fields.prompt_tokens,
            completion_tokens: fields.completion_tokens,
            error_code: fields.error_code,
            error_message: fields.error_message,
            tool_calls: fields.tool_calls,
            completed_at: message.completed_at.map(Timestamp::as_micros),
        })
    }
}

/// A message's `tool_calls` column with the results a client returned: each
/// `(call id, result)` sets that call's result unless it has one already
/// (a result, once stored, stays).
///
/// # Errors
/// [`StoreError::NotFound`] when the message has no call with one of the
/// ids, [`StoreError::Corrupt`] when the stored column cannot be read.
pub(crate) fn with_tool_results(
    tool_calls: Option<&str>,
    results: &[(String, String)],
) -> Result<Option<String>, StoreError> {
    let mut calls = decode_tool_calls(tool_calls)
        .map_err(|error| StoreError::Corrupt(format!("unreadable tool calls: {error}")))?;
    for (id, result) in results {
        let call = calls
            .iter_mut()
            .find(|call| &call.id == id)
            .ok_or(StoreError::NotFound)?;
        if call.result.is_none() {
            call.result = Some(result.clone());
        }
    }
    encode_tool_calls(&calls)
}

/// NULL for no tool calls, so that the common case stores nothing.
fn encode_tool_calls(calls: &[ToolCall]) -> Result<Option<String>, StoreError> {
    if calls.is_empty() {
        return Ok(None);
    }
    let stored: Vec<StoredToolCall> = calls
        .iter()
        .map(|call| StoredToolCall {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
            result: call.result.clone(),
            error: call.error.clone(),
        })
        .collect();
    serde_json::to_string(&stored)
        .map(Some)
        .map_err(|error| StoreError::Invalid(format!("cannot encode tool calls: {error}")))
}

fn decode_tool_calls(text: Option<&str>) -> Result<Vec<ToolCall>, serde_json::Error> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let stored: Vec<StoredToolCall> = serde_json::from_str(text)?;
    Ok(stored
        .into_iter()
        .map(|call| ToolCall {
            id: call.id,
            name: call.name,
            arguments: call.arguments,
            result: call.result,
            error: call.error,
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(owner: &str) -> SessionRow {
        let session = Session::new(
            Principal::anonymous(),
            None,
            None,
            ModelName::parse("m").unwrap(),
        );
        SessionRow {
            owner: owner.to_owned(),
            ..SessionRow::new_session(&session)
        }
    }

    /// No query can ask for a principal that does not parse, so a bad owner
    /// only shows up in a damaged file; it is then corrupt, not a panic.
    #[test]
    fn a_stored_owner_that_is_no_principal_is_corrupt() {
        assert_eq!(row("alice").into_domain().unwrap().owner.as_str(), "alice");
        for bad in ["", " ", "a\nb"] {
            let error = row(bad).into_domain().unwrap_err();
            assert!(
                matches!(&error, StoreError::Corrupt(detail) if detail.contains("principal")),
                "{bad:?}: {error:?}"
            );
        }
    }
}

/// A reply still `streaming`, as `streaming_replies` reads it (raw SQL, so
/// the partial index answers: see the backends' `queries.rs`).
#[derive(Debug, QueryableByName)]
pub(crate) struct StreamingReplyRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    session_id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
}

impl StreamingReplyRow {
    pub(crate) fn into_domain(self) -> Result<(SessionId, MessageId), StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("messages row {}: {what}", self.id));
        Ok((
            SessionId::parse(&self.session_id).map_err(|error| corrupt(error.to_string()))?,
            MessageId::parse(&self.id).map_err(|error| corrupt(error.to_string()))?,
        ))
    }
}
