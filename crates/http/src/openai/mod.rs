//! The OpenAI-compatible routes: `POST /v1/chat/completions` (streamed or
//! not) and `GET /v1/models`, so any OpenAI SDK or tool can use colloquy as
//! its base URL — and every exchange is recorded as a session of the
//! caller's ([`ChatService::complete`] decides which).
//!
//! The reply is a turn like any send's: it runs in a task of its own,
//! stored as it streams and fanned out to the session's watchers; a client
//! that goes away leaves it running. This module only reads the request as
//! OpenAI defines it (`request`), relays the turn's events as OpenAI's
//! chunks (`relay`) or waits for its end (`shapes::Completion`), and
//! renders errors as OpenAI does (`errors`).

mod errors;
mod relay;
mod request;
mod shapes;

use std::collections::VecDeque;
use std::sync::LazyLock;

use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::from_fn;
use actix_web::web;
use actix_web::{HttpRequest, HttpResponse, Responder};
use actix_web_lab::sse::{Data, Event, Sse};
use colloquy_app::{ChatService, CompletionStarted, EventKind, ReplyEvents};
use colloquy_domain::{Message, SessionId, Timestamp};
use futures::StreamExt;

use crate::body::{with_body_limit, JsonBytes};
use crate::{ApiError, Caller, MAX_IMPORT_BYTES};
use errors::OpenAiError;
use relay::{Line, Relay};
use shapes::{Completion, Header, ModelList, ModelOut};

/// The header that names (in a request) and tells (in every answer) the
/// session an exchange is recorded in.
pub(crate) const SESSION_HEADER: &str = "X-Colloquy-Session";

/// Registers `/v1/…`. A conversation is resent whole every turn, so its
/// body may be as large as an import.
pub(crate) fn register(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/v1")
            .wrap(from_fn(errors::in_openai_shape))
            .service(with_body_limit(
                web::resource("/chat/completions").route(web::post().to(chat_completions)),
                MAX_IMPORT_BYTES,
            ))
            .service(web::resource("/models").route(web::get().to(list_models)))
            .service(web::resource("/models/{model}").route(web::get().to(get_model)))
            .default_service(web::to(not_found)),
    );
}

async fn not_found() -> Result<HttpResponse, ApiError> {
    Err(ApiError::from_status(
        actix_web::http::StatusCode::NOT_FOUND,
    ))
}

/// `POST /v1/chat/completions`.
async fn chat_completions(
    service: web::Data<ChatService>,
    caller: Caller,
    request: HttpRequest,
    JsonBytes(bytes): JsonBytes,
) -> Result<HttpResponse, OpenAiError> {
    let named = named_session(&request)?;
    let read = request::parse(&bytes)?.read(named)?;
    let (stream, include_usage) = (read.stream, read.include_usage);
    let started = service
        .complete(&caller.0, read.completion)
        .await
        .map_err(|error| OpenAiError::from(ApiError::from(error)))?;
    if stream {
        streamed(&request, started, include_usage).await
    } else {
        whole(started).await
    }
}

/// The session `X-Colloquy-Session` names, if it is there.
fn named_session(request: &HttpRequest) -> Result<Option<SessionId>, OpenAiError> {
    let Some(value) = request.headers().get(SESSION_HEADER) else {
        return Ok(None);
    };
    let raw = value.to_str().unwrap_or_default().trim();
    raw.parse().map(Some).map_err(|_| {
        OpenAiError::invalid(
            format!("`{SESSION_HEADER}` is not a session id: `{raw}`"),
            None,
        )
    })
}

/// The answer's headers: where the exchange is recorded, and how.
fn recorded(started: &CompletionStarted) -> [(HeaderName, HeaderValue); 3] {
    let value = |text: &str| HeaderValue::from_str(text).unwrap_or(HeaderValue::from_static(""));
    let reply = started.outcome.assistant_message().id;
    [
        (
            HeaderName::from_static("x-colloquy-session"),
            value(&started.session_id.to_string()),
        ),
        (
            HeaderName::from_static("x-colloquy-recorded"),
            value(started.recorded.as_str()),
        ),
        (
            HeaderName::from_static("x-colloquy-message"),
            value(&reply.to_string()),
        ),
    ]
}

fn header_of(started: &CompletionStarted) -> Header {
    let reply = started.outcome.assistant_message();
    Header::new(
        reply.id,
        unix_seconds(reply.created_at),
        started.model.as_str().to_owned(),
    )
}

