//! The JSON of branches: a listed message with its siblings, and the
//! bodies of regenerating a reply and editing a question.

use colloquy_domain::MessageId;
use colloquy_ports::BranchMessage;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::MessageBody;
use crate::body::parse_id;
use crate::ApiError;

/// The messages sharing a message's parent, its own included, oldest
/// first, and its place among them: what a client shows as "2 / 3".
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = Siblings)]
pub struct SiblingsBody {
    /// Never empty: the message itself is one of them.
    #[schema(value_type = Vec<String>, min_items = 1)]
    pub ids: Vec<String>,
    /// Where the message is in `ids`, from 0.
    #[schema(minimum = 0, example = 1)]
    pub index: usize,
}

/// A message of a branch, as `GET …/messages` lists it.
#[derive(Debug, Serialize, ToSchema)]
#[schema(as = ListedMessage)]
pub struct ListedMessageBody {
    #[serde(flatten)]
    pub message: MessageBody,
    pub siblings: SiblingsBody,
}

impl From<&BranchMessage> for ListedMessageBody {
    fn from(listed: &BranchMessage) -> Self {
        Self {
            message: MessageBody::from(&listed.message),
            siblings: SiblingsBody {
                ids: listed
                    .siblings
                    .ids
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                index: listed.siblings.index,
            },
        }
    }
}

/// `POST …/messages/{message_id}/regenerate`: the body may be left out.
#[derive(Debug, Default, Deserialize, ToSchema)]
pub struct RegenerateRequest {
    /// Stop the reply when the client reading its event stream goes away.
    #[serde(default)]
    pub cancel_on_disconnect: bool,
}

/// `POST …/messages/{message_id}/edit`: the question's new text, asked on a
/// new branch.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[schema(example = json!({"content": "And in winter?"}))]
pub struct EditMessageRequest {
    /// Not blank; at most `COLLOQUY_MAX_MESSAGE_CHARS` characters (32000 unless configured).
    #[schema(max_length = 32000, pattern = "\\S", example = "And in winter?")]
    pub content: String,
    /// The assistants that answer it, in order (1–8), as in a send; left
    /// out, the session's voice answers.
    #[schema(value_type = Option<Vec<String>>, min_items = 1, max_items = 8)]
    pub assistant_ids: Option<Vec<String>>,
    /// Stop the turn when the client reading its event stream goes away.
    #[serde(default)]
    pub cancel_on_disconnect: bool,
}

/// A message's id, or a `400` naming where it was found.
pub fn message_id(raw: &str, name: &str) -> Result<MessageId, ApiError> {
    parse_id(raw, MessageId::parse, name)
}

#[cfg(test)]
mod tests {
    use colloquy_domain::{Message, MessageContent, SessionId};
    use colloquy_ports::Siblings;
    use serde_json::json;

    use super::*;

    #[test]
    fn a_listed_message_is_a_message_with_its_siblings() {
        let session = SessionId::new();
        let first = Message::user(session, MessageContent::parse("one".into(), 100).unwrap());
        let mut second = Message::user(session, MessageContent::parse("two".into(), 100).unwrap());
        second.parent_id = Some(first.id);
        let other = MessageId::new();
        let listed = BranchMessage {
            message: second.clone(),
            siblings: Siblings {
                ids: vec![other, second.id],
                index: 1,
            },
        };
        let json = serde_json::to_value(ListedMessageBody::from(&listed)).unwrap();
        assert_eq!(json["id"], second.id.to_string());
        assert_eq!(json["parent_id"], first.id.to_string());
        assert_eq!(json["content"], "two");
        assert_eq!(
            json["siblings"],
            json!({"ids": [other.to_string(), second.id.to_string()], "index": 1})
        );
        let root = serde_json::to_value(MessageBody::from(&first)).unwrap();
        assert!(root["parent_id"].is_null() && root.get("parent_id").is_some());
        assert!(
            root.get("siblings").is_none(),
            "only listings carry siblings"
        );
    }

    #[test]
    fn an_edit_needs_content_and_a_regenerate_needs_nothing() {
        let edit: EditMessageRequest =
            serde_json::from_str(r#"{"content": "again", "cancel_on_disconnect": true}"#).unwrap();
        assert_eq!(
            (edit.content.as_str(), edit.cancel_on_disconnect),
            ("again", true)
        );
        assert!(edit.assistant_ids.is_none());
        let missing = serde_json::from_str::<EditMessageRequest>("{}").unwrap_err();
        assert!(missing.to_string().contains("content"), "{missing}");
        let regenerate: RegenerateRequest = serde_json::from_str("{}").unwrap();
        assert!(!regenerate.cancel_on_disconnect);
    }
}
