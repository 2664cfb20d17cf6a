//! The operator's and integrator's surface: the OpenAPI document, Swagger UI
//! served offline, Prometheus metrics, request ids (in headers and logs).

use std::net::TcpListener;
use std::process::Stdio;
use std::time::Duration;

use colloquy_fake_upstream::Behaviour;
use serde_json::Value;
use tokio::process::Command;

use crate::support::{spawn_app, TestApp};

/// Every route of the contract, as the OpenAPI document must list it.
const CONTRACT_ROUTES: [(&str, &str); 27] = [
    ("post", "/api/v1/sessions"),
    ("get", "/api/v1/sessions"),
    ("get", "/api/v1/sessions/{session_id}"),
    ("patch", "/api/v1/sessions/{session_id}"),
    ("delete", "/api/v1/sessions/{session_id}"),
    ("post", "/api/v1/sessions/{session_id}/messages"),
    ("get", "/api/v1/sessions/{session_id}/messages"),
    ("get", "/api/v1/sessions/{session_id}/events"),
    ("get", "/api/v1/sessions/{session_id}/ws"),
    ("post", "/api/v1/sessions/{session_id}/replies"),
    ("post", "/api/v1/sessions/{session_id}/cancel"),
    ("get", "/api/v1/sessions/{session_id}/summary"),
    ("post", "/api/v1/assistants"),
    ("get", "/api/v1/assistants"),
    ("get", "/api/v1/assistants/{assistant_id}"),
    ("patch", "/api/v1/assistants/{assistant_id}"),
    ("delete", "/api/v1/assistants/{assistant_id}"),
    ("post", "/api/create_session"),
    ("post", "/api/chat/send/{session_id}"),
    ("get", "/api/chat/receive/{session_id}"),
    ("get", "/api/history/{session_id}"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
    ("get", "/openapi.json"),
    ("get", "/docs"),
    ("get", "/"),
];

async fn openapi(app: &TestApp) -> Value {
    let response = app.http.get(app.url("/openapi.json")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "application/json");
    response.json().await.unwrap()
}

#[tokio::test]
async fn the_openapi_document_is_3_1_and_lists_every_route_of_the_contract() {
    let app = spawn_app().await;
    let document = openapi(&app).await;
    assert_eq!(document["openapi"], "3.1.0");
    assert_eq!(document["info"]["title"], "colloquy");
    let paths = document["paths"].as_object().unwrap();
    let missing: Vec<String> = CONTRACT_ROUTES
        .iter()
        .filter(|(method, path)| {
            paths
                .get(*path)
                .and_then(|item| item.get(*method))
                .is_none()
        })
        .map(|(method, path)| format!("{method} {path}"))
        .collect();
    assert!(missing.is_empty(), "undocumented routes: {missing:?}");

    // Every operation has an id, and every `$ref` points at a schema that exists.
    let schemas = document["components"]["schemas"].as_object().unwrap();
    let text = document.to_string();
    for reference in text.split("\"$ref\":\"").skip(1) {
        let name = reference.split('"').next().unwrap();
        let name = name
            .strip_prefix("#/components/schemas/")
            .expect("local schema refs only");
        assert!(schemas.contains_key(name), "dangling $ref to {name}");
    }
    for item in paths.values() {
        for operation in item.as_object().unwrap().values() {
            assert!(operation["operationId"].is_string(), "{operation}");
        }
    }
}

#[tokio::test]
async fn the_openapi_document_describes_errors_streams_and_request_ids() {
    let app = spawn_app().await;
    let document = openapi(&app).await;
    let send = &document["paths"]["/api/v1/sessions/{session_id}/messages"]["post"];
    for status in ["202", "200", "400", "404", "409", "413", "415", "422"] {
        assert!(
            send["responses"].get(status).is_some(),
            "send documents {status}"
        );
    }
    assert_eq!(
        send["responses"]["404"]["content"]["application/problem+json"]["schema"]["$ref"],
        "#/components/schemas/Problem"
    );
    assert_eq!(
        send["responses"]["200"]["content"]["text/event-stream"]["schema"]["$ref"],
        "#/components/schemas/ServerSentEvent"
    );
    assert!(send["responses"]["202"]["headers"]
        .get("x-request-id")
        .is_some());
    let events = &document["paths"]["/api/v1/sessions/{session_id}/events"]["get"];
    assert!(events["responses"]["200"]["content"]
        .get("text/event-stream")
        .is_some());

    let socket = &document["paths"]["/api/v1/sessions/{session_id}/ws"]["get"];
    assert!(socket["responses"]["101"]["description"]
        .as_str()
        .unwrap()
        .contains("WebSocket"));
    assert_eq!(
        socket["security"],
        serde_json::json!([{"bearer": []}, {"stream_token": []}]),
        "a socket takes credentials as the event stream does"
    );
    assert_eq!(socket["security"], events["security"]);

    let stream = document["components"]["schemas"]["ServerSentEvent"].to_string();
    for event in [
        "message.created",
        "message.delta",
        "message.completed",
        "message.tool_call",
        "session.updated",
        "message.reset",
        "message.failed",
    ] {
        assert!(stream.contains(event), "the stream's schema names {event}");
    }
    let compat = &document["paths"]["/api/chat/send/{session_id}"]["post"];
    assert_eq!(compat["tags"][0], "compatibility");
    assert_eq!(
        compat["requestBody"], send["requestBody"],
        "the alias shares the documentation"
    );
}

#[tokio::test]
async fn swagger_ui_is_served_from_the_binary_with_every_asset() {
    let app = spawn_app().await;
    for docs in ["/docs", "/docs/"] {
        let response = app.http.get(app.url(docs)).send().await.unwrap();
        assert_eq!(response.status(), 200, "{docs}");
        assert!(response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html"));
        let page = response.text().await.unwrap();
        assert!(page.contains("swagger-ui"), "{page}");

        // Every file the page names, resolved as a browser would against
        // its `<base href>`, is served here; none comes from another host.
        let base = page
            .split("<base href=\"")
            .nth(1)
            .and_then(|rest| rest.split('"').next())
            .unwrap();
        assert_eq!(base, "/docs/");
        let mut assets = Vec::new();
        for attribute in ["src=\"", "href=\""] {
            for rest in page.split(attribute).skip(1) {
                let target = rest.split('"').next().unwrap();
                assert!(
                    !target.contains("://") && !target.starts_with("//"),
                    "external asset {target}"
                );
                if target != base {
                    assets.push(format!("{base}{}", target.trim_start_matches("./")));
                }
            }
        }
        assert!(assets.len() >= 4, "{assets:?}");
        for asset in &assets {
            let response = app.http.get(app.url(asset)).send().await.unwrap();
            assert_eq!(response.status(), 200, "{asset}");
            assert!(!response.bytes().await.unwrap().is_empty(), "{asset}");
        }
    }
    let initializer = app
        .http
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap();
    let script = initializer.text().await.unwrap();
    assert!(script.contains("\"/openapi.json\""), "{script}");
    assert!(
        script.contains("\"validatorUrl\": \"none\""),
        "no online validator: {script}"
    );
}

/// The value of the sample `name{labels}` in Prometheus text, 0 when absent.
fn sample(metrics: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    metrics
        .lines()
        .filter(|line| line.starts_with(&format!("{name}{{")))
        .filter(|line| {
            labels
                .iter()
                .all(|(key, value)| line.contains(&format!("{key}=\"{value}\"")))
        })
        .map(|line| line.rsplit(' ').next().unwrap().parse::<f64>().unwrap())
        .sum()
}

async fn metrics(app: &TestApp) -> String {
    let response = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    response.text().await.unwrap()
}

#[tokio::test]
async fn metrics_count_requests_by_route_pattern_and_replies_by_status() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    // The recorder is shared by every server of this test binary, so only
    // growth is asserted, never exact totals.
    let before = metrics(&app).await;
    app.fake.push(Behaviour::text("Counted."));
    let (_, last) = app.chat(&session, "count me").await;
    assert_eq!(last["status"], "complete");
    let history = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{session}/messages")))
        .send()
        .await
        .unwrap();
    assert_eq!(history.status(), 200);
    let after = metrics(&app).await;

    let route = [
        ("route", "/api/v1/sessions/{session_id}/messages"),
        ("method", "GET"),
        ("status", "200"),
    ];
    assert!(
        sample(&after, "http_requests_total", &route)
            > sample(&before, "http_requests_total", &route)
    );
    assert!(
        !after.contains(&session),
        "routes are labelled by pattern, never by raw path"
    );
    let latency = [
        ("route", "/api/v1/sessions/{session_id}/messages"),
        ("le", "+Inf"),
    ];
    assert!(sample(&after, "http_request_duration_seconds_bucket", &latency) >= 1.0);
    for (name, labels) in [
        ("colloquy_replies_total", [("status", "complete")]),
        ("colloquy_upstream_attempts_total", [("outcome", "ok")]),
        ("colloquy_tokens_total", [("direction", "out")]),
    ] {
        assert!(
            sample(&after, name, &labels) > sample(&before, name, &labels),
            "{name} grew"
        );
    }
    assert!(
        after.contains("# TYPE colloquy_event_streams_open gauge"),
        "{after}"
    );
}

#[tokio::test]
async fn retries_are_counted_by_their_reason() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    let before = metrics(&app).await;
    app.fake.push(Behaviour::status(503));
    app.fake.push(Behaviour::text("Second time lucky."));
    let (_, last) = app.chat(&session, "again").await;
    assert_eq!(last["content"], "Second time lucky.");
    let after = metrics(&app).await;
    let reason = [("reason", "upstream_unavailable")];
    assert!(
        sample(&after, "colloquy_upstream_retries_total", &reason)
            > sample(&before, "colloquy_upstream_retries_total", &reason)
    );
    let failed = [("outcome", "upstream_unavailable")];
    assert!(
        sample(&after, "colloquy_upstream_attempts_total", &failed)
            > sample(&before, "colloquy_upstream_attempts_total", &failed)
    );
}

