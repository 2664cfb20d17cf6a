//! [`RedisEventLog`]: every session's events, reply slot and cancels in
//! Redis, so that any replica serves any session. See the crate docs for
//! the design; the parts are:
//!
//! - `shared.rs`: what the parts share, and the calls of the log scripts;
//! - `position.rs`: where a subscriber starts and when it must resync;
//! - `hub.rs`: this process's watches, one per session it serves;
//! - `reader.rs`: the blocking reads that feed the watches;
//! - `subscription.rs`: one subscriber's cursor;
//! - `claim.rs`: reply slots as leases;
//! - `notices.rs`: cancels and closes between replicas (pub/sub);
//! - `upkeep.rs`: keeping served sessions alive, catching missed notices;
//! - `losses.rs`: marking where events this process could not publish went;
//! - `sweep.rs`: the replies whose lease ran out, for the sweeper.

mod claim;
mod hub;
mod losses;
mod notices;
mod position;
mod reader;
mod shared;
mod subscription;
mod sweep;
mod upkeep;

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use colloquy_domain::{MessageId, SessionId};
use colloquy_ports::{
    EventKind, EventLog, EventLogError, EventStream, ReplyClaim, SessionEvent, StartAt,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::codec;
use crate::config::RedisConfig;
use crate::connection::Redis;
use crate::releases::Releases;
use crate::scripts::SCRIPTS;
use claim::RedisClaim;
use hub::{BufferLimits, Buffered, Hub};
use shared::{LocalClaims, Losses, Settings, Shared};
use subscription::Subscription;

/// Every session's events and reply slot, in Redis. See the crate docs.
pub struct RedisEventLog {
    shared: Arc<Shared>,
}

impl fmt::Debug for RedisEventLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisEventLog")
            .field("redis", &self.shared.redis)
            .field("settings", &self.shared.settings)
            .field("watched_sessions", &self.shared.hub.watched().len())
            .finish()
    }
}

impl Drop for RedisEventLog {
    fn drop(&mut self) {
        self.shared.stop.cancel();
    }
}

impl RedisEventLog {
    /// The log on `redis`, with the lease, limits and readers of `config`.
    /// Its readers, its listener for cancels and closes and its upkeep run
    /// as tasks until the log is dropped or [`EventLog::close_all`] is
    /// called.
    ///
    /// # Panics
    /// Outside a Tokio runtime.
    #[must_use]
    pub fn new(redis: Redis, config: &RedisConfig) -> Self {
        let readers: Vec<String> = (0..config.readers.max(1))
            .map(|_| uuid::Uuid::now_v7().simple().to_string())
            .collect();
        let shared = Arc::new(Shared {
            redis,
            settings: Settings {
                limits: config.log_limits,
                lease: config.lease,
            },
            hub: Hub::new(readers, BufferLimits::for_log(&config.log_limits)),
            claims: LocalClaims::default(),
            releases: Releases::default(),
            stop: CancellationToken::new(),
            upkeep_now: Notify::new(),
            losses: Losses::default(),
        });
        for sessions in shared.hub.readers() {
            tokio::spawn(reader::run(Arc::clone(&shared), Arc::clone(sessions)));
        }
        tokio::spawn(notices::run(Arc::clone(&shared)));
        tokio::spawn(upkeep::run(Arc::clone(&shared)));
        tokio::spawn(losses::run(Arc::clone(&shared)));
        Self { shared }
    }

    /// How many events, and about how many bytes, the session's log keeps
    /// now (for tests and diagnostics).
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when Redis cannot be reached.
    pub async fn kept(&self, session: SessionId) -> Result<(usize, usize), EventLogError> {
        let keys = self.shared.redis.keys();
        let mut pipeline = redis::pipe();
        pipeline
            .cmd("XLEN")
            .arg(keys.log(session))
            .cmd("HGET")
            .arg(keys.meta(session))
            .arg("bytes");
        let (events, bytes): (usize, Option<usize>) = self
            .shared
            .redis
            .pipeline("measure a session's log", &pipeline)
            .await?;
        // A log that expired leaves its counter's total behind until the
        // next event resets it.
        Ok((events, if events == 0 { 0 } else { bytes.unwrap_or(0) }))
    }

    /// The id up to which this process has read the session's events, or
    /// `None` when it serves no subscriber of that session (diagnostics,
    /// and tests that wait for the readers to catch up).
    #[must_use]
    pub fn read_upto(&self, session: SessionId) -> Option<u64> {
        self.shared.hub.get(session).map(|watch| watch.read_upto())
    }
}

