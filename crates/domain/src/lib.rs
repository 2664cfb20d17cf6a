//! colloquy's domain: the words the rest of the code speaks.
//!
//! Everything here is plain data plus the rules that make it valid. Values that
//! come from outside (a message's text, a title, a model name) can only be
//! built through their `parse` functions, so a value of one of these types is
//! valid by construction and no other layer re-checks it.
//!
//! **Invariant:** this crate depends on nothing but `std`, `uuid` and `sha2`
//! (the conversation chain's hash): no I/O, no async runtime, no serde, no
//! framework.

mod assistant;
mod chain;
mod ids;
mod message;
mod principal;
mod session;
mod time;
mod values;

pub use assistant::{Assistant, AssistantName, Instructions, Speaker};
pub use chain::ConversationChain;
pub use ids::{ApiKeyId, AssistantId, MessageId, ParseIdError, SessionId};
pub use message::{ErrorCode, Message, MessageError, MessageStatus, Role, ToolCall, Usage};
pub use principal::Principal;
pub use session::Session;
pub use time::{Timestamp, UtcDay};
pub use values::{MessageContent, ModelName, SystemPrompt, Title, ValidationError};
