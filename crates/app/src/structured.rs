//! Asking the model for a JSON answer of a given shape (titles, summaries).
//!
//! A structured answer is an ordinary streamed completion with a
//! `response_format`; its deltas are collected into one text. It goes through
//! the same request loop as a reply, since the same upstream faults hit it.

use colloquy_ports::{ChatRequest, LlmClient, LlmError, ResponseFormat};
use serde_json::Value;

use crate::upstream::{generate, Attempt, RetryBudget, Sink, Stop};
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

/// The whole text of the model's answer to `request`, asked and retried
/// as every request is (see [`crate::upstream`]).
///
/// # Errors
/// The last [`LlmError`] once the retries ran out or the error was final.
pub(crate) async fn complete(
    llm: &dyn LlmClient,
    policy: &LlmPolicy,
    request: &ChatRequest,
) -> Result<String, LlmError> {
    let mut answer = Answer::default();
    let mut budget = RetryBudget::default();
    // Nothing is stored while it streams: the flush interval is moot.
    let no_flush = policy.idle_timeout;
    match generate(
        llm,
        policy,
        &mut budget,
        request,
        &mut answer,
        Stop::NEVER,
        no_flush,
    )
    .await
    {
        Attempt::Finished(..) => Ok(answer.text),
        Attempt::Failed(error) => Err(error),
        // `Stop::NEVER` cannot stop.
        Attempt::Stopped(_) => Err(LlmError::Internal {
            message: "a structured request was stopped".to_owned(),
        }),
    }
}

/// The text of a structured answer, collected as it streams.
#[derive(Default)]
struct Answer {
    text: String,
}

impl Sink for Answer {
    async fn delta(&mut self, text: String) -> Result<(), LlmError> {
        self.text.push_str(&text);
        if self.text.len() > MAX_ANSWER_BYTES {
            return Err(LlmError::Protocol {
                message: format!("the answer grew past {MAX_ANSWER_BYTES} bytes"),
            });
        }
        Ok(())
    }

    async fn reset(&mut self) {
        self.text.clear();
    }
}
