//! What each principal has spent upstream, per UTC day, kept in the store
//! beside the sessions, so it survives a restart and every replica agrees.

use std::fmt;

use async_trait::async_trait;
use colloquy_domain::{Principal, Usage, UtcDay};

use crate::RepoError;

/// The ledger of upstream tokens spent by each principal.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait UsageLedger: Send + Sync + fmt::Debug {
    /// Adds `usage` to what `principal` spent on `day`, in one statement
    /// (concurrent additions never lose one another).
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unknown`] when the store fails.
    async fn add_usage(
        &self,
        principal: &Principal,
        day: UtcDay,
        usage: Usage,
    ) -> Result<(), RepoError>;

    /// What `principal` spent on `day`; zero when nothing was recorded.
    ///
    /// # Errors
    /// As [`UsageLedger::add_usage`].
    async fn usage_on(&self, principal: &Principal, day: UtcDay) -> Result<Usage, RepoError>;
}
