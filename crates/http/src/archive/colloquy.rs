//! Reading a `colloquy.v1` export back: its session's settings and head,
//! and every message under its `parent_id`, with its role, text, name,
//! status, model, usage, tool calls and times.

use std::time::UNIX_EPOCH;

use colloquy_app::{ImportedConversation, ImportedMessage};
use colloquy_domain::{
    ErrorCode, Message, MessageError, MessageId, MessageStatus, Role, SessionId, Timestamp,
    ToolCall, Usage,
};
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::{checked_time, from_value, quoted};
use crate::wire::EXPORT_FORMAT;
use crate::ApiError;

/// A `colloquy.v1` export (`GET …/export?format=json`), read back as a new
/// session. Only the fields below are read; the rest (ids of sessions and
/// assistants, counts) are the service's to give anew.
///
/// Its parts are read one by one (`format` first), so that what is wrong
/// is told with where it is.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ColloquyImport {
    #[schema(pattern = "^colloquy\\.v1$", example = "colloquy.v1")]
    pub format: String,
    #[serde(default)]
    #[schema(value_type = SessionIn, required = true)]
    pub session: Value,
    /// Every message of every branch, in any order.
    #[serde(default)]
    #[schema(value_type = Vec<MessageIn>, required = true)]
    pub messages: Value,
}

/// The session of an export, as an import reads it.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(as = ColloquyImportSession)]
struct SessionIn {
    title: Option<String>,
    system_prompt: Option<String>,
    /// Kept when this server offers it; else the default model.
    model: Option<String>,
    #[schema(format = DateTime)]
    created_at: Option<String>,
    /// The `id` of the message ending the active branch; the newest leaf
    /// when left out.
    head_message_id: Option<String>,
}

/// A message of an export, as an import reads it.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ColloquyImportMessage)]
struct MessageIn {
    /// Any text unique in the export: it only links messages to their parents.
    id: String,
    /// The `id` of the message this one follows; `null` for a first one.
    parent_id: Option<String>,
    #[schema(pattern = "^(user|assistant)$")]
    role: String,
    content: String,
    /// `complete` when left out; a reply exported while it streamed comes
    /// back `interrupted`.
    #[schema(pattern = "^(complete|streaming|cancelled|failed|interrupted)$")]
    status: Option<String>,
    model: Option<String>,
    finish_reason: Option<String>,
    usage: Option<UsageIn>,
    error: Option<ErrorIn>,
    tool_calls: Option<Vec<ToolCallIn>>,
    /// The name of the assistant that wrote it.
    name: Option<String>,
    #[schema(format = DateTime)]
    created_at: String,
    #[schema(format = DateTime)]
    completed_at: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ColloquyImportUsage)]
struct UsageIn {
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    prompt_tokens: u64,
    #[schema(maximum = 9_223_372_036_854_775_807_u64)]
    completion_tokens: u64,
}

impl UsageIn {
    /// The counts, which the store keeps as signed 64-bit integers.
    fn checked(self, what: &str) -> Result<Usage, ApiError> {
        let count = |value: u64, field: &str| {
            if i64::try_from(value).is_ok() {
                Ok(value)
            } else {
                Err(ApiError::bad_import(format!(
                    "{what}: `usage.{field}` is {value}, more than a count can be"
                )))
            }
        };
        Ok(Usage {
            prompt_tokens: count(self.prompt_tokens, "prompt_tokens")?,
            completion_tokens: count(self.completion_tokens, "completion_tokens")?,
        })
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ColloquyImportError)]
struct ErrorIn {
    code: String,
    message: String,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ColloquyImportToolCall)]
struct ToolCallIn {
    id: String,
    name: String,
    arguments: Value,
    result: Option<Value>,
    error: Option<String>,
}

