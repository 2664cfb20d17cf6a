//! colloquy's use cases.
//!
//! [`ChatService`] is the one entry point the HTTP shell and the CLI call:
//! sessions, sending a message and driving its reply to the end, the live
//! event stream of a session, cancelling, and a clean shutdown. It talks to the
//! world only through the ports ([`colloquy_ports::ChatRepository`],
//! [`colloquy_ports::LlmClient`], [`colloquy_ports::EventLog`]), so every rule
//! here is tested against mocks (and the in-process event log).
//!
//! Around a reply: the prompt fits a token budget (`prompt`, `tokens`), the
//! model may call [`tools`], an untitled session is named after its first
//! reply (`titles`), and a session can be summarised (`summary`); titles and
//! summaries are JSON-schema structured outputs (`structured`).
//!
//! **Invariant:** a reply runs in a task of its own, never tied to the HTTP
//! request that asked for it; the request only watches its events.

mod archive;
mod ask;
mod assistants;
mod branches;
mod completions;
mod config;
mod error;
mod history;
mod prompt;
mod reply;
mod retry;
mod service;
mod streams;
mod structured;
mod summary;
mod sweep;
mod telemetry;
mod titles;
mod tokens;
pub mod tools;
mod turn;
mod upstream;
mod usage;

pub use archive::{
    Exported, ImportedConversation, ImportedMessage, MAX_IMPORTED_CHARS, MAX_IMPORTED_MESSAGES,
    MAX_QUERY_CHARS, MAX_QUERY_TERMS,
};
pub use ask::ask;
pub use assistants::{AssistantPatch, NewAssistant};
pub use colloquy_ports::{EventKind, Resync, ResyncReason, SessionEvent};
pub use completions::{CompletionMessage, CompletionRequest, CompletionStarted, Recorded};
pub use config::{ChatConfig, LlmPolicy, ModelAllowlist, DEFAULT_SYSTEM_PROMPT};
pub use error::ChatError;
pub use reply::MAX_TOOL_ROUNDS;
pub use service::{Account, ChatService, Dependencies, NewSession, Readiness, SessionPatch};
pub use streams::{ReplyEvents, Subscription};
pub use summary::{MessageCounts, SessionSummary};
pub use sweep::{ReplySweeper, SweepReport};
pub use tools::{Tool, ToolError, ToolRegistry, UnknownTools};
pub use turn::{CancelOnDrop, SendOutcome, MAX_ASSISTANTS_PER_TURN};
