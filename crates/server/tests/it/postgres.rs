//! The real binary on PostgreSQL: `colloquy migrate`, `colloquy keys` and
//! `colloquy serve` with `DATABASE_URL=postgres://…`, on a database of the
//! test's own, through a restart.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use colloquy_diesel::testing::TestDatabase;
use colloquy_fake_upstream::FakeUpstream;
use serde_json::{json, Value};
use tokio::process::{Child, Command};

/// `colloquy ARGS…` with `DATABASE_URL` and nothing else of the test's
/// environment, in `dir` (so no `.env` of the developer's is read).
fn colloquy(dir: &Path, database: &TestDatabase, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_colloquy"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("DATABASE_URL", database.url())
        .env("RUST_LOG", "warn")
        .kill_on_drop(true);
    command
}

async fn succeeds(dir: &Path, database: &TestDatabase, args: &[&str]) -> String {
    let output: Output = colloquy(dir, database, args).output().await.unwrap();
    assert!(
        output.status.success(),
        "colloquy {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

struct Server {
    child: Child,
    base: String,
    key: String,
    http: reqwest::Client,
}

impl Server {
    /// `colloquy serve` with API keys, on a free port, once `/readyz` answers.
    async fn start(dir: &Path, database: &TestDatabase, fake: &FakeUpstream, key: &str) -> Self {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let log = std::fs::File::create(dir.join(format!("serve-{port}.log"))).unwrap();
        let child = colloquy(dir, database, &["serve"])
            .env("COLLOQUY_ADDR", format!("127.0.0.1:{port}"))
            .env("COLLOQUY_AUTH", "keys")
            .env("COLLOQUY_AUTO_TITLE", "false")
            .env("OPENAI_BASE_URL", fake.base_url())
            .env("OPENAI_MODEL", "fake-model")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let server = Self {
            child,
            base: format!("http://127.0.0.1:{port}"),
            key: key.to_owned(),
            http: reqwest::Client::new(),
        };
        for _ in 0..200 {
            if let Ok(response) = server.http.get(server.url("/readyz")).send().await {
                if response.status() == 200 {
                    return server;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let log = std::fs::read_to_string(dir.join(format!("serve-{port}.log"))).unwrap();
        panic!("the server did not come up on PostgreSQL:\n{log}");
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn get(&self, path: &str) -> reqwest::Response {
        self.http
            .get(self.url(path))
            .bearer_auth(&self.key)
            .send()
            .await
            .unwrap()
    }

    async fn post(&self, path: &str, body: Value) -> Value {
        let response = self
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
    async fn stop(mut self) {
        let pid = self.child.id().unwrap().to_string();
        let status = std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap();
        assert!(status.success());
        let exit = tokio::time::timeout(Duration::from_secs(30), self.child.wait())
            .await
            .expect("the server stops within its grace period")
            .unwrap();
        assert!(exit.success(), "a clean exit: {exit}");
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
