//! A turn of two assistants as live clients see it (a WebSocket that asked
//! for it, an SSE watcher), and as a restart after a crash finds it.

use std::time::Duration;

use colloquy_fake_upstream::{Behaviour, FakeUpstream};
use serde_json::{json, Value};

use super::{created, finals, id_of, poet_and_critic, MODELS};
use crate::binary::Served;
use crate::support::spawn_app_with;
use crate::websocket::Socket;

#[tokio::test]
async fn a_websocket_send_naming_two_assistants_delivers_both_replies_to_every_client() {
    let app = spawn_app_with(&[MODELS]).await;
    let (poet, critic) = poet_and_critic(&app).await;
    app.fake
        .push(Behaviour::text("Waves fold over waves.").pace(Duration::from_millis(5)))
        .push(Behaviour::text("Folding is not rhyming.").pace(Duration::from_millis(5)));
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    let mut socket = Socket::open(&app, &session, "").await;
    socket
        .send(
            json!({"type": "send", "content": "Sing of the sea.", "assistant_ids": [poet, critic]}),
        )
        .await;

    // A turn of two ends with the second reply's final event.
    let mut over_socket = Vec::new();
    while finals(&over_socket).len() < 2 {
        over_socket.push(socket.event().await);
    }
    let mut over_sse = Vec::new();
    while finals(&over_sse).len() < 2 {
        over_sse.push(watcher.next().await.expect("the watcher reads on"));
    }
    assert_eq!(
        over_socket, over_sse,
        "the same ids, names and data, in order"
    );
    let speakers: Vec<(Value, Value)> = created(&over_socket)
        .iter()
        .map(|message| (message["assistant_id"].clone(), message["name"].clone()))
        .collect();
    assert_eq!(
        speakers,
        [
            (Value::Null, Value::Null),
            (json!(poet), json!("Poet")),
            (json!(critic), json!("Critic")),
        ]
    );
    let said: Vec<Value> = finals(&over_socket)
        .iter()
        .map(|message| message["content"].clone())
        .collect();
    assert_eq!(
        said,
        [
            json!("Waves fold over waves."),
            json!("Folding is not rhyming.")
        ]
    );
    assert_eq!(app.history(&session).await[1..], finals(&over_socket)[..]);
}

/// Streamed a word every 100 ms: about six seconds, far longer than the
/// test waits before the kill.
const LONG: &str = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi \
    omicron pi rho sigma tau upsilon phi chi psi omega alpha beta gamma delta epsilon zeta eta \
    theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega alpha \
    beta gamma delta epsilon zeta eta theta iota kappa";

#[tokio::test]
async fn a_killed_server_leaves_every_message_of_a_turn_stored_and_final() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text(LONG).pace(Duration::from_millis(100)));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let env = [
        ("DATABASE_URL", db.to_str().unwrap()),
        ("OPENAI_BASE_URL", &fake.base_url()),
        ("OPENAI_MODEL", "fake-model"),
    ];
    let mut served = Served::start(dir.path(), &env).await;
    let post = |served: &Served, path: &str, body: Value| {
        let request = served.http.post(served.url(path)).json(&body);
        async move {
            let response = request.send().await.unwrap();
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        }
    };
    let mut ids = Vec::new();
    for name in ["Poet", "Critic"] {
        let (status, assistant) =
            post(&served, "/api/v1/assistants", json!({ "name": name })).await;
        assert_eq!(status, 201, "{assistant}");
        ids.push(id_of(&assistant));
    }
    let (_, session) = post(&served, "/api/v1/sessions", json!({})).await;
    let session = id_of(&session);
    let (status, accepted) = post(
        &served,
        &format!("/api/v1/sessions/{session}/messages"),
        json!({"content": "Recite the alphabet.", "assistant_ids": ids}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    // Long enough for the Poet's text to be flushed (every second) twice.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    served.kill().await;

    let restarted = Served::start(dir.path(), &env).await;
    let page: Value = restarted
        .http
        .get(restarted.url(&format!("/api/v1/sessions/{session}/messages")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let history = page["data"].as_array().unwrap();
    let stored: Vec<&Value> = history.iter().map(|message| &message["id"]).collect();
    let acknowledged: Vec<&Value> = std::iter::once(&accepted["user_message"]["id"])
        .chain(
            accepted["assistant_messages"]
                .as_array()
                .unwrap()
                .iter()
                .map(|m| &m["id"]),
        )
        .collect();
    assert_eq!(stored, acknowledged, "nothing of the turn is lost");
    assert_eq!(history[0]["status"], "complete");
    for (reply, name) in history[1..].iter().zip(["Poet", "Critic"]) {
        assert_eq!(reply["status"], "interrupted", "{reply}");
        assert_eq!(reply["error"]["code"], "interrupted");
        assert_eq!(reply["name"], name);
    }
    let kept = history[1]["content"].as_str().unwrap();
    assert!(
        kept.len() >= "alpha beta gamma ".len() && LONG.starts_with(kept),
        "the Poet's flushed text is kept: {kept:?}"
    );
    assert_eq!(history[2]["content"], "", "the Critic had not begun");
    assert_eq!(
        fake.requests().len(),
        1,
        "the Critic's reply is not asked for after the restart"
    );
}
