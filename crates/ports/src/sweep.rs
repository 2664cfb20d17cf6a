//! Replies whose replica died: how a shared event log lets the replicas
//! that are left find them and end each of them exactly once.
//!
//! A reply's slot in a log shared by several replicas is a lease its
//! replica renews while the reply runs. When the replica dies, the lease
//! runs out and the reply is *expired*: some other replica's sweeper takes
//! it on ([`ExpiredLeases::claim_sweep`]), stores it `interrupted` and
//! publishes its last event ([`SweepClaim::finish`]). A log that lives and
//! dies with its process (the in-process one) needs none of this: its
//! replies end with it, and start-up recovery stores them `interrupted`.

use std::fmt;

use async_trait::async_trait;
use colloquy_domain::{MessageId, SessionId};

use crate::events::{EventKind, EventLogError};

/// A reply of a session, named by its assistant message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ExpiredReply {
    pub session: SessionId,
    pub message: MessageId,
}

/// The leases of a shared event log, as the sweeper sees them.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ExpiredLeases: Send + Sync + fmt::Debug {
    /// Up to `most` replies whose lease ran out while they ran, and that no
    /// replica is sweeping now. Listing takes nothing on.
    ///
    /// # Errors
    /// [`EventLogError::Unavailable`] when the log cannot be reached.
    async fn expired_replies(&self, most: usize) -> Result<Vec<ExpiredReply>, EventLogError>;

    /// Takes on the sweep of an expired reply, for one lease: `None` when it
    /// is not expired (any more) or another replica took it on. A claim
    /// dropped without being finished or dismissed lets the reply expire
    /// again, for this or another replica to retry.
    ///
    /// # Errors
    /// As [`ExpiredLeases::expired_replies`].
    async fn claim_sweep(
        &self,
        reply: ExpiredReply,
    ) -> Result<Option<Box<dyn SweepClaim>>, EventLogError>;

    /// Takes on a reply the store holds `streaming` although the log knows
    /// of no lease for it at all (the log lost its state, say a restart of
    /// Redis without persistence, while the reply's replica was dead): as
    /// [`ExpiredLeases::claim_sweep`], and `None` as well when a lease for
    /// it exists, or when its session's slot is held by a turn it may
    /// belong to: the slot names that turn's first reply, and a reply whose
    /// id is that one's or later may be the live turn's. Only a reply older
    /// than the slot's holder (an earlier turn's) is adopted.
    ///
    /// # Errors
    /// As [`ExpiredLeases::expired_replies`].
    async fn adopt_orphan(
        &self,
        reply: ExpiredReply,
    ) -> Result<Option<Box<dyn SweepClaim>>, EventLogError>;
}

/// The sweep of one expired reply, held by this replica alone.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait SweepClaim: Send + Sync + fmt::Debug {
    fn reply(&self) -> ExpiredReply;

    /// Publishes the reply's last event and takes the reply off the list,
    /// in one step. `None` when this sweep's own lease ran out first:
    /// nothing was published then, and the reply is swept again later.
    ///
    /// # Errors
    /// As [`ExpiredLeases::expired_replies`]: the reply is swept again later.
    async fn finish(self: Box<Self>, last: EventKind) -> Result<Option<u64>, EventLogError>;

    /// Takes the reply off the list without an event: its message is gone,
    /// or its end was announced already. `false` when this sweep's own
    /// lease ran out first.
    ///
    /// # Errors
    /// As [`ExpiredLeases::expired_replies`].
    async fn dismiss(self: Box<Self>) -> Result<bool, EventLogError>;
}
