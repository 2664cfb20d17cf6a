//! The event log: what a session's clients are told, kept so that they can
//! come back and resume, and the one reply slot of each session.
//!
//! The core publishes every event of a session here and subscribes its
//! clients from here; it never holds a subscriber itself. One adapter keeps
//! the log in the process; another may keep it where every replica sees it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use colloquy_domain::{Message, MessageId, Session, SessionId, ToolCall};
use futures::stream::BoxStream;

/// What happened in a session, as its subscribers see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventKind {
    MessageCreated(Message),
    MessageDelta {
        message_id: MessageId,
        delta: String,
    },
    /// The final assistant message, `complete` or `cancelled`.
    MessageCompleted(Message),
    MessageToolCall {
        message_id: MessageId,
        tool_call: ToolCall,
    },
    SessionUpdated(Session),
    /// The upstream failed mid-reply and is asked again: discard the text so far.
    MessageReset {
        message_id: MessageId,
    },
    /// The final assistant message, `failed` or `interrupted`.
    MessageFailed(Message),
    /// Events this subscriber asked for are no longer kept: it must reload the
    /// history, then carry on with what follows. Never published: the log
    /// makes one for one subscriber.
    StreamResync(Resync),
}

impl EventKind {
    /// The SSE event name of the contract.
    #[must_use]
    pub const fn name(&self) -> &'static str {
        match self {
            Self::MessageCreated(_) => "message.created",
            Self::MessageDelta { .. } => "message.delta",
            Self::MessageCompleted(_) => "message.completed",
            Self::MessageToolCall { .. } => "message.tool_call",
            Self::SessionUpdated(_) => "session.updated",
            Self::MessageReset { .. } => "message.reset",
            Self::MessageFailed(_) => "message.failed",
            Self::StreamResync(_) => "stream.resync",
        }
    }

    /// The message this event ends, if it is a reply's last event.
    #[must_use]
    pub fn finished_message(&self) -> Option<&Message> {
        match self {
            Self::MessageCompleted(message) | Self::MessageFailed(message) => Some(message),
            _ => None,
        }
    }

    /// About how many bytes this event holds, for the log's byte limit: the
    /// text it carries plus a fixed allowance for ids, times and framing.
    #[must_use]
    pub fn approximate_bytes(&self) -> usize {
        const OVERHEAD: usize = 160;
        let message = |message: &Message| {
            message.content.len()
                + message
                    .tool_calls
                    .iter()
                    .map(tool_call_bytes)
                    .sum::<usize>()
                + message
                    .error
                    .as_ref()
                    .map_or(0, |error| error.message.len())
        };
        OVERHEAD
            + match self {
                Self::MessageCreated(m) | Self::MessageCompleted(m) | Self::MessageFailed(m) => {
                    message(m)
                }
                Self::MessageDelta { delta, .. } => delta.len(),
                Self::MessageToolCall { tool_call, .. } => tool_call_bytes(tool_call),
                Self::SessionUpdated(session) => {
                    session.title.as_ref().map_or(0, |t| t.as_str().len())
                        + session
                            .system_prompt
                            .as_ref()
                            .map_or(0, |p| p.as_str().len())
                        + session.model.as_str().len()
                }
                Self::MessageReset { .. } | Self::StreamResync(_) => 0,
            }
    }
}

fn tool_call_bytes(call: &ToolCall) -> usize {
    call.id.len()
        + call.name.len()
        + call.arguments.len()
        + call.result.as_ref().map_or(0, String::len)
        + call.error.as_ref().map_or(0, String::len)
}

/// Why a subscriber is told to reload instead of being given what it asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ResyncReason {
    /// The id it resumed from is older than what is kept: the events after it
    /// expired, were pushed out by the log's limits, or went with a restart.
    NotKept,
    /// It read more slowly than the session produced events, and the log's
    /// limits pushed out events it had not read yet.
    FellBehind,
    /// The id it resumed from was never given out in this session.
    UnknownEventId,
}

impl ResyncReason {
    /// The `reason` of the contract's `stream.resync` event.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::NotKept => "not_kept",
            Self::FellBehind => "fell_behind",
            Self::UnknownEventId => "unknown_event_id",
        }
    }
}

/// The data of a `stream.resync` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resync {
    pub reason: ResyncReason,
    /// The oldest event the log still keeps for the session (or, when it keeps
    /// none, the id the next event will have).
    pub oldest_event_id: u64,
}

