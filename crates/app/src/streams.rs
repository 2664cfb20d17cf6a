//! What a client reads: a session's events ([`Subscription`]), or one
//! reply's ([`ReplyEvents`], the stream of a send).

use std::sync::Arc;

use colloquy_domain::{MessageId, SessionId};
use colloquy_ports::{EventKind, EventLog, EventStream, Permit, SessionEvent};
use futures::{Stream, StreamExt};

/// One client's view of a session's events: every event after its cursor,
/// once and in order, a `stream.resync` where it would otherwise miss some,
/// then live ones. It ends when the session is deleted or the server stops.
pub struct Subscription {
    events: EventStream,
    /// The subscriber's place under its open-streams limit, given back
    /// when the subscription is dropped.
    place: Option<Box<dyn Permit>>,
}

impl std::fmt::Debug for Subscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription").finish_non_exhaustive()
    }
}

impl Subscription {
    pub(crate) fn new(events: EventStream) -> Self {
        Self {
            events,
            place: None,
        }
    }

    pub(crate) fn holding(mut self, place: Box<dyn Permit>) -> Self {
        self.place = Some(place);
        self
    }

    /// The next event, waiting for it if need be; `None` once the stream ended.
    pub async fn next(&mut self) -> Option<Arc<SessionEvent>> {
        self.events.next().await
    }

    /// The subscription as a stream of events.
    pub fn into_stream(self) -> impl Stream<Item = Arc<SessionEvent>> + Send + 'static {
        let place = self.place;
        // The stream owns the place now: it is given back when the stream
        // (the client's connection) is dropped.
        self.events.inspect(move |_| {
            let _ = &place;
        })
    }
}

/// The events of one send: from the turn's first `message.created` to the
/// final event of its last reply, then the end, whatever the session does
/// next.
///
/// When the client falls so far behind that it is told to resync, and its
/// turn ended meanwhile, the stream ends right after the `stream.resync`:
/// the replies' final states are in the history the client is told to reload.
pub struct ReplyEvents {
    events: Subscription,
    /// The turn's first reply: the one its slot was claimed for.
    turn: MessageId,
    /// The turn's last reply, whose final event ends the stream.
    reply: MessageId,
    session: SessionId,
    log: Arc<dyn EventLog>,
    ended: bool,
}

impl std::fmt::Debug for ReplyEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplyEvents")
            .field("reply", &self.reply)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

impl ReplyEvents {
    pub(crate) fn new(
        events: Subscription,
        turn: MessageId,
        reply: MessageId,
        session: SessionId,
        log: Arc<dyn EventLog>,
    ) -> Self {
        Self {
            events,
            turn,
            reply,
            session,
            log,
            ended: false,
        }
    }

    /// The next event of this turn; `None` after its last reply's final event.
    pub async fn next(&mut self) -> Option<Arc<SessionEvent>> {
        if self.ended {
            return None;
        }
        let event = self.events.next().await?;
        self.ended = match &event.kind {
            EventKind::StreamResync(_) => {
                !turn_still_runs(self.log.as_ref(), self.session, self.turn).await
            }
            kind => kind
                .finished_message()
                .is_some_and(|message| message.id == self.reply),
        };
        Some(event)
    }

    /// The events as a stream.
    pub fn into_stream(self) -> impl Stream<Item = Arc<SessionEvent>> + Send + 'static {
        futures::stream::unfold(self, |mut events| async move {
            let event = events.next().await?;
            Some((event, events))
        })
    }
}

async fn turn_still_runs(log: &dyn EventLog, session: SessionId, turn: MessageId) -> bool {
    // When the log cannot say, end: the client reloads either way.
    log.active_reply(session)
        .await
        .is_ok_and(|active| active == Some(turn))
}
