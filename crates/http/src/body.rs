//! Reading requests: JSON bodies, ids in paths, query parameters. Every
//! failure becomes the contract's status (`400`, `408`, `413`, `415`, `422`).

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

use actix_web::dev::Payload;
use actix_web::http::{header, StatusCode};
use actix_web::web::{Bytes, PayloadConfig, ServiceConfig};
use actix_web::{FromRequest, HttpRequest, Resource};
use colloquy_domain::ParseIdError;
use serde::de::DeserializeOwned;

use crate::ApiError;

/// A JSON body of type `T`. An empty body is `T::default()` when
/// `OPTIONAL` is true (a session may be created without one), else a `422`.
#[derive(Debug)]
pub struct JsonBody<T, const OPTIONAL: bool = false>(pub T);

/// A body that may be left out entirely.
pub type OptionalJsonBody<T> = JsonBody<T, true>;

/// The longest a client may take to send a request's body once its head
/// has arrived (`COLLOQUY_CLIENT_TIMEOUT_SECS`; actix times the head). A
/// client trickling its body would otherwise hold its connection, and the
/// worker's share of them, as long as it likes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyTimeout(pub(crate) Duration);

/// A JSON body not parsed yet, for a route that parses it off the reactor
/// (an import, which may be large): the same checks as [`JsonBody`] (a
/// body, within the route's limit, sent as JSON), then its bytes.
#[derive(Debug)]
pub struct JsonBytes(pub Bytes);

/// The most bytes a route's body may hold: [`crate::MAX_BODY_BYTES`], or
/// what [`with_body_limit`] gave its resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct BodyLimit(usize);

/// `resource` with bodies of up to `bytes` (its `413` says so), instead of
/// the app's [`crate::MAX_BODY_BYTES`].
pub(crate) fn with_body_limit(resource: Resource, bytes: usize) -> Resource {
    resource
        .app_data(PayloadConfig::new(bytes))
        .app_data(BodyLimit(bytes))
}

/// The app's limit of bodies, for every route that sets none of its own.
pub(crate) fn default_body_limit(config: &mut ServiceConfig) {
    config
        .app_data(PayloadConfig::new(crate::MAX_BODY_BYTES))
        .app_data(BodyLimit(crate::MAX_BODY_BYTES));
}

/// Reads a body that is to be JSON: `None` when there is none (nothing but
/// white space), else its bytes once its `Content-Type` says JSON.
async fn read_json_body(
    request: HttpRequest,
    bytes: BytesFuture,
) -> Result<Option<Bytes>, ApiError> {
    let timeout = request.app_data::<BodyTimeout>().copied();
    let bytes = match timeout {
        Some(BodyTimeout(limit)) => actix_web::rt::time::timeout(limit, bytes)
            .await
            .map_err(|_| body_too_slow(limit))?,
        None => bytes.await,
    };
    let bytes = bytes.map_err(|error| {
        if error.as_response_error().status_code() == StatusCode::PAYLOAD_TOO_LARGE {
            let limit = request
                .app_data::<BodyLimit>()
                .map_or(crate::MAX_BODY_BYTES, |limit| limit.0);
            ApiError::payload_too_large(limit)
        } else {
            ApiError::bad_request(format!("could not read the request body: {error}"))
        }
    })?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    check_json_content_type(&request)?;
    Ok(Some(bytes))
}

type BytesFuture = <Bytes as FromRequest>::Future;

impl<T: DeserializeOwned + Default + 'static, const OPTIONAL: bool> FromRequest
    for JsonBody<T, OPTIONAL>
{
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = Bytes::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            match read_json_body(request, bytes).await? {
                Some(bytes) => parse_json(&bytes, "the body").map(Self),
                None if OPTIONAL => Ok(Self(T::default())),
                None => Err(ApiError::invalid("a JSON body is required")),
            }
        })
    }
}

impl FromRequest for JsonBytes {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, ApiError>>>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let bytes = Bytes::from_request(request, payload);
        let request = request.clone();
        Box::pin(async move {
            read_json_body(request, bytes)
                .await?
                .map(Self)
                .ok_or_else(|| ApiError::invalid("a JSON body is required"))
        })
    }
}

/// `408`: the connection then closes, as the rest of the body is never read.
fn body_too_slow(limit: Duration) -> ApiError {
    ApiError::new(
        StatusCode::REQUEST_TIMEOUT,
        "request-timeout",
        "Request timeout",
        format!(
            "the request body did not arrive within {} (COLLOQUY_CLIENT_TIMEOUT_SECS)",
            humantime::format_duration(limit)
        ),
    )
}

fn check_json_content_type(request: &HttpRequest) -> Result<(), ApiError> {
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or("");
    let essence = content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
    {
        Ok(())
    } else if content_type.is_empty() {
        Err(ApiError::unsupported_media_type(
            "send the body as JSON with `Content-Type: application/json`",
        ))
    } else {
        Err(ApiError::unsupported_media_type(format!(
            "the body must be JSON (`Content-Type: application/json`), not `{content_type}`"
        )))
    }
}

/// Syntax errors are the client's malformed JSON (`400`); JSON of the wrong
/// shape (a missing field, a number for a string) is unprocessable (`422`).
/// `what` names the JSON in the answer: "the body", or a WebSocket's "the frame".
pub(crate) fn parse_json<T: DeserializeOwned>(bytes: &[u8], what: &str) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| match error.classify() {
        serde_json::error::Category::Data => ApiError::invalid(error.to_string()),
        _ => ApiError::bad_request(format!("{what} is not valid JSON: {error}")),
    })
}

/// An id from the path, or a `400` naming the parameter.
pub fn parse_id<T>(
    raw: &str,
    parse: fn(&str) -> Result<T, ParseIdError>,
    name: &str,
) -> Result<T, ApiError> {
    parse(raw).map_err(|error| ApiError::bad_request(format!("{name}: {error}")))
}

/// The query string as `T` (its fields raw strings, checked by the caller so
/// each gets the contract's status), or a `400` when it cannot be decoded.
pub fn query<T: DeserializeOwned>(request: &HttpRequest) -> Result<T, ApiError> {
    actix_web::web::Query::<T>::from_query(request.query_string())
        .map(actix_web::web::Query::into_inner)
        .map_err(|error| ApiError::bad_request(format!("malformed query string: {error}")))
}

/// `limit` between 1 and `max` (`default` when absent), or a `422`.
pub fn parse_limit(raw: Option<&str>, default: usize, max: usize) -> Result<usize, ApiError> {
    let Some(raw) = raw else { return Ok(default) };
    match raw.trim().parse::<usize>() {
        Ok(limit) if (1..=max).contains(&limit) => Ok(limit),
        _ => Err(ApiError::invalid(format!(
            "`limit` must be a whole number from 1 to {max}, not `{raw}`"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_bounded_and_default() {
        assert_eq!(parse_limit(None, 20, 100), Ok(20));
        assert_eq!(parse_limit(Some("100"), 20, 100), Ok(100));
        for bad in ["0", "101", "-1", "ten", ""] {
            let error = parse_limit(Some(bad), 20, 100).unwrap_err();
            assert_eq!(
                error,
                ApiError::invalid(format!(
                    "`limit` must be a whole number from 1 to 100, not `{bad}`"
                ))
            );
        }
    }
}
