//! What the caller is and may use: `GET /api/v1/me`, `GET /api/v1/models`.

use actix_web::{web, HttpResponse};
use colloquy_app::ChatService;

use crate::wire::{AccountBody, ModelBody, ModelListBody};
use crate::{ApiError, Caller};

/// Who is asking: the principal, its limits, its upstream usage today.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "account",
    operation_id = "get_me",
    responses((status = 200, description = "The caller's principal, limits and usage today.", body = AccountBody))
)]
pub async fn me(service: web::Data<ChatService>, caller: Caller) -> Result<HttpResponse, ApiError> {
    let account = service.account(&caller.0).await?;
    Ok(HttpResponse::Ok().json(AccountBody::new(
        &account,
        service.config().max_reply_tokens,
    )))
}

/// The models a session may name (`COLLOQUY_MODELS`); any other is `422`.
#[utoipa::path(
    get,
    path = "/api/v1/models",
    tag = "account",
    operation_id = "list_models",
    responses((status = 200, description = "The models offered.", body = ModelListBody))
)]
pub async fn models(service: web::Data<ChatService>, _caller: Caller) -> HttpResponse {
    let data = service
        .models()
        .into_iter()
        .map(|model| ModelBody {
            id: model.as_str().to_owned(),
        })
        .collect();
    HttpResponse::Ok().json(ModelListBody { data })
}
