//! Requests per minute per key, with `governor`'s keyed GCRA limiter.

use std::fmt;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use colloquy_ports::{Limit, LimitReached};
use governor::clock::{Clock, MonotonicClock};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::{Quota, RateLimiter};

/// Calls between two sweeps of idle keys, at the least. A sweep also waits
/// for as many calls as it kept keys last time, so its cost (a pass over
/// every key) is spread over at least as many calls: constant work per call
/// on average, however many keys there are.
const SWEEP_AFTER_CALLS: u64 = 1024;

type KeyedLimiter<C> =
    RateLimiter<String, DashMapStateStore<String>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Counts requests per key against `n` a minute: a burst of `n`, refilling
/// one every `60 / n` seconds.
pub(super) struct RequestRate<C: Clock = MonotonicClock> {
    per_minute: NonZeroU32,
    limiter: KeyedLimiter<C>,
    /// Calls since the last sweep; the caller that resets it sweeps.
    calls_since_sweep: AtomicU64,
    /// How many keys the last sweep kept.
    kept_by_last_sweep: AtomicUsize,
}

impl RequestRate {
    /// `None` for `0`: the limit is off and nothing is counted.
    pub(super) fn per_minute(per_minute: u32) -> Option<Self> {
        NonZeroU32::new(per_minute).map(|n| Self::with_clock(n, MonotonicClock))
    }
}

impl<C: Clock> RequestRate<C> {
    pub(super) fn with_clock(per_minute: NonZeroU32, clock: C) -> Self {
        Self {
            per_minute,
            limiter: RateLimiter::dashmap_with_clock(Quota::per_minute(per_minute), clock),
            calls_since_sweep: AtomicU64::new(0),
            kept_by_last_sweep: AtomicUsize::new(0),
        }
    }

    /// Counts one request of `who`.
    ///
    /// # Errors
    /// [`LimitReached`] when `who` has spent the allowance; its
    /// `retry_after` is when the next request will be let through, rounded
    /// up to whole seconds (a `Retry-After` header has no fractions), and at
    /// least a second.
    pub(super) fn count(&self, who: &str) -> Result<(), LimitReached> {
        self.sweep_if_due();
        self.limiter
            .check_key(&who.to_owned())
            .map_err(|not_until| {
                let wait = not_until.wait_time_from(self.limiter.clock().now());
                LimitReached {
                    limit: Limit::RequestsPerMinute,
                    max: u64::from(self.per_minute.get()),
                    retry_after: whole_seconds_at_least_one(wait),
                }
            })
    }

    pub(super) fn tracked_keys(&self) -> usize {
        self.limiter.len()
    }

    /// Drops the keys whose state is no different from a fresh key's (their
    /// allowance has been full again for a while), once enough calls have
    /// gone by since the last sweep.
    fn sweep_if_due(&self) {
        let calls = self.calls_since_sweep.fetch_add(1, Ordering::Relaxed) + 1;
        let kept =
            u64::try_from(self.kept_by_last_sweep.load(Ordering::Relaxed)).unwrap_or(u64::MAX);
        if calls < SWEEP_AFTER_CALLS.max(kept) {
            return;
        }
        // Only the caller that resets the count sweeps; a concurrent one
        // that counted meanwhile fails here and simply goes on.
        if self
            .calls_since_sweep
            .compare_exchange(calls, 0, Ordering::AcqRel, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
        self.kept_by_last_sweep
            .store(self.limiter.len(), Ordering::Relaxed);
    }
}

impl<C: Clock> fmt::Debug for RequestRate<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RequestRate")
            .field("per_minute", &self.per_minute)
            .field("tracked_keys", &self.tracked_keys())
            .finish_non_exhaustive()
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
    use governor::clock::FakeRelativeClock;

    use super::*;

    fn rate(per_minute: u32) -> (RequestRate<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let rate = RequestRate::with_clock(NonZeroU32::new(per_minute).unwrap(), clock.clone());
        (rate, clock)
    }

