//! The reference model of one session: every event its log published (as a
//! subscriber that never lags reads them), which of them the log must still
//! keep, and its replies. It is what the real parts are compared with.

use std::collections::HashMap;
use std::sync::Arc;

use colloquy_app::{EventKind, ResyncReason, SessionEvent};
use colloquy_domain::{ErrorCode, MessageId, Role};
use colloquy_inprocess::LogLimits;

use super::fakes::FakeRepo;

/// One reply of the session, as its events told it.
#[derive(Debug)]
pub struct Reply {
    /// The id of its turn's first event (the user's `message.created`).
    pub first_event: u64,
    pub user: MessageId,
    /// Its final event, once it is out.
    pub end: Option<EventKind>,
}

/// A `stream.resync` a subscriber must be given first, and what it must say.
/// `None` where the model cannot know (nothing was published yet).
#[derive(Debug, Clone, Copy)]
pub struct ExpectedResync {
    pub reason: ResyncReason,
    /// The id it carries: where the subscriber goes on from.
    pub id: Option<u64>,
    pub oldest: Option<u64>,
}

/// Where a new subscriber must start.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    /// The id after which it reads; `None`: before the session's first event.
    pub cursor: Option<u64>,
    pub resync: Option<ExpectedResync>,
}

#[derive(Debug)]
pub struct SessionLog {
    limits: LogLimits,
    /// Every event published, in order (ids consecutive).
    events: Vec<Arc<SessionEvent>>,
    /// How many of the oldest events the log may have let go of.
    evicted: usize,
    kept_bytes: usize,
    pub replies: HashMap<MessageId, Reply>,
    /// The reply holding the session's slot.
    pub running: Option<MessageId>,
    /// The user `message.created` of a turn whose reply is not announced yet.
    turn_start: Option<(u64, MessageId)>,
    /// The session was deleted (successfully) by the test.
    pub deleted: bool,
    /// The reference subscriber's stream ended.
    pub recorder_ended: bool,
    /// What the reference subscriber found wrong, for the next check.
    pub violations: Vec<String>,
}

impl SessionLog {
    pub fn new(limits: LogLimits) -> Self {
        Self {
            limits,
            events: Vec::new(),
            evicted: 0,
            kept_bytes: 0,
            replies: HashMap::new(),
            running: None,
            turn_start: None,
            deleted: false,
            recorder_ended: false,
            violations: Vec::new(),
        }
    }

    /// The id of the session's first event, if any was published.
    pub fn first_id(&self) -> Option<u64> {
        self.events.first().map(|event| event.id)
    }

    pub fn newest(&self) -> Option<u64> {
        self.events.last().map(|event| event.id)
    }

    /// The oldest event the log must still keep.
    pub fn oldest_kept(&self) -> Option<u64> {
        self.events.get(self.evicted).map(|event| event.id)
    }

    /// How many events and bytes the log must keep now: the newest ones
    /// within both limits, and always the newest one.
    pub fn kept(&self) -> (usize, usize) {
        (self.events.len() - self.evicted, self.kept_bytes)
    }

    pub fn event(&self, id: u64) -> Option<&Arc<SessionEvent>> {
        let first = self.first_id()?;
        let index = usize::try_from(id.checked_sub(first)?).ok()?;
        self.events.get(index)
    }

    /// Where a client that connects now without an id starts: before the
    /// running reply's first event when that is kept, else after the newest.
    pub fn live_cursor(&self) -> Option<u64> {
        let newest = self.newest()?;
        let reply_start = self
            .running
            .and_then(|id| self.replies.get(&id))
            .map(|reply| reply.first_event);
        Some(match (reply_start, self.oldest_kept()) {
            (Some(first), Some(oldest)) if first >= oldest => first - 1,
            _ => newest,
        })
    }

    /// A client connecting now without an id.
    pub fn start_live(&self) -> Start {
        let reply_start = self
            .running
            .and_then(|id| self.replies.get(&id))
            .map(|reply| reply.first_event);
        let lost = matches!((reply_start, self.oldest_kept()), (Some(first), Some(oldest)) if first < oldest);
        Start {
            cursor: self.live_cursor(),
            resync: lost.then(|| self.resync(ResyncReason::NotKept)),
        }
    }

    /// A client resuming after `after`.
    pub fn start_after(&self, after: u64) -> Start {
        let Some(newest) = self.newest() else {
            // Nothing published: any id the test makes up (0) precedes the
            // session's first one, which the model does not know yet.
            return Start {
                cursor: None,
                resync: Some(ExpectedResync {
                    reason: ResyncReason::NotKept,
                    id: None,
                    oldest: None,
                }),
            };
        };
        let oldest = self.oldest_kept().unwrap_or(newest + 1);
        let reason = if after > newest {
            ResyncReason::UnknownEventId
        } else if after + 1 < oldest {
            ResyncReason::NotKept
        } else {
            return Start {
                cursor: Some(after),
                resync: None,
            };
        };
        Start {
            cursor: self.live_cursor(),
            resync: Some(self.resync(reason)),
        }
    }