/// A `chat.completion`, once the reply has ended.
async fn whole(started: CompletionStarted) -> Result<HttpResponse, OpenAiError> {
    let header = header_of(&started);
    let reply_id = started.outcome.assistant_message().id;
    let recorded_in = recorded(&started);
    let mut response = HttpResponse::Ok();
    for pair in recorded_in.clone() {
        response.insert_header(pair);
    }
    let mut events = started.outcome.events;
    let reply = loop {
        let Some(event) = events.next().await else {
            return Err(OpenAiError::stream_lost().recorded_in(recorded_in));
        };
        match &event.kind {
            EventKind::MessageCompleted(message) | EventKind::MessageFailed(message)
                if message.id == reply_id =>
            {
                break message.clone();
            }
            _ => {}
        }
    };
    if reply.error.is_some() {
        return Err(OpenAiError::reply_failed(reply.error.as_ref()).recorded_in(recorded_in));
    }
    Ok(response.json(Completion::of(&header, &reply)))
}

/// The reply's chunks as Server-Sent Events. Nothing is answered before
/// the reply's first token, so a reply that fails before it is an HTTP
/// error an SDK can retry; after it, a failure is an error line.
async fn streamed(
    request: &HttpRequest,
    started: CompletionStarted,
    include_usage: bool,
) -> Result<HttpResponse, OpenAiError> {
    let reply_id = started.outcome.assistant_message().id;
    let mut relay = Relay::new(header_of(&started), reply_id, include_usage);
    let started_headers = recorded(&started);
    let mut events = started.outcome.events;
    let mut first: VecDeque<Line> = VecDeque::from([relay.opening()]);
    while !relay.sent_anything() && !relay.ended() {
        let Some(event) = events.next().await else {
            return Err(OpenAiError::stream_lost().recorded_in(started_headers));
        };
        if let EventKind::MessageFailed(message) = &event.kind {
            if message.id == reply_id && nothing_generated(message) {
                return Err(
                    OpenAiError::reply_failed(message.error.as_ref()).recorded_in(started_headers)
                );
            }
        }
        first.extend(relay.on(&event.kind));
    }
    let lines = chunk_stream(first, relay, events).map(|line| Event::from(Data::new(line)));
    let mut sse = Sse::from_infallible_stream(lines)
        .customize()
        // Tell nginx and friends not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
        .respond_to(request)
        .map_into_boxed_body();
    for (name, value) in started_headers {
        sse.headers_mut().insert(name, value);
    }
    Ok(sse)
}

fn nothing_generated(reply: &Message) -> bool {
    reply.content.is_empty() && reply.tool_calls.is_empty()
}

/// `first`, then the lines of the rest of the turn's events, ending after
/// the relay's last line.
fn chunk_stream(
    first: VecDeque<Line>,
    relay: Relay,
    events: ReplyEvents,
) -> impl futures::Stream<Item = Line> + 'static {
    futures::stream::unfold(
        (first, relay, events),
        |(mut pending, mut relay, mut events)| async move {
            loop {
                if let Some(line) = pending.pop_front() {
                    return Some((line, (pending, relay, events)));
                }
                if relay.ended() {
                    return None;
                }
                match events.next().await {
                    Some(event) => pending.extend(relay.on(&event.kind)),
                    None => pending.extend(relay.cut_short()),
                }
            }
        },
    )
}

fn unix_seconds(at: Timestamp) -> u64 {
    u64::try_from(at.as_micros() / 1_000_000).unwrap_or_default()
}

/// When this process started: the `created` of the models it lists.
static STARTED: LazyLock<u64> = LazyLock::new(|| unix_seconds(Timestamp::now()));

fn model_out(id: String) -> ModelOut {
    ModelOut {
        id,
        object: "model",
        created: *STARTED,
        owned_by: "colloquy",
    }
}

/// `GET /v1/models`: the models this server offers (`COLLOQUY_MODELS`).
async fn list_models(service: web::Data<ChatService>, _caller: Caller) -> HttpResponse {
    let data = service
        .models()
        .into_iter()
        .map(|model| model_out(model.as_str().to_owned()))
        .collect();
    HttpResponse::Ok().json(ModelList {
        object: "list",
        data,
    })
}

/// `GET /v1/models/{model}`.
async fn get_model(
    service: web::Data<ChatService>,
    _caller: Caller,
    path: web::Path<String>,
) -> Result<HttpResponse, OpenAiError> {
    let wanted = path.into_inner();
    let offered = service
        .models()
        .into_iter()
        .any(|model| model.as_str() == wanted);
    if offered {
        Ok(HttpResponse::Ok().json(model_out(wanted)))
    } else {
        Err(OpenAiError::from(ApiError::from(
            colloquy_app::ChatError::ModelNotAllowed(wanted),
        )))
    }
}