#[async_trait]
impl EventLog for RedisEventLog {
    async fn publish(&self, session: SessionId, kind: EventKind) -> Result<u64, EventLogError> {
        let Some(data) = codec::encode(&kind) else {
            return Err(EventLogError::Unknown(anyhow::anyhow!(
                "a stream.resync is made for one subscriber and never published"
            )));
        };
        let bytes = kind.approximate_bytes();
        let keys = self.shared.redis.keys();
        let lost = self.shared.losses.take_mark(session);
        let mut invocation = self.shared.log_script(&SCRIPTS.publish);
        invocation
            .key(keys.meta(session))
            .key(keys.log(session))
            .arg(data)
            .arg(bytes)
            .arg(&lost);
        let id: u64 = match self.shared.redis.run("publish an event", &invocation).await {
            Ok(id) => id,
            Err(failure) => {
                // The event is gone (or, after a timeout, maybe not): either
                // way a resync is owed to whoever watches the session.
                self.shared.losses.record(session);
                return Err(failure.into());
            }
        };
        // Local subscribers need not wait for the reader to bring the event
        // back: it goes to the watch now when it is the next one there (the
        // reader skips what the watch has).
        if let Some(watch) = self.shared.hub.get(session) {
            if watch.read_upto() + 1 == id {
                watch.deliver([Buffered {
                    event: Arc::new(SessionEvent { id, kind }),
                    bytes,
                }]);
            }
        }
        Ok(id)
    }

    async fn subscribe(
        &self,
        session: SessionId,
        start: StartAt,
    ) -> Result<EventStream, EventLogError> {
        if self.shared.hub.is_shut() {
            return Ok(Box::pin(futures::stream::empty()));
        }
        let state = self.shared.state(session).await?;
        let (cursor, resync) = state.start(start);
        let Some((watch, new_for)) = self.shared.hub.join(session, &state) else {
            return Ok(Box::pin(futures::stream::empty()));
        };
        if let Some(reader) = new_for {
            let shared = Arc::clone(&self.shared);
            tokio::spawn(async move { shared.ring(&reader).await });
        }
        Ok(Subscription::new(Arc::clone(&self.shared), watch, cursor, resync).into_stream())
    }

    async fn claim_reply(
        &self,
        session: SessionId,
        reply: MessageId,
    ) -> Result<Option<Box<dyn ReplyClaim>>, EventLogError> {
        self.shared.releases.settle().await;
        let claim = RedisClaim::take(&self.shared, session, reply).await?;
        Ok(claim.map(|claim| Box::new(claim) as Box<dyn ReplyClaim>))
    }

    async fn active_reply(&self, session: SessionId) -> Result<Option<MessageId>, EventLogError> {
        self.shared.releases.settle().await;
        let mut command = redis::cmd("HGET");
        command
            .arg(self.shared.redis.keys().slot(session))
            .arg("message");
        let message: Option<String> = self
            .shared
            .redis
            .query("read a reply slot", &command)
            .await?;
        message
            .map(|message| {
                MessageId::parse(&message).map_err(|_| {
                    EventLogError::Unknown(anyhow::anyhow!(
                        "the reply slot of session {session} names {message:?}"
                    ))
                })
            })
            .transpose()
    }

    async fn cancel_reply(
        &self,
        session: SessionId,
        only: Option<MessageId>,
    ) -> Result<bool, EventLogError> {
        self.shared.releases.settle().await;
        let keys = self.shared.redis.keys();
        let mut invocation = SCRIPTS.cancel.prepare_invoke();
        invocation
            .key(keys.slot(session))
            .arg(only.map(|message| message.to_string()).unwrap_or_default())
            .arg(keys.cancel_channel());
        let token: Option<String> = self.shared.redis.run("cancel a reply", &invocation).await?;
        match token {
            Some(token) => {
                // A claim of this process hears it now; others by pub/sub.
                self.shared.claims.cancel(&token);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    async fn close_session(&self, session: SessionId) -> Result<(), EventLogError> {
        let keys = self.shared.redis.keys();
        let mut invocation = SCRIPTS.close.prepare_invoke();
        invocation
            .key(keys.meta(session))
            .key(keys.log(session))
            .arg(shared::millis_at_least_one(shared::CLOSED_GRACE))
            .arg(keys.closed_channel())
            .arg(session.to_string());
        let last: u64 = self
            .shared
            .redis
            .run("close a session", &invocation)
            .await?;
        self.shared.hub.close(session, last);
        Ok(())
    }

    async fn close_all(&self) {
        self.shared.hub.close_all();
        self.shared.stop.cancel();
    }

    async fn check(&self) -> Result<(), EventLogError> {
        self.shared.redis.check().await
    }
}
