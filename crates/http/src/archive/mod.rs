//! Conversations in and out of colloquy: reading an import (colloquy's own
//! `colloquy.v1` export, or one conversation of a ChatGPT data export) into
//! the [`ImportedConversation`] the app stores, and writing the Markdown
//! transcript of an export. Which format an import is, its fields say.
//!
//! Reading checks the shape of what was sent and says where it is wrong;
//! whether the messages form a tree the app decides (`app/src/archive.rs`).

mod chatgpt;
mod colloquy;
mod markdown;

use colloquy_app::ImportedConversation;
use colloquy_domain::Timestamp;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use utoipa::ToSchema;

pub use chatgpt::ChatGptConversation;
pub use colloquy::ColloquyImport;
pub(crate) use markdown::{attachment_name, transcript};

use crate::body::parse_json;
use crate::ApiError;

/// What `POST /api/v1/sessions/import` takes: told apart by their fields,
/// `format` for colloquy's own, `mapping` for ChatGPT's.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ImportRequest {
    Colloquy(ColloquyImport),
    ChatGpt(ChatGptConversation),
}

/// The conversation a body holds.
///
/// # Errors
/// `400` for malformed JSON; `422` saying what is wrong for JSON that is
/// neither format, or not a conversation.
pub(crate) fn read_import(body: &[u8]) -> Result<ImportedConversation, ApiError> {
    let value: Value = parse_json(body, "the body")?;
    match detect(value)? {
        ImportRequest::Colloquy(export) => colloquy::read(export),
        ImportRequest::ChatGpt(conversation) => chatgpt::read(conversation),
    }
}

fn detect(value: Value) -> Result<ImportRequest, ApiError> {
    let fields = match &value {
        Value::Object(fields) => fields,
        Value::Array(_) => {
            return Err(ApiError::bad_import(
                "the body is an array: a ChatGPT export's `conversations.json` holds every \
                 conversation; send one of its elements at a time",
            ))
        }
        _ => {
            return Err(ApiError::bad_import(
                "the body must be a JSON object: a `colloquy.v1` export or one conversation \
                 of a ChatGPT export",
            ))
        }
    };
    if fields.contains_key("format") {
        from_value(value, "the export").map(ImportRequest::Colloquy)
    } else if fields.contains_key("mapping") {
        from_value(value, "the ChatGPT conversation").map(ImportRequest::ChatGpt)
    } else {
        Err(ApiError::bad_import(
            "neither a colloquy export (it has no `format`) nor a ChatGPT conversation \
             (it has no `mapping`)",
        ))
    }
}

/// `value` as a `T`, or a `422` naming `what` did not fit.
pub(super) fn from_value<T: DeserializeOwned>(value: Value, what: &str) -> Result<T, ApiError> {
    serde_json::from_value(value).map_err(|error| ApiError::bad_import(format!("{what}: {error}")))
}

/// At most `most` characters of `text`: what an error quotes of a client's key.
pub(super) fn quoted(text: &str) -> String {
    const MOST: usize = 64;
    let mut quoted: String = text.chars().take(MOST).collect();
    if text.chars().nth(MOST).is_some() {
        quoted.push('…');
    }
    quoted
}

/// The times the wire can write (`wire::rfc3339`): from the Unix epoch to
/// the end of 9999, the last year RFC 3339 has. An import's times must fall
/// between them, so that its export says what it said.
const EARLIEST_MICROS: i64 = 0;
const LATEST_MICROS: i64 = 253_402_300_799_999_999;

/// A time of an import, if it is one this service can store and write back.
pub(super) fn checked_time(micros: i64) -> Option<Timestamp> {
    (EARLIEST_MICROS..=LATEST_MICROS)
        .contains(&micros)
        .then(|| Timestamp::from_micros(micros))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn detail_of(error: &ApiError) -> (u64, String) {
        let json = serde_json::to_value(error).unwrap();
        (
            json["status"].as_u64().unwrap(),
            json["detail"].as_str().unwrap().to_owned(),
        )
    }

    #[test]
    fn malformed_json_is_400_and_other_shapes_are_422_saying_why() {
        let (status, _) = detail_of(&read_import(b"{\"format\": ").unwrap_err());
        assert_eq!(status, 400);
        for (body, says) in [
            (&b"[{\"mapping\": {}}]"[..], "send one of its elements"),
            (b"\"hello\"", "must be a JSON object"),
            (b"{\"title\": \"x\"}", "no `mapping`"),
            (
                b"{\"format\": \"colloquy.v2\"}",
                "`format` is `colloquy.v2`",
            ),
            (
                b"{\"format\": 2, \"session\": {}}",
                "the export: invalid type: integer `2`",
            ),
            (
                b"{\"format\": \"colloquy.v1\"}",
                "the export has no `session`",
            ),
            (
                b"{\"format\": \"colloquy.v1\", \"session\": {}, \"messages\": {}}",
                "`messages`: invalid type: map",
            ),
            (
                b"{\"mapping\": []}",
                "the ChatGPT conversation: invalid type",
            ),
        ] {
            let (status, detail) = detail_of(&read_import(body).unwrap_err());
            assert_eq!(status, 422, "{detail}");
            assert!(detail.contains(says), "{detail} should say {says}");
        }
    }

    #[test]
    fn long_keys_are_cut_when_quoted() {
        assert_eq!(quoted("abc"), "abc");
        let long = "x".repeat(100);
        assert_eq!(quoted(&long).chars().count(), 65);
        assert!(quoted(&long).ends_with('…'));
    }
}
