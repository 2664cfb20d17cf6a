use actix_web::{web, HttpResponse};
use colloquy_app::ChatService;
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;

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
