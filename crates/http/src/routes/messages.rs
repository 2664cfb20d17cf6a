use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse, Responder};
use colloquy_app::{ChatService, SendOutcome};
use colloquy_domain::MessageId;
use futures::StreamExt;

use super::sessions::session_id;
use crate::body::{parse_id, parse_limit, query_pairs, query_value, JsonBody};
use crate::wire::{CancelBody, MessageBody, PageBody, SendAccepted, SendMessageRequest};
use crate::{sse, ApiError};

fn wants_event_stream(request: &HttpRequest) -> bool {
    request
        .headers()
        .get_all(header::ACCEPT)
        .filter_map(|value| value.to_str().ok())
        .any(|accept| accept.contains("text/event-stream"))
}

pub async fn send(
    service: web::Data<ChatService>,
    request: HttpRequest,
    path: web::Path<String>,
    JsonBody(body): JsonBody<SendMessageRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let Some(content) = body.content.or(body.message) else {
        return Err(ApiError::invalid("missing field `content`"));
    };
    let outcome = service.send_message(id, content).await?;
    if wants_event_stream(&request) {
        return Ok(reply_stream(outcome, body.cancel_on_disconnect).respond_to(&request).map_into_boxed_body());
    }
    // `cancel_on_disconnect` ties a reply to a connection that streams it; a
    // `202` has none (its client watches `events_url`), so it does not apply.
    Ok(HttpResponse::Accepted()
        .insert_header((header::LOCATION, format!("/api/v1/sessions/{id}/messages")))
        .json(SendAccepted {
            user_message: MessageBody::from(&outcome.user_message),
            assistant_message: MessageBody::from(&outcome.assistant_message),
            events_url: format!("/api/v1/sessions/{id}/events"),
        }))
}

/// This turn's events, ending after the reply's final one.
fn reply_stream(outcome: SendOutcome, cancel_on_disconnect: bool) -> impl Responder {
    // Dropping the stream (the client went away) drops the guard, which
    // cancels the reply if it is still running.
    let guard = cancel_on_disconnect.then(|| outcome.cancel_on_drop());
    let reply_id = outcome.assistant_message.id;
    let events = futures::stream::unfold(
        (outcome.events, guard, false),
        move |(mut events, guard, finished)| async move {
            if finished {
                return None;
            }
            let event = events.next().await?;
            let last = event.kind.finished_message().is_some_and(|message| message.id == reply_id);
            Some((event, (events, guard, last)))
        },
    )
    .boxed_local();
    sse::respond(events)
}

pub async fn list(
    service: web::Data<ChatService>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let query = query_pairs(&request)?;
    let limit = parse_limit(query_value(&query, "limit"), 1000, 1000)?;
    let after = query_value(&query, "after")
        .map(|raw| parse_id(raw, MessageId::parse, "after"))
        .transpose()?;
    let page = service.list_messages(id, limit, after).await?;
    Ok(HttpResponse::Ok().json(PageBody {
        data: page.items.iter().map(MessageBody::from).collect(),
        has_more: page.has_more,
    }))
}

/// The `Last-Event-ID` header wins over `?last_event_id=`; either must be an event id.
fn last_event_id(request: &HttpRequest) -> Result<Option<u64>, ApiError> {
    let from_header = request
        .headers()
        .get("Last-Event-ID")
        .map(|value| value.to_str().unwrap_or("\u{0}").to_owned());
    let raw = match from_header {
        Some(raw) => Some(raw),
        None => query_value(&query_pairs(request)?, "last_event_id").map(str::to_owned),
    };
    match raw.as_deref().map(str::trim) {
        None | Some("") => Ok(None),
        Some(raw) => raw
            .parse::<u64>()
            .map(Some)
            .map_err(|_| ApiError::bad_request(format!("`{raw}` is not an event id of this service"))),
    }
}

pub async fn events(
    service: web::Data<ChatService>,
    request: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = session_id(&path)?;
    let after = last_event_id(&request)?;
    let subscription = service.subscribe(id, after).await?;
    Ok(sse::respond(subscription.into_stream()).respond_to(&request).map_into_boxed_body())
}

pub async fn cancel(service: web::Data<ChatService>, path: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let cancelled = service.cancel_reply(session_id(&path)?).await?;
    Ok(HttpResponse::Ok().json(CancelBody { cancelled }))
}
