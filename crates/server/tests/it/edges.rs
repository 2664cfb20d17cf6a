//! The HTTP edges over real HTTP: which pages may call (the Origin and Host
//! checks, CORS), the metrics token, and clients that are too slow or too
//! many.

use std::io::ErrorKind;
use std::time::{Duration, Instant};

use colloquy_fake_upstream::Behaviour;
use reqwest::header::{HeaderMap, ACCEPT, HOST, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::TcpStream;

use crate::support::{config_from, spawn_app, spawn_app_with, test_env, SseReader, TestApp};

const APP_ORIGIN: &str = "https://app.example";

fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).map(|value| value.to_str().unwrap())
}

/// The problem of a refused request, after checking it is one with `status`.
async fn problem(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    assert_eq!(
        header(response.headers(), "content-type"),
        Some("application/problem+json")
    );
    response.json().await.unwrap()
}

async fn create_from(app: &TestApp, origin: &str) -> reqwest::Response {
    app.http
        .post(app.url("/api/v1/sessions"))
        .header(ORIGIN, origin)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
}

async fn preflight(app: &TestApp, origin: &str, method: &str, headers: &str) -> reqwest::Response {
    app.http
        .request(Method::OPTIONS, app.url("/api/v1/sessions"))
        .header(ORIGIN, origin)
        .header("Access-Control-Request-Method", method)
        .header("Access-Control-Request-Headers", headers)
        .send()
        .await
        .unwrap()
}

/// A comma-separated header as a lower-case list.
fn list(headers: &HeaderMap, name: &str) -> Vec<String> {
    header(headers, name)
        .unwrap_or_default()
        .split(',')
        .map(|item| item.trim().to_ascii_lowercase())
        .filter(|item| !item.is_empty())
        .collect()
}

