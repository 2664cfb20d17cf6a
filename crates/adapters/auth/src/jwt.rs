//! Bearer JWTs (`COLLOQUY_AUTH=jwt`): [`JwtAuth`] checks them, [`mint`]
//! makes the HS256 ones `colloquy token` prints.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use colloquy_domain::Principal;
use colloquy_ports::{AuthError, Authenticator};
use jsonwebtoken::errors::{Error as JwtLibError, ErrorKind};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};

use crate::stream::STREAM_TYP;

/// The clock skew allowed between an issuer and this server, on `exp` and `nbf`.
pub const LEEWAY: Duration = Duration::from_secs(30);

/// Why a JWT verifier or a token could not be made.
#[derive(Debug, thiserror::Error)]
pub enum JwtError {
    #[error("the JWT secret is empty")]
    EmptySecret,
    #[error("the JWT public key is a private key: give the public half (`openssl pkey -pubout`)")]
    PrivateKey,
    #[error("the JWT public key is neither an RSA nor a P-256 EC public key in PEM (`-----BEGIN PUBLIC KEY-----`)")]
    UnsupportedKey,
    #[error("a token's lifetime must be at least one second and end before the year 10000")]
    Lifetime,
    #[error("the token could not be signed: {0}")]
    Signing(#[source] JwtLibError),
}

/// Checks bearer JWTs against one key and one algorithm, chosen by the
/// configuration: HS256 for a secret, RS256 or ES256 for a public key.
///
/// The token's own `alg` header never chooses: a token signed any other way
/// (`alg: none`, or HS256 with the public key's bytes as its secret) is
/// refused. `exp` is required; `iss` and `aud` are checked when configured;
/// the principal is `sub`.
pub struct JwtAuth {
    key: DecodingKey,
    validation: Validation,
    algorithm: Algorithm,
}

impl JwtAuth {
    /// Tokens signed with HS256 and `secret` (`COLLOQUY_JWT_SECRET`).
    ///
    /// # Errors
    /// [`JwtError::EmptySecret`].
    pub fn hs256(
        secret: &[u8],
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self, JwtError> {
        let key = DecodingKey::from_secret(secret).map_err(|_| JwtError::EmptySecret)?;
        Ok(Self::with_key(key, Algorithm::HS256, issuer, audience))
    }

    /// Tokens signed with the private half of `pem` (the contents of
    /// `COLLOQUY_JWT_PUBLIC_KEY`): RS256 for an RSA key, ES256 for an EC key
    /// on P-256.
    ///
    /// # Errors
    /// [`JwtError::PrivateKey`] for a private key, [`JwtError::UnsupportedKey`]
    /// for anything else that is not one of those public keys.
    pub fn public_key_pem(
        pem: &str,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Result<Self, JwtError> {
        // jsonwebtoken would read some private keys as public ones and only
        // fail each verification later; a server given its private key by
        // mistake should say so at start-up.
        if pem.contains("PRIVATE KEY-----") {
            return Err(JwtError::PrivateKey);
        }
        let (key, algorithm) = if let Ok(key) = DecodingKey::from_rsa_pem(pem.as_bytes()) {
            (key, Algorithm::RS256)
        } else if let Ok(key) = DecodingKey::from_ec_pem(pem.as_bytes()) {
            (key, Algorithm::ES256)
        } else {
            return Err(JwtError::UnsupportedKey);
        };
        // Building a verifier parses an EC point for its curve, so a P-384
        // key is refused here rather than on every request. (An RSA key is
        // parsed only when a signature is checked.)
        if jsonwebtoken::crypto::verify("", b"", &key, algorithm).is_err() {
            return Err(JwtError::UnsupportedKey);
        }
        Ok(Self::with_key(key, algorithm, issuer, audience))
    }

    fn with_key(
        key: DecodingKey,
        algorithm: Algorithm,
        issuer: Option<&str>,
        audience: Option<&str>,
    ) -> Self {
        let mut validation = Validation::new(algorithm);
        validation.leeway = LEEWAY.as_secs();
        // Only checked when the token has one.
        validation.validate_nbf = true;
        let mut required = vec!["exp", "sub"];
        if let Some(issuer) = issuer {
            validation.set_issuer(&[issuer]);
            required.push("iss");
        }
        if let Some(audience) = audience {
            validation.set_audience(&[audience]);
            required.push("aud");
        } else {
            // The contract checks `aud` only when one is configured; by
            // default jsonwebtoken would refuse every token that has one,
            // which is every token most identity providers issue.
            validation.validate_aud = false;
        }
        validation.set_required_spec_claims(&required);
        Self {
            key,
            validation,
            algorithm,
        }
    }

    /// The algorithm tokens must be signed with: `HS256`, `RS256` or `ES256`.
    #[must_use]
    pub fn algorithm(&self) -> &'static str {
        match self.algorithm {
            Algorithm::RS256 => "RS256",
            Algorithm::ES256 => "ES256",
            _ => "HS256",
        }
    }

    /// The principal `token` names, if it passes every check.
    ///
    /// # Errors
    /// [`AuthError::Expired`] past `exp` (and the leeway), else
    /// [`AuthError::Invalid`] with a short reason that never quotes the token.
    pub fn verify(&self, token: &str) -> Result<Principal, AuthError> {
        let data = jsonwebtoken::decode::<ApiClaims>(token, &self.key, &self.validation)
            .map_err(|error| refusal(&error))?;
        // Only reachable if the lead signs stream tokens with this very
        // secret; even then a stream token opens one stream and nothing else.
        if data.claims.typ.as_ref().and_then(serde_json::Value::as_str) == Some(STREAM_TYP) {
            return Err(AuthError::Invalid(
                "a stream token is not an API credential".to_owned(),
            ));
        }
        principal(data.claims.sub)
    }
}

impl fmt::Debug for JwtAuth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtAuth")
            .field("algorithm", &self.algorithm())
            .field("issuer", &self.validation.iss)
            .field("audience", &self.validation.aud)
            .finish_non_exhaustive()
    }
}