#[tokio::test]
async fn every_response_carries_a_request_id_and_an_incoming_one_is_kept() {
    let app = spawn_app().await;
    let mut generated = Vec::new();
    for path in [
        "/healthz",
        "/api/v1/sessions",
        "/no/such/route",
        "/api/v1/sessions/not-a-uuid",
    ] {
        let response = app.http.get(app.url(path)).send().await.unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        assert!(uuid_like(&id), "{path}: {id}");
        generated.push(id);
    }
    generated.dedup();
    assert_eq!(generated.len(), 4, "a new id per request");

    let response = app
        .http
        .get(app.url("/api/v1/sessions"))
        .header("X-Request-Id", "trace-4711")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "trace-4711");
    // An id that could not be logged or echoed safely is replaced.
    let response = app
        .http
        .get(app.url("/healthz"))
        .header("X-Request-Id", "a b")
        .send()
        .await
        .unwrap();
    assert!(uuid_like(
        response.headers()["x-request-id"].to_str().unwrap()
    ));
}

fn uuid_like(id: &str) -> bool {
    id.len() == 36 && id.split('-').map(str::len).collect::<Vec<_>>() == [8, 4, 4, 4, 12]
}

#[tokio::test]
async fn json_logs_carry_the_request_id() {
    let db = tempfile::tempdir().unwrap();
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .arg("serve")
        .current_dir(db.path())
        .env_clear()
        .env("COLLOQUY_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", db.path().join("colloquy.db"))
        .env("COLLOQUY_LLM", "offline")
        .env("COLLOQUY_LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let http = reqwest::Client::new();
    let url =
        format!("http://127.0.0.1:{port}/api/v1/sessions/01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f");
    let mut answered = None;
    for _ in 0..100 {
        if let Ok(response) = http
            .get(&url)
            .header("X-Request-Id", "json-log-check")
            .send()
            .await
        {
            answered = Some(response.status());
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(answered, Some(reqwest::StatusCode::NOT_FOUND));
    child.start_kill().unwrap();
    let output = child.wait_with_output().await.unwrap();
    let logs = String::from_utf8_lossy(&output.stderr);
    let line = logs
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .find(|line| line["message"] == "request answered")
        .unwrap_or_else(|| panic!("no request log line in {logs}"));
    assert_eq!(line["span"]["request_id"], "json-log-check", "{line}");
    assert_eq!(line["status"], 404);
    assert_eq!(line["route"], "/api/v1/sessions/{session_id}");
}

/// Found by schemathesis: the header used to hide a malformed query parameter.
#[tokio::test]
async fn a_malformed_last_event_id_is_refused_even_beside_the_header() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    for header in ["", "42"] {
        let response = app
            .http
            .get(app.url(&format!(
                "/api/v1/sessions/{session}/events?last_event_id=x1"
            )))
            .header("Last-Event-ID", header)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400, "with Last-Event-ID `{header}`");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }
}
