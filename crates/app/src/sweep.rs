//! The sweeper: ends the replies whose replica died, with several replicas
//! sharing one event log.
//!
//! A reply's replica renews its lease while the reply runs (see
//! `colloquy_ports::ExpiredLeases`). When a replica dies, the lease runs
//! out, and one of the replicas left stores the reply `interrupted` with
//! the text last flushed and publishes its last event, so its watchers see
//! it end and the session takes a new message. Every replica runs a
//! sweeper; the claims make each reply's end happen once.
//!
//! Which final state wins is the store's business: the reply is stored
//! `interrupted` only if it is still `streaming`, and whatever the store
//! then holds is what is published. So a replica that wrote its reply's
//! end and died before announcing it has that end announced by the sweeper,
//! and the history and the last event always agree.
//!
//! Orphans, replies the store holds `streaming` that no lease names at all,
//! happen when the log lost its state (Redis restarted without persistence)
//! while their replica was dead. A reply is only taken for one after it was
//! seen without its slot for a whole lease, since a replica that is alive
//! ends its own reply within a lease of losing its slot. Start-up recovery
//! with a shared log is this sweep: it never touches a reply another
//! replica is running.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use colloquy_domain::{MessageId, MessageStatus, Timestamp};
use colloquy_ports::{
    ChatRepository, EventLog, ExpiredLeases, ExpiredReply, RepoError, SweepClaim,
};
use tokio::time::Instant;

use crate::reply::final_event;
use crate::telemetry;

/// Replies looked at per pass, of each kind. More wait for the next pass.
const BATCH: usize = 256;

/// What one pass of the sweeper did, for logs and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Replies this pass stored `interrupted`.
    pub interrupted: usize,
    /// Replies whose last event this pass published (interrupted by it, or
    /// ended in the store by a replica that died before announcing it).
    pub announced: usize,
    /// Replies taken off the list without an event: deleted, or already
    /// announced.
    pub dismissed: usize,
}

/// How a reply came to be swept, which decides whether its end may have
/// been announced already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Found {
    /// Its lease ran out: nobody announced its end (that takes it off the
    /// list), so whatever the store holds is announced.
    Expired,
    /// No lease names it: the sweep that stores it `interrupted` announces
    /// it, and one that finds it ended already leaves it, as whoever ended
    /// it announced it.
    Orphan,
}

/// Ends the replies whose replica died. Cheap to clone.
#[derive(Clone)]
pub struct ReplySweeper {
    repo: Arc<dyn ChatRepository>,
    events: Arc<dyn EventLog>,
    leases: Arc<dyn ExpiredLeases>,
    lease: Duration,
    /// Replies seen `streaming` in the store without their slot, and since
    /// when: taken for orphans once that lasted a lease.
    suspects: Arc<Mutex<HashMap<MessageId, Instant>>>,
}

impl std::fmt::Debug for ReplySweeper {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplySweeper")
            .field("leases", &self.leases)
            .field("lease", &self.lease)
            .finish_non_exhaustive()
    }
}

impl ReplySweeper {
    /// A sweeper over `leases` (the shared event log `events` is), for
    /// leases of `lease` (`COLLOQUY_LEASE_SECS`).
    #[must_use]
    pub fn new(
        repo: Arc<dyn ChatRepository>,
        events: Arc<dyn EventLog>,
        leases: Arc<dyn ExpiredLeases>,
        lease: Duration,
    ) -> Self {
        Self {
            repo,
            events,
            leases,
            lease,
            suspects: Arc::default(),
        }
    }

    /// How often every replica sweeps: twice a lease, so a dead replica's
    /// reply ends at most a lease and a half after its last renewal.
    #[must_use]
    pub fn interval(&self) -> Duration {
        (self.lease / 2).max(Duration::from_millis(50))
    }

