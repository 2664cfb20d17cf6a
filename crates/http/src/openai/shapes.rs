//! What the OpenAI-compatible routes answer with, field for field as
//! OpenAI's own API writes it: `chat.completion`, `chat.completion.chunk`,
//! the model list.

use colloquy_domain::{Message, MessageId, ToolCall, Usage};
use serde::Serialize;

/// The fields every chunk of one reply shares, and its completion's.
#[derive(Debug, Clone)]
pub(super) struct Header {
    /// `chatcmpl-` and the reply's message id.
    pub(super) id: String,
    pub(super) created: u64,
    pub(super) model: String,
}

impl Header {
    pub(super) fn new(reply: MessageId, created: u64, model: String) -> Self {
        Self {
            id: format!("chatcmpl-{reply}"),
            created,
            model,
        }
    }

    pub(super) fn chunk<'a>(
        &'a self,
        choices: &'a [Choice<'a>],
        usage: Option<UsageOut>,
    ) -> Chunk<'a> {
        Chunk {
            id: &self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: &self.model,
            choices,
            usage,
        }
    }
}

/// A `chat.completion.chunk`.
#[derive(Debug, Serialize)]
pub(super) struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [Choice<'a>],
    /// Only on the usage chunk (`stream_options.include_usage`).
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageOut>,
}

#[derive(Debug, Serialize)]
pub(super) struct Choice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'a str>,
}

impl<'a> Choice<'a> {
    /// The only choice of a chunk.
    pub(super) const fn of(delta: Delta<'a>, finish_reason: Option<&'a str>) -> Self {
        Self {
            index: 0,
            delta,
            logprobs: (),
            finish_reason,
        }
    }
}

#[derive(Debug, Default, Serialize)]
pub(super) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub(super) tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
}

/// A whole call in one delta: colloquy relays a call once it is complete.
#[derive(Debug, Serialize)]
pub(super) struct ToolCallDeltaOut<'a> {
    index: u32,
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

impl<'a> ToolCallDeltaOut<'a> {
    pub(super) fn new(index: u32, call: &'a ToolCall) -> Self {
        Self {
            index,
            id: &call.id,
            kind: "function",
            function: FunctionOut::of(call),
        }
    }
}

#[derive(Debug, Clone, Copy, Serialize)]
pub(super) struct UsageOut {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

impl From<Usage> for UsageOut {
    fn from(usage: Usage) -> Self {
        Self {
            prompt_tokens: usage.prompt_tokens,
            completion_tokens: usage.completion_tokens,
            total_tokens: usage.prompt_tokens + usage.completion_tokens,
        }
    }
}

/// A whole `chat.completion`.
#[derive(Debug, Serialize)]
pub(super) struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    /// `null` when the upstream did not say.
    usage: Option<UsageOut>,
}

#[derive(Debug, Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: (),
    finish_reason: &'a str,
}

#[derive(Debug, Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<&'a str>,
    refusal: (),
    #[serde(skip_serializing_if = "Vec::is_empty")]
    tool_calls: Vec<ToolCallOut<'a>>,
}

#[derive(Debug, Serialize)]
struct ToolCallOut<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    kind: &'static str,
    function: FunctionOut<'a>,
}

#[derive(Debug, Serialize)]
struct FunctionOut<'a> {
    name: &'a str,
    arguments: &'a str,
}

impl<'a> FunctionOut<'a> {
    fn of(call: &'a ToolCall) -> Self {
        Self {
            name: &call.name,
            arguments: &call.arguments,
        }
    }
}

/// How a reply ended, in OpenAI's words: the upstream's own, else `stop`,
/// or `tool_calls` for a reply that ended on calls.
pub(super) fn finish_reason(reply: &Message) -> &str {
    match reply.finish_reason.as_deref() {
        Some(reason) => reason,
        None if !reply.tool_calls.is_empty() => "tool_calls",
        None => "stop",
    }
}

impl<'a> Completion<'a> {
    /// The completion of a reply as it was stored.
    pub(super) fn of(header: &'a Header, reply: &'a Message) -> Self {
        let tool_calls: Vec<ToolCallOut<'a>> = reply
            .tool_calls
            .iter()
            .map(|call| ToolCallOut {
                id: &call.id,
                kind: "function",
                function: FunctionOut::of(call),
            })
            .collect();
        // OpenAI sends `content: null` on a turn that only calls tools.
        let content =
            (!reply.content.is_empty() || tool_calls.is_empty()).then_some(reply.content.as_str());
        Self {
            id: &header.id,
            object: "chat.completion",
            created: header.created,
            model: &header.model,
            choices: [CompletionChoice {
                index: 0,
                message: MessageOut {
                    role: "assistant",
                    content,
                    refusal: (),
                    tool_calls,
                },
                logprobs: (),
                finish_reason: finish_reason(reply),
            }],
            usage: reply.usage.map(UsageOut::from),
        }
    }
}

/// `GET /v1/models`.
#[derive(Debug, Serialize)]
pub(super) struct ModelList {
    pub(super) object: &'static str,
    pub(super) data: Vec<ModelOut>,
}

#[derive(Debug, Serialize)]
pub(super) struct ModelOut {
    pub(super) id: String,
    pub(super) object: &'static str,
    pub(super) created: u64,
    pub(super) owned_by: &'static str,
}
