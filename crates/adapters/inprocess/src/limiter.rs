//! [`InProcessLimiter`]: the per-principal limits of one process.
//!
//! Requests per minute are counted per key (a principal, or `ip:<address>`
//! for an anonymous client) with `governor`'s GCRA: a client may spend the
//! whole minute's allowance in a burst, and the allowance refills
//! continuously, one request every `60 / n` seconds. The places held at once
//! (replies being generated, event streams open) are plain counters per
//! principal and kind, taken by [`Limiter::acquire`] and given back when the
//! [`Permit`] drops.
//!
//! Memory stays bounded however many distinct keys arrive: keys whose state
//! is indistinguishable from a fresh one are dropped now and then, from
//! within [`Limiter::count_request`] itself, and a principal's counter
//! leaves the map when its last place is given back. Nothing runs in the
//! background, so there is no task to start or to stop.
//!
//! The daily token allowance ([`Limits::daily_tokens`]) is not counted here:
//! it is a sum over the day kept in the store (the usage ledger), which the
//! core reads before a reply.
//!
//! Counts live in this process only: two replicas each allow the whole
//! limit. Replicas that must share limits need an adapter whose counters are
//! shared (Redis).

mod held;
mod rate;

use std::fmt;

use async_trait::async_trait;
use colloquy_domain::Principal;
use colloquy_ports::{Held, LimitError, Limiter, Limits, Permit};

use held::{HeldPlaces, Unlimited};
use rate::RequestRate;

/// The [`Limiter`] of a single process. See the module docs.
pub struct InProcessLimiter {
    limits: Limits,
    /// `None` when requests per minute are not limited (`0`).
    requests: Option<RequestRate>,
    held: HeldPlaces,
}

impl InProcessLimiter {
    /// A limiter enforcing `limits`; a limit of `0` is off.
    #[must_use]
    pub fn new(limits: Limits) -> Self {
        Self {
            limits,
            requests: RequestRate::per_minute(limits.requests_per_minute),
            held: HeldPlaces::default(),
        }
    }

    /// How many keys have request-rate state now: at most about twice the
    /// keys active in the last couple of minutes, plus a thousand (for tests
    /// and memory gauges).
    #[must_use]
    pub fn tracked_request_keys(&self) -> usize {
        self.requests.as_ref().map_or(0, RequestRate::tracked_keys)
    }

    /// How many principal-and-kind counters are held now: one for each that
    /// holds at least one place (for tests and memory gauges).
    #[must_use]
    pub fn held_counters(&self) -> usize {
        self.held.counters()
    }

    const fn max_held(&self, what: Held) -> u32 {
        match what {
            Held::Reply => self.limits.replies_at_once,
            Held::Stream => self.limits.streams_at_once,
        }
    }
}

impl fmt::Debug for InProcessLimiter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The keys themselves are principals and client addresses: their
        // numbers say enough in a log.
        f.debug_struct("InProcessLimiter")
            .field("limits", &self.limits)
            .field("tracked_request_keys", &self.tracked_request_keys())
            .field("held_counters", &self.held_counters())
            .finish()
    }
}

#[async_trait]
impl Limiter for InProcessLimiter {
    fn limits(&self) -> Limits {
        self.limits
    }

    async fn count_request(&self, who: &str) -> Result<(), LimitError> {
        match &self.requests {
            Some(rate) => Ok(rate.count(who)?),
            None => Ok(()),
        }
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
        let place = self.held.take(what, principal, max)?;
        Ok(Box::new(place))
    }
}

#[cfg(test)]
mod tests;
