use std::collections::HashMap;
use std::time::Duration;

use colloquy::{Application, Config};
use colloquy_fake_upstream::FakeUpstream;
use futures::StreamExt;
use reqwest::header::ACCEPT;
use serde_json::{json, Value};
use tempfile::TempDir;

/// One server under test, its fake upstream and its database.
pub struct TestApp {
    pub base: String,
    pub http: reqwest::Client,
    pub fake: FakeUpstream,
    pub db_dir: TempDir,
    pub handle: actix_web::dev::ServerHandle,
    pub service: colloquy_app::ChatService,
}

/// Environment of a test server: the fake upstream, a fresh database file,
/// port 0. `extra` adds or overrides variables.
pub fn test_env(
    fake: &FakeUpstream,
    db_dir: &TempDir,
    extra: &[(&str, &str)],
) -> HashMap<String, String> {
    let mut vars: HashMap<String, String> = [
        ("COLLOQUY_ADDR", "127.0.0.1:0".to_owned()),
        (
            "DATABASE_URL",
            db_dir.path().join("colloquy.db").display().to_string(),
        ),
        ("OPENAI_BASE_URL", fake.base_url()),
        ("OPENAI_API_KEY", "sk-test".to_owned()),
        ("OPENAI_MODEL", "fake-model".to_owned()),
        ("COLLOQUY_LLM_TIMEOUT_SECS", "5".to_owned()),
        ("COLLOQUY_LLM_IDLE_TIMEOUT_SECS", "1".to_owned()),
        // Tests name models of their own; the allowlist has tests of its own
        // (which set it, or clear it for the default).
        ("COLLOQUY_MODELS", "*".to_owned()),
        // A title is one more upstream request after a session's first
        // reply, which would take behaviours queued for the next one: the
        // tests about titles turn it on.
        ("COLLOQUY_AUTO_TITLE", "false".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (name, value) in extra {
        vars.insert((*name).to_owned(), (*value).to_owned());
    }
    vars
}

pub fn config_from(vars: &HashMap<String, String>) -> Config {
    Config::from_lookup(|name| vars.get(name).cloned()).expect("a valid test configuration")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

pub async fn spawn_app_with(extra: &[(&str, &str)]) -> TestApp {
    let fake = FakeUpstream::start().await;
    let db_dir = tempfile::tempdir().unwrap();
    start_on(fake, db_dir, extra).await
}

/// Starts a server on an existing fake and database (a restart).
pub async fn start_on(fake: FakeUpstream, db_dir: TempDir, extra: &[(&str, &str)]) -> TestApp {
    let config = config_from(&test_env(&fake, &db_dir, extra));
    let mut chat = config.chat_config();
    // Fast retries and frequent flushes keep the suite quick; the policy's
    // shape (exponential, jittered, Retry-After first) stays the same.
    chat.llm.backoff_base = Duration::from_millis(50);
    chat.llm.backoff_max = Duration::from_millis(400);
    chat.flush_interval = Duration::from_millis(200);
    let app = Application::build_with(&config, chat)
        .await
        .expect("the server starts");
    let base = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    let service = app.service().clone();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        base,
        http: reqwest::Client::new(),
        fake,
        db_dir,
        handle,
        service,
    }
}

/// One Server-Sent Event as a client parsed it.
#[derive(Debug, Clone, PartialEq)]
pub struct Sse {
    pub id: Option<String>,
    pub event: String,
    pub data: Value,
}

impl Sse {
    /// One `text/event-stream` block as an event; `None` for a comment.
    pub fn parse(block: &str) -> Option<Self> {
        let mut event = Self {
            id: None,
            event: "message".into(),
            data: Value::Null,
        };
        let mut data = String::new();
        for line in block.lines() {
            if let Some(value) = line.strip_prefix("id: ") {
                event.id = Some(value.to_owned());
            } else if let Some(value) = line.strip_prefix("event: ") {
                event.event = value.to_owned();
            } else if let Some(value) = line.strip_prefix("data: ") {
                data.push_str(value);
            }
        }
        if data.is_empty() {
            return None;
        }
        event.data = serde_json::from_str(&data).expect("event data is JSON");
        Some(event)
    }

    pub fn delta(&self) -> Option<&str> {
        (self.event == "message.delta").then(|| self.data["delta"].as_str().unwrap_or_default())
    }
}

/// A listed message as events and `202`s carry it: without the `siblings`
/// only a listing has, which it checks first (the message is among its
/// siblings, at its index).
pub fn as_stored(listed: &Value) -> Value {
    let siblings = &listed["siblings"];
    let index = siblings["index"]
        .as_u64()
        .expect("a listed message has siblings");
    let index = usize::try_from(index).unwrap();
    assert_eq!(
        siblings["ids"][index], listed["id"],
        "a message is at its index among its siblings: {listed}"
    );
    let mut stored = listed.clone();
    stored.as_object_mut().unwrap().remove("siblings");
    stored
}

/// Reads a `text/event-stream` response into events, as a browser would,
/// until `stop` says so or the stream ends.
pub struct SseReader {
    body: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    buffer: String,
}

impl SseReader {
    pub fn new(response: reqwest::Response) -> Self {
        assert_eq!(response.status(), 200, "an event stream answers 200");
        let content_type = response.headers()["content-type"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(
            content_type.starts_with("text/event-stream"),
            "{content_type}"
        );
        Self {
            body: response.bytes_stream().boxed(),
            buffer: String::new(),
        }
    }

    /// The next event, skipping comments; `None` when the stream ended.
    pub async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                match Sse::parse(&block) {
                    Some(event) => return Some(event),
                    // A comment (keep-alive) or a retry hint: the next block.
                    None => continue,
                }
            }
            let chunk = tokio::time::timeout(Duration::from_secs(15), self.body.next())
                .await
                .expect("the stream makes progress")?;
            self.buffer
                .push_str(std::str::from_utf8(&chunk.ok()?).unwrap());
        }
    }

    /// Events until (and including) the one ending the reply `message_id`.
    pub async fn until_reply_ends(&mut self, message_id: &str) -> Vec<Sse> {
        let mut events = Vec::new();
        while let Some(event) = self.next().await {
            let last = matches!(event.event.as_str(), "message.completed" | "message.failed")
                && event.data["id"] == message_id;
            events.push(event);
            if last {
                return events;
            }
        }
        panic!("the stream ended before the reply did: {events:#?}");
    }
}

