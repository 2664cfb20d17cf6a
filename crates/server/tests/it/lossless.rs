//! No event is ever lost silently: across replies, for slow clients, under
//! the log's limits, on delete and across restarts; and the retry budget
//! counts per reply.

use std::net::SocketAddr;
use std::time::Duration;

use colloquy_fake_upstream::{Behaviour, ScriptedToolCall};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::{timeout, Instant};

use crate::support::{spawn_app, spawn_app_with, start_on, text_of, Sse, SseReader, TestApp};

const WORDS: &str =
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";
const OTHER_WORDS: &str = "uno dos tres cuatro cinco seis siete ocho nueve diez once doce trece";

/// An event id as a number.
fn id_of(event: &Sse) -> u64 {
    event
        .id
        .as_deref()
        .expect("every event has an id")
        .parse()
        .expect("event ids are decimal integers")
}

fn assert_strictly_increasing(events: &[Sse]) {
    let ids: Vec<u64> = events.iter().map(id_of).collect();
    assert!(
        ids.windows(2).all(|pair| pair[0] < pair[1]),
        "ids increase, none twice: {ids:?}"
    );
}

/// The message an event is about: its own id for a whole message, else the
/// `message_id` it names.
fn message_of(event: &Sse) -> Option<&str> {
    match event.event.as_str() {
        "message.created" | "message.completed" | "message.failed" => event.data["id"].as_str(),
        _ => event.data["message_id"].as_str(),
    }
}

fn is_end_of(event: &Sse, message_id: &str) -> bool {
    matches!(event.event.as_str(), "message.completed" | "message.failed")
        && event.data["id"] == message_id
}

async fn read_n(reader: &mut SseReader, count: usize) -> Vec<Sse> {
    let mut events = Vec::new();
    for _ in 0..count {
        events.push(reader.next().await.expect("an event"));
    }
    events
}

fn socket_addr(app: &TestApp) -> SocketAddr {
    app.base
        .strip_prefix("http://")
        .unwrap()
        .parse()
        .expect("the test server listens on an IP address")
}

/// An event stream read over a bare socket, as slowly as the test likes and
/// with a receive buffer as small as it likes: reqwest would read ahead into
/// buffers of its own. It tells a response that completed (the chunked
/// body's last chunk) from a connection that was merely closed.
struct RawEvents {
    socket: TcpStream,
    /// Bytes received and not decoded yet.
    raw: Vec<u8>,
    /// The body decoded so far and not parsed into events yet.
    body: Vec<u8>,
    complete: bool,
}

