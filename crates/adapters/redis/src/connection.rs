//! [`Redis`]: the one handle on the server that the event log and the
//! limiter share, with a timeout on every command, a short circuit breaker
//! so that an outage costs callers nothing but an error, and the mapping of
//! Redis's errors onto "unavailable" or "a bug".

use std::future::Future;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};
use std::{fmt, mem};

use colloquy_ports::{EventLogError, LimitError};
use redis::aio::{ConnectionManager, ConnectionManagerConfig, MultiplexedConnection, PubSub};
use redis::{
    AsyncConnectionConfig, Client, ErrorKind, FromRedisValue, RedisError, ServerErrorKind,
};

use crate::config::{redacted, RedisConfig};
use crate::keys::Keys;

/// The first pause after a failure during which calls fail at once; it
/// doubles while failures go on, up to [`LONGEST_PAUSE`].
const FIRST_PAUSE: Duration = Duration::from_millis(100);
const LONGEST_PAUSE: Duration = Duration::from_secs(2);

/// Why a call to Redis did not give an answer.
#[derive(Debug)]
pub(crate) enum Failure {
    /// Redis cannot be reached or cannot serve now; trying later may work.
    Unavailable(anyhow::Error),
    /// Redis answered something this adapter does not expect: a bug.
    Bug(anyhow::Error),
}

impl From<Failure> for EventLogError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(error) => Self::Unavailable(error),
            Failure::Bug(error) => Self::Unknown(error),
        }
    }
}

impl From<Failure> for LimitError {
    fn from(failure: Failure) -> Self {
        match failure {
            Failure::Unavailable(error) => Self::Unavailable(error),
            // The limiter's port knows no bugs: a request it cannot count is
            // refused as if the counters were out of reach, and logged.
            Failure::Bug(error) => {
                tracing::error!(error = %format!("{error:#}"), "the limiter's Redis script failed");
                Self::Unavailable(error)
            }
        }
    }
}

impl Failure {
    pub(crate) fn bug(what: impl fmt::Display) -> Self {
        Self::Bug(anyhow::anyhow!("{what}"))
    }

    fn from_redis(what: &str, error: RedisError) -> Self {
        let error_is_an_outage = is_outage(&error);
        let error = anyhow::Error::new(error).context(format!("Redis: {what}"));
        if error_is_an_outage {
            Self::Unavailable(error)
        } else {
            Self::Bug(error)
        }
    }

    fn timed_out(what: &str, after: Duration) -> Self {
        Self::Unavailable(anyhow::anyhow!(
            "Redis: {what} had no answer within {} ms",
            after.as_millis()
        ))
    }

    pub(crate) const fn is_outage(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Whether an error says Redis is out of reach or cannot serve right now,
/// as opposed to a command this adapter got wrong.
fn is_outage(error: &RedisError) -> bool {
    error.is_io_error()
        || error.is_timeout()
        || error.is_connection_dropped()
        || error.is_connection_refusal()
        || error.is_unrecoverable_error()
        || matches!(
            error.kind(),
            ErrorKind::Server(
                ServerErrorKind::BusyLoading
                    | ServerErrorKind::TryAgain
                    | ServerErrorKind::ClusterDown
                    | ServerErrorKind::MasterDown
                    | ServerErrorKind::ReadOnly
            )
        )
        // Out of memory, or a script of someone else's running too long.
        || matches!(error.code(), Some("OOM" | "BUSY"))
}

/// A handle on one Redis server, cheap to clone; every clone shares one
/// multiplexed, reconnecting connection for ordinary commands.
#[derive(Clone)]
pub struct Redis {
    inner: Arc<Inner>,
}

struct Inner {
    client: Client,
    manager: ConnectionManager,
    keys: Keys,
    timeout: Duration,
    breaker: Breaker,
    url: String,
}

impl fmt::Debug for Redis {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redis")
            .field("url", &self.inner.url)
            .field("key_prefix", &self.inner.keys.prefix())
            .field("command_timeout", &self.inner.timeout)
            .finish_non_exhaustive()
    }
}

impl Redis {
    /// A handle on the server `config.url` names. Nothing is sent yet: the
    /// first command connects, and so the server may start while Redis is
    /// still down (calls fail as unavailable until it is up).
    ///
    /// # Errors
    /// The URL is not a Redis URL this build can use (`rediss://` needs
    /// TLS, which is not built in).
    ///
    /// # Panics
    /// Outside a Tokio runtime (the connection's driver is a task).
    pub fn connect(config: &RedisConfig) -> anyhow::Result<Self> {
        let client = Client::open(config.url.as_str()).map_err(|error| {
            anyhow::anyhow!(
                "COLLOQUY_REDIS_URL ({}) cannot be used: {error}",
                redacted(&config.url)
            )
        })?;
        let manager_config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(config.command_timeout))
            .set_response_timeout(Some(config.command_timeout))
            // One attempt per reconnection: the breaker below paces retries,
            // and no caller waits through a series of backoffs.
            .set_number_of_retries(0);
        let manager = ConnectionManager::new_lazy_with_config(client.clone(), manager_config)
            .map_err(|error| anyhow::anyhow!("cannot set up the Redis connection: {error}"))?;
        Ok(Self {
            inner: Arc::new(Inner {
                client,
                manager,
                keys: Keys::new(&config.key_prefix),
                timeout: config.command_timeout,
                breaker: Breaker::default(),
                url: redacted(&config.url),
            }),
        })
    }

