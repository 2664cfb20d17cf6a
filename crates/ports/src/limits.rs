//! What one principal may use at once and per minute, counted where every
//! replica sees the same counts (in one process, or in Redis across replicas).

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use colloquy_domain::Principal;

/// The limits of the contract's table. `0` turns a limit off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Requests per minute of a principal (of a client IP when anonymous).
    pub requests_per_minute: u32,
    /// Replies a principal's sessions generate at once.
    pub replies_at_once: u32,
    /// Event streams and WebSockets a principal holds open at once.
    pub streams_at_once: u32,
    /// Upstream tokens (prompt + completion) a principal may spend per UTC day.
    pub daily_tokens: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            requests_per_minute: 600,
            replies_at_once: 4,
            streams_at_once: 64,
            daily_tokens: 0,
        }
    }
}

/// One of the limits, as a `429` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Limit {
    RequestsPerMinute,
    RepliesAtOnce,
    StreamsAtOnce,
    DailyTokens,
}

impl Limit {
    /// The limit's name on the wire (`limit` in a `429`'s body).
    #[must_use]
    pub const fn name(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests_per_minute",
            Self::RepliesAtOnce => "replies_at_once",
            Self::StreamsAtOnce => "streams_at_once",
            Self::DailyTokens => "daily_tokens",
        }
    }

    /// The variable that sets it, so the answer can say what to change.
    #[must_use]
    pub const fn variable(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "COLLOQUY_RATE_LIMIT_PER_MINUTE",
            Self::RepliesAtOnce => "COLLOQUY_MAX_REPLIES_PER_PRINCIPAL",
            Self::StreamsAtOnce => "COLLOQUY_MAX_STREAMS_PER_PRINCIPAL",
            Self::DailyTokens => "COLLOQUY_DAILY_TOKENS_PER_PRINCIPAL",
        }
    }
}

/// A limit that was reached: which, its value, and how long until trying
/// again may work (a `429`'s `Retry-After`, at least a second).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the limit {} ({max}) is reached; try again in {} s", .limit.name(), .retry_after.as_secs())]
pub struct LimitReached {
    pub limit: Limit,
    pub max: u64,
    pub retry_after: Duration,
}

/// Why a request could not be admitted.
#[derive(Debug, thiserror::Error)]
pub enum LimitError {
    #[error(transparent)]
    Reached(#[from] LimitReached),
    /// The shared counters cannot be reached right now (Redis is down).
    #[error("the limits cannot be checked right now: {0:#}")]
    Unavailable(anyhow::Error),
}

/// What a concurrency limit counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Held {
    /// A reply being generated.
    Reply,
    /// An open event stream or WebSocket.
    Stream,
}

impl Held {
    #[must_use]
    pub const fn limit(self) -> Limit {
        match self {
            Self::Reply => Limit::RepliesAtOnce,
            Self::Stream => Limit::StreamsAtOnce,
        }
    }

    /// The `Retry-After` of a refusal. Nobody knows when a place frees up:
    /// a reply or a stream usually ends within seconds, so a client that
    /// waits this long has a fair chance.
    #[must_use]
    pub const fn retry_after(self) -> Duration {
        Duration::from_secs(5)
    }
}

/// One place under a concurrency limit. Dropping it gives the place back
/// (an adapter whose counters are remote also lets it lapse when the
/// process that held it dies).
pub trait Permit: Send + Sync + fmt::Debug {}

/// Counts requests and held places against the configured [`Limits`].
#[async_trait]
pub trait Limiter: Send + Sync + fmt::Debug {
    /// The limits this limiter enforces.
    fn limits(&self) -> Limits;

    /// Counts one request of `who` (a principal, or `ip:<address>` for an
    /// anonymous client) against the requests-per-minute limit.
    ///
    /// # Errors
    /// [`LimitError::Reached`] ([`Limit::RequestsPerMinute`]) when `who`
    /// has used the minute's allowance; [`LimitError::Unavailable`] when the
    /// counters cannot be reached.
    async fn count_request(&self, who: &str) -> Result<(), LimitError>;

    /// Takes one of the places `principal` may hold of `what` at once.
    ///
    /// # Errors
    /// [`LimitError::Reached`] when every place is taken;
    /// [`LimitError::Unavailable`] when the counters cannot be reached.
    async fn acquire(
        &self,
        what: Held,
        principal: &Principal,
    ) -> Result<Box<dyn Permit>, LimitError>;
}
