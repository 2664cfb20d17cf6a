//! A session's events as Server-Sent Events.

use std::sync::Arc;
use std::time::Duration;

use actix_web::Responder;
use actix_web_lab::sse::{Data, Event, Sse};
use colloquy_app::{EventKind, SessionEvent};
use futures::{Stream, StreamExt};
use serde::Serialize;
use utoipa::ToSchema;

use crate::telemetry;
use crate::wire::{MessageBody, SessionBody, ToolCallBody};

/// The events of the contract: name, the schema of its `data`, and when it comes.
pub(crate) const EVENTS: [(&str, &str, &str); 8] = [
    (
        "message.created",
        "Message",
        "the user message (none in a discussion), then each assistant message of the turn (status `streaming`), in the order they answer",
    ),
    (
        "message.delta",
        "MessageDelta",
        "the next piece of the reply's text",
    ),
    (
        "message.tool_call",
        "MessageToolCall",
        "a tool the reply called, with its result",
    ),
    (
        "message.reset",
        "MessageReset",
        "the upstream failed mid-reply and is asked again: discard this message's text so far",
    ),
    (
        "message.completed",
        "Message",
        "the final assistant message (status `complete` or `cancelled`)",
    ),
    (
        "message.failed",
        "Message",
        "the final assistant message (status `failed` or `interrupted`, with `error`)",
    ),
    (
        "session.updated",
        "Session",
        "the session's title or settings changed",
    ),
    (
        "stream.resync",
        "StreamResync",
        "events this client asked for are no longer kept: reload the history, then carry on with what follows",
    ),
];

pub(crate) const SEND_STREAM_DESCRIPTION: &str = "With `Accept: text/event-stream`: this turn's events as \
    Server-Sent Events (`id:`, `event:`, JSON `data:`), ending after its last reply's `message.completed` or \
    `message.failed` (a turn has one reply per assistant that answers). The events and their data are \
    listed under the `ServerSentEvent` schema.";

pub(crate) const EVENTS_STREAM_DESCRIPTION: &str = "The session's events as Server-Sent Events (`id:`, `event:`, \
    JSON `data:`), with a `: keep-alive` comment at least every 15 s. The events and their data are listed \
    under the `ServerSentEvent` schema.";

pub(crate) const SEND_STREAM_EXAMPLE: &str = "id: 1763893530000001\nevent: message.created\ndata: {\"id\":\"…\",\"role\":\"user\",…}\n\n\
    id: 1763893530000002\nevent: message.created\ndata: {\"id\":\"…\",\"role\":\"assistant\",\"status\":\"streaming\",…}\n\n\
    id: 1763893530000003\nevent: message.delta\ndata: {\"message_id\":\"…\",\"delta\":\"Hello\"}\n\n\
    id: 1763893530000004\nevent: message.completed\ndata: {\"id\":\"…\",\"status\":\"complete\",…}\n\n";

/// A comment goes out this often while nothing else does, so proxies and
/// browsers keep an idle stream open (the contract asks for at most 15 s).
const KEEP_ALIVE: Duration = Duration::from_secs(10);

/// The data of `message.delta`: the next piece of a reply's text.
#[derive(Serialize, ToSchema)]
#[schema(as = MessageDelta)]
pub(crate) struct DeltaBody<'a> {
    #[schema(format = "uuid")]
    message_id: String,
    #[schema(example = "Hello")]
    delta: &'a str,
}

/// The data of `message.tool_call`: a tool the reply called, with its result.
#[derive(Serialize, ToSchema)]
#[schema(as = MessageToolCall)]
pub(crate) struct ToolCallEventBody {
    #[schema(format = "uuid")]
    message_id: String,
    tool_call: ToolCallBody,
}

/// The data of `stream.resync`: events this client asked for are no longer
/// kept; reload the history, then carry on with what follows.
#[derive(Serialize, ToSchema)]
#[schema(as = StreamResync)]
pub(crate) struct ResyncBody {
    /// `not_kept` (the id resumed from is older than what is kept, or from
    /// before a restart), `fell_behind` (the client read more slowly than
    /// the log keeps), or `unknown_event_id`.
    #[schema(example = "not_kept")]
    reason: &'static str,
    /// The oldest event id still kept for the session.
    #[schema(example = 1_763_893_530_000_001_u64)]
    oldest_event_id: u64,
}

/// The data of `message.reset`: discard this message's text so far.
#[derive(Serialize, ToSchema)]
#[schema(as = MessageReset)]
pub(crate) struct ResetBody {
    #[schema(format = "uuid")]
    message_id: String,
}

/// The JSON `data` of an event: the SSE `data:` line's text, and the
/// WebSocket frame's `data` (`websocket/frames.rs`), so both carry the same.
pub(crate) fn data_json(kind: &EventKind) -> String {
    let json = match kind {
        EventKind::MessageCreated(message)
        | EventKind::MessageCompleted(message)
        | EventKind::MessageFailed(message) => serde_json::to_string(&MessageBody::from(message)),
        EventKind::MessageDelta { message_id, delta } => serde_json::to_string(&DeltaBody {
            message_id: message_id.to_string(),
            delta,
        }),
        EventKind::MessageToolCall {
            message_id,
            tool_call,
        } => serde_json::to_string(&ToolCallEventBody {
            message_id: message_id.to_string(),
            tool_call: ToolCallBody::from(tool_call),
        }),
        EventKind::SessionUpdated(session) => serde_json::to_string(&SessionBody::from(session)),
        EventKind::MessageReset { message_id } => serde_json::to_string(&ResetBody {
            message_id: message_id.to_string(),
        }),
        EventKind::StreamResync(resync) => serde_json::to_string(&ResyncBody {
            reason: resync.reason.as_str(),
            oldest_event_id: resync.oldest_event_id,
        }),
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
    // The guard lives as long as the stream, which actix drops when the
    // client goes away or the stream ends.
    let open = telemetry::StreamOpen::new();
    let frames = events.map(move |event| {
        let _ = &open;
        to_sse(&event)
    });
    Sse::from_infallible_stream(frames)
        .with_keep_alive(KEEP_ALIVE)
        .customize()
        // Tell nginx and friends not to buffer the stream.
        .insert_header(("X-Accel-Buffering", "no"))
}
