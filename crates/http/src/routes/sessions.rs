use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use colloquy_app::{ChatService, NewSession, SessionPatch};
use colloquy_domain::{Session, SessionId};

use crate::body::{parse_id, parse_limit, query, JsonBody, OptionalJsonBody};
use crate::wire::{
    assistant_id, message_id, CreateSessionRequest, PageBody, PatchSessionRequest, SessionBody,
    SessionPageQuery,
};
use crate::{ApiError, Caller};

pub fn session_id(raw: &str) -> Result<SessionId, ApiError> {
    parse_id(raw, SessionId::parse, "session_id")
}

/// Creates the session `body` describes; the compatibility route shares this.
pub(super) async fn create_session(
    service: &ChatService,
    caller: &Caller,
    body: CreateSessionRequest,
) -> Result<Session, ApiError> {
    let assistant_id = body
        .assistant_id
        .as_deref()
        .map(|raw| assistant_id(raw, "assistant_id"))
        .transpose()?;
    Ok(service
        .create_session(
            &caller.0,
            NewSession {
                title: body.title,
                system_prompt: body.system_prompt,
                model: body.model,
                assistant_id,
            },
        )
        .await?)
}

pub(super) fn location(session: &Session) -> (header::HeaderName, String) {
    (header::LOCATION, format!("/api/v1/sessions/{}", session.id))
}

/// Create a session.
///
/// Every field of the body may be left out, and so may the body itself.
/// With `assistant_id`, that assistant answers messages that name none;
/// the session's own `system_prompt` and `model`, when set, win over the
/// assistant's (without `model`, the session takes the assistant's).
#[utoipa::path(
    post,
    path = "/api/v1/sessions",
    tag = "sessions",
    operation_id = "create_session",
    request_body(content = CreateSessionRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new session.", body = SessionBody,
            headers(("Location" = String, description = "The session's URL."))),
        (status = 404, description = "`assistant_id` names none of the caller's assistants.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    service: web::Data<ChatService>,
    caller: Caller,
    JsonBody(body): OptionalJsonBody<CreateSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let session = create_session(&service, &caller, body).await?;
    Ok(HttpResponse::Created()
        .insert_header(location(&session))
        .json(SessionBody::from(&session)))
}

/// List sessions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/sessions",
    tag = "sessions",
    operation_id = "list_sessions",
    params(SessionPageQuery),
    responses((status = 200, description = "A page of sessions.", body = PageBody<SessionBody>))
)]
pub async fn list(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: SessionPageQuery = query(&request)?;
    let limit = parse_limit(query.limit.as_deref(), 20, 100)?;
    let after = query.after.as_deref().map(session_id).transpose()?;
    let page = service.list_sessions(&caller.0, limit, after).await?;
    Ok(HttpResponse::Ok().json(PageBody {
        data: page.items.iter().map(SessionBody::from).collect(),
        has_more: page.has_more,
    }))
}

/// Read a session.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{session_id}",
    tag = "sessions",
    operation_id = "get_session",
    params(("session_id" = String, Path, format = "uuid", description = "The session's id.")),
    responses((status = 200, description = "The session.", body = SessionBody))
)]
pub async fn get(
    service: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let session = service.get_session(&caller.0, session_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(SessionBody::from(&session)))
}

/// Rename a session, change its settings, or switch its branch.
///
/// A field left out stays as it is; `null` clears `title`, `system_prompt`
/// or `assistant_id`. Setting `assistant_id` without `model` sets the
/// session's model to the assistant's. `head_message_id` makes the branch
/// through that message the active one (ending at the newest message below
/// it); watchers of the session get `session.updated`.
#[utoipa::path(
    patch,
    path = "/api/v1/sessions/{session_id}",
    tag = "sessions",
    operation_id = "update_session",
    params(("session_id" = String, Path, format = "uuid", description = "The session's id.")),
    request_body(content = PatchSessionRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The session as it is now.", body = SessionBody),
        (status = 404, description = "There is no session with that id, `assistant_id` names \
            none of the caller's assistants, or `head_message_id` none of the session's messages.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    service: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<PatchSessionRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let assistant_id = body
        .assistant_id
        .map(|raw| {
            raw.as_deref()
                .map(|raw| assistant_id(raw, "assistant_id"))
                .transpose()
        })
        .transpose()?;
    let head_message_id = body
        .head_message_id
        .as_deref()
        .map(|raw| message_id(raw, "head_message_id"))
        .transpose()?;
    let patch = SessionPatch {
        title: body.title,
        system_prompt: body.system_prompt,
        model: body.model,
        assistant_id,
        head_message_id,
    };
    let session = service.update_session(&caller.0, id, patch).await?;
    Ok(HttpResponse::Ok().json(SessionBody::from(&session)))
}

/// Delete a session and its messages, cancelling a reply in progress.
#[utoipa::path(
    delete,
    path = "/api/v1/sessions/{session_id}",
    tag = "sessions",
    operation_id = "delete_session",
    params(("session_id" = String, Path, format = "uuid", description = "The session's id.")),
    responses((status = 204, description = "Deleted."))
)]
pub async fn delete(
    service: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    service
        .delete_session(&caller.0, session_id(&path)?)
        .await?;
    Ok(HttpResponse::NoContent().finish())
}
