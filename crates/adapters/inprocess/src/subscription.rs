//! One client's view of a session's events, from its own cursor in the log.

use std::collections::VecDeque;
use std::sync::Arc;

use colloquy_ports::{EventKind, EventStream, Resync, ResyncReason, SessionEvent};
use tokio::sync::watch;

use crate::channel::Channel;
use crate::{lock, Shared};

/// Most events, and about the most bytes, a subscriber takes from the log at once.
const BATCH: usize = 256;
const BATCH_BYTES: usize = 256 * 1024;

#[derive(Debug)]
pub(crate) struct Subscription {
    channel: Arc<Channel>,
    wake: watch::Receiver<()>,
    /// The id of the last event handed out (or skipped by a resync).
    cursor: u64,
    ready: VecDeque<Shared>,
}

impl Subscription {
    pub(crate) fn new(
        channel: Arc<Channel>,
        wake: watch::Receiver<()>,
        cursor: u64,
        resync: Option<Resync>,
    ) -> Self {
        let mut ready = VecDeque::new();
        if let Some(resync) = resync {
            ready.push_back(resync_event(cursor, resync));
        }
        Self {
            channel,
            wake,
            cursor,
            ready,
        }
    }

    /// The next event, waiting for it if need be. `None` once the channel
    /// was closed and everything published before that was delivered.
    async fn next(&mut self) -> Option<Shared> {
        loop {
            if let Some(event) = self.ready.pop_front() {
                return Some(event);
            }
            // Mark the current state seen *before* reading the log, so a
            // publish that lands after the read still wakes us below.
            self.wake.borrow_and_update();
            {
                let state = lock(&self.channel.state);
                if let Some(resync) = state.resync_for(&mut self.cursor, ResyncReason::FellBehind) {
                    self.ready.push_back(resync_event(self.cursor, resync));
                }
                state.read_after(self.cursor, BATCH, BATCH_BYTES, &mut self.ready);
                if let Some(newest) = self.ready.back() {
                    self.cursor = self.cursor.max(newest.id);
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
fn resync_event(cursor: u64, resync: Resync) -> Shared {
    Arc::new(SessionEvent {
        id: cursor,
        kind: EventKind::StreamResync(resync),
    })
}
