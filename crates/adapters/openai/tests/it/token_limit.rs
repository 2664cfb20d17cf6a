//! A reply's token limit: the field it goes in, and a reply cut there.

use colloquy_domain::Usage;
use colloquy_fake_upstream::{Behaviour, FakeUpstream};
use colloquy_openai::{OpenAiClient, OpenAiConfig, TokenLimitField};
use colloquy_ports::ChatRequest;
use serde_json::{json, Value};

use crate::{ask, client, drain, open, text_and_end};

fn limited(question: &str, max_tokens: u32) -> ChatRequest {
    let mut request = ask(question);
    request.max_tokens = Some(max_tokens);
    request
}

/// The token-limit fields of the one recorded request.
fn limit_fields(fake: &FakeUpstream) -> (Value, Value) {
    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    (
        sent[0].body["max_tokens"].clone(),
        sent[0].body["max_completion_tokens"].clone(),
    )
}

#[tokio::test]
async fn a_compatible_server_gets_max_tokens_and_the_reply_ends_there_with_length() {
    // The fake listens on 127.0.0.1, as Ollama, vLLM or llama.cpp would.
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("one two three four five six"));

    let (deltas, end) = text_and_end(drain(open(&client(&fake), limited("Count", 4)).await).await);

    assert_eq!(limit_fields(&fake), (json!(4), Value::Null));
    assert_eq!(deltas, ["one ", "two ", "three ", "four "]);
    let end = end.expect("a finished reply");
    assert_eq!(end.finish_reason, "length");
    assert_eq!(
        end.usage,
        Some(Usage {
            prompt_tokens: 1,
            completion_tokens: 4
        })
    );
}

#[tokio::test]
async fn a_gateway_to_openai_can_be_told_to_send_max_completion_tokens() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("one two three four five six"));
    let client = OpenAiClient::new(OpenAiConfig {
        base_url: fake.base_url(),
        token_limit_field: Some(TokenLimitField::MaxCompletionTokens),
        ..OpenAiConfig::default()
    })
    .expect("a valid config");

    let (deltas, end) = text_and_end(drain(open(&client, limited("Count", 2)).await).await);

    // Alone: OpenAI refuses a request that carries both fields.
    assert_eq!(limit_fields(&fake), (Value::Null, json!(2)));
    assert_eq!(deltas, ["one ", "two "]);
    assert_eq!(end.expect("a finished reply").finish_reason, "length");
}

#[tokio::test]
async fn a_reply_shorter_than_its_limit_finishes_as_it_would_without_one() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("one two three"));

    let (deltas, end) = text_and_end(drain(open(&client(&fake), limited("Count", 3)).await).await);

    assert_eq!(limit_fields(&fake), (json!(3), Value::Null));
    assert_eq!(deltas.concat(), "one two three");
    assert_eq!(end.expect("a finished reply").finish_reason, "stop");
}
