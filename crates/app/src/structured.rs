//! Asking the model for a JSON answer of a given shape (titles, summaries).
//!
//! A structured answer is an ordinary streamed completion with a
//! `response_format`; its deltas are collected into one text. It is retried
//! on the same policy as a reply, since the same upstream faults hit it.

use colloquy_ports::{ChatChunk, ChatRequest, LlmClient, LlmError, ResponseFormat};
use futures::StreamExt;
use serde_json::Value;
use tokio::time::{sleep, timeout_at, Instant};

use crate::LlmPolicy;

/// Longest structured answer read: a title or a summary is far shorter, and a
/// model that rambles on is not going to produce valid JSON anyway.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A strict JSON-schema `response_format`.
pub(crate) fn json_schema(name: &str, schema: &Value) -> ResponseFormat {
    ResponseFormat::JsonSchema {
        name: name.to_owned(),
        schema: schema.to_string(),
    }
}

/// The whole text of the model's answer to `request`, retried as `policy` says.
///
/// # Errors
/// The last [`LlmError`] once the retries ran out or the error was final.
pub(crate) async fn complete(
    llm: &dyn LlmClient,
    policy: &LlmPolicy,
    request: &ChatRequest,
) -> Result<String, LlmError> {
    let mut retries = 0;
    loop {
        let error = match attempt(llm, policy, request).await {
            Ok(text) => return Ok(text),
            Err(error) => error,
        };
        retries += 1;
        let Some(wait) = policy.retry_delay(retries, &error) else {
            return Err(error);
        };
        tracing::debug!(%error, retry = retries, "retrying a structured request");
        sleep(wait).await;
    }
}

async fn attempt(
    llm: &dyn LlmClient,
    policy: &LlmPolicy,
    request: &ChatRequest,
) -> Result<String, LlmError> {
    let timeout = |what: &str, limit: std::time::Duration| LlmError::Timeout {
        message: format!("{what} within {} s", limit.as_secs_f64()),
    };
    let mut deadline = Instant::now() + policy.first_chunk_timeout;
    let mut stream = timeout_at(deadline, llm.stream_chat(request.clone()))
        .await
        .map_err(|_| timeout("no response", policy.first_chunk_timeout))??;
    let mut text = String::new();
    loop {
        let chunk = match timeout_at(deadline, stream.next()).await {
            Err(_) => return Err(timeout("no next chunk", policy.idle_timeout)),
            Ok(None) => {
                return Err(LlmError::Protocol {
                    message: "the stream ended before the answer was finished".to_owned(),
                })
            }
            Ok(Some(chunk)) => chunk?,
        };
        deadline = Instant::now() + policy.idle_timeout;
        match chunk {
            ChatChunk::Delta(delta) => {
                text.push_str(&delta);
                if text.len() > MAX_ANSWER_BYTES {
                    return Err(LlmError::Protocol {
                        message: format!("the answer grew past {MAX_ANSWER_BYTES} bytes"),
                    });
                }
            }
            // No tools are offered with a structured request.
            ChatChunk::ToolCall(_) => {}
            ChatChunk::Finished(_) => return Ok(text),
        }
    }
}
