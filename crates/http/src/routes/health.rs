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

/// The database answers: the service can do its job.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    operation_id = "readyz",
    responses(
        (status = 200, description = "Ready.", body = HealthBody),
        (status = 503, description = "The database does not answer.", body = ApiError, content_type = "application/problem+json"),
        (status = 500, description = "Something went wrong on the server.", body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn ready(service: web::Data<ChatService>) -> Result<HttpResponse, ApiError> {
    service.check_ready().await?;
    Ok(HttpResponse::Ok().json(HealthBody { status: "ready" }))
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
