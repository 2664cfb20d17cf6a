//! What the sweeper needs: the replies whose lease ran out while they ran
//! (their replica died, or lost Redis for longer than a lease), and a way
//! for exactly one replica to end each of them.
//!
//! Every claim puts its reply in a sorted set scored by the lease's
//! deadline; renewals move the deadline on, and whoever ends the reply
//! takes it out (see `finish.lua`). A sweeper lists the members whose
//! deadline has passed, then claims one: the claim moves the deadline to
//! the end of the sweeper's own lease and records its token, so no other
//! replica can claim it meanwhile, and one that dies leaves it to the next.
//! The sweeper stores the message `interrupted` (only if it is still
//! `streaming`: the store decides who was first), then
//! [`SweepClaim::finish`] publishes its `message.failed` and takes it out
//! of the set in one script: the last event is published exactly once.

use std::fmt;
use std::sync::Arc;

use colloquy_domain::{MessageId, SessionId};
use colloquy_ports::{EventKind, EventLogError};

use super::shared::Shared;
use super::RedisEventLog;
use crate::codec;
use crate::keys::Keys;
use crate::scripts::SCRIPTS;

/// A reply whose lease ran out while it ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExpiredReply {
    pub session: SessionId,
    pub message: MessageId,
}

impl ExpiredReply {
    fn member(self) -> String {
        Keys::running_member(self.session, self.message)
    }

    fn parse(member: &str) -> Option<Self> {
        let (session, message) = member.split_once(' ')?;
        Some(Self {
            session: SessionId::parse(session).ok()?,
            message: MessageId::parse(message).ok()?,
        })
    }
}

impl RedisEventLog {
    /// Up to `most` replies whose lease ran out while they ran, and that no
    /// replica is sweeping now. Reading the list takes nothing on: see
    /// [`RedisEventLog::claim_sweep`].
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when Redis cannot be reached.
    pub async fn expired_replies(&self, most: usize) -> Result<Vec<ExpiredReply>, EventLogError> {
        let shared = &self.shared;
        let mut invocation = SCRIPTS.expired.prepare_invoke();
        invocation.key(shared.redis.keys().running()).arg(most);
        let members: Vec<String> = shared
            .redis
            .run("list expired replies", &invocation)
            .await?;
        Ok(members
            .iter()
            .filter_map(|member| {
                let parsed = ExpiredReply::parse(member);
                if parsed.is_none() {
                    tracing::error!(member, "a running reply's entry cannot be read");
                }
                parsed
            })
            .collect())
    }

    /// Takes on the sweep of `reply` for one lease: `None` when it is not
    /// expired (any more) or another replica took it on. A claim dropped
    /// without being finished or dismissed lets the reply expire again
    /// after the lease, for this or another replica to retry.
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when Redis cannot be reached.
    pub async fn claim_sweep(
        &self,
        reply: ExpiredReply,
    ) -> Result<Option<SweepClaim>, EventLogError> {
        let shared = &self.shared;
        let keys = shared.redis.keys();
        let token = uuid::Uuid::now_v7().simple().to_string();
        let mut invocation = SCRIPTS.sweep_claim.prepare_invoke();
        invocation
            .key(keys.running())
            .key(keys.sweep(reply.session, reply.message))
            .arg(reply.member())
            .arg(&token)
            .arg(shared.settings.lease_ms());
        let won: i64 = shared.redis.run("claim a sweep", &invocation).await?;
        Ok((won == 1).then(|| SweepClaim {
            shared: Arc::clone(shared),
            reply,
            token,
        }))
    }
}

/// The sweep of one expired reply, held by this replica alone.
pub struct SweepClaim {
    shared: Arc<Shared>,
    reply: ExpiredReply,
    token: String,
}

impl fmt::Debug for SweepClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SweepClaim")
            .field("reply", &self.reply)
            .finish_non_exhaustive()
    }
}

impl SweepClaim {
    #[must_use]
    pub const fn reply(&self) -> ExpiredReply {
        self.reply
    }

    /// Publishes the reply's last event (its `message.failed`, or whatever
    /// final state the store holds) and takes the reply off the list, in
    /// one step. `None` when this sweep's own lease ran out first; nothing
    /// was published then.
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when Redis cannot be reached (the
    /// reply expires again and is swept later).
    pub async fn finish(self, last: EventKind) -> Result<Option<u64>, EventLogError> {
        let Some(data) = codec::encode(&last) else {
            return Err(EventLogError::Unknown(anyhow::anyhow!(
                "a stream.resync cannot end a reply"
            )));
        };
        self.end(data, last.approximate_bytes()).await
    }

    /// Takes the reply off the list without an event: its message is gone
    /// (the session was deleted) or another replica already announced its
    /// end. `false` when this sweep's own lease ran out first.
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when Redis cannot be reached.
    pub async fn dismiss(self) -> Result<bool, EventLogError> {
        Ok(self.end(Vec::new(), 0).await?.is_some())
    }

    async fn end(&self, data: Vec<u8>, bytes: usize) -> Result<Option<u64>, EventLogError> {
        let shared = &self.shared;
        let keys = shared.redis.keys();
        let (session, message) = (self.reply.session, self.reply.message);
        let mut invocation = shared.log_script(&SCRIPTS.sweep_finish);
        invocation
            .key(keys.meta(session))
            .key(keys.log(session))
            .key(keys.running())
            .key(keys.sweep(session, message))
            .arg(&self.token)
            .arg(self.reply.member())
            .arg(data)
            .arg(bytes);
        Ok(shared.redis.run("end a swept reply", &invocation).await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_member_names_its_session_and_reply() {
        let reply = ExpiredReply {
            session: SessionId::new(),
            message: MessageId::new(),
        };
        assert_eq!(ExpiredReply::parse(&reply.member()), Some(reply));
        assert_eq!(ExpiredReply::parse("one-part"), None);
    }
}
