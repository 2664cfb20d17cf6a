//! The places this process holds under the concurrency limits, and their
//! renewal: one task renews every place's lease, a batch of places per
//! script call, so a thousand open streams cost one call every third of a
//! lease rather than a thousand.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use colloquy_ports::Permit;
use tokio_util::sync::CancellationToken;

use crate::connection::{Failure, Redis};
use crate::releases::Releases;
use crate::scripts::SCRIPTS;

/// Places renewed per script call.
const CHUNK: usize = 256;

#[derive(Debug)]
struct Place {
    key: String,
    token: String,
}

#[derive(Debug)]
pub(super) struct Places {
    held: Mutex<HashMap<u64, Place>>,
    next: AtomicU64,
    releases: Releases,
    lease: Duration,
}

impl Places {
    pub(super) fn new(lease: Duration) -> Self {
        Self {
            held: Mutex::new(HashMap::new()),
            next: AtomicU64::new(0),
            releases: Releases::default(),
            lease,
        }
    }

    fn held(&self) -> MutexGuard<'_, HashMap<u64, Place>> {
        self.held.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) fn count(&self) -> usize {
        self.held().len()
    }

    fn lease_ms(&self) -> u64 {
        u64::try_from(self.lease.as_millis())
            .unwrap_or(u64::MAX)
            .max(1)
    }
}

/// Takes one of the `max` places of the set `key`: `None` when all are held.
pub(super) async fn take(
    redis: &Redis,
    places: &Arc<Places>,
    key: String,
    max: u32,
) -> Result<Option<HeldPlace>, Failure> {
    // A permit this process dropped a moment ago has given its place back.
    places.releases.settle().await;
    let token = uuid::Uuid::now_v7().simple().to_string();
    let mut invocation = SCRIPTS.held_acquire.prepare_invoke();
    invocation
        .key(&key)
        .arg(&token)
        .arg(max)
        .arg(places.lease_ms());
    let taken: i64 = redis.run("take a place", &invocation).await?;
    if taken == 0 {
        return Ok(None);
    }
    let id = places.next.fetch_add(1, Ordering::Relaxed);
    places.held().insert(id, Place { key, token });
    Ok(Some(HeldPlace {
        redis: redis.clone(),
        places: Arc::clone(places),
        id,
    }))
}

/// One place taken; dropping it gives the place back.
pub(super) struct HeldPlace {
    redis: Redis,
    places: Arc<Places>,
    id: u64,
}

impl std::fmt::Debug for HeldPlace {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HeldPlace")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Permit for HeldPlace {}

impl Drop for HeldPlace {
    fn drop(&mut self) {
        let Some(place) = self.places.held().remove(&self.id) else {
            return;
        };
        let redis = self.redis.clone();
        self.places.releases.start(async move {
            let mut command = redis::cmd("ZREM");
            command.arg(&place.key).arg(&place.token);
            if let Err(failure) = redis.query::<i64>("give a place back", &command).await {
                // Unrenewed, the place lapses after its lease.
                tracing::warn!(?failure, "could not give a place back; it lapses by itself");
            }
        });
    }
}

/// The permit of a limit that is off: nothing was counted, so nothing is
/// given back.
#[derive(Debug)]
pub(super) struct Unlimited;

impl Permit for Unlimited {}

/// Renews the leases of every place this process holds, every third of a
/// lease, until `stop`.
pub(super) async fn renew(redis: Redis, places: Arc<Places>, stop: CancellationToken) {
    let every = places.lease / 3;
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        let held: Vec<(String, String)> = places
            .held()
            .values()
            .map(|place| (place.key.clone(), place.token.clone()))
            .collect();
        for chunk in held.chunks(CHUNK) {
            let mut invocation = SCRIPTS.held_renew.prepare_invoke();
            invocation.arg(places.lease_ms());
            for (key, token) in chunk {
                invocation.key(key).arg(token);
            }
            if let Err(failure) = redis.run::<i64>("renew held places", &invocation).await {
                // Tried again next round; a place lapses only after a lease.
                tracing::warn!(?failure, "could not renew the places held here");
                break;
            }
        }
    }
}
