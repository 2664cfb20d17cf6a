//! The ports of colloquy's hexagon: what the core needs from the world.
//!
//! Each trait here has (or will have) more than one implementation, and the
//! core is tested against mocks of them: enable the `mock` feature (only in
//! `[dev-dependencies]`) to get `MockChatRepository` and `MockLlmClient`.
//!
//! **Invariant:** this crate knows nothing of actix, diesel, reqwest or tokio.
//! Adapters translate their own errors into the enums defined here.

mod llm;
mod repository;

pub use llm::{
    ChatChunk, ChatRequest, ChatStream, Completion, LlmClient, LlmError, PromptMessage, PromptRole,
    ResponseFormat, ToolCallDelta, ToolCallRequest, ToolSpec,
};
pub use repository::{ChatRepository, Page, RepoError};

#[cfg(feature = "mock")]
pub use llm::MockLlmClient;
#[cfg(feature = "mock")]
pub use repository::MockChatRepository;
