//! Where a subscriber starts and when it must resync: the in-process log's
//! rules (`inprocess/src/channel.rs`), decided on what one script saw of a
//! session's log in Redis.

use colloquy_ports::{Resync, ResyncReason, StartAt};

use crate::connection::Failure;

/// Where a session's log stands, as one script saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct LogState {
    /// The first id of the session's counter: ids below it were given by an
    /// earlier counter (before a restart of Redis, or before the session's
    /// log expired), whose events are gone.
    pub(crate) first: u64,
    /// The id the next event will have.
    pub(crate) next: u64,
    /// The oldest id kept, or `next` when none is.
    pub(crate) oldest: u64,
    /// The id of the running reply's first event, if a reply runs.
    pub(crate) reply_start: Option<u64>,
}

impl LogState {
    /// From the first four numbers a script returned: first, next, oldest,
    /// and the reply's start (0 for none).
    pub(crate) fn from_script(numbers: &[u64]) -> Result<Self, Failure> {
        match *numbers {
            [first, next, oldest, reply_start, ..] if first > 0 && first <= next => Ok(Self {
                first,
                next,
                oldest,
                reply_start: (reply_start > 0).then_some(reply_start),
            }),
            _ => Err(Failure::bug(format!(
                "a log script returned {numbers:?} for the log's state"
            ))),
        }
    }

    /// Where a new client starts: just before the running reply's first
    /// event when that is still kept, else at the newest event. The second
    /// value says the running reply's start is gone (the client must reload).
    fn live_cursor(&self) -> (u64, bool) {
        match self.reply_start {
            Some(start) if start >= self.oldest => (start - 1, false),
            Some(start) if start < self.next => (self.next - 1, true),
            _ => (self.next - 1, false),
        }
    }

    fn resync(&self, reason: ResyncReason) -> Resync {
        Resync {
            reason,
            oldest_event_id: self.oldest,
        }
    }

    /// Where a subscriber that asked for `start` begins (the id of the last
    /// event it is taken to have), and the resync it is given first, if any.
    pub(crate) fn start(&self, start: StartAt) -> (u64, Option<Resync>) {
        match start {
            StartAt::Live => match self.live_cursor() {
                (cursor, true) => (cursor, Some(self.resync(ResyncReason::NotKept))),
                (cursor, false) => (cursor, None),
            },
            StartAt::After(after) if after >= self.next => (
                self.live_cursor().0,
                Some(self.resync(ResyncReason::UnknownEventId)),
            ),
            StartAt::After(after) => self
                .catch_up(after, ResyncReason::NotKept)
                .map_or((after, None), |(cursor, resync)| (cursor, Some(resync))),
        }
    }

    /// For a subscriber at `cursor` whose next events are gone: where it
    /// goes on from, and the resync that says so. Events pushed out by the
    /// limits are `trimmed`; events of an earlier counter are not kept.
    pub(crate) fn catch_up(&self, cursor: u64, trimmed: ResyncReason) -> Option<(u64, Resync)> {
        let wanted = cursor.saturating_add(1);
        if wanted >= self.oldest {
            return None;
        }
        let reason = if wanted < self.first {
            ResyncReason::NotKept
        } else {
            trimmed
        };
        Some((self.live_cursor().0, self.resync(reason)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIRST: u64 = 1_700_000_000_000_000;

    fn state(oldest: u64, next: u64, reply_start: Option<u64>) -> LogState {
        LogState {
            first: FIRST,
            next,
            oldest,
            reply_start,
        }
    }

    fn resync(reason: ResyncReason, oldest: u64) -> Option<Resync> {
        Some(Resync {
            reason,
            oldest_event_id: oldest,
        })
    }

    #[test]
    fn a_live_subscriber_starts_at_the_running_reply_when_kept() {
        let idle = state(FIRST, FIRST + 10, None);
        assert_eq!(idle.start(StartAt::Live), (FIRST + 9, None));
        let replying = state(FIRST + 2, FIRST + 10, Some(FIRST + 5));
        assert_eq!(replying.start(StartAt::Live), (FIRST + 4, None));
        let lost_start = state(FIRST + 6, FIRST + 10, Some(FIRST + 5));
        assert_eq!(
            lost_start.start(StartAt::Live),
            (FIRST + 9, resync(ResyncReason::NotKept, FIRST + 6))
        );
        // A reply that has published nothing yet starts at the next event.
        let fresh = state(FIRST + 6, FIRST + 10, Some(FIRST + 10));
        assert_eq!(fresh.start(StartAt::Live), (FIRST + 9, None));
    }

    #[test]
    fn resuming_serves_what_is_kept_and_says_why_when_it_cannot() {
        let log = state(FIRST + 3, FIRST + 10, None);
        assert_eq!(log.start(StartAt::After(FIRST + 2)), (FIRST + 2, None));
        assert_eq!(log.start(StartAt::After(FIRST + 9)), (FIRST + 9, None));
        assert_eq!(
            log.start(StartAt::After(FIRST + 1)),
            (FIRST + 9, resync(ResyncReason::NotKept, FIRST + 3))
        );
        assert_eq!(
            log.start(StartAt::After(FIRST - 500)),
            (FIRST + 9, resync(ResyncReason::NotKept, FIRST + 3))
        );
        for never_given in [FIRST + 10, u64::MAX] {
            assert_eq!(
                log.start(StartAt::After(never_given)),
                (FIRST + 9, resync(ResyncReason::UnknownEventId, FIRST + 3))
            );
        }
    }

    #[test]
    fn an_id_of_an_earlier_counter_is_not_kept_even_with_nothing_trimmed() {
        let log = state(FIRST, FIRST + 2, None);
        assert_eq!(
            log.start(StartAt::After(FIRST - 1)),
            (FIRST - 1, None),
            "the id just before the first is where a new counter's reader starts"
        );
        assert_eq!(
            log.catch_up(FIRST - 7, ResyncReason::FellBehind),
            Some((
                FIRST + 1,
                Resync {
                    reason: ResyncReason::NotKept,
                    oldest_event_id: FIRST,
                }
            ))
        );
    }

    #[test]
    fn a_reader_behind_what_is_kept_fell_behind() {
        let log = state(FIRST + 5, FIRST + 10, Some(FIRST + 7));
        assert_eq!(log.catch_up(FIRST + 4, ResyncReason::FellBehind), None);
        assert_eq!(
            log.catch_up(FIRST + 2, ResyncReason::FellBehind),
            Some((
                FIRST + 6,
                Resync {
                    reason: ResyncReason::FellBehind,
                    oldest_event_id: FIRST + 5,
                }
            ))
        );
    }

    #[test]
    fn a_script_answer_that_makes_no_sense_is_a_bug() {
        assert!(LogState::from_script(&[FIRST, FIRST, FIRST, 0]).is_ok());
        assert!(LogState::from_script(&[0, 1, 1, 0]).is_err());
        assert!(LogState::from_script(&[FIRST + 1, FIRST, FIRST, 0]).is_err());
        assert!(LogState::from_script(&[FIRST]).is_err());
    }
}
