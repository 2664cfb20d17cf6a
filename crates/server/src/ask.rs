//! `colloquy ask "…"`: one prompt, the reply streamed to stdout, no server.

use std::io::Write;

use anyhow::{anyhow, Context};
use colloquy_ports::{ChatChunk, ChatRequest, LlmError, PromptMessage, PromptRole};
use futures::StreamExt;
use tokio::time::timeout;

use crate::application::language_model;
use crate::Config;

/// Streams the model's reply to `prompt` into `out`, retrying as the server
/// would before the first word arrives.
///
/// # Errors
/// The upstream failed for good, or `out` could not be written.
pub async fn ask(config: &Config, prompt: &str, out: &mut impl Write) -> anyhow::Result<()> {
    let llm = language_model(config)?;
    let chat = config.chat_config();
    let model = chat
        .reply_model
        .clone()
        .unwrap_or_else(|| config.default_model.clone());
    let request = ChatRequest::new(
        model.as_str(),
        vec![
            PromptMessage::new(PromptRole::System, chat.default_system_prompt.clone()),
            PromptMessage::new(PromptRole::User, prompt),
        ],
    );

    let mut retries = 0;
    let mut stream = loop {
        let error = match timeout(
            chat.llm.first_chunk_timeout,
            llm.stream_chat(request.clone()),
        )
        .await
        {
            Ok(Ok(stream)) => break stream,
            Ok(Err(error)) => error,
            Err(_) => LlmError::Timeout {
                message: "no response in time".to_owned(),
            },
        };
        retries += 1;
        let Some(wait) = chat.llm.retry_delay(retries, &error) else {
            return Err(anyhow!(error));
        };
        tracing::warn!(%error, wait_ms = wait.as_millis(), "retrying");
        tokio::time::sleep(wait).await;
    };

    loop {
        let next = timeout(chat.llm.idle_timeout, stream.next())
            .await
            .map_err(|_| {
                anyhow!(
                    "the model went quiet for {} s",
                    chat.llm.idle_timeout.as_secs()
                )
            })?;
        match next {
            Some(Ok(ChatChunk::Delta(text))) => {
                out.write_all(text.as_bytes())?;
                out.flush()?;
            }
            Some(Ok(ChatChunk::ToolCall(_))) => {}
            Some(Ok(ChatChunk::Finished(_))) => break,
            Some(Err(error)) => return Err(anyhow!(error)).context("the reply broke off"),
            None => return Err(anyhow!("the reply ended before it was finished")),
        }
    }
    writeln!(out)?;
    Ok(())
}
