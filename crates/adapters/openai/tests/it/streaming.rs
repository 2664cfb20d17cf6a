//! Replies that succeed, and what the adapter sends to get them.

use colloquy_domain::Usage;
use colloquy_fake_upstream::{Behaviour, FakeUpstream, ScriptedToolCall};
use colloquy_openai::{OpenAiClient, OpenAiConfig};
use colloquy_ports::{
    ChatChunk, ChatRequest, Completion, PromptMessage, PromptRole, ResponseFormat, ToolCallDelta,
    ToolCallRequest, ToolSpec,
};
use serde_json::json;

use crate::{ask, client, drain, open, text_and_end};

#[tokio::test]
async fn deltas_join_to_the_scripted_text_and_the_end_carries_reason_and_usage() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("The quick brown fox jumps").split(5));
    let request = ChatRequest::new(
        "gpt-test",
        vec![
            PromptMessage::new(PromptRole::System, "Be brief."),
            PromptMessage::new(PromptRole::User, "Say something."),
        ],
    );

    let (deltas, end) = text_and_end(drain(open(&client(&fake), request).await).await);

    // Five chunks as scripted, the role chunk's empty content skipped.
    assert_eq!(deltas, ["The q", "uick ", "brown", " fox ", "jumps"]);
    assert_eq!(
        end,
        Ok(Completion {
            finish_reason: "stop".to_owned(),
            // The fake's rule: 23 characters of prompt / 4, one token a chunk.
            usage: Some(Usage {
                prompt_tokens: 5,
                completion_tokens: 5
            }),
        })
    );
}

#[tokio::test]
async fn empty_chunks_are_skipped_and_the_upstream_finish_reason_is_kept() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::chunks(["Once", "", " upon"]).finish_reason("length"));

    let (deltas, end) = text_and_end(drain(open(&client(&fake), ask("Tell a story")).await).await);

    assert_eq!(deltas, ["Once", " upon"]);
    assert_eq!(end.expect("a finished reply").finish_reason, "length");
}

#[tokio::test]
async fn the_request_is_the_documented_json_with_a_bearer_token() {
    let fake = FakeUpstream::start().await;
    let mut request = ChatRequest::new(
        "gpt-test",
        vec![
            PromptMessage::new(PromptRole::System, "You are terse."),
            PromptMessage::new(PromptRole::User, "Weather in Paris?"),
            PromptMessage {
                name: Some("Critic".to_owned()),
                ..PromptMessage::new(PromptRole::User, "Critic: Ask about Lyon too.")
            },
            PromptMessage {
                tool_calls: vec![ToolCallRequest {
                    id: "call_1".to_owned(),
                    name: "weather".to_owned(),
                    arguments: r#"{"city":"Paris"}"#.to_owned(),
                }],
                ..PromptMessage::new(PromptRole::Assistant, "")
            },
            PromptMessage {
                tool_call_id: Some("call_1".to_owned()),
                ..PromptMessage::new(PromptRole::Tool, "18°C, clear")
            },
        ],
    );
    request.tools = vec![ToolSpec {
        name: "weather".to_owned(),
        description: "Current weather in a city".to_owned(),
        parameters: r#"{"type":"object","properties":{"city":{"type":"string"}}}"#.to_owned(),
    }];
    request.response_format = Some(ResponseFormat::JsonSchema {
        name: "forecast".to_owned(),
        schema: r#"{"type":"object","properties":{"summary":{"type":"string"}}}"#.to_owned(),
    });

    drain(open(&client(&fake), request).await).await;

    let sent = fake.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].method, "POST");
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(sent[0].header("authorization"), Some("Bearer sk-test"));
    assert_eq!(sent[0].header("content-type"), Some("application/json"));
    assert_eq!(sent[0].header("accept"), Some("text/event-stream"));
    assert_eq!(
        sent[0].body,
        json!({
            "model": "gpt-test",
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "user", "content": "Critic: Ask about Lyon too.", "name": "Critic"},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}
                ]},
                {"role": "tool", "content": "18°C, clear", "tool_call_id": "call_1"},
            ],
            "stream": true,
            "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {
                "name": "weather",
                "description": "Current weather in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            }}],
            "response_format": {"type": "json_schema", "json_schema": {
                "name": "forecast",
                "schema": {"type": "object", "properties": {"summary": {"type": "string"}}},
                "strict": true,
            }},
        })
    );
}

#[tokio::test]
async fn without_a_key_no_authorization_is_sent_and_optional_fields_are_left_out() {
    let fake = FakeUpstream::start().await;
    let client = OpenAiClient::new(OpenAiConfig {
        base_url: format!("{}/", fake.base_url()),
        ..OpenAiConfig::default()
    })
    .expect("a valid config");

    drain(open(&client, ask("Hi")).await).await;

    let sent = fake.requests();
    assert_eq!(sent[0].path, "/v1/chat/completions");
    assert_eq!(sent[0].header("authorization"), None);
    assert_eq!(
        sent[0].body,
        json!({
            "model": "gpt-test",
            "messages": [{"role": "user", "content": "Hi"}],
            "stream": true,
            "stream_options": {"include_usage": true},
        })
    );
}

