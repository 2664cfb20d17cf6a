//! `GET /api/v1/sessions/{id}/ws` with a real WebSocket client: the same
//! events as SSE, resume, requests over the socket, errors, credentials,
//! pings, and a client that never reads.

use std::net::SocketAddr;
use std::time::Duration;

use colloquy_auth::{ApiKeys, IssuedKey};
use colloquy_diesel::SqliteRepository;
use colloquy_domain::{Principal, Timestamp};
use colloquy_fake_upstream::Behaviour;
use colloquy_ports::ApiKeyStore;
use futures::{SinkExt, StreamExt};
use reqwest::StatusCode;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, Instant};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::CloseFrame;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{connect_async, MaybeTlsStream, WebSocketStream};

use crate::support::{spawn_app, spawn_app_with, text_of, Sse, TestApp};

const WORDS: &str =
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";

/// A WebSocket client of one session, reading frames as JSON (the
/// assistants' tests use it too).
pub(crate) struct Socket {
    ws: WebSocketStream<MaybeTlsStream<TcpStream>>,
}

fn ws_url(app: &TestApp, session: &str, query: &str) -> String {
    format!(
        "{}/api/v1/sessions/{session}/ws{query}",
        app.base.replacen("http", "ws", 1)
    )
}

impl Socket {
    pub(crate) async fn open(app: &TestApp, session: &str, query: &str) -> Self {
        Self::try_open(app, session, query, None)
            .await
            .unwrap_or_else(|refused| panic!("the socket opens, not {refused:?}"))
    }

    /// Opens the socket (with `Authorization: Bearer` when `bearer` is
    /// given), or says with what status and body the upgrade was refused.
    async fn try_open(
        app: &TestApp,
        session: &str,
        query: &str,
        bearer: Option<&str>,
    ) -> Result<Self, (StatusCode, Value)> {
        let mut request = ws_url(app, session, query).into_client_request().unwrap();
        if let Some(bearer) = bearer {
            request
                .headers_mut()
                .insert("authorization", format!("Bearer {bearer}").parse().unwrap());
        }
        match connect_async(request).await {
            Ok((ws, response)) => {
                assert_eq!(response.status(), 101);
                Ok(Self { ws })
            }
            Err(WsError::Http(response)) => {
                let status = StatusCode::from_u16(response.status().as_u16()).unwrap();
                assert_eq!(
                    response.headers()["content-type"],
                    "application/problem+json"
                );
                let body = response.body().as_deref().unwrap_or_default();
                Err((status, serde_json::from_slice(body).unwrap()))
            }
            Err(other) => panic!("the upgrade failed: {other}"),
        }
    }

    pub(crate) async fn send(&mut self, frame: Value) {
        self.ws
            .send(Message::text(frame.to_string()))
            .await
            .unwrap();
    }

    /// The next text frame as JSON, answering nothing itself (tungstenite
    /// answers pings while it reads).
    async fn frame(&mut self) -> Value {
        loop {
            let message = timeout(Duration::from_secs(15), self.ws.next())
                .await
                .expect("the socket makes progress")
                .expect("the socket is open")
                .expect("a frame");
            match message {
                Message::Text(text) => return serde_json::from_str(&text).unwrap(),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected a text frame, got {other:?}"),
            }
        }
    }

    /// The next frame that is not an event of the session.
    async fn answer(&mut self) -> Value {
        loop {
            let frame = self.frame().await;
            if frame.get("id").is_none() {
                return frame;
            }
        }
    }

    /// The next event, in the shape an SSE client parses it into.
    pub(crate) async fn event(&mut self) -> Sse {
        let frame = self.frame().await;
        as_event(frame)
    }

    async fn until_reply_ends(&mut self, message_id: &str) -> Vec<Sse> {
        let mut events = Vec::new();
        loop {
            let event = self.event().await;
            let last = matches!(event.event.as_str(), "message.completed" | "message.failed")
                && event.data["id"] == message_id;
            events.push(event);
            if last {
                return events;
            }
        }
    }

