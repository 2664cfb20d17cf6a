//! colloquy's use cases.
//!
//! [`ChatService`] is the one entry point the HTTP shell and the CLI call:
//! sessions, sending a message and driving its reply to the end, the live
//! event stream of a session, cancelling, and a clean shutdown. It talks to the
//! world only through the ports ([`colloquy_ports::ChatRepository`],
//! [`colloquy_ports::LlmClient`]), so every rule here is tested against mocks.
//!
//! **Invariant:** a reply runs in a task of its own, never tied to the HTTP
//! request that asked for it; the request only watches its events.

mod config;
mod error;
mod events;
mod prompt;
mod reply;
mod retry;
mod service;

pub use config::{ChatConfig, LlmPolicy};
pub use error::ChatError;
pub use events::{EventHub, EventKind, SessionEvent, Subscription};
pub use service::{CancelOnDrop, ChatService, NewSession, SendOutcome, SessionPatch};
