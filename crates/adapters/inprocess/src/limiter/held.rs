//! Places held at once, per principal and kind: a counter map under one
//! short lock, taken when a reply or a stream starts and given back when its
//! [`HeldPlace`] drops.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use colloquy_domain::Principal;
use colloquy_ports::{Held, LimitReached, Permit};

use crate::lock;

type Counts = HashMap<(Held, Principal), u32>;

/// How many places each principal holds of each kind. Only principals that
/// hold at least one place have an entry, so the map is as large as the
/// number of replies and streams running, whoever has come and gone.
#[derive(Default)]
pub(super) struct HeldPlaces {
    // Locked only to read and bump one counter: never across an await, and
    // never for longer than a hash lookup.
    counts: Arc<Mutex<Counts>>,
}

impl HeldPlaces {
    /// Takes one of the `max` places `principal` may hold of `what`.
    ///
    /// # Errors
    /// [`LimitReached`] when `principal` already holds `max`.
    pub(super) fn take(
        &self,
        what: Held,
        principal: &Principal,
        max: u32,
    ) -> Result<HeldPlace, LimitReached> {
        let key = (what, principal.clone());
        {
            let mut counts = lock(&self.counts);
            let held = counts.get(&key).copied().unwrap_or(0);
            if held >= max {
                // Refused without an entry being made: a principal that
                // holds nothing costs nothing, even when it is refused.
                return Err(LimitReached {
                    limit: what.limit(),
                    max: u64::from(max),
                    retry_after: what.retry_after(),
                });
            }
            counts.insert(key.clone(), held + 1);
        }
        Ok(HeldPlace {
            counts: Arc::clone(&self.counts),
            key,
        })
    }

    /// How many places `principal` holds of `what` now.
    #[cfg(test)]
    pub(super) fn held(&self, what: Held, principal: &Principal) -> u32 {
        lock(&self.counts)
            .get(&(what, principal.clone()))
            .copied()
            .unwrap_or(0)
    }

    /// How many principal-and-kind counters exist now.
    pub(super) fn counters(&self) -> usize {
        lock(&self.counts).len()
    }
}

impl fmt::Debug for HeldPlaces {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldPlaces")
            .field("counters", &self.counters())
            .finish()
    }
}

/// One place taken; dropping it gives the place back.
pub(super) struct HeldPlace {
    counts: Arc<Mutex<Counts>>,
    key: (Held, Principal),
}

impl Drop for HeldPlace {
    fn drop(&mut self) {
        let mut counts = lock(&self.counts);
        if let Some(held) = counts.get_mut(&self.key) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.remove(&self.key);
            }
        }
    }
}

impl fmt::Debug for HeldPlace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HeldPlace")
            .field("what", &self.key.0)
            .field("principal", &self.key.1)
            .finish_non_exhaustive()
    }
}

impl Permit for HeldPlace {}

/// The permit of a limit that is off: nothing was counted, so nothing is
/// given back.
#[derive(Debug)]
pub(super) struct Unlimited;

impl Permit for Unlimited {}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use colloquy_ports::Limit;

    use super::*;

    fn principal(name: &str) -> Principal {
        Principal::parse(name).unwrap()
    }

    #[test]
    fn the_place_after_the_last_is_refused_until_one_is_given_back() {
        let places = HeldPlaces::default();
        let alice = principal("alice");
        let first = places.take(Held::Reply, &alice, 2).unwrap();
        let _second = places.take(Held::Reply, &alice, 2).unwrap();

        let refused = places.take(Held::Reply, &alice, 2).unwrap_err();
        assert_eq!(
            refused,
            LimitReached {
                limit: Limit::RepliesAtOnce,
                max: 2,
                retry_after: Duration::from_secs(5),
            }
        );
        assert_eq!(
            places.held(Held::Reply, &alice),
            2,
            "a refusal takes nothing"
        );

        drop(first);
        assert_eq!(places.held(Held::Reply, &alice), 1);
        let _third = places.take(Held::Reply, &alice, 2).unwrap();
        assert!(places.take(Held::Reply, &alice, 2).is_err());
    }

    #[test]
    fn principals_and_kinds_are_counted_apart() {
        let places = HeldPlaces::default();
        let (alice, bob) = (principal("alice"), principal("bob"));
        let _reply = places.take(Held::Reply, &alice, 1).unwrap();
        assert!(places.take(Held::Reply, &alice, 1).is_err());

        let _stream = places.take(Held::Stream, &alice, 1).unwrap();
        let _bobs = places.take(Held::Reply, &bob, 1).unwrap();
        let refused = places.take(Held::Stream, &alice, 1).unwrap_err();
        assert_eq!(refused.limit, Limit::StreamsAtOnce);
        assert_eq!(places.counters(), 3);
    }

    #[test]
    fn a_counter_back_at_zero_leaves_the_map() {
        let places = HeldPlaces::default();
        for client in 0..100 {
            let who = principal(&format!("client-{client}"));
            let a = places.take(Held::Stream, &who, 3).unwrap();
            let b = places.take(Held::Stream, &who, 3).unwrap();
            drop((a, b));
        }
        assert_eq!(places.counters(), 0);

        // A refusal of a principal holding nothing leaves nothing either.
        assert!(places.take(Held::Stream, &principal("zero"), 0).is_err());
        assert_eq!(places.counters(), 0);
    }
}
