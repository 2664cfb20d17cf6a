//! What the model is sent for a reply: the voice's system prompt, as much
//! of the session's recent history as the context budget allows, and the
//! turn so far (the new message and the answers this turn already has).
//!
//! Several assistants may speak in one session. Each request is written from
//! the point of view of the one answering: its own messages are `assistant`
//! turns; every other voice's message is a `user` turn that carries its
//! author twice — in OpenAI's `name` field (which OpenAI's models read) and as
//! a `Name: ` prefix of the text, since most other servers that speak the
//! API (Ollama, llama.cpp, vLLM's chat templates) drop `name`. Sending them as
//! `assistant` turns instead would make the model take the others' words for
//! its own.

use colloquy_domain::{AssistantId, Message, MessageStatus, Role, SessionId, ToolCall};
use colloquy_ports::{ChatRequest, PromptMessage, PromptRole, ToolCallRequest, ToolSpec};

use crate::history::SharedHistory;
use crate::tokens::{TokenCounter, TOKENS_PER_REPLY};

/// How a message by the session's default voice is attributed when another
/// voice reads it.
const DEFAULT_VOICE_NAME: &str = "Assistant";

/// Everything one reply's request is built from, owned, so that building
/// (which counts tokens) can run on the blocking pool.
pub(crate) struct Prompt {
    pub(crate) session_id: SessionId,
    pub(crate) model: String,
    pub(crate) system_prompt: String,
    /// Who answers: `None` for the session's default voice.
    pub(crate) speaker: Option<AssistantId>,
    /// The session's messages before this turn, oldest first.
    pub(crate) history: SharedHistory,
    /// This turn's messages so far, oldest first: the new user message (none
    /// in a discussion) and the answers of the assistants who spoke before.
    pub(crate) turn: Vec<Message>,
    pub(crate) context_tokens: usize,
    pub(crate) tools: Vec<ToolSpec>,
}

/// Builds the request of one reply.
///
/// The system prompt, the offered tools and the turn so far always go. The
/// history fills what is left of `context_tokens`, newest first, a whole turn
/// (a user message with its replies) at a time: a turn that does not fit is
/// dropped with every turn before it, so the model never sees a question
/// without its answer or a gap in the middle of the conversation.
pub(crate) fn build_request(prompt: &Prompt) -> ChatRequest {
    let counter = TokenCounter::for_model(&prompt.model);
    let system = PromptMessage::new(PromptRole::System, prompt.system_prompt.clone());
    let turn: Vec<PromptMessage> = prompt
        .turn
        .iter()
        .flat_map(|message| as_prompt_messages(message, prompt.speaker))
        .collect();
    let tools_cost: usize = prompt
        .tools
        .iter()
        .map(|tool| {
            counter.text(&tool.name)
                + counter.text(&tool.description)
                + counter.text(&tool.parameters)
        })
        .sum();
    let turn_cost: usize = turn.iter().map(|message| counter.message(message)).sum();
    let fixed = counter.message(&system) + turn_cost + TOKENS_PER_REPLY + tools_cost;
    let mut left = prompt.context_tokens.saturating_sub(fixed);

    let mut turns = turns(&prompt.history, prompt.speaker);
    let mut kept = 0;
    for earlier in turns.iter().rev() {
        let cost: usize = earlier.iter().map(|message| counter.message(message)).sum();
        if cost > left {
            break;
        }
        left -= cost;
        kept += 1;
    }
    if kept < turns.len() {
        tracing::debug!(
            session_id = %prompt.session_id,
            dropped_turns = turns.len() - kept,
            context_tokens = prompt.context_tokens,
            "the oldest history does not fit the context budget"
        );
    }

    // An empty system prompt sends none: a client of the OpenAI-compatible
    // routes that sent no system message gets none added.
    let mut messages: Vec<PromptMessage> = Some(system)
        .filter(|system| !system.content.is_empty())
        .into_iter()
        .collect();
    // Moved, not cloned: the kept history is most of a request's bytes.
    let kept_turns = turns.split_off(turns.len() - kept);
    messages.extend(kept_turns.into_iter().flatten());
    messages.extend(turn);
    let mut request = ChatRequest::new(prompt.model.clone(), messages);
    request.tools.clone_from(&prompt.tools);
    request
}