    /// Whether Redis answers now (for `/readyz`).
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when it does not.
    pub async fn check(&self) -> Result<(), EventLogError> {
        let pong: String = self.query("PING", &redis::cmd("PING")).await?;
        if pong == "PONG" {
            Ok(())
        } else {
            Err(EventLogError::Unknown(anyhow::anyhow!(
                "Redis answered PING with {pong:?}"
            )))
        }
    }

    /// A secret every replica holds the same: 32 random bytes, drawn by the
    /// first replica that asks and kept in Redis under `name` (with no
    /// expiry) for every later one. Stream tokens are signed with it when
    /// no `COLLOQUY_JWT_SECRET` gives a key, so any replica accepts the
    /// tokens of any other.
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when Redis cannot be reached.
    pub async fn shared_secret(&self, name: &str) -> Result<Vec<u8>, EventLogError> {
        let mut fresh = vec![0; 32];
        getrandom::fill(&mut fresh).map_err(|error| {
            EventLogError::Unknown(anyhow::anyhow!("no random bytes for a secret: {error}"))
        })?;
        let key = self.inner.keys.secret(name);
        // SET NX keeps whichever replica's bytes came first; the GET in the
        // same round trip reads those back.
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("SET")
            .arg(&key)
            .arg(&fresh)
            .arg("NX")
            .ignore()
            .cmd("GET")
            .arg(&key);
        let (kept,): (Vec<u8>,) = self.pipeline("share a secret", &pipeline).await?;
        if kept.len() < 32 {
            return Err(EventLogError::Unknown(anyhow::anyhow!(
                "the shared secret `{key}` in Redis is too short"
            )));
        }
        Ok(kept)
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.inner.keys
    }

    pub(crate) fn command_timeout(&self) -> Duration {
        self.inner.timeout
    }

    /// Runs a script on the shared connection.
    pub(crate) async fn run<T: FromRedisValue>(
        &self,
        what: &'static str,
        invocation: &redis::ScriptInvocation<'_>,
    ) -> Result<T, Failure> {
        let mut connection = self.inner.manager.clone();
        self.guarded(what, invocation.invoke_async(&mut connection))
            .await
    }

    /// Sends one command on the shared connection.
    pub(crate) async fn query<T: FromRedisValue>(
        &self,
        what: &'static str,
        command: &redis::Cmd,
    ) -> Result<T, Failure> {
        let mut connection = self.inner.manager.clone();
        self.guarded(what, command.query_async(&mut connection))
            .await
    }

    /// Sends a pipeline on the shared connection (one round trip).
    pub(crate) async fn pipeline<T: FromRedisValue>(
        &self,
        what: &'static str,
        pipeline: &redis::Pipeline,
    ) -> Result<T, Failure> {
        let mut connection = self.inner.manager.clone();
        self.guarded(what, pipeline.query_async(&mut connection))
            .await
    }

