//! What the model is sent for a reply: the session's system prompt, its
//! history, and the new message.

use colloquy_domain::{Message, Role, Session};
use colloquy_ports::{ChatRequest, PromptMessage, PromptRole};

/// Builds the request for the reply to `new_message`, with `history` (oldest
/// first, without `new_message`) as context.
pub(crate) fn build_request(
    session: &Session,
    default_system_prompt: &str,
    history: &[Message],
    new_message: &Message,
) -> ChatRequest {
    let system_prompt = session
        .system_prompt
        .as_ref()
        .map_or(default_system_prompt, |prompt| prompt.as_str());
    let mut messages = Vec::with_capacity(history.len() + 2);
    messages.push(PromptMessage::new(PromptRole::System, system_prompt));
    messages.extend(history.iter().filter_map(as_prompt_message));
    messages.push(PromptMessage::new(PromptRole::User, new_message.content.clone()));
    ChatRequest::new(session.model.as_str(), messages)
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
