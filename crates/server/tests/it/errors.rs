//! Every error case of the contract's table, as problem+json.

use std::time::Duration;

use colloquy_fake_upstream::Behaviour;
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::support::{spawn_app, spawn_app_with, TestApp};

/// Asserts a problem+json answer with `status`, and returns its body.
async fn problem(response: Response, status: u16) -> Value {
    assert_eq!(response.status(), status, "{}", response.url());
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(content_type, "application/problem+json");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], status);
    for field in ["type", "title", "detail"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} in {body}"
        );
    }
    body
}

async fn raw(
    app: &TestApp,
    method: Method,
    path: &str,
    content_type: Option<&str>,
    body: &str,
) -> Response {
    let mut request = app
        .http
        .request(method, app.url(path))
        .body(body.to_owned());
    if let Some(content_type) = content_type {
        request = request.header("content-type", content_type);
    }
    request.send().await.unwrap()
}

#[tokio::test]
async fn malformed_json_ids_and_queries_are_400() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    let messages = format!("/api/v1/sessions/{session}/messages");
    problem(
        raw(
            &app,
            Method::POST,
            &messages,
            Some("application/json"),
            "{\"content\": ",
        )
        .await,
        400,
    )
    .await;
    problem(
        raw(
            &app,
            Method::POST,
            "/api/v1/sessions",
            Some("application/json"),
            "{nope}",
        )
        .await,
        400,
    )
    .await;
    problem(
        raw(&app, Method::GET, "/api/v1/sessions/not-a-uuid", None, "").await,
        400,
    )
    .await;
    problem(
        raw(
            &app,
            Method::GET,
            "/api/v1/sessions/not-a-uuid/messages",
            None,
            "",
        )
        .await,
        400,
    )
    .await;
    problem(
        raw(&app, Method::GET, "/api/v1/sessions?after=zzz", None, "").await,
        400,
    )
    .await;
    problem(
        raw(&app, Method::GET, &format!("{messages}?after=12"), None, "").await,
        400,
    )
    .await;
    let events = format!("/api/v1/sessions/{session}/events?last_event_id=abc");
    problem(raw(&app, Method::GET, &events, None, "").await, 400).await;
}

#[tokio::test]
async fn unknown_sessions_are_404() {
    let app = spawn_app().await;
    let unknown = "01900000-0000-7000-8000-000000000000";
    for (method, path, body) in [
        (Method::GET, format!("/api/v1/sessions/{unknown}"), ""),
        (
            Method::PATCH,
            format!("/api/v1/sessions/{unknown}"),
            r#"{"title":"x"}"#,
        ),
        (Method::DELETE, format!("/api/v1/sessions/{unknown}"), ""),
        (
            Method::GET,
            format!("/api/v1/sessions/{unknown}/messages"),
            "",
        ),
        (
            Method::POST,
            format!("/api/v1/sessions/{unknown}/messages"),
            r#"{"content":"hi"}"#,
        ),
        (
            Method::GET,
            format!("/api/v1/sessions/{unknown}/events"),
            "",
        ),
        (
            Method::POST,
            format!("/api/v1/sessions/{unknown}/cancel"),
            "",
        ),
    ] {
        let body = problem(
            raw(&app, method, &path, Some("application/json"), body).await,
            404,
        )
        .await;
        assert_eq!(body["title"], "Session not found");
    }
    assert_eq!(app.fake.request_count(), 0, "nothing reached the model");
}

#[tokio::test]
async fn bodies_that_are_not_json_are_415() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    let messages = format!("/api/v1/sessions/{session}/messages");
    problem(
        raw(&app, Method::POST, &messages, Some("text/plain"), "hello").await,
        415,
    )
    .await;
    problem(
        raw(&app, Method::POST, &messages, None, r#"{"content":"hi"}"#).await,
        415,
    )
    .await;
    problem(
        raw(
            &app,
            Method::POST,
            "/api/v1/sessions",
            Some("application/x-www-form-urlencoded"),
            "title=x",
        )
        .await,
        415,
    )
    .await;
}