#[tokio::test]
async fn tool_call_fragments_pass_through_in_order() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::tool_calls([
        ScriptedToolCall::new("call_a", "weather", r#"{"city":"Paris"}"#).split(3),
        ScriptedToolCall::new("call_b", "time", r#"{"tz":"CET"}"#).split(2),
    ]));

    let items = drain(open(&client(&fake), ask("Weather and time?")).await).await;

    let fragment = |index, id: Option<&str>, name: Option<&str>, arguments: &str| {
        Ok(ChatChunk::ToolCall(ToolCallDelta {
            index,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: arguments.to_owned(),
        }))
    };
    assert_eq!(
        items,
        [
            fragment(0, Some("call_a"), Some("weather"), r#"{"cit"#),
            fragment(0, None, None, r#"y":"P"#),
            fragment(0, None, None, r#"aris"}"#),
            fragment(1, Some("call_b"), Some("time"), r#"{"tz":"#),
            fragment(1, None, None, r#""CET"}"#),
            Ok(ChatChunk::Finished(Completion {
                finish_reason: "tool_calls".to_owned(),
                usage: Some(Usage {
                    prompt_tokens: 4,
                    completion_tokens: 5
                }),
            })),
        ]
    );
}

#[tokio::test]
async fn consecutive_calls_reuse_one_pooled_connection() {
    let fake = FakeUpstream::start().await;
    let client = client(&fake);

    for question in ["one", "two", "three"] {
        let (_, end) = text_and_end(drain(open(&client, ask(question)).await).await);
        assert!(end.is_ok(), "{end:?}");
        // hyper hands a connection back to the pool from its own connection
        // task, once that task has seen the end of the body: let it run, as
        // it always does between two real replies.
        tokio::task::yield_now().await;
    }

    let connections: Vec<u64> = fake.requests().iter().map(|r| r.connection).collect();
    assert_eq!(
        connections,
        [0, 0, 0],
        "each finished reply should hand its connection back to the pool"
    );
}

/// A reply sent from another thread gets a connection of that thread: hyper
/// drives a connection on the runtime that opened it, so one shared pool
/// would hand every chunk across threads (see `pool.rs`).
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn each_thread_keeps_its_own_pooled_connections() {
    let fake = FakeUpstream::start().await;
    let client = client(&fake);

    // Each thread runs a single-threaded runtime, as an actix worker does.
    let on_own_runtime =
        |client: OpenAiClient,
         questions: &'static [&'static str],
         before: std::sync::mpsc::Receiver<()>,
         after: std::sync::mpsc::Sender<()>,
         keep_running: tokio::sync::oneshot::Receiver<()>| {
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("a runtime");
                runtime.block_on(async move {
                    before.recv().expect("the go-ahead");
                    for question in questions {
                        let (_, end) =
                            text_and_end(drain(open(&client, ask(question)).await).await);
                        assert!(end.is_ok(), "{end:?}");
                        tokio::task::yield_now().await;
                    }
                    after.send(()).expect("the main thread waits");
                    // Keeps this thread's connections alive and driven while
                    // the other thread sends.
                    let _ = keep_running.await;
                });
            })
        };
    let (start_first, first_may_go) = std::sync::mpsc::channel();
    let (first_done, second_may_go) = std::sync::mpsc::channel();
    let (second_done, both_done) = std::sync::mpsc::channel();
    let (release_first, first_released) = tokio::sync::oneshot::channel();
    let (release_second, second_released) = tokio::sync::oneshot::channel();
    let first = on_own_runtime(
        client.clone(),
        &["one"],
        first_may_go,
        first_done,
        first_released,
    );
    let second = on_own_runtime(
        client,
        &["two", "three"],
        second_may_go,
        second_done,
        second_released,
    );
    start_first.send(()).expect("the first thread waits");
    tokio::task::spawn_blocking(move || both_done.recv_timeout(crate::PATIENCE))
        .await
        .expect("the wait ran")
        .expect("both threads sent their replies");
    let _ = (release_first.send(()), release_second.send(()));
    tokio::task::spawn_blocking(move || (first.join(), second.join()))
        .await
        .map(|(a, b)| a.and(b))
        .expect("the join ran")
        .expect("neither thread panicked");

    let connections: Vec<u64> = fake.requests().iter().map(|r| r.connection).collect();
    assert_eq!(
        connections,
        [0, 1, 1],
        "the second thread should open a connection of its own, then reuse it"
    );
}
