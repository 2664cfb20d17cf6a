//! A private corner of the test Redis for each test, and helpers.

use std::time::Duration;

use colloquy_domain::MessageId;
use colloquy_ports::{EventKind, EventStream};
use colloquy_redis::{LogLimits, Redis, RedisConfig, RedisEventLog, RedisLimiter};
use futures::StreamExt;
use redis::Commands;

/// Where the tests find Redis: `COLLOQUY_TEST_REDIS_URL`, else the
/// machine's own.
fn redis_url() -> String {
    std::env::var("COLLOQUY_TEST_REDIS_URL").unwrap_or_else(|_| "redis://127.0.0.1:6379".into())
}

/// A key prefix no other test uses, on the real Redis; its keys are deleted
/// when it is dropped.
#[derive(Debug)]
pub struct TestRedis {
    pub url: String,
    pub prefix: String,
}

impl TestRedis {
    /// # Panics
    /// When Redis cannot be reached, saying how to start it.
    pub fn new() -> Self {
        let url = redis_url();
        if let Err(error) = ping(&url) {
            panic!(
                "Redis is not reachable at {url} ({error}). These tests need a real Redis: start \
                 it with `redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save \"\" \
                 --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log`, or set \
                 COLLOQUY_TEST_REDIS_URL to one that runs."
            );
        }
        Self {
            url,
            prefix: format!("colloquy-test:{}:", uuid::Uuid::now_v7().simple()),
        }
    }

    /// The address of Redis itself (`host:port`), for a proxy in front of it.
    pub fn address(&self) -> String {
        let info = redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection_info()
            .addr()
            .to_string();
        info
    }

    pub fn config(&self) -> RedisConfig {
        RedisConfig {
            key_prefix: self.prefix.clone(),
            ..RedisConfig::new(self.url.clone())
        }
    }

    /// The config with other log limits.
    pub fn config_with(&self, limits: LogLimits) -> RedisConfig {
        RedisConfig {
            log_limits: limits,
            ..self.config()
        }
    }

    pub fn log(&self, config: &RedisConfig) -> RedisEventLog {
        RedisEventLog::new(Redis::connect(config).unwrap(), config)
    }

    pub fn default_log(&self) -> RedisEventLog {
        self.log(&self.config())
    }

    pub fn limiter(&self, config: &RedisConfig, limits: colloquy_ports::Limits) -> RedisLimiter {
        RedisLimiter::new(Redis::connect(config).unwrap(), limits, config.lease)
    }

    /// A direct connection, to look at or change what the adapters keep.
    pub fn connection(&self) -> redis::Connection {
        redis::Client::open(self.url.as_str())
            .unwrap()
            .get_connection_with_timeout(Duration::from_secs(2))
            .expect("a connection to the test Redis")
    }

    /// Every key of this test, sorted.
    pub fn keys(&self) -> Vec<String> {
        let mut connection = self.connection();
        let mut keys: Vec<String> = connection
            .scan_match::<_, String>(format!("{}*", self.prefix))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        keys.sort();
        keys
    }

    /// Deletes every key of this test, as a restart of Redis (which keeps
    /// nothing on disk) would.
    pub fn lose_everything(&self) {
        let keys = self.keys();
        if !keys.is_empty() {
            let _: () = self.connection().del(keys).unwrap();
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        self.lose_everything();
    }
}

fn ping(url: &str) -> redis::RedisResult<()> {
    let client = redis::Client::open(url)?;
    let mut connection = client.get_connection_with_timeout(Duration::from_secs(2))?;
    redis::cmd("PING").query::<String>(&mut connection)?;
    Ok(())
}

pub fn delta(message_id: MessageId, text: &str) -> EventKind {
    EventKind::MessageDelta {
        message_id,
        delta: text.to_owned(),
    }
}

pub async fn next(stream: &mut EventStream) -> (u64, EventKind) {
    let event = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("an event in time")
        .expect("the stream is open");
    (event.id, event.kind.clone())
}

pub async fn nothing_more(stream: &mut EventStream) {
    assert!(
        tokio::time::timeout(Duration::from_millis(200), stream.next())
            .await
            .is_err(),
        "no further event"
    );
}

/// Retries `attempt` until it gives `Some`, for at most `within`.
pub async fn eventually<T, F, Fut>(within: Duration, mut attempt: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(value) = attempt().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "nothing came within {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
