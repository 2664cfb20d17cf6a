//! A session's events over a WebSocket, and the client's requests back.
//!
//! A socket is one task (`connection.rs`) that reads its own subscription to
//! the session's events, exactly as an SSE stream does, and the client's
//! frames (`frames.rs`). It never sits between the reply and anyone else:
//! the event log keeps one cursor per subscriber, so a socket whose client
//! stops reading only falls behind (and is told `stream.resync` when it falls
//! further behind than the log keeps), while its own writes wait on a short
//! bounded queue and the connection's write buffer.

mod connection;
mod frames;

use std::time::Duration;

use actix_web::HttpRequest;
use colloquy_app::{ChatService, Subscription};

use crate::caller::{allowance_of, Caller, Credentials};
use crate::MAX_BODY_BYTES;

pub(crate) use connection::Connection;

/// How a server keeps its WebSockets alive and finds the dead ones.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WebSocketSettings {
    /// The server pings every socket this often (`COLLOQUY_WS_PING_SECS`).
    pub ping_interval: Duration,
}

impl WebSocketSettings {
    /// A socket whose client sent nothing (not even a pong) for this long is
    /// closed: two pings went unanswered.
    #[must_use]
    pub fn silence_timeout(&self) -> Duration {
        self.ping_interval.saturating_mul(2)
    }
}

impl Default for WebSocketSettings {
    /// A ping every 15 s, as the contract says.
    fn default() -> Self {
        Self {
            ping_interval: Duration::from_secs(15),
        }
    }
}

/// The largest message (one frame, or several) a client may send: room for
/// the longest content a send may have however it is escaped (JSON's
/// `\ud83d\ude00` spends 12 bytes on one character) and 4 KiB for the rest
/// of the request, but never more than a request body may be. So every
/// `send` the HTTP route would take fits, and a socket holds no more of a
/// client's input than the route would (379 KiB with the default 32000
/// characters).
pub(crate) fn max_frame_bytes(max_message_chars: usize) -> usize {
    max_message_chars
        .saturating_mul(12)
        .saturating_add(4096)
        .min(MAX_BODY_BYTES)
}

/// Everything a socket needs, taken from its upgrade request: the request
/// itself is not kept, it belongs to the worker that answered it.
#[derive(Debug)]
pub(crate) struct Opened {
    pub(crate) service: ChatService,
    pub(crate) caller: Caller,
    pub(crate) session: colloquy_domain::SessionId,
    /// Whose requests-per-minute allowance the socket's requests count against.
    pub(crate) allowance: String,
    /// The bearer credential it was opened with, checked before each request.
    pub(crate) credentials: Option<Credentials>,
    pub(crate) settings: WebSocketSettings,
    /// The largest message the client may send, in bytes.
    pub(crate) max_frame_bytes: usize,
    pub(crate) events: Subscription,
}

impl Opened {
    pub(crate) fn new(
        request: &HttpRequest,
        service: ChatService,
        caller: Caller,
        session: colloquy_domain::SessionId,
        token: Option<&str>,
        events: Subscription,
    ) -> Self {
        let settings = request
            .app_data::<WebSocketSettings>()
            .copied()
            .unwrap_or_default();
        Self {
            allowance: allowance_of(request, &caller),
            credentials: Credentials::of(request, token),
            max_frame_bytes: max_frame_bytes(service.config().max_message_chars),
            service,
            caller,
            session,
            settings,
            events,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_largest_message_fits_the_longest_content_and_no_more_than_a_body() {
        assert_eq!(max_frame_bytes(32_000), 388_096);
        assert_eq!(max_frame_bytes(20), 4336);
        assert_eq!(max_frame_bytes(1_000_000), MAX_BODY_BYTES);
        let longest = serde_json::json!({"type": "send", "content": "\u{1F600}".repeat(32_000)});
        let escaped = serde_json::to_string(&longest)
            .unwrap()
            .replace('\u{1F600}', "\\ud83d\\ude00");
        assert!(
            escaped.len() <= max_frame_bytes(32_000),
            "{}",
            escaped.len()
        );
    }
}