    /// A connection of its own, for a blocking read that would stall every
    /// command queued behind it on the shared one. Its answers may take
    /// `longest_wait` (the blocking time) plus the command timeout.
    pub(crate) async fn dedicated(
        &self,
        longest_wait: Duration,
    ) -> Result<MultiplexedConnection, Failure> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.inner.timeout))
            .set_response_timeout(Some(longest_wait + self.inner.timeout));
        let connecting = self
            .inner
            .client
            .get_multiplexed_async_connection_with_config(&config);
        match tokio::time::timeout(self.inner.timeout * 2, connecting).await {
            Ok(Ok(connection)) => Ok(connection),
            Ok(Err(error)) => Err(Failure::from_redis("connect", error)),
            Err(_) => Err(Failure::timed_out("connect", self.inner.timeout * 2)),
        }
    }

    /// A connection of its own in subscriber mode.
    pub(crate) async fn pubsub(&self) -> Result<PubSub, Failure> {
        match tokio::time::timeout(self.inner.timeout * 2, self.inner.client.get_async_pubsub())
            .await
        {
            Ok(Ok(pubsub)) => Ok(pubsub),
            Ok(Err(error)) => Err(Failure::from_redis("subscribe", error)),
            Err(_) => Err(Failure::timed_out("subscribe", self.inner.timeout * 2)),
        }
    }

    /// Runs `call` unless Redis failed moments ago, with the command
    /// timeout, and notes how it went.
    async fn guarded<T>(
        &self,
        what: &'static str,
        call: impl Future<Output = redis::RedisResult<T>>,
    ) -> Result<T, Failure> {
        self.inner.breaker.check()?;
        // The connection has its own response timeout; this one also
        // bounds the wait for a connection that is being re-established.
        let limit = self.inner.timeout * 2;
        let outcome = match tokio::time::timeout(limit, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(Failure::from_redis(what, error)),
            Err(_) => Err(Failure::timed_out(what, limit)),
        };
        match &outcome {
            Ok(_) => self.inner.breaker.succeeded(&self.inner.url),
            Err(failure) if failure.is_outage() => {
                self.inner.breaker.failed(&self.inner.url, failure);
            }
            Err(_) => {}
        }
        outcome
    }
}

/// After an outage-like failure, calls fail at once for a short pause
/// instead of each waiting for its own timeout: a reply publishing many
/// deltas while Redis is unreachable then loses its events quickly and
/// goes on to finish and be stored, rather than crawling at one delta per
/// timeout.
#[derive(Default)]
struct Breaker {
    state: Mutex<BreakerState>,
}

#[derive(Default)]
struct BreakerState {
    /// Calls fail at once until then.
    paused_until: Option<Instant>,
    /// The next pause, doubled by every failure in a row.
    next_pause: Duration,
    /// Whether the last call failed (to log the outage once, not per call).
    down: bool,
}

impl Breaker {
    fn check(&self) -> Result<(), Failure> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        match state.paused_until {
            Some(until) if Instant::now() < until => Err(Failure::Unavailable(anyhow::anyhow!(
                "Redis was unreachable moments ago; trying again shortly"
            ))),
            _ => Ok(()),
        }
    }

    fn succeeded(&self, url: &str) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if mem::take(&mut state.down) {
            tracing::info!(redis = url, "Redis answers again");
        }
        state.paused_until = None;
        state.next_pause = FIRST_PAUSE;
    }

    fn failed(&self, url: &str, failure: &Failure) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let pause = state.next_pause.max(FIRST_PAUSE);
        state.paused_until = Some(Instant::now() + pause);
        state.next_pause = (pause * 2).min(LONGEST_PAUSE);
        if !mem::replace(&mut state.down, true) {
            let (Failure::Unavailable(error) | Failure::Bug(error)) = failure;
            tracing::warn!(redis = url, error = %format!("{error:#}"), "Redis is unreachable; its calls fail until it is back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_url_that_cannot_be_used_is_refused_naming_the_variable_but_no_secret() {
        for url in [
            "not a url",
            "rediss://user:s3cret@cache.example:6380",
            "http://x",
        ] {
            let error = Redis::connect(&RedisConfig::new(url)).unwrap_err();
            let text = format!("{error:#}");
            assert!(text.contains("COLLOQUY_REDIS_URL"), "{text}");
            assert!(!text.contains("s3cret"), "{text}");
        }
        assert!(Redis::connect(&RedisConfig::new("redis://127.0.0.1:6379/3")).is_ok());
    }

    #[test]
    fn the_breaker_pauses_calls_after_an_outage_and_lets_them_through_after() {
        let breaker = Breaker::default();
        assert!(breaker.check().is_ok());
        breaker.failed("redis://x", &Failure::Unavailable(anyhow::anyhow!("down")));
        assert!(matches!(breaker.check(), Err(Failure::Unavailable(_))));
        std::thread::sleep(FIRST_PAUSE + Duration::from_millis(20));
        assert!(
            breaker.check().is_ok(),
            "a call may try again after the pause"
        );
        breaker.failed(
            "redis://x",
            &Failure::Unavailable(anyhow::anyhow!("still down")),
        );
        std::thread::sleep(FIRST_PAUSE + Duration::from_millis(20));
        assert!(breaker.check().is_err(), "the second pause is longer");
        breaker.succeeded("redis://x");
        assert!(breaker.check().is_ok());
    }
}
