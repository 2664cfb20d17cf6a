use actix_web::{web, HttpResponse};
use colloquy_app::ChatService;
use serde_json::json;

use crate::ApiError;

/// The process is up and serving.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// The database answers: the service can do its job.
pub async fn ready(service: web::Data<ChatService>) -> Result<HttpResponse, ApiError> {
    service.check_ready().await?;
    Ok(HttpResponse::Ok().json(json!({"status": "ready"})))
}
