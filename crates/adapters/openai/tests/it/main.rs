//! The OpenAI adapter against the fake upstream, over real HTTP.

mod faults;
mod statuses;
mod streaming;
mod token_limit;

use std::time::Duration;

use colloquy_fake_upstream::FakeUpstream;
use colloquy_openai::{ApiKey, OpenAiClient, OpenAiConfig};
use colloquy_ports::{
    ChatChunk, ChatRequest, ChatStream, Completion, LlmError, PromptMessage, PromptRole,
};
use futures::StreamExt as _;

/// Longer than any scripted delay: a test that waits this long is stuck.
const PATIENCE: Duration = Duration::from_secs(5);

fn client(fake: &FakeUpstream) -> OpenAiClient {
    OpenAiClient::new(OpenAiConfig {
        base_url: fake.base_url(),
        api_key: Some(ApiKey::new("sk-test")),
        connect_timeout: Duration::from_secs(2),
        ..OpenAiConfig::default()
    })
    .expect("a valid config")
}

/// A one-question request to `gpt-test`.
fn ask(question: &str) -> ChatRequest {
    ChatRequest::new(
        "gpt-test",
        vec![PromptMessage::new(PromptRole::User, question)],
    )
}

/// Opens a stream, failing the test if the call fails.
async fn open(client: &OpenAiClient, request: ChatRequest) -> ChatStream {
    use colloquy_ports::LlmClient as _;
    match tokio::time::timeout(PATIENCE, client.stream_chat(request)).await {
        Ok(Ok(stream)) => stream,
        Ok(Err(err)) => panic!("the call failed: {err:?}"),
        Err(_) => panic!("the call did not return"),
    }
}

/// The call's error, failing the test if it opened a stream.
async fn open_error(client: &OpenAiClient, request: ChatRequest) -> LlmError {
    use colloquy_ports::LlmClient as _;
    match tokio::time::timeout(PATIENCE, client.stream_chat(request)).await {
        Ok(Ok(_)) => panic!("the call opened a stream"),
        Ok(Err(err)) => err,
        Err(_) => panic!("the call did not return"),
    }
}

/// Every item of a stream up to its end.
async fn drain(mut stream: ChatStream) -> Vec<Result<ChatChunk, LlmError>> {
    let mut items = Vec::new();
    loop {
        match tokio::time::timeout(PATIENCE, stream.next()).await {
            Ok(Some(item)) => items.push(item),
            Ok(None) => return items,
            Err(_) => panic!("the stream stalled after {items:?}"),
        }
    }
}

/// Splits a drained stream into its text deltas and its last item, checking
/// that nothing but deltas came before the last item.
fn text_and_end(
    items: Vec<Result<ChatChunk, LlmError>>,
) -> (Vec<String>, Result<Completion, LlmError>) {
    let mut deltas = Vec::new();
    let mut end = None;
    for item in items {
        assert!(
            end.is_none(),
            "an item followed the end of the stream: {item:?}"
        );
        match item {
            Ok(ChatChunk::Delta(text)) => deltas.push(text),
            Ok(ChatChunk::Finished(completion)) => end = Some(Ok(completion)),
            Err(err) => end = Some(Err(err)),
            Ok(other) => panic!("unexpected item {other:?}"),
        }
    }
    (
        deltas,
        end.expect("the stream ended with neither Finished nor an error"),
    )
}
