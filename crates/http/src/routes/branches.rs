//! Reworking a conversation: regenerating a reply, editing a question.
//! Each starts a turn on a new branch and answers exactly as a send does
//! (`messages::answer_turn`).

use actix_web::{web, HttpRequest, HttpResponse};
use colloquy_app::ChatService;
use colloquy_domain::{MessageId, SessionId};

use super::messages::answer_turn;
use super::sessions::session_id;
use crate::body::{JsonBody, OptionalJsonBody};
use crate::wire::{assistant_ids, message_id, EditMessageRequest, RegenerateRequest};
use crate::{sse, ApiError, Caller};

fn ids(path: &(String, String)) -> Result<(SessionId, MessageId), ApiError> {
    Ok((session_id(&path.0)?, message_id(&path.1, "message_id")?))
}

/// Ask again for a reply.
///
/// `message_id` is an assistant message: a new reply beside it (under the
/// same question), by the same assistant, becomes the head of the session;
/// the old one stays on its own branch. Answered as a send is: the turn's
/// event stream with `Accept: text/event-stream`, else `202` with
/// `user_message: null`. The body may be left out.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{session_id}/messages/{message_id}/regenerate",
    tag = "branches",
    operation_id = "regenerate_message",
    params(
        ("session_id" = String, Path, format = "uuid", description = "The session's id."),
        ("message_id" = String, Path, format = "uuid", description = "The assistant message to regenerate."),
    ),
    request_body(content = RegenerateRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "The new reply is being generated; watch `events_url`.", body = crate::wire::SendAccepted,
            headers(("Location" = String, description = "The session's history."))),
        (status = 200, description = sse::SEND_STREAM_DESCRIPTION,
            content_type = "text/event-stream", body = ref("#/components/schemas/ServerSentEvent"), example = json!(sse::SEND_STREAM_EXAMPLE)),
        (status = 404, description = NOT_FOUND_IN_A_BRANCH, body = ApiError,
            content_type = "application/problem+json"),
        (status = 409, description = "A turn already runs in this session.", body = ApiError,
            content_type = "application/problem+json"),
        (status = 422, description = "`message_id` is a user message (edit it instead), or the body is invalid.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn regenerate(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    JsonBody(body): OptionalJsonBody<RegenerateRequest>,
) -> Result<HttpResponse, ApiError> {
    let (session, message) = ids(&path)?;
    let outcome = service.regenerate(&caller.0, session, message).await?;
    Ok(answer_turn(
        &request,
        outcome,
        session,
        body.cancel_on_disconnect,
    ))
}

/// Edit a question and ask it again.
///
/// `message_id` is a user message: a new user message with `content`,
/// beside it (under the message it followed), and its reply (by the
/// session's voice, or by `assistant_ids` in order) become the head of the
/// session; the old question and its answers stay on their own branch.
/// Answered as a send is.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{session_id}/messages/{message_id}/edit",
    tag = "branches",
    operation_id = "edit_message",
    params(
        ("session_id" = String, Path, format = "uuid", description = "The session's id."),
        ("message_id" = String, Path, format = "uuid", description = "The user message to edit."),
    ),
    request_body(content = EditMessageRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "The replies are being generated; watch `events_url`.", body = crate::wire::SendAccepted,
            headers(("Location" = String, description = "The session's history."))),
        (status = 200, description = sse::SEND_STREAM_DESCRIPTION,
            content_type = "text/event-stream", body = ref("#/components/schemas/ServerSentEvent"), example = json!(sse::SEND_STREAM_EXAMPLE)),
        (status = 404, description = NOT_FOUND_IN_A_BRANCH, body = ApiError,
            content_type = "application/problem+json"),
        (status = 409, description = "A turn already runs in this session.", body = ApiError,
            content_type = "application/problem+json"),
        (status = 422, description = "`message_id` is an assistant message (regenerate it instead), or \
            `content` is empty or too long, or `assistant_ids` names none or more than 8.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn edit(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<(String, String)>,
    JsonBody(body): JsonBody<EditMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let (session, message) = ids(&path)?;
    let assistants = body
        .assistant_ids
        .as_deref()
        .map(assistant_ids)
        .transpose()?;
    let outcome = service
        .edit_message(&caller.0, session, message, body.content, assistants)
        .await?;
    Ok(answer_turn(
        &request,
        outcome,
        session,
        body.cancel_on_disconnect,
    ))
}

const NOT_FOUND_IN_A_BRANCH: &str = "There is no session with that id, no message `message_id` \
    in it, or one of `assistant_ids` is not the caller's assistant.";