    /// Sweeps every [`ReplySweeper::interval`] until the task is dropped.
    pub async fn run(self) {
        let mut every = tokio::time::interval(self.interval());
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let report = self.sweep().await;
            if report.announced + report.dismissed > 0 {
                tracing::warn!(
                    interrupted = report.interrupted,
                    announced = report.announced,
                    dismissed = report.dismissed,
                    "ended replies whose replica stopped"
                );
            }
        }
    }

    /// One pass: the expired replies, then the orphans. Failures are
    /// logged and left for the next pass; nothing is lost by one.
    pub async fn sweep(&self) -> SweepReport {
        let mut report = SweepReport::default();
        match self.leases.expired_replies(BATCH).await {
            Ok(expired) => {
                for reply in expired {
                    match self.leases.claim_sweep(reply).await {
                        Ok(Some(claim)) => self.end(claim, Found::Expired, &mut report).await,
                        Ok(None) => {}
                        Err(error) => {
                            tracing::warn!(%error, "cannot take on an expired reply's sweep");
                        }
                    }
                }
            }
            Err(error) => tracing::warn!(%error, "cannot list the replies whose lease ran out"),
        }
        self.sweep_orphans(&mut report).await;
        report
    }

    async fn sweep_orphans(&self, report: &mut SweepReport) {
        // A reply younger than a lease cannot have lost its slot a lease ago.
        let before = Timestamp::from_system_time(
            std::time::SystemTime::now()
                .checked_sub(self.lease)
                .unwrap_or(std::time::UNIX_EPOCH),
        );
        let streaming = match self.repo.streaming_replies(before, BATCH).await {
            Ok(streaming) => streaming,
            Err(error) => {
                tracing::warn!(%error, "cannot list the replies stored as streaming");
                return;
            }
        };
        let mut adoptable = Vec::new();
        let mut seen = HashMap::new();
        for (session, message) in streaming {
            match self.events.active_reply(session).await {
                // A turn's replies are made from the one its slot names on:
                // a reply at or after it belongs to the turn running now.
                Ok(Some(running)) if running <= message => continue,
                Ok(_) => {}
                Err(error) => {
                    tracing::warn!(%error, "cannot check a reply's slot");
                    return;
                }
            }
            let since = self.suspected_since(message);
            seen.insert(message, since);
            if since.elapsed() >= self.lease {
                adoptable.push(ExpiredReply { session, message });
            }
        }
        // Only what is still streaming stays suspect.
        *self.suspects.lock().unwrap_or_else(PoisonError::into_inner) = seen;
        for reply in adoptable {
            match self.leases.adopt_orphan(reply).await {
                Ok(Some(claim)) => self.end(claim, Found::Orphan, report).await,
                Ok(None) => {}
                Err(error) => tracing::warn!(%error, "cannot take on an orphaned reply"),
            }
        }
    }

    fn suspected_since(&self, message: MessageId) -> Instant {
        *self
            .suspects
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&message)
            .unwrap_or(&Instant::now())
    }

    /// Stores the swept turn's end and announces it. A claim dropped on a
    /// failure lets the reply expire again, to be retried.
    ///
    /// The lease names a turn's first reply; the turn's later replies were
    /// stored with it (`streaming`), so the whole turn is interrupted from
    /// that reply on. What is announced: every reply this sweep stored
    /// `interrupted`, in order; for an expired lease also the reply just
    /// before them (its replica may have stored its end and died before
    /// announcing it: a client may then see that end twice, never not at
    /// all), or the turn's last reply when none was still streaming.
    async fn end(&self, claim: Box<dyn SweepClaim>, found: Found, report: &mut SweepReport) {
        let reply = claim.reply();
        let ends = match self.repo.interrupt_turn(reply.session, reply.message).await {
            Ok(ends) if !ends.is_empty() => ends,
            Ok(_) | Err(RepoError::NotFound) => {
                // Deleted with its session: nothing is left to announce.
                dismiss(claim, report).await;
                return;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot store an expired turn `interrupted`; retrying later");
                return;
            }
        };
        for end in ends.iter().filter(|end| end.changed) {
            report.interrupted += 1;
            telemetry::reply_ended(&end.message);
        }
        if let Some(end) = ends
            .iter()
            .find(|end| end.message.status == MessageStatus::Streaming)
        {
            tracing::error!(message = %end.message.id, "a reply stored `interrupted` reads back as streaming");
            return;
        }
        let first_changed = ends.iter().position(|end| end.changed);
        let from = match (found, first_changed) {
            (Found::Orphan, None) => {
                dismiss(claim, report).await;
                return;
            }
            (Found::Orphan, Some(first)) => first,
            (Found::Expired, Some(first)) => first.saturating_sub(1),
            (Found::Expired, None) => ends.len() - 1,
        };
        let (last, before) = ends[from..]
            .split_last()
            .expect("`from` is an index of `ends`");
        for end in before {
            if let Err(error) = self
                .events
                .publish(end.message.session_id, final_event(&end.message))
                .await
            {
                tracing::warn!(%error, "cannot announce an expired reply's end; retrying later");
                return;
            }
            report.announced += 1;
        }
        let message = &last.message;
        match claim.finish(final_event(message)).await {
            Ok(Some(_)) => report.announced += 1,
            Ok(None) => {
                tracing::warn!(message = %message.id, "a sweep outlived its own lease; it is retried");
            }
            Err(error) => {
                tracing::warn!(%error, "cannot announce an expired reply's end; retrying later");
            }
        }
    }
}

async fn dismiss(claim: Box<dyn SweepClaim>, report: &mut SweepReport) {
    match claim.dismiss().await {
        Ok(true) => report.dismissed += 1,
        Ok(false) => {}
        Err(error) => tracing::warn!(%error, "cannot take a swept reply off the list"),
    }
}
