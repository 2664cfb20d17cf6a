//! The ports of colloquy's hexagon: what the core needs from the world.
//!
//! Each trait here has (or will have) more than one implementation, and the
//! core is tested against mocks of them (the event log against its in-process adapter): enable the `mock` feature (only in
//! `[dev-dependencies]`) to get `MockChatRepository` and `MockLlmClient`.
//!
//! **Invariant:** this crate knows nothing of actix, diesel, reqwest or tokio.
//! Adapters translate their own errors into the enums defined here.

mod auth;
mod events;
mod keys;
mod limits;
mod llm;
mod repository;
mod sweep;
mod usage;

pub use auth::{AuthError, Authenticator, StreamTokens};
pub use events::{
    EventKind, EventLog, EventLogError, EventStream, ReplyClaim, Resync, ResyncReason,
    SessionEvent, StartAt,
};
pub use keys::{ApiKeyRecord, ApiKeyStore};
pub use limits::{Held, Limit, LimitError, LimitReached, Limiter, Limits, Permit};
pub use llm::{
    ChatChunk, ChatRequest, ChatStream, Completion, LlmClient, LlmError, PromptMessage, PromptRole,
    ResponseFormat, ToolCallDelta, ToolCallRequest, ToolSpec,
};
pub use repository::{
    AssistantChanges, AssistantStore, BranchMessage, ChatRepository, Page, RepoError, SearchHit,
    SessionChanges, Siblings, StoredEnd,
};
pub use sweep::{ExpiredLeases, ExpiredReply, SweepClaim};
pub use usage::UsageLedger;

#[cfg(feature = "mock")]
pub use auth::MockAuthenticator;
#[cfg(feature = "mock")]
pub use auth::MockStreamTokens;
#[cfg(feature = "mock")]
pub use keys::MockApiKeyStore;
#[cfg(feature = "mock")]
pub use llm::MockLlmClient;
#[cfg(feature = "mock")]
pub use repository::{MockAssistantStore, MockChatRepository};
#[cfg(feature = "mock")]
pub use sweep::{MockExpiredLeases, MockSweepClaim};
#[cfg(feature = "mock")]
pub use usage::MockUsageLedger;
