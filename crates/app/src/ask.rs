//! `colloquy ask`: one prompt, its answer written out as it streams.
//!
//! It asks the model exactly as a reply does (the one request loop of
//! [`crate::upstream`]: timeouts, retries, recovery mid-stream), with the
//! default system prompt and no tools, and stores nothing.

use std::io::Write;

use colloquy_ports::{ChatRequest, LlmClient, LlmError, PromptMessage, PromptRole};

use crate::upstream::{generate, Attempt, RetryBudget, Sink, Stop};
use crate::{ChatConfig, ChatError};

/// Streams the model's answer to `prompt` into `out`, then a newline.
///
/// When the upstream fails after some text was written and is asked again,
/// the new attempt starts on a line of its own (text written cannot be taken
/// back) and a warning is logged.
///
/// # Errors
/// [`ChatError::ModelUnavailable`] or [`ChatError::ModelFailed`] when the
/// model failed for good; [`ChatError::Unexpected`] when `out` failed.
pub async fn ask(
    llm: &dyn LlmClient,
    config: &ChatConfig,
    prompt: &str,
    out: &mut (impl Write + Send),
) -> Result<(), ChatError> {
    let model = config.reply_model.as_ref().unwrap_or(&config.default_model);
    let request = ChatRequest::new(
        model.as_str(),
        vec![
            PromptMessage::new(PromptRole::System, config.default_system_prompt.clone()),
            PromptMessage::new(PromptRole::User, prompt),
        ],
    );
    let mut sink = Terminal { out };
    let mut budget = RetryBudget::default();
    let attempt = generate(
        llm,
        &config.llm,
        &mut budget,
        &request,
        &mut sink,
        Stop::NEVER,
        config.flush_interval,
    )
    .await;
    match attempt {
        Attempt::Finished(..) => writeln!(sink.out).map_err(|error| unexpected(&error)),
        Attempt::Failed(error) => Err(error.into()),
        Attempt::Stopped(_) => Err(ChatError::Unexpected(anyhow::anyhow!(
            "the answer was stopped"
        ))),
    }
}

/// Writes each piece of text as it comes.
struct Terminal<'a, W> {
    out: &'a mut W,
}

impl<W: Write + Send> Sink for Terminal<'_, W> {
    async fn delta(&mut self, text: String) -> Result<(), LlmError> {
        self.out
            .write_all(text.as_bytes())
            .and_then(|()| self.out.flush())
            .map_err(|error| LlmError::Internal {
                message: format!("could not write the answer: {error}"),
            })
    }

    async fn reset(&mut self) {
        tracing::warn!("the model's answer broke off; it starts over on a new line");
        let _ = writeln!(self.out).and_then(|()| self.out.flush());
    }
}

fn unexpected(error: &std::io::Error) -> ChatError {
    ChatError::Unexpected(anyhow::anyhow!("could not write the answer: {error}"))
}
