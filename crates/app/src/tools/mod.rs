//! Tools the model may call while it writes a reply.
//!
//! A tool is a [`Tool`]: a name, a description, the JSON Schema of its
//! arguments, and a `call`. The built-ins live one per file next to this one;
//! adding a tool is adding a file and a line in [`ToolRegistry::builtin`].
//! Tools compute; they never run code the model wrote, touch the file system
//! or reach the network.

mod calculator;
mod current_time;
mod registry;
mod schema;

use std::fmt::Debug;

use async_trait::async_trait;
use serde_json::Value;

pub use calculator::Calculator;
pub use current_time::CurrentTime;
pub(crate) use registry::reply_to_model;
pub use registry::{ToolRegistry, UnknownTools, BUILTIN_TOOLS};

/// Why a tool call produced no result. The message goes back to the model
/// (as `{"error": "…"}`) and into the stored call, so it says precisely what
/// was wrong and, where it can, what would be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ToolError {
    /// The arguments do not fit the tool's schema or make no sense to it.
    #[error("invalid arguments: {0}")]
    InvalidArguments(String),
    /// The arguments were fine but the tool could not produce a result.
    #[error("{0}")]
    Failed(String),
}

/// A function the model may call.
#[async_trait]
pub trait Tool: Send + Sync + Debug {
    /// The name the model calls it by: letters, digits, `_` and `-`.
    fn name(&self) -> &str;

    /// What it does and when to use it, for the model.
    fn description(&self) -> &str;

    /// The JSON Schema of the arguments object. It must suit OpenAI's strict
    /// mode: every property required, `additionalProperties: false`.
    fn parameters(&self) -> Value;

    /// Runs the tool. The registry has already checked `arguments` against
    /// [`Tool::parameters`], so a tool only checks what a schema cannot say.
    ///
    /// # Errors
    /// [`ToolError::InvalidArguments`] for arguments that make no sense,
    /// [`ToolError::Failed`] when no result can be produced.
    async fn call(&self, arguments: Value) -> Result<Value, ToolError>;
}
