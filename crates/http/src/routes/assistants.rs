//! `/api/v1/assistants`: the caller's named voices.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use colloquy_app::{AssistantPatch, ChatService, NewAssistant};

use crate::body::{parse_limit, query, JsonBody};
use crate::wire::{
    assistant_id, AssistantBody, AssistantPageQuery, CreateAssistantRequest, PageBody,
    PatchAssistantRequest,
};
use crate::{ApiError, Caller};

/// Create an assistant.
///
/// Its `name` is unique among the caller's assistants; `model` must be one
/// of `COLLOQUY_MODELS` and `tools` names of `COLLOQUY_TOOLS` (`422`).
#[utoipa::path(
    post,
    path = "/api/v1/assistants",
    tag = "assistants",
    operation_id = "create_assistant",
    request_body(content = CreateAssistantRequest, content_type = "application/json"),
    responses(
        (status = 201, description = "The new assistant.", body = AssistantBody,
            headers(("Location" = String, description = "The assistant's URL."))),
        (status = 409, description = "The caller has an assistant of that name already.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn create(
    service: web::Data<ChatService>,
    caller: Caller,
    JsonBody(body): JsonBody<CreateAssistantRequest>,
) -> Result<HttpResponse, ApiError> {
    let new = NewAssistant {
        name: body.name,
        instructions: body.instructions,
        model: body.model,
        tools: body.tools,
    };
    let assistant = service.create_assistant(&caller.0, new).await?;
    Ok(HttpResponse::Created()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/assistants/{}", assistant.id),
        ))
        .json(AssistantBody::from(&assistant)))
}

/// List the caller's assistants, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/assistants",
    tag = "assistants",
    operation_id = "list_assistants",
    params(AssistantPageQuery),
    responses((status = 200, description = "A page of assistants.", body = PageBody<AssistantBody>))
)]
pub async fn list(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    let query: AssistantPageQuery = query(&request)?;
    let limit = parse_limit(query.limit.as_deref(), 20, 100)?;
    let after = query
        .after
        .as_deref()
        .map(|raw| assistant_id(raw, "after"))
        .transpose()?;
    let page = service.list_assistants(&caller.0, limit, after).await?;
    Ok(HttpResponse::Ok().json(PageBody {
        data: page.items.iter().map(AssistantBody::from).collect(),
        has_more: page.has_more,
    }))
}

/// Read an assistant.
#[utoipa::path(
    get,
    path = "/api/v1/assistants/{assistant_id}",
    tag = "assistants",
    operation_id = "get_assistant",
    params(("assistant_id" = String, Path, format = "uuid", description = "The assistant's id.")),
    responses((status = 200, description = "The assistant.", body = AssistantBody))
)]
pub async fn get(
    service: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = assistant_id(&path, "assistant_id")?;
    let assistant = service.get_assistant(&caller.0, id).await?;
    Ok(HttpResponse::Ok().json(AssistantBody::from(&assistant)))
}

/// Rename an assistant or change its instructions, model or tools.
///
/// A field left out stays as it is; `null` clears `instructions`. Messages
/// it wrote before keep the name they were written under.
#[utoipa::path(
    patch,
    path = "/api/v1/assistants/{assistant_id}",
    tag = "assistants",
    operation_id = "update_assistant",
    params(("assistant_id" = String, Path, format = "uuid", description = "The assistant's id.")),
    request_body(content = PatchAssistantRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "The assistant as it is now.", body = AssistantBody),
        (status = 409, description = "The caller has another assistant of that name.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn update(
    service: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
    JsonBody(body): JsonBody<PatchAssistantRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = assistant_id(&path, "assistant_id")?;
    let patch = AssistantPatch {
        name: body.name,
        instructions: body.instructions,
        model: body.model,
        tools: body.tools,
    };
    let assistant = service.update_assistant(&caller.0, id, patch).await?;
    Ok(HttpResponse::Ok().json(AssistantBody::from(&assistant)))
}

/// Delete an assistant.
///
/// The messages it wrote stay, with its name; sessions that had it as their
/// default assistant fall back to the default voice.
#[utoipa::path(
    delete,
    path = "/api/v1/assistants/{assistant_id}",
    tag = "assistants",
    operation_id = "delete_assistant",
    params(("assistant_id" = String, Path, format = "uuid", description = "The assistant's id.")),
    responses((status = 204, description = "Deleted."))
)]
pub async fn delete(
    service: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = assistant_id(&path, "assistant_id")?;
    service.delete_assistant(&caller.0, id).await?;
    Ok(HttpResponse::NoContent().finish())
}
