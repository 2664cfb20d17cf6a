//! The Chat Completions wire format: the request we send and the chunks we
//! read, as far as colloquy uses them.

use colloquy_ports::{ChatRequest, LlmError, PromptMessage, PromptRole, ResponseFormat, ToolSpec};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::TokenLimitField;

/// The body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(crate) struct RequestBody<'a> {
    model: &'a str,
    messages: Vec<MessageOut<'a>>,
    stream: bool,
    stream_options: StreamOptions,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tools: Vec<ToolOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    response_format: Option<ResponseFormatOut<'a>>,
    /// At most one of the two is sent: OpenAI refuses a request with both.
    #[serde(skip_serializing_if = "Option::is_none")]
    max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    temperature: Option<f32>,
}

#[derive(Debug, Serialize)]
struct StreamOptions {
    include_usage: bool,
}

#[derive(Debug, Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_call_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionCallOut<'a>,
}

#[derive(Debug, Serialize)]
struct FunctionCallOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

#[derive(Debug, Serialize)]
struct ToolOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Debug, Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    #[serde(skip_serializing_if = "is_empty")]
    description: &'a str,
    parameters: Value,
}

#[derive(Debug, Serialize)]
struct ResponseFormatOut<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    json_schema: JsonSchemaOut<'a>,
}

#[derive(Debug, Serialize)]
struct JsonSchemaOut<'a> {
    name: &'a str,
    schema: Value,
    strict: bool,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde passes a reference to the field
fn is_empty(text: &&str) -> bool {
    text.is_empty()
}

impl<'a> RequestBody<'a> {
    /// The streamed request for `request`, its token limit (if any) in
    /// `token_limit_field`.
    ///
    /// # Errors
    /// [`LlmError::Internal`] when a tool's parameters or a response schema is
    /// not JSON: the request cannot be built, and sending it again would not
    /// help.
    pub(crate) fn new(
        request: &'a ChatRequest,
        token_limit_field: TokenLimitField,
    ) -> Result<Self, LlmError> {
        let (max_tokens, max_completion_tokens) = match token_limit_field {
            TokenLimitField::MaxTokens => (request.max_tokens, None),
            TokenLimitField::MaxCompletionTokens => (None, request.max_tokens),
        };
        Ok(Self {
            model: &request.model,
            messages: request.messages.iter().map(MessageOut::new).collect(),
            stream: true,
            stream_options: StreamOptions {
                include_usage: true,
            },
            tools: request
                .tools
                .iter()
                .map(ToolOut::new)
                .collect::<Result<_, _>>()?,
            response_format: request
                .response_format
                .as_ref()
                .map(ResponseFormatOut::new)
                .transpose()?,
            max_tokens,
            max_completion_tokens,
            temperature: request.temperature,
        })
    }
}

impl<'a> MessageOut<'a> {
    fn new(message: &'a PromptMessage) -> Self {
        let role = match message.role {
            PromptRole::System => "system",
            PromptRole::User => "user",
            PromptRole::Assistant => "assistant",
            PromptRole::Tool => "tool",
        };
        let tool_calls: Vec<ToolCallOut<'a>> = message
            .tool_calls
            .iter()
            .map(|call| ToolCallOut {
                id: &call.id,
                kind: "function",
                function: FunctionCallOut {
                    name: &call.name,
                    arguments: &call.arguments,
                },
            })
            .collect();
        // An assistant turn that only called tools has no text: the API
        // expects `content: null` there rather than an empty string.
        let content = (!message.content.is_empty() || tool_calls.is_empty())
            .then_some(message.content.as_str());
        Self {
            role,
            content,
            tool_calls,
            tool_call_id: message.tool_call_id.as_deref(),
            name: message.name.as_deref(),
        }
    }
}

impl<'a> ToolOut<'a> {
    fn new(tool: &'a ToolSpec) -> Result<Self, LlmError> {
        let parameters =
            serde_json::from_str(&tool.parameters).map_err(|err| LlmError::Internal {
                message: format!(
                    "the parameters schema of tool {:?} is not JSON: {err}",
                    tool.name
                ),
            })?;
        Ok(Self {
            kind: "function",
            function: FunctionOut {
                name: &tool.name,
                description: &tool.description,
                parameters,
            },
        })
    }
}

impl<'a> ResponseFormatOut<'a> {
    fn new(format: &'a ResponseFormat) -> Result<Self, LlmError> {
        let ResponseFormat::JsonSchema { name, schema } = format;
        let schema = serde_json::from_str(schema).map_err(|err| LlmError::Internal {
            message: format!("the response schema {name:?} is not JSON: {err}"),
        })?;
        Ok(Self {
            kind: "json_schema",
            json_schema: JsonSchemaOut {
                name,
                schema,
                strict: true,
            },
        })
    }
}

/// One `data:` payload of the stream. Every field is optional because
/// compatible servers differ: the usage chunk has `choices: []` or
/// `choices: null`, regular chunks have `usage: null` or none, and an error
/// payload has only `error`.
#[derive(Debug, Deserialize)]
pub(crate) struct ChunkIn {
    #[serde(default)]
    pub(crate) choices: Option<Vec<ChoiceIn>>,
    #[serde(default)]
    pub(crate) usage: Option<UsageIn>,
    #[serde(default)]
    pub(crate) error: Option<Value>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ChoiceIn {
    #[serde(default)]
    pub(crate) index: u32,
    #[serde(default)]
    pub(crate) delta: Option<DeltaIn>,
    #[serde(default)]
    pub(crate) finish_reason: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct DeltaIn {
    #[serde(default)]
    pub(crate) content: Option<String>,
    #[serde(default)]
    pub(crate) tool_calls: Option<Vec<ToolCallDeltaIn>>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct ToolCallDeltaIn {
    #[serde(default)]
    pub(crate) index: u32,
    #[serde(default)]
    pub(crate) id: Option<String>,
    #[serde(default)]
    pub(crate) function: Option<FunctionDeltaIn>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct FunctionDeltaIn {
    #[serde(default)]
    pub(crate) name: Option<String>,
    #[serde(default)]
    pub(crate) arguments: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(crate) struct UsageIn {
    #[serde(default)]
    pub(crate) prompt_tokens: u64,
    #[serde(default)]
    pub(crate) completion_tokens: u64,
}

/// What an error object (in an error response or inside the stream) says.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct ErrorInfo {
    pub(crate) message: Option<String>,
    pub(crate) kind: Option<String>,
    pub(crate) code: Option<String>,
}

impl ErrorInfo {
    /// Reads `{"message", "type", "code"}`; a bare string counts as the
    /// message, as some compatible servers send `"error": "…"`.
    pub(crate) fn from_error(error: &Value) -> Self {
        let text = |key: &str| match &error[key] {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        };
        match error {
            Value::String(message) => Self {
                message: Some(message.clone()),
                ..Self::default()
            },
            _ => Self {
                message: text("message"),
                kind: text("type"),
                code: text("code"),
            },
        }
    }

    /// Reads the `error` of an error response body, if it is one.
    pub(crate) fn from_body(body: &str) -> Option<Self> {
        let value: Value = serde_json::from_str(body).ok()?;
        value
            .get("error")
            .filter(|e| !e.is_null())
            .map(Self::from_error)
    }

    /// Whether the type or code names a rate limit.
    pub(crate) fn is_rate_limit(&self) -> bool {
        [&self.kind, &self.code]
            .into_iter()
            .flatten()
            .any(|s| s.contains("rate_limit"))
    }
}
