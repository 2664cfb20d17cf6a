//! Reading one conversation of a ChatGPT data export (an element of its
//! `conversations.json`): a tree of nodes in `mapping`, each naming its
//! `parent`. What a person reads there is kept: the user's and the
//! assistant's messages with text. System prompts, tool calls and their
//! output, hidden context and empty nodes are left out, and whatever
//! followed them is joined to the nearest message kept above them.

use std::collections::{HashMap, HashSet};

use colloquy_app::{ImportedConversation, ImportedMessage};
use colloquy_domain::{Message, MessageId, MessageStatus, Role, SessionId, Timestamp};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::{checked_time, from_value, quoted};
use crate::ApiError;

/// One conversation of a ChatGPT data export. Only the fields below are
/// read.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ChatGptConversation {
    pub title: Option<String>,
    /// Seconds since the Unix epoch.
    pub create_time: Option<f64>,
    /// Every node of the conversation's tree, by id.
    #[schema(value_type = HashMap<String, Node>)]
    pub mapping: Map<String, Value>,
    /// The node ending the branch shown last: the active branch.
    pub current_node: Option<String>,
    /// The model of replies that name none.
    pub default_model_slug: Option<String>,
}

/// A node of the tree: a message, or `null` for the root.
#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatGptNode)]
struct Node {
    message: Option<NodeMessage>,
    parent: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatGptMessage)]
struct NodeMessage {
    author: Author,
    content: Content,
    /// Seconds since the Unix epoch.
    create_time: Option<f64>,
    /// Who the message is for: `all` for the conversation, a tool's name
    /// for a call of that tool.
    recipient: Option<String>,
    /// `model_slug`, `is_visually_hidden_from_conversation` and
    /// `finish_details` are read.
    #[schema(value_type = Option<Object>)]
    metadata: Option<Map<String, Value>>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatGptAuthor)]
