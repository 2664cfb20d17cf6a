//! A Chat Completions request as OpenAI defines it, read as the API does:
//! fields colloquy does not use are tolerated, a field of the wrong type is
//! a `400` naming it (`param`), and what cannot be honoured is refused
//! rather than silently dropped (`n` other than 1, image parts).

use std::collections::HashMap;

use colloquy_app::{CompletionMessage, CompletionRequest};
use colloquy_domain::{Role, SessionId, ToolCall};
use colloquy_ports::ToolSpec;
use serde::Deserialize;
use serde_json::Value;

use super::errors::OpenAiError;

/// `POST /v1/chat/completions`, as far as colloquy reads it.
#[derive(Debug, Deserialize)]
pub(super) struct CompletionBody {
    model: String,
    messages: Vec<MessageIn>,
    #[serde(default)]
    pub(super) stream: Option<bool>,
    #[serde(default)]
    stream_options: Option<StreamOptionsIn>,
    #[serde(default)]
    temperature: Option<f32>,
    #[serde(default)]
    max_tokens: Option<u32>,
    #[serde(default)]
    max_completion_tokens: Option<u32>,
    #[serde(default)]
    tools: Option<Vec<ToolIn>>,
    #[serde(default)]
    tool_choice: Option<Value>,
    #[serde(default)]
    n: Option<u32>,
    #[serde(default)]
    metadata: Option<HashMap<String, String>>,
}

#[derive(Debug, Deserialize)]
struct StreamOptionsIn {
    #[serde(default)]
    include_usage: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "role", rename_all = "lowercase")]
enum MessageIn {
    System {
        content: ContentIn,
    },
    Developer {
        content: ContentIn,
    },
    User {
        content: ContentIn,
    },
    Assistant {
        #[serde(default)]
        content: Option<ContentIn>,
        #[serde(default)]
        tool_calls: Option<Vec<ToolCallIn>>,
    },
    Tool {
        content: ContentIn,
        tool_call_id: String,
    },
}

/// A message's content: a string, or an array of parts.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum ContentIn {
    Text(String),
    Parts(Vec<PartIn>),
}

#[derive(Debug, Deserialize)]
struct PartIn {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ToolCallIn {
    id: String,
    function: FunctionCallIn,
}

#[derive(Debug, Deserialize)]
struct FunctionCallIn {
    name: String,
    arguments: String,
}

#[derive(Debug, Deserialize)]
struct ToolIn {
    #[serde(rename = "type")]
    kind: String,
    function: FunctionIn,
}

#[derive(Debug, Deserialize)]
struct FunctionIn {
    name: String,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    parameters: Option<Value>,
}

/// What the routes need of a request besides the use case's input.
#[derive(Debug)]
pub(super) struct ReadRequest {
    pub(super) completion: CompletionRequest,
    pub(super) stream: bool,
    pub(super) include_usage: bool,
}

/// Parses a body, naming the field at fault.
pub(super) fn parse(bytes: &[u8]) -> Result<CompletionBody, OpenAiError> {
    let mut reader = serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(&mut reader).map_err(|error| {
        let param = error.path().to_string();
        let detail = error.inner().to_string();
        let param = (param != ".").then_some(param);
        OpenAiError::invalid(format!("invalid request body: {detail}"), param)
    })
}

impl CompletionBody {
    /// The request, checked, with the session `header` names (the
    /// `X-Colloquy-Session` header, which wins over `metadata`).
    pub(super) fn read(self, header: Option<SessionId>) -> Result<ReadRequest, OpenAiError> {
        if let Some(n) = self.n.filter(|n| *n != 1) {
            return Err(OpenAiError::invalid(
                format!("`n` must be 1 here, not {n}: each completion is recorded as one reply"),
                Some("n".to_owned()),
            ));
        }
        if let Some(temperature) = self.temperature {
            if !(0.0..=2.0).contains(&temperature) {
                return Err(OpenAiError::invalid(
                    format!("`temperature` is between 0 and 2, not {temperature}"),
                    Some("temperature".to_owned()),
                ));
            }
        }
        let session = match header {
            Some(session) => Some(session),
            None => self.metadata_session()?,
        };
        let (system_prompt, messages) = conversation(self.messages)?;
        let offers_tools = self.tool_choice.as_ref().and_then(Value::as_str) != Some("none");
        let tools = if offers_tools {
            self.tools
                .unwrap_or_default()
                .into_iter()
                .enumerate()
                .map(|(index, tool)| tool_spec(index, tool))
                .collect::<Result<_, _>>()?
        } else {
            Vec::new()
        };
        Ok(ReadRequest {
            completion: CompletionRequest {
                session,
                system_prompt,
                messages,
                model: Some(self.model),
                tools,
                temperature: self.temperature,
                max_tokens: self.max_completion_tokens.or(self.max_tokens),
            },
            stream: self.stream.unwrap_or(false),
            include_usage: self
                .stream_options
                .and_then(|options| options.include_usage)
                .unwrap_or(false),
        })
    }

