//! How colloquy tells who is asking: the [`Authenticator`] adapters.
//!
//! - [`Anonymous`]: `COLLOQUY_AUTH=none`, one principal for every request,
//!   for a machine of one's own.
//! - [`ApiKeys`]: `COLLOQUY_AUTH=keys`, API keys from an
//!   [`ApiKeyStore`](colloquy_ports::ApiKeyStore), stored as SHA-256 only;
//!   [`ApiKeys::issue`] makes them for `colloquy keys create`.
//! - [`JwtAuth`]: `COLLOQUY_AUTH=jwt`, bearer JWTs checked with one configured
//!   key and algorithm (HS256, RS256 or ES256); [`mint`] makes the HS256 ones
//!   `colloquy token` prints.
//! - [`SignedStreamTokens`]: the short-lived [`colloquy_ports::StreamTokens`]
//!   a browser opens one session's event stream with.

mod jwt;
mod keys;
mod stream;

pub use jwt::{mint, JwtAuth, JwtError, LEEWAY};
pub use keys::{ApiKeys, IssuedKey, KEY_PREFIX};
pub use stream::SignedStreamTokens;

use async_trait::async_trait;
use colloquy_domain::Principal;
use colloquy_ports::{AuthError, Authenticator};

/// Every request is the anonymous principal. A credential sent anyway is
/// ignored: there is nothing to check it against.
#[derive(Debug, Default, Clone, Copy)]
pub struct Anonymous;

#[async_trait]
impl Authenticator for Anonymous {
    async fn authenticate(&self, _bearer: Option<String>) -> Result<Principal, AuthError> {
        Ok(Principal::anonymous())
    }

    fn requires_credentials(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn anonymous_lets_everyone_in_as_one_principal() {
        for bearer in [None, Some("anything".to_owned())] {
            assert_eq!(
                Anonymous.authenticate(bearer).await.unwrap(),
                Principal::anonymous()
            );
        }
    }
}
