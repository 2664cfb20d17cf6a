//! Upstream failures as the SDK sees them: an HTTP error of the class the
//! SDK acts on when nothing was generated, an error it raises mid-stream
//! otherwise, and what colloquy kept of the reply either way.

use colloquy_fake_upstream::Behaviour;
use serde_json::Value;

use super::{recorded, sdk};
use crate::support::{spawn_app, spawn_app_with, TestApp};

/// A server that gives up on the first failure, so that it reaches the
/// client at once (colloquy's own retries have tests of their own).
async fn without_retries() -> TestApp {
    spawn_app_with(&[("COLLOQUY_LLM_MAX_RETRIES", "0")]).await
}

/// The error object's fields, in OpenAI's shape, whatever their values.
fn assert_openai_shaped(error: &Value) {
    let mut fields: Vec<&str> = error
        .as_object()
        .unwrap_or_else(|| panic!("an error object: {error}"))
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["code", "message", "param", "type"], "{error}");
    assert!(
        !error["message"].as_str().unwrap().is_empty(),
        "the error says what happened: {error}"
    );
}

#[tokio::test]
async fn an_upstream_error_before_the_first_token_raises_the_sdks_matching_error() {
    let app = without_retries().await;
    // The scenario asks twice: whole, then streamed.
    app.fake
        .push(Behaviour::status(500))
        .push(Behaviour::status(429).retry_after(1));

    let failures = sdk(&app, "upstream_error", &["Are you there?"]).await;

    let whole = &failures["whole"];
    assert_eq!(whole["class"], "InternalServerError", "{whole}");
    assert_eq!(whole["status"], 503);
    assert_eq!(whole["code"], "upstream_unavailable");
    assert_eq!(whole["type"], "server_error");
    assert_openai_shaped(&whole["body"]);

    let streamed = &failures["streamed"];
    assert_eq!(streamed["class"], "RateLimitError", "{streamed}");
    assert_eq!(streamed["status"], 429);
    assert_eq!(streamed["code"], "upstream_rate_limited");
    assert_eq!(streamed["type"], "rate_limit_error");
    assert_openai_shaped(&streamed["body"]);

    // Each failed exchange is recorded, and the answer says where.
    for (failure, code) in [
        (whole, "upstream_unavailable"),
        (streamed, "upstream_rate_limited"),
    ] {
        let (session, how) = recorded(&failure["headers"]);
        assert_eq!(how, "started");
        let history = app.history(&session).await;
        assert_eq!(history[0]["content"], "Are you there?");
        assert_eq!(history[1]["status"], "failed", "{history:#?}");
        assert_eq!(history[1]["error"]["code"], code);
        assert_eq!(failure["headers"]["x-colloquy-message"], history[1]["id"]);
    }
}

#[tokio::test]
async fn the_sdks_own_retry_gets_past_a_transient_failure() {
    let app = without_retries().await;
    app.fake.push(Behaviour::status(500));

    let answer = sdk(&app, "retried", &["Try again"]).await;

    assert_eq!(
        answer["completion"]["choices"][0]["message"]["content"],
        "Echo: Try again"
    );
    assert_eq!(app.fake.requests().len(), 2, "the SDK asked again");
    // The retry is a request of its own: it repeats no recorded reply, so
    // it starts a session beside the failed attempt's.
    let (session, how) = recorded(&answer["headers"]);
    assert_eq!(how, "started");
    let history = app.history(&session).await;
    assert_eq!(history.len(), 2, "{history:#?}");
    assert_eq!(history[1]["status"], "complete");
}

#[tokio::test]
async fn a_stream_cut_after_its_first_tokens_raises_in_the_sdk_and_keeps_what_came() {
    let app = without_retries().await;
    app.fake
        .push(Behaviour::text("Half of a reply that never ends").drop_after(3));

    let answer = sdk(&app, "dropped", &["Tell me a long story"]).await;

    assert_eq!(answer["text"], "Half of a ", "what came before the cut");
    let error = &answer["error"];
    assert_eq!(error["class"], "APIError", "{answer}");
    assert_openai_shaped(&error["body"]);
    let code = error["body"]["code"].as_str().unwrap();
    assert!(code.starts_with("upstream_"), "{error}");

    let (session, _) = recorded(&answer["headers"]);
    let history = app.history(&session).await;
    let reply = &history[1];
    assert_eq!(reply["status"], "failed", "{reply}");
    assert_eq!(reply["content"], "Half of a ");
    assert_eq!(reply["error"]["code"], code);
    assert_eq!(error["message"], reply["error"]["message"]);
}

#[tokio::test]
async fn a_stream_colloquy_retries_reaches_the_sdk_whole_and_once() {
    let app = spawn_app().await;
    let text = "Sent twice but seen once";
    app.fake
        .push(Behaviour::text(text).drop_after(2))
        .push(Behaviour::text(text));

    let answer = sdk(&app, "dropped", &["Say it once"]).await;

    assert_eq!(answer["error"], Value::Null, "{answer}");
    assert_eq!(answer["text"], text);
    assert_eq!(app.fake.requests().len(), 2, "colloquy asked again");
    let (session, _) = recorded(&answer["headers"]);
    assert_eq!(app.history(&session).await[1]["content"], text);
}
