use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// A point in time, in whole microseconds since the Unix epoch (UTC).
///
/// Microseconds keep the ordering of events within one request while fitting
/// in an `i64` column of any database for the next 290,000 years.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

impl Timestamp {
    #[must_use]
    pub fn now() -> Self {
        Self::from_system_time(SystemTime::now())
    }

    #[must_use]
    pub fn from_system_time(time: SystemTime) -> Self {
        let micros = match time.duration_since(UNIX_EPOCH) {
            Ok(after) => i64::try_from(after.as_micros()).unwrap_or(i64::MAX),
            Err(before) => -i64::try_from(before.duration().as_micros()).unwrap_or(i64::MAX),
        };
        Self(micros)
    }

    #[must_use]
    pub const fn from_micros(micros: i64) -> Self {
        Self(micros)
    }

    #[must_use]
    pub const fn as_micros(self) -> i64 {
        self.0
    }

    #[must_use]
    pub fn to_system_time(self) -> SystemTime {
        let magnitude = Duration::from_micros(self.0.unsigned_abs());
        if self.0 >= 0 {
            UNIX_EPOCH + magnitude
        } else {
            UNIX_EPOCH - magnitude
        }
    }
}

/// A calendar day in UTC, as whole days since the Unix epoch: the unit of
/// the daily token allowance, which starts again at 00:00 UTC.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UtcDay(i64);

const MICROS_PER_DAY: i64 = 86_400 * 1_000_000;

impl UtcDay {
    /// The day `at` falls on.
    #[must_use]
    pub const fn of(at: Timestamp) -> Self {
        Self(at.as_micros().div_euclid(MICROS_PER_DAY))
    }

    #[must_use]
    pub fn today() -> Self {
        Self::of(Timestamp::now())
    }

    #[must_use]
    pub const fn from_days_since_epoch(days: i64) -> Self {
        Self(days)
    }

    #[must_use]
    pub const fn days_since_epoch(self) -> i64 {
        self.0
    }

    /// 00:00 UTC of the day after this one.
    #[must_use]
    pub const fn next_start(self) -> Timestamp {
        Timestamp::from_micros((self.0 + 1).saturating_mul(MICROS_PER_DAY))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_system_time() {
        let now = Timestamp::now();
        assert_eq!(Timestamp::from_system_time(now.to_system_time()), now);
        let old = Timestamp::from_micros(-1_500_000);
        assert_eq!(Timestamp::from_system_time(old.to_system_time()), old);
    }

    #[test]
    fn a_day_runs_from_midnight_to_midnight_utc() {
        // 2026-12-01T23:59:59.999999Z and the next microsecond.
        let last = Timestamp::from_micros(1_796_169_599_999_999);
        let first = Timestamp::from_micros(1_796_169_600_000_000);
        assert_eq!(UtcDay::of(last).days_since_epoch(), 20_788);
        assert_eq!(UtcDay::of(first).days_since_epoch(), 20_789);
        assert_eq!(UtcDay::of(last).next_start(), first);
        // Before the epoch, days still start at midnight.
        assert_eq!(
            UtcDay::of(Timestamp::from_micros(-1)).days_since_epoch(),
            -1
        );
    }
}
