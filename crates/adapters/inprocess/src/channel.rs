//! One session's live state: its kept events and its reply slot.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use colloquy_domain::MessageId;
use colloquy_ports::{
    EventKind, EventLogError, ReplyClaim, Resync, ResyncReason, SessionEvent, StartAt,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use crate::subscription::Subscription;
use crate::{lock, LogLimits, Shared};

#[derive(Debug)]
struct Kept {
    event: Shared,
    bytes: usize,
    published: Instant,
}

#[derive(Debug)]
struct ActiveReply {
    message_id: MessageId,
    /// Tells this claim apart from a later one for the same message id.
    claim: u64,
    /// The id of the first event published while this reply held the slot:
    /// a new subscriber is given the reply from here.
    first_event_id: u64,
    cancel: CancellationToken,
}

#[derive(Debug)]
pub(crate) struct ChannelState {
    /// The first id this channel gave (or will give) out.
    first_id: u64,
    next_id: u64,
    log: VecDeque<Kept>,
    bytes: usize,
    reply: Option<ActiveReply>,
    claims_made: u64,
    last_activity: Instant,
    pub(crate) closed: bool,
}

impl ChannelState {
    /// The oldest id still kept, or the next id when nothing is.
    fn oldest_available(&self) -> u64 {
        self.log.front().map_or(self.next_id, |kept| kept.event.id)
    }

    /// Where a new client starts: just before the running reply's first
    /// event when that is still kept, else at the newest event. The second
    /// value says the running reply's start is gone (the client must reload).
    fn live_cursor(&self) -> (u64, bool) {
        match &self.reply {
            Some(reply) if reply.first_event_id >= self.oldest_available() => {
                (reply.first_event_id - 1, false)
            }
            Some(reply) if reply.first_event_id < self.next_id => (self.next_id - 1, true),
            _ => (self.next_id - 1, false),
        }
    }

    /// Moves `cursor` (the last id a subscriber has) to where it can go on
    /// reading without a gap, and says why when it had to skip events.
    pub(crate) fn resync_for(&self, cursor: &mut u64, reason: ResyncReason) -> Option<Resync> {
        if *cursor + 1 >= self.oldest_available() {
            return None;
        }
        *cursor = self.live_cursor().0;
        Some(self.resync(reason))
    }

    fn resync(&self, reason: ResyncReason) -> Resync {
        Resync {
            reason,
            oldest_event_id: self.oldest_available(),
        }
    }

    /// The kept events after `cursor`, appended to `into`: at least one when
    /// there is one, and no more than `most` events or about `most_bytes`.
    /// A reader takes a batch at a time, so one that reads slowly holds on
    /// to no more than a batch of events the log has since let go.
    pub(crate) fn read_after(
        &self,
        cursor: u64,
        most: usize,
        most_bytes: usize,
        into: &mut VecDeque<Shared>,
    ) {
        // The kept ids are consecutive (`push` numbers every event it adds
        // at the back, eviction takes from the front), so the first one
        // after `cursor` is found by subtraction. A binary search read the
        // id behind each probed event's pointer: a cache miss a step, about
        // 6 % of the server's CPU at 100 streams.
        let start = usize::try_from(
            cursor
                .saturating_add(1)
                .saturating_sub(self.oldest_available()),
        )
        .unwrap_or(usize::MAX)
        .min(self.log.len());
        debug_assert!(self
            .log
            .get(start)
            .is_none_or(|kept| kept.event.id > cursor));
        let mut bytes = 0;
        for kept in self.log.range(start..).take(most) {
            if bytes > 0 && bytes + kept.bytes > most_bytes {
                break;
            }
            bytes += kept.bytes;
            into.push_back(Arc::clone(&kept.event));
        }
    }

    fn push(&mut self, kind: EventKind, limits: &LogLimits) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let bytes = kind.approximate_bytes();
        let now = Instant::now();
        self.log.push_back(Kept {
            event: Arc::new(SessionEvent { id, kind }),
            bytes,
            published: now,
        });
        self.bytes += bytes;
        metrics::gauge!("colloquy_event_log_events").increment(1.0);
        metrics::gauge!("colloquy_event_log_bytes").increment(bytes as f64);
        self.last_activity = now;
        self.evict(limits, now);
        id
    }

    /// Drops the oldest events while the log is over a limit (keeping the
    /// newest one whatever its size) or they are past the retention time.
    fn evict(&mut self, limits: &LogLimits, now: Instant) {
        while let Some(oldest) = self.log.front() {
            let over_limit = self.log.len() > 1
                && (self.log.len() > limits.max_events || self.bytes > limits.max_bytes);
            let expired = now.duration_since(oldest.published) >= limits.retention;
            if !(over_limit || expired) {
                break;
            }
            self.drop_oldest();
        }
    }

    fn drop_oldest(&mut self) {
        if let Some(oldest) = self.log.pop_front() {
            self.bytes -= oldest.bytes;
            metrics::gauge!("colloquy_event_log_events").decrement(1.0);
            metrics::gauge!("colloquy_event_log_bytes").decrement(oldest.bytes as f64);
        }
    }

    fn release(&mut self, claim: u64) -> bool {
        if self
            .reply
            .as_ref()
            .is_some_and(|reply| reply.claim == claim)
        {
            self.reply = None;
            self.last_activity = Instant::now();
            true
        } else {
            false
        }
    }
}