/// An event with its id: a decimal integer, unique in the session and
/// increasing, also across restarts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    pub id: u64,
    pub kind: EventKind,
}

/// One subscriber's events: everything after its cursor, once each and in
/// order, a [`EventKind::StreamResync`] wherever it would otherwise have
/// skipped some, then live events. It ends when the session is closed (after
/// what was published before) or the log shuts down.
pub type EventStream = BoxStream<'static, Arc<SessionEvent>>;

/// Where a subscriber starts reading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAt {
    /// As a new client: the reply streaming now from its first event (when it
    /// is still kept), else only events published from now on.
    Live,
    /// Every event after this id (a client's `Last-Event-ID`).
    After(u64),
}

/// What can go wrong with the event log.
#[derive(Debug, thiserror::Error)]
pub enum EventLogError {
    /// The log cannot be reached right now; trying later may work.
    #[error("the event log is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// A bug, logged and never shown to a client.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

/// A session's reply slot, held by the one reply running in it.
///
/// Whoever holds a claim must end it with [`ReplyClaim::finish`] or
/// [`ReplyClaim::release`]. Implementations also free the slot when a claim
/// is dropped without either, so a reply task that panics or is aborted never
/// leaves its session taken; the core's own guard then stores and announces
/// the reply's end (see `app/src/reply.rs`).
#[async_trait]
pub trait ReplyClaim: Send + Sync + fmt::Debug {
    /// The assistant message the slot was claimed for.
    fn message_id(&self) -> MessageId;

    /// Resolves once someone asked this reply to stop
    /// ([`EventLog::cancel_reply`]); never before.
    async fn cancelled(&self);

    /// Publishes the reply's last event and frees the slot in one step, so a
    /// client that sees the end of a reply can send the next message at once.
    ///
    /// # Errors
    /// As [`EventLog::publish`]; the slot is freed either way.
    async fn finish(self: Box<Self>, last: EventKind) -> Result<u64, EventLogError>;

    /// Frees the slot without an event (the reply never started).
    async fn release(self: Box<Self>);
}

/// Every session's events and reply slot.
#[async_trait]
pub trait EventLog: Send + Sync + fmt::Debug {
    /// Appends an event to the session's log and wakes its subscribers.
    /// Returns the event's id.
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when the log cannot be reached; the
    /// event was not published then.
    async fn publish(&self, session: SessionId, kind: EventKind) -> Result<u64, EventLogError>;

    /// Follows a session's events from `start`. The session need not have
    /// any yet; checking that it exists is the caller's business.
    ///
    /// # Errors
    /// As [`EventLog::publish`].
    async fn subscribe(
        &self,
        session: SessionId,
        start: StartAt,
    ) -> Result<EventStream, EventLogError>;

    /// Takes the session's reply slot for `reply`: `None` when a reply
    /// already holds it.
    ///
    /// # Errors
    /// As [`EventLog::publish`].
    async fn claim_reply(
        &self,
        session: SessionId,
        reply: MessageId,
    ) -> Result<Option<Box<dyn ReplyClaim>>, EventLogError>;

    /// The assistant message of the reply holding the slot, if any.
    ///
    /// # Errors
    /// As [`EventLog::publish`].
    async fn active_reply(&self, session: SessionId) -> Result<Option<MessageId>, EventLogError>;

    /// Asks the reply holding the slot to stop — only if it is the reply of
    /// `only` when that is given (a client cancelling its own reply must not
    /// stop a later one). `false` when no such reply runs.
    ///
    /// # Errors
    /// As [`EventLog::publish`].
    async fn cancel_reply(
        &self,
        session: SessionId,
        only: Option<MessageId>,
    ) -> Result<bool, EventLogError>;

    /// Forgets a deleted session: its subscribers receive what was published
    /// before, then their streams end.
    ///
    /// # Errors
    /// As [`EventLog::publish`].
    async fn close_session(&self, session: SessionId) -> Result<(), EventLogError>;

    /// Ends every subscription this process serves, each after what was
    /// published before (shutdown).
    async fn close_all(&self);

    /// Whether the log can be reached now, for readiness probes. A log in
    /// the process always can.
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when it cannot.
    async fn check(&self) -> Result<(), EventLogError> {
        Ok(())
    }
}
