//! What goes over a WebSocket: the client's requests in, the session's
//! events and the answers to requests out, each one JSON text frame.

use colloquy_ports::SessionEvent;
use serde::{Deserialize, Serialize};

use crate::body::parse_json;
use crate::{sse, ApiError};

/// A request the client sent, `{"type": …}`.
#[derive(Debug, PartialEq, Eq, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(crate) enum Request {
    /// Send a message, as `POST …/messages` does.
    Send {
        content: String,
        #[serde(default)]
        assistant_ids: Option<Vec<String>>,
    },
    /// Stop the reply in progress, as `POST …/cancel` does.
    Cancel,
    /// Answered with `{"event": "pong"}`: a client's own keep-alive.
    Ping,
}

impl Request {
    /// The request in a text frame; the problem the HTTP routes would give
    /// its body when it is not one: `400` for text that is not JSON, `422`
    /// for JSON that is not a request (an unknown `type`, a missing field).
    pub(crate) fn parse(text: &str) -> Result<Self, ApiError> {
        parse_json(text.as_bytes(), "the frame")
    }
}

/// One event of the session, `{"id", "event", "data"}`: the id as the SSE
/// `id:` line has it (decimal text), the SSE event name, and as `data` the
/// JSON of the SSE `data:` line.
pub(crate) fn event(event: &SessionEvent) -> String {
    // `data_json` is JSON already: it is spliced in, not parsed and written
    // again. The id is digits and the name a fixed ASCII word, so neither
    // needs escaping.
    format!(
        r#"{{"id":"{}","event":"{}","data":{}}}"#,
        event.id,
        event.kind.name(),
        sse::data_json(&event.kind)
    )
}

/// A request that failed: `data` is the problem+json body the HTTP route
/// would answer with, status included; `retry_after` is the `Retry-After`
/// it would carry.
pub(crate) fn error(problem: &ApiError) -> String {
    #[derive(Serialize)]
    struct ErrorFrame<'a> {
        event: &'static str,
        data: &'a ApiError,
        #[serde(skip_serializing_if = "Option::is_none")]
        retry_after: Option<u64>,
    }
    serialize(&ErrorFrame {
        event: "error",
        data: problem,
        retry_after: problem.retry_after(),
    })
}

/// The answer to `{"type": "ping"}`.
pub(crate) fn pong() -> String {
    String::from(r#"{"event":"pong"}"#)
}

/// The answer to `{"type": "cancel"}`: whether a reply was running, as
/// `POST …/cancel` says.
pub(crate) fn cancelled(cancelled: bool) -> String {
    format!(r#"{{"event":"cancelled","data":{{"cancelled":{cancelled}}}}}"#)
}

fn serialize(frame: &impl Serialize) -> String {
    // A problem is strings and numbers: serializing it cannot fail.
    serde_json::to_string(frame).unwrap_or_else(|_| String::from(r#"{"event":"error"}"#))
}

#[cfg(test)]
mod tests {
    use actix_web::http::StatusCode;
    use colloquy_app::{EventKind, Resync, ResyncReason};
    use colloquy_domain::MessageId;
    use serde_json::{json, Value};

    use super::*;

    fn status_of(problem: &ApiError) -> u64 {
        serde_json::to_value(problem).unwrap()["status"]
            .as_u64()
            .unwrap()
    }

    #[test]
    fn requests_are_read_and_bad_ones_get_the_routes_statuses() {
        assert_eq!(
            Request::parse(r#"{"type":"send","content":"hi"}"#),
            Ok(Request::Send {
                content: "hi".into(),
                assistant_ids: None
            })
        );
        assert_eq!(
            Request::parse(r#"{"type":"send","content":"hi","assistant_ids":["a","b"]}"#),
            Ok(Request::Send {
                content: "hi".into(),
                assistant_ids: Some(vec!["a".into(), "b".into()])
            })
        );
        assert_eq!(Request::parse(r#"{"type":"cancel"}"#), Ok(Request::Cancel));
        assert_eq!(Request::parse(r#"{"type":"ping"}"#), Ok(Request::Ping));
        for (text, status) in [
            ("not json", 400),
            (r#"{"type":"send","content":"#, 400),
            (r#"{"type":"shout"}"#, 422),
            (r#"{"content":"no type"}"#, 422),
            (r#"{"type":"send"}"#, 422),
            (r#"{"type":"send","content":7}"#, 422),
            (r#"{"type":"send","content":"hi","assistant_ids":"a"}"#, 422),
            ("[]", 422),
        ] {
            let problem = Request::parse(text).unwrap_err();
            assert_eq!(status_of(&problem), status, "{text}");
        }
    }

    #[test]
    fn an_event_frame_carries_the_sse_id_name_and_data() {
        let message_id = MessageId::new();
        let delta = SessionEvent {
            id: 1_763_893_530_000_042,
            kind: EventKind::MessageDelta {
                message_id,
                delta: "a \"quoted\"\nline".into(),
            },
        };
        let frame: Value = serde_json::from_str(&event(&delta)).unwrap();
        assert_eq!(
            frame,
            json!({
                "id": "1763893530000042",
                "event": "message.delta",
                "data": {"message_id": message_id.to_string(), "delta": "a \"quoted\"\nline"},
            })
        );
        let resync = SessionEvent {
            id: 17,
            kind: EventKind::StreamResync(Resync {
                reason: ResyncReason::FellBehind,
                oldest_event_id: 20,
            }),
        };
        let frame: Value = serde_json::from_str(&event(&resync)).unwrap();
        assert_eq!(
            frame,
            json!({"id": "17", "event": "stream.resync",
                "data": {"reason": "fell_behind", "oldest_event_id": 20}})
        );
    }

    #[test]
    fn an_error_frame_is_the_problem_body_with_its_retry_after() {
        let frame: Value = serde_json::from_str(&error(&ApiError::invalid("too long"))).unwrap();
        assert_eq!(
            frame,
            json!({"event": "error", "data": {
                "type": "urn:colloquy:problem:validation",
                "title": "Invalid request",
                "status": 422,
                "detail": "too long",
            }})
        );
        let busy = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "x", "X", "busy");
        let frame: Value = serde_json::from_str(&error(&busy)).unwrap();
        assert_eq!(frame["retry_after"], 5);
        assert_eq!(frame["data"]["status"], 503);
        let answer: Value = serde_json::from_str(&cancelled(false)).unwrap();
        assert_eq!(
            answer,
            json!({"event": "cancelled", "data": {"cancelled": false}})
        );
        assert_eq!(
            serde_json::from_str::<Value>(&pong()).unwrap(),
            json!({"event": "pong"})
        );
    }
}