/// One session's live state. See the crate docs.
#[derive(Debug)]
pub(crate) struct Channel {
    pub(crate) state: Mutex<ChannelState>,
    /// Bumped after every change of `state`; subscribers wait on it.
    pub(crate) wake: watch::Sender<()>,
    limits: LogLimits,
    highest_id: Arc<AtomicU64>,
}

impl Drop for Channel {
    fn drop(&mut self) {
        let state = self
            .state
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        while !state.log.is_empty() {
            state.drop_oldest();
        }
    }
}

impl Channel {
    pub(crate) fn new(first_id: u64, limits: LogLimits, highest_id: Arc<AtomicU64>) -> Self {
        Self {
            state: Mutex::new(ChannelState {
                first_id,
                next_id: first_id,
                log: VecDeque::new(),
                bytes: 0,
                reply: None,
                claims_made: 0,
                last_activity: Instant::now(),
                closed: false,
            }),
            wake: watch::Sender::new(()),
            limits,
            highest_id,
        }
    }

    pub(crate) fn kept(&self) -> (usize, usize) {
        let state = lock(&self.state);
        (state.log.len(), state.bytes)
    }

    pub(crate) fn publish(&self, kind: EventKind) -> u64 {
        let id = self.push(kind);
        self.wake.send_replace(());
        id
    }

    fn push(&self, kind: EventKind) -> u64 {
        let id = lock(&self.state).push(kind, &self.limits);
        self.highest_id.fetch_max(id, Ordering::AcqRel);
        id
    }

    pub(crate) fn subscribe(self: &Arc<Self>, start: StartAt) -> Subscription {
        let wake = self.wake.subscribe();
        let state = lock(&self.state);
        let (cursor, resync) = match start {
            StartAt::Live => match state.live_cursor() {
                (cursor, true) => (cursor, Some(state.resync(ResyncReason::NotKept))),
                (cursor, false) => (cursor, None),
            },
            StartAt::After(after) if after >= state.next_id => (
                state.live_cursor().0,
                Some(state.resync(ResyncReason::UnknownEventId)),
            ),
            StartAt::After(after) => {
                let mut cursor = after;
                // An id below this channel's first one was given by an
                // earlier channel of the session (before a restart, or
                // before this one was swept): what followed it is not here.
                let resync = if after + 1 < state.first_id {
                    cursor = state.live_cursor().0;
                    Some(state.resync(ResyncReason::NotKept))
                } else {
                    state.resync_for(&mut cursor, ResyncReason::NotKept)
                };
                (cursor, resync)
            }
        };
        drop(state);
        Subscription::new(Arc::clone(self), wake, cursor, resync)
    }

    pub(crate) fn try_claim(self: &Arc<Self>, message_id: MessageId) -> Option<InProcessClaim> {
        let mut state = lock(&self.state);
        if state.reply.is_some() || state.closed {
            return None;
        }
        state.claims_made += 1;
        let claim = state.claims_made;
        let cancel = CancellationToken::new();
        state.reply = Some(ActiveReply {
            message_id,
            claim,
            first_event_id: state.next_id,
            cancel: cancel.clone(),
        });
        state.last_activity = Instant::now();
        Some(InProcessClaim {
            channel: Arc::clone(self),
            message_id,
            claim,
            cancel,
            ended: false,
        })
    }

    pub(crate) fn active_reply(&self) -> Option<MessageId> {
        lock(&self.state)
            .reply
            .as_ref()
            .map(|reply| reply.message_id)
    }

    pub(crate) fn cancel_reply(&self, only: Option<MessageId>) -> bool {
        match &lock(&self.state).reply {
            Some(reply) if only.is_none_or(|message_id| message_id == reply.message_id) => {
                reply.cancel.cancel();
                true
            }
            _ => false,
        }
    }

    pub(crate) fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.send_replace(());
    }

    /// Drops events past the retention time even when nothing is published.
    pub(crate) fn expire(&self, now: Instant) {
        lock(&self.state).evict(&self.limits, now);
    }

    pub(crate) fn is_idle_for(&self, retention: Duration, now: Instant) -> bool {
        let state = lock(&self.state);
        state.reply.is_none()
            && self.wake.receiver_count() == 0
            && now.duration_since(state.last_activity) >= retention
    }
}

/// The reply slot of one session, held by one reply.
#[derive(Debug)]
pub(crate) struct InProcessClaim {
    channel: Arc<Channel>,
    message_id: MessageId,
    claim: u64,
    cancel: CancellationToken,
    ended: bool,
}

impl InProcessClaim {
    fn end(&mut self, last: Option<EventKind>) -> Option<u64> {
        self.ended = true;
        let mut state = lock(&self.channel.state);
        let id = last.map(|kind| state.push(kind, &self.channel.limits));
        state.release(self.claim);
        drop(state);
        if let Some(id) = id {
            self.channel.highest_id.fetch_max(id, Ordering::AcqRel);
        }
        self.channel.wake.send_replace(());
        id
    }
}

impl Drop for InProcessClaim {
    fn drop(&mut self) {
        // A claim dropped without `finish` or `release` (its task panicked
        // or was aborted) must not leave the session taken.
        if !self.ended {
            self.end(None);
        }
    }
}

#[async_trait]
impl ReplyClaim for InProcessClaim {
    fn message_id(&self) -> MessageId {
        self.message_id
    }

    async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    async fn finish(mut self: Box<Self>, last: EventKind) -> Result<u64, EventLogError> {
        Ok(self.end(Some(last)).unwrap_or_default())
    }

    async fn release(mut self: Box<Self>) {
        self.end(None);
    }
}
