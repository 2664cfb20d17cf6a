//! The original assignment's four routes drive a whole turn, sharing the
//! `/api/v1` handlers.

use colloquy_fake_upstream::Behaviour;
use serde_json::{json, Value};

use crate::support::{as_stored, spawn_app, text_of, SseReader};

#[tokio::test]
async fn the_assignments_routes_create_send_receive_and_read_history() {
    let app = spawn_app().await;
    let response = app
        .http
        .post(app.url("/api/create_session"))
        .json(&json!({"title": "Old client"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let session: Value = response.json().await.unwrap();
    let id = session["id"].as_str().unwrap().to_owned();
    assert_eq!(session["session_id"], id.as_str());
    assert_eq!(session["title"], "Old client");
    assert_eq!(session["message_count"], 0);

    // The receiver connects first, as the assignment's client does.
    let mut receiver = SseReader::new(
        app.http
            .get(app.url(&format!("/api/chat/receive/{id}")))
            .send()
            .await
            .unwrap(),
    );
    app.fake.push(Behaviour::text("Hello from the old routes."));
    let response = app
        .http
        .post(app.url(&format!("/api/chat/send/{id}")))
        .json(&json!({"message": "hello?"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let accepted: Value = response.json().await.unwrap();
    assert_eq!(accepted["user_message"]["content"], "hello?");
    let reply_id = accepted["assistant_message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let user = receiver.next().await.unwrap();
    assert_eq!(
        (user.event.as_str(), user.data["role"].as_str()),
        ("message.created", Some("user"))
    );
    let events = receiver.until_reply_ends(&reply_id).await;
    assert_eq!(text_of(&events), "Hello from the old routes.");
    let last = &events.last().unwrap().data;
    assert_eq!(last["status"], "complete");

    let response = app
        .http
        .get(app.url(&format!("/api/history/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let history: Value = response.json().await.unwrap();
    let messages = history["data"].as_array().unwrap();
    assert_eq!(messages.len(), 2);
    assert_eq!(messages[0]["content"], "hello?");
    assert_eq!(
        &as_stored(&messages[1]),
        last,
        "the stored reply is the one received"
    );
    assert_eq!(history["has_more"], false);
}

#[tokio::test]
async fn the_assignments_send_takes_content_too_and_streams_when_asked() {
    let app = spawn_app().await;
    let session: Value = app
        .http
        .post(app.url("/api/create_session"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = session["session_id"].as_str().unwrap();
    app.fake.push(Behaviour::text("Streamed."));
    let response = app
        .http
        .post(app.url(&format!("/api/chat/send/{id}")))
        .header("Accept", "text/event-stream")
        .json(&json!({"content": "stream it"}))
        .send()
        .await
        .unwrap();
    let mut reader = SseReader::new(response);
    let mut events = Vec::new();
    while let Some(event) = reader.next().await {
        events.push(event);
    }
    assert_eq!(events.last().unwrap().event, "message.completed");
    assert_eq!(text_of(&events), "Streamed.");

    let blank = app
        .http
        .post(app.url(&format!("/api/chat/send/{id}")))
        .json(&json!({"message": "  "}))
        .send()
        .await
        .unwrap();
    assert_eq!(blank.status(), 422);
    let unknown = app
        .http
        .get(app.url("/api/history/01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f"))
        .send()
        .await
        .unwrap();
    assert_eq!(unknown.status(), 404);
    assert_eq!(
        unknown.headers()["content-type"],
        "application/problem+json"
    );
}