impl RawEvents {
    /// Sends `method path` (with `body` as JSON, if any) asking for an event
    /// stream, and reads the response's head, which must be a `200` event
    /// stream.
    async fn open(
        addr: SocketAddr,
        recv_buffer: Option<u32>,
        method: &str,
        path: &str,
        body: Option<&Value>,
    ) -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        if let Some(size) = recv_buffer {
            socket.set_recv_buffer_size(size).unwrap();
        }
        let mut socket = socket.connect(addr).await.unwrap();
        let mut request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\nConnection: close\r\n"
        );
        let body = body.map(Value::to_string).unwrap_or_default();
        if !body.is_empty() {
            request.push_str(&format!(
                "Content-Type: application/json\r\nContent-Length: {}\r\n",
                body.len()
            ));
        }
        request.push_str("\r\n");
        request.push_str(&body);
        socket.write_all(request.as_bytes()).await.unwrap();
        let mut events = Self {
            socket,
            raw: Vec::new(),
            body: Vec::new(),
            complete: false,
        };
        let end = loop {
            if let Some(end) = find(&events.raw, b"\r\n\r\n") {
                break end;
            }
            assert!(events.read_more().await, "the server answered");
        };
        let head: Vec<u8> = events.raw.drain(..end + 4).collect();
        let head = String::from_utf8(head).unwrap().to_ascii_lowercase();
        assert!(head.starts_with("http/1.1 200"), "{head}");
        assert!(head.contains("content-type: text/event-stream"), "{head}");
        assert!(head.contains("transfer-encoding: chunked"), "{head}");
        events
    }

    /// Reads what the socket has; `false` when the server closed it.
    async fn read_more(&mut self) -> bool {
        let mut buffer = [0_u8; 4096];
        let read = timeout(Duration::from_secs(15), self.socket.read(&mut buffer))
            .await
            .expect("the stream makes progress")
            .expect("the connection holds");
        self.raw.extend_from_slice(&buffer[..read]);
        read > 0
    }

    /// Moves every chunk received whole into `body`.
    fn decode(&mut self) {
        while !self.complete {
            let Some(line_end) = find(&self.raw, b"\r\n") else {
                return;
            };
            let size_line = std::str::from_utf8(&self.raw[..line_end]).unwrap();
            let size_hex = size_line.split(';').next().unwrap().trim();
            let size = usize::from_str_radix(size_hex, 16).expect("a chunk size");
            let whole = line_end + 2 + size + 2;
            if self.raw.len() < whole {
                return;
            }
            self.body
                .extend_from_slice(&self.raw[line_end + 2..line_end + 2 + size]);
            self.raw.drain(..whole);
            self.complete = size == 0;
        }
    }

    /// The next event, skipping comments; `None` once the response is complete.
    async fn next(&mut self) -> Option<Sse> {
        loop {
            if let Some(end) = find(&self.body, b"\n\n") {
                let block: Vec<u8> = self.body.drain(..end + 2).collect();
                match Sse::parse(std::str::from_utf8(&block).unwrap()) {
                    Some(event) => return Some(event),
                    None => continue,
                }
            }
            self.decode();
            if find(&self.body, b"\n\n").is_some() {
                continue;
            }
            if self.complete {
                assert!(self.body.is_empty(), "the body ends with a whole event");
                return None;
            }
            assert!(
                self.read_more().await,
                "the connection was closed before the response was complete"
            );
        }
    }

    /// Reads until the response is complete, which must be within `within`.
    async fn rest(&mut self, within: Duration) -> Vec<Sse> {
        let mut events = Vec::new();
        let deadline = Instant::now() + within;
        while let Some(event) = tokio::time::timeout_at(deadline, self.next())
            .await
            .unwrap_or_else(|_| {
                let tail = &events[events.len().saturating_sub(3)..];
                panic!(
                    "the response did not end; of its {} events, the last: {tail:#?}",
                    events.len()
                )
            })
        {
            events.push(event);
        }
        events
    }
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack
        .windows(needle.len())
        .position(|window| window == needle)
}

/// Waits until the reply `message_id` has ended, as a client reading
/// `watcher` learns it: its final event, or a `stream.resync` after which
/// the stored history says it ended.
async fn until_reply_ended(
    app: &TestApp,
    session: &str,
    watcher: &mut SseReader,
    message_id: &str,
) {
    while let Some(event) = watcher.next().await {
        if is_end_of(&event, message_id) {
            return;
        }
        if event.event == "stream.resync" {
            app.stored_final(session, message_id).await;
            return;
        }
    }
    panic!("the session's stream ended before reply {message_id} did");
}

/// Sends `content` asking for its stream, as soon as the session's slot is
/// free (a client that learnt the last reply ended from the history may ask
/// a moment before the slot is given back).
async fn send_when_free(app: &TestApp, session: &str, content: &str) -> SseReader {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let response = app
            .http
            .post(app.url(&format!("/api/v1/sessions/{session}/messages")))
            .header("Accept", "text/event-stream")
            .json(&json!({ "content": content }))
            .send()
            .await
            .unwrap();
        if response.status() != 409 || Instant::now() > deadline {
            return SseReader::new(response);
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn a_client_back_after_the_next_reply_began_gets_the_rest_of_the_last_one_then_the_next() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(20)))
        .push(Behaviour::text(OTHER_WORDS).pace(Duration::from_millis(20)));
    let session = app.new_session().await;
    let mut witness = app.subscribe(&session, None).await;
    let mut leaver = app.subscribe(&session, None).await;
    let first = app.send_accepted(&session, "count").await;
    let first_id = first["assistant_message"]["id"].as_str().unwrap();

    // The client leaves after the turn's two messages and three words.
    let before = read_n(&mut leaver, 5).await;
    drop(leaver);
    let mut everything = witness.until_reply_ends(first_id).await;
    let second = app.send_accepted(&session, "again").await;
    let second_id = second["assistant_message"]["id"].as_str().unwrap();
    while everything
        .iter()
        .filter(|event| event.delta().is_some() && message_of(event) == Some(second_id))
        .count()
        < 2
    {
        everything.push(witness.next().await.expect("the second reply streams"));
    }

    // It comes back once the second reply has begun.
    let last_seen = before.last().unwrap().id.clone().unwrap();
    let mut resumed = app.subscribe(&session, Some(&last_seen)).await;
    let after = resumed.until_reply_ends(second_id).await;
    everything.extend(witness.until_reply_ends(second_id).await);

    assert_eq!(before[..], everything[..5]);
    assert_eq!(
        after[..],
        everything[5..],
        "the rest of the first reply, its end, then the second, each once"
    );
    assert_strictly_increasing(&after);
    let first_end = after
        .iter()
        .position(|event| is_end_of(event, first_id))
        .expect("the first reply's end");
    assert_eq!(after[first_end].event, "message.completed");
    assert_eq!(after[first_end].data["content"], WORDS);
    assert_eq!(text_of(&after[first_end + 1..]), OTHER_WORDS);
}

