//! The real binary, killed and stopped: acknowledged messages are never lost.

use std::path::Path;
use std::time::Duration;

use colloquy_fake_upstream::{Behaviour, FakeUpstream};
use serde_json::{json, Value};

use crate::binary::Served;

const LONG: &str = "alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi omicron pi rho sigma \
tau upsilon phi chi psi omega alpha beta gamma delta epsilon zeta eta theta iota kappa lambda mu nu xi";

struct Server {
    served: Served,
}

impl Server {
    async fn start(fake: &FakeUpstream, db: &Path, grace_secs: &str) -> Self {
        let env = [
            ("DATABASE_URL", db.to_str().unwrap()),
            ("OPENAI_BASE_URL", &fake.base_url()),
            ("OPENAI_MODEL", "fake-model"),
            ("COLLOQUY_SHUTDOWN_GRACE_SECS", grace_secs),
        ];
        Self {
            served: Served::start(db.parent().unwrap(), &env).await,
        }
    }

    fn url(&self, path: &str) -> String {
        self.served.url(path)
    }

    async fn new_session(&self) -> String {
        let session: Value = self
            .served
            .http
            .post(self.url("/api/v1/sessions"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        session["id"].as_str().unwrap().to_owned()
    }

    async fn send(&self, session: &str, content: &str) -> Value {
        let response = self
            .served
            .http
            .post(self.url(&format!("/api/v1/sessions/{session}/messages")))
            .json(&json!({ "content": content }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    async fn history(&self, session: &str) -> Vec<Value> {
        let page: Value = self
            .served
            .http
            .get(self.url(&format!("/api/v1/sessions/{session}/messages")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        page["data"].as_array().unwrap().clone()
    }
}

#[tokio::test]
async fn a_killed_server_keeps_the_user_message_and_the_text_stored_before_the_kill() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text(LONG).pace(Duration::from_millis(100)));
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("crash.db");
    let server = Server::start(&fake, &db, "20").await;
    let session = server.new_session().await;
    server.send(&session, "tell me the Greek alphabet").await;
    // Long enough for the reply's text to be flushed (every second) at least twice.
    tokio::time::sleep(Duration::from_millis(2600)).await;
    let mut server = server;
    server.served.kill().await;

    let restarted = Server::start(&fake, &db, "20").await;
    let history = restarted.history(&session).await;
    assert_eq!(history.len(), 2);
    assert_eq!(history[0]["content"], "tell me the Greek alphabet");
    assert_eq!(history[0]["status"], "complete");
    let reply = &history[1];
    assert_eq!(reply["status"], "interrupted");
    assert_eq!(reply["error"]["code"], "interrupted");
    let kept = reply["content"].as_str().unwrap();
    assert!(
        kept.len() >= "alpha beta gamma delta ".len(),
        "at least a second's worth of words was kept: {kept:?}"
    );
    assert!(LONG.starts_with(kept), "{kept:?} is what was streamed");
}

#[tokio::test]
async fn sigterm_lets_short_replies_finish_and_interrupts_long_ones() {
    let fake = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("stop.db");
    let mut server = Server::start(&fake, &db, "1.5").await;
    let quick = server.new_session().await;
    let slow = server.new_session().await;
    fake.push(Behaviour::text("short and sweet").pace(Duration::from_millis(200)));
    server.send(&quick, "be quick").await;
    // The scripted answers go to requests in the order they arrive: the
    // quick reply's request must have taken the short one first.
    assert!(
        fake.wait_until(Duration::from_secs(5), |requests| requests.len() == 1)
            .await
    );
    fake.push(Behaviour::text(LONG).pace(Duration::from_millis(200)));
    server.send(&slow, "take your time").await;
    tokio::time::sleep(Duration::from_millis(300)).await;

    server.served.signal("-TERM");
    // New messages are refused while the running ones get their grace.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let refused = server
        .served
        .http
        .post(server.url(&format!("/api/v1/sessions/{quick}/messages")))
        .json(&json!({"content": "one more"}))
        .send()
        .await;
    if let Ok(response) = refused {
        assert!(
            matches!(response.status().as_u16(), 409 | 503),
            "{}",
            response.status()
        );
    }
    let status = tokio::time::timeout(Duration::from_secs(15), server.served.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "a clean exit: {status}");

    let restarted = Server::start(&fake, &db, "20").await;
    let quick_reply = restarted.history(&quick).await.pop().unwrap();
    assert_eq!(quick_reply["status"], "complete");
    assert_eq!(quick_reply["content"], "short and sweet");
    let slow_reply = restarted.history(&slow).await.pop().unwrap();
    assert_eq!(slow_reply["status"], "interrupted");
    assert!(LONG.starts_with(slow_reply["content"].as_str().unwrap()));
    assert!(!slow_reply["content"].as_str().unwrap().is_empty());
}