    /// The `retry_after` of a refusal, failing the test if `who` is let through.
    fn refused(rate: &RequestRate<FakeRelativeClock>, who: &str) -> Duration {
        match rate.count(who) {
            Ok(()) => panic!("{who} was let through"),
            Err(reached) => {
                assert_eq!(reached.limit, Limit::RequestsPerMinute);
                assert_eq!(reached.max, u64::from(rate.per_minute.get()));
                reached.retry_after
            }
        }
    }

    #[test]
    fn the_allowance_is_spent_at_exactly_n_and_refills_continuously() {
        let (rate, clock) = rate(3);
        for request in 1..=3 {
            assert_eq!(rate.count("alice"), Ok(()), "request {request}");
        }
        // One request comes back every 20 s.
        assert_eq!(refused(&rate, "alice"), Duration::from_secs(20));
        clock.advance(Duration::from_secs(19));
        assert_eq!(refused(&rate, "alice"), Duration::from_secs(1));
        clock.advance(Duration::from_secs(1));
        assert_eq!(rate.count("alice"), Ok(()));
        assert_eq!(refused(&rate, "alice"), Duration::from_secs(20));

        // A quiet minute gives the whole burst back, and no more than that.
        clock.advance(Duration::from_secs(600));
        for request in 1..=3 {
            assert_eq!(
                rate.count("alice"),
                Ok(()),
                "request {request} after a pause"
            );
        }
        refused(&rate, "alice");
    }

    #[test]
    fn retry_after_is_whole_seconds_rounded_up_and_at_least_one() {
        // 600 a minute: the next request is 100 ms away, which is said as 1 s.
        let (fast, _clock) = rate(600);
        for _ in 0..600 {
            fast.count("alice").unwrap();
        }
        assert_eq!(refused(&fast, "alice"), Duration::from_secs(1));

        // 7 a minute: one every 8.57 s.
        let (slow, clock) = rate(7);
        for _ in 0..7 {
            slow.count("alice").unwrap();
        }
        assert_eq!(refused(&slow, "alice"), Duration::from_secs(9));
        clock.advance(Duration::from_secs(8));
        assert_eq!(refused(&slow, "alice"), Duration::from_secs(1));
        clock.advance(Duration::from_millis(600));
        assert_eq!(slow.count("alice"), Ok(()));

        assert_eq!(
            whole_seconds_at_least_one(Duration::ZERO),
            Duration::from_secs(1)
        );
        assert_eq!(
            whole_seconds_at_least_one(Duration::from_millis(2_001)),
            Duration::from_secs(3)
        );
        assert_eq!(
            whole_seconds_at_least_one(Duration::from_secs(2)),
            Duration::from_secs(2)
        );
    }

    #[test]
    fn keys_are_counted_apart() {
        let (rate, _clock) = rate(2);
        rate.count("alice").unwrap();
        rate.count("alice").unwrap();
        refused(&rate, "alice");

        rate.count("bob").unwrap();
        rate.count("ip:203.0.113.7").unwrap();
        rate.count("bob").unwrap();
        refused(&rate, "bob");
        refused(&rate, "alice");
        assert_eq!(rate.tracked_keys(), 3);
    }

    #[test]
    fn idle_keys_are_dropped_and_limited_ones_kept() {
        let (rate, clock) = rate(2);
        // Far more one-off clients than a sweep waits for.
        for client in 0..3_000 {
            rate.count(&format!("ip:10.0.{}.{}", client / 256, client % 256))
                .unwrap();
        }
        // Sweeps ran meanwhile, but every key was recent: all stay.
        assert_eq!(rate.tracked_keys(), 3_000);

        clock.advance(Duration::from_secs(180));
        rate.count("alice").unwrap();
        rate.count("alice").unwrap();
        // Refused calls count towards the next sweep too.
        let calls = usize::try_from(SWEEP_AFTER_CALLS).unwrap().max(3_000);
        for _ in 0..calls {
            refused(&rate, "alice");
        }

        assert_eq!(
            rate.tracked_keys(),
            1,
            "only the key that spent its allowance is left"
        );
        assert_eq!(refused(&rate, "alice"), Duration::from_secs(30));
        // A dropped key starts again with a full allowance, as it would have.
        rate.count("ip:10.0.0.1").unwrap();
        rate.count("ip:10.0.0.1").unwrap();
        refused(&rate, "ip:10.0.0.1");
    }
}
