//! Naming a session after its first reply.
//!
//! The model is asked for `{"title": "…"}` through a JSON-schema structured
//! output. What it answers is checked (one line, not blank, at most
//! [`MAX_TITLE_CHARS`]); when it fails or answers junk, the first words of
//! the user's message are the title instead. Either way the session gets a
//! title, and its subscribers a `session.updated`.

use std::sync::Arc;

use colloquy_domain::{Principal, SessionId, Timestamp, Title};
use colloquy_ports::{
    ChatRepository, ChatRequest, EventKind, EventLog, LlmClient, PromptMessage, PromptRole,
};
use serde::Deserialize;
use serde_json::json;

use crate::structured::{complete, json_schema};
use crate::LlmPolicy;

/// Longest title generated: what fits a sidebar entry.
pub(crate) const MAX_TITLE_CHARS: usize = 60;

/// How much of the first exchange the model reads to name it.
const MAX_EXCERPT_CHARS: usize = 2_000;

const INSTRUCTIONS: &str =
    "You name conversations. Answer with a JSON object {\"title\": \"…\"} whose \
title says in at most six words what the conversation is about, in the language the user wrote in. \
One line, at most 60 characters, no quotes, no trailing punctuation.";

/// What naming a session needs to know, gathered when its first reply started.
#[derive(Debug, Clone)]
pub(crate) struct TitleJob {
    pub(crate) session_id: SessionId,
    pub(crate) model: String,
    pub(crate) question: String,
}

/// Everything a title task uses, owned so that it can run on its own.
pub(crate) struct Titler {
    pub(crate) repo: Arc<dyn ChatRepository>,
    /// The session's owner, whom the title's write is scoped to.
    pub(crate) owner: Principal,
    pub(crate) llm: Arc<dyn LlmClient>,
    pub(crate) events: Arc<dyn EventLog>,
    pub(crate) policy: LlmPolicy,
}

impl Titler {
    /// Names the session of `job`, whose first reply was `answer`, unless it
    /// got a title in the meantime. Failures are logged: a session without a
    /// title is no worse than before.
    pub(crate) async fn name_session(self, job: TitleJob, answer: String) {
        let title = match complete(self.llm.as_ref(), &self.policy, &request(&job, &answer)).await {
            Ok(text) => parse_title(&text).unwrap_or_else(|| {
                tracing::info!(session_id = %job.session_id, answer = %text, "the model's title was unusable; using the first words");
                fallback_title(&job.question)
            }),
            Err(error) => {
                tracing::info!(session_id = %job.session_id, %error, "the model could not name the session; using the first words");
                fallback_title(&job.question)
            }
        };
        // Only an untitled session is named, in one conditional write: a
        // title the user gave while the model was thinking wins, and nothing
        // else the user changed meanwhile is written back.
        let session = match self
            .repo
            .set_title_if_untitled(&self.owner, job.session_id, &title, Timestamp::now())
            .await
        {
            Ok(Some(session)) => session,
            Ok(None) => return,
            Err(error) => {
                tracing::debug!(session_id = %job.session_id, %error, "could not store the session's title");
                return;
            }
        };
        if let Err(error) = self
            .events
            .publish(job.session_id, EventKind::SessionUpdated(session))
            .await
        {
            tracing::warn!(session_id = %job.session_id, %error, "could not announce the session's title");
        }
    }
}

fn request(job: &TitleJob, answer: &str) -> ChatRequest {
    let schema = json!({
        "type": "object",
        "properties": {"title": {"type": "string", "description": "The conversation's title."}},
        "required": ["title"],
        "additionalProperties": false
    });
    let mut request = ChatRequest::new(
        job.model.clone(),
        vec![
            PromptMessage::new(PromptRole::System, INSTRUCTIONS),
            PromptMessage::new(PromptRole::User, excerpt(&job.question)),
            PromptMessage::new(PromptRole::Assistant, excerpt(answer)),
            PromptMessage::new(PromptRole::User, "Give the conversation above a title."),
        ],
    );
    request.response_format = Some(json_schema("session_title", &schema));
    request
}

fn excerpt(text: &str) -> String {
    text.chars().take(MAX_EXCERPT_CHARS).collect()
}

/// The title in the model's answer, if it is one: JSON with one `title`
/// string that is a single non-blank line of at most [`MAX_TITLE_CHARS`].
pub(crate) fn parse_title(answer: &str) -> Option<Title> {
    #[derive(Deserialize)]
    #[serde(deny_unknown_fields)]
    struct Answer {
        title: String,
    }
    let Answer { title } = serde_json::from_str(answer.trim()).ok()?;
    let title = title.trim();
    if title.chars().count() > MAX_TITLE_CHARS {
        return None;
    }
    Title::parse(title).ok()
}

/// The first words of `question` that fit in a title, with `…` when cut.
pub(crate) fn fallback_title(question: &str) -> Title {
    let clean: String = question
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    let mut title = String::new();
    let mut cut = false;
    for word in clean.split_whitespace() {
        let needed = title.chars().count() + usize::from(!title.is_empty()) + word.chars().count();
        // Leave room for the ellipsis.
        if needed > MAX_TITLE_CHARS - 1 {
            cut = true;
            if title.is_empty() {
                title = word.chars().take(MAX_TITLE_CHARS - 1).collect();
            }
            break;
        }
        if !title.is_empty() {
            title.push(' ');
        }
        title.push_str(word);
    }
    if cut {
        title.push('…');
    }
    Title::parse(&title)
        .unwrap_or_else(|_| Title::parse("New chat").expect("a constant valid title"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_a_short_single_line_title_only() {
        assert_eq!(
            parse_title(r#"{"title": "  Trip to Oslo "}"#)
                .unwrap()
                .as_str(),
            "Trip to Oslo"
        );
        for junk in [
            "Trip to Oslo",
            r#"{"title": ""}"#,
            r#"{"title": "two\nlines"}"#,
            r#"{"title": 42}"#,
            r#"{"name": "Oslo"}"#,
            r#"{"title": "Oslo", "extra": 1}"#,
            &format!(r#"{{"title": "{}"}}"#, "x".repeat(61)),
        ] {
            assert!(parse_title(junk).is_none(), "{junk:?} must be refused");
        }
        assert!(parse_title(&format!(r#"{{"title": "{}"}}"#, "x".repeat(60))).is_some());
    }

    #[test]
    fn falls_back_to_the_first_words_that_fit() {
        assert_eq!(
            fallback_title("hey who are you?").as_str(),
            "hey who are you?"
        );
        assert_eq!(
            fallback_title("  line one\nline two\t ").as_str(),
            "line one line two"
        );
        let long = "Please explain in great detail how the borrow checker decides which lifetimes to infer";
        let title = fallback_title(long);
        assert!(
            title.as_str().chars().count() <= MAX_TITLE_CHARS,
            "{title:?}"
        );
        assert_eq!(
            title.as_str(),
            "Please explain in great detail how the borrow checker…"
        );
        let word = "x".repeat(100);
        assert_eq!(
            fallback_title(&word).as_str().chars().count(),
            MAX_TITLE_CHARS
        );
        assert_eq!(fallback_title("\u{1}\u{2}").as_str(), "New chat");
    }
}
