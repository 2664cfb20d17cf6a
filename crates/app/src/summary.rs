//! A session's summary: counts and usage from the store, prose from the model.
//!
//! The prose is asked for as a JSON-schema structured output and checked
//! field by field; an answer that fails any check is refused whole, never
//! patched up. A summary is cached until the session or any of its messages
//! changes.

use std::collections::hash_map::DefaultHasher;
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, PoisonError};

use colloquy_domain::{Message, Role, Session, SessionId, Timestamp, Usage};
use colloquy_ports::{ChatRequest, PromptMessage, PromptRole};
use serde::Deserialize;
use serde_json::json;

use crate::structured::json_schema;
use crate::tokens::{TokenCounter, TOKENS_PER_REPLY};

/// How many messages of each role a session holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct MessageCounts {
    pub user: u64,
    pub assistant: u64,
    pub total: u64,
}

/// What `GET /api/v1/sessions/{id}/summary` answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSummary {
    pub session_id: SessionId,
    pub message_count: MessageCounts,
    /// The sum of every reply's usage.
    pub usage: Usage,
    pub first_message_at: Option<Timestamp>,
    pub last_message_at: Option<Timestamp>,
    pub summary: String,
    pub highlights: Vec<String>,
    pub topics: Vec<String>,
}

/// The model's part of a summary, validated.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Prose {
    pub(crate) summary: String,
    pub(crate) highlights: Vec<String>,
    pub(crate) topics: Vec<String>,
}

const MAX_SUMMARY_CHARS: usize = 2_000;
const MAX_ITEMS: usize = 10;
const MAX_HIGHLIGHT_CHARS: usize = 300;
const MAX_TOPIC_CHARS: usize = 60;
/// How much of one message the model reads for a summary.
const MAX_EXCERPT_CHARS: usize = 4_000;

const INSTRUCTIONS: &str = "You summarise conversations between a user and an assistant. Answer with a \
JSON object: `summary`, two to four sentences on what was asked and what was answered; `highlights`, up \
to five one-line key points (facts, decisions, answers); `topics`, up to five short topic names of one \
to three words. Write in the language of the conversation and invent nothing that is not in it.";

impl Prose {
    /// What there is to say about a session without messages.
    pub(crate) fn empty() -> Self {
        Self {
            summary: "This session has no messages yet.".to_owned(),
            highlights: Vec::new(),
            topics: Vec::new(),
        }
    }

    /// The model's answer, if every field of it passes.
    ///
    /// # Errors
    /// What is wrong with it, for the log and the problem's detail.
    pub(crate) fn parse(answer: &str) -> Result<Self, String> {
        let prose: Self = serde_json::from_str(answer.trim())
            .map_err(|error| format!("not the JSON asked for: {error}"))?;
        let summary = prose.summary.trim().to_owned();
        if summary.is_empty() {
            return Err("`summary` is empty".to_owned());
        }
        if summary.chars().count() > MAX_SUMMARY_CHARS {
            return Err(format!(
                "`summary` is longer than {MAX_SUMMARY_CHARS} characters"
            ));
        }
        Ok(Self {
            summary,
            highlights: lines("highlights", prose.highlights, MAX_HIGHLIGHT_CHARS)?,
            topics: lines("topics", prose.topics, MAX_TOPIC_CHARS)?,
        })
    }
}

/// Checks a list of one-line items, trimming each.
fn lines(field: &str, items: Vec<String>, max_chars: usize) -> Result<Vec<String>, String> {
    if items.len() > MAX_ITEMS {
        return Err(format!(
            "`{field}` has {} items; at most {MAX_ITEMS} are allowed",
            items.len()
        ));
    }
    items
        .into_iter()
        .enumerate()
        .map(|(index, item)| {
            let item = item.trim().to_owned();
            if item.is_empty() {
                Err(format!("`{field}[{index}]` is empty"))
            } else if item.chars().count() > max_chars {
                Err(format!(
                    "`{field}[{index}]` is longer than {max_chars} characters"
                ))
            } else if item.chars().any(char::is_control) {
                Err(format!("`{field}[{index}]` is not a single line"))
            } else {
                Ok(item)
            }
        })
        .collect()
}

