//! Secrets stay secret: the real binary, logging at `debug`, with known
//! secrets (the OpenAI key, the JWT secret, an API key, the metrics token,
//! stream tokens and JWTs), every route of its OpenAPI document called, and a
//! failing upstream that echoes the key and links to a URL. No secret may
//! appear in any log line, response body, header or metric.

use std::path::Path;
use std::time::Duration;

use colloquy_fake_upstream::{Behaviour, FakeUpstream};
use reqwest::Method;
use serde_json::{json, Value};
use tokio::process::Command;

use crate::binary::Served;

const OPENAI_KEY: &str = "sk-test-0penai-key-that-must-stay-hidden-4f1c";
const JWT_SECRET: &str = "jwt-secret-that-must-stay-hidden-0123456789abcdef";
const METRICS_TOKEN: &str = "metrics-token-that-must-stay-hidden-77";

/// Everything a client or an operator could see of one server.
#[derive(Default)]
struct Seen {
    text: String,
}

impl Seen {
    fn note(&mut self, what: &str, text: &str) {
        self.text.push_str(what);
        self.text.push('\n');
        self.text.push_str(text);
        self.text.push('\n');
    }

    async fn response(&mut self, what: &str, response: reqwest::Response) -> (u16, String) {
        let status = response.status().as_u16();
        let mut headers = String::new();
        for (name, value) in response.headers() {
            headers.push_str(&format!(
                "{name}: {}\n",
                String::from_utf8_lossy(value.as_bytes())
            ));
        }
        // Event streams never end by themselves: read what comes within a moment.
        let body = match tokio::time::timeout(Duration::from_millis(700), response.bytes()).await {
            Ok(Ok(bytes)) => String::from_utf8_lossy(&bytes).into_owned(),
            _ => String::new(),
        };
        self.note(&format!("{what} → {status}"), &format!("{headers}\n{body}"));
        (status, body)
    }
}

struct Server {
    served: Served,
    http: reqwest::Client,
}

impl Server {
    async fn start(fake: &FakeUpstream, db: &Path, auth: &str) -> Self {
        let env = [
            ("DATABASE_URL", db.to_str().unwrap()),
            ("OPENAI_BASE_URL", &fake.base_url()),
            ("OPENAI_API_KEY", OPENAI_KEY),
            ("OPENAI_MODEL", "fake-model"),
            ("COLLOQUY_AUTH", auth),
            ("COLLOQUY_JWT_SECRET", JWT_SECRET),
            ("COLLOQUY_METRICS_TOKEN", METRICS_TOKEN),
            ("COLLOQUY_LLM_MAX_RETRIES", "1"),
            // The failing reply must get the failure queued for it, not a title.
            ("COLLOQUY_AUTO_TITLE", "false"),
            ("RUST_LOG", "debug"),
        ];
        let served = Served::start(db.parent().unwrap(), &env).await;
        let http = served.http.clone();
        Self { served, http }
    }

    fn url(&self, path: &str) -> String {
        self.served.url(path)
    }

    /// A new session of `bearer`'s; its id.
    async fn new_session(&self, bearer: &str) -> String {
        let session: Value = self
            .http
            .post(self.url("/api/v1/sessions"))
            .bearer_auth(bearer)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        session["id"].as_str().expect("a session").to_owned()
    }

    /// SIGTERM, so the shutdown path logs too; what the server logged.
    async fn stop(mut self) -> String {
        self.served.signal("-TERM");
        let _ = tokio::time::timeout(Duration::from_secs(30), self.served.child.wait()).await;
        self.served.log_text()
    }
}

