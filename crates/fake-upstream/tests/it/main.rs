//! The fake's own wire format, for what the OpenAI adapter's tests do not
//! reach: raw SSE bytes, non-streaming answers, routing and the default.

use std::time::Duration;

use colloquy_fake_upstream::{Behaviour, FakeUpstream, Outcome, ScriptedToolCall};
use serde_json::{json, Value};

async fn post(fake: &FakeUpstream, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .json(body)
        .send()
        .await
        .expect("the fake answers")
}

/// The `data:` payloads of an SSE body.
fn payloads(body: &str) -> Vec<&str> {
    body.split("\n\n")
        .filter(|event| !event.is_empty())
        .map(|event| event.strip_prefix("data: ").expect("only data lines"))
        .collect()
}

#[tokio::test]
async fn a_streamed_reply_is_openai_sse_with_a_usage_chunk_only_when_asked() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("Hi there"))
        .push(Behaviour::text("Hi there"));
    let mut request = json!({
        "model": "m",
        "stream": true,
        "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "12345678"}],
    });

    let response = post(&fake, &request).await;
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let body = response.text().await.expect("a complete body");
    let events = payloads(&body);

    assert_eq!(events.len(), 6, "{body}");
    let chunks: Vec<Value> = events[..5]
        .iter()
        .map(|e| serde_json::from_str(e).expect("JSON"))
        .collect();
    assert!(chunks
        .iter()
        .all(|c| c["object"] == "chat.completion.chunk" && c["model"] == "m"));
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": ""})
    );
    assert_eq!(chunks[1]["choices"][0]["delta"], json!({"content": "Hi "}));
    assert_eq!(
        chunks[2]["choices"][0]["delta"],
        json!({"content": "there"})
    );
    assert_eq!(chunks[3]["choices"][0]["finish_reason"], "stop");
    assert_eq!(chunks[4]["choices"], json!([]));
    assert_eq!(
        chunks[4]["usage"],
        json!({"prompt_tokens": 2, "completion_tokens": 2, "total_tokens": 4})
    );
    assert_eq!(events[5], "[DONE]");

    request["stream_options"]["include_usage"] = json!(false);
    let body = post(&fake, &request)
        .await
        .text()
        .await
        .expect("a complete body");
    assert!(!body.contains("usage"), "{body}");
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
}

#[tokio::test]
async fn a_non_streaming_request_gets_one_completion() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::json(&json!({"title": "Rust"})))
        .push(Behaviour::tool_calls([ScriptedToolCall::new(
            "call_1", "f", "{}",
        )]));
    let request = json!({"model": "m", "messages": [{"role": "user", "content": "Name it"}]});

    let completion: Value = post(&fake, &request).await.json().await.expect("JSON");
    assert_eq!(completion["object"], "chat.completion");
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        r#"{"title":"Rust"}"#
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "stop");
    assert_eq!(completion["usage"]["completion_tokens"], 1);

    let completion: Value = post(&fake, &request).await.json().await.expect("JSON");
    let message = &completion["choices"][0]["message"];
    assert_eq!(message["content"], Value::Null);
    assert_eq!(
        message["tool_calls"],
        json!([{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}])
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "tool_calls");
}

#[tokio::test]
async fn the_default_echoes_once_the_queue_is_empty_and_every_request_is_recorded() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::status(503).retry_after(1));
    let request = json!({"model": "m", "messages": [
        {"role": "user", "content": "first"},
        {"role": "assistant", "content": "ok"},
        {"role": "user", "content": "second"},
    ]});

    let refused = post(&fake, &request).await;
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let completion: Value = post(&fake, &request).await.json().await.expect("JSON");
    assert_eq!(
        completion["choices"][0]["message"]["content"],
        "Echo: second"
    );
    let unknown = reqwest::get(format!("{}/models", fake.base_url()))
        .await
        .expect("the fake answers");
    assert_eq!(unknown.status(), 404);

    let requests = fake.requests();
    assert_eq!(fake.request_count(), 3);
    assert_eq!(
        requests
            .iter()
            .map(|r| (r.method.as_str(), r.path.as_str()))
            .collect::<Vec<_>>(),
        [
            ("POST", "/v1/chat/completions"),
            ("POST", "/v1/chat/completions"),
            ("GET", "/v1/models")
        ]
    );
    assert_eq!(requests[0].messages().len(), 3);
    assert!(requests[0].received_at <= requests[1].received_at);
    // The outcome is set just after the last byte is written.
    let served = fake.wait_until(Duration::from_secs(5), |r| {
        r.iter().all(|r| r.outcome == Outcome::Served)
    });
    assert!(served.await);
}

#[tokio::test]
async fn a_token_limit_cuts_the_reply_and_finishes_it_with_length() {
    let fake = FakeUpstream::start().await;
    fake.set_default(Behaviour::text("one two three four"));
    let mut request = json!({
        "model": "m",
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": 2,
        "messages": [{"role": "user", "content": "Count"}],
    });

    let body = post(&fake, &request).await.text().await.expect("a body");
    let events = payloads(&body);
    let chunks: Vec<Value> = events[..events.len() - 1]
        .iter()
        .map(|e| serde_json::from_str(e).expect("JSON"))
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, "one two ");
    assert_eq!(
        chunks[chunks.len() - 2]["choices"][0]["finish_reason"],
        "length"
    );
    assert_eq!(chunks[chunks.len() - 1]["usage"]["completion_tokens"], 2);
    assert_eq!(events[events.len() - 1], "[DONE]");

    // OpenAI's own field works the same, and the smaller of the two wins.
    request["max_completion_tokens"] = json!(1);
    let body = post(&fake, &request).await.text().await.expect("a body");
    assert!(body.contains(r#""content":"one ""#), "{body}");
    assert!(!body.contains("two"), "{body}");
    assert!(body.contains(r#""finish_reason":"length""#), "{body}");

    // A limit the reply stays within changes nothing.
    request["max_completion_tokens"] = json!(4);
    request["max_tokens"] = json!(4);
    let body = post(&fake, &request).await.text().await.expect("a body");
    assert!(body.contains(r#""content":"four""#), "{body}");
    assert!(body.contains(r#""finish_reason":"stop""#), "{body}");
}

#[tokio::test]
async fn a_token_limit_cuts_a_non_streamed_reply_inside_its_tool_call() {
    let fake = FakeUpstream::start().await;
    // Three text chunks, then the arguments in four fragments: `{"q`, `":"`,
    // `rus`, `t"}`.
    fake.push(
        Behaviour::text("Let me look ")
            .tool_call(ScriptedToolCall::new("call_1", "lookup", r#"{"q":"rust"}"#).split(4)),
    );
    let request = json!({
        "model": "m",
        "max_completion_tokens": 4,
        "messages": [{"role": "user", "content": "Find rust"}],
    });

    let completion: Value = post(&fake, &request).await.json().await.expect("JSON");

    let message = &completion["choices"][0]["message"];
    assert_eq!(message["content"], "Let me look ");
    assert_eq!(
        message["tool_calls"],
        json!([{"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": "{\"q"}}])
    );
    assert_eq!(completion["choices"][0]["finish_reason"], "length");
    assert_eq!(completion["usage"]["completion_tokens"], 4);
}
