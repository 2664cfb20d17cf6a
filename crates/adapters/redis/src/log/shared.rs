//! What the log's parts share: the Redis handle, the settings, this
//! process's watches and claims, and the calls of the log's scripts.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use colloquy_domain::{MessageId, SessionId};
use colloquy_inprocess::LogLimits;
use colloquy_ports::{EventKind, Resync, ResyncReason, SessionEvent};
use redis::{Script, ScriptInvocation, Value};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::hub::{Buffered, Hub, ReaderSessions};
use super::position::LogState;
use crate::codec::{self, Entry};
use crate::connection::{Failure, Redis};
use crate::releases::Releases;

/// How long the counter of a session outlives its last event: long enough
/// that a client resuming soon after the events expired is told `not_kept`
/// by the same counter rather than by a fresh one (the answer is the same;
/// the counter is a few bytes).
const COUNTER_OUTLIVES_EVENTS: Duration = Duration::from_secs(60);

/// How long a closed session's events stay for the readers of other
/// replicas that have not read them all yet.
pub(crate) const CLOSED_GRACE: Duration = Duration::from_secs(60);

/// The longest pause between two rounds of keeping watched sessions alive.
const LONGEST_UPKEEP_PAUSE: Duration = Duration::from_secs(15);

#[derive(Debug, Clone, Copy)]
pub(crate) struct Settings {
    pub(crate) limits: LogLimits,
    pub(crate) lease: Duration,
}

impl Settings {
    fn retention_us(&self) -> u64 {
        u64::try_from(self.limits.retention.as_micros()).unwrap_or(u64::MAX)
    }

    /// The stream key lives as long as its newest event must: every event
    /// in a stream that expires is past the retention time.
    fn log_ttl_ms(&self) -> u64 {
        millis_at_least_one(self.limits.retention)
    }

    pub(crate) fn meta_ttl_ms(&self) -> u64 {
        millis_at_least_one(self.limits.retention + COUNTER_OUTLIVES_EVENTS)
    }

    pub(crate) fn lease_ms(&self) -> u64 {
        millis_at_least_one(self.lease)
    }

    /// How often the sessions this process serves are kept alive and
    /// checked (a close or a restart of Redis that was missed), well within
    /// the counter's time to live.
    pub(crate) fn upkeep_every(&self) -> Duration {
        (self.limits.retention + COUNTER_OUTLIVES_EVENTS)
            .div_f64(4.0)
            .min(LONGEST_UPKEEP_PAUSE)
    }
}