/// The store's part of a summary.
pub(crate) fn tally(session: SessionId, messages: &[Message], prose: Prose) -> SessionSummary {
    let mut counts = MessageCounts::default();
    let mut usage = Usage::default();
    for message in messages {
        match message.role {
            Role::User => counts.user += 1,
            Role::Assistant => counts.assistant += 1,
        }
        if let Some(used) = message.usage {
            usage.prompt_tokens += used.prompt_tokens;
            usage.completion_tokens += used.completion_tokens;
        }
    }
    counts.total = counts.user + counts.assistant;
    SessionSummary {
        session_id: session,
        message_count: counts,
        usage,
        first_message_at: messages.iter().map(|m| m.created_at).min(),
        last_message_at: messages.iter().map(|m| m.created_at).max(),
        summary: prose.summary,
        highlights: prose.highlights,
        topics: prose.topics,
    }
}

/// The structured request for the prose: as much of the conversation as
/// `context_tokens` holds, newest kept, then the instruction.
pub(crate) fn request(
    session: &Session,
    model: &str,
    messages: &[Message],
    context_tokens: usize,
) -> ChatRequest {
    let counter = TokenCounter::for_model(model);
    let system = PromptMessage::new(PromptRole::System, INSTRUCTIONS);
    let ask = PromptMessage::new(PromptRole::User, "Summarise the conversation above.");
    let mut left = context_tokens
        .saturating_sub(counter.message(&system) + counter.message(&ask) + TOKENS_PER_REPLY);
    let mut conversation = Vec::new();
    for message in messages.iter().rev().filter(|m| !m.content.is_empty()) {
        let role = match message.role {
            Role::User => PromptRole::User,
            Role::Assistant => PromptRole::Assistant,
        };
        let excerpt: String = message.content.chars().take(MAX_EXCERPT_CHARS).collect();
        // With several assistants in the conversation, the summary can
        // only say who said what if it is told.
        let text = match &message.speaker {
            Some(speaker) => format!("{}: {excerpt}", speaker.name),
            None => excerpt,
        };
        let prompt = PromptMessage::new(role, text);
        let cost = counter.message(&prompt);
        if cost > left {
            break;
        }
        left -= cost;
        conversation.push(prompt);
    }
    conversation.reverse();
    let item = |max: usize| json!({"type": "string", "maxLength": max});
    let schema = json!({
        "type": "object",
        "properties": {
            "summary": {"type": "string", "maxLength": MAX_SUMMARY_CHARS},
            "highlights": {"type": "array", "items": item(MAX_HIGHLIGHT_CHARS)},
            "topics": {"type": "array", "items": item(MAX_TOPIC_CHARS)}
        },
        "required": ["summary", "highlights", "topics"],
        "additionalProperties": false
    });
    let mut messages = vec![system];
    messages.extend(conversation);
    messages.push(ask);
    let mut request = ChatRequest::new(model, messages);
    request.response_format = Some(json_schema("session_summary", &schema));
    tracing::debug!(session_id = %session.id, messages = request.messages.len(), "asking for a summary");
    request
}

/// What a summary was computed from: any change to the session's settings
/// or to any message (a new one, a reply that went on streaming) changes it.
pub(crate) fn fingerprint(session: &Session, messages: &[Message]) -> u64 {
    let mut hasher = DefaultHasher::new();
    session.updated_at.hash(&mut hasher);
    session.model.as_str().hash(&mut hasher);
    for message in messages {
        message.id.to_string().hash(&mut hasher);
        message.status.as_str().hash(&mut hasher);
        message.content.hash(&mut hasher);
    }
    hasher.finish()
}

/// Summaries computed lately, each with the fingerprint it was computed from,
/// and a turn per session for the requests computing one right now.
#[derive(Debug, Default)]
pub(crate) struct SummaryCache {
    entries: Mutex<HashMap<SessionId, (u64, SessionSummary)>>,
    /// Only sessions someone is summarising have an entry: the last holder
    /// of a turn removes it.
    turns: Arc<Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>>,
}

