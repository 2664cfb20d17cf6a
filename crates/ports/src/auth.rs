//! Who is asking: a request's credentials in, a principal out.

use std::fmt;

use async_trait::async_trait;
use colloquy_domain::{Principal, SessionId, Timestamp};

/// Why a request's credentials were refused. Every case is a `401`; the
/// text says what is wrong without echoing the credential.
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// No credentials where they are required.
    #[error("this server needs credentials: send `Authorization: Bearer <API key or JWT>`")]
    Missing,
    /// Malformed, unknown, badly signed, for another audience or issuer…
    #[error("the credentials were refused: {0}")]
    Invalid(String),
    /// A JWT or stream token past its `exp`.
    #[error("the credentials have expired")]
    Expired,
    /// An API key that was revoked.
    #[error("this API key was revoked")]
    Revoked,
    /// The key store cannot be reached right now; trying later may work.
    #[error("credentials cannot be checked right now: {0:#}")]
    Unavailable(anyhow::Error),
}

/// Turns a request's bearer credential into the principal it stands for.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait Authenticator: Send + Sync + fmt::Debug {
    /// The principal `bearer` (the text after `Authorization: Bearer `, if
    /// any) stands for.
    ///
    /// # Errors
    /// An [`AuthError`]; never [`AuthError::Missing`] from an authenticator
    /// that lets anonymous requests in.
    async fn authenticate(&self, bearer: Option<String>) -> Result<Principal, AuthError>;

    /// Whether requests must carry credentials. An authenticator that lets
    /// everyone in is never shown them, so a stray or malformed
    /// `Authorization` header cannot fail a request it does not need.
    fn requires_credentials(&self) -> bool {
        true
    }
}

/// Short-lived tokens that open one session's event stream or WebSocket:
/// browsers cannot put an `Authorization` header on `EventSource`, so the
/// page asks for one of these and sends it as `?token=`.
///
/// Pure computation (signing and checking), hence not async.
#[cfg_attr(feature = "mock", mockall::automock)]
pub trait StreamTokens: Send + Sync + fmt::Debug {
    /// A token good for opening `session`'s stream as `principal`, and the
    /// moment it stops being good.
    ///
    /// # Errors
    /// [`AuthError::Unavailable`] when the token cannot be made.
    fn issue(
        &self,
        principal: &Principal,
        session: SessionId,
    ) -> Result<(String, Timestamp), AuthError>;

    /// The principal `token` was issued to, if it opens `session`'s stream.
    ///
    /// # Errors
    /// [`AuthError::Expired`] past its expiry; [`AuthError::Invalid`] for
    /// anything else: malformed, badly signed, for another session, or not a
    /// stream token at all (an API JWT never is one).
    fn verify(&self, token: &str, session: SessionId) -> Result<Principal, AuthError>;
}
