//! The original assignment's routes, kept for its clients. Each shares its
//! handler with the `/api/v1` route it stands for; only creating a session
//! answers differently, adding the id once more as `session_id`.

use actix_web::{web, HttpResponse};
use colloquy_app::ChatService;
use utoipa::openapi::HttpMethod;

use super::{messages, sessions};
use crate::body::{JsonBody, OptionalJsonBody};
use crate::wire::{CompatSessionBody, CreateSessionRequest, SessionBody};
use crate::{ApiError, Caller};

/// The routes that share an `/api/v1` handler outright: (route, method, the
/// `/api/v1` route). The OpenAPI document copies their documentation from it.
pub(super) const ALIASES: [(&str, HttpMethod, &str); 3] = [
    (
        "/api/chat/send/{session_id}",
        HttpMethod::Post,
        "/api/v1/sessions/{session_id}/messages",
    ),
    (
        "/api/chat/receive/{session_id}",
        HttpMethod::Get,
        "/api/v1/sessions/{session_id}/events",
    ),
    (
        "/api/history/{session_id}",
        HttpMethod::Get,
        "/api/v1/sessions/{session_id}/messages",
    ),
];

pub(super) fn register(config: &mut web::ServiceConfig) {
    config
        .service(web::resource("/api/create_session").route(web::post().to(create_session)))
        .service(web::resource(ALIASES[0].0).route(web::post().to(messages::send)))
        .service(web::resource(ALIASES[1].0).route(web::get().to(messages::events)))
        .service(web::resource(ALIASES[2].0).route(web::get().to(messages::list)));
}

/// Create a session (the original assignment's route).
///
/// Same as `POST /api/v1/sessions`, and the answer also names the id `session_id`.
#[utoipa::path(
    post,
    path = "/api/create_session",
    tag = "compatibility",
    operation_id = "compat_create_session",
    request_body(content = CreateSessionRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new session.", body = CompatSessionBody,
            headers(("Location" = String, description = "The session's URL."))),
        (status = 404, description = "`assistant_id` names none of the caller's assistants.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn create_session(
    service: web::Data<ChatService>,
    caller: Caller,
    JsonBody(body): OptionalJsonBody<CreateSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let session = sessions::create_session(&service, &caller, body).await?;
    Ok(HttpResponse::Created()
        .insert_header(sessions::location(&session))
        .json(CompatSessionBody {
            session_id: session.id.to_string(),
            session: SessionBody::from(&session),
        }))
}
