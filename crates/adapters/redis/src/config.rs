//! What the Redis adapters need to be told: where Redis is, how keys are
//! named, how long leases last, and what a session's log keeps.

use std::fmt;
use std::time::Duration;

use colloquy_inprocess::LogLimits;

/// The settings of [`crate::Redis`], [`crate::RedisEventLog`] and
/// [`crate::RedisLimiter`]. [`RedisConfig::new`] gives the defaults.
#[derive(Clone, PartialEq, Eq)]
pub struct RedisConfig {
    /// `redis://[user:password@]host[:port][/db]` (`COLLOQUY_REDIS_URL`).
    pub url: String,
    /// Put in front of every key and channel name, so that several services
    /// (or test runs) can share one Redis without seeing each other.
    pub key_prefix: String,
    /// How long a reply slot or a held place outlives a replica that stops
    /// renewing it (`COLLOQUY_LEASE_SECS`). Renewals happen every third of it.
    pub lease: Duration,
    /// The longest wait for one command: past it, Redis counts as
    /// unavailable for that call.
    pub command_timeout: Duration,
    /// What each session's log keeps, as for the in-process log.
    pub log_limits: LogLimits,
    /// How many dedicated connections read the streams of the sessions this
    /// process serves (each one blocking read covers all its sessions).
    pub readers: usize,
}

impl RedisConfig {
    /// The defaults: prefix `colloquy:`, a lease of 10 s, commands timing
    /// out after 1 s, the contract's log limits, two readers.
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            key_prefix: "colloquy:".to_owned(),
            lease: Duration::from_secs(10),
            command_timeout: Duration::from_secs(1),
            log_limits: LogLimits::default(),
            readers: 2,
        }
    }
}

impl fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &redacted(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("lease", &self.lease)
            .field("command_timeout", &self.command_timeout)
            .field("log_limits", &self.log_limits)
            .field("readers", &self.readers)
            .finish()
    }
}

/// The URL without its credentials, fit for a log line.
pub(crate) fn redacted(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}[redacted]{}", &url[..scheme_end + 3], &url[at..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn credentials_never_reach_a_log_line() {
        assert_eq!(
            redacted("redis://user:s3cret@cache.internal:6380/2"),
            "redis://[redacted]@cache.internal:6380/2"
        );
        assert_eq!(redacted("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        let shown = format!("{:?}", RedisConfig::new("redis://:hunter2@host"));
        assert!(!shown.contains("hunter2"), "{shown}");
    }
}
