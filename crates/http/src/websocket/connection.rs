//! One open WebSocket: the session's events out, the client's requests in,
//! pings, and the close that ends it.

use actix_web::web::Bytes;
use actix_ws::{AggregatedMessage, CloseCode, CloseReason, Message, ProtocolError};
use colloquy_app::ChatError;
use futures::{SinkExt, StreamExt};
use tokio::time::{interval_at, sleep_until, timeout_at, Instant, MissedTickBehavior};

use super::frames::{self, Request};
use super::{Opened, WebSocketSettings};
use crate::wire::assistant_ids as assistant_ids_of;
use crate::{telemetry, ApiError};

/// Why a socket ends, and so the close frame it gets.
#[derive(Debug)]
enum End {
    /// The client sent a close frame: it gets its own back.
    ClientClosed(Option<CloseReason>),
    /// The connection is gone: nothing more can be written.
    Gone,
    /// Nothing came from the client (not even a pong) for the silence timeout.
    Silent,
    /// A message over the size limit; the rest of it cannot be read past.
    TooBig,
    /// Frames that are not the WebSocket protocol.
    Protocol(String),
    /// The session's events ended: it was deleted, or the server is stopping.
    EventsEnded,
}

/// A socket between its upgrade and its close.
pub(crate) struct Connection {
    opened: Opened,
    socket: actix_ws::Session,
    /// When the client must next have been heard from.
    deadline: Instant,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("session", &self.opened.session)
            .finish_non_exhaustive()
    }
}

impl Connection {
    pub(crate) fn new(opened: Opened, socket: actix_ws::Session) -> Self {
        let deadline = Instant::now() + opened.settings.silence_timeout();
        Self {
            opened,
            socket,
            deadline,
        }
    }

    /// Serves the socket until it ends, then closes it.
    pub(crate) async fn serve(mut self, incoming: actix_ws::MessageStream) {
        let _open = telemetry::StreamOpen::new();
        let limit = self.opened.max_frame_bytes;
        let mut incoming = incoming
            .max_frame_size(limit)
            .aggregate_continuations()
            .max_continuation_size(limit);
        let WebSocketSettings { ping_interval } = self.opened.settings;
        let mut pings = interval_at(Instant::now() + ping_interval, ping_interval);
        pings.set_missed_tick_behavior(MissedTickBehavior::Delay);
        let end = loop {
            let step = tokio::select! {
                event = self.opened.events.next() => match event {
                    Some(event) => self.write(frames::event(&event)).await,
                    None => Err(End::EventsEnded),
                },
                frame = incoming.next() => self.receive(frame).await,
                _ = pings.tick() => self.ping().await,
                () = sleep_until(self.deadline) => Err(End::Silent),
            };
            if let Err(end) = step {
                break end;
            }
        };
        self.close(end).await;
    }

    /// Writes one text frame.
    async fn write(&mut self, text: String) -> Result<(), End> {
        self.send(Message::Text(text.into())).await
    }

    async fn ping(&mut self) -> Result<(), End> {
        self.send(Message::Ping(Bytes::new())).await
    }

