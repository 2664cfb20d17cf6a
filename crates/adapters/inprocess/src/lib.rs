//! [`InProcessEventLog`]: the event log and reply slots of one process; and
//! [`InProcessLimiter`]: its per-principal limits (see the `limiter` module).
//!
//! Each session that has been active lately has a [`Channel`]: a log of its
//! recent events, its reply slot, and a `watch` channel that wakes its
//! subscribers. Publishing appends to the log; each subscriber reads the log
//! from its own cursor. There is no per-subscriber queue, so a slow client
//! costs nothing but its cursor and never slows the reply or other clients,
//! and a client that comes back with `Last-Event-ID` is served from the same
//! log.
//!
//! The log is kept across replies. An event leaves it when it is older than
//! the retention time, or when the session holds more events or bytes than
//! its limits (oldest first; the newest event always stays). A subscriber
//! whose next event has left is given a `stream.resync` instead of a gap.
//!
//! Ids are consecutive within a channel and start above every id this
//! process gave before, and at least at the current time in microseconds, so
//! they increase across restarts without being stored. A resumed id below a
//! channel's first id therefore names events this channel never had.
//!
//! Locks are per session; the map of channels is locked only to find, make or
//! sweep a channel, never per event.

mod channel;
mod limiter;
mod subscription;

pub use limiter::InProcessLimiter;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use colloquy_domain::{MessageId, SessionId, Timestamp};
use colloquy_ports::{
    EventKind, EventLog, EventLogError, EventStream, ReplyClaim, SessionEvent, StartAt,
};

use channel::Channel;

/// How much of each session's events is kept for resuming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLimits {
    /// Every event stays at least this long (unless a limit below pushes it out).
    pub retention: Duration,
    /// Most events kept per session.
    pub max_events: usize,
    /// Most bytes of events kept per session (see `EventKind::approximate_bytes`).
    pub max_bytes: usize,
}

impl Default for LogLimits {
    /// The contract's defaults: 600 s, 10,000 events, 16 MiB.
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(600),
            max_events: 10_000,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// Every session's events and reply slot, in this process. See the crate docs.
#[derive(Debug)]
pub struct InProcessEventLog {
    channels: Mutex<Channels>,
    limits: LogLimits,
    /// The highest id any channel of this log has given out.
    highest_id: Arc<AtomicU64>,
    shut_down: AtomicBool,
}

#[derive(Debug)]
struct Channels {
    by_session: HashMap<SessionId, Arc<Channel>>,
    last_sweep: Instant,
}

impl InProcessEventLog {
    #[must_use]
    pub fn new(limits: LogLimits) -> Self {
        Self {
            channels: Mutex::new(Channels {
                by_session: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            limits,
            highest_id: Arc::new(AtomicU64::new(0)),
            shut_down: AtomicBool::new(false),
        }
    }

    /// How many sessions have a live channel (for tests).
    #[must_use]
    pub fn channel_count(&self) -> usize {
        lock(&self.channels).by_session.len()
    }

    /// How many events and bytes the session's log keeps now (for tests).
    #[must_use]
    pub fn kept(&self, session: SessionId) -> (usize, usize) {
        let channel = lock(&self.channels).by_session.get(&session).cloned();
        channel.map_or((0, 0), |channel| channel.kept())
    }

    /// The session's channel, made when it has none. The map stays locked
    /// while `with` runs, so a sweep cannot retire the channel meanwhile.
    fn with_channel<T>(&self, session: SessionId, with: impl FnOnce(&Arc<Channel>) -> T) -> T {
        let mut channels = lock(&self.channels);
        self.sweep_if_due(&mut channels);
        let channel = channels.by_session.entry(session).or_insert_with(|| {
            Arc::new(Channel::new(
                self.first_id(),
                self.limits,
                Arc::clone(&self.highest_id),
            ))
        });
        with(channel)
    }

    fn existing(&self, session: SessionId) -> Option<Arc<Channel>> {
        lock(&self.channels).by_session.get(&session).cloned()
    }

    /// A new channel's first id: above every id given out before by this
    /// process, and at least the time now in microseconds, which is above the
    /// ids of earlier processes (they gave fewer than one id per microsecond).
    fn first_id(&self) -> u64 {
        let now = u64::try_from(Timestamp::now().as_micros()).unwrap_or(1);
        now.max(self.highest_id.load(Ordering::Acquire) + 1)
    }

    fn sweep_if_due(&self, channels: &mut Channels) {
        let now = Instant::now();
        let interval = (self.limits.retention / 10).max(Duration::from_millis(10));
        if now.duration_since(channels.last_sweep) < interval {
            return;
        }
        channels.last_sweep = now;
        channels.by_session.retain(|_, channel| {
            channel.expire(now);
            !channel.is_idle_for(self.limits.retention, now)
        });
    }
}

#[async_trait]
impl EventLog for InProcessEventLog {
    async fn publish(&self, session: SessionId, kind: EventKind) -> Result<u64, EventLogError> {
        let channel = self.with_channel(session, Arc::clone);
        Ok(channel.publish(kind))
    }

    async fn subscribe(
        &self,
        session: SessionId,
        start: StartAt,
    ) -> Result<EventStream, EventLogError> {
        if self.shut_down.load(Ordering::Acquire) {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let subscription = self.with_channel(session, |channel| channel.subscribe(start));
        Ok(subscription.into_stream())
    }

    async fn claim_reply(
        &self,
        session: SessionId,
        reply: MessageId,
    ) -> Result<Option<Box<dyn ReplyClaim>>, EventLogError> {
        let claim = self.with_channel(session, |channel| Channel::try_claim(channel, reply));
        Ok(claim.map(|claim| Box::new(claim) as Box<dyn ReplyClaim>))
    }

    async fn active_reply(&self, session: SessionId) -> Result<Option<MessageId>, EventLogError> {
        Ok(self
            .existing(session)
            .and_then(|channel| channel.active_reply()))
    }

    async fn cancel_reply(
        &self,
        session: SessionId,
        only: Option<MessageId>,
    ) -> Result<bool, EventLogError> {
        Ok(self
            .existing(session)
            .is_some_and(|channel| channel.cancel_reply(only)))
    }

    async fn close_session(&self, session: SessionId) -> Result<(), EventLogError> {
        let removed = lock(&self.channels).by_session.remove(&session);
        if let Some(channel) = removed {
            channel.close();
        }
        Ok(())
    }

    async fn close_all(&self) {
        self.shut_down.store(true, Ordering::Release);
        let channels: Vec<Arc<Channel>> = lock(&self.channels)
            .by_session
            .drain()
            .map(|(_, channel)| channel)
            .collect();
        for channel in channels {
            channel.close();
        }
    }
}

pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic while holding one of these short locks leaves plain data behind
    // that is still consistent: keep serving rather than poison every session.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// What the subscription module needs of an event: it is shared, not copied.
pub(crate) type Shared = Arc<SessionEvent>;

#[cfg(test)]
mod tests;
