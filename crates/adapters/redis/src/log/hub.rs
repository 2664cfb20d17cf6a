//! This process's share of the sessions' events: one [`Watch`] per session
//! that has a subscriber here, fed by the readers, read by the subscribers.
//!
//! A watch buffers the latest events its reader brought (consecutive ids,
//! bounded like the log itself and by a cap of its own), so that every
//! local subscriber is served from memory: one read from Redis per event
//! per process, however many subscribers. A subscriber that is further
//! behind than the buffer reads from Redis itself, a batch at a time; it
//! never slows the reader or the others.

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use colloquy_domain::SessionId;
use colloquy_inprocess::LogLimits;
use colloquy_ports::SessionEvent;
use tokio::sync::watch;

use super::position::LogState;

/// Most events, and about the most bytes, a subscriber takes at once.
pub(crate) const BATCH: usize = 256;
pub(crate) const BATCH_BYTES: usize = 256 * 1024;

/// The buffer of a watch never holds more than this, whatever the log keeps:
/// subscribers further behind read from Redis.
const BUFFER_EVENTS: usize = 1024;
const BUFFER_BYTES: usize = 1024 * 1024;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The state behind these short locks stays consistent between
    // statements: a panic elsewhere must not stop every subscriber.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How much a watch buffers.
#[derive(Debug, Clone, Copy)]
pub(crate) struct BufferLimits {
    events: usize,
    bytes: usize,
}

impl BufferLimits {
    pub(crate) fn for_log(limits: &LogLimits) -> Self {
        Self {
            events: limits.max_events.clamp(1, BUFFER_EVENTS),
            bytes: limits.max_bytes.min(BUFFER_BYTES),
        }
    }
}

/// An event as a watch holds it, with its size for the buffer's limit.
#[derive(Debug)]
pub(crate) struct Buffered {
    pub(crate) event: Arc<SessionEvent>,
    pub(crate) bytes: usize,
}

/// What a subscriber at some cursor should do next.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    /// Events were taken from the buffer.
    Took,
    /// The events it needs are not in the buffer: read them from Redis, up
    /// to this id when the session is closed.
    ReadFromRedis { upto: Option<u64> },
    /// It has everything there is: wait for the watch to change.
    Wait,
    /// The session was closed and it has everything up to the close.
    Ended,
}

/// One session's events in this process.
#[derive(Debug)]
pub(crate) struct Watch {
    pub(crate) session: SessionId,
    state: Mutex<WatchState>,
    /// Bumped after every change of `state`; subscribers wait on it.
    wake: watch::Sender<()>,
    limits: BufferLimits,
}

#[derive(Debug)]
struct WatchState {
    /// Consecutive events ending at `read_upto` (or empty).
    buffer: VecDeque<Buffered>,
    bytes: usize,
    /// The id up to which the session's stream has been read here.
    read_upto: u64,
    /// The last id of a closed session: its subscribers end after it.
    closed_at: Option<u64>,
    subscribers: usize,
}

impl Watch {
    fn new(session: SessionId, read_upto: u64, limits: BufferLimits) -> Self {
        Self {
            session,
            state: Mutex::new(WatchState {
                buffer: VecDeque::new(),
                bytes: 0,
                read_upto,
                closed_at: None,
                subscribers: 0,
            }),
            wake: watch::Sender::new(()),
            limits,
        }
    }

    pub(crate) fn read_upto(&self) -> u64 {
        lock(&self.state).read_upto
    }

    pub(crate) fn wake_receiver(&self) -> watch::Receiver<()> {
        self.wake.subscribe()
    }

    /// Takes in events read from the stream, in id order. An id that does
    /// not follow the last one read means the events between are gone (the
    /// log trimmed them before they were read, or the counter started
    /// afresh): the buffer starts over, and subscribers behind it find out
    /// from Redis what they missed.
    pub(crate) fn deliver(&self, events: impl IntoIterator<Item = Buffered>) {
        let mut state = lock(&self.state);
        let mut changed = false;
        for buffered in events {
            let id = buffered.event.id;
            if id <= state.read_upto {
                continue;
            }
            if id != state.read_upto + 1 {
                state.buffer.clear();
                state.bytes = 0;
            }
            state.bytes += buffered.bytes;
            state.buffer.push_back(buffered);
            state.read_upto = id;
            changed = true;
        }
        while state.buffer.len() > 1
            && (state.buffer.len() > self.limits.events || state.bytes > self.limits.bytes)
        {
            if let Some(oldest) = state.buffer.pop_front() {
                state.bytes -= oldest.bytes;
            }
        }
        drop(state);
        if changed {
            self.wake.send_replace(());
        }
    }

