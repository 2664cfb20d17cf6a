//! Where API keys are kept: who each one is for, and the SHA-256 of the key,
//! never the key itself.

use std::fmt;

use async_trait::async_trait;
use colloquy_domain::{ApiKeyId, Principal, Timestamp};

use crate::RepoError;

/// One API key as stored. `hash` is the SHA-256 of the key's text; the key
/// is shown once, when it is made, and kept nowhere.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeyRecord {
    pub id: ApiKeyId,
    /// Who a request carrying this key acts for.
    pub principal: Principal,
    /// What the key is for, as its maker wrote it (`ci`, `laptop`…).
    pub label: Option<String>,
    pub hash: [u8; 32],
    pub created_at: Timestamp,
    /// Written in batches, so it may lag real use by up to a minute.
    pub last_used_at: Option<Timestamp>,
    /// Once set, the key authenticates nobody.
    pub revoked_at: Option<Timestamp>,
}

/// The API keys every replica checks requests against.
///
/// Every method is one short transaction; implementations run their blocking
/// work off the async reactor themselves.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ApiKeyStore: Send + Sync + fmt::Debug {
    /// Stores a new key.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the store cannot be reached right now;
    /// [`RepoError::Unknown`] when it fails otherwise, including when a key
    /// with this id or hash is already stored.
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), RepoError>;

    /// Every key, revoked ones included, oldest first.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unknown`] when the store
    /// fails, or when a stored row is not a valid key.
    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, RepoError>;

    /// Marks the key revoked as of `at`. Returns `false`, and changes
    /// nothing, when there is no such key or it was revoked already.
    ///
    /// # Errors
    /// As [`ApiKeyStore::create_api_key`], never for an unknown id.
    async fn revoke_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<bool, RepoError>;

    /// The key whose hash is `hash`, revoked or not; `None` when there is none.
    /// This is a lookup by an index, not a scan.
    ///
    /// # Errors
    /// As [`ApiKeyStore::list_api_keys`].
    async fn find_api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, RepoError>;

    /// Records when each key was last used, all of them in one transaction.
    /// A time earlier than the one stored leaves it as it is, so batches
    /// written out of order never move `last_used_at` backwards. Unknown ids
    /// are skipped.
    ///
    /// # Errors
    /// As [`ApiKeyStore::create_api_key`]; nothing of the batch is kept then.
    async fn record_key_use(&self, uses: &[(ApiKeyId, Timestamp)]) -> Result<(), RepoError>;
}
