//! A session's events as Server-Sent Events.

use std::sync::Arc;
use std::time::Duration;

use actix_web::Responder;
use actix_web_lab::sse::{Data, Event, Sse};
use colloquy_app::{EventKind, SessionEvent};
use futures::{Stream, StreamExt};
use serde::Serialize;

use crate::wire::{MessageBody, SessionBody, ToolCallBody};

/// A comment goes out this often while nothing else does, so proxies and
/// browsers keep an idle stream open (the contract asks for at most 15 s).
const KEEP_ALIVE: Duration = Duration::from_secs(10);

#[derive(Serialize)]
struct DeltaBody<'a> {
    message_id: String,
    delta: &'a str,
}

#[derive(Serialize)]
struct ToolCallEventBody {
    message_id: String,
    tool_call: ToolCallBody,
}

#[derive(Serialize)]
struct ResetBody {
    message_id: String,
}

fn data_json(kind: &EventKind) -> String {
    let json = match kind {
        EventKind::MessageCreated(message) | EventKind::MessageCompleted(message) | EventKind::MessageFailed(message) => {
            serde_json::to_string(&MessageBody::from(message))
        }
        EventKind::MessageDelta { message_id, delta } => {
            serde_json::to_string(&DeltaBody { message_id: message_id.to_string(), delta })
        }
        EventKind::MessageToolCall { message_id, tool_call } => serde_json::to_string(&ToolCallEventBody {
            message_id: message_id.to_string(),
            tool_call: ToolCallBody::from(tool_call),
        }),
        EventKind::SessionUpdated(session) => serde_json::to_string(&SessionBody::from(session)),
        EventKind::MessageReset { message_id } => serde_json::to_string(&ResetBody { message_id: message_id.to_string() }),
    };
    // These bodies are plain strings and numbers: serializing cannot fail.
    json.unwrap_or_else(|error| format!(r#"{{"serialization_error":"{error}"}}"#))
}

fn to_sse(event: &SessionEvent) -> Event {
    Data::new(data_json(&event.kind))
        .event(event.kind.name())
        .id(event.id.to_string())
        .into()
}

/// The `text/event-stream` response for `events`.
pub fn respond(events: impl Stream<Item = Arc<SessionEvent>> + 'static) -> impl Responder {
    Sse::from_infallible_stream(events.map(|event| to_sse(&event)))
        .with_keep_alive(KEEP_ALIVE)
        .customize()
        // Tell nginx and friends not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
}
