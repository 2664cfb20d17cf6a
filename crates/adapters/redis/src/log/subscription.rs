//! One client's view of a session's events, from its own cursor: served
//! from the process's watch when it is close behind, from Redis when it is
//! further, and told to resync when what it needs is gone.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use colloquy_ports::{EventKind, EventStream, Resync, ResyncReason, SessionEvent};
use tokio::sync::watch;

use super::hub::{Step, Watch, BATCH};
use super::shared::Shared;
use crate::connection::Failure;

/// The pause after the first failed read from Redis; it doubles with every
/// failure in a row, up to the longest.
const FIRST_PAUSE: Duration = Duration::from_millis(50);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

#[derive(Debug)]
pub(crate) struct Subscription {
    shared: Arc<Shared>,
    watch: Arc<Watch>,
    wake: watch::Receiver<()>,
    /// The id of the last event handed out (or skipped by a resync).
    cursor: u64,
    ready: VecDeque<Arc<SessionEvent>>,
    /// Reads from Redis that failed in a row.
    failures: u32,
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.shared.hub.leave(&self.watch);
    }
}

impl Subscription {
    pub(crate) fn new(
        shared: Arc<Shared>,
        watch: Arc<Watch>,
        cursor: u64,
        resync: Option<Resync>,
    ) -> Self {
        let mut ready = VecDeque::new();
        if let Some(resync) = resync {
            ready.push_back(resync_event(cursor, resync));
        }
        Self {
            wake: watch.wake_receiver(),
            shared,
            watch,
            cursor,
            ready,
            failures: 0,
        }
    }

    /// The next event, waiting for it if need be. `None` once the session
    /// was closed (or the log shut) and everything before that was given.
    async fn next(&mut self) -> Option<Arc<SessionEvent>> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            // Mark the watch's state seen *before* looking at it, so that a
            // change landing after the look still wakes us below.
            self.wake.borrow_and_update();
            match self.watch.take_after(self.cursor, &mut self.ready) {
                Step::Took => {
                    if let Some(newest) = self.ready.back() {
                        self.cursor = newest.id;
                    }
                }
                Step::Ended => return None,
                Step::Wait => {
                    if self.wake.changed().await.is_err() {
                        return None;
                    }
                }
                Step::ReadFromRedis { upto } => match self.read_from_redis(upto).await {
                    Ok(true) => self.failures = 0,
                    // A closed session has nothing more to give, and one
                    // whose events cannot be read any more ends too.
                    Ok(false) | Err(_) if upto.is_some() => return None,
                    Ok(false) => {
                        // Nothing after the cursor yet although the watch read
                        // further: a moment's wait, not a busy loop.
                        self.failures = 0;
                        self.pause().await;
                    }
                    Err(failure) => {
                        tracing::debug!(session_id = %self.watch.session, ?failure, "a subscriber could not read from Redis; trying again");
                        self.failures += 1;
                        self.pause().await;
                    }
                },
            }
        }
    }

    /// Reads the events after the cursor from Redis: `true` when something
    /// was made ready (events, or the resync that replaces them).
    async fn read_from_redis(&mut self, upto: Option<u64>) -> Result<bool, Failure> {
        let batch = self
            .shared
            .read(self.watch.session, self.cursor, BATCH, upto)
            .await?;
        if let Some((cursor, resync)) = batch.state.catch_up(self.cursor, ResyncReason::FellBehind)
        {
            if upto.is_some() {
                return Ok(false);
            }
            self.cursor = cursor;
            self.ready.push_back(resync_event(cursor, resync));
            return Ok(true);
        }
        let before = self.ready.len();
        for buffered in batch.events {
            if buffered.event.id > self.cursor {
                self.cursor = buffered.event.id;
                self.ready.push_back(buffered.event);
            }
        }
        Ok(self.ready.len() > before)
    }

    /// Waits for the watch to change, or a pause that grows with failures.
    async fn pause(&mut self) {
        let pause = FIRST_PAUSE
            .saturating_mul(2_u32.saturating_pow(self.failures.min(8)))
            .min(LONGEST_PAUSE);
        tokio::select! {
            _ = self.wake.changed() => {}
            () = tokio::time::sleep(pause) => {}
        }
    }

    pub(crate) fn into_stream(self) -> EventStream {
        Box::pin(futures::stream::unfold(
            self,
            |mut subscription| async move {
                let event = subscription.next().await?;
                Some((event, subscription))
            },
        ))
    }
}

/// A `stream.resync` for one subscriber. Its id is where the subscriber's
/// stream goes on from, so resuming from it continues right after it.
fn resync_event(cursor: u64, resync: Resync) -> Arc<SessionEvent> {
    Arc::new(SessionEvent {
        id: cursor,
        kind: EventKind::StreamResync(resync),
    })
}