/// One request's turn at summarising a session; see [`SummaryCache::turn`].
pub(crate) struct SummaryTurn {
    session: SessionId,
    turns: Arc<Mutex<HashMap<SessionId, Arc<tokio::sync::Mutex<()>>>>>,
    lock: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for SummaryTurn {
    fn drop(&mut self) {
        self.guard.take();
        let mut turns = self.turns.lock().unwrap_or_else(PoisonError::into_inner);
        // The map and this turn hold the lock; nobody else waits for it.
        if Arc::strong_count(&self.lock) == 2 {
            turns.remove(&self.session);
        }
    }
}

impl SummaryCache {
    /// Waits until no other request is summarising `session`.
    pub(crate) async fn turn(&self, session: SessionId) -> SummaryTurn {
        let lock = Arc::clone(
            self.turns
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .entry(session)
                .or_default(),
        );
        let guard = Arc::clone(&lock).lock_owned().await;
        SummaryTurn {
            session,
            turns: Arc::clone(&self.turns),
            lock,
            guard: Some(guard),
        }
    }

    /// Enough for every session anyone is looking at; past it the cache
    /// starts over rather than track which entry is the oldest.
    const CAPACITY: usize = 1_024;

    pub(crate) fn get(&self, session: SessionId, fingerprint: u64) -> Option<SessionSummary> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(&session)
            .filter(|(seen, _)| *seen == fingerprint)
            .map(|(_, summary)| summary.clone())
    }

    pub(crate) fn put(&self, fingerprint: u64, summary: SessionSummary) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= Self::CAPACITY && !entries.contains_key(&summary.session_id) {
            entries.clear();
        }
        entries.insert(summary.session_id, (fingerprint, summary));
    }

    pub(crate) fn forget(&self, session: SessionId) {
        self.entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&session);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_complete_answer_and_trims_it() {
        let prose = Prose::parse(r#"{"summary": " Talked. ", "highlights": ["a "], "topics": []}"#)
            .unwrap();
        assert_eq!(
            prose,
            Prose {
                summary: "Talked.".into(),
                highlights: vec!["a".into()],
                topics: vec![]
            }
        );
    }

    #[test]
    fn refuses_junk_field_by_field() {
        let long_topic = format!(
            r#"{{"summary": "s", "highlights": [], "topics": ["{}"]}}"#,
            "t".repeat(61)
        );
        let many = format!(
            r#"{{"summary": "s", "highlights": {}, "topics": []}}"#,
            json!(vec!["h"; 11])
        );
        for junk in [
            "Sure! Here is a summary.",
            r#"{"summary": "s", "highlights": []}"#,
            r#"{"summary": "", "highlights": [], "topics": []}"#,
            r#"{"summary": "s", "highlights": [" "], "topics": []}"#,
            r#"{"summary": "s", "highlights": ["two\nlines"], "topics": []}"#,
            r#"{"summary": "s", "highlights": "one", "topics": []}"#,
            r#"{"summary": "s", "highlights": [], "topics": [], "mood": "good"}"#,
            &long_topic,
            &many,
        ] {
            assert!(Prose::parse(junk).is_err(), "{junk:?} must be refused");
        }
    }

    #[test]
    fn the_summary_is_told_which_assistant_said_what() {
        use colloquy_domain::{AssistantId, Message, MessageStatus, ModelName, Principal, Speaker};
        let session = Session::new(
            Principal::anonymous(),
            None,
            None,
            ModelName::parse("m").unwrap(),
        );
        let mut named = Message::streaming_reply(session.id, &session.model);
        named.content = "Roses are red".into();
        named.speaker = Some(Speaker {
            id: AssistantId::new(),
            name: "Poet".into(),
        });
        named.finish(MessageStatus::Complete, None);
        let mut plain = named.clone();
        plain.speaker = None;
        plain.content = "Hello".into();
        let request = request(&session, "m", &[named, plain], 10_000);
        let texts: Vec<&str> = request
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect();
        assert_eq!(texts[1..3], ["Poet: Roses are red", "Hello"]);
    }
}
