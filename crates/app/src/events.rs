//! The live side of a session: its event log, its subscribers, and the one
//! reply that may be running in it.
//!
//! Each session that has been active lately has a [`Channel`]. Publishing an
//! event appends it to the channel's log and wakes the subscribers; each
//! subscriber reads the log from its own cursor. There is no per-subscriber
//! queue, so a slow client costs no memory beyond the shared log and never
//! slows the others, and a client that comes back with `Last-Event-ID` is
//! served from the same log. The log holds the latest reply's events (plus
//! what followed them) and is cleared when the next reply begins.
//!
//! Locks are per session; the map of channels is locked only to find or
//! create a channel, never per token.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use colloquy_domain::{Message, MessageId, Session, SessionId, Timestamp, ToolCall};
use futures::Stream;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

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
}

/// An event with its id: unique in the session and increasing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionEvent {
    pub id: u64,
    pub kind: EventKind,
}

/// Why a running reply was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// A client cancelled it (or deleted its session): it ends `cancelled`.
    Cancelled,
    /// The server is shutting down: it ends `interrupted`.
    Shutdown,
}

/// The handle by which anyone may stop a running reply.
#[derive(Debug)]
pub(crate) struct ReplyControl {
    pub(crate) message_id: MessageId,
    token: CancellationToken,
    reason: Mutex<Option<StopReason>>,
}

impl ReplyControl {
    pub(crate) fn new(message_id: MessageId) -> Arc<Self> {
        Arc::new(Self {
            message_id,
            token: CancellationToken::new(),
            reason: Mutex::new(None),
        })
    }

    /// Asks the reply to stop. The first reason given wins.
    pub(crate) fn stop(&self, reason: StopReason) {
        lock(&self.reason).get_or_insert(reason);
        self.token.cancel();
    }

