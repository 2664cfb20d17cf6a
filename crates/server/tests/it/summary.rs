//! `GET /api/v1/sessions/{id}/summary` over real HTTP.

use colloquy_fake_upstream::Behaviour;
use serde_json::{json, Value};

use crate::support::{spawn_app, TestApp};

fn prose() -> Value {
    json!({
        "summary": "The user asked for two greetings.",
        "highlights": ["Two greetings were exchanged"],
        "topics": ["greetings"]
    })
}

async fn summary(app: &TestApp, session: &str) -> reqwest::Response {
    app.http
        .get(app.url(&format!("/api/v1/sessions/{session}/summary")))
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn the_counts_and_usage_equal_the_stored_history_and_are_cached_until_it_changes() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    app.chat(&session, "hello").await;
    app.chat(&session, "hello again").await;
    app.fake.push(Behaviour::json(&prose()));

    let response = summary(&app, &session).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let history = app.history(&session).await;
    let sum = |field: &str| {
        history
            .iter()
            .filter_map(|m| m["usage"][field].as_u64())
            .sum::<u64>()
    };
    assert_eq!(body["session_id"], session.as_str());
    assert_eq!(
        body["message_count"],
        json!({"user": 2, "assistant": 2, "total": 4})
    );
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": sum("prompt_tokens"), "completion_tokens": sum("completion_tokens")})
    );
    assert_eq!(body["first_message_at"], history[0]["created_at"]);
    assert_eq!(body["last_message_at"], history[3]["created_at"]);
    assert_eq!(body["summary"], prose()["summary"]);
    assert_eq!(body["highlights"], prose()["highlights"]);
    assert_eq!(body["topics"], prose()["topics"]);
    let asked = &app.fake.requests()[2].body;
    assert_eq!(
        asked["response_format"]["json_schema"]["name"],
        "session_summary"
    );

    let again: Value = summary(&app, &session).await.json().await.unwrap();
    assert_eq!(again, body);
    assert_eq!(
        app.fake.requests().len(),
        3,
        "the second summary came from the cache"
    );

    app.chat(&session, "one more").await;
    app.fake.push(Behaviour::json(&prose()));
    let changed: Value = summary(&app, &session).await.json().await.unwrap();
    assert_eq!(changed["message_count"]["total"], 6);
    assert_eq!(
        app.fake.requests().len(),
        5,
        "a new message means a new summary"
    );
}

#[tokio::test]
async fn junk_from_the_model_is_refused_with_a_502_problem() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    app.chat(&session, "hello").await;
    for junk in [
        Behaviour::text("Here is a summary: it went fine."),
        Behaviour::json(&json!({"summary": "ok", "highlights": ["a"]})),
        Behaviour::json(&json!({"summary": "  ", "highlights": [], "topics": []})),
        Behaviour::json(&json!({"summary": "ok", "highlights": ["a\nb"], "topics": []})),
    ] {
        app.fake.push(junk);
        let response = summary(&app, &session).await;
        assert_eq!(response.status(), 502);
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: Value = response.json().await.unwrap();
        assert_eq!(problem["type"], "urn:colloquy:problem:model-failed");
        assert!(
            problem["detail"].as_str().unwrap().contains("refused"),
            "{problem}"
        );
        assert!(
            problem.get("summary").is_none(),
            "never a half-filled summary"
        );
    }
}

#[tokio::test]
async fn an_unreachable_model_is_a_503_and_an_unknown_session_a_404() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    app.chat(&session, "hello").await;
    app.fake.set_default(Behaviour::status(503));
    let response = summary(&app, &session).await;
    assert_eq!(response.status(), 503);
    let problem: Value = response.json().await.unwrap();
    assert_eq!(problem["type"], "urn:colloquy:problem:model-unavailable");

    let missing = summary(&app, "0190b5f4-3c36-7d3e-9c53-1c2a6f0e1b2c").await;
    assert_eq!(missing.status(), 404);
}
