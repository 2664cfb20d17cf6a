//! Assistants over real HTTP: the resource (`resource.rs`), turns several of
//! them answer and discussions between them (`turns.rs`), a session's
//! default assistant (`session_default.rs`), and a turn seen over a
//! WebSocket or cut short by a crash (`live.rs`).

mod live;
mod resource;
mod session_default;
mod turns;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{SseReader, TestApp};

/// The instructions and models of the two voices most tests use.
const POET: &str = "You are a poet: answer in two lines of verse.";
const CRITIC: &str = "You are a critic: find the weak point of what was said.";
const POET_MODEL: &str = "poet-model";
const CRITIC_MODEL: &str = "critic-model";

/// `COLLOQUY_MODELS` allowing both voices' models and the default one.
const MODELS: (&str, &str) = ("COLLOQUY_MODELS", "fake-model,poet-model,critic-model");

/// A request to `app` as `bearer` (none: anonymous), with a JSON body when
/// given: its status and its JSON body (`Null` when it has none).
pub(crate) async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<&Value>,
) -> (StatusCode, Value) {
    let mut request = app.http.request(method, app.url(path));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or_else(|_| panic!("{path} answered {text}"))
    };
    (status, body)
}

/// Creates an assistant (anonymously), asserting the `201`.
pub(crate) async fn create_assistant(app: &TestApp, body: Value) -> Value {
    let (status, assistant) =
        call(app, Method::POST, "/api/v1/assistants", None, Some(&body)).await;
    assert_eq!(status, StatusCode::CREATED, "{assistant}");
    assistant
}

/// The two voices: the Poet (with the calculator) and the Critic (no tools).
async fn poet_and_critic(app: &TestApp) -> (String, String) {
    let poet = create_assistant(
        app,
        json!({"name": "Poet", "instructions": POET, "model": POET_MODEL, "tools": ["calculator"]}),
    )
    .await;
    let critic = create_assistant(
        app,
        json!({"name": "Critic", "instructions": CRITIC, "model": CRITIC_MODEL}),
    )
    .await;
    (id_of(&poet), id_of(&critic))
}

pub(crate) fn id_of(resource: &Value) -> String {
    resource["id"].as_str().unwrap().to_owned()
}

/// Asserts `body` is the problem `slug` with `status`.
pub(crate) fn assert_problem(status: StatusCode, body: &Value, expected: StatusCode, slug: &str) {
    assert_eq!(status, expected, "{body}");
    assert_eq!(body["status"], expected.as_u16(), "{body}");
    assert_eq!(
        body["type"],
        format!("urn:colloquy:problem:{slug}"),
        "{body}"
    );
}

/// Every event of a turn's stream, to its end (it ends by itself after the
/// last reply's final event).
async fn whole_turn(mut reader: SseReader) -> Vec<crate::support::Sse> {
    let mut events = Vec::new();
    while let Some(event) = reader.next().await {
        events.push(event);
    }
    events
}

/// The messages `message.created` announced, in order.
fn created(events: &[crate::support::Sse]) -> Vec<Value> {
    events
        .iter()
        .filter(|event| event.event == "message.created")
        .map(|event| event.data.clone())
        .collect()
}

/// The final events (`message.completed` or `message.failed`), in order.
fn finals(events: &[crate::support::Sse]) -> Vec<Value> {
    events
        .iter()
        .filter(|event| matches!(event.event.as_str(), "message.completed" | "message.failed"))
        .map(|event| event.data.clone())
        .collect()
}