struct Author {
    /// `user`, `assistant`, `system` or `tool`.
    role: String,
    name: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[schema(as = ChatGptContent)]
struct Content {
    /// `text` and `multimodal_text` hold text; the others (code, tool
    /// output, browsing, reasoning) are left out.
    content_type: String,
    /// Strings (joined) and other parts (images, left out).
    #[schema(value_type = Option<Vec<Object>>)]
    parts: Option<Vec<Value>>,
}

pub(super) fn read(conversation: ChatGptConversation) -> Result<ImportedConversation, ApiError> {
    let ChatGptConversation {
        title,
        create_time,
        mapping,
        current_node,
        default_model_slug,
    } = conversation;
    let parsed = mapping
        .into_iter()
        .map(|(key, value)| {
            let node = from_value(value, &format!("`mapping[\"{}\"]`", quoted(&key)))?;
            Ok((key, node))
        })
        .collect::<Result<Vec<(String, Node)>, ApiError>>()?;
    let nodes: HashMap<&str, &Node> = parsed
        .iter()
        .map(|(key, node)| (key.as_str(), node))
        .collect();
    check_parents(&nodes)?;
    let started = create_time
        .map(|seconds| time(seconds, "`create_time`"))
        .transpose()?;
    // The messages get the session's id when they are stored.
    let placeholder = SessionId::from_uuid(uuid::Uuid::nil());
    let default_model = default_model_slug.as_deref();
    let mut kept: HashMap<&str, Message> = HashMap::new();
    for (&key, node) in &nodes {
        if let Some(message) = &node.message {
            let what = format!("`mapping[\"{}\"].message`", quoted(key));
            if let Some(message) =
                kept_message(message, placeholder, default_model, started, &what)?
            {
                kept.insert(key, message);
            }
        }
    }
    let anchors = Anchors::of(&nodes, &kept)?;
    let mut messages: Vec<ImportedMessage> = Vec::with_capacity(kept.len());
    for (key, message) in kept {
        let node = &nodes[key];
        let name = node
            .message
            .as_ref()
            .and_then(|message| message.author.name.clone())
            .filter(|_| message.role == Role::Assistant);
        messages.push(ImportedMessage {
            key: key.to_owned(),
            parent: anchors.above(node).map(str::to_owned),
            message,
            name,
        });
    }
    let head = match current_node.as_deref() {
        None => None,
        Some(current) => match nodes.get_key_value(current) {
            Some((key, _)) => anchors.of_key(key).map(str::to_owned),
            None => {
                return Err(ApiError::bad_import(format!(
                    "`current_node` is `{}`, which is not in `mapping`",
                    quoted(current)
                )))
            }
        },
    };
    Ok(ImportedConversation {
        title,
        system_prompt: None,
        model: default_model_slug,
        created_at: started,
        messages,
        head,
    })
}

/// The message a node shows a reader, if it shows one.
fn kept_message(
    raw: &NodeMessage,
    session_id: SessionId,
    default_model: Option<&str>,
    started: Option<Timestamp>,
    what: &str,
) -> Result<Option<Message>, ApiError> {
    let Some(role) = Role::parse(&raw.author.role) else {
        return Ok(None);
    };
    let metadata = raw.metadata.as_ref();
    let hidden = metadata
        .and_then(|metadata| metadata.get("is_visually_hidden_from_conversation"))
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let to_a_tool = raw.recipient.as_deref().is_some_and(|to| to != "all");
    let holds_text = matches!(
        raw.content.content_type.as_str(),
        "text" | "multimodal_text"
    );
    if hidden || to_a_tool || !holds_text {
        return Ok(None);
    }
    let text = raw
        .content
        .parts
        .iter()
        .flatten()
        .filter_map(Value::as_str)
        .filter(|part| !part.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n\n");
    if text.trim().is_empty() {
        return Ok(None);
    }
    let created_at = match raw.create_time {
        Some(seconds) => time(seconds, &format!("{what}.create_time"))?,
        None => started.unwrap_or_else(Timestamp::now),
    };
    let meta = |key: &str| metadata.and_then(|metadata| metadata.get(key));
    let (status, finish_reason) = match role {
        Role::User => (MessageStatus::Complete, None),
        Role::Assistant => {
            match meta("finish_details")
                .and_then(|details| details.get("type"))
                .and_then(Value::as_str)
            {
                // The person stopped it: what colloquy calls cancelled.
                Some("interrupted") => (MessageStatus::Cancelled, None),
                Some("max_tokens") => (MessageStatus::Complete, Some("length".to_owned())),
                _ => (MessageStatus::Complete, Some("stop".to_owned())),
            }
        }
    };
    let model = match role {
        Role::User => None,
        Role::Assistant => meta("model_slug")
            .and_then(Value::as_str)
            .or(default_model)
            .map(str::to_owned),
    };
    Ok(Some(Message {
        id: MessageId::new(),
        session_id,
        parent_id: None,
        role,
        content: text,
        status,
        model,
        finish_reason,
        usage: None,
        error: None,
        tool_calls: Vec::new(),
        speaker: None,
        created_at,
        completed_at: Some(created_at),
    }))
}

/// For every node, the nearest kept message at or above it: where what
/// follows a left-out node is joined.
struct Anchors<'a> {
    nearest: HashMap<&'a str, Option<&'a str>>,
}

impl<'a> Anchors<'a> {
    /// Walks up from every node once, remembering each answer, so a long
    /// run of left-out nodes is walked once, not once per node below it.
    fn of(
        nodes: &'a HashMap<&'a str, &'a Node>,
        kept: &HashMap<&'a str, Message>,
    ) -> Result<Self, ApiError> {
        let mut nearest: HashMap<&'a str, Option<&'a str>> = HashMap::with_capacity(nodes.len());
        let mut path: Vec<&'a str> = Vec::new();
        let mut on_path: HashSet<&'a str> = HashSet::new();
        for &start in nodes.keys() {
            path.clear();
            on_path.clear();
            let mut cursor = Some(start);
            let found = loop {
                let Some(key) = cursor else { break None };
                if let Some(&known) = nearest.get(key) {
                    break known;
                }
                if kept.contains_key(key) {
                    break Some(key);
                }
                if !on_path.insert(key) {
                    return Err(ApiError::bad_import(format!(
                        "`mapping`'s nodes follow each other in a circle through `{}`",
                        quoted(key)
                    )));
                }
                path.push(key);
                cursor = parent_key(nodes, key);
            };
            if let Some(anchor) = found {
                nearest.insert(anchor, Some(anchor));
            }
            for &key in &path {
                nearest.insert(key, found);
            }
        }
        Ok(Self { nearest })
    }

