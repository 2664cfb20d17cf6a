//! Every key and channel name the adapters use, in one place.
//!
//! A session's keys share the hash tag `{<session id>}`, so they would
//! live on one node of a cluster; the scripts that also touch the set of
//! running replies need a single Redis (or a primary with replicas behind
//! Sentinel), which is what this adapter supports.

use colloquy_domain::{MessageId, Principal, SessionId};
use colloquy_ports::Held;

#[derive(Debug, Clone)]
pub(crate) struct Keys {
    prefix: String,
}

impl Keys {
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: prefix.to_owned(),
        }
    }

    pub(crate) fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The session's stream of events; entry ids are `<event id>-0`.
    pub(crate) fn log(&self, session: SessionId) -> String {
        format!("{}s:{{{session}}}:log", self.prefix)
    }

    /// The session's counter: first and next event id, bytes kept, when the
    /// oldest kept event was published, and the last id of a closed session.
    pub(crate) fn meta(&self, session: SessionId) -> String {
        format!("{}s:{{{session}}}:meta", self.prefix)
    }

    /// The session's reply slot: the lease's token, the reply's message id,
    /// the id of its first event, and whether a cancel was asked for.
    pub(crate) fn slot(&self, session: SessionId) -> String {
        format!("{}s:{{{session}}}:slot", self.prefix)
    }

    /// The lease of the replica that is sweeping one expired reply.
    pub(crate) fn sweep(&self, session: SessionId, reply: MessageId) -> String {
        format!("{}s:{{{session}}}:sweep:{reply}", self.prefix)
    }

    /// A secret the replicas share (see `Redis::shared_secret`).
    pub(crate) fn secret(&self, name: &str) -> String {
        format!("{}secret:{name}", self.prefix)
    }

    /// Every running reply, scored by its lease's deadline (ms since the
    /// epoch, Redis's clock): the sweeper's list.
    pub(crate) fn running(&self) -> String {
        format!("{}running", self.prefix)
    }

    /// A member of [`Keys::running`].
    pub(crate) fn running_member(session: SessionId, reply: MessageId) -> String {
        format!("{session} {reply}")
    }

    /// Cancels, as the lease token of the claim to stop.
    pub(crate) fn cancel_channel(&self) -> String {
        format!("{}cancel", self.prefix)
    }

    /// Closed sessions, as `<session id> <last event id>`.
    pub(crate) fn closed_channel(&self) -> String {
        format!("{}closed", self.prefix)
    }

    /// A stream that exists only to wake one reader's blocking read when the
    /// set of sessions it reads has grown.
    pub(crate) fn doorbell(&self, reader: &str) -> String {
        format!("{}reader:{reader}", self.prefix)
    }

    /// One client's requests-per-minute state (its GCRA time).
    pub(crate) fn rate(&self, who: &str) -> String {
        format!("{}rate:{who}", self.prefix)
    }

    /// The places one principal holds of one kind, scored by deadline.
    pub(crate) fn held(&self, what: Held, principal: &Principal) -> String {
        let kind = match what {
            Held::Reply => "reply",
            Held::Stream => "stream",
        };
        format!("{}held:{kind}:{principal}", self.prefix)
    }
}