pub(super) fn read(export: ColloquyImport) -> Result<ImportedConversation, ApiError> {
    if export.format != EXPORT_FORMAT {
        return Err(ApiError::bad_import(format!(
            "`format` is `{}`: colloquy imports its own `{EXPORT_FORMAT}` exports \
             (and ChatGPT conversations, which have no `format`)",
            quoted(&export.format)
        )));
    }
    let required = |value: Value, name: &str| {
        if value.is_null() {
            Err(ApiError::bad_import(format!("the export has no `{name}`")))
        } else {
            Ok(value)
        }
    };
    let session: SessionIn = from_value(required(export.session, "session")?, "`session`")?;
    let messages: Vec<Value> = from_value(required(export.messages, "messages")?, "`messages`")?;
    let created_at = session
        .created_at
        .as_deref()
        .map(|raw| time(raw, "`session.created_at`"))
        .transpose()?;
    // The messages get the session's id when they are stored.
    let placeholder = SessionId::from_uuid(uuid::Uuid::nil());
    let messages = messages
        .into_iter()
        .enumerate()
        .map(|(index, value)| {
            let what = format!("`messages[{index}]`");
            message(from_value(value, &what)?, placeholder, &what)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(ImportedConversation {
        title: session.title,
        system_prompt: session.system_prompt,
        model: session.model,
        created_at,
        messages,
        head: session.head_message_id,
    })
}

fn message(raw: MessageIn, session_id: SessionId, what: &str) -> Result<ImportedMessage, ApiError> {
    let role = Role::parse(&raw.role).ok_or_else(|| {
        ApiError::bad_import(format!(
            "{what}: `role` is `{}`; a message is `user` or `assistant`",
            quoted(&raw.role)
        ))
    })?;
    let status = match raw.status.as_deref() {
        None => MessageStatus::Complete,
        Some(status) => MessageStatus::parse(status).ok_or_else(|| {
            ApiError::bad_import(format!(
                "{what}: `status` is `{}`, not one of a message's statuses",
                quoted(status)
            ))
        })?,
    };
    let error = raw
        .error
        .map(|error| {
            let code = ErrorCode::parse(&error.code).ok_or_else(|| {
                ApiError::bad_import(format!(
                    "{what}: `error.code` is `{}`, not one of colloquy's error codes",
                    quoted(&error.code)
                ))
            })?;
            Ok::<_, ApiError>(MessageError {
                code,
                message: error.message,
            })
        })
        .transpose()?;
    let created_at = time(&raw.created_at, &format!("{what}: `created_at`"))?;
    let completed_at = raw
        .completed_at
        .as_deref()
        .map(|raw| time(raw, &format!("{what}: `completed_at`")))
        .transpose()?;
    let message = Message {
        id: MessageId::new(),
        session_id,
        parent_id: None,
        role,
        content: raw.content,
        status,
        model: raw.model,
        finish_reason: raw.finish_reason,
        usage: raw.usage.map(|usage| usage.checked(what)).transpose()?,
        error,
        tool_calls: raw
            .tool_calls
            .unwrap_or_default()
            .into_iter()
            .map(tool_call)
            .collect(),
        speaker: None,
        created_at,
        completed_at,
    };
    Ok(ImportedMessage {
        key: raw.id,
        parent: raw.parent_id,
        message,
        name: raw.name,
    })
}

/// The export shows a tool's arguments and result parsed where they were
/// JSON (`wire::json_or_string`): they go back to the JSON text they were.
fn tool_call(raw: ToolCallIn) -> ToolCall {
    let text = |value: Value| match value {
        Value::String(text) => text,
        json => json.to_string(),
    };
    ToolCall {
        id: raw.id,
        name: raw.name,
        arguments: text(raw.arguments),
        result: raw.result.map(text),
        error: raw.error,
    }
}

/// An RFC 3339 time in UTC, as the export writes them.
fn time(raw: &str, what: &str) -> Result<Timestamp, ApiError> {
    let bad = || {
        ApiError::bad_import(format!(
            "{what} is `{}`, not an RFC 3339 time in UTC from 1970 to 9999 \
             (such as `2026-11-23T10:15:30.123456Z`)",
            quoted(raw)
        ))
    };
    let time = humantime::parse_rfc3339_weak(raw.trim()).map_err(|_| bad())?;
    let micros = time
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|since| i64::try_from(since.as_micros()).ok())
        .ok_or_else(bad)?;
    checked_time(micros).ok_or_else(bad)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::archive::read_import;

    fn import(body: &Value) -> Result<ImportedConversation, ApiError> {
        read_import(body.to_string().as_bytes())
    }

    fn detail(error: &ApiError) -> String {
        serde_json::to_value(error).unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    #[test]
    fn an_export_is_read_back_with_its_tree_times_names_and_calls() {
        let body = json!({
            "format": "colloquy.v1",
            "session": {"title": "Lisbon", "model": "gpt-4o-mini", "system_prompt": null,
                "created_at": "2026-11-23T10:15:30.123456Z", "head_message_id": "b2",
                "message_count": 2, "id": "ignored"},
            "messages": [
                {"id": "q", "parent_id": null, "role": "user", "content": "trams?",
                 "status": "complete", "created_at": "2026-11-23T10:15:31Z",
                 "completed_at": "2026-11-23T10:15:31Z", "siblings": {"ids": ["q"], "index": 0}},
                {"id": "b1", "parent_id": "q", "role": "assistant", "content": "The 28.",
                 "status": "failed", "model": "gpt-4o-mini", "finish_reason": null,
                 "usage": {"prompt_tokens": 3, "completion_tokens": 4},
                 "error": {"code": "upstream_timeout", "message": "too slow"},
                 "tool_calls": [{"id": "c1", "name": "calculator", "arguments": {"expression": "1+1"},
                    "result": {"value": 2}, "error": null}],
                 "assistant_id": "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e10", "name": "Guide",
                 "created_at": "2026-11-23T10:15:32.5Z", "completed_at": null},
                {"id": "b2", "parent_id": "q", "role": "assistant", "content": "Tram 28.",
                 "created_at": "2026-11-23T10:16:00Z"}
            ]
        });
        let read = import(&body).unwrap();
        assert_eq!(read.title.as_deref(), Some("Lisbon"));
        assert_eq!(read.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(read.system_prompt, None);
        assert_eq!(read.head.as_deref(), Some("b2"));
        assert_eq!(
            read.created_at.map(Timestamp::as_micros),
            Some(1_795_428_930_123_456)
        );
        let keys: Vec<(&str, Option<&str>)> = read
            .messages
            .iter()
            .map(|m| (m.key.as_str(), m.parent.as_deref()))
            .collect();
        assert_eq!(keys, [("q", None), ("b1", Some("q")), ("b2", Some("q"))]);
        let failed = &read.messages[1];
        assert_eq!(failed.name.as_deref(), Some("Guide"));
        assert_eq!(failed.message.role, Role::Assistant);
        assert_eq!(failed.message.status, MessageStatus::Failed);
        assert_eq!(
            failed.message.error.as_ref().map(|e| e.code),
            Some(ErrorCode::UpstreamTimeout)
        );
        assert_eq!(
            failed.message.usage,
            Some(Usage {
                prompt_tokens: 3,
                completion_tokens: 4
            })
        );
        let call = &failed.message.tool_calls[0];
        assert_eq!(call.arguments, r#"{"expression":"1+1"}"#);
        assert_eq!(call.result.as_deref(), Some(r#"{"value":2}"#));
        assert_eq!(failed.message.created_at.as_micros(), 1_795_428_932_500_000);
        assert_eq!(read.messages[2].message.status, MessageStatus::Complete);
        assert_eq!(read.messages[2].name, None);
    }

    #[test]
    fn what_is_wrong_is_said_with_where() {
        let message = |fields: Value| {
            let mut message = json!({"id": "a", "role": "user", "content": "hi",
                "created_at": "2026-11-23T10:15:31Z"});
            for (key, value) in fields.as_object().unwrap() {
                message[key] = value.clone();
            }
            json!({"format": "colloquy.v1", "session": {}, "messages": [message]})
        };
        for (fields, says) in [
            (
                json!({"role": "system"}),
                "`messages[0]`: `role` is `system`",
            ),
            (json!({"status": "done"}), "`status` is `done`"),
            (
                json!({"created_at": "yesterday"}),
                "`created_at` is `yesterday`",
            ),
            (
                json!({"created_at": "1969-12-31T23:59:59Z"}),
                "from 1970 to 9999",
            ),
            (
                json!({"content": 7}),
                "`messages[0]`: invalid type: integer `7`",
            ),
            (
                json!({"error": {"code": "oops", "message": "m"}}),
                "`error.code` is `oops`",
            ),
            (
                json!({"usage": {"prompt_tokens": u64::MAX, "completion_tokens": 1}}),
                "`usage.prompt_tokens` is 18446744073709551615",
            ),
        ] {
            let error = import(&message(fields)).unwrap_err();
            assert!(
                detail(&error).contains(says),
                "{} should say {says}",
                detail(&error)
            );
        }
        let bad_session =
            json!({"format": "colloquy.v1", "session": {"created_at": 5}, "messages": []});
        assert!(detail(&import(&bad_session).unwrap_err()).starts_with("`session`: invalid type"));
        let missing_id = json!({"format": "colloquy.v1", "session": {},
            "messages": [{"role": "user", "content": "hi", "created_at": "2026-11-23T10:15:31Z"}]});
        assert!(detail(&import(&missing_id).unwrap_err()).contains("missing field `id`"));
    }
}
