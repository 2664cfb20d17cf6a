//! What the model is sent for a reply: the session's system prompt, as much
//! of its recent history as the context budget allows, and the new message.

use colloquy_domain::{Message, Role, Session};
use colloquy_ports::{ChatRequest, PromptMessage, PromptRole, ToolSpec};

use crate::tokens::{TokenCounter, TOKENS_PER_REPLY};

/// Builds the request for the reply to `new_message`, with `history` (oldest
/// first, without `new_message`) as context.
///
/// The system prompt, the offered tools and the new message always go. The
/// history fills what is left of `context_tokens`, newest first, a whole turn
/// (a user message with its reply) at a time: a turn that does not fit is
/// dropped with every turn before it, so the model never sees a question
/// without its answer or a gap in the middle of the conversation.
pub(crate) fn build_request(
    session: &Session,
    default_system_prompt: &str,
    history: &[Message],
    new_message: &Message,
    context_tokens: usize,
    tools: Vec<ToolSpec>,
) -> ChatRequest {
    let counter = TokenCounter::for_model(session.model.as_str());
    let system_prompt = session
        .system_prompt
        .as_ref()
        .map_or(default_system_prompt, |prompt| prompt.as_str());
    let system = PromptMessage::new(PromptRole::System, system_prompt);
    let new = PromptMessage::new(PromptRole::User, new_message.content.clone());
    let tools_cost: usize = tools
        .iter()
        .map(|tool| {
            counter.text(&tool.name)
                + counter.text(&tool.description)
                + counter.text(&tool.parameters)
        })
        .sum();
    let fixed = counter.message(&system) + counter.message(&new) + TOKENS_PER_REPLY + tools_cost;
    let mut left = context_tokens.saturating_sub(fixed);

    let turns = turns(history);
    let mut kept = 0;
    for turn in turns.iter().rev() {
        let cost: usize = turn.iter().map(|message| counter.message(message)).sum();
        if cost > left {
            break;
        }
        left -= cost;
        kept += 1;
    }
    if kept < turns.len() {
        tracing::debug!(
            session_id = %session.id,
            dropped_turns = turns.len() - kept,
            context_tokens,
            "the oldest history does not fit the context budget"
        );
    }

    let mut messages = vec![system];
    messages.extend(turns[turns.len() - kept..].iter().flatten().cloned());
    messages.push(new);
    let mut request = ChatRequest::new(session.model.as_str(), messages);
    request.tools = tools;
    request
}

/// The history as turns: each user message with the replies that follow it.
fn turns(history: &[Message]) -> Vec<Vec<PromptMessage>> {
    let mut turns: Vec<Vec<PromptMessage>> = Vec::new();
    for message in history {
        let Some(prompt) = as_prompt_message(message) else {
            continue;
        };
        match (message.role, turns.last_mut()) {
            (Role::Assistant, Some(turn)) => turn.push(prompt),
            _ => turns.push(vec![prompt]),
        }
    }
    turns
}

fn as_prompt_message(message: &Message) -> Option<PromptMessage> {
    // A reply that failed before its first word has nothing to contribute,
    // and some upstreams refuse an empty assistant turn.
    if message.content.is_empty() {
        return None;
    }
    let role = match message.role {
        Role::User => PromptRole::User,
        Role::Assistant => PromptRole::Assistant,
    };
    Some(PromptMessage::new(role, message.content.clone()))
}

#[cfg(test)]
mod tests {
    use colloquy_domain::{MessageContent, MessageStatus, ModelName};

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
        let new = user(&session, "third question");
        let cost = |text: &str, role| counter.message(&PromptMessage::new(role, text));
        let fixed = cost("sys", PromptRole::System)
            + cost("third question", PromptRole::User)
            + TOKENS_PER_REPLY;
        let last_turn = cost("second question", PromptRole::User)
            + cost("second answer", PromptRole::Assistant);

        let everything = build_request(&session, "sys", &history, &new, 10_000, Vec::new());
        assert_eq!(texts(&everything).len(), 6);

        // Exactly enough for the last turn, one token short of the one before.
        let one_turn = build_request(
            &session,
            "sys",
            &history,
            &new,
            fixed + last_turn,
            Vec::new(),
        );
        assert_eq!(
            texts(&one_turn),
            ["sys", "second question", "second answer", "third question"]
        );
        let short = build_request(
            &session,
            "sys",
            &history,
            &new,
            fixed + last_turn - 1,
            Vec::new(),
        );
        assert_eq!(
            texts(&short),
            ["sys", "third question"],
            "half a turn is never sent"
        );

        // The system prompt and the new message go even over budget.
        let none = build_request(&session, "sys", &history, &new, 1, Vec::new());
        assert_eq!(texts(&none), ["sys", "third question"]);
    }

    #[test]
    fn a_failed_empty_reply_is_left_out_but_its_question_stays() {
        let session = session();
        let mut failed = Message::streaming_reply(session.id, &session.model);
        failed.finish(MessageStatus::Failed, None);
        let history = vec![user(&session, "lost question"), failed];
        let request = build_request(
            &session,
            "sys",
            &history,
            &user(&session, "again"),
            10_000,
            Vec::new(),
        );
        assert_eq!(texts(&request), ["sys", "lost question", "again"]);
    }
}
