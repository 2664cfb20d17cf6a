//! The tools offered to the model, and running one of its calls.

use std::sync::Arc;

use colloquy_domain::ToolCall;
use colloquy_ports::{ToolCallRequest, ToolSpec};
use serde_json::{json, Value};

use super::{schema, Calculator, CurrentTime, Tool};

/// The names `COLLOQUY_TOOLS` may list.
pub const BUILTIN_TOOLS: [&str; 2] = ["current_time", "calculator"];

/// Arguments longer than this are refused unread: no built-in needs more,
/// and a model stuck in a loop can write a lot.
const MAX_ARGUMENT_BYTES: usize = 16 * 1024;

/// Tool names in the configuration that no built-in tool has.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown tool {}: the built-in tools are {}, or `none`", quoted(.0), quoted(&BUILTIN_TOOLS))]
pub struct UnknownTools(pub Vec<String>);

fn quoted<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|name| format!("`{}`", name.as_ref()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The tools a reply may call. Cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct ToolRegistry {
    tools: Vec<Arc<dyn Tool>>,
}

impl ToolRegistry {
    /// No tools: requests offer none.
    #[must_use]
    pub fn none() -> Self {
        Self::default()
    }

    /// The built-in tools named in `names`, in that order.
    ///
    /// # Errors
    /// [`UnknownTools`] naming every name that is not a built-in tool.
    pub fn builtin<S: AsRef<str>>(names: &[S]) -> Result<Self, UnknownTools> {
        let mut registry = Self::none();
        let mut unknown = Vec::new();
        for name in names {
            match name.as_ref() {
                "current_time" => registry = registry.with(CurrentTime::default()),
                "calculator" => registry = registry.with(Calculator),
                other => unknown.push(other.to_owned()),
            }
        }
        if unknown.is_empty() {
            Ok(registry)
        } else {
            Err(UnknownTools(unknown))
        }
    }

    /// Adds `tool`, replacing one of the same name.
    #[must_use]
    pub fn with(mut self, tool: impl Tool + 'static) -> Self {
        self.tools.retain(|known| known.name() != tool.name());
        self.tools.push(Arc::new(tool));
        self
    }

    /// Those of these tools that `names` lists, in this registry's order:
    /// the tools of an assistant.
    #[must_use]
    pub fn only<S: AsRef<str>>(&self, names: &[S]) -> Self {
        Self {
            tools: self
                .tools
                .iter()
                .filter(|tool| names.iter().any(|name| name.as_ref() == tool.name()))
                .cloned()
                .collect(),
        }
    }

    /// The names of the tools, in the order they are offered.
    #[must_use]
    pub fn names(&self) -> Vec<&str> {
        self.tools.iter().map(|tool| tool.name()).collect()
    }

    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.tools.is_empty()
    }

    /// The tools as a request offers them.
    pub(crate) fn specs(&self) -> Vec<ToolSpec> {
        self.tools
            .iter()
            .map(|tool| ToolSpec {
                name: tool.name().to_owned(),
                description: tool.description().to_owned(),
                parameters: tool.parameters().to_string(),
            })
            .collect()
    }

    /// Runs one call the model made. Never fails: whatever goes wrong (an
    /// unknown tool, arguments that are not JSON or do not fit the schema,
    /// a tool that cannot answer) is recorded in the call's `error`, which
    /// goes back to the model so it can correct itself.
    pub(crate) async fn run(&self, request: &ToolCallRequest) -> ToolCall {
        let outcome = self.outcome(request).await;
        let (result, error) = match outcome {
            Ok(value) => (Some(value.to_string()), None),
            Err(message) => (None, Some(message)),
        };
        ToolCall {
            id: request.id.clone(),
            name: request.name.clone(),
            arguments: request.arguments.clone(),
            result,
            error,
        }
    }

    async fn outcome(&self, request: &ToolCallRequest) -> Result<Value, String> {
        let Some(tool) = self.tools.iter().find(|tool| tool.name() == request.name) else {
            return Err(if self.tools.is_empty() {
                format!("unknown tool `{}`: no tools are available", request.name)
            } else {
                format!(
                    "unknown tool `{}`: the available tools are {}",
                    request.name,
                    quoted(&self.names())
                )
            });
        };
        if request.arguments.len() > MAX_ARGUMENT_BYTES {
            return Err(format!(
                "invalid arguments: longer than {MAX_ARGUMENT_BYTES} bytes"
            ));
        }
        // Some servers send no arguments at all for a call that needs none.
        let text = if request.arguments.trim().is_empty() {
            "{}"
        } else {
            &request.arguments
        };
        let arguments: Value = serde_json::from_str(text)
            .map_err(|error| format!("invalid arguments: not valid JSON ({error})"))?;
        schema::validate(&tool.parameters(), &arguments)
            .map_err(|problem| format!("invalid arguments: {problem}"))?;
        tool.call(arguments)
            .await
            .map_err(|error| error.to_string())
    }
}

