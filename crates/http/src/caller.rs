//! [`Caller`]: the principal a request acts for, as its credentials say.

use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use colloquy_app::ChatService;
use colloquy_domain::{Principal, SessionId};
use colloquy_ports::{AuthError, Authenticator, StreamTokens};
use futures::future::LocalBoxFuture;

use crate::ApiError;

/// The principal of a request, from `Authorization: Bearer …` through the
/// configured [`Authenticator`]. Every route that touches a session takes one,
/// and passes it to the use case: nothing reaches another principal's data.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// The authenticator every request goes through.
pub(crate) type Auth = web::Data<dyn Authenticator>;

/// Who makes and checks stream tokens.
pub(crate) type Tokens = web::Data<dyn StreamTokens>;

pub(crate) fn auth_data(authenticator: Arc<dyn Authenticator>) -> Auth {
    web::Data::from(authenticator)
}

pub(crate) fn tokens_data(tokens: Arc<dyn StreamTokens>) -> Tokens {
    web::Data::from(tokens)
}

/// The principal of a request for `session`'s event stream or WebSocket: a
/// stream token (`?token=`, made for this session) when one is given, else
/// the request's bearer credentials as for any route.
///
/// # Errors
/// `401` for a token that is malformed, expired or for another session.
pub(crate) async fn stream_caller(
    request: &HttpRequest,
    session: SessionId,
    token: Option<&str>,
) -> Result<Caller, ApiError> {
    // A server that lets everyone in checks no token either, as it checks
    // no bearer credential.
    let needs_credentials = request
        .app_data::<Auth>()
        .is_none_or(|auth| auth.requires_credentials());
    match token.filter(|token| needs_credentials && !token.is_empty()) {
        Some(token) => {
            let tokens = request.app_data::<Tokens>().ok_or_else(|| {
                ApiError::from(AuthError::Unavailable(anyhow::anyhow!(
                    "no stream tokens are configured"
                )))
            })?;
            let principal = match tokens.verify(token, session) {
                Ok(principal) => principal,
                Err(refused) => return Err(refuse(request, refused).await),
            };
            admit(request, &principal, needs_credentials).await?;
            Ok(Caller(principal))
        }
        None => Caller::extract(request).await,
    }
}

/// The bearer credential a connection was opened with, checked again before
/// each later request made on it (a WebSocket's frames): a key revoked or a
/// JWT expired since stops those requests, as it stops new HTTP requests.
/// Its Debug prints `[redacted]`.
pub(crate) struct Credentials {
    auth: Auth,
    bearer: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Credentials([redacted])")
    }
}

impl Credentials {
    /// The credentials of `request` worth checking again: none on a server
    /// that lets everyone in, and none for a connection opened with a
    /// stream token (`token`), which was good when it opened it and names
    /// no credential that could be revoked.
    pub(crate) fn of(request: &HttpRequest, token: Option<&str>) -> Option<Self> {
        let auth = request.app_data::<Auth>()?.clone();
        let opened_with_token = token.is_some_and(|token| !token.is_empty());
        if !auth.requires_credentials() || opened_with_token {
            return None;
        }
        let bearer = bearer(request).ok().flatten()?;
        Some(Self { auth, bearer })
    }

    /// Whether the credentials still stand for `principal`.
    ///
    /// # Errors
    /// `401` for credentials refused now; `503` when they cannot be checked.
    pub(crate) async fn check(&self, principal: &Principal) -> Result<(), ApiError> {
        match self.auth.authenticate(Some(self.bearer.clone())).await {
            Ok(now) if now == *principal => Ok(()),
            Ok(_) => Err(AuthError::Invalid(
                "these credentials no longer stand for the principal that opened the socket"
                    .to_owned(),
            )
            .into()),
            Err(refused) => Err(refused.into()),
        }
    }
}

