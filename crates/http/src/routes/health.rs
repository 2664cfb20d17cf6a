//! Probes and the metrics scrape.

use actix_web::http::header;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use colloquy_app::ChatService;
use serde::Serialize;
use utoipa::ToSchema;

use crate::{ApiError, MetricsToken};

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthBody {
    #[schema(example = "ok")]
    status: &'static str,
}

/// The process is up and serving.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    operation_id = "healthz",
    responses((status = 200, description = "Up.", body = HealthBody))
)]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(HealthBody { status: "ok" })
}

/// What `/readyz` found.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReadyBody {
    /// `ready`, or `degraded` when the event log (Redis) does not answer.
    #[schema(example = "ready")]
    status: &'static str,
    /// `ok`: the database answers (otherwise the answer is a `503`).
    #[schema(example = "ok")]
    database: &'static str,
    /// `ok`, or `unavailable` when Redis does not answer: replies running
    /// now finish and are stored, clients are told to resync, and new
    /// messages are refused with `503` until it is back.
    #[schema(example = "ok")]
    events: &'static str,
}

/// The database answers: the service can do its job. With Redis, whether
/// it answers too (`degraded` when not, still `200`: every replica shares
/// one Redis, and taking them all out of the load balancer would turn a
/// degraded service into none).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready, or degraded (Redis does not answer).", body = ReadyBody),
        (status = 503, description = "The database does not answer.", body = ApiError, content_type = "application/problem+json"),
        (status = 500, description = "Something went wrong on the server.", body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn ready(service: web::Data<ChatService>) -> Result<HttpResponse, ApiError> {
    let readiness = service.check_ready().await?;
    let (status, events) = if readiness.events_reachable {
        ("ready", "ok")
    } else {
        ("degraded", "unavailable")
    };
    Ok(HttpResponse::Ok().json(ReadyBody {
        status,
        database: "ok",
        events,
    }))
}

/// The service's metrics, for Prometheus to scrape.
///
/// With `COLLOQUY_METRICS_TOKEN` set, only for `Authorization: Bearer` with it.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    operation_id = "metrics",
    responses(
        (status = 200, description = "Prometheus text exposition format.",
            content_type = "text/plain", body = String,
            example = json!("http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 3\n")),
        (status = 401, description = "`COLLOQUY_METRICS_TOKEN` is set and the request does not carry it \
            as `Authorization: Bearer` (`WWW-Authenticate: Bearer`).",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn metrics(request: HttpRequest) -> Result<HttpResponse, ApiError> {
    if let Some(token) = request.app_data::<MetricsToken>() {
        if !token.admits(request.headers().get(header::AUTHORIZATION)) {
            return Err(ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Unauthorized",
                "/metrics needs `Authorization: Bearer` with the token of COLLOQUY_METRICS_TOKEN",
            ));
        }
    }
    Ok(crate::telemetry::metrics_text().await)
}
