//! The OpenAI wire format, written from borrowed data so that a streamed
//! reply costs a handful of allocations however many chunks it has.

use std::borrow::Cow;

use serde::Serialize;
use serde_json::Value;

use crate::behaviour::{Chunking, Content, Reply, ScriptedToolCall};

/// What the fake needs to know of a chat-completions request body.
#[derive(Debug)]
pub(crate) struct ChatParams {
    pub(crate) stream: bool,
    pub(crate) include_usage: bool,
    pub(crate) model: String,
    pub(crate) prompt_tokens: u64,
    pub(crate) last_user: String,
    /// Most completion tokens the reply may have, if the request says.
    pub(crate) token_limit: Option<usize>,
}

impl ChatParams {
    pub(crate) fn from_body(body: &Value) -> Self {
        let messages = body["messages"].as_array().map_or(&[][..], Vec::as_slice);
        let prompt_chars: usize = messages
            .iter()
            .map(|m| content_text(&m["content"]).chars().count())
            .sum();
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .map(|m| content_text(&m["content"]).into_owned())
            .unwrap_or_default();
        Self {
            stream: body["stream"].as_bool().unwrap_or(false),
            include_usage: body["stream_options"]["include_usage"]
                .as_bool()
                .unwrap_or(false),
            model: body["model"].as_str().unwrap_or("fake-model").to_owned(),
            prompt_tokens: u64::try_from(prompt_chars / 4).unwrap_or(u64::MAX),
            last_user,
            token_limit: token_limit(body),
        }
    }
}

/// The request's token limit: OpenAI's `max_completion_tokens` or the older
/// `max_tokens` that compatible servers read, the smaller when both are set
/// (the fake stands in for either kind of server). A value that is not a
/// whole number limits nothing.
fn token_limit(body: &Value) -> Option<usize> {
    ["max_completion_tokens", "max_tokens"]
        .into_iter()
        .filter_map(|field| body[field].as_u64())
        .map(|limit| usize::try_from(limit).unwrap_or(usize::MAX))
        .min()
}

/// A message's `content`: a string, or the text parts of an array of parts.
fn content_text(content: &Value) -> Cow<'_, str> {
    match content {
        Value::String(text) => Cow::Borrowed(text),
        Value::Array(parts) => {
            Cow::Owned(parts.iter().filter_map(|p| p["text"].as_str()).collect())
        }
        _ => Cow::Borrowed(""),
    }
}

/// A reply's text for one request.
pub(crate) fn reply_text<'a>(reply: &'a Reply, params: &ChatParams) -> Cow<'a, str> {
    match &reply.content {
        Content::Echo => Cow::Owned(format!("Echo: {}", params.last_user)),
        Content::Text(text) => Cow::Borrowed(text),
        Content::Chunks(chunks) => Cow::Owned(chunks.concat()),
    }
}

/// One content chunk of a streamed reply.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Step<'a> {
    Text(&'a str),
    Tool {
        index: u32,
        call: &'a ScriptedToolCall,
        arguments: &'a str,
        first: bool,
    },
}

/// Cuts a reply into its content chunks: text first, then tool-call
/// fragments.
pub(crate) fn steps<'a>(reply: &'a Reply, text: &'a str) -> Vec<Step<'a>> {
    let mut pieces = Vec::new();
    match &reply.content {
        Content::Chunks(chunks) => pieces.extend(chunks.iter().map(String::as_str)),
        Content::Echo | Content::Text(_) => split(text, reply.chunking, &mut pieces),
    }
    let mut steps: Vec<Step<'a>> = pieces.into_iter().map(Step::Text).collect();
    for (index, call) in (0_u32..).zip(&reply.tool_calls) {
        let mut fragments = Vec::new();
        split(
            &call.arguments,
            Chunking::Count(call.fragments),
            &mut fragments,
        );
        if fragments.is_empty() {
            fragments.push("");
        }
        steps.extend(
            fragments
                .into_iter()
                .enumerate()
                .map(|(i, arguments)| Step::Tool {
                    index,
                    call,
                    arguments,
                    first: i == 0,
                }),
        );
    }
    steps
}

