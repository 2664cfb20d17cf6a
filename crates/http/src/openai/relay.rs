//! A reply's events as the `data:` lines of OpenAI's stream.
//!
//! OpenAI's stream can only add text, never take it back, while colloquy's
//! reply may start over (`message.reset`: the upstream dropped and was
//! asked again) or reach a client that fell behind (`stream.resync`). The
//! relay keeps what the client was sent and holds back the new attempt's
//! text until it goes beyond that; the reply's final message, as stored,
//! has the last word: whatever the client lacks of it is sent before the
//! last chunk, and a client whose text the stored reply does not extend is
//! told so with an error rather than left with a different text.

use colloquy_app::EventKind;
use colloquy_domain::{Message, MessageId, MessageStatus};

use super::errors::OpenAiError;
use super::shapes::{finish_reason, Choice, Delta, Header, ToolCallDeltaOut, UsageOut};

/// One `data:` line.
pub(super) type Line = String;

/// The `data:` of the stream's end.
pub(super) const DONE: &str = "[DONE]";

pub(super) struct Relay {
    header: Header,
    reply: MessageId,
    include_usage: bool,
    /// The text the client was sent.
    sent: String,
    /// After a reset: the new attempt's text so far, while it retraces `sent`.
    retracing: Option<String>,
    /// After a resync: deltas may be missing, so text waits for the end.
    catching_up: bool,
    tool_calls: u32,
    ended: bool,
}

impl Relay {
    pub(super) fn new(header: Header, reply: MessageId, include_usage: bool) -> Self {
        Self {
            header,
            reply,
            include_usage,
            sent: String::new(),
            retracing: None,
            catching_up: false,
            tool_calls: 0,
            ended: false,
        }
    }

    /// The first chunk: the role, with an empty content as OpenAI sends it.
    pub(super) fn opening(&self) -> Line {
        self.delta(Delta {
            role: Some("assistant"),
            content: Some(""),
            tool_calls: None,
        })
    }

    /// Whether the client was sent anything of the reply yet.
    pub(super) fn sent_anything(&self) -> bool {
        !self.sent.is_empty() || self.tool_calls > 0
    }

    pub(super) fn ended(&self) -> bool {
        self.ended
    }

    /// The lines `event` makes, the stream's last ones included.
    pub(super) fn on(&mut self, event: &EventKind) -> Vec<Line> {
        if self.ended {
            return Vec::new();
        }
        match event {
            EventKind::MessageDelta { message_id, delta } if *message_id == self.reply => {
                self.text(delta)
            }
            EventKind::MessageReset { message_id } if *message_id == self.reply => {
                if !self.sent.is_empty() {
                    self.retracing = Some(String::new());
                }
                Vec::new()
            }
            EventKind::MessageToolCall {
                message_id,
                tool_call,
            } if *message_id == self.reply => {
                let index = self.tool_calls;
                self.tool_calls += 1;
                vec![self.delta(Delta {
                    tool_calls: Some([ToolCallDeltaOut::new(index, tool_call)]),
                    ..Delta::default()
                })]
            }
            EventKind::MessageCompleted(message) | EventKind::MessageFailed(message)
                if message.id == self.reply =>
            {
                self.end(message)
            }
            EventKind::StreamResync(_) => {
                self.catching_up = true;
                Vec::new()
            }
            _ => Vec::new(),
        }
    }

    /// The stream's end when the events stopped before the reply's last:
    /// the client fell behind and the turn ended meanwhile, or the server
    /// is stopping.
    pub(super) fn cut_short(&mut self) -> Vec<Line> {
        if self.ended {
            return Vec::new();
        }
        self.ended = true;
        vec![error_line(&OpenAiError::stream_lost())]
    }

    fn text(&mut self, delta: &str) -> Vec<Line> {
        if self.catching_up {
            return Vec::new();
        }
        let Some(retraced) = self.retracing.as_mut() else {
            self.sent.push_str(delta);
            return vec![self.content(delta)];
        };
        retraced.push_str(delta);
        if retraced.len() <= self.sent.len() {
            if self.sent.starts_with(retraced.as_str()) {
                return Vec::new();
            }
            return self.diverged();
        }
        if !retraced.starts_with(self.sent.as_str()) {
            return self.diverged();
        }
        let beyond = retraced[self.sent.len()..].to_owned();
        self.retracing = None;
        self.sent.push_str(&beyond);
        vec![self.content(&beyond)]
    }

    fn end(&mut self, reply: &Message) -> Vec<Line> {
        self.ended = true;
        let Some(missing) = reply.content.strip_prefix(self.sent.as_str()) else {
            return vec![error_line(&OpenAiError::stream_diverged())];
        };
        let mut lines = Vec::with_capacity(4);
        if !missing.is_empty() {
            lines.push(self.content(missing));
        }
        match reply.status {
            MessageStatus::Failed | MessageStatus::Interrupted => {
                lines.push(error_line(&OpenAiError::reply_failed(reply.error.as_ref())));
                return lines;
            }
            _ => {}
        }
        let choice = [Choice::of(Delta::default(), Some(finish_reason(reply)))];
        lines.push(json_line(&self.header.chunk(&choice, None)));
        if self.include_usage {
            let usage = reply.usage.map(UsageOut::from);
            lines.push(json_line(&self.header.chunk(&[], usage)));
        }
        lines.push(DONE.to_owned());
        lines
    }

