//! The test's clients: session subscribers and the streams of sends, each
//! judged, event by event, against the reference model of its session.

use std::sync::Arc;

use colloquy_app::{EventKind, ReplyEvents, ResyncReason, SessionEvent, Subscription};
use colloquy_domain::MessageId;
use futures::FutureExt;

use super::reference::{ExpectedResync, SessionLog, Start};

enum Feed {
    Session(Subscription),
    Reply(ReplyEvents),
}

/// One client's stream and what it has been given so far.
pub struct Client {
    /// Index of its session among the test's sessions.
    pub session: usize,
    feed: Feed,
    /// For a send's stream: its turn's user message and reply.
    turn: Option<(MessageId, MessageId)>,
    /// The id of the last event it was given (a resync's included);
    /// `None` before the session's first event.
    cursor: Option<u64>,
    /// A resync it must be given before anything else.
    resync_first: Option<ExpectedResync>,
    /// The ids it was given (on any of its connections), for resuming from
    /// one of them.
    pub seen: Vec<u64>,
    /// A send's stream that must end now.
    must_end: bool,
    ended: bool,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("session", &self.session)
            .field("turn", &self.turn)
            .field("cursor", &self.cursor)
            .field("ended", &self.ended)
            .finish_non_exhaustive()
    }
}

/// What one poll of a client's stream gave: `None` while it is pending.
type Polled = Option<Option<Arc<SessionEvent>>>;

impl Client {
    /// A subscriber of the session, starting as the model says it must.
    pub fn subscriber(session: usize, subscription: Subscription, start: Start) -> Self {
        Self {
            session,
            feed: Feed::Session(subscription),
            turn: None,
            cursor: start.cursor,
            resync_first: start.resync,
            seen: Vec::new(),
            must_end: false,
            ended: false,
        }
    }

    /// The stream of a send, which starts at its turn's first event.
    pub fn sender(
        session: usize,
        events: ReplyEvents,
        user: MessageId,
        reply: MessageId,
        first_event: u64,
    ) -> Self {
        Self {
            session,
            feed: Feed::Reply(events),
            turn: Some((user, reply)),
            cursor: Some(first_event - 1),
            resync_first: None,
            seen: Vec::new(),
            must_end: false,
            ended: false,
        }
    }

    /// The client reconnects: its old stream goes, a session subscription
    /// takes its place.
    pub fn reconnect(&mut self, subscription: Subscription, start: Start) {
        let seen = std::mem::take(&mut self.seen);
        *self = Self::subscriber(self.session, subscription, start);
        self.seen = seen;
    }

    /// Reads the next event if one is ready (never waits), and judges it.
    /// `Ok(true)` when it got an event.
    ///
    /// # Errors
    /// What the client was given (or not) that the model rules out.
    pub fn read(&mut self, log: &SessionLog) -> Result<bool, String> {
        if self.ended {
            return Ok(false);
        }
        let polled = match &mut self.feed {
            Feed::Session(subscription) => subscription.next().now_or_never(),
            Feed::Reply(events) => events.next().now_or_never(),
        };
        let got = matches!(polled, Some(Some(_)));
        if matches!(polled, Some(None)) {
            // A finished stream must not be polled again.
            self.ended = true;
        }
        self.judge(polled, log).map(|()| got)
    }

