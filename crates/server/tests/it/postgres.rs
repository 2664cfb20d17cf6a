//! The real binary on PostgreSQL: `colloquy migrate`, `colloquy keys` and
//! `colloquy serve` with `DATABASE_URL=postgres://…`, on a database of the
//! test's own, through a restart.

use std::path::Path;
use std::time::Duration;

use colloquy_diesel::testing::TestDatabase;
use colloquy_fake_upstream::FakeUpstream;
use serde_json::{json, Value};
use tokio::process::Command;

use crate::binary::{self, Served};

/// `colloquy ARGS…` with `DATABASE_URL` and nothing else of the test's
/// environment, in `dir` (so no `.env` of the developer's is read).
async fn succeeds(dir: &Path, database: &TestDatabase, args: &[&str]) -> String {
    binary::succeeds(dir, &[("DATABASE_URL", database.url())], args).await
}

struct Server {
    served: Served,
    key: String,
}

impl Server {
    /// `colloquy serve` with API keys, on a free port, once `/readyz` answers.
    async fn start(dir: &Path, database: &TestDatabase, fake: &FakeUpstream, key: &str) -> Self {
        let env = [
            ("DATABASE_URL", database.url()),
            ("COLLOQUY_AUTH", "keys"),
            ("COLLOQUY_AUTO_TITLE", "false"),
            ("OPENAI_BASE_URL", &fake.base_url()),
            ("OPENAI_MODEL", "fake-model"),
        ];
        Self {
            served: Served::start(dir, &env).await,
            key: key.to_owned(),
        }
    }

    fn url(&self, path: &str) -> String {
        self.served.url(path)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.served
            .http
            .get(self.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
            .served
            .http
            .post(self.url(path))
            .bearer_auth(&self.key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert!(
            response.status().is_success(),
            "{path}: {}",
            response.status()
        );
        response.json().await.unwrap()
    }

    async fn history(&self, session: &str) -> Vec<Value> {
        let response = self
            .get(&format!("/api/v1/sessions/{session}/messages"))
            .await;
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        page["data"].as_array().unwrap().clone()
    }

    /// SIGTERM, and the clean exit that follows.
    async fn stop(self) {
        self.served.stop_within(Duration::from_secs(30)).await;
    }
}

#[tokio::test]
async fn the_binary_keeps_keys_and_history_in_postgres_across_a_restart() {
    let database = TestDatabase::create().await;
    let dir = tempfile::tempdir().unwrap();
    let fake = FakeUpstream::start().await;

    succeeds(dir.path(), &database, &["migrate"]).await;
    succeeds(dir.path(), &database, &["migrate"]).await;
    let created = succeeds(
        dir.path(),
        &database,
        &["keys", "create", "--principal", "alice", "--label", "pg"],
    )
    .await;
    let key = created.lines().last().unwrap().to_owned();
    assert!(key.starts_with("ck_"), "{created}");
    let listed: Value =
        serde_json::from_str(&succeeds(dir.path(), &database, &["keys", "list", "--json"]).await)
            .unwrap();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["principal"], "alice");
    let key_id = listed[0]["id"].as_str().unwrap().to_owned();

    let server = Server::start(dir.path(), &database, &fake, &key).await;
    let anonymous = server
        .served
        .http
        .get(server.url("/api/v1/sessions"))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "keys are required");
    let session = server.post("/api/v1/sessions", json!({})).await;
    let session = session["id"].as_str().unwrap().to_owned();
    let sent = server
        .post(
            &format!("/api/v1/sessions/{session}/messages"),
            json!({"content": "hello from postgres"}),
        )
        .await;
    let reply_id = sent["assistant_message"]["id"].as_str().unwrap().to_owned();
    let mut history = Vec::new();
    for _ in 0..100 {
        history = server.history(&session).await;
        if history.len() == 2 && history[1]["status"] == "complete" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(history.len(), 2, "{history:?}");
    assert_eq!(history[1]["status"], "complete", "{history:?}");
    server.stop().await;

    let restarted = Server::start(dir.path(), &database, &fake, &key).await;
    let read_back = restarted.history(&session).await;
    assert_eq!(
        read_back, history,
        "the history as it was before the restart"
    );
    assert_eq!(read_back[0]["role"], "user");
    assert_eq!(read_back[0]["content"], "hello from postgres");
    assert_eq!(read_back[1]["id"], reply_id.as_str());
    assert_eq!(read_back[1]["content"], "Echo: hello from postgres");

    // Revoking, from another process, takes effect at once.
    succeeds(dir.path(), &database, &["keys", "revoke", &key_id]).await;
    let revoked = restarted.get("/api/v1/sessions").await;
    assert_eq!(revoked.status(), 401);
    restarted.stop().await;
}

#[tokio::test]
async fn an_unreachable_postgres_stops_the_binary_with_the_reason_and_no_password() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .arg("migrate")
        .current_dir(dir.path())
        .env_clear()
        // Nothing listens on port 1.
        .env(
            "DATABASE_URL",
            "postgres://colloquy:hunter2@127.0.0.1:1/chat",
        )
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        said.contains("postgres://colloquy@127.0.0.1:1/chat"),
        "{said}"
    );
    assert!(!said.contains("hunter2"), "{said}");
}
