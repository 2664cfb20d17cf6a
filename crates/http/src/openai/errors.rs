//! Errors in OpenAI's shape — `{"error": {"message", "type", "code",
//! "param"}}` — with the statuses OpenAI's SDKs act on, so that their own
//! retry logic (`429` and `5xx`, after `Retry-After`) and their error
//! classes (`AuthenticationError`, `NotFoundError`, `BadRequestError`…)
//! work against colloquy.
//!
//! Every error of the `/v1` routes is decided where colloquy decides any
//! error ([`ApiError`], one mapping of failures to statuses); this module
//! only renders it as OpenAI would, in one middleware around the routes, so
//! that the extractors' refusals (a bad key, a body too large, a limit) come
//! out in the same shape as the handlers'. Two of OpenAI's conventions
//! change a status on the way: a request colloquy calls invalid (`422`) is
//! OpenAI's `400`, and a model not offered is OpenAI's `404`
//! `model_not_found`.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderName, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError};
use colloquy_domain::{ErrorCode, MessageError};
use serde::Serialize;

use crate::ApiError;

/// An error of the `/v1` routes, rendered in OpenAI's shape.
#[derive(Debug, Clone)]
pub(crate) struct OpenAiError {
    status: StatusCode,
    message: String,
    kind: &'static str,
    code: Option<String>,
    /// The request field at fault, as OpenAI names it (`messages[2].content`).
    pub(super) param: Option<String>,
    retry_after: Option<u64>,
    /// Where the failed exchange is recorded (`X-Colloquy-Session`…), for
    /// an error that comes after the turn was stored.
    /// Boxed: most errors have none, and the error stays small.
    recorded: Option<Box<RecordedHeaders>>,
}

/// The headers that say where an exchange is recorded.
#[derive(Debug, Clone)]
struct RecordedHeaders(Vec<(HeaderName, HeaderValue)>);

#[derive(Serialize)]
struct Envelope<'a> {
    error: Body<'a>,
}

/// The error object, also what a stream sends in a `data:` line when a
/// reply fails after its first token.
#[derive(Serialize)]
pub(super) struct Body<'a> {
    message: &'a str,
    #[serde(rename = "type")]
    kind: &'a str,
    code: Option<&'a str>,
    param: Option<&'a str>,
}

impl OpenAiError {
    /// `400` for a request OpenAI would refuse too.
    pub(super) fn invalid(message: String, param: Option<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message,
            kind: "invalid_request_error",
            code: None,
            param,
            retry_after: None,
            recorded: None,
        }
    }

    /// A reply that failed before its first token: the status the failure
    /// calls for (a rate-limited upstream is a `429`, one that timed out a
    /// `504`, one that refused the request a `400`…).
    pub(super) fn reply_failed(error: Option<&MessageError>) -> Self {
        let (status, kind) = match error.map(|error| error.code) {
            Some(ErrorCode::UpstreamRateLimited) => {
                (StatusCode::TOO_MANY_REQUESTS, "rate_limit_error")
            }
            Some(ErrorCode::UpstreamTimeout) => (StatusCode::GATEWAY_TIMEOUT, "server_error"),
            Some(ErrorCode::UpstreamUnavailable) => {
                (StatusCode::SERVICE_UNAVAILABLE, "server_error")
            }
            Some(ErrorCode::UpstreamProtocolError) => (StatusCode::BAD_GATEWAY, "server_error"),
            Some(ErrorCode::UpstreamRejected) => (StatusCode::BAD_REQUEST, "invalid_request_error"),
            Some(ErrorCode::Interrupted) => (StatusCode::SERVICE_UNAVAILABLE, "server_error"),
            Some(ErrorCode::Internal) | None => (StatusCode::INTERNAL_SERVER_ERROR, "server_error"),
        };
        Self {
            status,
            message: error.map_or_else(
                || "the reply failed".to_owned(),
                |error| error.message.clone(),
            ),
            kind,
            code: error.map(|error| error.code.as_str().to_owned()),
            param: None,
            retry_after: None,
            recorded: None,
        }
    }

    /// The events stopped before the reply's end (the client fell far
    /// behind, or the server is stopping).
    pub(super) fn stream_lost() -> Self {
        Self::server_error(
            "stream_lost",
            "the stream ended before the reply did; the reply is recorded in its session \
             (`X-Colloquy-Session`), GET /api/v1/sessions/{id}/messages reads it",
        )
    }

    /// The upstream was asked again mid-reply and wrote another text than
    /// the one already streamed.
    pub(super) fn stream_diverged() -> Self {
        Self::server_error(
            "stream_diverged",
            "the upstream failed mid-reply and its retry wrote a different text; the reply as \
             stored is in its session (`X-Colloquy-Session`)",
        )
    }

    fn server_error(code: &str, message: &str) -> Self {
        Self {
            status: StatusCode::BAD_GATEWAY,
            message: message.to_owned(),
            kind: "server_error",
            code: Some(code.to_owned()),
            param: None,
            retry_after: None,
            recorded: None,
        }
    }

    /// The same error, answered with the headers that say where its
    /// exchange is recorded: the client can read the failed reply there.
    pub(super) fn recorded_in(
        mut self,
        headers: impl IntoIterator<Item = (HeaderName, HeaderValue)>,
    ) -> Self {
        self.recorded = Some(Box::new(RecordedHeaders(headers.into_iter().collect())));
        self
    }

    pub(super) fn body(&self) -> Body<'_> {
        Body {
            message: &self.message,
            kind: self.kind,
            code: self.code.as_deref(),
            param: self.param.as_deref(),
        }
    }
}