    /// Reads until the server's close frame, which it returns with the
    /// text frames before it.
    async fn until_closed(&mut self) -> (Vec<Value>, CloseFrame) {
        let mut frames = Vec::new();
        loop {
            let message = timeout(Duration::from_secs(15), self.ws.next())
                .await
                .expect("the socket makes progress")
                .expect("a close frame before the end")
                .expect("a frame");
            match message {
                Message::Text(text) => frames.push(serde_json::from_str(&text).unwrap()),
                Message::Close(Some(close)) => return (frames, close),
                Message::Ping(_) | Message::Pong(_) => {}
                other => panic!("expected events then a close, got {other:?}"),
            }
        }
    }
}

fn as_event(frame: Value) -> Sse {
    let object = frame.as_object().expect("a frame is a JSON object");
    assert_eq!(
        object.len(),
        3,
        "an event frame is id, event, data: {frame}"
    );
    Sse {
        id: Some(frame["id"].as_str().expect("the id is text").to_owned()),
        event: frame["event"].as_str().unwrap().to_owned(),
        data: frame["data"].clone(),
    }
}

/// The problem of an error frame, checked to be one.
fn problem_of(frame: &Value) -> &Value {
    assert_eq!(frame["event"], "error", "{frame}");
    let problem = &frame["data"];
    assert!(problem["type"]
        .as_str()
        .unwrap()
        .starts_with("urn:colloquy:problem:"));
    assert!(problem["title"].is_string() && problem["detail"].is_string());
    problem
}

#[tokio::test]
async fn a_socket_sees_exactly_what_an_sse_client_sees() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(5)));
    let session = app.new_session().await;
    let mut sse = app.subscribe(&session, None).await;
    let mut socket = Socket::open(&app, &session, "").await;
    let sent = app.send_accepted(&session, "count").await;
    let reply_id = sent["assistant_message"]["id"].as_str().unwrap();

    let over_sse = sse.until_reply_ends(reply_id).await;
    let over_socket = socket.until_reply_ends(reply_id).await;
    assert_eq!(over_socket, over_sse, "same ids, names and data, in order");
    assert_eq!(text_of(&over_socket), WORDS);
    let stored = app.stored_final(&session, reply_id).await;
    assert_eq!(over_socket.last().unwrap().data, stored);
}

