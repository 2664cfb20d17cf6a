//! CORS for the origins of `COLLOQUY_CORS_ORIGINS`: preflights answered, and
//! the headers that let their pages read the answers.
//!
//! Refusing foreign origins is [`crate::OriginCheck`]'s job, done before this
//! layer runs; here an origin that is not listed simply gets no CORS headers
//! (the server's own pages need none).

use actix_cors::{Cors, CorsError};
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderName};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::{Condition, ErrorHandlerResponse, ErrorHandlers};
use actix_web::ResponseError;

use crate::origin::AllowedOrigins;
use crate::telemetry::REQUEST_ID;
use crate::ApiError;

/// How long a browser may reuse a preflight's answer. Chromium caps it at
/// two hours; an hour keeps a changed configuration from lingering longer.
const PREFLIGHT_MAX_AGE_SECS: usize = 3600;

const LAST_EVENT_ID: HeaderName = HeaderName::from_static("last-event-id");

/// The CORS layer for `allowed`; with none, a layer that adds nothing.
///
/// Credentials are bearer headers, never cookies, so credentialed CORS is
/// not offered and `*` is answered with the wildcard itself.
pub(crate) fn layer(allowed: Option<&AllowedOrigins>) -> Condition<Cors> {
    let Some(allowed) = allowed else {
        return Condition::new(false, Cors::default());
    };
    let cors = Cors::default()
        .allowed_methods([
            Method::GET,
            Method::POST,
            Method::PATCH,
            Method::DELETE,
            Method::OPTIONS,
        ])
        // A client may send its own request id, which the server keeps.
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            LAST_EVENT_ID,
            REQUEST_ID,
        ])
        .expose_headers([
            header::LOCATION,
            header::RETRY_AFTER,
            header::WWW_AUTHENTICATE,
            REQUEST_ID,
        ])
        .max_age(PREFLIGHT_MAX_AGE_SECS)
        .block_on_origin_mismatch(false);
    let cors = match allowed {
        AllowedOrigins::Any => cors.allow_any_origin().send_wildcard(),
        AllowedOrigins::Listed(_) => {
            let allowed = allowed.clone();
            cors.allowed_origin_fn(move |origin, _| allowed.admits(origin))
        }
    };
    Condition::new(true, cors)
}

/// A preflight the CORS layer refuses (a method or header not offered) as
/// problem+json, like every other error. It wraps the CORS layer: inside
/// it, a rewritten answer would lose the CORS headers of the others.
pub(crate) fn refusals_as_problems<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().handler(StatusCode::BAD_REQUEST, |response: ServiceResponse<B>| {
        let refusal = response
            .response()
            .error()
            .and_then(|error| error.as_error::<CorsError>())
            .map(ToString::to_string);
        let Some(refusal) = refusal else {
            return Ok(ErrorHandlerResponse::Response(
                response.map_into_left_body(),
            ));
        };
        let (request, _) = response.into_parts();
        let problem =
            ApiError::bad_request(format!("CORS preflight refused: {refusal}")).error_response();
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(request, problem).map_into_right_body(),
        ))
    })
}
