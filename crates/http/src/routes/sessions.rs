use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use colloquy_app::{ChatService, NewSession, SessionPatch};
use colloquy_domain::SessionId;

use crate::body::{parse_id, parse_limit, query_pairs, query_value, JsonBody, OptionalJsonBody};
use crate::wire::{CreateSessionRequest, PageBody, PatchSessionRequest, SessionBody};
use crate::ApiError;

pub fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    parse_id(raw, SessionId::parse, "session_id")
}

pub async fn create(
    service: web::Data<ChatService>,
    JsonBody(body): OptionalJsonBody<CreateSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let session = service
        .create_session(NewSession { title: body.title, system_prompt: body.system_prompt, model: body.model })
        .await?;
    Ok(HttpResponse::Created()
        .insert_header((header::LOCATION, format!("/api/v1/sessions/{}", session.id)))
        .json(SessionBody::from(&session)))
}

pub async fn list(service: web::Data<ChatService>, request: HttpRequest) -> Result<HttpResponse, ApiError> {
    let query = query_pairs(&request)?;
    let limit = parse_limit(query_value(&query, "limit"), 20, 100)?;
    let after = query_value(&query, "after").map(session_id).transpose()?;
    let page = service.list_sessions(limit, after).await?;
    Ok(HttpResponse::Ok().json(PageBody {
        data: page.items.iter().map(SessionBody::from).collect(),
        has_more: page.has_more,
    }))
}

pub async fn get(service: web::Data<ChatService>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let session = service.get_session(session_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(SessionBody::from(&session)))
}

pub async fn update(
    service: web::Data<ChatService>,
    path: web::Path<String>,
    JsonBody(body): JsonBody<PatchSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let patch = SessionPatch { title: body.title, system_prompt: body.system_prompt, model: body.model };
    let session = service.update_session(id, patch).await?;
    Ok(HttpResponse::Ok().json(SessionBody::from(&session)))
}

pub async fn delete(service: web::Data<ChatService>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    service.delete_session(session_id(&path)?).await?;
    Ok(HttpResponse::NoContent().finish())
}