#[async_trait]
impl Authenticator for JwtAuth {
    async fn authenticate(&self, bearer: Option<String>) -> Result<Principal, AuthError> {
        self.verify(&bearer.ok_or(AuthError::Missing)?)
    }
}

/// The claims colloquy reads from an API JWT; the rest are checked by
/// jsonwebtoken's `Validation` or ignored.
#[derive(Deserialize)]
struct ApiClaims {
    sub: Option<String>,
    typ: Option<serde_json::Value>,
}

#[derive(Serialize)]
struct MintedClaims<'a> {
    sub: &'a str,
    iat: u64,
    exp: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    iss: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    aud: Option<&'a str>,
}

/// An HS256 JWT for `principal` (`sub`), good for `ttl` from now (`iat`,
/// `exp`), with `iss` and `aud` when given: what `colloquy token` prints and
/// tests send.
///
/// # Errors
/// [`JwtError::EmptySecret`]; [`JwtError::Lifetime`] for a `ttl` under a
/// second or absurdly long.
pub fn mint(
    secret: &[u8],
    principal: &Principal,
    ttl: Duration,
    issuer: Option<&str>,
    audience: Option<&str>,
) -> Result<String, JwtError> {
    let key = EncodingKey::from_secret(secret).map_err(|_| JwtError::EmptySecret)?;
    let iat = jsonwebtoken::get_current_timestamp();
    let exp = expiry(iat, ttl).ok_or(JwtError::Lifetime)?;
    let claims = MintedClaims {
        sub: principal.as_str(),
        iat,
        exp,
        iss: issuer,
        aud: audience,
    };
    jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &key).map_err(JwtError::Signing)
}

/// `now + ttl` in whole seconds, for a `ttl` of at least one second ending
/// before the year 10000 (where JWT libraries and dates in other languages
/// stop agreeing).
pub(crate) fn expiry(now: u64, ttl: Duration) -> Option<u64> {
    const YEAR_10000: u64 = 253_402_300_800;
    let exp = now.checked_add(ttl.as_secs())?;
    (ttl.as_secs() >= 1 && exp < YEAR_10000).then_some(exp)
}

