//! Who may do what, over real HTTP: credentials, owners, stream tokens.

use std::sync::Arc;
use std::time::Duration;

use colloquy_auth::{mint, ApiKeys};
use colloquy_diesel::SqliteRepository;
use colloquy_domain::Principal;
use colloquy_fake_upstream::Behaviour;
use colloquy_ports::ApiKeyStore;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::support::{spawn_app_with, SseReader, TestApp};

const SECRET: &str = "a-test-secret-that-is-long-enough-for-hs256";

pub(crate) async fn keyed() -> TestApp {
    spawn_app_with(&[("COLLOQUY_AUTH", "keys")]).await
}

/// The repository of `app`'s database, as `colloquy keys` opens it.
fn key_store(app: &TestApp) -> Arc<SqliteRepository> {
    let path = app.db_dir.path().join("colloquy.db");
    Arc::new(SqliteRepository::connect(&path.display().to_string(), 1).unwrap())
}

pub(crate) async fn new_key(app: &TestApp, principal: &str) -> String {
    let store = key_store(app);
    ApiKeys::issue(store.as_ref(), Principal::parse(principal).unwrap(), None)
        .await
        .unwrap()
        .key
}

async fn call(
    app: &TestApp,
    method: Method,
    path: &str,
    bearer: Option<&str>,
    body: Option<Value>,
) -> reqwest::Response {
    let mut request = app.http.request(method, format!("{}{path}", app.base));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    if let Some(body) = body {
        request = request.json(&body);
    }
    request.send().await.unwrap()
}

/// `GET …/events?token=`, as a browser's `EventSource` opens it: no header.
async fn events_with_token(app: &TestApp, session: &str, token: &str) -> reqwest::Response {
    app.http
        .get(format!(
            "{}/api/v1/sessions/{session}/events?token={token}",
            app.base
        ))
        .send()
        .await
        .unwrap()
}

async fn assert_unauthorized(response: reqwest::Response) -> Value {
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(response.headers()["www-authenticate"], "Bearer");
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    response.json().await.unwrap()
}

#[tokio::test]
async fn a_keyed_server_refuses_requests_without_a_good_key() {
    let app = keyed().await;
    let key = new_key(&app, "alice").await;
    let sessions = "/api/v1/sessions";

    let missing = assert_unauthorized(call(&app, Method::GET, sessions, None, None).await).await;
    assert!(
        missing["detail"].as_str().unwrap().contains("Bearer"),
        "{missing}"
    );
    for bad in [
        "ck_not-a-key",
        "nonsense",
        &format!("{key}x"),
        &key[..key.len() - 1],
    ] {
        let body =
            assert_unauthorized(call(&app, Method::GET, sessions, Some(bad), None).await).await;
        assert!(
            !body.to_string().contains(bad),
            "the refusal never echoes the credential"
        );
    }
    let basic = app
        .http
        .get(format!("{}{sessions}", app.base))
        .header("Authorization", format!("Basic {key}"))
        .send()
        .await
        .unwrap();
    assert_unauthorized(basic).await;

    let fine = call(&app, Method::GET, sessions, Some(&key), None).await;
    assert_eq!(fine.status(), StatusCode::OK);
    // What needs no credentials still does not.
    for open in ["/healthz", "/readyz", "/openapi.json", "/"] {
        let response = call(&app, Method::GET, open, None, None).await;
        assert_eq!(response.status(), StatusCode::OK, "{open}");
    }
}

#[tokio::test]
async fn a_revoked_key_is_refused_from_the_next_request_on() {
    let app = keyed().await;
    let store = key_store(&app);
    let issued = ApiKeys::issue(store.as_ref(), Principal::parse("alice").unwrap(), None)
        .await
        .unwrap();
    let ok = call(
        &app,
        Method::GET,
        "/api/v1/sessions",
        Some(&issued.key),
        None,
    )
    .await;
    assert_eq!(ok.status(), StatusCode::OK);
    assert!(store
        .revoke_api_key(issued.id, colloquy_domain::Timestamp::now())
        .await
        .unwrap());
    let body = assert_unauthorized(
        call(
            &app,
            Method::GET,
            "/api/v1/sessions",
            Some(&issued.key),
            None,
        )
        .await,
    )
    .await;
    assert!(
        body["detail"].as_str().unwrap().contains("revoked"),
        "{body}"
    );
}

/// Every route that names a session, with a body where it takes one.
fn session_routes(id: &str) -> Vec<(Method, String, Option<Value>)> {
    let s = format!("/api/v1/sessions/{id}");
    vec![
        (Method::GET, s.clone(), None),
        (Method::PATCH, s.clone(), Some(json!({"title": "mine now"}))),
        (Method::GET, format!("{s}/messages"), None),
        (
            Method::POST,
            format!("{s}/messages"),
            Some(json!({"content": "hi"})),
        ),
        (Method::GET, format!("{s}/events"), None),
        (Method::POST, format!("{s}/cancel"), None),
        (Method::GET, format!("{s}/summary"), None),
        (Method::POST, format!("{s}/stream-token"), None),
        (Method::GET, format!("/api/history/{id}"), None),
        (Method::GET, format!("/api/chat/receive/{id}"), None),
        (
            Method::POST,
            format!("/api/chat/send/{id}"),
            Some(json!({"message": "hi"})),
        ),
        (Method::DELETE, s, None),
    ]
}