fn split<'t>(text: &'t str, chunking: Chunking, out: &mut Vec<&'t str>) {
    match chunking {
        Chunking::Words => out.extend(text.split_inclusive(char::is_whitespace)),
        Chunking::Count(wanted) => {
            let chars = text.chars().count();
            if chars == 0 {
                return;
            }
            let count = wanted.clamp(1, chars);
            // Piece `p` starts at character `p * chars / count`; with
            // `count <= chars` those starts are distinct, so no piece is empty.
            let mut start = 0;
            let mut piece = 1;
            for (char_index, (byte_index, _)) in text.char_indices().enumerate() {
                if piece < count && char_index == piece * chars / count {
                    out.push(&text[start..byte_index]);
                    start = byte_index;
                    piece += 1;
                }
            }
            out.push(&text[start..]);
        }
    }
}

/// Cuts a reply's content chunks to the request's token limit, counting a
/// chunk as one token as the usage does. Returns whether anything was cut.
pub(crate) fn limit(steps: &mut Vec<Step<'_>>, params: &ChatParams) -> bool {
    match params.token_limit {
        Some(limit) if steps.len() > limit => {
            steps.truncate(limit);
            true
        }
        _ => false,
    }
}

/// The `finish_reason` a reply ends with: `length` when the token limit cut
/// it, as OpenAI says, whatever the script said.
pub(crate) fn finish_reason(reply: &Reply, cut: bool) -> &str {
    if cut {
        return "length";
    }
    match &reply.finish_reason {
        Some(reason) => reason,
        None if reply.tool_calls.is_empty() => "stop",
        None => "tool_calls",
    }
}

#[derive(Debug, Serialize)]
pub(crate) struct UsageOut {
    pub(crate) prompt_tokens: u64,
    pub(crate) completion_tokens: u64,
    pub(crate) total_tokens: u64,
}

impl UsageOut {
    pub(crate) fn new(params: &ChatParams, completion_tokens: usize) -> Self {
        let completion_tokens = u64::try_from(completion_tokens).unwrap_or(u64::MAX);
        Self {
            prompt_tokens: params.prompt_tokens,
            completion_tokens,
            total_tokens: params.prompt_tokens.saturating_add(completion_tokens),
        }
    }
}

/// The fields every chunk of one reply shares.
#[derive(Debug)]
pub(crate) struct ChunkHeader<'a> {
    pub(crate) id: &'a str,
    pub(crate) created: u64,
    pub(crate) model: &'a str,
}

/// A `chat.completion.chunk`.
#[derive(Debug, Serialize)]
pub(crate) struct Chunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [Choice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<UsageOut>,
}

#[derive(Debug, Serialize)]
pub(crate) struct Choice<'a> {
    index: u32,
    delta: Delta<'a>,
    logprobs: (),
    finish_reason: Option<&'a str>,
}

#[derive(Debug, Default, Serialize)]
pub(crate) struct Delta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[ToolCallDeltaOut<'a>; 1]>,
}

#[derive(Debug, Serialize)]
pub(crate) struct ToolCallDeltaOut<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: FunctionDeltaOut<'a>,
}

#[derive(Debug, Serialize)]
pub(crate) struct FunctionDeltaOut<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

impl ChunkHeader<'_> {
    /// A chunk with these choices (none for the usage chunk).
    pub(crate) fn chunk<'c>(
        &'c self,
        choices: &'c [Choice<'c>],
        usage: Option<UsageOut>,
    ) -> Chunk<'c> {
        Chunk {
            id: self.id,
            object: "chat.completion.chunk",
            created: self.created,
            model: self.model,
            choices,
            usage,
        }
    }
}

/// The only choice of a chunk.
pub(crate) const fn choice<'c>(delta: Delta<'c>, finish_reason: Option<&'c str>) -> Choice<'c> {
    Choice {
        index: 0,
        delta,
        logprobs: (),
        finish_reason,
    }
}

