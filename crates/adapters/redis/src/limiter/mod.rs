//! [`RedisLimiter`]: the per-principal limits, counted in Redis so that
//! every replica sees the same counts. The same rules as the in-process
//! limiter (`inprocess/src/limiter`): requests per minute as a GCRA (a
//! burst of the whole minute's allowance, refilling one request every
//! `60 / n` seconds; `Retry-After` is the wait for the next one, whole
//! seconds rounded up, at least one), places held at once per principal
//! and kind, and `0` turning a limit off.
//!
//! A request is one script call (`rate.lua`); its key lives only while its
//! state differs from a fresh key's. Places are members of a sorted set per
//! principal and kind, scored by a deadline one lease ahead: this process
//! renews the deadlines of the places it holds every third of a lease
//! (one script call for all of them, see `places.rs`), a dropped permit
//! removes its member, and the places of a replica that died lapse after a
//! lease, when the next acquire drops them.

mod places;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use colloquy_domain::Principal;
use colloquy_ports::{Held, Limit, LimitError, LimitReached, Limiter, Limits, Permit};
use tokio_util::sync::CancellationToken;

use crate::connection::Redis;
use crate::scripts::SCRIPTS;
use places::{Places, Unlimited};

/// The [`Limiter`] of replicas that share one Redis. See the module docs.
pub struct RedisLimiter {
    redis: Redis,
    limits: Limits,
    places: Arc<Places>,
    stop: CancellationToken,
}

impl fmt::Debug for RedisLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisLimiter")
            .field("redis", &self.redis)
            .field("limits", &self.limits)
            .field("places_held_here", &self.places.count())
            .finish()
    }
}

impl Drop for RedisLimiter {
    fn drop(&mut self) {
        self.stop.cancel();
    }
}

impl RedisLimiter {
    /// A limiter enforcing `limits` on `redis`; the places it hands out
    /// outlive a replica that dies by `place_lease` (`COLLOQUY_LEASE_SECS`).
    ///
    /// # Panics
    /// Outside a Tokio runtime (the renewal of held places runs as a task).
    #[must_use]
    pub fn new(redis: Redis, limits: Limits, place_lease: Duration) -> Self {
        let places = Arc::new(Places::new(place_lease));
        let stop = CancellationToken::new();
        tokio::spawn(places::renew(
            redis.clone(),
            Arc::clone(&places),
            stop.clone(),
        ));
        Self {
            redis,
            limits,
            places,
            stop,
        }
    }

    /// How many places this process holds now (for tests and gauges).
    #[must_use]
    pub fn places_held_here(&self) -> usize {
        self.places.count()
    }

    const fn max_held(&self, what: Held) -> u32 {
        match what {
            Held::Reply => self.limits.replies_at_once,
            Held::Stream => self.limits.streams_at_once,
        }
    }
}

#[async_trait]
impl Limiter for RedisLimiter {
    fn limits(&self) -> Limits {
        self.limits
    }

    async fn count_request(&self, who: &str) -> Result<(), LimitError> {
        let per_minute = self.limits.requests_per_minute;
        if per_minute == 0 {
            return Ok(());
        }
        let interval = 60_000_000 / u64::from(per_minute);
        let mut invocation = SCRIPTS.rate.prepare_invoke();
        invocation
            .key(self.redis.keys().rate(who))
            .arg(interval)
            .arg(interval * u64::from(per_minute - 1));
        let wait_us: u64 = self.redis.run("count a request", &invocation).await?;
        if wait_us == 0 {
            return Ok(());
        }
        Err(LimitReached {
            limit: Limit::RequestsPerMinute,
            max: u64::from(per_minute),
            retry_after: whole_seconds_at_least_one(Duration::from_micros(wait_us)),
        }
        .into())
    }

    async fn acquire(
        &self,
        what: Held,
        principal: &Principal,
    ) -> Result<Box<dyn Permit>, LimitError> {
        let max = self.max_held(what);
        if max == 0 {
            return Ok(Box::new(Unlimited));
        }
        let key = self.redis.keys().held(what, principal);
        match places::take(&self.redis, &self.places, key, max).await? {
            Some(permit) => Ok(Box::new(permit)),
            None => Err(LimitReached {
                limit: what.limit(),
                max: u64::from(max),
                retry_after: what.retry_after(),
            }
            .into()),
        }
    }
}

/// `wait` rounded up to whole seconds, and never less than one: a client
/// told to wait 0 s would come straight back and be refused again.
fn whole_seconds_at_least_one(wait: Duration) -> Duration {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    Duration::from_secs(seconds.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        assert_eq!(
            whole_seconds_at_least_one(Duration::ZERO),
            Duration::from_secs(1)
        );
        assert_eq!(
            whole_seconds_at_least_one(Duration::from_micros(2_000_001)),
            Duration::from_secs(3)
        );
        assert_eq!(
            whole_seconds_at_least_one(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }
}