/// What the model is sent back for a call: its result, or `{"error": "…"}`.
pub(crate) fn reply_to_model(call: &ToolCall) -> String {
    match (&call.result, &call.error) {
        (Some(result), _) => result.clone(),
        (None, error) => {
            json!({ "error": error.as_deref().unwrap_or("the tool gave no result") }).to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(name: &str, arguments: &str) -> ToolCallRequest {
        ToolCallRequest {
            id: "call_1".into(),
            name: name.into(),
            arguments: arguments.into(),
        }
    }

    #[test]
    fn builds_the_named_built_ins_and_names_unknown_ones() {
        let registry = ToolRegistry::builtin(&["calculator", "current_time"]).unwrap();
        assert_eq!(registry.names(), ["calculator", "current_time"]);
        let error = ToolRegistry::builtin(&["calculator", "weather", "shell"]).unwrap_err();
        assert_eq!(error, UnknownTools(vec!["weather".into(), "shell".into()]));
        assert!(error.to_string().contains("`weather`, `shell`"), "{error}");
        assert!(ToolRegistry::builtin::<&str>(&[]).unwrap().is_empty());
    }

    #[test]
    fn offers_each_tool_with_its_schema() {
        let specs = ToolRegistry::builtin(&BUILTIN_TOOLS).unwrap().specs();
        assert_eq!(specs.len(), 2);
        for spec in specs {
            let schema: Value = serde_json::from_str(&spec.parameters).unwrap();
            assert_eq!(
                schema["additionalProperties"], false,
                "strict mode needs closed objects"
            );
            assert!(!spec.description.is_empty());
        }
    }

    #[tokio::test]
    async fn runs_a_call_and_records_every_failure_precisely() {
        let registry = ToolRegistry::builtin(&["calculator"]).unwrap();
        let ok = registry
            .run(&call("calculator", r#"{"expression": "2*(3+4)"}"#))
            .await;
        assert_eq!(
            ok.result.as_deref(),
            Some(r#"{"expression":"2*(3+4)","value":14}"#)
        );
        assert_eq!(ok.error, None);

        let cases = [
            (
                call("calculator", r#"{"expression": "2*(3"#),
                "invalid arguments: not valid JSON",
            ),
            (
                call("calculator", r#"{"expr": "1"}"#),
                "invalid arguments: `arguments` lacks the required field `expression`",
            ),
            (
                call("calculator", r#"{"expression": 5}"#),
                "invalid arguments: `expression` must be a string",
            ),
            (
                call("shell", "{}"),
                "unknown tool `shell`: the available tools are `calculator`",
            ),
        ];
        for (request, expected) in cases {
            let failed = registry.run(&request).await;
            assert_eq!(failed.result, None);
            let error = failed.error.unwrap();
            assert!(
                error.starts_with(expected),
                "{error:?} should start with {expected:?}"
            );
            let to_model: Value = serde_json::from_str(&reply_to_model(&ToolCall {
                error: Some(error.clone()),
                ..failed
            }))
            .unwrap();
            assert_eq!(to_model["error"], error.as_str());
        }
    }
}
