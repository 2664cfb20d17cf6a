//! The whole chat flow, end to end.

use std::time::Duration;

use colloquy_fake_upstream::Behaviour;
use serde_json::{json, Value};

use crate::support::{spawn_app, start_on, text_of};

#[tokio::test]
async fn a_streamed_reply_adds_up_to_the_stored_message() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text("Hello there, I am a fake model.").pace(Duration::from_millis(2)));
    let session = app.new_session().await;

    let (events, last) = app.chat(&session, "hey who are you?").await;
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    assert_eq!(names[..2], ["message.created", "message.created"]);
    assert_eq!(names.last(), Some(&"message.completed"));
    assert!(names[2..names.len() - 1]
        .iter()
        .all(|n| *n == "message.delta"));
    let ids: Vec<u64> = events
        .iter()
        .map(|e| e.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "event ids increase");

    assert_eq!(text_of(&events), "Hello there, I am a fake model.");
    assert_eq!(last["content"], "Hello there, I am a fake model.");
    assert_eq!(last["status"], "complete");
    assert_eq!(last["finish_reason"], "stop");
    assert_eq!(last["model"], "fake-model");
    assert!(last["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    assert!(last["completed_at"].is_string());

    let history = app.history(&session).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["role"], "user");
    assert_eq!(history[0]["content"], "hey who are you?");
    assert_eq!(history[0]["status"], "complete");
    assert_eq!(history[1], last, "the stored reply is the one streamed");
}

#[tokio::test]
async fn a_send_without_event_stream_answers_202_and_the_reply_completes() {
    let app = spawn_app().await;
    app.fake.push(Behaviour::text("Accepted and answered."));
    let session = app.new_session().await;
    let response = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{session}/messages")))
        .json(&json!({"content": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user_message"]["content"], "hi");
    assert_eq!(body["user_message"]["status"], "complete");
    assert_eq!(body["assistant_message"]["status"], "streaming");
    assert_eq!(
        body["events_url"],
        format!("/api/v1/sessions/{session}/events")
    );
    let reply_id = body["assistant_message"]["id"].as_str().unwrap();
    let reply = app.stored_final(&session, reply_id).await;
    assert_eq!(reply["content"], "Accepted and answered.");
    assert_eq!(reply["status"], "complete");
}

#[tokio::test]
async fn the_second_turn_sends_the_first_as_context() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    app.fake.push(Behaviour::text("Paris."));
    app.chat(&session, "Capital of France?").await;
    app.fake.push(Behaviour::text("About 2 million."));
    app.chat(&session, "How many people live there?").await;

    let requests = app.fake.requests();
    assert_eq!(requests.len(), 2);
    let second: Vec<(String, String)> = requests[1]
        .messages()
        .iter()
        .map(|m| {
            (
                m["role"].as_str().unwrap().to_owned(),
                m["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(second[0].0, "system");
    assert_eq!(
        second[1..],
        [
            ("user".to_owned(), "Capital of France?".to_owned()),
            ("assistant".to_owned(), "Paris.".to_owned()),
            ("user".to_owned(), "How many people live there?".to_owned()),
        ]
    );
    assert_eq!(requests[1].body["model"], "fake-model");
    assert_eq!(requests[1].body["stream"], true);
    assert_eq!(requests[1].header("authorization"), Some("Bearer sk-test"));

    let history = app.history(&session).await;
    let statuses: Vec<&str> = history
        .iter()
        .map(|m| m["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["complete"; 4]);
    let session_now: Value = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{session}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(session_now["message_count"], 4);
}

#[tokio::test]
async fn sessions_are_listed_newest_first_in_pages() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for n in 0..5 {
        ids.push(
            app.create_session(json!({"title": format!("chat {n}")}))
                .await["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    ids.reverse();
    let page: Value = app
        .http
        .get(app.url("/api/v1/sessions?limit=3"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let first: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(first, ids[..3]);
    assert_eq!(page["has_more"], true);
    let next: Value = app
        .http
        .get(app.url(&format!("/api/v1/sessions?limit=3&after={}", first[2])))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let rest: Vec<&str> = next["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(rest, ids[3..]);
    assert_eq!(next["has_more"], false);
}

#[tokio::test]
async fn sessions_can_be_read_renamed_and_deleted() {
    let app = spawn_app().await;
    let created = app
        .create_session(
            json!({"title": "Draft", "system_prompt": "Be terse.", "model": "other-model"}),
        )
        .await;
    let id = created["id"].as_str().unwrap();
    assert_eq!(created["title"], "Draft");
    assert_eq!(created["system_prompt"], "Be terse.");
    assert_eq!(created["model"], "other-model");

    let response = app
        .http
        .patch(app.url(&format!("/api/v1/sessions/{id}")))
        .json(&json!({"title": "Final", "system_prompt": null}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let patched: Value = response.json().await.unwrap();
    assert_eq!(patched["title"], "Final");
    assert_eq!(patched["system_prompt"], Value::Null);
    assert_eq!(patched["model"], "other-model", "fields left out stay");

    let deleted = app
        .http
        .delete(app.url(&format!("/api/v1/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let gone = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    let history = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{id}/messages")))
        .send()
        .await
        .unwrap();
    assert_eq!(history.status(), 404);
}

#[tokio::test]
async fn created_sessions_have_a_location_and_an_optional_body() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/api/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let session: Value = response.json().await.unwrap();
    assert_eq!(
        location,
        format!("/api/v1/sessions/{}", session["id"].as_str().unwrap())
    );
    assert_eq!(session["model"], "fake-model");
    assert_eq!(session["message_count"], 0);
    assert_eq!(session["title"], Value::Null);
}

#[tokio::test]
async fn history_survives_a_restart_on_the_same_database() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    app.fake.push(Behaviour::text("Remember me."));
    app.chat(&session, "first").await;
    let before = app.history(&session).await;
    app.stop().await;

    let restarted = start_on(app.fake, app.db_dir, &[]).await;
    assert_eq!(restarted.history(&session).await, before);
    restarted.fake.push(Behaviour::text("Still here."));
    let (_, last) = restarted.chat(&session, "second").await;
    assert_eq!(last["content"], "Still here.");
    assert_eq!(restarted.history(&session).await.len(), 4);
}

#[tokio::test]
async fn history_pages_with_after_and_limit() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    for turn in 0..3 {
        app.fake.push(Behaviour::text(format!("answer {turn}")));
        app.chat(&session, &format!("question {turn}")).await;
    }
    let all = app.branch(&session, None).await;
    let page: Value = app
        .http
        .get(app.url(&format!(
            "/api/v1/sessions/{session}/messages?limit=2&after={}",
            all[1]["id"].as_str().unwrap()
        )))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["data"].as_array().unwrap()[..], all[2..4]);
    assert_eq!(page["has_more"], true);
}

#[tokio::test]
async fn health_and_readiness_answer() {
    let app = spawn_app().await;
    for path in ["/healthz", "/readyz"] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
    }
}