impl From<ApiError> for OpenAiError {
    fn from(problem: ApiError) -> Self {
        let slug = problem.slug();
        let (status, code) = match (problem.status(), slug) {
            (_, "model-not-allowed") => (StatusCode::NOT_FOUND, "model_not_found".to_owned()),
            (StatusCode::UNAUTHORIZED, _) => {
                (StatusCode::UNAUTHORIZED, "invalid_api_key".to_owned())
            }
            (StatusCode::TOO_MANY_REQUESTS, _) => (
                StatusCode::TOO_MANY_REQUESTS,
                problem.limit().unwrap_or("rate_limit_exceeded").to_owned(),
            ),
            (StatusCode::UNPROCESSABLE_ENTITY, slug) => {
                (StatusCode::BAD_REQUEST, slug.replace('-', "_"))
            }
            (status, slug) => (status, slug.replace('-', "_")),
        };
        let kind = match status {
            StatusCode::UNAUTHORIZED => "authentication_error",
            StatusCode::FORBIDDEN => "permission_error",
            StatusCode::TOO_MANY_REQUESTS if code == "daily_tokens" => "insufficient_quota",
            StatusCode::TOO_MANY_REQUESTS => "rate_limit_error",
            status if status.is_server_error() => "server_error",
            _ => "invalid_request_error",
        };
        Self {
            status,
            message: problem.detail().to_owned(),
            kind,
            code: Some(code),
            param: None,
            retry_after: problem.retry_after(),
            recorded: None,
        }
    }
}

impl std::fmt::Display for OpenAiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.kind,
            self.message
        )
    }
}

impl ResponseError for OpenAiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        if let Some(seconds) = self.retry_after {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        for pair in self.recorded.iter().flat_map(|recorded| recorded.0.iter()) {
            response.insert_header(pair.clone());
        }
        response.json(Envelope { error: self.body() })
    }
}

/// Headers of an error answer that say how to go on, kept when it is
/// rendered again.
const KEPT: [HeaderName; 3] = [header::RETRY_AFTER, header::ALLOW, header::WWW_AUTHENTICATE];

/// Renders every error answer of the routes it wraps in OpenAI's shape:
/// a colloquy problem as [`OpenAiError::from`] says, a bare one (a method
/// not allowed) from its status.
pub(crate) async fn in_openai_shape(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let response = next.call(request).await?;
    let status = response.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return Ok(response.map_into_left_body());
    }
    let already = response
        .response()
        .error()
        .and_then(|error| error.as_error::<OpenAiError>())
        .is_some();
    if already {
        return Ok(response.map_into_left_body());
    }
    let problem = response
        .response()
        .error()
        .and_then(|error| error.as_error::<ApiError>())
        .cloned()
        .unwrap_or_else(|| ApiError::from_status(status));
    let kept: Vec<_> = KEPT
        .iter()
        .filter_map(|name| Some((name.clone(), response.headers().get(name)?.clone())))
        .collect();
    let (request, _) = response.into_parts();
    let mut rendered = OpenAiError::from(problem).error_response();
    for (name, value) in kept {
        rendered.headers_mut().insert(name, value);
    }
    Ok(ServiceResponse::new(request, rendered).map_into_right_body())
}