    fn what(&self) -> &'static str {
        if self.turn.is_some() {
            "a send's stream"
        } else {
            "a subscriber"
        }
    }

    fn judge(&mut self, polled: Polled, log: &SessionLog) -> Result<(), String> {
        let what = self.what();
        if self.must_end {
            return match polled {
                Some(None) => Ok(()),
                Some(Some(event)) => Err(format!(
                    "{what} carried event {} ({}) after its reply's end",
                    event.id,
                    event.kind.name()
                )),
                None => Err(format!(
                    "{what} did not end right after its reply's final event (or a resync once \
                     its reply had ended)"
                )),
            };
        }
        if let Some(expected) = self.resync_first.take() {
            let Some(Some(event)) = polled else {
                return Err(format!(
                    "{what} must first be given a stream.resync ({expected:?}), got {}",
                    describe(&polled)
                ));
            };
            let EventKind::StreamResync(resync) = &event.kind else {
                return Err(format!(
                    "{what} must first be given a stream.resync ({expected:?}), got event {} ({})",
                    event.id,
                    event.kind.name()
                ));
            };
            let right = resync.reason == expected.reason
                && expected.id.is_none_or(|id| id == event.id)
                && expected
                    .oldest
                    .is_none_or(|oldest| oldest == resync.oldest_event_id);
            if !right {
                return Err(format!(
                    "{what} was given the stream.resync {{id {}, {resync:?}}} where {expected:?} was due",
                    event.id
                ));
            }
            self.cursor = Some(event.id);
            self.seen.push(event.id);
            return Ok(());
        }

        let next = self.cursor.map(|cursor| cursor + 1).or(log.first_id());
        let behind =
            matches!((next, log.oldest_kept()), (Some(next), Some(oldest)) if next < oldest);
        let available =
            matches!((next, log.newest()), (Some(next), Some(newest)) if next <= newest);
        match polled {
            None if behind => Err(format!(
                "{what} fell behind (it needs event {next:?}, the oldest kept is {:?}) and was \
                 given neither that event nor a stream.resync: a silent skip",
                log.oldest_kept()
            )),
            None if available => Err(format!(
                "{what} was pending though event {next:?} is there for it (newest {:?}, oldest \
                 kept {:?})",
                log.newest(),
                log.oldest_kept()
            )),
            None if log.deleted => Err(format!(
                "{what} of a deleted session did not end once it had everything"
            )),
            None => Ok(()),
            Some(None) => match self.turn {
                Some(_) => Err(format!("{what} ended before its reply's final event")),
                None if !log.deleted => {
                    Err(format!("{what} ended though its session was not deleted"))
                }
                None if available => Err(format!(
                    "{what} of a deleted session ended before event {next:?}, published before \
                     the deletion"
                )),
                None => Ok(()),
            },
            Some(Some(event)) => {
                if let EventKind::StreamResync(resync) = &event.kind {
                    self.judge_resync(&event, resync, next, behind, log)?;
                } else {
                    self.judge_event(&event, next, log)?;
                }
                self.cursor = Some(event.id);
                self.seen.push(event.id);
                Ok(())
            }
        }
    }

    fn judge_resync(
        &mut self,
        event: &SessionEvent,
        resync: &colloquy_app::Resync,
        next: Option<u64>,
        behind: bool,
        log: &SessionLog,
    ) -> Result<(), String> {
        let what = self.what();
        if !behind {
            return Err(format!(
                "{what} was given a stream.resync (id {}, {resync:?}) though the event it needs \
                 next ({next:?}) is still kept (oldest kept {:?}): the log must keep every event \
                 within its limits",
                event.id,
                log.oldest_kept()
            ));
        }
        let expected = log.resync(ResyncReason::FellBehind);
        let right = resync.reason == expected.reason
            && expected.id == Some(event.id)
            && expected.oldest == Some(resync.oldest_event_id);
        if !right {
            return Err(format!(
                "{what} fell behind and was given the stream.resync {{id {}, {resync:?}}} where \
                 {expected:?} was due (it goes on as a new client would)",
                event.id
            ));
        }
        if let Some((_, reply)) = self.turn {
            let ended = log
                .replies
                .get(&reply)
                .is_some_and(|reply| reply.end.is_some());
            self.must_end = ended;
        }
        Ok(())
    }

    fn judge_event(
        &mut self,
        event: &SessionEvent,
        next: Option<u64>,
        log: &SessionLog,
    ) -> Result<(), String> {
        let what = self.what();
        if Some(event.id) != next {
            return Err(format!(
                "{what} was given event {} ({}) where event {next:?} was due, with no \
                 stream.resync between: an event was skipped or repeated",
                event.id,
                event.kind.name()
            ));
        }
        if log.event(event.id).map(|published| &**published) != Some(event) {
            return Err(format!(
                "{what} was given event {} ({}), which is not what the log published under that id",
                event.id,
                event.kind.name()
            ));
        }
        if let Some((user, reply)) = self.turn {
            let ours = match &event.kind {
                EventKind::MessageCreated(message) => message.id == user || message.id == reply,
                EventKind::MessageDelta { message_id, .. }
                | EventKind::MessageReset { message_id }
                | EventKind::MessageToolCall { message_id, .. } => *message_id == reply,
                EventKind::MessageCompleted(message) | EventKind::MessageFailed(message) => {
                    message.id == reply
                }
                EventKind::SessionUpdated(_) | EventKind::StreamResync(_) => true,
            };
            if !ours {
                return Err(format!(
                    "{what} for reply {reply} carried event {} ({}) of another turn",
                    event.id,
                    event.kind.name()
                ));
            }
            if event
                .kind
                .finished_message()
                .is_some_and(|message| message.id == reply)
            {
                self.must_end = true;
            }
        }
        Ok(())
    }
}

fn describe(polled: &Polled) -> String {
    match polled {
        None => "nothing (pending)".to_owned(),
        Some(None) => "the end of the stream".to_owned(),
        Some(Some(event)) => format!("event {} ({})", event.id, event.kind.name()),
    }
}
