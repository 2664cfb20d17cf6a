//! Turns the `data:` payloads of a stream into [`ChatChunk`]s and decides
//! whether the stream ended as a finished reply. No I/O here, so every rule
//! is tested directly.

use std::collections::VecDeque;

use colloquy_domain::Usage;
use colloquy_ports::{ChatChunk, Completion, LlmError, ToolCallDelta};

use crate::wire::{ChunkIn, ErrorInfo};

/// The longest piece of a bad payload quoted in an error message.
const SNIPPET: usize = 120;

/// What the stream does after a payload.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Step {
    More,
    /// `[DONE]` after a `finish_reason`: the reply is complete.
    Done(Completion),
}

/// The state of one stream: what it said about its own end so far.
#[derive(Debug, Default)]
pub(crate) struct Decoder {
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl Decoder {
    /// Reads one `data:` payload, queuing the chunks it carries.
    ///
    /// # Errors
    /// [`LlmError::Protocol`] for a payload that is not JSON, an `error`
    /// object (or [`LlmError::RateLimited`] when it names a rate limit), or a
    /// `[DONE]` that came before any `finish_reason`. Nothing is queued from
    /// a payload that fails.
    pub(crate) fn feed(
        &mut self,
        data: &str,
        out: &mut VecDeque<ChatChunk>,
    ) -> Result<Step, LlmError> {
        if data.trim() == "[DONE]" {
            return match self.finish_reason.take() {
                Some(finish_reason) => Ok(Step::Done(Completion {
                    finish_reason,
                    usage: self.usage.take(),
                })),
                None => Err(protocol(
                    "the stream sent [DONE] without a finish_reason".to_owned(),
                )),
            };
        }
        let chunk: ChunkIn = serde_json::from_str(data).map_err(|err| {
            protocol(format!(
                "a chunk is not valid JSON ({err}): {}",
                snippet(data)
            ))
        })?;
        if let Some(error) = chunk.error.filter(|e| !e.is_null()) {
            return Err(stream_error(&ErrorInfo::from_error(&error)));
        }
        // colloquy never asks for `n > 1`: only the first choice is the reply.
        for choice in chunk.choices.into_iter().flatten().filter(|c| c.index == 0) {
            if let Some(delta) = choice.delta {
                if let Some(text) = delta.content.filter(|t| !t.is_empty()) {
                    out.push_back(ChatChunk::Delta(text));
                }
                for call in delta.tool_calls.into_iter().flatten() {
                    let (name, arguments) = call
                        .function
                        .map_or((None, None), |f| (f.name, f.arguments));
                    out.push_back(ChatChunk::ToolCall(ToolCallDelta {
                        index: call.index,
                        id: call.id,
                        name,
                        arguments: arguments.unwrap_or_default(),
                    }));
                }
            }
            if let Some(reason) = choice.finish_reason {
                self.finish_reason = Some(reason);
            }
        }
        if let Some(usage) = chunk.usage {
            self.usage = Some(Usage {
                prompt_tokens: usage.prompt_tokens,
                completion_tokens: usage.completion_tokens,
            });
        }
        Ok(Step::More)
    }

    /// Judges a stream whose body ended cleanly without `[DONE]`.
    ///
    /// Such an end is accepted only after both a `finish_reason` and the usage
    /// chunk: we always ask for usage, and its chunk is the last one before
    /// `[DONE]`, so the reply is provably whole. Anything less may be a reply
    /// cut short by a proxy or a crashing server, and must not pass for a
    /// finished one.
    ///
    /// # Errors
    /// [`LlmError::Protocol`] when either is missing.
    pub(crate) fn end(&mut self) -> Result<Completion, LlmError> {
        match (self.finish_reason.take(), self.usage.take()) {
            (Some(finish_reason), Some(usage)) => Ok(Completion {
                finish_reason,
                usage: Some(usage),
            }),
            (None, _) => Err(protocol(
                "the stream ended without a finish_reason or [DONE]".to_owned(),
            )),
            (Some(_), None) => Err(protocol(
                "the stream ended after its finish_reason but without the usage chunk or [DONE]"
                    .to_owned(),
            )),
        }
    }
}

const fn protocol(message: String) -> LlmError {
    LlmError::Protocol { message }
}

/// An `error` object inside a stream that had already answered `200`.
fn stream_error(error: &ErrorInfo) -> LlmError {
    let message = error
        .message
        .clone()
        .unwrap_or_else(|| "no message".to_owned());
    if error.is_rate_limit() {
        LlmError::RateLimited {
            retry_after: None,
            message,
        }
    } else {
        protocol(format!("the upstream sent an error mid-stream: {message}"))
    }
}

/// The start of a payload, cut on a character boundary.
pub(crate) fn snippet(text: &str) -> &str {
    match text.char_indices().nth(SNIPPET) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(payloads: &[&str]) -> (Vec<ChatChunk>, Result<Step, LlmError>, Decoder) {
        let mut decoder = Decoder::default();
        let mut out = VecDeque::new();
        let mut last = Ok(Step::More);
        for payload in payloads {
            last = decoder.feed(payload, &mut out);
            if last.is_err() {
                break;
            }
        }
        (out.into(), last, decoder)
    }

    #[test]
    fn a_usage_chunk_with_null_or_empty_choices_is_read() {
        for choices in ["null", "[]"] {
            let usage = format!(
                r#"{{"choices":{choices},"usage":{{"prompt_tokens":11,"completion_tokens":7,"total_tokens":18}}}}"#
            );
            let (chunks, last, _) = feed_all(&[
                r#"{"choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}],"usage":null}"#,
                r#"{"choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
                r#"{"choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}"#,
                &usage,
                "[DONE]",
            ]);
            assert_eq!(chunks, [ChatChunk::Delta("Hi".to_owned())]);
            assert_eq!(
                last,
                Ok(Step::Done(Completion {
                    finish_reason: "stop".to_owned(),
                    usage: Some(Usage {
                        prompt_tokens: 11,
                        completion_tokens: 7
                    }),
                }))
            );
        }
    }

    #[test]
    fn done_before_any_finish_reason_is_a_protocol_error() {
        let (_, last, _) = feed_all(&[
            r#"{"choices":[{"index":0,"delta":{"content":"Hi"}}]}"#,
            "[DONE]",
        ]);
        assert!(matches!(last, Err(LlmError::Protocol { .. })), "{last:?}");
    }

    #[test]
    fn a_clean_end_needs_both_finish_reason_and_usage() {
        let finish = r#"{"choices":[{"index":0,"delta":{},"finish_reason":"length"}]}"#;
        let usage = r#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2}}"#;

        let (_, _, mut decoder) = feed_all(&[finish, usage]);
        let completion = decoder
            .end()
            .expect("finish_reason and usage make a whole reply");
        assert_eq!(completion.finish_reason, "length");

        let (_, _, mut decoder) = feed_all(&[finish]);
        assert!(matches!(decoder.end(), Err(LlmError::Protocol { .. })));

        let (_, _, mut decoder) = feed_all(&[usage]);
        assert!(matches!(decoder.end(), Err(LlmError::Protocol { .. })));
    }

    #[test]
    fn an_error_object_naming_a_rate_limit_is_rate_limited_others_are_protocol() {
        let (_, last, _) = feed_all(&[
            r#"{"error":{"message":"slow down","type":"requests","code":"rate_limit_exceeded"}}"#,
        ]);
        assert_eq!(
            last,
            Err(LlmError::RateLimited {
                retry_after: None,
                message: "slow down".to_owned()
            })
        );
        let (_, last, _) = feed_all(&[r#"{"error":"overloaded"}"#]);
        assert!(
            matches!(&last, Err(LlmError::Protocol { message }) if message.contains("overloaded")),
            "{last:?}"
        );
    }

    #[test]
    fn a_payload_that_is_not_json_is_quoted_in_a_protocol_error() {
        let (_, last, _) = feed_all(&["{\"choices\": [oops"]);
        assert!(
            matches!(&last, Err(LlmError::Protocol { message }) if message.contains("[oops")),
            "{last:?}"
        );
    }
}
