//! What a `Drop` hands over: a claim or a permit dropped without being ended
//! must still free its slot or place in Redis, which takes an `await` that
//! `drop` cannot make. The release runs in a task of its own, and the next
//! call of the same process that could see the slot or place waits for
//! the releases started before it, so this process never sees its own
//! dropped claim still holding a slot. (Other replicas see it a round trip
//! later.)

use std::future::Future;
use std::sync::{Mutex, PoisonError};

use tokio::task::JoinHandle;

#[derive(Debug, Default)]
pub(crate) struct Releases {
    pending: Mutex<Vec<JoinHandle<()>>>,
}

impl Releases {
    /// Runs `release` in a task, when there is a runtime to run it on.
    /// Without one (the process is ending), the lease lapses by itself.
    pub(crate) fn start(&self, release: impl Future<Output = ()> + Send + 'static) {
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return;
        };
        let task = runtime.spawn(release);
        let mut pending = self.pending.lock().unwrap_or_else(PoisonError::into_inner);
        pending.retain(|task| !task.is_finished());
        pending.push(task);
    }

    /// Waits until every release started so far has run. Each one is a
    /// single command with a timeout, so this never waits long.
    pub(crate) async fn settle(&self) {
        let pending =
            std::mem::take(&mut *self.pending.lock().unwrap_or_else(PoisonError::into_inner));
        for task in pending {
            // A release that panicked has nothing more to wait for.
            let _ = task.await;
        }
    }
}
