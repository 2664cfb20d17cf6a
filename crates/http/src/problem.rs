//! Every error as `application/problem+json` (RFC 9457).

use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::{ErrorHandlerResponse, ErrorHandlers};
use actix_web::{HttpResponse, ResponseError};
use colloquy_app::ChatError;
use colloquy_ports::{AuthError, Limit, LimitReached};
use serde::Serialize;
use utoipa::ToSchema;

pub(crate) const PROBLEM_JSON: &str = "application/problem+json";

/// An error answer: a status, a short title, and a detail for humans.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(as = Problem, example = json!({
    "type": "urn:colloquy:problem:session-not-found",
    "title": "Session not found",
    "status": 404,
    "detail": "there is no session with that id"
}))]
pub struct ApiError {
    /// A URI naming the kind of problem, stable across releases.
    #[serde(rename = "type")]
    kind: String,
    title: String,
    #[serde(serialize_with = "as_u16")]
    #[schema(value_type = u16, minimum = 400, maximum = 599)]
    status: StatusCode,
    detail: String,
    /// On a `429`: which limit was reached (`requests_per_minute`,
    /// `replies_at_once`, `streams_at_once`, `daily_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "replies_at_once")]
    limit: Option<&'static str>,
    /// Sent as `Retry-After`, in whole seconds.
    #[serde(skip)]
    retry_after: Option<u64>,
}

fn as_u16<S: serde::Serializer>(status: &StatusCode, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_u16(status.as_u16())
}

impl ApiError {
    /// `slug` names the kind of problem in the `type` URI; `detail` says what
    /// happened with this request.
    pub fn new(status: StatusCode, slug: &str, title: &str, detail: impl Into<String>) -> Self {
        Self {
            kind: format!("urn:colloquy:problem:{slug}"),
            title: title.to_owned(),
            status,
            detail: detail.into(),
            limit: None,
            retry_after: None,
        }
    }

    /// `429`: `reached` says which limit, and when to try again.
    pub fn limit_reached(reached: LimitReached) -> Self {
        let retry_after = reached.retry_after.as_secs().max(1);
        let detail = format!(
            "{} is limited to {} ({}); try again in {retry_after} s",
            match reached.limit {
                Limit::RequestsPerMinute => "requests per minute",
                Limit::RepliesAtOnce => "replies generating at once",
                Limit::StreamsAtOnce => "event streams open at once",
                Limit::DailyTokens => "upstream tokens per day (UTC)",
            },
            reached.max,
            reached.limit.variable(),
        );
        let mut problem = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "limit-reached",
            "Too many requests",
            detail,
        );
        problem.limit = Some(reached.limit.name());
        problem.retry_after = Some(retry_after);
        problem
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "bad-request",
            "Bad request",
            detail,
        )
    }

    pub fn invalid(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "Invalid request",
            detail,
        )
    }

    pub fn session_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "session-not-found",
            "Session not found",
            "there is no session with that id",
        )
    }

    /// `404` for an assistant id that names none of the caller's assistants
    /// (another principal's looks the same).
    pub fn assistant_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "assistant-not-found",
            "Assistant not found",
            "there is no assistant with that id",
        )
    }

    /// `422` for a well-formed body that is not a conversation colloquy can
    /// import; `detail` says what is wrong with it.
    pub fn bad_import(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-import",
            "Not an importable conversation",
            detail,
        )
    }

    /// The `Retry-After` of this answer, in seconds: when a limit frees up
    /// (`429`), or a few seconds for a server that is busy or stopping (`503`).
    /// The kind of problem: the last part of its `type` URI.
    pub(crate) fn slug(&self) -> &str {
        self.kind.rsplit(':').next().unwrap_or(&self.kind)
    }

    pub(crate) fn status(&self) -> StatusCode {
        self.status
    }

    pub(crate) fn detail(&self) -> &str {
        &self.detail
    }

    /// On a `429`: which limit was reached.
    pub(crate) fn limit(&self) -> Option<&'static str> {
        self.limit
    }

    pub(crate) fn retry_after(&self) -> Option<u64> {
        self.retry_after
            .or((self.status == StatusCode::SERVICE_UNAVAILABLE).then_some(5))
    }

    pub fn unsupported_media_type(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "Unsupported media type",
            detail,
        )
    }

    /// `413` for a body over `limit` bytes: the route's own limit, which
    /// is [`crate::MAX_BODY_BYTES`] unless it takes larger bodies (imports).
    pub fn payload_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!("this route's request bodies are limited to {limit} bytes"),
        )
    }

    /// `404` for a message id that names none of the session's messages.
    pub fn message_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "message-not-found",
            "Message not found",
            ChatError::MessageNotFound.to_string(),
        )
    }

    /// `413` for a WebSocket frame (or a message of several) over `limit` bytes.
    pub(crate) fn frame_too_large(limit: usize) -> Self {
        Self::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "Payload too large",
            format!(
                "WebSocket messages are limited to {limit} bytes: room for the longest content \
                 (COLLOQUY_MAX_MESSAGE_CHARS) however it is escaped"
            ),
        )
    }

    /// A problem for a status the framework produced on its own (no route,
    /// wrong method…), with the status's own words.
    pub fn from_status(status: StatusCode) -> Self {
        let title = status.canonical_reason().unwrap_or("Error");
        let detail = match status {
            StatusCode::NOT_FOUND => "no route matches this path".to_owned(),
            StatusCode::METHOD_NOT_ALLOWED => "this route does not accept that method".to_owned(),
            StatusCode::PAYLOAD_TOO_LARGE => return Self::payload_too_large(crate::MAX_BODY_BYTES),
            _ => title.to_lowercase(),
        };
        let slug = title.to_lowercase().replace(' ', "-");
        Self::new(status, &slug, title, detail)
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.title,
            self.detail
        )
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.status
    }

    fn error_response(&self) -> HttpResponse {
        let mut response = HttpResponse::build(self.status);
        response.content_type(PROBLEM_JSON);
        if let Some(seconds) = self.retry_after() {
            response.insert_header((header::RETRY_AFTER, seconds.to_string()));
        }
        if self.status == StatusCode::UNAUTHORIZED {
            response.insert_header((header::WWW_AUTHENTICATE, "Bearer"));
        }
        response.json(self)
    }
}