pub(crate) fn millis_at_least_one(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// Events read from Redis after a cursor, and where the log stood.
#[derive(Debug)]
pub(crate) struct ReadBatch {
    pub(crate) state: LogState,
    pub(crate) events: Vec<Buffered>,
}

/// The claims this process holds, by lease token: which reply, and its cancel switch.
#[derive(Debug, Default)]
pub(crate) struct LocalClaims {
    by_token: Mutex<HashMap<String, LocalClaim>>,
}

#[derive(Debug)]
struct LocalClaim {
    session: SessionId,
    reply: MessageId,
    cancel: CancellationToken,
}

impl LocalClaims {
    pub(crate) fn add(
        &self,
        token: &str,
        session: SessionId,
        reply: MessageId,
        cancel: CancellationToken,
    ) {
        self.lock().insert(
            token.to_owned(),
            LocalClaim {
                session,
                reply,
                cancel,
            },
        );
    }

    pub(crate) fn remove(&self, token: &str) {
        self.lock().remove(token);
    }

    /// Cancels the claim with this token, if it is one of this process's.
    pub(crate) fn cancel(&self, token: &str) {
        if let Some(claim) = self.lock().get(token) {
            claim.cancel.cancel();
        }
    }

    /// Whether a claim of this process runs the reply: then its own
    /// renewals decide what becomes of an expired lease, not a sweeper here.
    pub(crate) fn holds(&self, session: SessionId, reply: MessageId) -> bool {
        self.lock()
            .values()
            .any(|claim| claim.session == session && claim.reply == reply)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, LocalClaim>> {
        self.by_token.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) redis: Redis,
    pub(crate) settings: Settings,
    pub(crate) hub: Hub,
    pub(crate) claims: LocalClaims,
    pub(crate) releases: Releases,
    /// Ends the background tasks (readers, notices, upkeep).
    pub(crate) stop: CancellationToken,
    /// Asks for a round of upkeep now (after a reconnection).
    pub(crate) upkeep_now: Notify,
    /// Sessions whose events this process could not publish.
    pub(crate) losses: Losses,
}

/// The sessions some of whose events this process could not publish
/// (Redis did not answer). The events are gone, but nobody may miss them
/// silently: a mark goes into each such session's log as soon as Redis
/// answers again, before the session's next event if this process
/// publishes one, and every subscriber (on any replica, resuming or live)
/// reads it as a `stream.resync`.
#[derive(Debug, Default)]
pub(crate) struct Losses {
    pending: Mutex<HashSet<SessionId>>,
    /// Wakes the task that writes the marks (`losses.rs`).
    pub(crate) recorded: Notify,
}

impl Losses {
    pub(crate) fn record(&self, session: SessionId) {
        self.lock().insert(session);
        self.recorded.notify_one();
    }

    /// The mark to append before the session's next event, taken off the
    /// list (empty when nothing was lost). A caller whose append did not
    /// happen gives it back with [`Losses::give_back`].
    pub(crate) fn take_mark(&self, session: SessionId) -> Vec<u8> {
        if self.lock().remove(&session) {
            codec::lost_mark()
        } else {
            Vec::new()
        }
    }

    pub(crate) fn give_back(&self, session: SessionId, mark: &[u8]) {
        if !mark.is_empty() {
            self.record(session);
        }
    }

    /// Every session with a mark to write, taken off the list.
    pub(crate) fn take_all(&self) -> Vec<SessionId> {
        self.lock().drain().collect()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashSet<SessionId>> {
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Shared {
    /// An invocation of a log script, with the log's limits as ARGV[1..5].
    pub(crate) fn log_script<'a>(&self, script: &'a Script) -> ScriptInvocation<'a> {
        let mut invocation = script.prepare_invoke();
        invocation
            .arg(self.settings.retention_us())
            .arg(self.settings.limits.max_events)
            .arg(self.settings.limits.max_bytes)
            .arg(self.settings.log_ttl_ms())
            .arg(self.settings.meta_ttl_ms());
        invocation
    }

    pub(crate) async fn state(&self, session: SessionId) -> Result<LogState, Failure> {
        let keys = self.redis.keys();
        let mut invocation = self.log_script(&crate::scripts::SCRIPTS.state);
        invocation
            .key(keys.meta(session))
            .key(keys.log(session))
            .key(keys.slot(session));
        let numbers: Vec<u64> = self.redis.run("subscribe", &invocation).await?;
        LogState::from_script(&numbers)
    }

    /// At most `most` events after `cursor` (up to `upto` when given).
    pub(crate) async fn read(
        &self,
        session: SessionId,
        cursor: u64,
        most: usize,
        upto: Option<u64>,
    ) -> Result<ReadBatch, Failure> {
        let keys = self.redis.keys();
        let mut invocation = self.log_script(&crate::scripts::SCRIPTS.read);
        invocation
            .key(keys.meta(session))
            .key(keys.log(session))
            .key(keys.slot(session))
            .arg(cursor)
            .arg(most)
            .arg(upto.unwrap_or(0));
        let values: Vec<Value> = self.redis.run("read events", &invocation).await?;
        parse_read(session, &values)
    }

    /// Wakes a reader so that its next blocking read covers a new session:
    /// an entry in its doorbell stream, which its read includes.
    pub(crate) async fn ring(&self, reader: &ReaderSessions) {
        let doorbell = self.redis.keys().doorbell(&reader.name);
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("XADD")
            .arg(&doorbell)
            .arg("MAXLEN")
            .arg(1)
            .arg("*")
            .arg("ring")
            .arg(1)
            .ignore()
            .cmd("PEXPIRE")
            .arg(&doorbell)
            .arg(millis_at_least_one(DOORBELL_TTL))
            .ignore();
        if let Err(failure) = self.redis.pipeline::<()>("wake a reader", &pipeline).await {
            // The reader is reconnecting, or will time out its read: either
            // way it reads the new set of sessions next.
            tracing::debug!(?failure, "could not wake a reader");
        }
    }
}

/// A doorbell stream outlives its reader's process by this much at most.
pub(crate) const DOORBELL_TTL: Duration = Duration::from_secs(300);

/// An event read from a stream entry. One that cannot be read becomes a
/// `stream.resync` for whoever would have got it, so that nobody skips it
/// silently.
/// The mark of events lost (see [`Losses`]) becomes one too.
pub(crate) fn entry_event(session: SessionId, id: u64, data: &[u8]) -> Buffered {
    match codec::decode(data) {
        Ok(Entry::Event(kind)) => Buffered {
            bytes: kind.approximate_bytes(),
            event: Arc::new(SessionEvent { id, kind }),
        },
        Ok(Entry::Lost) => resync_at(id),
        Err(error) => {
            tracing::error!(session_id = %session, event_id = id, %error, "an event in Redis cannot be read; its subscribers are told to resync");
            resync_at(id)
        }
    }
}

/// A `stream.resync` in place of the entry `id`: what came before it may
/// be incomplete, what follows it is whole.
fn resync_at(id: u64) -> Buffered {
    Buffered {
        bytes: 0,
        event: Arc::new(SessionEvent {
            id,
            kind: EventKind::StreamResync(Resync {
                reason: ResyncReason::NotKept,
                oldest_event_id: id + 1,
            }),
        }),
    }
}

fn parse_read(session: SessionId, values: &[Value]) -> Result<ReadBatch, Failure> {
    let unexpected = || Failure::bug(format!("the read script returned {values:?}"));
    let (head, entries) = values.split_at_checked(4).ok_or_else(unexpected)?;
    let numbers = head
        .iter()
        .map(|value| match value {
            Value::Int(n) => u64::try_from(*n).map_err(|_| unexpected()),
            _ => Err(unexpected()),
        })
        .collect::<Result<Vec<u64>, Failure>>()?;
    let state = LogState::from_script(&numbers)?;
    let events = entries
        .chunks(2)
        .map(|pair| match pair {
            [Value::Int(id), Value::BulkString(data)] => u64::try_from(*id)
                .map(|id| entry_event(session, id, data))
                .map_err(|_| unexpected()),
            _ => Err(unexpected()),
        })
        .collect::<Result<Vec<Buffered>, Failure>>()?;
    Ok(ReadBatch { state, events })
}
