//! Search, export and import over real HTTP: full-text search (every word,
//! marked hits, scoped to the caller, never a deleted session, every
//! branch; `search.rs`), export → import → export giving the same tree on
//! SQLite and PostgreSQL and the Markdown transcript (`round_trip.rs`), and
//! imports of a ChatGPT conversation and of bodies that are not
//! conversations, which store nothing (`imports.rs`).

mod imports;
mod round_trip;
mod search;

use std::collections::HashMap;
use std::time::Duration;

use colloquy_fake_upstream::Behaviour;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::assistants::{call, create_assistant, id_of};
use crate::support::TestApp;

/// `POST /api/v1/sessions/import` with `body` as JSON, as `bearer`.
async fn import(app: &TestApp, body: &Value, bearer: Option<&str>) -> (StatusCode, Value) {
    call(
        app,
        Method::POST,
        "/api/v1/sessions/import",
        bearer,
        Some(body),
    )
    .await
}

/// `GET …/export` with `format` (none: the default), as `bearer`.
async fn export(
    app: &TestApp,
    session: &str,
    format: Option<&str>,
    bearer: Option<&str>,
) -> reqwest::Response {
    let mut url = app.url(&format!("/api/v1/sessions/{session}/export"));
    if let Some(format) = format {
        url.push_str(&format!("?format={format}"));
    }
    let mut request = app.http.get(url);
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    request.send().await.unwrap()
}

/// The `colloquy.v1` export of `session`.
async fn export_json(app: &TestApp, session: &str) -> Value {
    let response = export(app, session, None, None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

/// `GET /api/v1/search?q=…` (`extra` appended as is): the status and body.
async fn search(
    app: &TestApp,
    query: &str,
    extra: &str,
    bearer: Option<&str>,
) -> (StatusCode, Value) {
    let path = format!("/api/v1/search?q={}{extra}", url_encoded(query));
    call(app, Method::GET, &path, bearer, None).await
}

fn url_encoded(text: &str) -> String {
    text.bytes()
        .map(|byte| match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                char::from(byte).to_string()
            }
            other => format!("%{other:02X}"),
        })
        .collect()
}

/// The ids of the caller's sessions (all of them: tests make few).
async fn session_ids(app: &TestApp, bearer: Option<&str>) -> Vec<String> {
    let (status, page) = call(app, Method::GET, "/api/v1/sessions?limit=100", bearer, None).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    page["data"].as_array().unwrap().iter().map(id_of).collect()
}

/// Waits for the reply a `202` announced to be final.
async fn settled(app: &TestApp, session: &str, accepted: &Value) -> Value {
    app.stored_final(session, &id_of(&accepted["assistant_message"]))
        .await
}

/// A conversation worth moving: a title and a system prompt, a reply
/// regenerated, a named assistant's reply, a reply cancelled midway, and a
/// question edited; its head is the cancelled reply's branch, not the
/// newest leaf. Returns the session's id.
async fn conversation_with_branches(app: &TestApp) -> String {
    let guide = create_assistant(app, json!({"name": "Guide", "model": "guide-model"})).await;
    let session = app
        .create_session(json!({"title": "Lisbon by tram", "system_prompt": "Be brief."}))
        .await;
    let session = id_of(&session);
    app.fake
        .push(Behaviour::text("Tram 28 climbs to the castle."));
    let (_, first) = app.chat(&session, "Which tram goes to the castle?").await;
    app.fake.push(Behaviour::text("Tram 12 loops around it."));
    let (status, again) = call(
        app,
        Method::POST,
        &format!(
            "/api/v1/sessions/{session}/messages/{}/regenerate",
            id_of(&first)
        ),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    settled(app, &session, &again).await;
    app.fake
        .push(Behaviour::text("About twenty minutes, end to end."));
    let (status, guided) = call(
        app,
        Method::POST,
        &format!("/api/v1/sessions/{session}/messages"),
        None,
        Some(&json!({"content": "How long is the ride?", "assistant_ids": [id_of(&guide)]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{guided}");
    settled(app, &session, &guided).await;
    app.fake.push(
        Behaviour::text("First the cathedral, then the viewpoint, then the castle walls")
            .pace(Duration::from_millis(150)),
    );
    let long = app.send_accepted(&session, "Tell me every stop.").await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let (status, _) = call(
        app,
        Method::POST,
        &format!("/api/v1/sessions/{session}/cancel"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let cancelled = settled(app, &session, &long).await;
    assert_eq!(cancelled["status"], "cancelled");
    app.fake.push(Behaviour::text("Yes, in summer."));
    let (status, edited) = call(
        app,
        Method::POST,
        &format!(
            "/api/v1/sessions/{session}/messages/{}/edit",
            id_of(&guided["user_message"])
        ),
        None,
        Some(&json!({"content": "Is it crowded?"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{edited}");
    settled(app, &session, &edited).await;
    let (status, switched) = call(
        app,
        Method::PATCH,
        &format!("/api/v1/sessions/{session}"),
        None,
        Some(&json!({"head_message_id": id_of(&cancelled)})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{switched}");
    assert_eq!(switched["message_count"], 6);
    session
}

/// What an export says, without the ids the service gives: each message's
/// fields, its parent by position, in the order of their times (which an
/// import keeps), and the session's settings and head by position.
fn canonical(export: &Value) -> Value {
    assert_eq!(export["format"], "colloquy.v1");
    let mut messages: Vec<&Value> = export["messages"].as_array().unwrap().iter().collect();
    messages.sort_by_key(|message| {
        (
            message["created_at"].as_str().unwrap().to_owned(),
            message["role"].as_str().unwrap().to_owned(),
            message["content"].as_str().unwrap().to_owned(),
        )
    });
    let position: HashMap<&str, usize> = messages
        .iter()
        .enumerate()
        .map(|(index, message)| (message["id"].as_str().unwrap(), index))
        .collect();
    let at = |id: &Value| id.as_str().map(|id| position[id]);
    let tree: Vec<Value> = messages
        .iter()
        .map(|message| {
            let mut kept = json!({
                "parent": at(&message["parent_id"]),
                "by_an_assistant": !message["assistant_id"].is_null(),
            });
            for field in [
                "role",
                "content",
                "status",
                "model",
                "finish_reason",
                "usage",
                "error",
                "tool_calls",
                "name",
                "created_at",
                "completed_at",
            ] {
                kept[field] = message.get(field).cloned().unwrap_or(Value::Null);
            }
            kept
        })
        .collect();
    let session = &export["session"];
    json!({
        "title": session["title"],
        "system_prompt": session["system_prompt"],
        "model": session["model"],
        "created_at": session["created_at"],
        "message_count": session["message_count"],
        "head": at(&session["head_message_id"]),
        "messages": tree,
    })
}
