use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, Responder};
use colloquy_app::{ChatService, SendOutcome};
use colloquy_domain::SessionId;
use futures::StreamExt;

use super::sessions::session_id;
use crate::body::{parse_limit, query, JsonBody};
use crate::caller::{stream_caller, Tokens};
use crate::wire::{
    assistant_ids, message_id, rfc3339, CancelBody, EventsQuery, ListedMessageBody,
    MessagePageQuery, PageBody, RepliesRequest, SendAccepted, SendMessageRequest, StreamTokenBody,
};
use crate::{sse, ApiError, Caller};

fn wants_event_stream(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("text/event-stream"))
}

/// Send a message and start its replies.
///
/// Stores the user message and an assistant message with status `streaming`
/// per assistant that answers (the session's voice, or each of
/// `assistant_ids` in order), then generates the replies one after the
/// other in a task of its own: a client that goes away does not stop them
/// unless it asked for `cancel_on_disconnect`. One turn at a time per
/// session.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{session_id}/messages",
    tag = "messages",
    operation_id = "send_message",
    params(("session_id" = String, Path, format = "uuid", description = "The session's id.")),
    request_body(content = SendMessageRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "The replies are being generated; watch `events_url`.", body = SendAccepted,
            headers(("Location" = String, description = "The session's history."))),
        (status = 200, description = sse::SEND_STREAM_DESCRIPTION,
            content_type = "text/event-stream", body = ref("#/components/schemas/ServerSentEvent"), example = json!(sse::SEND_STREAM_EXAMPLE)),
        (status = 404, description = NOT_FOUND_IN_A_TURN, body = ApiError,
            content_type = "application/problem+json"),
        (status = 409, description = "A turn already runs in this session.", body = ApiError,
            content_type = "application/problem+json"),
    )
)]
pub async fn send(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    JsonBody(body): JsonBody<SendMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let assistants = body
        .assistant_ids
        .as_deref()
        .map(assistant_ids)
        .transpose()?;
    let Some(content) = body.content.or(body.message) else {
        return Err(ApiError::invalid("missing field `content`"));
    };
    let outcome = service
        .send_message_to(&caller.0, id, content, assistants)
        .await?;
    Ok(answer_turn(
        &request,
        outcome,
        id,
        body.cancel_on_disconnect,
    ))
}

/// Let assistants speak next, with no new user message: a discussion.
///
/// Each of `assistant_ids` answers in order, seeing the conversation so far
/// (this turn's earlier answers included). Answered as a send is: the
/// turn's event stream with `Accept: text/event-stream`, else `202` with
/// `user_message: null`.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{session_id}/replies",
    tag = "messages",
    operation_id = "start_replies",
    params(("session_id" = String, Path, format = "uuid", description = "The session's id.")),
    request_body(content = RepliesRequest, content_type = "application/json"),
    responses(
        (status = 202, description = "The replies are being generated; watch `events_url`.", body = SendAccepted,
            headers(("Location" = String, description = "The session's history."))),
        (status = 200, description = sse::SEND_STREAM_DESCRIPTION,
            content_type = "text/event-stream", body = ref("#/components/schemas/ServerSentEvent"), example = json!(sse::SEND_STREAM_EXAMPLE)),
        (status = 404, description = NOT_FOUND_IN_A_TURN, body = ApiError,
            content_type = "application/problem+json"),
        (status = 409, description = "A turn already runs in this session.", body = ApiError,
            content_type = "application/problem+json"),
    )
)]
pub async fn replies(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
    JsonBody(body): JsonBody<RepliesRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let assistants = assistant_ids(&body.assistant_ids)?;
    let outcome = service.start_replies(&caller.0, id, assistants).await?;
    Ok(answer_turn(
        &request,
        outcome,
        id,
        body.cancel_on_disconnect,
    ))
}

const NOT_FOUND_IN_A_TURN: &str =
    "There is no session with that id, or one of `assistant_ids` is not the caller's assistant.";

/// The answer to a request that started a turn (a send, a discussion, a
/// regenerated reply, an edited question): its events, or a `202`.
pub(super) fn answer_turn(
    request: &HttpRequest,
    outcome: SendOutcome,
    session: SessionId,
    cancel_on_disconnect: bool,
) -> HttpResponse {
    if wants_event_stream(request) {
        return turn_stream(outcome, cancel_on_disconnect)
            .respond_to(request)
            .map_into_boxed_body();
    }
    // `cancel_on_disconnect` ties a turn to a connection that streams it; a
    // `202` has none (its client watches `events_url`), so it does not apply.
    HttpResponse::Accepted()
        .insert_header((
            header::LOCATION,
            format!("/api/v1/sessions/{session}/messages"),
        ))
        .json(SendAccepted::new(&outcome, session))
}

/// This turn's events, ending after its last reply's final one.
fn turn_stream(outcome: SendOutcome, cancel_on_disconnect: bool) -> impl Responder {
    // Dropping the stream (the client went away) drops the guard, which
    // cancels the turn if it is still running.
    let guard = cancel_on_disconnect.then(|| outcome.cancel_on_drop());
    let events = outcome.events.into_stream().map(move |event| {
        let _ = &guard;
        event
    });
    sse::respond(events)
}