impl From<AuthError> for ApiError {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Unavailable(cause) => {
                tracing::warn!(error = %cause, "credentials cannot be checked");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "Service unavailable",
                    "credentials cannot be checked right now; try again shortly",
                )
            }
            refused => Self::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                refused.to_string(),
            ),
        }
    }
}

impl From<ChatError> for ApiError {
    fn from(error: ChatError) -> Self {
        match error {
            ChatError::Invalid(invalid) => Self::invalid(invalid.to_string()),
            ChatError::SessionNotFound => Self::session_not_found(),
            ChatError::AssistantNotFound => Self::assistant_not_found(),
            ChatError::MessageNotFound => Self::message_not_found(),
            ChatError::WrongRole(detail) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "wrong-role",
                "Wrong role",
                detail,
            ),
            ChatError::BadQuery(detail) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad-query",
                "Invalid search query",
                detail,
            ),
            ChatError::BadImport(detail) => Self::bad_import(detail),
            ChatError::BadConversation(detail) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad-conversation",
                "Nothing to answer",
                detail,
            ),
            ChatError::AssistantNameTaken(_) => Self::new(
                StatusCode::CONFLICT,
                "assistant-name-taken",
                "Assistant name taken",
                error.to_string(),
            ),
            ChatError::UnknownTool(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "unknown-tool",
                "Unknown tool",
                error.to_string(),
            ),
            // How many assistants a turn names is checked as any other
            // field of the request is.
            ChatError::BadAssistants(detail) => Self::invalid(detail),
            ChatError::ModelNotAllowed(_) => Self::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "model-not-allowed",
                "Model not offered",
                error.to_string(),
            ),
            ChatError::LimitReached(reached) => Self::limit_reached(reached),
            ChatError::LimitsUnavailable(cause) => {
                tracing::warn!(error = %cause, "limits unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "limits-unavailable",
                    "Service unavailable",
                    "the limits cannot be checked right now; try again shortly",
                )
            }
            ChatError::ReplyInProgress => Self::new(
                StatusCode::CONFLICT,
                "reply-in-progress",
                "Reply in progress",
                error.to_string(),
            ),
            ChatError::ShuttingDown => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "shutting-down",
                "Shutting down",
                error.to_string(),
            ),
            ChatError::EventsUnavailable(cause) => {
                tracing::warn!(error = %cause, "event log unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "events-unavailable",
                    "Service unavailable",
                    "the event log is unreachable; try again shortly",
                )
            }
            ChatError::StoreUnavailable(cause) => {
                tracing::warn!(error = %cause, "store unavailable");
                Self::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "store-unavailable",
                    "Service unavailable",
                    "the database is busy or unreachable; try again shortly",
                )
            }
            // The model's own words can say what went wrong (a rate limit, a
            // rejected request) without revealing anything of ours.
            ChatError::ModelUnavailable(_) => Self::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "model-unavailable",
                "Model unavailable",
                error.to_string(),
            ),
            ChatError::ModelFailed(_) | ChatError::BadModelOutput(_) => Self::new(
                StatusCode::BAD_GATEWAY,
                "model-failed",
                "Model failed",
                error.to_string(),
            ),
            ChatError::Unexpected(cause) => {
                // The whole cause chain goes to the log, none of it to the client.
                tracing::error!(error = ?cause, "unexpected error");
                Self::new(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "internal",
                    "Internal server error",
                    "something went wrong on our side; it has been logged",
                )
            }
        }
    }
}

/// Turns the framework's own error answers (unknown route, wrong method,
/// oversized body…) into problem+json, leaving ours as they are.
pub(crate) fn bare_errors_as_problems<B: 'static>() -> ErrorHandlers<B> {
    ErrorHandlers::new().default_handler(|response: ServiceResponse<B>| {
        // A JSON error is one of the OpenAI-compatible routes', already in
        // OpenAI's shape (`openai::errors`).
        let already_rendered = response
            .headers()
            .get(header::CONTENT_TYPE)
            .is_some_and(|value| {
                value == HeaderValue::from_static(PROBLEM_JSON)
                    || value == HeaderValue::from_static("application/json")
            });
        if already_rendered {
            return Ok(ErrorHandlerResponse::Response(
                response.map_into_left_body(),
            ));
        }
        let status = response.status();
        let allow = response.headers().get(header::ALLOW).cloned();
        let (request, _) = response.into_parts();
        let mut problem = ApiError::from_status(status).error_response();
        if let Some(allow) = allow {
            problem.headers_mut().insert(header::ALLOW, allow);
        }
        Ok(ErrorHandlerResponse::Response(
            ServiceResponse::new(request, problem).map_into_right_body(),
        ))
    })
}