#[tokio::test]
async fn resuming_with_last_event_id_delivers_the_rest_exactly_once() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(20)));
    let session = app.new_session().await;
    let mut witness = Socket::open(&app, &session, "").await;
    let mut leaver = Socket::open(&app, &session, "").await;
    let sent = app.send_accepted(&session, "count").await;
    let reply_id = sent["assistant_message"]["id"].as_str().unwrap();

    let mut before = Vec::new();
    for _ in 0..10 {
        before.push(leaver.event().await);
    }
    drop(leaver);
    let tenth = before[9].id.clone().unwrap();
    let mut resumed = Socket::open(&app, &session, &format!("?last_event_id={tenth}")).await;
    let after = resumed.until_reply_ends(reply_id).await;
    let everything = witness.until_reply_ends(reply_id).await;
    let rejoined: Vec<Sse> = before.into_iter().chain(after).collect();
    assert_eq!(rejoined, everything, "nothing missing, nothing twice");

    // After the reply, a resume replays the same events an SSE resume does.
    let mut late = Socket::open(&app, &session, &format!("?last_event_id={tenth}")).await;
    let replayed = late.until_reply_ends(reply_id).await;
    assert_eq!(replayed[..], everything[10..]);
    let bad = Socket::try_open(&app, &session, "?last_event_id=yesterday", None).await;
    assert_eq!(bad.err().unwrap().0, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn a_send_over_the_socket_streams_refuses_a_second_and_cancels() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(50)));
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    let mut socket = Socket::open(&app, &session, "").await;
    socket
        .send(json!({"type": "send", "content": "count"}))
        .await;
    let user = socket.event().await;
    let assistant = socket.event().await;
    assert_eq!(user.event, "message.created");
    assert_eq!(user.data["role"], "user");
    assert_eq!(user.data["content"], "count");
    assert_eq!(assistant.data["status"], "streaming");
    let reply_id = assistant.data["id"].as_str().unwrap().to_owned();

    socket
        .send(json!({"type": "send", "content": "and again"}))
        .await;
    let mut seen = vec![user, assistant];
    let refused = loop {
        let frame = socket.frame().await;
        if frame.get("id").is_some() {
            seen.push(as_event(frame));
        } else {
            break frame;
        }
    };
    let problem = problem_of(&refused);
    assert_eq!(problem["status"], 409);
    assert_eq!(problem["type"], "urn:colloquy:problem:reply-in-progress");

    socket.send(json!({"type": "cancel"})).await;
    loop {
        let frame = socket.frame().await;
        if frame.get("id").is_some() {
            seen.push(as_event(frame));
        } else {
            assert_eq!(
                frame,
                json!({"event": "cancelled", "data": {"cancelled": true}})
            );
            break;
        }
    }
    // The reply's final event may come before the answer to the cancel, or after.
    let ended = |event: &Sse| {
        matches!(event.event.as_str(), "message.completed" | "message.failed")
            && event.data["id"] == reply_id.as_str()
    };
    if !seen.last().is_some_and(ended) {
        seen.extend(socket.until_reply_ends(&reply_id).await);
    }
    let last = seen.last().unwrap();
    assert_eq!(last.event, "message.completed");
    assert_eq!(last.data["status"], "cancelled");

    // The socket's events are the session's, once each: exactly what
    // another client saw, the refused send adding nothing.
    let watched = watcher.until_reply_ends(&reply_id).await;
    assert_eq!(seen, watched);
    let history = app.history(&session).await;
    assert_eq!(history.len(), 2, "the refused send stored nothing");
    assert_eq!(history[1], last.data);

    socket.send(json!({"type": "cancel"})).await;
    assert_eq!(
        socket.answer().await,
        json!({"event": "cancelled", "data": {"cancelled": false}})
    );
}

#[tokio::test]
async fn bad_frames_get_error_frames_and_the_socket_stays_usable() {
    let app = spawn_app_with(&[("COLLOQUY_MAX_MESSAGE_CHARS", "20")]).await;
    let session = app.new_session().await;
    let mut socket = Socket::open(&app, &session, "").await;
    let assistant = "0190c6a4-1f55-7a0e-8b1a-5a5a5a5a5a5a";
    for (frame, status) in [
        (json!("not an object"), 422),
        (json!({"type": "shout"}), 422),
        (json!({"content": "no type"}), 422),
        (json!({"type": "send"}), 422),
        (json!({"type": "send", "content": "   "}), 422),
        (json!({"type": "send", "content": "x".repeat(21)}), 422),
        (
            json!({"type": "send", "content": "hi", "assistant_ids": [assistant]}),
            404,
        ),
        (
            json!({"type": "send", "content": "hi", "assistant_ids": ["bob"]}),
            400,
        ),
        (
            json!({"type": "send", "content": "hi", "assistant_ids": []}),
            422,
        ),
    ] {
        socket.send(frame.clone()).await;
        let answer = socket.answer().await;
        assert_eq!(
            problem_of(&answer)["status"],
            status,
            "{frame} got {answer}"
        );
    }
    socket
        .ws
        .send(Message::text("{\"type\": \"send\", \"content\": "))
        .await
        .unwrap();
    assert_eq!(problem_of(&socket.answer().await)["status"], 400);
    socket
        .ws
        .send(Message::binary(b"{\"type\":\"ping\"}".to_vec()))
        .await
        .unwrap();
    assert_eq!(problem_of(&socket.answer().await)["status"], 415);
    socket.send(json!({"type": "ping"})).await;
    assert_eq!(socket.answer().await, json!({"event": "pong"}));
    assert!(app.history(&session).await.is_empty(), "nothing was stored");

    // Still open, still working.
    app.fake.push(Behaviour::text("fine"));
    socket
        .send(json!({"type": "send", "content": "hello"}))
        .await;
    let user = socket.event().await;
    assert_eq!(user.data["content"], "hello");
    let assistant = socket.event().await;
    let events = socket
        .until_reply_ends(assistant.data["id"].as_str().unwrap())
        .await;
    assert_eq!(events.last().unwrap().data["content"], "fine");
}

