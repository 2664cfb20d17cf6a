//! How colloquy tells who is asking: the [`Authenticator`] adapters.
//!
//! - [`Anonymous`]: `COLLOQUY_AUTH=none`, one principal for every request,
//!   for a machine of one's own.

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
