//! How long to wait before the next attempt at a failed upstream request.

use std::time::Duration;

use colloquy_ports::LlmError;

use crate::LlmPolicy;

impl LlmPolicy {
    /// The wait before retry number `retry` (1 for the first retry) after
    /// `error`, or `None` when the error must not be retried at all.
    #[must_use]
    pub fn retry_delay(&self, retry: u32, error: &LlmError) -> Option<Duration> {
        if !error.is_retryable() || retry > self.max_retries {
            return None;
        }
        match error.retry_after() {
            Some(asked) if asked > self.max_retry_after => None,
            Some(asked) => Some(asked),
            None => Some(self.backoff(retry)),
        }
    }

    /// Exponential backoff with jitter: `base * 2^(retry-1)`, capped at
    /// `backoff_max`, then shortened by up to a quarter at random so that many
    /// replies failing together do not come back together.
    #[must_use]
    pub fn backoff(&self, retry: u32) -> Duration {
        let exponent = retry.saturating_sub(1).min(20);
        let full = self
            .backoff_base
            .saturating_mul(1 << exponent)
            .min(self.backoff_max);
        full.mul_f64(1.0 - 0.25 * fastrand::f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> LlmPolicy {
        LlmPolicy {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
            max_retries: 3,
            max_retry_after: Duration::from_secs(10),
            ..LlmPolicy::default()
        }
    }

    fn unavailable(retry_after: Option<Duration>) -> LlmError {
        LlmError::Unavailable {
            retry_after,
            message: "503".into(),
        }
    }

    #[test]
    fn backoff_doubles_within_jitter_and_is_capped() {
        let policy = policy();
        for _ in 0..100 {
            let first = policy.backoff(1);
            assert!(first <= Duration::from_millis(100) && first >= Duration::from_millis(75));
            let second = policy.backoff(2);
            assert!(second <= Duration::from_millis(200) && second >= Duration::from_millis(150));
            let capped = policy.backoff(9);
            assert!(
                capped <= Duration::from_millis(350) && capped >= Duration::from_micros(262_500)
            );
        }
    }

    #[test]
    fn retry_after_wins_unless_it_is_too_long() {
        let policy = policy();
        let asked = Duration::from_secs(2);
        assert_eq!(
            policy.retry_delay(1, &unavailable(Some(asked))),
            Some(asked)
        );
        assert_eq!(
            policy.retry_delay(1, &unavailable(Some(Duration::from_secs(11)))),
            None
        );
    }

    #[test]
    fn only_retryable_errors_within_the_budget_are_retried() {
        let policy = policy();
        assert!(policy.retry_delay(3, &unavailable(None)).is_some());
        assert_eq!(policy.retry_delay(4, &unavailable(None)), None);
        let rejected = LlmError::Rejected {
            status: 400,
            message: "bad".into(),
        };
        assert_eq!(policy.retry_delay(1, &rejected), None);
        let protocol = LlmError::Protocol {
            message: "cut".into(),
        };
        assert!(policy.retry_delay(1, &protocol).is_some());
    }
}