    fn metadata_session(&self) -> Result<Option<SessionId>, OpenAiError> {
        let Some(raw) = self
            .metadata
            .as_ref()
            .and_then(|metadata| metadata.get("colloquy_session"))
        else {
            return Ok(None);
        };
        raw.parse().map(Some).map_err(|_| {
            OpenAiError::invalid(
                format!("`metadata.colloquy_session` is not a session id: `{raw}`"),
                Some("metadata.colloquy_session".to_owned()),
            )
        })
    }
}

/// The request's system prompt (its system and developer messages, joined)
/// and its conversation, each tool message folded into the call it answers.
fn conversation(
    messages: Vec<MessageIn>,
) -> Result<(Option<String>, Vec<CompletionMessage>), OpenAiError> {
    let mut system: Vec<String> = Vec::new();
    let mut conversation: Vec<CompletionMessage> = Vec::with_capacity(messages.len());
    for (index, message) in messages.into_iter().enumerate() {
        let param = |field: &str| Some(format!("messages[{index}].{field}"));
        match message {
            MessageIn::System { content } | MessageIn::Developer { content } => {
                system.push(text_of(content, param("content"))?);
            }
            MessageIn::User { content } => conversation.push(CompletionMessage {
                role: Role::User,
                content: text_of(content, param("content"))?,
                tool_calls: Vec::new(),
            }),
            MessageIn::Assistant {
                content,
                tool_calls,
            } => conversation.push(CompletionMessage {
                role: Role::Assistant,
                content: content
                    .map(|content| text_of(content, param("content")))
                    .transpose()?
                    .unwrap_or_default(),
                tool_calls: tool_calls
                    .unwrap_or_default()
                    .into_iter()
                    .map(|call| ToolCall {
                        id: call.id,
                        name: call.function.name,
                        arguments: call.function.arguments,
                        result: None,
                        error: None,
                    })
                    .collect(),
            }),
            MessageIn::Tool {
                content,
                tool_call_id,
            } => {
                let result = text_of(content, param("content"))?;
                let asked = conversation
                    .last_mut()
                    .filter(|message| message.role == Role::Assistant)
                    .and_then(|message| {
                        message
                            .tool_calls
                            .iter_mut()
                            .find(|call| call.id == tool_call_id)
                    });
                let Some(call) = asked else {
                    return Err(OpenAiError::invalid(
                        format!(
                            "the `tool` message answers `{tool_call_id}`, which is no tool call of \
                             the assistant message before it"
                        ),
                        param("tool_call_id"),
                    ));
                };
                call.result = Some(result);
            }
        }
    }
    let system = (!system.is_empty()).then(|| system.join("\n\n"));
    Ok((system, conversation))
}

/// A content's text: the string, or its text parts joined. Other parts
/// (images, audio, files) are refused: the upstream would never see them.
fn text_of(content: ContentIn, param: Option<String>) -> Result<String, OpenAiError> {
    match content {
        ContentIn::Text(text) => Ok(text),
        ContentIn::Parts(parts) => {
            let mut text = String::new();
            for part in parts {
                match (part.kind.as_str(), part.text) {
                    ("text", Some(piece)) => text.push_str(&piece),
                    ("text", None) => {
                        return Err(OpenAiError::invalid(
                            "a `text` content part needs `text`".to_owned(),
                            param,
                        ))
                    }
                    (kind, _) => {
                        return Err(OpenAiError::invalid(
                            format!(
                            "content parts of type `{kind}` are not supported here; only `text` is"
                        ),
                            param,
                        ))
                    }
                }
            }
            Ok(text)
        }
    }
}

fn tool_spec(index: usize, tool: ToolIn) -> Result<ToolSpec, OpenAiError> {
    if tool.kind != "function" {
        return Err(OpenAiError::invalid(
            format!(
                "tools of type `{}` are not supported; only `function` is",
                tool.kind
            ),
            Some(format!("tools[{index}].type")),
        ));
    }
    let parameters = tool
        .function
        .parameters
        .unwrap_or_else(|| serde_json::json!({"type": "object", "properties": {}}));
    Ok(ToolSpec {
        name: tool.function.name,
        description: tool.function.description.unwrap_or_default(),
        parameters: parameters.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(body: Value) -> Result<ReadRequest, OpenAiError> {
        parse(body.to_string().as_bytes())?.read(None)
    }

    #[test]
    fn tool_messages_fold_into_the_calls_they_answer() {
        let request = read(serde_json::json!({
            "model": "m",
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Weather "}, {"type": "text", "text": "in Paris?"}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "weather", "arguments": "{}"}}
                ]},
                {"role": "tool", "tool_call_id": "c1", "content": "sunny"}
            ],
            "unknown_field": {"tolerated": true}
        }))
        .unwrap();
        let completion = request.completion;
        assert_eq!(completion.system_prompt.as_deref(), Some("Be brief."));
        assert_eq!(completion.messages.len(), 2);
        assert_eq!(completion.messages[0].content, "Weather in Paris?");
        assert_eq!(
            completion.messages[1].tool_calls[0].result.as_deref(),
            Some("sunny")
        );
    }

