//! A reply slot held as a lease: taken with a random token and the lease's
//! length, renewed every third of it while the claim lives, freed (only if
//! still ours) when the claim finishes, is released or is dropped. A claim
//! that finds its lease lost treats itself as cancelled, so that the reply
//! stops rather than run on beside another replica's.
//!
//! A claim that cannot reach Redis keeps its reply running and keeps
//! trying to renew: while Redis is down, replies still complete and are
//! stored (only their events are lost, and clients resync). When Redis
//! answers again, a lease that lapsed meanwhile is taken again if nobody
//! took the session's slot or began sweeping the reply; only a lease that
//! is gone for good stops the reply. (A replica cut off from a Redis that
//! the others still reach cannot tell the difference: once its lease runs
//! out, another replica sweeps its reply, and it stops when it is back.)

use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use colloquy_domain::{MessageId, SessionId};
use colloquy_ports::{EventKind, EventLogError, ReplyClaim};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::shared::Shared;
use crate::codec;
use crate::connection::Failure;
use crate::keys::Keys;
use crate::scripts::SCRIPTS;

/// A renewal that failed is tried again after this, while the lease lasts.
const RETRY_RENEWAL: Duration = Duration::from_millis(250);

pub(crate) struct RedisClaim {
    shared: Arc<Shared>,
    session: SessionId,
    message_id: MessageId,
    token: String,
    cancel: CancellationToken,
    renewal: JoinHandle<()>,
    ended: bool,
}

impl std::fmt::Debug for RedisClaim {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token is what proves the lease is ours: it stays out of logs.
        f.debug_struct("RedisClaim")
            .field("session", &self.session)
            .field("message_id", &self.message_id)
            .field("cancelled", &self.cancel.is_cancelled())
            .finish_non_exhaustive()
    }
}

impl RedisClaim {
    /// Takes the session's slot for `reply`: `None` when it is taken.
    pub(crate) async fn take(
        shared: &Arc<Shared>,
        session: SessionId,
        reply: MessageId,
    ) -> Result<Option<Self>, Failure> {
        let keys = shared.redis.keys();
        let token = uuid::Uuid::now_v7().simple().to_string();
        let mut invocation = shared.log_script(&SCRIPTS.claim);
        invocation
            .key(keys.meta(session))
            .key(keys.log(session))
            .key(keys.slot(session))
            .key(keys.running())
            .arg(&token)
            .arg(reply.to_string())
            .arg(shared.settings.lease_ms())
            .arg(Keys::running_member(session, reply));
        let first_event: Option<u64> = shared.redis.run("claim a reply slot", &invocation).await?;
        let Some(first_event) = first_event else {
            return Ok(None);
        };
        let cancel = CancellationToken::new();
        shared.claims.add(&token, session, reply, cancel.clone());
        let lease = Lease {
            session,
            reply,
            token: token.clone(),
            first_event,
        };
        let renewal = tokio::spawn(renew(Arc::clone(shared), lease, cancel.clone()));
        Ok(Some(Self {
            shared: Arc::clone(shared),
            session,
            message_id: reply,
            token,
            cancel,
            renewal,
            ended: false,
        }))
    }

    /// Stops the renewals and forgets the claim locally; what is left is
    /// to tell Redis.
    fn end(&mut self) {
        self.ended = true;
        self.renewal.abort();
        self.shared.claims.remove(&self.token);
    }
}

impl Drop for RedisClaim {
    fn drop(&mut self) {
        // A claim dropped without `finish` or `release` (its task panicked
        // or was aborted) must not leave the session taken.
        if !self.ended {
            self.end();
            let (shared, session, reply, token) = (
                Arc::clone(&self.shared),
                self.session,
                self.message_id,
                std::mem::take(&mut self.token),
            );
            self.shared
                .releases
                .start(async move { release(&shared, session, reply, &token).await });
        }
    }
}

#[async_trait]
impl ReplyClaim for RedisClaim {
    fn message_id(&self) -> MessageId {
        self.message_id
    }

    async fn cancelled(&self) {
        self.cancel.cancelled().await;
    }