#[tokio::test]
async fn a_slow_send_stream_ends_with_its_own_reply_and_never_skips_silently() {
    const CHUNKS: usize = 40_000;
    // A reply of 40,000 tokens: no reply token limit cuts it short.
    let app = spawn_app_with(&[("COLLOQUY_MAX_REPLY_TOKENS", "0")]).await;
    app.fake
        .push(Behaviour::chunks((0..CHUNKS).map(|i| format!("{i} "))))
        .push(Behaviour::text("The second reply."));
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    let path = format!("/api/v1/sessions/{session}/messages");
    let mut slow = RawEvents::open(
        socket_addr(&app),
        Some(4096),
        "POST",
        &path,
        Some(&json!({"content": "count to forty thousand"})),
    )
    .await;
    let mut seen = Vec::new();
    for _ in 0..5 {
        seen.push(slow.next().await.expect("the first events"));
    }
    let user_id = seen[0].data["id"].as_str().unwrap().to_owned();
    let reply_id = seen[1].data["id"].as_str().unwrap().to_owned();
    assert_eq!(seen[1].data["role"], "assistant");

    // The slow client reads nothing more while its reply ends and another
    // client's reply starts and ends.
    until_reply_ended(&app, &session, &mut watcher, &reply_id).await;
    let mut next = send_when_free(&app, &session, "and now?").await;
    let next_user = next.next().await.unwrap();
    let next_reply = next.next().await.unwrap();
    let next_id = next_reply.data["id"].as_str().unwrap().to_owned();
    next.until_reply_ends(&next_id).await;

    seen.extend(slow.rest(Duration::from_secs(30)).await);
    let own = [user_id.as_str(), reply_id.as_str()];
    for event in &seen {
        assert!(
            event.event == "stream.resync" || message_of(event).is_some_and(|id| own.contains(&id)),
            "only this turn's events, never the next reply's ({} {}): {event:?}",
            next_user.data["id"],
            next_id
        );
    }
    let last = seen.last().unwrap();
    assert!(
        last.event == "stream.resync" || is_end_of(last, &reply_id),
        "the stream ends right after its reply's end or a resync: {last:?}"
    );
    assert!(
        seen[..seen.len() - 1]
            .iter()
            .all(|event| !is_end_of(event, &reply_id)),
        "nothing after the reply's end"
    );
    assert_strictly_increasing(&seen);
    // Every event of the turn follows the one before it, except where a
    // resync says some were skipped; each word is the next one.
    for pair in seen.windows(2) {
        if pair.iter().all(|event| event.event != "stream.resync") {
            assert_eq!(id_of(&pair[1]), id_of(&pair[0]) + 1, "no gap: {pair:?}");
        }
        if let (Some(a), Some(b)) = (pair[0].delta(), pair[1].delta()) {
            let number = |delta: &str| delta.trim().parse::<usize>().unwrap();
            assert_eq!(number(b), number(a) + 1, "no word skipped: {pair:?}");
        }
    }
    if is_end_of(last, &reply_id) {
        let expected: String = (0..CHUNKS).map(|i| format!("{i} ")).collect();
        assert_eq!(text_of(&seen), expected);
    } else {
        assert_eq!(last.data["reason"], "fell_behind", "{last:?}");
    }
    app.assert_healthy().await;
}