    /// Queues one frame for the connection. A client that reads nothing
    /// holds this up once the queue is full; it is given until its silence
    /// deadline, as it cannot be answering pings meanwhile either.
    async fn send(&mut self, message: Message) -> Result<(), End> {
        match timeout_at(self.deadline, self.socket.send(message)).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(_closed)) => Err(End::Gone),
            Err(_elapsed) => Err(End::Silent),
        }
    }

    /// Handles what the client sent. Any frame, a pong included, shows the
    /// client is there.
    async fn receive(
        &mut self,
        frame: Option<Result<AggregatedMessage, ProtocolError>>,
    ) -> Result<(), End> {
        let frame = match frame {
            None => return Err(End::Gone),
            Some(Err(error)) if is_too_big(&error) => {
                let problem = ApiError::frame_too_large(self.opened.max_frame_bytes);
                // Said before the close, for clients that show errors but
                // not close reasons; the close says it too.
                let _ = self.write(frames::error(&problem)).await;
                return Err(End::TooBig);
            }
            Some(Err(error)) => return Err(End::Protocol(error.to_string())),
            Some(Ok(frame)) => frame,
        };
        self.deadline = Instant::now() + self.opened.settings.silence_timeout();
        match frame {
            AggregatedMessage::Text(text) => self.request(&text).await,
            AggregatedMessage::Binary(_) => {
                let problem = ApiError::unsupported_media_type(
                    "the socket takes JSON text frames, not binary ones",
                );
                self.write(frames::error(&problem)).await
            }
            AggregatedMessage::Ping(payload) => self.send(Message::Pong(payload)).await,
            AggregatedMessage::Pong(_) => Ok(()),
            AggregatedMessage::Close(reason) => Err(End::ClientClosed(reason)),
        }
    }

    /// Carries out one request and writes its answer, if it has one: a
    /// send's answer is its events, which come as any subscriber's do.
    async fn request(&mut self, text: &str) -> Result<(), End> {
        match self.carry_out(Request::parse(text)).await {
            Ok(None) => Ok(()),
            Ok(Some(answer)) => self.write(answer).await,
            Err(problem) => self.write(frames::error(&problem)).await,
        }
    }

    async fn carry_out(
        &self,
        request: Result<Request, ApiError>,
    ) -> Result<Option<String>, ApiError> {
        let Opened {
            service,
            caller,
            session,
            allowance,
            credentials,
            ..
        } = &self.opened;
        // Each request is held to the caller's credentials and counts
        // against its requests per minute, as the HTTP request it stands for
        // would, malformed ones too; a client's own pings stand for none.
        if !matches!(request, Ok(Request::Ping)) {
            if let Some(credentials) = credentials {
                credentials.check(&caller.0).await?;
            }
            service.admit_request(allowance).await?;
        }
        match request? {
            Request::Send {
                content,
                assistant_ids,
            } => {
                let assistants = assistant_ids.as_deref().map(assistant_ids_of).transpose()?;
                // The turn's events reach this socket through its own
                // subscription, like every other client's: the send's own
                // stream of them is not needed.
                let _outcome = service
                    .send_message_to(&caller.0, *session, content, assistants)
                    .await?;
                Ok(None)
            }
            Request::Cancel => {
                let cancelled = service.cancel_reply(&caller.0, *session).await?;
                Ok(Some(frames::cancelled(cancelled)))
            }
            Request::Ping => Ok(Some(frames::pong())),
        }
    }

    /// Sends the close frame `end` calls for, when the connection can still
    /// take one; the connection closes once it is written.
    async fn close(self, end: End) {
        let reason = match end {
            End::Gone => return,
            End::ClientClosed(reason) => reason,
            End::Silent => Some(close_reason(
                CloseCode::Away,
                &format!(
                    "no answer to pings for {:.1} s",
                    self.opened.settings.silence_timeout().as_secs_f64()
                ),
            )),
            End::TooBig => Some(close_reason(
                CloseCode::Size,
                &format!(
                    "messages are limited to {} bytes",
                    self.opened.max_frame_bytes
                ),
            )),
            End::Protocol(error) => Some(close_reason(CloseCode::Protocol, &error)),
            End::EventsEnded => Some(self.why_events_ended().await),
        };
        // A client that reads nothing cannot take even the close frame: it
        // gets a moment, then the socket is let go of without one.
        let _ = timeout_at(Instant::now() + CLOSE_GRACE, self.socket.close(reason)).await;
    }

    /// The session's events end when it was deleted or the server stops.
    async fn why_events_ended(&self) -> CloseReason {
        let Opened {
            service,
            caller,
            session,
            ..
        } = &self.opened;
        if service.is_shutting_down() {
            return close_reason(CloseCode::Away, "the server is shutting down");
        }
        match service.get_session(&caller.0, *session).await {
            Err(ChatError::SessionNotFound) => {
                close_reason(CloseCode::Normal, "the session was deleted")
            }
            _ => close_reason(
                CloseCode::Away,
                "the session's events ended; reconnect with last_event_id to resume",
            ),
        }
    }
}

/// What actix-ws says of a message of several frames over the size limit,
/// as an I/O error of kind `Other` (it has no error of its own for it).
const CONTINUATIONS_TOO_BIG: &str = "Exceeded maximum continuation size";

/// Whether the client's message is over the size limit: one frame (the
/// codec's `Overflow`) or several continuation frames together.
fn is_too_big(error: &ProtocolError) -> bool {
    match error {
        ProtocolError::Overflow => true,
        ProtocolError::Io(io) => {
            io.kind() == std::io::ErrorKind::Other && io.to_string() == CONTINUATIONS_TOO_BIG
        }
        _ => false,
    }
}

/// How long a closing socket waits for its close frame to be taken.
const CLOSE_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

fn close_reason(code: CloseCode, description: &str) -> CloseReason {
    CloseReason {
        code,
        description: Some(description.to_owned()),
    }
}
