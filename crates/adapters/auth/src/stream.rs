//! Stream tokens: what a browser sends as `?token=` to open one session's
//! event stream or WebSocket, since `EventSource` cannot send headers.

use std::fmt;
use std::time::Duration;

use anyhow::Context;
use colloquy_domain::{Principal, SessionId, Timestamp};
use colloquy_ports::{AuthError, StreamTokens};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::jwt::{expiry, principal, refusal, JwtError};

/// The `typ` claim that marks a stream token, so that no other JWT signed
/// with the same secret passes for one (and no stream token for an API JWT).
pub(crate) const STREAM_TYP: &str = "stream";

/// The clock skew allowed between replicas sharing a stream-token secret.
/// Small: the same servers issue and check these tokens.
const LEEWAY: Duration = Duration::from_secs(5);

/// Stream tokens as HS256 JWTs: `sub` (the principal), `sid` (the session),
/// `typ: "stream"`, `iat` and `exp`, signed with a secret only the servers
/// know.
pub struct SignedStreamTokens {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    ttl: Duration,
}

impl SignedStreamTokens {
    /// Tokens signed with `secret`, each good for `ttl`: several replicas
    /// given the same secret accept each other's tokens.
    ///
    /// # Errors
    /// [`JwtError::EmptySecret`]; [`JwtError::Lifetime`] for a `ttl` under a
    /// second or absurdly long.
    pub fn new(secret: Vec<u8>, ttl: Duration) -> Result<Self, JwtError> {
        let encoding = EncodingKey::from_secret(&secret).map_err(|_| JwtError::EmptySecret)?;
        let decoding = DecodingKey::from_secret(&secret).map_err(|_| JwtError::EmptySecret)?;
        expiry(0, ttl).ok_or(JwtError::Lifetime)?;
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY.as_secs();
        validation.set_required_spec_claims(&["exp", "sub"]);
        // Stream tokens have no audience; `typ` and `sid` say what they are for.
        validation.validate_aud = false;
        Ok(Self {
            encoding,
            decoding,
            validation,
            ttl,
        })
    }

    /// Tokens signed with a key derived from `jwt_secret` (SHA-256 of a label
    /// and the secret), so that every replica given the same secret accepts
    /// them, yet a stream token is never signed like an API JWT.
    ///
    /// # Errors
    /// As [`SignedStreamTokens::new`].
    pub fn derived_from(jwt_secret: &[u8], ttl: Duration) -> Result<Self, JwtError> {
        if jwt_secret.is_empty() {
            return Err(JwtError::EmptySecret);
        }
        let mut hasher = Sha256::new();
        hasher.update(b"colloquy stream tokens\0");
        hasher.update(jwt_secret);
        Self::new(hasher.finalize().to_vec(), ttl)
    }

    /// Tokens signed with 32 random bytes drawn now: for a single process,
    /// whose tokens no other process (nor a restart of this one) accepts.
    ///
    /// # Errors
    /// [`JwtError::Lifetime`], as [`SignedStreamTokens::new`].
    ///
    /// # Panics
    /// If the operating system has no random numbers to give.
    pub fn random(ttl: Duration) -> Result<Self, JwtError> {
        let mut secret = vec![0; 32];
        getrandom::fill(&mut secret).expect("the operating system's random number generator");
        Self::new(secret, ttl)
    }

    /// How long each token is good for.
    #[must_use]
    pub fn ttl(&self) -> Duration {
        self.ttl
    }
}

impl fmt::Debug for SignedStreamTokens {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignedStreamTokens")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize)]
struct IssuedClaims<'a> {
    sub: &'a str,
    sid: String,
    typ: &'static str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize)]
struct PresentedClaims {
    sub: Option<String>,
    sid: Option<String>,
    typ: Option<serde_json::Value>,
}

impl StreamTokens for SignedStreamTokens {
    fn issue(
        &self,
        principal: &Principal,
        session: SessionId,
    ) -> Result<(String, Timestamp), AuthError> {
        let iat = jsonwebtoken::get_current_timestamp();
        let exp = expiry(iat, self.ttl)
            .context("the clock is past the year 10000")
            .map_err(AuthError::Unavailable)?;
        let claims = IssuedClaims {
            sub: principal.as_str(),
            sid: session.to_string(),
            typ: STREAM_TYP,
            iat,
            exp,
        };
        let token = jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .context("signing a stream token")
            .map_err(AuthError::Unavailable)?;
        // `expiry` keeps `exp` below the year 10000, well within i64 microseconds.
        let expires_at = Timestamp::from_micros(
            i64::try_from(exp)
                .unwrap_or(i64::MAX)
                .saturating_mul(1_000_000),
        );
        Ok((token, expires_at))
    }

    fn verify(&self, token: &str, session: SessionId) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<PresentedClaims>(token, &self.decoding, &self.validation)
            .map_err(|error| refusal(&error))?;
        let claims = data.claims;
        if claims.typ.as_ref().and_then(serde_json::Value::as_str) != Some(STREAM_TYP) {
            return Err(AuthError::Invalid("this is not a stream token".to_owned()));
        }
        let sid = claims
            .sid
            .ok_or_else(|| AuthError::Invalid("the `sid` claim is missing".to_owned()))?;
        if SessionId::parse(&sid).ok() != Some(session) {
            return Err(AuthError::Invalid(
                "the stream token is for another session".to_owned(),
            ));
        }
        principal(claims.sub)
    }
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::get_current_timestamp;
    use serde_json::{json, Value};