#[tokio::test]
async fn a_page_of_another_origin_is_refused_and_the_servers_own_passes() {
    let app = spawn_app().await;
    let refused = problem(
        create_from(&app, "https://evil.example").await,
        StatusCode::FORBIDDEN,
    )
    .await;
    assert_eq!(refused["type"], "urn:colloquy:problem:forbidden-origin");
    assert_eq!(refused["status"], 403);
    let detail = refused["detail"].as_str().unwrap();
    assert!(
        detail.contains("`https://evil.example`") && detail.contains("COLLOQUY_CORS_ORIGINS"),
        "{detail}"
    );
    let sessions: Value = app
        .http
        .get(app.url("/api/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions["data"],
        json!([]),
        "a refused request stores nothing"
    );

    // The page itself, its docs and its probes are guarded alike.
    for path in ["/", "/docs", "/openapi.json", "/healthz"] {
        let response = app
            .http
            .get(app.url(path))
            .header(ORIGIN, "https://evil.example")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{path}");
    }

    // The server's own pages (the origin of its `Host`) and clients that
    // send no Origin at all (curl, SDKs) pass.
    let own = app.base.clone();
    assert_eq!(create_from(&app, &own).await.status(), StatusCode::CREATED);
    assert_eq!(
        app.http
            .post(app.url("/api/v1/sessions"))
            .send()
            .await
            .unwrap()
            .status(),
        201
    );
    // Another name for the same machine is another origin.
    let other_name = own.replace("127.0.0.1", "localhost");
    assert_eq!(
        create_from(&app, &other_name).await.status(),
        StatusCode::FORBIDDEN
    );

    let opaque = problem(create_from(&app, "null").await, StatusCode::FORBIDDEN).await;
    assert!(
        opaque["detail"].as_str().unwrap().contains("`*`"),
        "{opaque}"
    );
}

#[tokio::test]
async fn listed_origins_pass_with_cors_headers_and_preflights_are_answered() {
    let app = spawn_app_with(&[(
        "COLLOQUY_CORS_ORIGINS",
        "https://app.example, http://localhost:5173",
    )])
    .await;

    let answer = preflight(&app, APP_ORIGIN, "POST", "authorization, content-type").await;
    assert_eq!(answer.status(), StatusCode::OK);
    let headers = answer.headers();
    assert_eq!(
        header(headers, "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    let methods = list(headers, "access-control-allow-methods");
    for method in ["get", "post", "patch", "delete", "options"] {
        assert!(methods.contains(&method.to_owned()), "{methods:?}");
    }
    let allowed = list(headers, "access-control-allow-headers");
    for name in ["authorization", "content-type", "accept", "last-event-id"] {
        assert!(allowed.contains(&name.to_owned()), "{allowed:?}");
    }
    assert_eq!(header(headers, "access-control-max-age"), Some("3600"));
    assert!(list(headers, "vary").contains(&"origin".to_owned()));
    assert_eq!(
        header(headers, "access-control-allow-credentials"),
        None,
        "credentials are bearer headers, never cookies"
    );

    // The request that follows is answered with the headers a page reads.
    let created = create_from(&app, APP_ORIGIN).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    assert_eq!(
        header(created.headers(), "access-control-allow-origin"),
        Some(APP_ORIGIN)
    );
    let exposed = list(created.headers(), "access-control-expose-headers");
    for name in [
        "location",
        "retry-after",
        "www-authenticate",
        "x-request-id",
    ] {
        assert!(exposed.contains(&name.to_owned()), "{exposed:?}");
    }
    let second = create_from(&app, "http://localhost:5173").await;
    assert_eq!(
        header(second.headers(), "access-control-allow-origin"),
        Some("http://localhost:5173")
    );

    // A foreign origin's preflight is refused before CORS could answer it.
    let foreign = preflight(&app, "https://evil.example", "POST", "content-type").await;
    assert_eq!(
        header(foreign.headers(), "access-control-allow-origin"),
        None
    );
    let foreign = problem(foreign, StatusCode::FORBIDDEN).await;
    assert_eq!(foreign["type"], "urn:colloquy:problem:forbidden-origin");

    // A method or header not offered is a problem too, never a bare text.
    for (method, headers) in [("PUT", "content-type"), ("POST", "x-secret-sauce")] {
        let refused = problem(
            preflight(&app, APP_ORIGIN, method, headers).await,
            StatusCode::BAD_REQUEST,
        )
        .await;
        assert!(
            refused["detail"]
                .as_str()
                .unwrap()
                .contains("CORS preflight"),
            "{refused}"
        );
    }
    let opaque = create_from(&app, "null").await;
    assert_eq!(
        opaque.status(),
        StatusCode::FORBIDDEN,
        "only `*` admits `Origin: null`"
    );
}

#[tokio::test]
async fn a_star_allows_every_origin_with_the_wildcard() {
    let app = spawn_app_with(&[("COLLOQUY_CORS_ORIGINS", "*")]).await;
    let answer = preflight(&app, "https://anyone.example", "PATCH", "authorization").await;
    assert_eq!(answer.status(), StatusCode::OK);
    assert_eq!(
        header(answer.headers(), "access-control-allow-origin"),
        Some("*")
    );
    for origin in ["https://anyone.example", "null"] {
        let created = create_from(&app, origin).await;
        assert_eq!(created.status(), StatusCode::CREATED, "{origin}");
        assert_eq!(
            header(created.headers(), "access-control-allow-origin"),
            Some("*")
        );
    }
}

#[tokio::test]
async fn without_cors_origins_no_cors_header_is_sent() {
    let app = spawn_app().await;
    let own = app.base.clone();
    let created = create_from(&app, &own).await;
    assert_eq!(created.status(), StatusCode::CREATED);
    let answer = preflight(&app, &own, "POST", "content-type").await;
    assert_eq!(
        answer.status(),
        StatusCode::METHOD_NOT_ALLOWED,
        "no preflight is answered"
    );
    for response in [created.headers(), answer.headers()] {
        let cors: Vec<_> = response
            .keys()
            .filter(|name| name.as_str().starts_with("access-control-"))
            .collect();
        assert!(cors.is_empty(), "{cors:?}");
    }
}

#[tokio::test]
async fn a_loopback_server_refuses_host_names_a_rebinding_page_would_send() {
    let app = spawn_app().await;
    let port = app.base.rsplit(':').next().unwrap().to_owned();
    for path in ["/", "/api/v1/sessions", "/docs", "/healthz"] {
        let response = app
            .http
            .get(app.url(path))
            .header(HOST, format!("rebind.evil.example:{port}"))
            .send()
            .await
            .unwrap();
        let refused = problem(response, StatusCode::FORBIDDEN).await;
        assert_eq!(
            refused["type"], "urn:colloquy:problem:forbidden-host",
            "{path}"
        );
        assert!(refused["detail"]
            .as_str()
            .unwrap()
            .contains("rebind.evil.example"));
    }
    for host in [
        format!("localhost:{port}"),
        format!("colloquy.localhost:{port}"),
        format!("127.0.0.1:{port}"),
    ] {
        let response = app
            .http
            .get(app.url("/api/v1/sessions"))
            .header(HOST, &host)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{host}");
    }
}

#[tokio::test]
async fn a_server_on_a_public_address_answers_any_host_name() {
    let app = spawn_app_with(&[
        ("COLLOQUY_ADDR", "0.0.0.0:0"),
        ("COLLOQUY_ALLOW_ANONYMOUS", "true"),
    ])
    .await;
    let response = app
        .http
        .get(app.url("/api/v1/sessions"))
        .header(HOST, "chat.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Its own origin is the one of the name it was asked for.
    let created = app
        .http
        .post(app.url("/api/v1/sessions"))
        .header(HOST, "chat.example.com")
        .header(ORIGIN, "https://chat.example.com")
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), StatusCode::CREATED);
}

#[tokio::test]
async fn the_metrics_token_guards_metrics() {
    let app = spawn_app_with(&[("COLLOQUY_METRICS_TOKEN", "scrape-secret-for-tests")]).await;
    let scrape = |bearer: Option<&'static str>| {
        let mut request = app.http.get(app.url("/metrics"));
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    for bearer in [
        None,
        Some("scrape-secret-for-test"),
        Some("scrape-secret-for-tests-2"),
    ] {
        let response = scrape(bearer).await.unwrap();
        assert_eq!(
            header(response.headers(), "www-authenticate"),
            Some("Bearer")
        );
        let refused = problem(response, StatusCode::UNAUTHORIZED).await;
        assert!(
            !refused.to_string().contains("scrape-secret"),
            "the token is never told: {refused}"
        );
    }
    let scraped = scrape(Some("scrape-secret-for-tests")).await.unwrap();
    assert_eq!(scraped.status(), StatusCode::OK);
    assert!(scraped
        .text()
        .await
        .unwrap()
        .contains("http_requests_total"));
    // The probes stay open to anyone.
    app.assert_healthy().await;

    let open = spawn_app().await;
    let response = open.http.get(open.url("/metrics")).send().await.unwrap();
    assert_eq!(
        response.status(),
        StatusCode::OK,
        "without a token, /metrics is open"
    );
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(app.base.trim_start_matches("http://"))
        .await
        .unwrap()
}

async fn write_all(stream: &TcpStream, mut bytes: &[u8]) -> std::io::Result<()> {
    while !bytes.is_empty() {
        stream.writable().await?;
        match stream.try_write(bytes) {
            Ok(written) => bytes = &bytes[written..],
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(error) => return Err(error),
        }
    }
    Ok(())
}

/// Everything the server sends until it closes the connection (a reset
/// counts as closing it).
async fn read_until_closed(stream: &TcpStream) -> String {
    let mut received = Vec::new();
    let mut buffer = [0_u8; 4096];
    loop {
        if stream.readable().await.is_err() {
            break;
        }
        match stream.try_read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => received.extend_from_slice(&buffer[..read]),
            Err(error) if error.kind() == ErrorKind::WouldBlock => {}
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&received).into_owned()
}

/// Sends `head`, then `drip` every 200 ms, until the server closes the
/// connection: what it answered, and how long that took.
async fn trickle(app: &TestApp, head: &str, drip: &[u8]) -> (String, Duration) {
    let stream = connect(app).await;
    let started = Instant::now();
    let sender = async {
        write_all(&stream, head.as_bytes()).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            write_all(&stream, drip).await?;
        }
    };
    let answer = tokio::time::timeout(Duration::from_secs(8), async {
        tokio::select! {
            answer = read_until_closed(&stream) => answer,
            result = sender => {
                let _: std::io::Result<()> = result;
                read_until_closed(&stream).await
            }
        }
    })
    .await
    .expect("the server cuts a slow client off");
    (answer, started.elapsed())
}

#[tokio::test]
async fn a_client_trickling_its_request_head_is_cut_off() {
    let app = spawn_app_with(&[("COLLOQUY_CLIENT_TIMEOUT_SECS", "1")]).await;
    let head = "GET /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    let (answer, took) = trickle(&app, head, b"X-Slow: 1\r\n").await;
    // actix's own default is 5 s: the configured second is what cut it.
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&took),
        "cut off at the timeout: {took:?}"
    );
    assert!(
        answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
        "a 408 or nothing: {answer}"
    );
    app.assert_healthy().await;
}