#[tokio::test]
async fn another_principals_session_is_a_404_byte_for_byte_like_an_unknown_one() {
    let app = keyed().await;
    let alice = new_key(&app, "alice").await;
    let bob = new_key(&app, "bob").await;
    let created: Value = call(
        &app,
        Method::POST,
        "/api/v1/sessions",
        Some(&alice),
        Some(json!({"title": "alice's"})),
    )
    .await
    .json()
    .await
    .unwrap();
    let id = created["id"].as_str().unwrap().to_owned();
    let unknown = "019ad000-0000-7000-8000-000000000000";

    for ((method, path, body), (_, unknown_path, _)) in
        session_routes(&id).into_iter().zip(session_routes(unknown))
    {
        let theirs = call(&app, method.clone(), &path, Some(&bob), body.clone()).await;
        let nobodys = call(&app, method.clone(), &unknown_path, Some(&bob), body).await;
        assert_eq!(theirs.status(), StatusCode::NOT_FOUND, "{method} {path}");
        assert_eq!(
            nobodys.status(),
            StatusCode::NOT_FOUND,
            "{method} {unknown_path}"
        );
        assert_eq!(
            theirs.bytes().await.unwrap(),
            nobodys.bytes().await.unwrap(),
            "{method} {path}: the same body as an unknown session's"
        );
    }
    let listed: Value = call(&app, Method::GET, "/api/v1/sessions", Some(&bob), None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"], json!([]), "bob lists none of alice's");

    // Alice's session is untouched by all of that.
    let mine: Value = call(
        &app,
        Method::GET,
        &format!("/api/v1/sessions/{id}"),
        Some(&alice),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(mine["title"], "alice's");
    assert_eq!(mine["message_count"], 0);
}

#[tokio::test]
async fn a_stream_token_opens_only_its_own_sessions_events() {
    let app = keyed().await;
    let alice = new_key(&app, "alice").await;
    let mut ids = Vec::new();
    for _ in 0..2 {
        let created: Value = call(&app, Method::POST, "/api/v1/sessions", Some(&alice), None)
            .await
            .json()
            .await
            .unwrap();
        ids.push(created["id"].as_str().unwrap().to_owned());
    }
    let issued: Value = call(
        &app,
        Method::POST,
        &format!("/api/v1/sessions/{}/stream-token", ids[0]),
        Some(&alice),
        None,
    )
    .await
    .json()
    .await
    .unwrap();
    let token = issued["token"].as_str().unwrap();
    assert!(issued["expires_at"].as_str().unwrap().ends_with('Z'));

    // A browser's EventSource: no header, the token in the query.
    let events = events_with_token(&app, &ids[0], token).await;
    let mut events = SseReader::new(events);
    app.fake.push(Behaviour::text("hello there"));
    let sent = call(
        &app,
        Method::POST,
        &format!("/api/v1/sessions/{}/messages", ids[0]),
        Some(&alice),
        Some(json!({"content": "hi"})),
    )
    .await;
    assert_eq!(sent.status(), StatusCode::ACCEPTED);
    let first = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first.event, "message.created");

    // Not for the other session, and not as a bearer credential.
    let other = events_with_token(&app, &ids[1], token).await;
    assert_unauthorized(other).await;
    assert_unauthorized(call(&app, Method::GET, "/api/v1/sessions", Some(token), None).await).await;
}

#[tokio::test]
async fn a_jwt_server_takes_only_good_tokens_for_its_audience() {
    let app = spawn_app_with(&[
        ("COLLOQUY_AUTH", "jwt"),
        ("COLLOQUY_JWT_SECRET", SECRET),
        ("COLLOQUY_JWT_AUDIENCE", "colloquy"),
    ])
    .await;
    let alice = Principal::parse("alice").unwrap();
    let good = mint(
        SECRET.as_bytes(),
        &alice,
        Duration::from_secs(600),
        None,
        Some("colloquy"),
    )
    .unwrap();
    let ok = call(&app, Method::GET, "/api/v1/sessions", Some(&good), None).await;
    assert_eq!(ok.status(), StatusCode::OK);

    let wrong_audience = mint(
        SECRET.as_bytes(),
        &alice,
        Duration::from_secs(600),
        None,
        Some("someone-else"),
    )
    .unwrap();
    let wrong_secret = mint(
        b"another-secret-entirely-of-some-length",
        &alice,
        Duration::from_secs(600),
        None,
        Some("colloquy"),
    )
    .unwrap();
    // `alg: none`, unsigned, claiming to be alice for a long time.
    let none = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let header = b64.encode(br#"{"alg":"none","typ":"JWT"}"#);
        let payload = b64.encode(
            json!({"sub": "alice", "aud": "colloquy", "exp": 4_102_444_800_u64}).to_string(),
        );
        format!("{header}.{payload}.")
    };
    for refused in [wrong_audience, wrong_secret, none] {
        assert_unauthorized(
            call(&app, Method::GET, "/api/v1/sessions", Some(&refused), None).await,
        )
        .await;
    }
}
