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
//!
//! A reply can also be *adopted* (`sweep_adopt.lua`): one the store holds
//! `streaming` that no lease names, because Redis lost its state while the
//! reply's replica was dead. Adopting puts it in the set under the
//! sweeper's lease, and from there it ends as an expired one does. A
//! message of the turn that holds its session's slot (the slot names the
//! turn's first message; the turn's later ones have greater ids) is never
//! adopted: that turn is alive.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use colloquy_ports::{EventKind, EventLogError, ExpiredLeases, ExpiredReply, SweepClaim};

use super::shared::Shared;
use super::RedisEventLog;
use crate::codec;
use crate::keys::Keys;
use crate::scripts::SCRIPTS;

fn member(reply: ExpiredReply) -> String {
    Keys::running_member(reply.session, reply.message)
}

fn parse_member(member: &str) -> Option<ExpiredReply> {
    let (session, message) = member.split_once(' ')?;
    Some(ExpiredReply {
        session: colloquy_domain::SessionId::parse(session).ok()?,
        message: colloquy_domain::MessageId::parse(message).ok()?,
    })
}

#[async_trait]
impl ExpiredLeases for RedisEventLog {
    async fn expired_replies(&self, most: usize) -> Result<Vec<ExpiredReply>, EventLogError> {
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
                let parsed = parse_member(member);
                if parsed.is_none() {
                    tracing::error!(member, "a running reply's entry cannot be read");
                }
                parsed
            })
            // A reply this process runs is alive, whatever its lease says:
            // its lease lapsed while Redis could not be reached, and its
            // next renewal takes it back or learns that it is gone.
            .filter(|reply| !shared.claims.holds(reply.session, reply.message))
            .collect())
    }

    async fn claim_sweep(
        &self,
        reply: ExpiredReply,
    ) -> Result<Option<Box<dyn SweepClaim>>, EventLogError> {
        self.take_sweep(&SCRIPTS.sweep_claim, "claim a sweep", reply)
            .await
    }

    async fn adopt_orphan(
        &self,
        reply: ExpiredReply,
    ) -> Result<Option<Box<dyn SweepClaim>>, EventLogError> {
        self.take_sweep(&SCRIPTS.sweep_adopt, "adopt an orphan", reply)
            .await
    }
}

impl RedisEventLog {
    /// Runs one of the two scripts that take a sweep on (both take the same
    /// keys and arguments) and, when it won, the claim it gave.
    async fn take_sweep(
        &self,
        script: &redis::Script,
        what: &'static str,
        reply: ExpiredReply,
    ) -> Result<Option<Box<dyn SweepClaim>>, EventLogError> {
        let shared = &self.shared;
        let keys = shared.redis.keys();
        let token = new_token();
        let mut invocation = script.prepare_invoke();
        invocation
            .key(keys.running())
            .key(keys.sweep(reply.session, reply.message))
            .key(keys.slot(reply.session))
            .arg(member(reply))
            .arg(&token)
            .arg(shared.settings.lease_ms())
            .arg(reply.message.to_string());
        let won: i64 = shared.redis.run(what, &invocation).await?;
        Ok((won == 1).then(|| {
            Box::new(RedisSweepClaim {
                shared: Arc::clone(&self.shared),
                reply,
                token,
            }) as Box<dyn SweepClaim>
        }))
    }
}

fn new_token() -> String {
    uuid::Uuid::now_v7().simple().to_string()
}

/// The sweep of one expired reply, held by this replica alone.
struct RedisSweepClaim {
    shared: Arc<Shared>,
    reply: ExpiredReply,
    token: String,
}

impl fmt::Debug for RedisSweepClaim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSweepClaim")
            .field("reply", &self.reply)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl SweepClaim for RedisSweepClaim {
    fn reply(&self) -> ExpiredReply {
        self.reply
    }

    async fn finish(self: Box<Self>, last: EventKind) -> Result<Option<u64>, EventLogError> {
        let Some(data) = codec::encode(&last) else {
            return Err(EventLogError::Unknown(anyhow::anyhow!(
                "a stream.resync cannot end a reply"
            )));
        };
        self.end(data, last.approximate_bytes()).await
    }

    async fn dismiss(self: Box<Self>) -> Result<bool, EventLogError> {
        Ok(self.end(Vec::new(), 0).await?.is_some())
    }
}

impl RedisSweepClaim {
    async fn end(&self, data: Vec<u8>, bytes: usize) -> Result<Option<u64>, EventLogError> {
        let shared = &self.shared;
        let keys = shared.redis.keys();
        let (session, message) = (self.reply.session, self.reply.message);
        let lost = shared.losses.take_mark(session);
        let mut invocation = shared.log_script(&SCRIPTS.sweep_finish);
        invocation
            .key(keys.meta(session))
            .key(keys.log(session))
            .key(keys.running())
            .key(keys.sweep(session, message))
            .arg(&self.token)
            .arg(member(self.reply))
            .arg(data)
            .arg(bytes)
            .arg(&lost);
        let ended: Result<Option<u64>, _> =
            shared.redis.run("end a swept reply", &invocation).await;
        if !matches!(ended, Ok(Some(_))) {
            shared.losses.give_back(session, &lost);
        }
        Ok(ended?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_running_member_names_its_session_and_reply() {
        let reply = ExpiredReply {
            session: colloquy_domain::SessionId::new(),
            message: colloquy_domain::MessageId::new(),
        };
        assert_eq!(parse_member(&member(reply)), Some(reply));
        assert_eq!(parse_member("one-part"), None);
    }
}