    /// The session's counter started afresh after `last`: nothing of the
    /// old one is left to read, and reading goes on after `last`.
    fn restart_after(&self, last: u64) {
        let mut state = lock(&self.state);
        if last <= state.read_upto {
            return;
        }
        state.buffer.clear();
        state.bytes = 0;
        state.read_upto = last;
        drop(state);
        self.wake.send_replace(());
    }

    /// The session was closed after `last`: subscribers end once they have
    /// what came before.
    fn close_at(&self, last: u64) {
        let mut state = lock(&self.state);
        if state.closed_at.is_some() {
            return;
        }
        state.closed_at = Some(last);
        drop(state);
        self.wake.send_replace(());
    }

    /// For a subscriber that has every event up to `cursor`: the buffered
    /// events after it, appended to `into` (a batch at most), or what to do
    /// instead.
    pub(crate) fn take_after(&self, cursor: u64, into: &mut VecDeque<Arc<SessionEvent>>) -> Step {
        let state = lock(&self.state);
        let last_wanted = state.closed_at.unwrap_or(u64::MAX);
        if cursor >= last_wanted {
            return Step::Ended;
        }
        let covered = state
            .buffer
            .front()
            .is_some_and(|front| front.event.id <= cursor + 1 && state.read_upto > cursor);
        if covered {
            let start = state
                .buffer
                .partition_point(|buffered| buffered.event.id <= cursor);
            let mut bytes = 0;
            let before = into.len();
            for buffered in state.buffer.range(start..).take(BATCH) {
                if buffered.event.id > last_wanted
                    || (bytes > 0 && bytes + buffered.bytes > BATCH_BYTES)
                {
                    break;
                }
                bytes += buffered.bytes;
                into.push_back(Arc::clone(&buffered.event));
            }
            if into.len() > before {
                return Step::Took;
            }
        }
        if let Some(last) = state.closed_at {
            return Step::ReadFromRedis { upto: Some(last) };
        }
        if state.read_upto > cursor {
            Step::ReadFromRedis { upto: None }
        } else {
            Step::Wait
        }
    }
}

/// The sessions one reader reads, and a count of changes to that set.
#[derive(Debug)]
pub(crate) struct ReaderSessions {
    /// The reader's name, for its doorbell.
    pub(crate) name: String,
    sessions: Mutex<HashMap<SessionId, Arc<Watch>>>,
    generation: AtomicU64,
}

impl ReaderSessions {
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    pub(crate) fn snapshot(&self) -> (u64, Vec<Arc<Watch>>) {
        let sessions = lock(&self.sessions);
        (
            self.generation(),
            sessions.values().map(Arc::clone).collect(),
        )
    }

    fn insert(&self, watch: &Arc<Watch>) {
        lock(&self.sessions).insert(watch.session, Arc::clone(watch));
        self.generation.fetch_add(1, Ordering::AcqRel);
    }

    fn remove(&self, session: SessionId) {
        if lock(&self.sessions).remove(&session).is_some() {
            self.generation.fetch_add(1, Ordering::AcqRel);
        }
    }

    fn clear(&self) {
        lock(&self.sessions).clear();
        self.generation.fetch_add(1, Ordering::AcqRel);
    }
}

/// Every watch of this process, and which reader reads each.
#[derive(Debug)]
pub(crate) struct Hub {
    watches: Mutex<HashMap<SessionId, Arc<Watch>>>,
    readers: Vec<Arc<ReaderSessions>>,
    limits: BufferLimits,
    shut: AtomicBool,
}

impl Hub {
    pub(crate) fn new(reader_names: Vec<String>, limits: BufferLimits) -> Self {
        Self {
            watches: Mutex::new(HashMap::new()),
            readers: reader_names
                .into_iter()
                .map(|name| {
                    Arc::new(ReaderSessions {
                        name,
                        sessions: Mutex::new(HashMap::new()),
                        generation: AtomicU64::new(0),
                    })
                })
                .collect(),
            limits,
            shut: AtomicBool::new(false),
        }
    }

    pub(crate) fn readers(&self) -> &[Arc<ReaderSessions>] {
        &self.readers
    }

    fn reader_of(&self, session: SessionId) -> &Arc<ReaderSessions> {
        // The low bits of a v7 UUID are random: an even spread.
        let count = self.readers.len() as u128;
        let index = session.as_uuid().as_u128() % count;
        &self.readers[usize::try_from(index).unwrap_or(0)]
    }