/// A session's history: one branch, oldest first.
///
/// The active branch (ending at the session's `head_message_id`), or with
/// `leaf` the branch ending at that message. Each message carries its
/// `siblings`: the messages sharing its parent (other replies to the same
/// question, other versions of the same question), so a client can show
/// "2 / 3" and switch with `PATCH …/sessions/{id}` `{"head_message_id"}`.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{session_id}/messages",
    tag = "messages",
    operation_id = "list_messages",
    params(("session_id" = String, Path, format = "uuid", description = "The session's id."), MessagePageQuery),
    responses(
        (status = 200, description = "A page of the branch's messages.", body = PageBody<ListedMessageBody>),
        (status = 404, description = "There is no session with that id, or `leaf` is not one of its messages.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn list(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let query: MessagePageQuery = query(&request)?;
    let limit = parse_limit(query.limit.as_deref(), 1000, 1000)?;
    let leaf = query
        .leaf
        .as_deref()
        .map(|raw| message_id(raw, "leaf"))
        .transpose()?;
    let after = query
        .after
        .as_deref()
        .map(|raw| message_id(raw, "after"))
        .transpose()?;
    let page = service.history(&caller.0, id, leaf, limit, after).await?;
    Ok(HttpResponse::Ok().json(PageBody {
        data: page.items.iter().map(ListedMessageBody::from).collect(),
        has_more: page.has_more,
    }))
}

/// The `Last-Event-ID` header wins over `?last_event_id=` when it holds an
/// id; each, when given, must be an event id (empty means none).
pub(super) fn last_event_id(request: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let parse = |raw: &str| match raw.trim() {
        "" => Ok(None),
        raw => raw.parse::<u64>().map(Some).map_err(|_| {
            ApiError::bad_request(format!("`{raw}` is not an event id of this service"))
        }),
    };
    // Both are checked, so a malformed parameter is never silently ignored.
    let from_query = query::<EventsQuery>(request)?
        .last_event_id
        .as_deref()
        .map(parse)
        .transpose()?
        .flatten();
    let from_header = request
        .headers()
        .get("Last-Event-ID")
        .map(|value| parse(value.to_str().unwrap_or("\u{0}")))
        .transpose()?
        .flatten();
    Ok(from_header.or(from_query))
}

/// Follow a session's live events (Server-Sent Events, for `EventSource`).
///
/// Every client connected to a session receives the same events. A client
/// that connects while a reply streams first receives that reply's events
/// from its start; one that reconnects with `Last-Event-ID` (or
/// `?last_event_id=`) receives every event after that id exactly once, then
/// live ones. The stream stays open until the session is deleted or the
/// server stops.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{session_id}/events",
    tag = "messages",
    operation_id = "session_events",
    params(
        ("session_id" = String, Path, format = "uuid", description = "The session's id."),
        ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{0,19}$",
            description = "The id of the last event this client saw; wins over `last_event_id`; empty means from now."),
        EventsQuery,
    ),
    responses((status = 200, description = sse::EVENTS_STREAM_DESCRIPTION,
        content_type = "text/event-stream", body = ref("#/components/schemas/ServerSentEvent"), example = json!(sse::SEND_STREAM_EXAMPLE)))
)]
pub async fn events(
    service: web::Data<ChatService>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let token = query::<EventsQuery>(&request)?.token;
    let caller = stream_caller(&request, id, token.as_deref()).await?;
    let after = last_event_id(&request)?;
    let subscription = service.subscribe(&caller.0, id, after).await?;
    Ok(sse::respond(subscription.into_stream())
        .respond_to(&request)
        .map_into_boxed_body())
}

/// Stop the reply in progress, if any; it keeps the text so far.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{session_id}/cancel",
    tag = "messages",
    operation_id = "cancel_reply",
    params(("session_id" = String, Path, format = "uuid", description = "The session's id.")),
    responses((status = 200, description = "Whether a reply was running.", body = CancelBody))
)]
pub async fn cancel(
    service: web::Data<ChatService>,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let cancelled = service.cancel_reply(&caller.0, session_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(CancelBody { cancelled }))
}

/// A token that opens this session's event stream or WebSocket, for browsers.
///
/// `EventSource` and `WebSocket` cannot send `Authorization`: a page asks for
/// a stream token with its credentials, then opens `…/events?token=` or
/// `…/ws?token=`. The token is good for
/// this session and this principal only, for `COLLOQUY_STREAM_TOKEN_SECS`; a
/// stream already open stays open after it expires.
#[utoipa::path(
    post,
    path = "/api/v1/sessions/{session_id}/stream-token",
    tag = "messages",
    operation_id = "create_stream_token",
    params(("session_id" = String, Path, format = "uuid", description = "The session's id.")),
    responses((status = 200, description = "The token and when it expires.", body = StreamTokenBody))
)]
pub async fn stream_token(
    service: web::Data<ChatService>,
    tokens: Tokens,
    caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    // Only the owner gets one: another's session is a 404 like any other.
    service.get_session(&caller.0, id).await?;
    let (token, expires_at) = tokens.issue(&caller.0, id)?;
    Ok(HttpResponse::Ok().json(StreamTokenBody {
        token,
        expires_at: rfc3339(expires_at),
    }))
}