#[tokio::test]
async fn an_oversized_message_is_refused_and_the_socket_closed_as_too_big() {
    // Messages may be 12 bytes per character of content, plus 4 KiB.
    let app = spawn_app_with(&[("COLLOQUY_MAX_MESSAGE_CHARS", "20")]).await;
    let session = app.new_session().await;
    let mut socket = Socket::open(&app, &session, "").await;
    // The longest content, escaped as much as JSON can, fits.
    let longest = format!(
        r#"{{"type":"send","content":"{}"}}"#,
        "\\ud83d\\ude00".repeat(20)
    );
    app.fake.push(Behaviour::text("ok"));
    socket.ws.send(Message::text(longest)).await.unwrap();
    assert_eq!(socket.event().await.data["content"], "\u{1F600}".repeat(20));
    let assistant = socket.event().await;
    socket
        .until_reply_ends(assistant.data["id"].as_str().unwrap())
        .await;

    socket
        .send(json!({"type": "send", "content": "x".repeat(4400)}))
        .await;
    let (frames, close) = socket.until_closed().await;
    let problem = problem_of(frames.last().expect("an error frame"));
    assert_eq!(problem["status"], 413);
    assert!(problem["detail"].as_str().unwrap().contains("4336 bytes"));
    assert_eq!(close.code, CloseCode::Size);
    assert_eq!(close.reason.as_str(), "messages are limited to 4336 bytes");
    assert_eq!(app.history(&session).await.len(), 2, "only the first send");
    app.assert_healthy().await;
}