    pub(crate) fn is_shut(&self) -> bool {
        self.shut.load(Ordering::Acquire)
    }

    /// Adds a subscriber to the session's watch, made when it has none,
    /// given where the log stood a moment ago. `None` once the hub is shut.
    /// The second value names the reader to wake when the watch is new.
    pub(crate) fn join(
        &self,
        session: SessionId,
        log: &LogState,
    ) -> Option<(Arc<Watch>, Option<Arc<ReaderSessions>>)> {
        let mut watches = lock(&self.watches);
        if self.is_shut() {
            return None;
        }
        if let Some(watch) = watches.get(&session) {
            lock(&watch.state).subscribers += 1;
            // The counter started afresh since the watch last read.
            watch.restart_after(log.first - 1);
            return Some((Arc::clone(watch), None));
        }
        let watch = Arc::new(Watch::new(session, log.next - 1, self.limits));
        lock(&watch.state).subscribers = 1;
        watches.insert(session, Arc::clone(&watch));
        let reader = self.reader_of(session);
        reader.insert(&watch);
        Some((watch, Some(Arc::clone(reader))))
    }

    /// Removes a subscriber; the watch goes when its last one does.
    pub(crate) fn leave(&self, watch: &Arc<Watch>) {
        let mut watches = lock(&self.watches);
        let mut state = lock(&watch.state);
        state.subscribers = state.subscribers.saturating_sub(1);
        if state.subscribers > 0 {
            return;
        }
        drop(state);
        if watches
            .get(&watch.session)
            .is_some_and(|mapped| Arc::ptr_eq(mapped, watch))
        {
            watches.remove(&watch.session);
            self.reader_of(watch.session).remove(watch.session);
        }
    }

    /// The session was closed after `last`: its subscribers end after what
    /// came before, and a later subscriber gets a new watch.
    pub(crate) fn close(&self, session: SessionId, last: u64) {
        let removed = lock(&self.watches).remove(&session);
        if let Some(watch) = removed {
            self.reader_of(session).remove(session);
            watch.close_at(last);
        }
    }

    /// Ends every subscription, each after what this process has read.
    pub(crate) fn close_all(&self) {
        let watches: Vec<Arc<Watch>> = {
            let mut watches = lock(&self.watches);
            self.shut.store(true, Ordering::Release);
            watches.drain().map(|(_, watch)| watch).collect()
        };
        for reader in &self.readers {
            reader.clear();
        }
        for watch in watches {
            let last = watch.read_upto();
            watch.close_at(last);
        }
    }

    /// The session's counter started afresh at `first`.
    pub(crate) fn restart(&self, session: SessionId, first: u64) {
        if let Some(watch) = self.get(session) {
            watch.restart_after(first - 1);
        }
    }

    pub(crate) fn get(&self, session: SessionId) -> Option<Arc<Watch>> {
        lock(&self.watches).get(&session).cloned()
    }

    pub(crate) fn watched(&self) -> Vec<Arc<Watch>> {
        lock(&self.watches).values().map(Arc::clone).collect()
    }
}

#[cfg(test)]
mod tests {
    use colloquy_domain::MessageId;
    use colloquy_ports::EventKind;

    use super::*;

    const FIRST: u64 = 1_700_000_000_000_000;

    fn event(id: u64) -> Buffered {
        Buffered {
            event: Arc::new(SessionEvent {
                id,
                kind: EventKind::MessageReset {
                    message_id: MessageId::new(),
                },
            }),
            bytes: 100,
        }
    }

    fn state(next: u64) -> LogState {
        LogState {
            first: FIRST,
            next,
            oldest: FIRST,
            reply_start: None,
        }
    }

    fn hub(max_events: usize) -> Hub {
        Hub::new(
            vec!["a".to_owned(), "b".to_owned()],
            BufferLimits::for_log(&LogLimits {
                max_events,
                ..LogLimits::default()
            }),
        )
    }

    fn ids(events: &VecDeque<Arc<SessionEvent>>) -> Vec<u64> {
        events.iter().map(|event| event.id).collect()
    }

    #[test]
    fn subscribers_are_served_from_the_buffer_and_sent_to_redis_behind_it() {
        let hub = hub(3);
        let session = SessionId::new();
        let (watch, ring) = hub.join(session, &state(FIRST)).unwrap();
        assert!(ring.is_some(), "a new watch wakes its reader");
        watch.deliver((FIRST..FIRST + 5).map(event));
        let mut into = VecDeque::new();
        assert_eq!(watch.take_after(FIRST + 1, &mut into), Step::Took);
        assert_eq!(ids(&into), [FIRST + 2, FIRST + 3, FIRST + 4]);
        into.clear();
        assert_eq!(
            watch.take_after(FIRST, &mut into),
            Step::ReadFromRedis { upto: None },
            "two events left the buffer"
        );
        assert_eq!(watch.take_after(FIRST + 4, &mut into), Step::Wait);
    }