    #[test]
    fn a_wrong_type_names_its_field() {
        let error = read(serde_json::json!({"model": "m", "messages": [], "temperature": "hot"}))
            .unwrap_err();
        assert_eq!(error.param.as_deref(), Some("temperature"));
        let error =
            read(serde_json::json!({"model": "m", "messages": [{"role": "user", "content": 3}]}))
                .unwrap_err();
        assert_eq!(error.param.as_deref(), Some("messages[0]"));
    }

    #[test]
    fn what_cannot_be_honoured_is_refused() {
        for (body, param) in [
            (
                serde_json::json!({"model": "m", "messages": [], "n": 2}),
                "n",
            ),
            (
                serde_json::json!({"model": "m", "messages": [], "temperature": 3.0}),
                "temperature",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "x"}}]}]}),
                "messages[0].content",
            ),
            (
                serde_json::json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "x", "content": "r"}]}),
                "messages[0].tool_call_id",
            ),
            (
                serde_json::json!({"model": "m", "messages": [], "metadata": {"colloquy_session": "nope"}}),
                "metadata.colloquy_session",
            ),
        ] {
            let error = read(body).unwrap_err();
            assert_eq!(error.param.as_deref(), Some(param));
        }
    }

    #[test]
    fn tool_choice_none_offers_no_tools() {
        let tool = serde_json::json!([{"type": "function", "function": {"name": "f"}}]);
        let offered =
            read(serde_json::json!({"model": "m", "messages": [], "tools": tool})).unwrap();
        assert_eq!(offered.completion.tools.len(), 1);
        let none = read(
            serde_json::json!({"model": "m", "messages": [], "tools": tool, "tool_choice": "none"}),
        )
        .unwrap();
        assert!(none.completion.tools.is_empty());
    }
}