#[tokio::test]
async fn a_client_trickling_its_body_gets_408_and_is_cut_off() {
    let app = spawn_app_with(&[("COLLOQUY_CLIENT_TIMEOUT_SECS", "1")]).await;
    let head = "POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n\
                Content-Type: application/json\r\nContent-Length: 200\r\n\r\n{";
    let (answer, took) = trickle(&app, head, b" ").await;
    assert!(
        (Duration::from_millis(900)..Duration::from_secs(4)).contains(&took),
        "cut off at the timeout: {took:?}"
    );
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    assert!(
        answer.contains("urn:colloquy:problem:request-timeout"),
        "{answer}"
    );
    let sessions: Value = app
        .http
        .get(app.url("/api/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["data"], json!([]), "nothing was created");
}

#[tokio::test]
async fn event_streams_stay_open_long_past_the_client_timeout() {
    let app = spawn_app_with(&[("COLLOQUY_CLIENT_TIMEOUT_SECS", "1")]).await;
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;

    // A reply that takes about three timeouts to stream, on the send's own stream.
    app.fake
        .push(Behaviour::text("one two three four five six").pace(Duration::from_millis(500)));
    let response = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{session}/messages")))
        .header(ACCEPT, "text/event-stream")
        .json(&json!({ "content": "take your time" }))
        .send()
        .await
        .unwrap();
    let started = Instant::now();
    let mut sent = SseReader::new(response);
    let user = sent.next().await.unwrap();
    let assistant = sent.next().await.unwrap();
    assert_eq!(user.data["role"], "user");
    let id = assistant.data["id"].as_str().unwrap().to_owned();
    let events = sent.until_reply_ends(&id).await;
    assert!(
        started.elapsed() > Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(events.last().unwrap().event, "message.completed");

    // The watcher, open all along, saw the whole turn too.
    let first = watcher
        .next()
        .await
        .expect("the watching stream is still open");
    assert_eq!(first.event, "message.created");
    let seen = watcher.until_reply_ends(&id).await;
    assert_eq!(seen.last().unwrap().event, "message.completed");
}

#[tokio::test]
async fn connections_beyond_the_limit_wait_for_one_to_close() {
    // One connection per worker: the server holds as many as it has workers.
    let app = spawn_app_with(&[("COLLOQUY_MAX_CONNECTIONS", "1")]).await;
    let workers = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    let request = "GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n";
    let mut held = Vec::new();
    for _ in 0..workers {
        let stream = connect(&app).await;
        write_all(&stream, request.as_bytes()).await.unwrap();
        let mut buffer = [0_u8; 1024];
        stream.readable().await.unwrap();
        let mut read = 0;
        while read == 0 {
            match stream.try_read(&mut buffer) {
                Ok(count) => read = count,
                Err(error) if error.kind() == ErrorKind::WouldBlock => {
                    stream.readable().await.unwrap()
                }
                Err(error) => panic!("{error}"),
            }
        }
        assert!(String::from_utf8_lossy(&buffer[..read]).starts_with("HTTP/1.1 200"));
        held.push(stream);
    }

    let waiting = tokio::spawn({
        let http = reqwest::Client::new();
        let url = app.url("/healthz");
        async move { http.get(url).send().await.map(|response| response.status()) }
    });
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        !waiting.is_finished(),
        "a connection over the limit is not served yet"
    );
    drop(held.pop());
    let status = tokio::time::timeout(Duration::from_secs(3), waiting)
        .await
        .expect("served once a connection closed")
        .unwrap()
        .unwrap();
    assert_eq!(status, 200);
}

#[tokio::test]
async fn bad_edge_settings_are_refused_at_start_up_naming_the_variable() {
    let fake = colloquy_fake_upstream::FakeUpstream::start().await;
    let db_dir = tempfile::tempdir().unwrap();
    for (name, bad) in [
        ("COLLOQUY_CORS_ORIGINS", "https://app.example/"),
        ("COLLOQUY_CORS_ORIGINS", "app.example"),
        ("COLLOQUY_MAX_CONNECTIONS", "lots"),
        ("COLLOQUY_CLIENT_TIMEOUT_SECS", "-1"),
    ] {
        let vars = test_env(&fake, &db_dir, &[(name, bad)]);
        let error = colloquy::Config::from_lookup(|key| vars.get(key).cloned()).unwrap_err();
        let error = format!("{error:#}");
        assert!(error.contains(name), "{name}={bad}: {error}");
    }
    let vars = test_env(
        &fake,
        &db_dir,
        &[
            ("COLLOQUY_CLIENT_TIMEOUT_SECS", "0"),
            ("COLLOQUY_MAX_CONNECTIONS", "0"),
        ],
    );
    let config = config_from(&vars);
    assert_eq!(
        config.edges.client_timeout,
        Duration::ZERO,
        "0 turns the timeout off"
    );
    assert_eq!(config.edges.max_connections, 0, "0 turns the limit off");
}