/// The principal a verified token's `sub` names.
pub(crate) fn principal(sub: Option<String>) -> Result<Principal, AuthError> {
    let sub = sub.ok_or_else(|| AuthError::Invalid("the `sub` claim is missing".to_owned()))?;
    Principal::parse(&sub)
        .map_err(|error| AuthError::Invalid(format!("the `sub` claim is not a principal: {error}")))
}

/// jsonwebtoken's refusal as the port's, with a reason short enough for a
/// `401` body. None of these texts quotes the token.
pub(crate) fn refusal(error: &JwtLibError) -> AuthError {
    let reason = match error.kind() {
        ErrorKind::ExpiredSignature => return AuthError::Expired,
        ErrorKind::InvalidSignature => "the signature does not match".to_owned(),
        ErrorKind::InvalidAlgorithm | ErrorKind::MissingAlgorithm => {
            "the token is not signed with the algorithm this server expects".to_owned()
        }
        ErrorKind::MissingRequiredClaim(claim) => format!("the `{claim}` claim is missing"),
        ErrorKind::InvalidClaimFormat(claim) => format!("the `{claim}` claim is malformed"),
        ErrorKind::InvalidIssuer => "the token is from another issuer".to_owned(),
        ErrorKind::InvalidAudience => "the token is for another audience".to_owned(),
        ErrorKind::ImmatureSignature => "the token is not valid yet (`nbf`)".to_owned(),
        ErrorKind::InvalidToken
        | ErrorKind::Base64(_)
        | ErrorKind::Json(_)
        | ErrorKind::Utf8(_) => "the token is not a well-formed JWT".to_owned(),
        _ => "the token could not be verified".to_owned(),
    };
    AuthError::Invalid(reason)
}

#[cfg(test)]
mod tests {
    use jsonwebtoken::get_current_timestamp;
    use serde_json::{json, Value};

    use super::*;

    const SECRET: &[u8] = b"a test secret of a decent length!";
    const RSA_PUBLIC: &str = include_str!("../tests/keys/rsa-public.pem");
    const RSA_PRIVATE: &str = include_str!("../tests/keys/rsa-private.pem");
    const EC_PUBLIC: &str = include_str!("../tests/keys/ec-public.pem");
    const EC_PRIVATE: &str = include_str!("../tests/keys/ec-private.pem");
    const EC384_PUBLIC: &str = include_str!("../tests/keys/ec384-public.pem");
    /// base64url of `{"alg":"none","typ":"JWT"}`.
    const NONE_HEADER: &str = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0";

    fn alice() -> Principal {
        Principal::parse("alice").unwrap()
    }

    fn claims(extra: Value) -> Value {
        let now = get_current_timestamp();
        let mut claims = json!({"sub": "alice", "iat": now, "exp": now + 600});
        claims
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        claims
    }