/// Runs the real `colloquy` with `args`, on `db`, with the known secrets.
async fn colloquy(db: &Path, args: &[&str]) -> (String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(args)
        .current_dir(db.parent().unwrap())
        .env_clear()
        .env("DATABASE_URL", db)
        .env("COLLOQUY_JWT_SECRET", JWT_SECRET)
        .env("RUST_LOG", "debug")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

/// Every operation of the server's own OpenAPI document, called with
/// `bearer`: ids filled in with a real session, bodies that the route takes.
/// Returns the stream token it was given, a secret of the run.
async fn call_every_route(server: &Server, bearer: &str, seen: &mut Seen) -> String {
    let document: Value = server
        .http
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !document.to_string().contains(JWT_SECRET) && !document.to_string().contains(OPENAI_KEY),
        "/openapi.json shows a secret"
    );
    let session = server.new_session(bearer).await;

    let paths = document["paths"].as_object().expect("paths");
    let mut called = 0;
    for (path, operations) in paths {
        let url = path
            .replace("{session_id}", &session)
            .replace("{id}", &session);
        for (method, _) in operations.as_object().unwrap() {
            let Ok(method) = method.to_uppercase().parse::<Method>() else {
                continue;
            };
            // Deleting comes last, after everything else used the session.
            if method == Method::DELETE {
                continue;
            }
            let mut request = server
                .http
                .request(method.clone(), server.url(&url))
                .bearer_auth(bearer);
            if method == Method::POST || method == Method::PATCH {
                request =
                    request.json(&json!({"content": "hello", "message": "hello", "title": "t"}));
            }
            let response = request.send().await.unwrap();
            let status = if path.ends_with("/stream-token") {
                // Its body is the one place a stream token is meant to be.
                response.status().as_u16()
            } else {
                seen.response(&format!("{method} {url}"), response).await.0
            };
            // A summary the echoing fake cannot write is a 502; nothing
            // may be a 500.
            assert_ne!(status, 500, "{method} {url}");
            called += 1;
        }
    }
    assert!(called >= 15, "only {called} operations were called");

    // A stream token, and the event stream it opens.
    let token: Value = server
        .http
        .post(server.url(&format!("/api/v1/sessions/{session}/stream-token")))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().expect("a stream token").to_owned();
    let stream = server
        .http
        .get(server.url(&format!("/api/v1/sessions/{session}/events?token={token}")))
        .send()
        .await
        .unwrap();
    seen.response("events with a stream token", stream).await;
    // A token for another session, and garbage: refused, and not echoed.
    let refused = server
        .http
        .get(server.url(&format!(
            "/api/v1/sessions/{}/events?token={token}",
            uuid_like()
        )))
        .send()
        .await
        .unwrap();
    seen.response("events with another session's token", refused)
        .await;

    // The metrics, with and without their token.
    for bearer in [None, Some("wrong-token"), Some(METRICS_TOKEN)] {
        let mut request = server.http.get(server.url("/metrics"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        let response = request.send().await.unwrap();
        let (status, body) = seen.response("metrics", response).await;
        if bearer == Some(METRICS_TOKEN) {
            assert_eq!(status, 200, "{body}");
            assert!(body.contains("colloquy_"), "real metrics: {body}");
        }
    }
    // Wrong credentials of every shape.
    for bad in [
        format!("{bearer}x"),
        "ck_not-a-real-key".to_owned(),
        "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.".to_owned(),
    ] {
        let response = server
            .http
            .get(server.url("/api/v1/sessions"))
            .bearer_auth(&bad)
            .send()
            .await
            .unwrap();
        seen.response("bad credentials", response).await;
    }
    let deleted = server
        .http
        .delete(server.url(&format!("/api/v1/sessions/{session}")))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    seen.response("delete", deleted).await;
    token
}

fn uuid_like() -> String {
    "019adc00-0000-7000-8000-000000000000".to_owned()
}

/// A reply whose upstream fails with the key echoed and a URL to follow,
/// as OpenAI's own `401` does: the client sees neither.
async fn failing_upstream(server: &Server, fake: &FakeUpstream, bearer: &str, seen: &mut Seen) {
    fake.push(
        Behaviour::status(401)
            .message(format!(
                "Incorrect API key provided: {OPENAI_KEY}. You can find your API key at https://platform.openai.com/account/api-keys."
            ))
            .code("invalid_api_key"),
    );
    let session = &server.new_session(bearer).await;
    let response = server
        .http
        .post(server.url(&format!("/api/v1/sessions/{session}/messages")))
        .bearer_auth(bearer)
        .header("accept", "text/event-stream")
        .json(&json!({"content": "fail, please"}))
        .send()
        .await
        .unwrap();
    let body = response.text().await.unwrap();
    seen.note("the failing reply's stream", &body);
    assert!(body.contains("message.failed"), "{body}");
    assert!(body.contains("upstream_rejected"), "{body}");
    let history = server
        .http
        .get(server.url(&format!("/api/v1/sessions/{session}/messages")))
        .bearer_auth(bearer)
        .send()
        .await
        .unwrap();
    let (_, history) = seen.response("the failed reply's history", history).await;
    let history: Value = serde_json::from_str(&history).unwrap();
    let error = history["data"][1]["error"]["message"].as_str().unwrap();
    assert!(!error.contains("http"), "a URL reached the client: {error}");
    assert!(
        !error.contains(OPENAI_KEY),
        "the key reached the client: {error}"
    );
}

fn assert_hidden(seen: &str, secrets: &[&str]) {
    for secret in secrets {
        assert!(!secret.is_empty());
        if let Some(at) = seen.find(secret) {
            let start = seen[..at].rfind('\n').map_or(0, |line| line + 1);
            let end = seen[at..].find('\n').map_or(seen.len(), |line| at + line);
            panic!("a secret was seen: {secret:?} in\n{}", &seen[start..end]);
        }
    }
}

#[tokio::test]
async fn no_secret_reaches_a_log_a_response_or_a_metric() {
    let fake = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("colloquy.db");
    let mut seen = Seen::default();

    // API keys, made with the real command.
    let (created, created_log) = colloquy(&db, &["keys", "create", "--principal", "alice"]).await;
    let api_key = created.lines().last().unwrap().trim().to_owned();
    assert!(api_key.starts_with("ck_"), "{created}");
    seen.note("keys create (stderr)", &created_log);
    let (listed, listed_log) = colloquy(&db, &["keys", "list", "--json"]).await;
    seen.note("keys list", &listed);
    seen.note("keys list (stderr)", &listed_log);
    let (jwt, jwt_log) = colloquy(&db, &["token", "--principal", "bob"]).await;
    let jwt = jwt.trim().to_owned();
    seen.note("token (stderr)", &jwt_log);

    let keyed = Server::start(&fake, &db, "keys").await;
    let keyed_token = call_every_route(&keyed, &api_key, &mut seen).await;
    failing_upstream(&keyed, &fake, &api_key, &mut seen).await;
    let keyed_log = keyed.stop().await;
    seen.note("the keyed server's log", &keyed_log);

    let with_jwts = Server::start(&fake, &db, "jwt").await;
    let jwt_token = call_every_route(&with_jwts, &jwt, &mut seen).await;
    let jwt_log = with_jwts.stop().await;
    seen.note("the JWT server's log", &jwt_log);

    // The run did log: at debug, a server that logged nothing would pass
    // for the wrong reason.
    assert!(seen.text.contains("DEBUG"), "nothing was logged at debug");
    // The API key's secret part counts even without its prefix.
    let key_body = &api_key["ck_".len()..];
    assert_hidden(
        &seen.text,
        &[
            OPENAI_KEY,
            JWT_SECRET,
            METRICS_TOKEN,
            &api_key,
            key_body,
            &jwt,
            &keyed_token,
            &jwt_token,
        ],
    );
}