/// PATCHes the session's system prompt `count` times, reading each
/// `session.updated` from `watcher`; returns their ids.
async fn patch_prompts(
    app: &TestApp,
    session: &str,
    watcher: &mut SseReader,
    count: usize,
    prompt_chars: usize,
) -> Vec<u64> {
    let mut ids = Vec::new();
    for n in 0..count {
        let prompt = format!("{n:05} {}", "p".repeat(prompt_chars - 6));
        let response = app
            .http
            .patch(app.url(&format!("/api/v1/sessions/{session}")))
            .json(&json!({ "system_prompt": prompt }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let event = watcher.next().await.expect("the update's event");
        assert_eq!(event.event, "session.updated");
        assert_eq!(event.data["system_prompt"], prompt);
        ids.push(id_of(&event));
    }
    ids
}

/// Resumes from `ids[0]`, which the log's limits pushed out: the client is
/// told so first, with the oldest update kept, and what it reads next
/// carries on from there without a gap. Then returns what the log keeps:
/// the updates a client resuming just before that oldest one is given.
async fn kept_after_patches(app: &TestApp, session: &str, ids: &[u64]) -> Vec<Sse> {
    let mut resumed = app.subscribe(session, Some(&ids[0].to_string())).await;
    let first = resumed.next().await.unwrap();
    assert_eq!(first.event, "stream.resync", "{first:?}");
    assert_eq!(first.data["reason"], "not_kept");
    let oldest = first.data["oldest_event_id"].as_u64().unwrap();
    assert!(ids.contains(&oldest) && oldest > ids[1], "{oldest}");
    let last = *ids.last().unwrap();

    let mut replay = app
        .subscribe(session, Some(&(oldest - 1).to_string()))
        .await;
    let mut kept = Vec::new();
    loop {
        let event = replay.next().await.unwrap();
        assert_eq!(event.event, "session.updated", "{event:?}");
        let id = id_of(&event);
        kept.push(event);
        if id == last {
            break;
        }
    }
    let expected: Vec<u64> = ids.iter().copied().filter(|id| *id >= oldest).collect();
    let replayed: Vec<u64> = kept.iter().map(id_of).collect();
    assert_eq!(
        replayed, expected,
        "the newest updates, each once, in order"
    );

    // One more update reaches the client that was told to resync, after
    // nothing older than what is kept.
    let response = app
        .http
        .patch(app.url(&format!("/api/v1/sessions/{session}")))
        .json(&json!({ "title": "One more" }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let mut after = vec![first];
    while after.last().unwrap().data["title"] != "One more" {
        let event = resumed.next().await.unwrap();
        assert_eq!(event.event, "session.updated", "{event:?}");
        assert!(id_of(&event) >= oldest, "{event:?}");
        after.push(event);
    }
    assert_strictly_increasing(&after);
    kept
}

#[tokio::test]
async fn many_patches_of_a_large_prompt_keep_no_more_than_the_byte_limit() {
    const LIMIT: usize = 262_144;
    const PATCHES: usize = 300;
    let app = spawn_app_with(&[("COLLOQUY_EVENT_LOG_BYTES", "262144")]).await;
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    let ids = patch_prompts(&app, &session, &mut watcher, PATCHES, 30_000).await;

    let kept = kept_after_patches(&app, &session, &ids).await;
    let bytes: usize = kept.iter().map(|event| event.data.to_string().len()).sum();
    assert!(
        bytes <= LIMIT,
        "{} updates kept, {bytes} bytes of data",
        kept.len()
    );
    assert!(kept.len() < PATCHES && !kept.is_empty(), "{}", kept.len());
}

#[tokio::test]
async fn many_patches_keep_no_more_than_the_event_limit() {
    let app = spawn_app_with(&[("COLLOQUY_EVENT_LOG_MAX", "50")]).await;
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    let ids = patch_prompts(&app, &session, &mut watcher, 120, 100).await;

    let kept = kept_after_patches(&app, &session, &ids).await;
    assert!(
        (1..=50).contains(&kept.len()),
        "{} updates replayed",
        kept.len()
    );
}

#[tokio::test]
async fn deleting_a_session_mid_reply_ends_each_stream_after_the_cancelled_reply() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(100)));
    let session = app.new_session().await;
    let addr = socket_addr(&app);
    let events_path = format!("/api/v1/sessions/{session}/events");
    let mut watcher = RawEvents::open(addr, None, "GET", &events_path, None).await;
    let mut sender = RawEvents::open(
        addr,
        None,
        "POST",
        &format!("/api/v1/sessions/{session}/messages"),
        Some(&json!({"content": "count"})),
    )
    .await;
    let mut sent = Vec::new();
    for _ in 0..3 {
        sent.push(sender.next().await.expect("the turn begins"));
    }
    let reply_id = sent[1].data["id"].as_str().unwrap().to_owned();
    assert!(sent[2].delta().is_some());
    let mut watched = Vec::new();
    for _ in 0..3 {
        watched.push(watcher.next().await.expect("the turn begins"));
    }

    let deleted = app
        .http
        .delete(app.url(&format!("/api/v1/sessions/{session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    sent.extend(sender.rest(Duration::from_secs(5)).await);
    watched.extend(watcher.rest(Duration::from_secs(5)).await);

    for (name, events) in [("the send's stream", &sent), ("GET …/events", &watched)] {
        let last = events.last().unwrap();
        assert!(
            is_end_of(last, &reply_id),
            "{name} ends with the reply: {events:#?}"
        );
        assert_eq!(last.event, "message.completed", "{name}");
        assert_eq!(last.data["status"], "cancelled", "{name}");
        assert!(WORDS.starts_with(last.data["content"].as_str().unwrap()));
        assert_eq!(text_of(events), last.data["content"], "{name}");
        assert_strictly_increasing(events);
    }
    let gone = app
        .http
        .get(app.url(&format!("/api/v1/sessions/{session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status(), 404);
    app.assert_healthy().await;
}

#[tokio::test]
async fn after_a_restart_an_old_event_id_gets_a_resync_then_live_events() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    app.fake.push(Behaviour::text("Before the restart."));
    let (events, _) = app.chat(&session, "first").await;
    let old_id = events[2].id.clone().unwrap();
    app.stop().await;

    let app = start_on(app.fake, app.db_dir, &[]).await;
    let mut resumed = app.subscribe(&session, Some(&old_id)).await;
    // Far beyond any id given, yet a valid u64 (which 1 and 19 nines is not).
    let mut unknown = app.subscribe(&session, Some(&"9".repeat(19))).await;
    let renamed = app
        .http
        .patch(app.url(&format!("/api/v1/sessions/{session}")))
        .json(&json!({"title": "After the restart"}))
        .send()
        .await
        .unwrap();
    assert_eq!(renamed.status(), 200);

    let within = Duration::from_secs(5);
    for (reader, reason) in [
        (&mut resumed, "not_kept"),
        (&mut unknown, "unknown_event_id"),
    ] {
        let first = timeout(within, reader.next())
            .await
            .expect("an event")
            .unwrap();
        assert_eq!(first.event, "stream.resync", "{first:?}");
        assert_eq!(first.data["reason"], reason);
        let live = timeout(within, reader.next())
            .await
            .expect("an event")
            .unwrap();
        assert_eq!(live.event, "session.updated", "{live:?}");
        assert_eq!(live.data["title"], "After the restart");
        assert!(id_of(&live) > id_of(&first));
        assert!(
            id_of(&live) > old_id.parse::<u64>().unwrap(),
            "ids increase across restarts"
        );
    }
    // Live events go on: the next reply streams to the resumed client.
    app.fake.push(Behaviour::text("After the restart."));
    let sent = app.send_accepted(&session, "second").await;
    let reply_id = sent["assistant_message"]["id"].as_str().unwrap();
    let reply = resumed.until_reply_ends(reply_id).await;
    assert_eq!(text_of(&reply), "After the restart.");
    assert_strictly_increasing(&reply);
}

#[tokio::test]
async fn the_retry_budget_is_per_reply_not_per_round_of_tool_calls() {
    let app = spawn_app_with(&[("COLLOQUY_LLM_MAX_RETRIES", "2")]).await;
    app.fake
        .push(Behaviour::status(503))
        .push(Behaviour::status(503))
        .push(Behaviour::tool_calls([ScriptedToolCall::new(
            "call_1",
            "calculator",
            r#"{"expression": "2*(3+4)"}"#,
        )]));
    app.fake.set_default(Behaviour::status(503));
    let session = app.new_session().await;
    let (events, last) = app.chat(&session, "What is 2*(3+4)?").await;

    assert_eq!(events.last().unwrap().event, "message.failed");
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"]["code"], "upstream_unavailable");
    assert_eq!(last["tool_calls"][0]["result"]["value"], 14);
    assert_eq!(
        app.fake.request_count(),
        4,
        "two retries in all: 503, 503, the tool call, 503"
    );
    assert_eq!(app.history(&session).await[1], last);
}