    fn diverged(&mut self) -> Vec<Line> {
        self.ended = true;
        vec![error_line(&OpenAiError::stream_diverged())]
    }

    fn content(&self, text: &str) -> Line {
        self.delta(Delta {
            content: Some(text),
            ..Delta::default()
        })
    }

    fn delta(&self, delta: Delta<'_>) -> Line {
        let choice = [Choice::of(delta, None)];
        json_line(&self.header.chunk(&choice, None))
    }
}

fn json_line(value: &impl serde::Serialize) -> Line {
    // Plain strings and numbers: serializing cannot fail.
    serde_json::to_string(value).unwrap_or_default()
}

/// The line OpenAI's SDKs raise an `APIError` on.
fn error_line(error: &OpenAiError) -> Line {
    json_line(&serde_json::json!({ "error": error.body() }))
}

#[cfg(test)]
mod tests {
    use colloquy_domain::{ModelName, SessionId};

    use super::*;

    fn relay() -> (Relay, Message) {
        let reply = Message::streaming_reply(SessionId::new(), &ModelName::parse("m").unwrap());
        let relay = Relay::new(Header::new(reply.id, 1, "m".to_owned()), reply.id, true);
        (relay, reply)
    }

    fn delta(reply: &Message, text: &str) -> EventKind {
        EventKind::MessageDelta {
            message_id: reply.id,
            delta: text.to_owned(),
        }
    }

    fn texts(lines: &[Line]) -> String {
        lines
            .iter()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .filter_map(|chunk| {
                chunk["choices"][0]["delta"]["content"]
                    .as_str()
                    .map(str::to_owned)
            })
            .collect()
    }

    fn completed(mut reply: Message, text: &str) -> EventKind {
        reply.content = text.to_owned();
        reply.status = MessageStatus::Complete;
        reply.finish_reason = Some("stop".to_owned());
        EventKind::MessageCompleted(reply)
    }

    #[test]
    fn a_retried_reply_that_retraces_the_text_sends_only_what_is_new() {
        let (mut relay, reply) = relay();
        let mut lines = relay.on(&delta(&reply, "Hello "));
        lines.extend(relay.on(&EventKind::MessageReset {
            message_id: reply.id,
        }));
        lines.extend(relay.on(&delta(&reply, "Hel")));
        lines.extend(relay.on(&delta(&reply, "lo wor")));
        lines.extend(relay.on(&delta(&reply, "ld")));
        lines.extend(relay.on(&completed(reply, "Hello world")));
        assert_eq!(texts(&lines), "Hello world");
        assert_eq!(lines.last().map(String::as_str), Some(DONE));
    }

    #[test]
    fn a_retried_reply_that_says_something_else_ends_with_an_error() {
        let (mut relay, reply) = relay();
        let mut lines = relay.on(&delta(&reply, "Hello "));
        lines.extend(relay.on(&EventKind::MessageReset {
            message_id: reply.id,
        }));
        lines.extend(relay.on(&delta(&reply, "Goodbye")));
        assert!(relay.ended());
        assert!(lines.last().unwrap().contains("\"error\""));
        assert!(relay.on(&completed(reply, "Goodbye")).is_empty());
    }

    #[test]
    fn the_stored_reply_fills_in_what_a_resync_skipped() {
        let (mut relay, reply) = relay();
        let mut lines = relay.on(&delta(&reply, "one "));
        lines.extend(relay.on(&EventKind::StreamResync(colloquy_app::Resync {
            reason: colloquy_app::ResyncReason::FellBehind,
            oldest_event_id: 9,
        })));
        lines.extend(relay.on(&delta(&reply, "three")));
        lines.extend(relay.on(&completed(reply, "one two three")));
        assert_eq!(texts(&lines), "one two three");
    }

    #[test]
    fn a_failure_after_the_first_token_sends_the_rest_then_the_error() {
        let (mut relay, mut reply) = relay();
        let mut lines = relay.on(&delta(&reply, "partial"));
        reply.content = "partial text".to_owned();
        reply.status = MessageStatus::Failed;
        lines.extend(relay.on(&EventKind::MessageFailed(reply)));
        assert_eq!(texts(&lines), "partial text");
        assert!(lines.last().unwrap().starts_with("{\"error\""));
        assert!(!lines.iter().any(|line| line == DONE));
    }

    #[test]
    fn usage_comes_in_a_chunk_of_its_own_before_done() {
        let (mut relay, mut reply) = relay();
        reply.usage = Some(colloquy_domain::Usage {
            prompt_tokens: 3,
            completion_tokens: 2,
        });
        let lines = relay.on(&completed(reply, "hi"));
        let usage: serde_json::Value = serde_json::from_str(&lines[lines.len() - 2]).unwrap();
        assert_eq!(usage["choices"], serde_json::json!([]));
        assert_eq!(usage["usage"]["total_tokens"], 5);
    }
}