    pub fn resync(&self, reason: ResyncReason) -> ExpectedResync {
        ExpectedResync {
            reason,
            id: self.live_cursor(),
            oldest: self.oldest_kept(),
        }
    }

    /// Takes in the next event the reference subscriber read, checking what
    /// can be checked the moment it is out.
    pub fn observe(&mut self, event: &Arc<SessionEvent>, repo: &FakeRepo) {
        if let EventKind::StreamResync(resync) = &event.kind {
            self.violations.push(format!(
                "the reference subscriber, which reads every event as it is published, was sent \
                 a stream.resync ({resync:?}): the log let go of events a subscriber that keeps up \
                 had not read"
            ));
            return;
        }
        if let Some(newest) = self.newest() {
            if event.id != newest + 1 {
                self.violations.push(format!(
                    "the log published event {} right after {newest}: a session's ids are consecutive",
                    event.id
                ));
            }
        }
        self.events.push(Arc::clone(event));
        self.kept_bytes += event.kind.approximate_bytes();
        while self.events.len() - self.evicted > 1
            && (self.events.len() - self.evicted > self.limits.max_events
                || self.kept_bytes > self.limits.max_bytes)
        {
            self.kept_bytes -= self.events[self.evicted].kind.approximate_bytes();
            self.evicted += 1;
        }
        self.follow_replies(event, repo);
    }

    fn follow_replies(&mut self, event: &SessionEvent, repo: &FakeRepo) {
        match &event.kind {
            EventKind::MessageCreated(message) if message.role == Role::User => {
                self.turn_start = Some((event.id, message.id));
            }
            EventKind::MessageCreated(message) => {
                if let Some(running) = self.running {
                    self.violations.push(format!(
                        "reply {} was announced (event {}) while reply {running} still held the slot",
                        message.id, event.id
                    ));
                }
                let Some((first_event, user)) = self.turn_start.take() else {
                    self.violations.push(format!(
                        "reply {} was announced (event {}) without its user message first",
                        message.id, event.id
                    ));
                    return;
                };
                self.replies.insert(
                    message.id,
                    Reply {
                        first_event,
                        user,
                        end: None,
                    },
                );
                self.running = Some(message.id);
            }
            EventKind::MessageDelta { message_id, .. }
            | EventKind::MessageReset { message_id }
            | EventKind::MessageToolCall { message_id, .. } => {
                if self.running != Some(*message_id) {
                    self.violations.push(format!(
                        "event {} ({}) is of reply {message_id}, which is not running (running: {:?})",
                        event.id,
                        event.kind.name(),
                        self.running
                    ));
                }
            }
            EventKind::MessageCompleted(message) | EventKind::MessageFailed(message) => {
                if self.running != Some(message.id) {
                    self.violations.push(format!(
                        "event {} ends reply {}, which is not running (running: {:?})",
                        event.id, message.id, self.running
                    ));
                }
                self.running = None;
                if let Some(reply) = self.replies.get_mut(&message.id) {
                    reply.end = Some(event.kind.clone());
                }
                if let Err(problem) = stored_agrees(repo, &event.kind) {
                    self.violations.push(format!(
                        "when event {} ({}) was out: {problem}",
                        event.id,
                        event.kind.name()
                    ));
                }
            }
            EventKind::SessionUpdated(_) | EventKind::StreamResync(_) => {}
        }
    }
}

/// Whether a reply's final event tells what the store holds: the message it
/// carries is the one stored, or, when the store refused the final write,
/// the event says so (`message.failed`, `internal`) and claims nothing more.
/// A message no longer stored (its session was deleted) is not judged.
pub fn stored_agrees(repo: &FakeRepo, last: &EventKind) -> Result<(), String> {
    let Some(announced) = last.finished_message() else {
        return Ok(());
    };
    let Some(stored) = repo.message(announced.id) else {
        return Ok(());
    };
    if repo.last_update_failed(announced.id) {
        let says_so = matches!(last, EventKind::MessageFailed(_))
            && announced.error.as_ref().map(|error| error.code) == Some(ErrorCode::Internal);
        if !says_so {
            return Err(format!(
                "the store refused reply {}'s last write (it holds status {}, {} chars), yet its \
                 final event announces {} with status {}",
                announced.id,
                stored.status.as_str(),
                stored.content.len(),
                last.name(),
                announced.status.as_str()
            ));
        }
        return Ok(());
    }
    if stored != *announced {
        return Err(format!(
            "reply {}'s final event carries status {} with {} chars, but the store holds status {} \
             with {} chars: the final event must follow the final write and carry what it wrote",
            announced.id,
            announced.status.as_str(),
            announced.content.len(),
            stored.status.as_str(),
            stored.content.len()
        ));
    }
    Ok(())
}