    #[test]
    fn a_gap_in_what_is_read_starts_the_buffer_over() {
        let hub = hub(100);
        let (watch, _) = hub.join(SessionId::new(), &state(FIRST)).unwrap();
        watch.deliver([event(FIRST), event(FIRST + 1)]);
        watch.deliver([event(FIRST + 1), event(FIRST + 5)]);
        let mut into = VecDeque::new();
        assert_eq!(watch.take_after(FIRST + 4, &mut into), Step::Took);
        assert_eq!(ids(&into), [FIRST + 5], "a repeated id is skipped");
        assert_eq!(
            watch.take_after(FIRST + 1, &mut into),
            Step::ReadFromRedis { upto: None }
        );
    }

    #[test]
    fn a_closed_watch_gives_up_to_the_close_then_ends() {
        let hub = hub(100);
        let session = SessionId::new();
        let (watch, _) = hub.join(session, &state(FIRST)).unwrap();
        watch.deliver([event(FIRST), event(FIRST + 1), event(FIRST + 2)]);
        hub.close(session, FIRST + 1);
        let mut into = VecDeque::new();
        assert_eq!(watch.take_after(FIRST - 1, &mut into), Step::Took);
        assert_eq!(ids(&into), [FIRST, FIRST + 1]);
        assert_eq!(watch.take_after(FIRST + 1, &mut into), Step::Ended);
        let (again, ring) = hub.join(session, &state(FIRST + 3)).unwrap();
        assert!(
            !Arc::ptr_eq(&watch, &again),
            "a later subscriber starts afresh"
        );
        assert!(ring.is_some());
    }

    #[test]
    fn a_closed_watch_sends_a_subscriber_behind_its_buffer_to_redis() {
        let hub = hub(1);
        let session = SessionId::new();
        let (watch, _) = hub.join(session, &state(FIRST)).unwrap();
        watch.deliver([event(FIRST), event(FIRST + 1)]);
        hub.close(session, FIRST + 1);
        let mut into = VecDeque::new();
        assert_eq!(
            watch.take_after(FIRST - 1, &mut into),
            Step::ReadFromRedis {
                upto: Some(FIRST + 1)
            }
        );
    }

    #[test]
    fn the_last_subscriber_to_leave_takes_the_watch_away() {
        let hub = hub(100);
        let session = SessionId::new();
        let (first, _) = hub.join(session, &state(FIRST)).unwrap();
        let (second, ring) = hub.join(session, &state(FIRST)).unwrap();
        assert!(ring.is_none(), "an existing watch needs no wake-up");
        let reader = hub.reader_of(session).clone();
        assert_eq!(reader.snapshot().1.len(), 1);
        hub.leave(&first);
        assert!(hub.get(session).is_some());
        hub.leave(&second);
        assert!(hub.get(session).is_none());
        assert!(reader.snapshot().1.is_empty());
    }

    #[test]
    fn a_counter_that_started_afresh_restarts_the_watch() {
        let hub = hub(100);
        let session = SessionId::new();
        let (watch, _) = hub.join(session, &state(FIRST)).unwrap();
        watch.deliver([event(FIRST)]);
        let later = FIRST + 1_000_000;
        hub.restart(session, later);
        assert_eq!(watch.read_upto(), later - 1);
        let mut into = VecDeque::new();
        assert_eq!(
            watch.take_after(FIRST, &mut into),
            Step::ReadFromRedis { upto: None }
        );
        // An older first id changes nothing.
        hub.restart(session, FIRST);
        assert_eq!(watch.read_upto(), later - 1);
    }

    #[test]
    fn close_all_shuts_the_hub() {
        let hub = hub(100);
        let (watch, _) = hub.join(SessionId::new(), &state(FIRST)).unwrap();
        watch.deliver([event(FIRST)]);
        hub.close_all();
        let mut into = VecDeque::new();
        assert_eq!(watch.take_after(FIRST - 1, &mut into), Step::Took);
        assert_eq!(watch.take_after(FIRST, &mut into), Step::Ended);
        assert!(hub.join(SessionId::new(), &state(FIRST)).is_none());
    }
}