    use super::*;
    use crate::jwt::{mint, JwtAuth};

    const SECRET: &[u8] = b"the replicas' stream-token secret";

    fn tokens() -> SignedStreamTokens {
        SignedStreamTokens::new(SECRET.to_vec(), Duration::from_secs(300)).unwrap()
    }

    fn alice() -> Principal {
        Principal::parse("alice").unwrap()
    }

    fn hs256(claims: &Value) -> String {
        let key = EncodingKey::from_secret(SECRET).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
    }

    #[track_caller]
    fn assert_invalid(result: Result<Principal, AuthError>, reason_contains: &str) {
        match result {
            Err(AuthError::Invalid(reason)) => {
                assert!(reason.contains(reason_contains), "{reason}");
            }
            other => panic!("expected Invalid({reason_contains:?}), got {other:?}"),
        }
    }

    #[test]
    fn an_issued_token_opens_its_session_until_it_expires() {
        let session = SessionId::new();
        let before = Timestamp::now();
        let (token, expires_at) = tokens().issue(&alice(), session).unwrap();
        assert_eq!(tokens().verify(&token, session).unwrap(), alice());

        let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
        assert_eq!(claims["typ"], "stream");
        assert_eq!(claims["sid"], session.to_string());
        let exp = claims["exp"].as_i64().unwrap();
        assert_eq!(expires_at.as_micros(), exp * 1_000_000);
        let ttl_micros = expires_at.as_micros() - before.as_micros();
        assert!(
            (299_000_000..=300_000_000).contains(&ttl_micros),
            "{ttl_micros}"
        );
    }

    #[test]
    fn a_token_for_another_session_is_refused() {
        let (token, _) = tokens().issue(&alice(), SessionId::new()).unwrap();
        assert_invalid(tokens().verify(&token, SessionId::new()), "another session");
    }

    #[test]
    fn an_expired_token_is_expired() {
        let session = SessionId::new();
        let past = get_current_timestamp() - 60;
        let token = hs256(&json!({
            "sub": "alice", "sid": session.to_string(), "typ": "stream",
            "iat": past - 300, "exp": past,
        }));
        assert!(matches!(
            tokens().verify(&token, session),
            Err(AuthError::Expired)
        ));
    }

    #[test]
    fn an_api_jwt_is_never_a_stream_token() {
        let session = SessionId::new();
        let api = mint(SECRET, &alice(), Duration::from_secs(60), None, None).unwrap();
        assert_invalid(tokens().verify(&api, session), "not a stream token");
        // Not even one that names the session, or has another `typ`.
        let exp = get_current_timestamp() + 60;
        for typ in [json!(null), json!("api"), json!(["stream"])] {
            let token = hs256(&json!({
                "sub": "alice", "sid": session.to_string(), "typ": typ, "exp": exp,
            }));
            assert_invalid(tokens().verify(&token, session), "not a stream token");
        }
    }

    #[test]
    fn a_stream_token_is_never_an_api_jwt() {
        let (token, _) = tokens().issue(&alice(), SessionId::new()).unwrap();
        let api = JwtAuth::hs256(SECRET, None, None).unwrap();
        assert_invalid(api.verify(&token), "stream token");
    }

    #[test]
    fn every_claim_is_required() {
        let session = SessionId::new();
        let exp = get_current_timestamp() + 60;
        let sid = session.to_string();
        let cases = [
            (
                json!({"sub": "alice", "typ": "stream", "exp": exp}),
                "`sid`",
            ),
            (
                json!({"sub": "alice", "sid": "nonsense", "typ": "stream", "exp": exp}),
                "another session",
            ),
            (json!({"sid": sid, "typ": "stream", "exp": exp}), "`sub`"),
            (
                json!({"sub": " ", "sid": sid, "typ": "stream", "exp": exp}),
                "`sub`",
            ),
            (
                json!({"sub": "alice", "sid": sid, "typ": "stream"}),
                "`exp`",
            ),
        ];
        for (claims, reason) in cases {
            assert_invalid(tokens().verify(&hs256(&claims), session), reason);
        }
    }

    #[test]
    fn another_secret_signs_tokens_nobody_else_accepts() {
        let session = SessionId::new();
        let one = SignedStreamTokens::random(Duration::from_secs(60)).unwrap();
        let other = SignedStreamTokens::random(Duration::from_secs(60)).unwrap();
        let (token, _) = one.issue(&alice(), session).unwrap();
        assert_eq!(one.verify(&token, session).unwrap(), alice());
        assert_invalid(other.verify(&token, session), "signature");
        assert_invalid(tokens().verify(&token, session), "signature");
        assert_invalid(tokens().verify("not.a.token", session), "well-formed");
    }

    #[test]
    fn construction_refuses_an_empty_secret_or_a_silly_lifetime() {
        assert!(matches!(
            SignedStreamTokens::new(Vec::new(), Duration::from_secs(60)),
            Err(JwtError::EmptySecret)
        ));
        assert!(matches!(
            SignedStreamTokens::random(Duration::ZERO),
            Err(JwtError::Lifetime)
        ));
        assert_eq!(tokens().ttl(), Duration::from_secs(300));
    }

    #[test]
    fn debug_shows_no_secret() {
        let debug = format!("{:?}", tokens());
        assert!(!debug.contains("secret"), "{debug}");
        assert!(debug.contains("300"), "{debug}");
    }
}