#[tokio::test]
async fn unprocessable_content_is_422_and_never_stored() {
    let app = spawn_app_with(&[("COLLOQUY_MAX_MESSAGE_CHARS", "50")]).await;
    let session = app.new_session().await;
    let messages = format!("/api/v1/sessions/{session}/messages");
    for body in [
        json!({"content": ""}),
        json!({"content": "   \n\t  "}),
        json!({}),
        json!({"content": 42}),
        json!({"content": "x".repeat(51)}),
        json!({"content": null}),
    ] {
        let response = app
            .http
            .post(app.url(&messages))
            .json(&body)
            .send()
            .await
            .unwrap();
        problem(response, 422).await;
    }
    problem(
        raw(&app, Method::POST, &messages, Some("application/json"), "").await,
        422,
    )
    .await;
    for bad in ["0", "1001", "-5", "many"] {
        problem(
            raw(
                &app,
                Method::GET,
                &format!("{messages}?limit={bad}"),
                None,
                "",
            )
            .await,
            422,
        )
        .await;
    }
    problem(
        raw(&app, Method::GET, "/api/v1/sessions?limit=101", None, "").await,
        422,
    )
    .await;
    let bad_title = app
        .http
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"title": "a\nb"}))
        .send()
        .await
        .unwrap();
    problem(bad_title, 422).await;
    let detail = problem(
        app.http
            .post(app.url(&messages))
            .json(&json!({"content": "x".repeat(51)}))
            .send()
            .await
            .unwrap(),
        422,
    )
    .await["detail"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(detail.contains("50"), "the limit is named: {detail}");
    assert!(app.history(&session).await.is_empty(), "nothing was stored");
    assert_eq!(app.fake.request_count(), 0, "nothing reached the model");
}

#[tokio::test]
async fn a_send_naming_unknown_or_malformed_assistants_is_refused_never_answered_by_the_default_voice(
) {
    let app = spawn_app().await;
    let session = app.new_session().await;
    let messages = format!("/api/v1/sessions/{session}/messages");
    for (assistant_ids, status) in [
        (json!(["0190c6a4-1f55-7a0e-8b1a-5a5a5a5a5a5a"]), 404),
        (json!(["not-an-id"]), 400),
        (json!([]), 422),
    ] {
        let response = app
            .http
            .post(app.url(&messages))
            .json(&json!({"content": "hello", "assistant_ids": assistant_ids}))
            .send()
            .await
            .unwrap();
        problem(response, status).await;
    }
    assert!(app.history(&session).await.is_empty(), "nothing was stored");
    assert_eq!(app.fake.request_count(), 0, "nothing reached the model");
}

#[tokio::test]
async fn a_send_while_a_reply_streams_is_409() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text("slow words come one by one").pace(Duration::from_millis(300)));
    let session = app.new_session().await;
    let first = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{session}/messages")))
        .json(&json!({"content": "one"}))
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 202);
    let second = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{session}/messages")))
        .json(&json!({"content": "two"}))
        .send()
        .await
        .unwrap();
    problem(second, 409).await;
    assert_eq!(
        app.history(&session).await.len(),
        2,
        "the refused message was not stored"
    );
}

#[tokio::test]
async fn bodies_over_one_mebibyte_are_413() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    let huge = format!(r#"{{"content": "{}"}}"#, "x".repeat(1024 * 1024 + 10));
    let response = raw(
        &app,
        Method::POST,
        &format!("/api/v1/sessions/{session}/messages"),
        Some("application/json"),
        &huge,
    )
    .await;
    problem(response, 413).await;
}

#[tokio::test]
async fn unknown_routes_and_wrong_methods_are_problems_too() {
    let app = spawn_app().await;
    problem(
        raw(&app, Method::GET, "/api/v1/nothing-here", None, "").await,
        404,
    )
    .await;
    problem(raw(&app, Method::GET, "/no-such-page", None, "").await, 404).await;
    let wrong = raw(
        &app,
        Method::PUT,
        "/api/v1/sessions",
        Some("application/json"),
        "{}",
    )
    .await;
    problem(wrong, 405).await;
}

#[tokio::test]
async fn the_server_stays_healthy_after_bad_input() {
    let app = spawn_app().await;
    for junk in [
        "\u{0}\u{1}",
        "[]",
        "\"string\"",
        "{\"content\": [1,2]}",
        "{\"content\": \"\\ud800\"}",
    ] {
        let session = app.new_session().await;
        let response = raw(
            &app,
            Method::POST,
            &format!("/api/v1/sessions/{session}/messages"),
            Some("application/json"),
            junk,
        )
        .await;
        assert!(
            response.status().is_client_error(),
            "{junk:?} gave {}",
            response.status()
        );
    }
    app.assert_healthy().await;
}
