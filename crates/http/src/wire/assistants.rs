//! The JSON of assistants: the resource, its create and patch bodies, and
//! the `assistant_ids` a send, a discussion or a session names them by.

use colloquy_domain::{Assistant, AssistantId};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::{present, rfc3339};
use crate::body::parse_id;
use crate::ApiError;

/// A named voice with its own system prompt, model and tools.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Assistant)]
pub struct AssistantBody {
    #[schema(format = "uuid", example = "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e10")]
    pub id: String,
    /// Unique among the caller's assistants; what the other voices of a
    /// conversation know it by.
    #[schema(example = "Critic")]
    pub name: String,
    /// Its system prompt; `null` for the session's (or the service's).
    #[schema(required = true, example = "Find the weak point of every answer.")]
    pub instructions: Option<String>,
    #[schema(example = "gpt-4o-mini")]
    pub model: String,
    /// The tools it may call (names from `COLLOQUY_TOOLS`), in order.
    #[schema(example = json!(["calculator"]))]
    pub tools: Vec<String>,
    #[schema(format = DateTime, example = "2026-11-23T10:15:30.123456Z")]
    pub created_at: String,
    #[schema(format = DateTime, example = "2026-11-23T10:15:30.123456Z")]
    pub updated_at: String,
}

impl From<&Assistant> for AssistantBody {
    fn from(assistant: &Assistant) -> Self {
        Self {
            id: assistant.id.to_string(),
            name: assistant.name.as_str().to_owned(),
            instructions: assistant
                .instructions
                .as_ref()
                .map(|instructions| instructions.as_str().to_owned()),
            model: assistant.model.as_str().to_owned(),
            tools: assistant.tools.clone(),
            created_at: rfc3339(assistant.created_at),
            updated_at: rfc3339(assistant.updated_at),
        }
    }
}

/// A new assistant: only `name` is required.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"name": "Critic", "instructions": "Find the weak point of every answer.", "tools": ["calculator"]}))]
pub struct CreateAssistantRequest {
    /// One line, not blank, at most 64 characters once trimmed; unique
    /// among the caller's assistants (`409`).
    #[schema(
        max_length = 64,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\\S[^\\u0000-\\u001f\\u007f-\\u009f]*$",
        example = "Critic"
    )]
    pub name: String,
    /// Not blank. Left out, the session's system prompt (or the
    /// service's) applies.
    #[schema(max_length = 32000, pattern = "\\S")]
    pub instructions: Option<String>,
    /// One of `COLLOQUY_MODELS`; left out, the service's default model.
    #[schema(max_length = 200, pattern = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$")]
    pub model: Option<String>,
    /// Names from `COLLOQUY_TOOLS`; left out, the assistant has none.
    pub tools: Option<Vec<String>>,
}

/// `null` clears `instructions`; a field left out stays as it is.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct PatchAssistantRequest {
    /// As on create; a name cannot be cleared, so `null` leaves it.
    #[schema(
        max_length = 64,
        pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\\S[^\\u0000-\\u001f\\u007f-\\u009f]*$"
    )]
    pub name: Option<String>,
    /// Not blank; `null` removes them.
    #[serde(default, deserialize_with = "present")]
    #[schema(max_length = 32000, pattern = "\\S")]
    pub instructions: Option<Option<String>>,
    /// One of `COLLOQUY_MODELS`; `null` leaves it.
    #[schema(max_length = 200, pattern = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$")]
    pub model: Option<String>,
    /// The whole new list (`[]` for none); `null` leaves it.
    pub tools: Option<Vec<String>>,
}

/// `GET /api/v1/assistants?limit=&after=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AssistantPageQuery {
    /// How many assistants to return, newest first.
    #[param(value_type = Option<u32>, minimum = 1, maximum = 100, default = 20)]
    pub limit: Option<String>,
    /// The last id of the previous page.
    #[param(value_type = Option<String>, format = "uuid")]
    pub after: Option<String>,
}

/// `POST /api/v1/sessions/{id}/replies`: assistants speak next, with no new
/// user message.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"assistant_ids": ["01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e10"]}))]
pub struct RepliesRequest {
    /// The assistants that speak, in order (1–8; one may speak twice).
    #[schema(min_items = 1, max_items = 8, value_type = Vec<String>)]
    pub assistant_ids: Vec<String>,
    /// Stop the turn when the client reading its event stream goes away.
    #[serde(default)]
    pub cancel_on_disconnect: bool,
}

/// An assistant's id, or a `400` naming where it was found.
pub fn assistant_id(raw: &str, name: &str) -> Result<AssistantId, ApiError> {
    parse_id(raw, AssistantId::parse, name)
}

/// The ids a send or a discussion names. Only their syntax is checked here
/// (`400` for one that is not a UUID): how many a turn may name, and whose
/// they are, the use case decides.
pub(crate) fn assistant_ids(raw: &[String]) -> Result<Vec<AssistantId>, ApiError> {
    raw.iter()
        .map(|id| assistant_id(id, "assistant_ids"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn status_of(problem: &ApiError) -> u64 {
        serde_json::to_value(problem).unwrap()["status"]
            .as_u64()
            .unwrap()
    }

    #[test]
    fn assistant_ids_are_parsed_in_order_and_a_malformed_one_is_400() {
        let first = AssistantId::new();
        let second = AssistantId::new();
        let raw = [second.to_string(), first.to_string(), second.to_string()];
        assert_eq!(assistant_ids(&raw), Ok(vec![second, first, second]));
        assert_eq!(
            assistant_ids(&[]),
            Ok(vec![]),
            "counts are the app's to check"
        );
        let malformed = assistant_ids(&[first.to_string(), "bob".to_owned()]).unwrap_err();
        assert_eq!(status_of(&malformed), 400);
        let detail = serde_json::to_value(&malformed).unwrap()["detail"].clone();
        assert!(
            detail.as_str().unwrap().starts_with("assistant_ids: `bob`"),
            "{detail}"
        );
    }

    #[test]
    fn a_patch_tells_a_null_from_a_field_left_out() {
        let cleared: PatchAssistantRequest =
            serde_json::from_str(r#"{"instructions": null}"#).unwrap();
        assert_eq!(cleared.instructions, Some(None));
        let left: PatchAssistantRequest = serde_json::from_str(r#"{"name": "Poet"}"#).unwrap();
        assert_eq!(left.instructions, None);
        assert_eq!(left.name.as_deref(), Some("Poet"));
    }
}