impl FromRequest for Caller {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let auth = request.app_data::<Auth>().cloned();
        let bearer = bearer(request);
        let request = request.clone();
        Box::pin(async move {
            let auth = auth.ok_or_else(|| {
                ApiError::from(AuthError::Unavailable(anyhow::anyhow!(
                    "no authenticator is configured"
                )))
            })?;
            let needs_credentials = auth.requires_credentials();
            let bearer = if needs_credentials {
                match bearer {
                    Ok(bearer) => bearer,
                    Err(refused) => return Err(count_failure(&request, refused).await),
                }
            } else {
                None
            };
            let principal = match auth.authenticate(bearer).await {
                Ok(principal) => principal,
                Err(refused) => return Err(refuse(&request, refused).await),
            };
            admit(&request, &principal, needs_credentials).await?;
            Ok(Self(principal))
        })
    }
}

/// The answer to credentials that were refused. Refusals are counted
/// against the client's address, so guessing keys or tokens is held to the
/// requests-per-minute limit like any other use (and costs the store no more).
async fn refuse(request: &HttpRequest, refused: AuthError) -> ApiError {
    if matches!(refused, AuthError::Unavailable(_)) {
        return refused.into();
    }
    count_failure(request, refused.into()).await
}

async fn count_failure(request: &HttpRequest, refusal: ApiError) -> ApiError {
    match admit_address(request).await {
        Ok(()) => refusal,
        Err(limited) => limited,
    }
}

/// Counts the request against its principal's requests-per-minute limit;
/// on a server that authenticates nobody every client is the same
/// principal, so there each client address is counted apart instead.
async fn admit(
    request: &HttpRequest,
    principal: &Principal,
    authenticated: bool,
) -> Result<(), ApiError> {
    let Some(service) = request.app_data::<web::Data<ChatService>>() else {
        return Ok(());
    };
    Ok(service
        .admit_request(&allowance(request, principal, authenticated))
        .await?)
}

/// Counts the request against its client address's allowance.
async fn admit_address(request: &HttpRequest) -> Result<(), ApiError> {
    let Some(service) = request.app_data::<web::Data<ChatService>>() else {
        return Ok(());
    };
    Ok(service.admit_request(&address_allowance(request)).await?)
}

/// The allowance of requests per minute that `caller`'s requests count
/// against, for requests made later on the same connection (a WebSocket's
/// frames), as [`Caller`] counts the request that opened it.
pub(crate) fn allowance_of(request: &HttpRequest, caller: &Caller) -> String {
    let authenticated = request
        .app_data::<Auth>()
        .is_none_or(|auth| auth.requires_credentials());
    allowance(request, &caller.0, authenticated)
}

fn allowance(request: &HttpRequest, principal: &Principal, authenticated: bool) -> String {
    if authenticated {
        format!("principal:{principal}")
    } else {
        address_allowance(request)
    }
}

fn address_allowance(request: &HttpRequest) -> String {
    // The peer address, not X-Forwarded-For: a header any client can
    // write would let it pick a fresh allowance per request.
    let address = request
        .peer_addr()
        .map_or_else(|| "unknown".to_owned(), |peer| peer.ip().to_string());
    format!("ip:{address}")
}

/// The credential of `Authorization: Bearer <credential>`, if the header is
/// there. Any other scheme, or a header that is not text, is refused rather
/// than ignored: a client that sent credentials means them to count.
fn bearer(request: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(value) = request.headers().get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let refused = |why: &str| ApiError::from(AuthError::Invalid(why.to_owned()));
    let value = value
        .to_str()
        .map_err(|_| refused("the Authorization header is not text"))?;
    let (scheme, credential) = value
        .trim()
        .split_once(' ')
        .ok_or_else(|| refused("the Authorization header must be `Bearer <credential>`"))?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(refused("only the Bearer scheme is accepted"));
    }
    let credential = credential.trim();
    if credential.is_empty() {
        return Err(refused("the bearer credential is empty"));
    }
    Ok(Some(credential.to_owned()))
}