pub fn text_of(events: &[Sse]) -> String {
    // A reset discards what came before it, as a client must.
    let mut text = String::new();
    for event in events {
        if event.event == "message.reset" {
            text.clear();
        }
        if let Some(delta) = event.delta() {
            text.push_str(delta);
        }
    }
    text
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn create_session(&self, body: Value) -> Value {
        let response = self
            .http
            .post(self.url("/api/v1/sessions"))
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json().await.unwrap()
    }

    pub async fn new_session(&self) -> String {
        self.create_session(json!({})).await["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Sends `content` asking for the reply's event stream.
    pub async fn send_streaming(&self, session: &str, body: Value) -> SseReader {
        let response = self
            .http
            .post(self.url(&format!("/api/v1/sessions/{session}/messages")))
            .header(ACCEPT, "text/event-stream")
            .json(&body)
            .send()
            .await
            .unwrap();
        SseReader::new(response)
    }

    /// Sends and reads the reply to its end: (all events, the final message).
    pub async fn chat(&self, session: &str, content: &str) -> (Vec<Sse>, Value) {
        let mut reader = self
            .send_streaming(session, json!({ "content": content }))
            .await;
        let user = reader.next().await.unwrap();
        let assistant = reader.next().await.unwrap();
        assert_eq!(user.data["role"], "user");
        let id = assistant.data["id"].as_str().unwrap().to_owned();
        let mut events = vec![user, assistant];
        events.extend(reader.until_reply_ends(&id).await);
        assert!(
            reader.next().await.is_none(),
            "the send stream ends after the reply"
        );
        let last = events.last().unwrap().data.clone();
        (events, last)
    }

    /// The session's active branch, each message as events carry it
    /// (see [`as_stored`]).
    pub async fn history(&self, session: &str) -> Vec<Value> {
        self.branch(session, None)
            .await
            .iter()
            .map(as_stored)
            .collect()
    }

    /// The branch ending at `leaf` (the active one when `None`), each
    /// message as listed, with its `siblings`.
    pub async fn branch(&self, session: &str, leaf: Option<&str>) -> Vec<Value> {
        let mut url = self.url(&format!("/api/v1/sessions/{session}/messages"));
        if let Some(leaf) = leaf {
            url.push_str(&format!("?leaf={leaf}"));
        }
        let response = self.http.get(url).send().await.unwrap();
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        page["data"].as_array().unwrap().clone()
    }

    pub async fn subscribe(&self, session: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = self
            .http
            .get(self.url(&format!("/api/v1/sessions/{session}/events")));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        SseReader::new(request.send().await.unwrap())
    }

    /// Waits until the stored reply `message_id` is final, and returns it.
    pub async fn stored_final(&self, session: &str, message_id: &str) -> Value {
        for _ in 0..200 {
            let history = self.history(session).await;
            if let Some(message) = history.iter().find(|m| m["id"] == message_id) {
                if message["status"] != "streaming" {
                    return message.clone();
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("message {message_id} never became final");
    }

    /// Sends `content` without asking for the stream: the `202` answer.
    pub async fn send_accepted(&self, session: &str, content: &str) -> Value {
        let response = self
            .http
            .post(self.url(&format!("/api/v1/sessions/{session}/messages")))
            .json(&json!({ "content": content }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        response.json().await.unwrap()
    }

    /// The server still answers its liveness probe.
    pub async fn assert_healthy(&self) {
        let response = self.http.get(self.url("/healthz")).send().await.unwrap();
        assert_eq!(response.status(), 200, "the server stays healthy");
    }

    pub async fn stop(&self) {
        self.service.shutdown(Duration::from_secs(1)).await;
        self.handle.stop(true).await;
    }
}
