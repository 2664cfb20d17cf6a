use actix_web::{web, HttpRequest, HttpResponse};
use colloquy_app::ChatService;

use super::messages::last_event_id;
use super::sessions::session_id;
use crate::body::query;
use crate::caller::stream_caller;
use crate::websocket::{Connection, Opened};
use crate::wire::EventsQuery;
use crate::ApiError;

pub(crate) const WEBSOCKET_DESCRIPTION: &str = "Switching to the WebSocket protocol. The server \
    sends the session's events as `GET …/events` does, one JSON text frame each: `{\"id\", \"event\", \
    \"data\"}` (`id` and `event` as the SSE `id:` and `event:`, `data` the JSON of `data:`). The client \
    may send `{\"type\": \"send\", \"content\", \"assistant_ids\"?}`, `{\"type\": \"cancel\"}` (answered \
    with `{\"event\": \"cancelled\", \"data\": {\"cancelled\": bool}}`) and `{\"type\": \"ping\"}` \
    (answered with `{\"event\": \"pong\"}`). A request that fails is answered with `{\"event\": \
    \"error\", \"data\": Problem}` and the socket stays open. The server pings every \
    `COLLOQUY_WS_PING_SECS` (15 s) and closes a socket it has heard nothing from for two of them.";

/// Follow a session's events over a WebSocket, and send and cancel on it.
///
/// The same events as `GET …/events`, with the same ids, one JSON text
/// frame each; `?last_event_id=` resumes as `Last-Event-ID` does. Browsers
/// authenticate with `?token=` (a stream token), as they cannot set headers
/// on a WebSocket. The session must be the caller's, and the socket holds
/// one of its open-stream places while it is open; both are checked before
/// the upgrade, so a refusal is an ordinary problem+json answer.
#[utoipa::path(
    get,
    path = "/api/v1/sessions/{session_id}/ws",
    tag = "messages",
    operation_id = "session_websocket",
    params(
        ("session_id" = String, Path, format = "uuid", description = "The session's id."),
        ("Last-Event-ID" = Option<String>, Header, pattern = "^[0-9]{0,19}$",
            description = "For clients that can set headers: the id of the last event seen; wins over `last_event_id`."),
        EventsQuery,
    ),
    responses(
        (status = 101, description = WEBSOCKET_DESCRIPTION),
        (status = 400, description = "A malformed id or query, or a request that is not a WebSocket upgrade.",
            body = ApiError, content_type = "application/problem+json"),
    )
)]
pub async fn open(
    service: web::Data<ChatService>,
    request: HttpRequest,
    path: web::Path<String>,
    body: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let token = query::<EventsQuery>(&request)?.token;
    let caller = stream_caller(&request, id, token.as_deref()).await?;
    let after = last_event_id(&request)?;
    let events = service.subscribe(&caller.0, id, after).await?;
    let (response, socket, frames) = actix_ws::handle(&request, body).map_err(|error| {
        ApiError::bad_request(format!("this route takes a WebSocket upgrade: {error}"))
    })?;
    let opened = Opened::new(
        &request,
        service.get_ref().clone(),
        caller,
        id,
        token.as_deref(),
        events,
    );
    // The socket is a task of the worker that upgraded it; it ends when the
    // client goes, stops answering, or the session's events end.
    actix_web::rt::spawn(Connection::new(opened, socket).serve(frames));
    Ok(response)
}