/// The history as turns: each user message with the replies that follow it.
fn turns(history: &[Message], speaker: Option<AssistantId>) -> Vec<Vec<PromptMessage>> {
    let mut turns: Vec<Vec<PromptMessage>> = Vec::new();
    for message in history {
        let prompt = as_prompt_messages(message, speaker);
        if prompt.is_empty() {
            continue;
        }
        match (message.role, turns.last_mut()) {
            (Role::Assistant, Some(turn)) => turn.extend(prompt),
            _ => turns.push(prompt),
        }
    }
    turns
}

/// `message` as the prompt's messages: one, or none for an empty reply, or
/// for a reply that ended on calls of tools its client runs (through the
/// OpenAI-compatible routes) the assistant turn that made them and a tool
/// turn per result the client returned, so the next reply carries on from
/// them. A reply's calls to colloquy's own tools are not resent: their
/// results are already in its words.
fn as_prompt_messages(message: &Message, speaker: Option<AssistantId>) -> Vec<PromptMessage> {
    let answered: Vec<&ToolCall> = message
        .tool_calls
        .iter()
        .filter(|call| call.result.is_some())
        .collect();
    let ended_on_client_calls = message.role == Role::Assistant
        && message.finish_reason.as_deref() == Some("tool_calls")
        && message.status == MessageStatus::Complete
        && !answered.is_empty();
    if !ended_on_client_calls {
        return as_prompt_message(message, speaker).into_iter().collect();
    }
    let mut asked = PromptMessage::new(PromptRole::Assistant, message.content.clone());
    asked.tool_calls = answered
        .iter()
        .map(|call| ToolCallRequest {
            id: call.id.clone(),
            name: call.name.clone(),
            arguments: call.arguments.clone(),
        })
        .collect();
    let results = answered.into_iter().map(|call| {
        let mut result =
            PromptMessage::new(PromptRole::Tool, call.result.clone().unwrap_or_default());
        result.tool_call_id = Some(call.id.clone());
        result
    });
    std::iter::once(asked).chain(results).collect()
}

/// `message` as the voice `speaker` reads it: its own replies as its own,
/// another voice's as that voice's words (see the module docs).
fn as_prompt_message(message: &Message, speaker: Option<AssistantId>) -> Option<PromptMessage> {
    // A reply that failed before its first word has nothing to contribute,
    // and some upstreams refuse an empty assistant turn.
    if message.content.is_empty() {
        return None;
    }
    if message.role == Role::User {
        return Some(PromptMessage::new(
            PromptRole::User,
            message.content.clone(),
        ));
    }
    let author = message.speaker.as_ref();
    if author.map(|author| author.id) == speaker {
        return Some(PromptMessage::new(
            PromptRole::Assistant,
            message.content.clone(),
        ));
    }
    let name = author.map_or(DEFAULT_VOICE_NAME, |author| author.name.as_str());
    let mut attributed =
        PromptMessage::new(PromptRole::User, format!("{name}: {}", message.content));
    attributed.name = Some(name_field(name));
    Some(attributed)
}

/// `name` as OpenAI's `name` field accepts it: 1 to 64 of `a-z A-Z 0-9 _ -`
/// (anything else becomes `_`).
fn name_field(name: &str) -> String {
    let field: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if field.is_empty() {
        "_".to_owned()
    } else {
        field
    }
}

#[cfg(test)]
mod tests {
    use colloquy_domain::{
        AssistantId, MessageContent, MessageStatus, ModelName, Session, Speaker,
    };

    use super::*;

    fn session() -> Session {
        Session::new(
            colloquy_domain::Principal::anonymous(),
            None,
            None,
            ModelName::parse("gpt-4o-mini").unwrap(),
        )
    }

    fn user(session: &Session, text: &str) -> Message {
        Message::user(
            session.id,
            MessageContent::parse(text.to_owned(), 10_000).unwrap(),
        )
    }

    fn reply(session: &Session, text: &str) -> Message {
        let mut message = Message::streaming_reply(session.id, &session.model);
        message.content = text.to_owned();
        message.finish(MessageStatus::Complete, None);
        message
    }

    fn reply_by(session: &Session, speaker: &Speaker, text: &str) -> Message {
        let mut message = reply(session, text);
        message.speaker = Some(speaker.clone());
        message
    }