    pub(crate) async fn stopped(&self) -> StopReason {
        self.token.cancelled().await;
        lock(&self.reason).unwrap_or(StopReason::Cancelled)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind
    // that is still consistent: keep serving rather than poison every session.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

#[derive(Debug)]
struct ChannelState {
    next_id: u64,
    log: Vec<Arc<SessionEvent>>,
    /// Id of the first event of the latest reply, for late subscribers.
    reply_start_id: Option<u64>,
    active_reply: Option<Arc<ReplyControl>>,
    last_activity: Instant,
    closed: bool,
}

/// One session's live state. See the module docs.
#[derive(Debug)]
pub(crate) struct Channel {
    state: Mutex<ChannelState>,
    /// Bumped after every change of `state`; subscribers wait on it.
    wake: watch::Sender<()>,
}

impl Channel {
    fn new() -> Self {
        // Ids start at the current time in microseconds so that they keep
        // increasing across restarts of the server and re-creations of the
        // channel, without storing a counter anywhere.
        let first_id = u64::try_from(Timestamp::now().as_micros()).unwrap_or(1);
        Self {
            state: Mutex::new(ChannelState {
                next_id: first_id,
                log: Vec::new(),
                reply_start_id: None,
                active_reply: None,
                last_activity: Instant::now(),
                closed: false,
            }),
            wake: watch::Sender::new(()),
        }
    }

    /// Takes the session's one reply slot. `false` when a reply already runs.
    pub(crate) fn try_claim(&self, control: &Arc<ReplyControl>) -> bool {
        let mut state = lock(&self.state);
        if state.active_reply.is_some() {
            return false;
        }
        state.active_reply = Some(Arc::clone(control));
        state.last_activity = Instant::now();
        true
    }

    /// Gives the slot back when a reply could not start after all.
    pub(crate) fn release_claim(&self, message_id: MessageId) {
        let mut state = lock(&self.state);
        if state
            .active_reply
            .as_ref()
            .is_some_and(|active| active.message_id == message_id)
        {
            state.active_reply = None;
        }
    }

    pub(crate) fn active_reply(&self) -> Option<Arc<ReplyControl>> {
        lock(&self.state).active_reply.clone()
    }

    /// Starts a new reply's events: the previous reply's log is dropped, and
    /// late subscribers will receive the reply from `first`.
    pub(crate) fn begin_reply(&self, first: impl IntoIterator<Item = EventKind>) -> u64 {
        let mut state = lock(&self.state);
        state.log.clear();
        state.reply_start_id = Some(state.next_id);
        let start = state.next_id;
        for kind in first {
            push(&mut state, kind);
        }
        drop(state);
        self.wake.send_replace(());
        start
    }

    pub(crate) fn publish(&self, kind: EventKind) {
        push(&mut lock(&self.state), kind);
        self.wake.send_replace(());
    }

    /// Publishes a reply's last event and frees the slot, in one step: a
    /// client that sees the end of a reply can send the next message at once.
    pub(crate) fn finish_reply(&self, message_id: MessageId, last: EventKind) {
        let mut state = lock(&self.state);
        push(&mut state, last);
        if state
            .active_reply
            .as_ref()
            .is_some_and(|active| active.message_id == message_id)
        {
            state.active_reply = None;
        }
        drop(state);
        self.wake.send_replace(());
    }

    fn close(&self) {
        lock(&self.state).closed = true;
        self.wake.send_replace(());
    }

    fn is_idle_for(&self, retention: Duration, now: Instant) -> bool {
        let state = lock(&self.state);
        state.active_reply.is_none()
            && self.wake.receiver_count() == 0
            && now.duration_since(state.last_activity) >= retention
    }
}

fn push(state: &mut ChannelState, kind: EventKind) {
    let id = state.next_id;
    state.next_id += 1;
    state.log.push(Arc::new(SessionEvent { id, kind }));
    state.last_activity = Instant::now();
}

#[derive(Debug)]
struct Channels {
    by_session: HashMap<SessionId, Arc<Channel>>,
    last_sweep: Instant,
}

/// All sessions' live channels.
#[derive(Debug)]
pub struct EventHub {
    channels: Mutex<Channels>,
    retention: Duration,
}

impl EventHub {
    /// A hub that keeps an idle session's events resumable for `retention`.
    #[must_use]
    pub fn new(retention: Duration) -> Self {
        Self {
            channels: Mutex::new(Channels {
                by_session: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            retention,
        }
    }

    pub(crate) fn channel(&self, session: SessionId) -> Arc<Channel> {
        let mut channels = lock(&self.channels);
        self.sweep_if_due(&mut channels);
        Arc::clone(
            channels
                .by_session
                .entry(session)
                .or_insert_with(|| Arc::new(Channel::new())),
        )
    }

    /// Follows a session's events. With `after`, every retained event after
    /// that id comes first; without, a reply still streaming is delivered from
    /// its start; then live events follow.
    #[must_use]
    pub fn subscribe(&self, session: SessionId, after: Option<u64>) -> Subscription {
        // The receiver is made while the map is locked, so a sweep cannot
        // retire this channel between finding it and subscribing to it.
        let mut channels = lock(&self.channels);
        self.sweep_if_due(&mut channels);
        let channel = Arc::clone(
            channels
                .by_session
                .entry(session)
                .or_insert_with(|| Arc::new(Channel::new())),
        );
        let wake = channel.wake.subscribe();
        drop(channels);
        let last_seen = {
            let state = lock(&channel.state);
            match (after, state.reply_start_id, &state.active_reply) {
                (Some(after), _, _) => after,
                (None, Some(start), Some(_)) => start.saturating_sub(1),
                (None, _, _) => state.next_id.saturating_sub(1),
            }
        };
        Subscription {
            channel,
            wake,
            last_seen,
            ready: VecDeque::new(),
        }
    }

    /// Replies running right now, in any session.
    /// The reply running in `session`, if any. Unlike [`EventHub::channel`],
    /// this makes no channel for a session that has none.
    pub(crate) fn active_reply(&self, session: SessionId) -> Option<Arc<ReplyControl>> {
        let channel = lock(&self.channels).by_session.get(&session).cloned();
        channel.and_then(|channel| channel.active_reply())
    }

    pub(crate) fn active_replies(&self) -> Vec<Arc<ReplyControl>> {
        let channels: Vec<Arc<Channel>> =
            lock(&self.channels).by_session.values().cloned().collect();
        channels
            .iter()
            .filter_map(|channel| channel.active_reply())
            .collect()
    }

    /// Ends every subscription of a deleted session once it has read what is left.
    pub(crate) fn close_session(&self, session: SessionId) {
        let removed = lock(&self.channels).by_session.remove(&session);
        if let Some(channel) = removed {
            channel.close();
        }
    }

    /// Ends every subscription, after each has read what is left (shutdown).
    pub fn close_all(&self) {
        let channels: Vec<Arc<Channel>> = lock(&self.channels)
            .by_session
            .drain()
            .map(|(_, c)| c)
            .collect();
        for channel in channels {
            channel.close();
        }
    }

    /// How many sessions have a live channel (for metrics and tests).
    #[must_use]
    pub fn channel_count(&self) -> usize {
        lock(&self.channels).by_session.len()
    }

    fn sweep_if_due(&self, channels: &mut Channels) {
        let now = Instant::now();
        let interval = (self.retention / 10).max(Duration::from_millis(10));
        if now.duration_since(channels.last_sweep) < interval {
            return;
        }
        channels.last_sweep = now;
        channels
            .by_session
            .retain(|_, channel| !channel.is_idle_for(self.retention, now));
    }
}

/// One client's view of a session's events, from its own cursor in the log.
#[derive(Debug)]
pub struct Subscription {
    channel: Arc<Channel>,
    wake: watch::Receiver<()>,
    last_seen: u64,
    ready: VecDeque<Arc<SessionEvent>>,
}

impl Subscription {
    /// The next event, waiting for it if need be. `None` once the session was
    /// deleted or the server is shutting down, and every event before that
    /// was delivered.
    pub async fn next(&mut self) -> Option<Arc<SessionEvent>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            // Mark the current state seen *before* reading the log, so a
            // publish that lands after the read still wakes us below.
            self.wake.borrow_and_update();
            {
                let state = lock(&self.channel.state);
                let unseen = state
                    .log
                    .partition_point(|event| event.id <= self.last_seen);
                self.ready.extend(state.log[unseen..].iter().cloned());
                if let Some(newest) = self.ready.back() {
                    self.last_seen = newest.id;
                    continue;
                }
                if state.closed {
                    return None;
                }
            }
            if self.wake.changed().await.is_err() {
                return None;
            }
        }
    }

    /// The subscription as a stream of events.
    pub fn into_stream(self) -> impl Stream<Item = Arc<SessionEvent>> + Send + 'static {
        futures::stream::unfold(self, |mut subscription| async move {
            let event = subscription.next().await?;
            Some((event, subscription))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delta(message_id: MessageId, text: &str) -> EventKind {
        EventKind::MessageDelta {
            message_id,
            delta: text.to_owned(),
        }
    }

    async fn collect(subscription: &mut Subscription, count: usize) -> Vec<Arc<SessionEvent>> {
        let mut events = Vec::new();
        for _ in 0..count {
            let next = tokio::time::timeout(Duration::from_secs(1), subscription.next()).await;
            events.push(next.expect("an event in time").expect("subscription open"));
        }
        events
    }

    #[tokio::test]
    async fn late_subscribers_get_a_running_reply_from_its_start_and_resume_by_id() {
        let hub = EventHub::new(Duration::from_secs(600));
        let session = SessionId::new();
        let message = MessageId::new();
        let channel = hub.channel(session);
        assert!(channel.try_claim(&ReplyControl::new(message)));
        channel.begin_reply([delta(message, "a")]);
        channel.publish(delta(message, "b"));

        let mut late = hub.subscribe(session, None);
        let early = collect(&mut late, 2).await;
        assert_eq!(early[0].kind, delta(message, "a"));
        assert!(early[0].id < early[1].id);

        let mut resumed = hub.subscribe(session, Some(early[0].id));
        channel.publish(delta(message, "c"));
        let rest = collect(&mut resumed, 2).await;
        assert_eq!(rest[0], early[1]);
        assert_eq!(rest[1].kind, delta(message, "c"));
    }

    #[tokio::test]
    async fn after_a_reply_ends_new_subscribers_only_see_live_events() {
        let hub = EventHub::new(Duration::from_secs(600));
        let session = SessionId::new();
        let message = MessageId::new();
        let channel = hub.channel(session);
        let control = ReplyControl::new(message);
        assert!(channel.try_claim(&control));
        assert!(
            !channel.try_claim(&ReplyControl::new(MessageId::new())),
            "one reply per session"
        );
        channel.begin_reply([delta(message, "a")]);
        channel.finish_reply(message, delta(message, "end"));
        assert!(channel.active_reply().is_none());

        let mut fresh = hub.subscribe(session, None);
        channel.publish(delta(message, "live"));
        assert_eq!(collect(&mut fresh, 1).await[0].kind, delta(message, "live"));
    }

    #[tokio::test]
    async fn closing_a_session_ends_subscriptions_after_what_is_left() {
        let hub = EventHub::new(Duration::from_secs(600));
        let session = SessionId::new();
        let message = MessageId::new();
        let mut subscription = hub.subscribe(session, None);
        hub.channel(session).publish(delta(message, "last words"));
        hub.close_session(session);
        assert_eq!(
            collect(&mut subscription, 1).await[0].kind,
            delta(message, "last words")
        );
        assert!(subscription.next().await.is_none());
    }

    #[tokio::test]
    async fn idle_channels_without_subscribers_are_swept() {
        let hub = EventHub::new(Duration::from_millis(20));
        let kept = SessionId::new();
        let _subscriber = hub.subscribe(kept, None);
        hub.channel(SessionId::new());
        assert_eq!(hub.channel_count(), 2);
        tokio::time::sleep(Duration::from_millis(40)).await;
        hub.channel(SessionId::new());
        assert_eq!(
            hub.channel_count(),
            2,
            "the idle one went, the subscribed one stayed"
        );
    }
}