    fn of_key(&self, key: &str) -> Option<&'a str> {
        self.nearest.get(key).copied().flatten()
    }

    /// The nearest kept message above `node`, its own parent included.
    fn above(&self, node: &Node) -> Option<&'a str> {
        node.parent
            .as_deref()
            .and_then(|parent| self.of_key(parent))
    }
}

/// The key of `key`'s parent, as it is spelled in `mapping` (every parent
/// is there: [`check_parents`]).
fn parent_key<'a>(nodes: &'a HashMap<&'a str, &'a Node>, key: &str) -> Option<&'a str> {
    let parent = nodes[key].parent.as_deref()?;
    nodes.get_key_value(parent).map(|(&parent, _)| parent)
}

/// Every node follows a node of `mapping`, or none.
fn check_parents(nodes: &HashMap<&str, &Node>) -> Result<(), ApiError> {
    for (key, node) in nodes {
        if let Some(parent) = node.parent.as_deref() {
            if !nodes.contains_key(parent) {
                return Err(ApiError::bad_import(format!(
                    "`mapping[\"{}\"]` follows `{}`, which is not in `mapping`",
                    quoted(key),
                    quoted(parent)
                )));
            }
        }
    }
    Ok(())
}

/// ChatGPT's times: seconds since the Unix epoch, with a fraction.
fn time(seconds: f64, what: &str) -> Result<Timestamp, ApiError> {
    let micros = (seconds * 1e6).round();
    // Within range, the cast is exact to the microsecond.
    #[allow(clippy::cast_possible_truncation)]
    let stored = (micros.is_finite() && micros.abs() < 9.0e18)
        .then(|| checked_time(micros as i64))
        .flatten();
    stored.ok_or_else(|| {
        ApiError::bad_import(format!(
            "{what} is {seconds}, not a time from 1970 to 9999 in seconds since the Unix epoch"
        ))
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::archive::read_import;

    const FIXTURE: &str = include_str!("testdata/chatgpt-conversation.json");

    fn detail(error: &ApiError) -> String {
        serde_json::to_value(error).unwrap()["detail"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn by_key<'a>(read: &'a ImportedConversation, key: &str) -> &'a ImportedMessage {
        read.messages
            .iter()
            .find(|message| message.key == key)
            .unwrap_or_else(|| panic!("{key} was kept"))
    }

    #[test]
    fn what_a_reader_saw_is_kept_and_joined_to_the_nearest_kept_message() {
        let read = read_import(FIXTURE.as_bytes()).unwrap();
        assert_eq!(read.title.as_deref(), Some("Lisbon trams"));
        assert_eq!(read.model.as_deref(), Some("gpt-4o"));
        assert_eq!(
            read.created_at.map(Timestamp::as_micros),
            Some(1_731_340_800_123_456)
        );
        assert_eq!(read.head.as_deref(), Some("f1b4-photo-answer"));
        let mut tree: Vec<(&str, Option<&str>)> = read
            .messages
            .iter()
            .map(|message| (message.key.as_str(), message.parent.as_deref()))
            .collect();
        tree.sort_unstable();
        // The system prompt, the hidden context, the code sent to a tool and
        // its output are left out; what followed them hangs where they did.
        assert_eq!(
            tree,
            [
                ("a6c9-ticket-question", Some("e4a7-answer-one")),
                ("d3f6-question", None),
                ("d9f2-ticket-answer", Some("a6c9-ticket-question")),
                ("e0a3-photo-question", Some("f5b8-answer-two")),
                ("e4a7-answer-one", Some("d3f6-question")),
                ("f1b4-photo-answer", Some("e0a3-photo-question")),
                ("f5b8-answer-two", Some("d3f6-question")),
            ]
        );
        let question = &by_key(&read, "d3f6-question").message;
        assert_eq!(question.role, Role::User);
        assert_eq!(question.content, "Which tram goes up to the castle?");
        assert_eq!(question.created_at.as_micros(), 1_731_340_801_250_000);
        assert_eq!(question.model, None);
        let second = &by_key(&read, "f5b8-answer-two").message;
        assert_eq!(second.role, Role::Assistant);
        assert_eq!(second.model.as_deref(), Some("gpt-4o-mini"));
        assert_eq!(second.finish_reason.as_deref(), Some("stop"));
        // An image is left out of a message's text, its words are kept.
        assert_eq!(
            by_key(&read, "e0a3-photo-question").message.content,
            "What is this building at the last stop?"
        );
        let stopped = &by_key(&read, "f1b4-photo-answer").message;
        assert_eq!(
            stopped.content,
            "That is the Basílica da Estrela,\n\nat the end of line 28."
        );
        assert_eq!(stopped.status, MessageStatus::Cancelled);
    }

    fn node(parent: Option<&str>, role: &str, text: &str) -> Value {
        json!({"parent": parent, "message": {"author": {"role": role},
            "content": {"content_type": "text", "parts": [text]}, "create_time": 1_731_340_801.0}})
    }

    #[test]
    fn a_head_that_is_left_out_moves_up_and_a_missing_time_is_the_conversation_s() {
        let mut tool = node(Some("a"), "tool", "output");
        tool["message"]["create_time"] = Value::Null;
        let mut untimed = node(Some("a"), "assistant", "late");
        untimed["message"]["create_time"] = Value::Null;
        let body = json!({"create_time": 1_700_000_000.5, "current_node": "t",
            "mapping": {"a": node(None, "user", "hi"), "t": tool, "u": untimed}});
        let read = read_import(body.to_string().as_bytes()).unwrap();
        assert_eq!(read.head.as_deref(), Some("a"));
        assert_eq!(
            by_key(&read, "u").message.created_at.as_micros(),
            1_700_000_000_500_000
        );
        assert_eq!(read.messages.len(), 2);
    }

    #[test]
    fn a_broken_tree_is_422_saying_where() {
        let body = |mapping: Value, current: Option<&str>| {
            json!({"mapping": mapping, "current_node": current}).to_string()
        };
        for (body, says) in [
            (
                body(json!({"a": node(Some("ghost"), "user", "hi")}), None),
                "`mapping[\"a\"]` follows `ghost`, which is not in `mapping`",
            ),
            (
                body(
                    json!({"a": node(Some("b"), "system", ""), "b": node(Some("a"), "tool", "")}),
                    None,
                ),
                "in a circle",
            ),
            (
                body(json!({"a": node(None, "user", "hi")}), Some("nowhere")),
                "`current_node` is `nowhere`",
            ),
            (
                body(json!({"a": {"parent": 5}}), None),
                "`mapping[\"a\"]`: invalid type: integer `5`",
            ),
            (
                body(
                    json!({"a": {"message": {"author": {"role": "user"},
                        "content": {"content_type": "text", "parts": ["x"]}, "create_time": -1.0}}}),
                    None,
                ),
                "create_time is -1",
            ),
        ] {
            let error = read_import(body.as_bytes()).unwrap_err();
            assert!(
                detail(&error).contains(says),
                "{} should say {says}",
                detail(&error)
            );
        }
    }
}