    fn hs256(claims: &Value, secret: &[u8]) -> String {
        let key = EncodingKey::from_secret(secret).unwrap();
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), claims, &key).unwrap()
    }

    fn signed(claims: &Value, algorithm: Algorithm, key: &EncodingKey) -> String {
        jsonwebtoken::encode(&Header::new(algorithm), claims, key).unwrap()
    }

    fn verifier() -> JwtAuth {
        JwtAuth::hs256(SECRET, None, None).unwrap()
    }

    fn strict() -> JwtAuth {
        JwtAuth::hs256(SECRET, Some("https://idp.example"), Some("colloquy")).unwrap()
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

    #[tokio::test]
    async fn a_valid_hs256_token_names_its_subject() {
        let token = hs256(&claims(json!({})), SECRET);
        assert_eq!(verifier().authenticate(Some(token)).await.unwrap(), alice());
        assert_eq!(verifier().algorithm(), "HS256");
    }

    #[tokio::test]
    async fn no_bearer_is_missing() {
        assert!(matches!(
            verifier().authenticate(None).await,
            Err(AuthError::Missing)
        ));
    }

    #[test]
    fn an_expired_token_is_expired_past_the_leeway_only() {
        let now = get_current_timestamp();
        let stale = hs256(&claims(json!({"exp": now - 31})), SECRET);
        assert!(matches!(verifier().verify(&stale), Err(AuthError::Expired)));
        let within_leeway = hs256(&claims(json!({"exp": now - 10})), SECRET);
        assert_eq!(verifier().verify(&within_leeway).unwrap(), alice());
    }

    #[test]
    fn a_token_signed_with_another_secret_is_refused() {
        let token = hs256(&claims(json!({})), b"another secret entirely");
        assert_invalid(verifier().verify(&token), "signature");
    }

    #[test]
    fn exp_is_required() {
        let token = hs256(&json!({"sub": "alice"}), SECRET);
        assert_invalid(verifier().verify(&token), "`exp` claim is missing");
    }

    #[test]
    fn a_missing_or_blank_sub_is_refused() {
        let now = get_current_timestamp();
        let token = hs256(&json!({"exp": now + 60}), SECRET);
        assert_invalid(verifier().verify(&token), "`sub` claim is missing");
        for blank in ["", "   "] {
            let token = hs256(&claims(json!({"sub": blank})), SECRET);
            assert_invalid(verifier().verify(&token), "`sub` claim is not a principal");
        }
    }

    #[test]
    fn a_future_nbf_is_refused() {
        let now = get_current_timestamp();
        let token = hs256(&claims(json!({"nbf": now + 120})), SECRET);
        assert_invalid(verifier().verify(&token), "not valid yet");
    }

    #[test]
    fn issuer_and_audience_are_checked_when_configured() {
        let good = json!({"iss": "https://idp.example", "aud": "colloquy"});
        assert_eq!(
            strict().verify(&hs256(&claims(good), SECRET)).unwrap(),
            alice()
        );
        // An audience list naming this server is fine too.
        let listed = json!({"iss": "https://idp.example", "aud": ["other", "colloquy"]});
        assert_eq!(
            strict().verify(&hs256(&claims(listed), SECRET)).unwrap(),
            alice()
        );
        let cases = [
            (
                json!({"iss": "https://evil.example", "aud": "colloquy"}),
                "issuer",
            ),
            (json!({"aud": "colloquy"}), "`iss` claim is missing"),
            (
                json!({"iss": "https://idp.example", "aud": "other"}),
                "audience",
            ),
            (
                json!({"iss": "https://idp.example"}),
                "`aud` claim is missing",
            ),
        ];
        for (extra, reason) in cases {
            let token = hs256(&claims(extra), SECRET);
            assert_invalid(strict().verify(&token), reason);
        }
    }

    #[test]
    fn issuer_and_audience_are_ignored_when_not_configured() {
        let token = hs256(
            &claims(json!({"iss": "https://idp.example", "aud": "anything"})),
            SECRET,
        );
        assert_eq!(verifier().verify(&token).unwrap(), alice());
    }

    #[test]
    fn alg_none_is_refused() {
        // A real token's payload under an `alg: none` header, signature empty.
        let real = hs256(&claims(json!({})), SECRET);
        let payload = real.split('.').nth(1).unwrap();
        let unsigned = format!("{NONE_HEADER}.{payload}.");
        assert_invalid(verifier().verify(&unsigned), "well-formed");
        let rsa = JwtAuth::public_key_pem(RSA_PUBLIC, None, None).unwrap();
        assert_invalid(rsa.verify(&unsigned), "well-formed");
    }

    #[test]
    fn rs256_tokens_verify_with_the_public_key() {
        let rsa = JwtAuth::public_key_pem(RSA_PUBLIC, None, None).unwrap();
        assert_eq!(rsa.algorithm(), "RS256");
        let key = EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).unwrap();
        let token = signed(&claims(json!({})), Algorithm::RS256, &key);
        assert_eq!(rsa.verify(&token).unwrap(), alice());
        // Another RSA algorithm with the same key is still not the configured one.
        let rs384 = signed(&claims(json!({})), Algorithm::RS384, &key);
        assert_invalid(rsa.verify(&rs384), "algorithm");
    }

    #[test]
    fn es256_tokens_verify_with_the_public_key() {
        let ec = JwtAuth::public_key_pem(EC_PUBLIC, Some("idp"), None).unwrap();
        assert_eq!(ec.algorithm(), "ES256");
        let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
        let token = signed(&claims(json!({"iss": "idp"})), Algorithm::ES256, &key);
        assert_eq!(ec.verify(&token).unwrap(), alice());
        let expired = signed(
            &claims(json!({"iss": "idp", "exp": get_current_timestamp() - 3600})),
            Algorithm::ES256,
            &key,
        );
        assert!(matches!(ec.verify(&expired), Err(AuthError::Expired)));
    }

    #[test]
    fn hs256_signed_with_the_public_key_bytes_is_refused() {
        // Algorithm confusion: a verifier that let the token pick `alg`
        // would check this HMAC with the (public) PEM as the secret.
        for pem in [RSA_PUBLIC, EC_PUBLIC] {
            let verifier = JwtAuth::public_key_pem(pem, None, None).unwrap();
            let forged = hs256(&claims(json!({})), pem.as_bytes());
            assert_invalid(verifier.verify(&forged), "algorithm");
        }
    }

    #[test]
    fn a_token_for_the_other_public_key_algorithm_is_refused() {
        let rsa = JwtAuth::public_key_pem(RSA_PUBLIC, None, None).unwrap();
        let ec_key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).unwrap();
        let token = signed(&claims(json!({})), Algorithm::ES256, &ec_key);
        assert_invalid(rsa.verify(&token), "algorithm");
    }

    #[test]
    fn only_public_rsa_and_p256_keys_are_accepted() {
        for private in [RSA_PRIVATE, EC_PRIVATE] {
            assert!(matches!(
                JwtAuth::public_key_pem(private, None, None),
                Err(JwtError::PrivateKey)
            ));
        }
        for unsupported in [
            EC384_PUBLIC,
            "",
            "not a key",
            "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n",
        ] {
            assert!(
                matches!(
                    JwtAuth::public_key_pem(unsupported, None, None),
                    Err(JwtError::UnsupportedKey)
                ),
                "{unsupported:?}"
            );
        }
        assert!(matches!(
            JwtAuth::hs256(b"", None, None),
            Err(JwtError::EmptySecret)
        ));
    }

    #[test]
    fn refusals_never_quote_the_token() {
        let token = hs256(&claims(json!({"sub": ""})), SECRET);
        for bad in [
            token.clone(),
            format!("{token}x"),
            token.replace('.', ""),
            "garbage".to_owned(),
        ] {
            let error = verifier().verify(&bad).unwrap_err().to_string();
            for part in bad.split('.').filter(|part| part.len() > 4) {
                assert!(!error.contains(part), "{error}");
            }
        }
    }

    #[test]
    fn minted_tokens_verify_and_carry_what_was_asked() {
        let token = mint(
            SECRET,
            &alice(),
            Duration::from_secs(3600),
            Some("https://idp.example"),
            Some("colloquy"),
        )
        .unwrap();
        assert_eq!(strict().verify(&token).unwrap(), alice());
        let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&token).unwrap();
        let iat = claims["iat"].as_u64().unwrap();
        assert_eq!(claims["exp"].as_u64().unwrap(), iat + 3600);
        assert_eq!(claims["sub"], "alice");

        let plain = mint(SECRET, &alice(), Duration::from_secs(60), None, None).unwrap();
        let claims: Value = jsonwebtoken::dangerous::insecure_decode_claims(&plain).unwrap();
        assert!(claims.get("iss").is_none() && claims.get("aud").is_none());
        // Without issuer and audience it does not satisfy a server that
        // wants them (which of the two is named first is not fixed).
        assert_invalid(strict().verify(&plain), "claim is missing");
    }

    #[test]
    fn mint_refuses_an_empty_secret_or_a_silly_lifetime() {
        let mint = |secret: &[u8], ttl| mint(secret, &alice(), ttl, None, None);
        assert!(matches!(
            mint(b"", Duration::from_secs(60)),
            Err(JwtError::EmptySecret)
        ));
        for ttl in [Duration::ZERO, Duration::from_millis(999), Duration::MAX] {
            assert!(
                matches!(mint(SECRET, ttl), Err(JwtError::Lifetime)),
                "{ttl:?}"
            );
        }
    }

    #[test]
    fn debug_shows_no_key() {
        let debug = format!("{:?}", strict());
        assert!(
            debug.contains("HS256") && debug.contains("colloquy"),
            "{debug}"
        );
        assert!(!debug.contains("decent length"), "{debug}");
    }
}