#[tokio::test]
async fn a_message_of_several_frames_is_read_whole_and_held_to_the_same_limit() {
    let app = spawn_app_with(&[("COLLOQUY_MAX_MESSAGE_CHARS", "20")]).await;
    let session = app.new_session().await;
    let addr: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let mut raw = RawSocket::open(addr, &format!("/api/v1/sessions/{session}/ws"), None).await;
    raw.send_frame(false, 0x1, br#"{"type":"#).await;
    raw.send_frame(true, 0x0, br#""ping"}"#).await;
    assert_eq!(
        raw.frame().await,
        Some((0x1, br#"{"event":"pong"}"#.to_vec())),
        "two fragments make one request"
    );
    // 4336 bytes at most, in pieces each under it.
    raw.send_frame(false, 0x1, &[b' '; 3000]).await;
    raw.send_frame(true, 0x0, &[b' '; 3000]).await;
    let (opcode, refused) = raw.frame().await.unwrap();
    assert_eq!(opcode, 0x1);
    let refused: Value = serde_json::from_slice(&refused).unwrap();
    assert_eq!(problem_of(&refused)["status"], 413);
    let (opcode, close) = raw.frame().await.unwrap();
    assert_eq!(opcode, 0x8);
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1009);
    assert_eq!(&close[2..], b"messages are limited to 4336 bytes");
}

#[tokio::test]
async fn an_unknown_session_is_a_404_before_the_upgrade() {
    let app = spawn_app().await;
    let unknown = "0190c6a4-1f55-7a0e-8b1a-5a5a5a5a5a5a";
    let (status, problem) = Socket::try_open(&app, unknown, "", None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(problem["type"], "urn:colloquy:problem:session-not-found");
    let (status, _) = Socket::try_open(&app, "not-an-id", "", None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // A plain GET is not an upgrade.
    let session = app.new_session().await;
    let plain = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{session}/ws")))
        .send()
        .await
        .unwrap();
    assert_eq!(plain.status(), 400);
    assert_eq!(plain.headers()["content-type"], "application/problem+json");
}

#[tokio::test]
async fn a_page_of_another_origin_cannot_open_a_socket() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    let open_from = |origin: String| {
        let mut request = ws_url(&app, &session, "").into_client_request().unwrap();
        request
            .headers_mut()
            .insert("origin", origin.parse().unwrap());
        connect_async(request)
    };
    // A WebSocket is not held to CORS by browsers: the server must refuse
    // another site's page itself, before the upgrade.
    match open_from("http://evil.example".to_owned()).await {
        Err(WsError::Http(response)) => {
            assert_eq!(response.status(), 403);
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json"
            );
        }
        other => panic!("another origin's page was let in: {:?}", other.map(|_| ())),
    }
    let (own, response) = open_from(app.base.clone()).await.unwrap();
    assert_eq!(response.status(), 101, "the server's own page is let in");
    drop(own);
}

fn key_store(app: &TestApp) -> SqliteRepository {
    let path = app.db_dir.path().join("colloquy.db");
    SqliteRepository::connect(&path.display().to_string(), 1).unwrap()
}

async fn new_key(app: &TestApp, principal: &str) -> String {
    issue_key(app, principal).await.key
}

async fn issue_key(app: &TestApp, principal: &str) -> IssuedKey {
    ApiKeys::issue(&key_store(app), Principal::parse(principal).unwrap(), None)
        .await
        .unwrap()
}

#[tokio::test]
async fn a_key_revoked_while_its_socket_is_open_sends_no_more() {
    let app = spawn_app_with(&[("COLLOQUY_AUTH", "keys")]).await;
    let issued = issue_key(&app, "alice").await;
    let created: Value = app
        .http
        .post(app.url("/api/v1/sessions"))
        .bearer_auth(&issued.key)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = created["id"].as_str().unwrap();
    let mut socket = Socket::try_open(&app, session, "", Some(&issued.key))
        .await
        .unwrap();
    socket.send(json!({"type": "cancel"})).await;
    assert_eq!(socket.answer().await["event"], "cancelled");

    key_store(&app)
        .revoke_api_key(issued.id, Timestamp::now())
        .await
        .unwrap();
    socket
        .send(json!({"type": "send", "content": "still me?"}))
        .await;
    let refused = socket.answer().await;
    assert_eq!(problem_of(&refused)["status"], 401);
    assert!(refused["data"]["detail"]
        .as_str()
        .unwrap()
        .contains("revoked"));
    assert!(app.fake.requests().is_empty(), "nothing was sent upstream");

    // Reading goes on, as an open event stream's would: another client's
    // send still reaches the socket.
    let other = new_key(&app, "alice").await;
    app.fake.push(Behaviour::text("hello"));
    let sent = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{session}/messages")))
        .bearer_auth(&other)
        .json(&json!({"content": "hi"}))
        .send()
        .await
        .unwrap();
    assert_eq!(sent.status(), 202);
    let sent: Value = sent.json().await.unwrap();
    let events = socket
        .until_reply_ends(sent["assistant_message"]["id"].as_str().unwrap())
        .await;
    assert_eq!(events.last().unwrap().data["content"], "hello");
}

#[tokio::test]
async fn a_keyed_server_wants_credentials_and_takes_a_stream_token() {
    let app = spawn_app_with(&[("COLLOQUY_AUTH", "keys")]).await;
    let alice = new_key(&app, "alice").await;
    let bob = new_key(&app, "bob").await;
    let created: Value = app
        .http
        .post(app.url("/api/v1/sessions"))
        .bearer_auth(&alice)
        .json(&json!({}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let session = created["id"].as_str().unwrap();

    let (status, problem) = Socket::try_open(&app, session, "", None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(problem["status"], 401);
    let (status, _) = Socket::try_open(&app, session, "?token=forged", None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let (status, _) = Socket::try_open(&app, session, "", Some(&bob))
        .await
        .err()
        .unwrap();
    assert_eq!(
        status,
        StatusCode::NOT_FOUND,
        "another's session is unknown"
    );

    let token: Value = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{session}/stream-token")))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = token["token"].as_str().unwrap();
    let mut by_token = Socket::try_open(&app, session, &format!("?token={token}"), None)
        .await
        .unwrap();
    let mut by_header = Socket::try_open(&app, session, "", Some(&alice))
        .await
        .unwrap();

    // The socket acts for its principal: a send over it is alice's.
    app.fake.push(Behaviour::text("hi alice"));
    by_token
        .send(json!({"type": "send", "content": "hello"}))
        .await;
    by_token.event().await;
    let assistant = by_token.event().await;
    let reply_id = assistant.data["id"].as_str().unwrap();
    let seen = by_token.until_reply_ends(reply_id).await;
    assert_eq!(seen.last().unwrap().data["content"], "hi alice");
    let also = by_header.until_reply_ends(reply_id).await;
    assert_eq!(also.last(), seen.last());
}

#[tokio::test]
async fn the_socket_holds_a_stream_place_and_counts_its_requests() {
    let app = spawn_app_with(&[
        ("COLLOQUY_MAX_STREAMS_PER_PRINCIPAL", "1"),
        ("COLLOQUY_RATE_LIMIT_PER_MINUTE", "5"),
    ])
    .await;
    // One request: the session.
    let session = app.new_session().await;
    // Two: the socket; it holds the one stream place.
    let mut socket = Socket::open(&app, &session, "").await;
    // Three: refused, no place left.
    let (status, problem) = Socket::try_open(&app, &session, "", None)
        .await
        .err()
        .unwrap();
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(problem["limit"], "streams_at_once");
    // Four and five: requests over the socket count as requests; pings do not.
    for _ in 0..3 {
        socket.send(json!({"type": "ping"})).await;
        assert_eq!(socket.answer().await, json!({"event": "pong"}));
    }
    for _ in 0..2 {
        socket.send(json!({"type": "cancel"})).await;
        assert_eq!(socket.answer().await["event"], "cancelled");
    }
    socket.send(json!({"type": "cancel"})).await;
    let limited = socket.answer().await;
    assert_eq!(problem_of(&limited)["status"], 429);
    assert_eq!(limited["data"]["limit"], "requests_per_minute");
    assert!(limited["retry_after"].as_u64().unwrap() >= 1);
}

#[tokio::test]
async fn closing_the_socket_gives_its_stream_place_back() {
    let app = spawn_app_with(&[("COLLOQUY_MAX_STREAMS_PER_PRINCIPAL", "1")]).await;
    let session = app.new_session().await;
    let mut socket = Socket::open(&app, &session, "").await;
    socket.ws.close(None).await.unwrap();
    // The server answers the close and ends the socket.
    while let Some(Ok(_)) = socket.ws.next().await {}
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        match Socket::try_open(&app, &session, "", None).await {
            Ok(_) => break,
            Err((StatusCode::TOO_MANY_REQUESTS, _)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            Err(other) => panic!("the place was not given back: {other:?}"),
        }
    }
}

/// A new session with a socket open on it and a reply, paced at
/// `pace_ms` a word, sent over it: the session, the socket, and the
/// reply's `message.created` (the user message's is read past).
async fn reply_over_a_socket(app: &TestApp, pace_ms: u64) -> (String, Socket, Sse) {
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(pace_ms)));
    let session = app.new_session().await;
    let mut socket = Socket::open(app, &session, "").await;
    socket
        .send(json!({"type": "send", "content": "count"}))
        .await;
    socket.event().await;
    let assistant = socket.event().await;
    (session, socket, assistant)
}

#[tokio::test]
async fn deleting_the_session_sends_the_final_events_then_a_close() {
    let app = spawn_app().await;
    let (session, mut socket, assistant) = reply_over_a_socket(&app, 100).await;
    let deleted = app
        .http
        .delete(app.url(&format!("/api/v1/sessions/{session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let (frames, close) = socket.until_closed().await;
    let last = as_event(frames.last().expect("the reply's final event").clone());
    assert_eq!(last.event, "message.completed");
    assert_eq!(last.data["id"], assistant.data["id"]);
    assert_eq!(last.data["status"], "cancelled");
    assert_eq!(close.code, CloseCode::Normal);
    assert_eq!(close.reason.as_str(), "the session was deleted");
}

#[tokio::test]
async fn a_shutdown_lets_the_reply_finish_then_closes_as_going_away() {
    let app = spawn_app().await;
    let (_, mut socket, assistant) = reply_over_a_socket(&app, 20).await;
    let service = app.service.clone();
    let shutdown = tokio::spawn(async move { service.shutdown(Duration::from_secs(5)).await });
    let (frames, close) = socket.until_closed().await;
    let last = as_event(frames.last().expect("the reply's final event").clone());
    assert_eq!(last.data["id"], assistant.data["id"]);
    assert_eq!(last.data["status"], "complete");
    assert_eq!(last.data["content"], WORDS);
    assert_eq!(close.code, CloseCode::Away);
    assert_eq!(close.reason.as_str(), "the server is shutting down");
    shutdown.await.unwrap();
}

/// A WebSocket client on a bare TCP socket: it reads frames but never
/// answers one, as a client that hung would; or, with a tiny receive
/// buffer and no reads at all, a client that stopped reading.
struct RawSocket {
    tcp: TcpStream,
    buffer: Vec<u8>,
}

impl RawSocket {
    async fn open(addr: SocketAddr, path: &str, recv_buffer: Option<u32>) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let mut tcp = socket.connect(addr).await.unwrap();
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
        );
        tcp.write_all(request.as_bytes()).await.unwrap();
        let mut raw = Self {
            tcp,
            buffer: Vec::new(),
        };
        let end = loop {
            if let Some(end) = raw.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break end;
            }
            assert!(raw.read_more().await, "the server answered the upgrade");
        };
        let head: Vec<u8> = raw.buffer.drain(..end + 4).collect();
        let head = String::from_utf8(head).unwrap();
        assert!(head.starts_with("HTTP/1.1 101"), "{head}");
        raw
    }

    /// Sends one client frame: masked, as the protocol wants, with a zero
    /// key (which leaves the payload as it is).
    async fn send_frame(&mut self, fin: bool, opcode: u8, payload: &[u8]) {
        let mut frame = vec![if fin { 0x80 } else { 0 } | opcode];
        match payload.len() {
            short @ 0..=125 => frame.push(0x80 | u8::try_from(short).unwrap()),
            medium @ 126..=0xffff => {
                frame.push(0x80 | 126);
                frame.extend_from_slice(&u16::try_from(medium).unwrap().to_be_bytes());
            }
            long => {
                frame.push(0x80 | 127);
                frame.extend_from_slice(&u64::try_from(long).unwrap().to_be_bytes());
            }
        }
        frame.extend_from_slice(&[0; 4]);
        frame.extend_from_slice(payload);
        self.tcp.write_all(&frame).await.unwrap();
    }

    async fn read_more(&mut self) -> bool {
        let mut chunk = [0_u8; 4096];
        let read = timeout(Duration::from_secs(15), self.tcp.read(&mut chunk))
            .await
            .expect("the server sends something")
            .unwrap_or(0);
        self.buffer.extend_from_slice(&chunk[..read]);
        read > 0
    }

    /// The next frame's opcode and payload (the server's are unmasked and
    /// whole); `None` once the server closed the connection.
    async fn frame(&mut self) -> Option<(u8, Vec<u8>)> {
        loop {
            if let Some((header, length)) = frame_length(&self.buffer) {
                if self.buffer.len() >= header + length {
                    let opcode = self.buffer[0] & 0x0f;
                    let frame: Vec<u8> = self.buffer.drain(..header + length).collect();
                    return Some((opcode, frame[header..].to_vec()));
                }
            }
            if !self.read_more().await {
                return None;
            }
        }
    }
}

/// The header length and payload length of the frame at the start of
/// `bytes`, once enough of it is there to say.
fn frame_length(bytes: &[u8]) -> Option<(usize, usize)> {
    let short = usize::from(*bytes.get(1)? & 0x7f);
    match short {
        126 => Some((
            4,
            usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
        )),
        127 => {
            let length: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
            Some((10, usize::try_from(u64::from_be_bytes(length)).ok()?))
        }
        short => Some((2, short)),
    }
}

#[tokio::test]
async fn a_client_that_stops_answering_is_closed_after_two_pings() {
    let app = spawn_app_with(&[("COLLOQUY_WS_PING_SECS", "0.3")]).await;
    let session = app.new_session().await;
    let addr: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    // A client that answers (tungstenite pongs while it reads) stays open
    // well past the timeout.
    let mut alive = Socket::open(&app, &session, "").await;
    let answering = tokio::spawn(async move {
        let until = Instant::now() + Duration::from_secs(2);
        while let Ok(Some(message)) = tokio::time::timeout_at(until, alive.ws.next()).await {
            let message = message.expect("the answering socket stays open");
            assert!(
                !message.is_close(),
                "the answering socket was closed: {message:?}"
            );
        }
        alive.send(json!({"type": "ping"})).await;
        alive.answer().await
    });
    let started = Instant::now();
    let mut silent = RawSocket::open(addr, &format!("/api/v1/sessions/{session}/ws"), None).await;
    let mut pings = 0;
    let close = loop {
        match silent.frame().await.expect("a close frame before the end") {
            (0x9, _) => pings += 1,
            (0x8, payload) => break payload,
            (opcode, payload) => panic!("unexpected frame {opcode}: {payload:?}"),
        }
    };
    let waited = started.elapsed();
    assert!(pings >= 1, "the server pinged first");
    assert!(
        waited >= Duration::from_millis(550) && waited < Duration::from_secs(3),
        "closed after {waited:?}"
    );
    assert_eq!(u16::from_be_bytes([close[0], close[1]]), 1001);
    assert_eq!(
        std::str::from_utf8(&close[2..]).unwrap(),
        "no answer to pings for 0.6 s"
    );
    assert!(silent.frame().await.is_none(), "then the connection closes");
    assert_eq!(
        answering.await.unwrap(),
        json!({"event": "pong"}),
        "the answering socket is still open"
    );
}

#[tokio::test]
async fn a_socket_that_never_reads_delays_no_one_and_is_let_go_of() {
    let app = spawn_app_with(&[
        ("COLLOQUY_WS_PING_SECS", "0.5"),
        ("COLLOQUY_MAX_STREAMS_PER_PRINCIPAL", "2"),
    ])
    .await;
    // About 4 MB of text in 4000 pieces, so twice that in frames: more
    // than the stalled client's buffers, the kernel's and the server's
    // queue for it can hold.
    let text: String = (0..4000)
        .map(|i| format!("{i:04}{} ", "x".repeat(995)))
        .collect();
    app.fake.push(Behaviour::text(text.clone()).split(4000));
    let session = app.new_session().await;
    let addr: SocketAddr = app.base.trim_start_matches("http://").parse().unwrap();
    let _stalled =
        RawSocket::open(addr, &format!("/api/v1/sessions/{session}/ws"), Some(4096)).await;
    let mut sse = app.subscribe(&session, None).await;
    let started = Instant::now();
    let sent = app.send_accepted(&session, "talk").await;
    let reply_id = sent["assistant_message"]["id"].as_str().unwrap();
    let events = timeout(Duration::from_secs(20), sse.until_reply_ends(reply_id))
        .await
        .expect("the SSE client gets the whole reply");
    assert_eq!(text_of(&events), text);
    assert_eq!(events.last().unwrap().data["status"], "complete");
    let stored = app.stored_final(&session, reply_id).await;
    assert_eq!(stored["content"].as_str().unwrap(), text);
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    // The stalled socket held its place while the server's writes to it
    // waited; once it is silent for two pings it is let go of, writes
    // pending or not, and its place is free again.
    let third = app.url(&format!("/api/v1/sessions/{session}/events"));
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let response = app.http.get(&third).send().await.unwrap();
        if response.status() == 200 {
            break;
        }
        assert_eq!(response.status(), 429, "only the place is missing");
        assert!(
            Instant::now() < deadline,
            "the stalled socket was never let go of"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    app.assert_healthy().await;
}
