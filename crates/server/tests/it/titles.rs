//! Sessions named after their first reply, over real HTTP.

use colloquy_fake_upstream::Behaviour;
use serde_json::{json, Value};

use crate::support::{spawn_app_with, SseReader, TestApp};

async fn titled_app() -> TestApp {
    spawn_app_with(&[("COLLOQUY_AUTO_TITLE", "true")]).await
}

/// Reads `events` until `session.updated`; returns the events before it too.
async fn until_session_updated(events: &mut SseReader) -> (Vec<String>, Value) {
    let mut seen = Vec::new();
    while let Some(event) = events.next().await {
        if event.event == "session.updated" {
            return (seen, event.data);
        }
        seen.push(event.event);
    }
    panic!("the stream ended without session.updated after {seen:?}");
}

#[tokio::test]
async fn a_new_session_gets_the_models_title_after_its_first_reply() {
    let app = titled_app().await;
    app.fake
        .push(Behaviour::text("Feed the starter with rye flour."))
        .push(Behaviour::json(&json!({"title": "Rye sourdough starter"})));
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    let (_, reply) = app
        .chat(&session, "How do I keep a rye sourdough starter alive?")
        .await;

    let (before, updated) = until_session_updated(&mut watcher).await;
    assert_eq!(
        before.last().map(String::as_str),
        Some("message.completed"),
        "the reply is never delayed"
    );
    assert_eq!(updated["title"], "Rye sourdough starter");
    assert_eq!(updated["id"], session.as_str());
    let stored: Value = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{session}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stored["title"], "Rye sourdough starter");

    let asked = &app.fake.requests()[1].body;
    assert_eq!(asked["response_format"]["type"], "json_schema");
    assert_eq!(
        asked["response_format"]["json_schema"]["name"],
        "session_title"
    );
    let messages = asked["messages"].as_array().unwrap();
    assert_eq!(
        messages[1]["content"],
        "How do I keep a rye sourdough starter alive?"
    );
    assert_eq!(messages[2]["content"], reply["content"]);

    // Only the first reply names a session.
    app.chat(&session, "And a wheat one?").await;
    assert_eq!(app.fake.requests().len(), 3);
}

#[tokio::test]
async fn junk_or_a_failing_model_gives_the_first_words_as_the_title() {
    let app = titled_app().await;
    let answers: [Behaviour; 3] = [
        Behaviour::text("Sure! Here is a title: Bread").into(),
        Behaviour::json(&json!({"title": "x".repeat(61)})).into(),
        Behaviour::status(400).into(),
    ];
    for title_answer in answers {
        app.fake
            .push(Behaviour::text("An answer."))
            .push(title_answer);
        let session = app.new_session().await;
        let mut watcher = app.subscribe(&session, None).await;
        app.chat(
            &session,
            "Plan a   week in\nLisbon with two small children, please",
        )
        .await;
        let (_, updated) = until_session_updated(&mut watcher).await;
        assert_eq!(
            updated["title"],
            "Plan a week in Lisbon with two small children, please"
        );
    }
}

#[tokio::test]
async fn the_offline_model_names_and_summarises_sessions_too() {
    let app = spawn_app_with(&[("COLLOQUY_LLM", "offline"), ("COLLOQUY_AUTO_TITLE", "true")]).await;
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    app.chat(
        &session,
        "Which mountains are worth hiking in Norway in September?",
    )
    .await;
    let (_, updated) = until_session_updated(&mut watcher).await;
    assert_eq!(updated["title"], "Which mountains are worth hiking in…");

    let summary: Value = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{session}/summary")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        summary["message_count"],
        json!({"user": 1, "assistant": 1, "total": 2})
    );
    assert!(summary["summary"]
        .as_str()
        .unwrap()
        .contains("Which mountains"));
    assert_eq!(summary["topics"][0], "mountains");
    assert_eq!(app.fake.request_count(), 0, "nothing left the machine");
}
