//! `colloquy token`: a JWT for scripts and tests, signed with
//! `COLLOQUY_JWT_SECRET` and carrying the configured issuer and audience, so
//! a server with `COLLOQUY_AUTH=jwt` and the same settings accepts it.

use std::time::Duration;

use anyhow::{anyhow, Context};
use colloquy_domain::Principal;

use crate::Config;

/// An HS256 JWT naming `principal` (its `sub`), good for `ttl` from now.
///
/// # Errors
/// No `COLLOQUY_JWT_SECRET`, a principal that is not a valid name, or a
/// lifetime under a second (or beyond any sense).
pub fn token(config: &Config, principal: &str, ttl: Duration) -> anyhow::Result<String> {
    let secret = config.jwt_secret.as_ref().ok_or_else(|| {
        anyhow!(
            "`colloquy token` signs with COLLOQUY_JWT_SECRET, which is not set \
             (tokens for a COLLOQUY_JWT_PUBLIC_KEY come from the identity provider that holds the private key)"
        )
    })?;
    let principal = Principal::parse(principal).map_err(|error| anyhow!("--principal: {error}"))?;
    colloquy_auth::mint(
        secret.expose().as_bytes(),
        &principal,
        ttl,
        config.jwt_issuer.as_deref(),
        config.jwt_audience.as_deref(),
    )
    .context("making the token")
}
