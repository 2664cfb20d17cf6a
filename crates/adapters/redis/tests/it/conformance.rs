//! The shared event-log suite, against Redis.

use std::time::Duration;

use async_trait::async_trait;
use colloquy_conformance::event_log::{Harness, KeptLimits};
use colloquy_domain::SessionId;
use colloquy_redis::{LogLimits, RedisEventLog};
use redis::Commands;

use crate::support::{eventually, TestRedis};

struct RedisHarness {
    redis: TestRedis,
}

impl RedisHarness {
    fn new() -> Self {
        Self {
            redis: TestRedis::new(),
        }
    }
}

#[async_trait]
impl Harness for RedisHarness {
    type Log = RedisEventLog;

    async fn log(&self, limits: KeptLimits) -> RedisEventLog {
        self.redis.log(&self.redis.config_with(LogLimits {
            retention: limits.retention,
            max_events: limits.max_events,
            max_bytes: limits.max_bytes,
        }))
    }

    async fn kept(&self, log: &RedisEventLog, session: SessionId) -> (usize, usize) {
        log.kept(session).await.unwrap()
    }

    async fn restart(&self, log: RedisEventLog, limits: KeptLimits) -> RedisEventLog {
        // What a restart of Redis does here (it keeps nothing on disk).
        drop(log);
        self.redis.lose_everything();
        self.log(limits).await
    }

    async fn settle(&self, log: &RedisEventLog, session: SessionId) {
        let meta = format!("{}s:{{{session}}}:meta", self.redis.prefix);
        let next: u64 = self.redis.connection().hget(meta, "next").unwrap();
        eventually(Duration::from_secs(5), || async {
            (log.read_upto(session).unwrap_or(0) + 1 >= next).then_some(())
        })
        .await;
    }
}

colloquy_conformance::event_log_conformance!(RedisHarness::new());
