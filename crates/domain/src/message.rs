use std::fmt;

use crate::{MessageContent, MessageId, ModelName, SessionId, Speaker, Timestamp};

/// Who wrote a message. Tool results are kept inside the assistant message
/// that asked for them, so the history only ever has these two.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    User,
    Assistant,
}

impl Role {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "user",
            Self::Assistant => "assistant",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "user" => Some(Self::User),
            "assistant" => Some(Self::Assistant),
            _ => None,
        }
    }
}

/// Where a message is in its life. A user message is always `Complete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageStatus {
    Complete,
    /// A reply being generated right now.
    Streaming,
    /// Stopped by a client; keeps the text so far.
    Cancelled,
    /// The upstream failed; keeps the text so far and sets `error`.
    Failed,
    /// The server stopped while it streamed; keeps the text so far.
    Interrupted,
}

impl MessageStatus {
    pub const ALL: [Self; 5] = [
        Self::Complete,
        Self::Streaming,
        Self::Cancelled,
        Self::Failed,
        Self::Interrupted,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Complete => "complete",
            Self::Streaming => "streaming",
            Self::Cancelled => "cancelled",
            Self::Failed => "failed",
            Self::Interrupted => "interrupted",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|status| status.as_str() == text)
    }

    /// Whether the message will never change again.
    #[must_use]
    pub const fn is_final(self) -> bool {
        !matches!(self, Self::Streaming)
    }
}

/// Token counts the upstream reported for one reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    pub prompt_tokens: u64,
    pub completion_tokens: u64,
}

/// Why a reply did not finish, in words a client can branch on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    UpstreamRateLimited,
    UpstreamUnavailable,
    UpstreamTimeout,
    UpstreamProtocolError,
    UpstreamRejected,
    Internal,
    /// The server stopped (crash, restart or shutdown) while the reply streamed.
    Interrupted,
}

impl ErrorCode {
    pub const ALL: [Self; 7] = [
        Self::UpstreamRateLimited,
        Self::UpstreamUnavailable,
        Self::UpstreamTimeout,
        Self::UpstreamProtocolError,
        Self::UpstreamRejected,
        Self::Internal,
        Self::Interrupted,
    ];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::UpstreamRateLimited => "upstream_rate_limited",
            Self::UpstreamUnavailable => "upstream_unavailable",
            Self::UpstreamTimeout => "upstream_timeout",
            Self::UpstreamProtocolError => "upstream_protocol_error",
            Self::UpstreamRejected => "upstream_rejected",
            Self::Internal => "internal",
            Self::Interrupted => "interrupted",
        }
    }

    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|code| code.as_str() == text)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The error a failed or interrupted reply carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageError {
    pub code: ErrorCode,
    pub message: String,
}

/// One call of a tool the model made while writing a reply.
///
/// `arguments` and `result` hold JSON text: the domain does not parse JSON,
/// the layers that speak it do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    pub id: String,
    pub name: String,
    pub arguments: String,
    pub result: Option<String>,
    pub error: Option<String>,
}

/// One message of a session's history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub id: MessageId,
    pub session_id: SessionId,
    /// The message this one follows in its branch; `None` for the first.
    /// A session's messages form a tree: regenerating a reply or editing a
    /// question adds a sibling, and nothing is ever overwritten.
    pub parent_id: Option<MessageId>,
    pub role: Role,
    pub content: String,
    pub status: MessageStatus,
    /// The model that wrote an assistant message; `None` for user messages.
    pub model: Option<String>,
    pub finish_reason: Option<String>,
    pub usage: Option<Usage>,
    pub error: Option<MessageError>,
    pub tool_calls: Vec<ToolCall>,
    /// The assistant that wrote an assistant message; `None` for the
    /// session's default voice and for user messages.
    pub speaker: Option<Speaker>,
    pub created_at: Timestamp,
    pub completed_at: Option<Timestamp>,
}

impl Message {
    /// A user's message, complete the moment it exists.
    #[must_use]
    pub fn user(session_id: SessionId, content: MessageContent) -> Self {
        let now = Timestamp::now();
        Self {
            id: MessageId::new(),
            session_id,
            parent_id: None,
            role: Role::User,
            content: content.into_inner(),
            status: MessageStatus::Complete,
            model: None,
            finish_reason: None,
            usage: None,
            error: None,
            tool_calls: Vec::new(),
            speaker: None,
            created_at: now,
            completed_at: Some(now),
        }
    }

    /// The empty assistant message a reply streams into.
    #[must_use]
    pub fn streaming_reply(session_id: SessionId, model: &ModelName) -> Self {
        Self {
            id: MessageId::new(),
            session_id,
            parent_id: None,
            role: Role::Assistant,
            content: String::new(),
            status: MessageStatus::Streaming,
            model: Some(model.as_str().to_owned()),
            finish_reason: None,
            usage: None,
            error: None,
            tool_calls: Vec::new(),
            speaker: None,
            created_at: Timestamp::now(),
            completed_at: None,
        }
    }

    /// The empty message `speaker` (or, with `None`, the session's default
    /// voice) streams its reply into.
    #[must_use]
    pub fn streaming_reply_by(
        session_id: SessionId,
        model: &ModelName,
        speaker: Option<Speaker>,
    ) -> Self {
        Self {
            speaker,
            ..Self::streaming_reply(session_id, model)
        }
    }

    /// Ends a streaming reply with `status`, keeping its text.
    pub fn finish(&mut self, status: MessageStatus, error: Option<MessageError>) {
        self.status = status;
        self.error = error;
        self.completed_at = Some(Timestamp::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_and_codes_round_trip_through_text() {
        for status in MessageStatus::ALL {
            assert_eq!(MessageStatus::parse(status.as_str()), Some(status));
        }
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_str()), Some(code));
        }
        assert_eq!(Role::parse("system"), None);
    }

    #[test]
    fn a_user_message_is_complete_and_a_reply_starts_streaming() {
        let session = SessionId::new();
        let user = Message::user(session, MessageContent::parse("hi".into(), 10).unwrap());
        assert_eq!(user.status, MessageStatus::Complete);
        let model = ModelName::parse("m").unwrap();
        let mut reply = Message::streaming_reply(session, &model);
        assert!(
            user.id < reply.id,
            "the reply sorts after the message it answers"
        );
        assert!(!reply.status.is_final());
        reply.content.push_str("partial");
        reply.finish(MessageStatus::Cancelled, None);
        assert_eq!(reply.content, "partial");
        assert!(reply.completed_at.is_some());
    }
}