    async fn finish(mut self: Box<Self>, last: EventKind) -> Result<u64, EventLogError> {
        self.end();
        let Some(data) = codec::encode(&last) else {
            return Err(EventLogError::Unknown(anyhow::anyhow!(
                "a stream.resync cannot end a reply"
            )));
        };
        let keys = self.shared.redis.keys();
        let lost = self.shared.losses.take_mark(self.session);
        let mut invocation = self.shared.log_script(&SCRIPTS.finish);
        invocation
            .key(keys.meta(self.session))
            .key(keys.log(self.session))
            .key(keys.slot(self.session))
            .key(keys.running())
            .key(keys.sweep(self.session, self.message_id))
            .arg(&self.token)
            .arg(Keys::running_member(self.session, self.message_id))
            .arg(data)
            .arg(last.approximate_bytes())
            .arg(&lost);
        let published: Result<Option<u64>, _> =
            self.shared.redis.run("finish a reply", &invocation).await;
        if !matches!(published, Ok(Some(_))) {
            self.shared.losses.give_back(self.session, &lost);
        }
        published?.ok_or_else(|| {
            EventLogError::Unknown(anyhow::anyhow!(
                "reply {} of session {} lost its lease and another replica ended it; its own last event was not published",
                self.message_id,
                self.session
            ))
        })
    }

    async fn release(mut self: Box<Self>) {
        self.end();
        release(&self.shared, self.session, self.message_id, &self.token).await;
    }
}

async fn release(shared: &Shared, session: SessionId, reply: MessageId, token: &str) {
    let keys = shared.redis.keys();
    let mut invocation = SCRIPTS.release.prepare_invoke();
    invocation
        .key(keys.slot(session))
        .key(keys.running())
        .key(keys.sweep(session, reply))
        .arg(token)
        .arg(Keys::running_member(session, reply));
    if let Err(failure) = shared
        .redis
        .run::<i64>("release a reply slot", &invocation)
        .await
    {
        // The lease runs out by itself; the reply never started, so the
        // sweeper finds nothing streaming to interrupt.
        tracing::warn!(session_id = %session, ?failure, "could not free a reply slot; its lease will lapse");
    }
}

/// How a renewal went.
enum Renewal {
    Held,
    CancelAsked,
    Lost,
}

/// Renews the lease every third of it until the claim ends (the task is
/// aborted then). A lease found lost cancels the claim. A renewal that
/// fails because Redis cannot be reached is retried for as long as it
/// takes, without stopping the reply: an outage of Redis must not cost the
/// replies running through it.
async fn renew(shared: Arc<Shared>, lease_held: Lease, cancel: CancellationToken) {
    let (session, reply) = (lease_held.session, lease_held.reply);
    let lease = shared.settings.lease;
    let every = lease / 3;
    let mut renewed = Instant::now();
    // Said once per outage, not every retry.
    let mut lapse_reported = false;
    let mut wait = every;
    loop {
        tokio::time::sleep(wait).await;
        match renew_once(&shared, &lease_held).await {
            Ok(Renewal::Held) => {
                renewed = Instant::now();
                lapse_reported = false;
                wait = every;
            }
            Ok(Renewal::CancelAsked) => {
                renewed = Instant::now();
                lapse_reported = false;
                wait = every;
                cancel.cancel();
            }
            Ok(Renewal::Lost) => {
                tracing::warn!(session_id = %session, message_id = %reply, "a reply's lease was lost; stopping it");
                cancel.cancel();
                return;
            }
            Err(failure) => {
                if !lapse_reported && renewed.elapsed() >= lease {
                    lapse_reported = true;
                    tracing::warn!(session_id = %session, message_id = %reply, ?failure, "a reply's lease could not be renewed in time; the reply goes on and is stored, and its lease is checked again when Redis answers");
                }
                wait = RETRY_RENEWAL.min(every);
            }
        }
    }
}

/// What a renewal needs to know of its lease: whose it is, and enough to
/// take it again when it lapsed during an outage (see `renew.lua`).
struct Lease {
    session: SessionId,
    reply: MessageId,
    token: String,
    first_event: u64,
}

async fn renew_once(shared: &Shared, lease: &Lease) -> Result<Renewal, Failure> {
    let (session, reply) = (lease.session, lease.reply);
    let keys = shared.redis.keys();
    let mut invocation = SCRIPTS.renew.prepare_invoke();
    invocation
        .key(keys.slot(session))
        .key(keys.running())
        .key(keys.meta(session))
        .key(keys.sweep(session, reply))
        .arg(&lease.token)
        .arg(shared.settings.lease_ms())
        .arg(Keys::running_member(session, reply))
        .arg(shared.settings.meta_ttl_ms())
        .arg(reply.to_string())
        .arg(lease.first_event);
    let outcome: i64 = shared
        .redis
        .run("renew a reply's lease", &invocation)
        .await?;
    Ok(match outcome {
        0 => Renewal::Held,
        1 => Renewal::CancelAsked,
        _ => Renewal::Lost,
    })
}