/// The delta of the first chunk: the role, and an empty content as OpenAI
/// sends it.
pub(crate) fn role_delta() -> Delta<'static> {
    Delta {
        role: Some("assistant"),
        content: Some(""),
        tool_calls: None,
    }
}

/// The delta carrying one content chunk.
pub(crate) fn step_delta<'a>(step: &Step<'a>) -> Delta<'a> {
    match *step {
        Step::Text(text) => Delta {
            content: Some(text),
            ..Delta::default()
        },
        Step::Tool {
            index,
            call,
            arguments,
            first,
        } => Delta {
            tool_calls: Some([ToolCallDeltaOut {
                index,
                id: first.then_some(call.id.as_str()),
                kind: first.then_some("function"),
                function: FunctionDeltaOut {
                    name: first.then_some(call.name.as_str()),
                    arguments,
                },
            }]),
            ..Delta::default()
        },
    }
}

/// A whole `chat.completion`, for non-streaming requests.
#[derive(Debug, Serialize)]
pub(crate) struct Completion<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: [CompletionChoice<'a>; 1],
    usage: UsageOut,
}

#[derive(Debug, Serialize)]
struct CompletionChoice<'a> {
    index: u32,
    message: MessageOut<'a>,
    logprobs: (),
    finish_reason: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct MessageOut<'a> {
    role: &'static str,
    content: Option<String>,
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
    arguments: String,
}

impl<'a> Completion<'a> {
    /// The completion made of these content chunks: the text chunks joined,
    /// and each tool call with the argument fragments it got (all of them,
    /// unless the token limit cut the reply short).
    pub(crate) fn new(
        header: &ChunkHeader<'a>,
        steps: &[Step<'a>],
        finish_reason: Option<&'a str>,
        usage: UsageOut,
    ) -> Self {
        let mut text = String::new();
        let mut tool_calls: Vec<ToolCallOut<'a>> = Vec::new();
        for step in steps {
            match *step {
                Step::Text(piece) => text.push_str(piece),
                Step::Tool {
                    call,
                    arguments,
                    first,
                    ..
                } => {
                    if first {
                        tool_calls.push(ToolCallOut {
                            id: &call.id,
                            kind: "function",
                            function: FunctionOut {
                                name: &call.name,
                                arguments: String::new(),
                            },
                        });
                    }
                    // A call's fragments follow its first one, in order.
                    if let Some(current) = tool_calls.last_mut() {
                        current.function.arguments.push_str(arguments);
                    }
                }
            }
        }
        // OpenAI sends `content: null` on a turn that only calls tools.
        let content = (!text.is_empty() || tool_calls.is_empty()).then_some(text);
        Self {
            id: header.id,
            object: "chat.completion",
            created: header.created,
            model: header.model,
            choices: [CompletionChoice {
                index: 0,
                message: MessageOut {
                    role: "assistant",
                    content,
                    refusal: (),
                    tool_calls,
                },
                logprobs: (),
                finish_reason,
            }],
            usage,
        }
    }
}

/// An OpenAI error object: `{"error": {"message", "type", "param", "code"}}`.
pub(crate) fn error_body(message: &str, error_type: &str, code: Option<&str>) -> Vec<u8> {
    let body = serde_json::json!({
        "error": {"message": message, "type": error_type, "param": null, "code": code}
    });
    body.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pieces(text: &str, chunking: Chunking) -> Vec<&str> {
        let mut out = Vec::new();
        split(text, chunking, &mut out);
        out
    }

    #[test]
    fn splitting_keeps_every_character_and_makes_no_empty_piece() {
        assert_eq!(
            pieces("Hello big  world", Chunking::Words),
            ["Hello ", "big ", " ", "world"]
        );
        assert_eq!(
            pieces("héllo wörld", Chunking::Count(3)),
            ["hél", "lo w", "örld"]
        );
        assert_eq!(pieces("ab", Chunking::Count(5)), ["a", "b"]);
        assert!(pieces("", Chunking::Count(3)).is_empty());
        assert!(pieces("", Chunking::Words).is_empty());
    }
}