    fn prompt(
        session: &Session,
        history: Vec<Message>,
        turn: Vec<Message>,
        budget: usize,
    ) -> Prompt {
        Prompt {
            session_id: session.id,
            model: session.model.as_str().to_owned(),
            system_prompt: "sys".to_owned(),
            speaker: None,
            history: history.into(),
            turn,
            context_tokens: budget,
            tools: Vec::new(),
        }
    }

    fn texts(request: &ChatRequest) -> Vec<&str> {
        request
            .messages
            .iter()
            .map(|m| m.content.as_str())
            .collect()
    }

    #[test]
    fn drops_whole_turns_from_the_oldest_when_the_budget_is_short() {
        let session = session();
        let counter = TokenCounter::for_model("gpt-4o-mini");
        let history = vec![
            user(&session, "first question"),
            reply(&session, "first answer"),
            user(&session, "second question"),
            reply(&session, "second answer"),
        ];
        let new = vec![user(&session, "third question")];
        let cost = |text: &str, role| counter.message(&PromptMessage::new(role, text));
        let fixed = cost("sys", PromptRole::System)
            + cost("third question", PromptRole::User)
            + TOKENS_PER_REPLY;
        let last_turn = cost("second question", PromptRole::User)
            + cost("second answer", PromptRole::Assistant);

        let everything = build_request(&prompt(&session, history.clone(), new.clone(), 10_000));
        assert_eq!(texts(&everything).len(), 6);

        // Exactly enough for the last turn, one token short of the one before.
        let one_turn = build_request(&prompt(
            &session,
            history.clone(),
            new.clone(),
            fixed + last_turn,
        ));
        assert_eq!(
            texts(&one_turn),
            ["sys", "second question", "second answer", "third question"]
        );
        let short = build_request(&prompt(
            &session,
            history.clone(),
            new.clone(),
            fixed + last_turn - 1,
        ));
        assert_eq!(
            texts(&short),
            ["sys", "third question"],
            "half a turn is never sent"
        );

        // The system prompt and the new message go even over budget.
        let none = build_request(&prompt(&session, history, new, 1));
        assert_eq!(texts(&none), ["sys", "third question"]);
    }

    #[test]
    fn a_failed_empty_reply_is_left_out_but_its_question_stays() {
        let session = session();
        let mut failed = Message::streaming_reply(session.id, &session.model);
        failed.finish(MessageStatus::Failed, None);
        let history = vec![user(&session, "lost question"), failed];
        let request = build_request(&prompt(
            &session,
            history,
            vec![user(&session, "again")],
            10_000,
        ));
        assert_eq!(texts(&request), ["sys", "lost question", "again"]);
    }

    #[test]
    fn each_voice_reads_its_own_words_as_its_own_and_the_others_by_name() {
        let session = session();
        let critic = Speaker {
            id: AssistantId::new(),
            name: "Critic".to_owned(),
        };
        let poet = Speaker {
            id: AssistantId::new(),
            name: "Poet Laureate".to_owned(),
        };
        let history = vec![
            user(&session, "hello"),
            reply(&session, "hi from the default voice"),
        ];
        let turn = vec![
            user(&session, "write me a line"),
            reply_by(&session, &poet, "Roses are red"),
            reply_by(&session, &critic, "Derivative."),
        ];
        let mut as_poet = prompt(&session, history, turn, 10_000);
        as_poet.speaker = Some(poet.id);
        let request = build_request(&as_poet);
        let seen: Vec<(PromptRole, Option<&str>, &str)> = request
            .messages
            .iter()
            .map(|m| (m.role, m.name.as_deref(), m.content.as_str()))
            .collect();
        assert_eq!(
            seen,
            [
                (PromptRole::System, None, "sys"),
                (PromptRole::User, None, "hello"),
                (
                    PromptRole::User,
                    Some("Assistant"),
                    "Assistant: hi from the default voice"
                ),
                (PromptRole::User, None, "write me a line"),
                (PromptRole::Assistant, None, "Roses are red"),
                (PromptRole::User, Some("Critic"), "Critic: Derivative."),
            ]
        );

        // The default voice reads the named ones by name, with `name` fit
        // for OpenAI's pattern.
        let mut as_default = as_poet;
        as_default.speaker = None;
        let request = build_request(&as_default);
        assert_eq!(request.messages[2].role, PromptRole::Assistant);
        assert_eq!(request.messages[4].name.as_deref(), Some("Poet_Laureate"));
        assert_eq!(request.messages[4].content, "Poet Laureate: Roses are red");
    }
}
