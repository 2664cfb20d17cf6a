//! Several replicas of the real binary on one PostgreSQL database and one
//! Redis: any replica serves any session, watches, resumes and cancels a
//! reply another runs, ends the replies of a replica that was killed, and
//! leaves alone those of replicas that are alive. And one replica losing
//! Redis: its replies still complete, and nothing is lost silently; or
//! losing PostgreSQL: `503`s, never a `500`, and all works again after.

use std::time::{Duration, Instant};

use colloquy_diesel::testing::TestDatabase;
use colloquy_fake_upstream::{Behaviour, FakeUpstream};
use reqwest::header::ACCEPT;
use serde_json::{json, Value};
use tempfile::TempDir;

use crate::binary::{succeeds, Served};
use crate::shared_redis::{host_and_port, Proxy, TestRedis};
use crate::support::{text_of, Sse, SseReader};

/// `COLLOQUY_LEASE_SECS` of every replica here: short, so a dead replica's
/// reply ends quickly, yet long enough that a replica on a loaded machine
/// renews its leases in time.
const LEASE: Duration = Duration::from_secs(2);

/// Fifty words: paced at [`PACE`], a reply that runs for five seconds.
const LONG: &str = "one two three four five six seven eight nine ten eleven twelve thirteen \
fourteen fifteen sixteen seventeen eighteen nineteen twenty alpha beta gamma delta epsilon zeta \
eta theta iota kappa lambda mu nu xi omicron pi rho sigma tau upsilon phi chi psi omega red \
orange yellow green blue indigo";

const PACE: Duration = Duration::from_millis(100);

/// What the replicas share: a fresh PostgreSQL database, a Redis prefix,
/// the fake upstream and an API key.
struct Cluster {
    database: TestDatabase,
    redis: TestRedis,
    dir: TempDir,
    fake: FakeUpstream,
    key: String,
}

impl Cluster {
    async fn new() -> Self {
        let redis = TestRedis::new();
        let database = TestDatabase::create().await;
        let dir = tempfile::tempdir().unwrap();
        let fake = FakeUpstream::start().await;
        let env = [("DATABASE_URL", database.url())];
        succeeds(dir.path(), &env, &["migrate"]).await;
        let created = succeeds(
            dir.path(),
            &env,
            &[
                "keys",
                "create",
                "--principal",
                "alice",
                "--label",
                "replicas",
            ],
        )
        .await;
        let key = created.lines().last().unwrap().to_owned();
        assert!(key.starts_with("ck_"), "{created}");
        Self {
            database,
            redis,
            dir,
            fake,
            key,
        }
    }

    /// A replica on the shared database and Redis.
    async fn replica(&self) -> Replica {
        self.replica_through(&self.redis.url).await
    }

    /// A replica whose Redis is at `redis_url` (a proxy in front of the
    /// shared one).
    async fn replica_through(&self, redis_url: &str) -> Replica {
        self.replica_with(redis_url, &[]).await
    }

    /// A replica with variables of its own beside the cluster's.
    async fn replica_with(&self, redis_url: &str, extra: &[(&str, &str)]) -> Replica {
        let lease = LEASE.as_secs().to_string();
        let upstream = self.fake.base_url();
        let mut env = vec![
            ("DATABASE_URL", self.database.url()),
            ("COLLOQUY_REDIS_URL", redis_url),
            ("COLLOQUY_REDIS_KEY_PREFIX", &self.redis.prefix),
            ("COLLOQUY_LEASE_SECS", &lease),
            ("COLLOQUY_AUTH", "keys"),
            ("COLLOQUY_AUTO_TITLE", "false"),
            ("OPENAI_BASE_URL", &upstream),
            ("OPENAI_MODEL", "fake-model"),
        ];
        env.extend_from_slice(extra);
        Replica {
            served: Served::start(self.dir.path(), &env).await,
            key: self.key.clone(),
        }
    }
}

/// One `colloquy serve` of the cluster, called with the cluster's key.
struct Replica {
    served: Served,
    key: String,
}

impl Replica {
    fn get(&self, path: &str) -> reqwest::RequestBuilder {
        self.served
            .http
            .get(self.served.url(path))
            .bearer_auth(&self.key)
    }

    fn post(&self, path: &str) -> reqwest::RequestBuilder {
        self.served
            .http
            .post(self.served.url(path))
            .bearer_auth(&self.key)
    }

    async fn new_session(&self) -> String {
        let response = self
            .post("/api/v1/sessions")
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let session: Value = response.json().await.unwrap();
        session["id"].as_str().unwrap().to_owned()
    }

    async fn send(&self, session: &str, content: &str) -> reqwest::Response {
        self.post(&format!("/api/v1/sessions/{session}/messages"))
            .json(&json!({ "content": content }))
            .send()
            .await
            .unwrap()
    }

    /// Sends without asking for the stream; the reply's id.
    async fn send_accepted(&self, session: &str, content: &str) -> String {
        let response = self.send(session, content).await;
        assert_eq!(response.status(), 202);
        let sent: Value = response.json().await.unwrap();
        sent["assistant_message"]["id"].as_str().unwrap().to_owned()
    }

    async fn send_streaming(&self, session: &str, content: &str) -> SseReader {
        let response = self
            .post(&format!("/api/v1/sessions/{session}/messages"))
            .header(ACCEPT, "text/event-stream")
            .json(&json!({ "content": content }))
            .send()
            .await
            .unwrap();
        SseReader::new(response)
    }

    async fn subscribe(&self, session: &str, last_event_id: Option<&str>) -> SseReader {
        let mut request = self.get(&format!("/api/v1/sessions/{session}/events"));
        if let Some(id) = last_event_id {
            request = request.header("Last-Event-ID", id);
        }
        SseReader::new(request.send().await.unwrap())
    }

    async fn history(&self, session: &str) -> Vec<Value> {
        let response = self
            .get(&format!("/api/v1/sessions/{session}/messages"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        let page: Value = response.json().await.unwrap();
        page["data"].as_array().unwrap().clone()
    }

    /// Waits until the stored reply `message_id` is final, and returns it.
    async fn stored_final(&self, session: &str, message_id: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
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

    /// A new assistant named `name`; its id.
    async fn new_assistant(&self, name: &str) -> String {
        let response = self
            .post("/api/v1/assistants")
            .json(&json!({ "name": name, "instructions": format!("You are {name}.") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let assistant: Value = response.json().await.unwrap();
        assistant["id"].as_str().unwrap().to_owned()
    }

    /// Sends `content` to `assistants`, without asking for the stream; the
    /// turn's replies' ids, in order.
    async fn send_to(&self, session: &str, content: &str, assistants: &[&str]) -> Vec<String> {
        let response = self
            .post(&format!("/api/v1/sessions/{session}/messages"))
            .json(&json!({ "content": content, "assistant_ids": assistants }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202);
        let sent: Value = response.json().await.unwrap();
        sent["assistant_messages"]
            .as_array()
            .unwrap()
            .iter()
            .map(|message| message["id"].as_str().unwrap().to_owned())
            .collect()
    }

    async fn readiness(&self) -> (u16, Value) {
        let response = self
            .served
            .http
            .get(self.served.url("/readyz"))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        (status, response.json().await.unwrap())
    }

    /// Polls `/readyz` until it says `status`, every answer a `200`.
    async fn wait_for_readiness(&self, status: &str) -> Value {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let (code, body) = self.readiness().await;
            assert_eq!(code, 200, "/readyz with the database up: {body}");
            if body["status"] == status {
                return body;
            }
            assert!(
                Instant::now() < deadline,
                "/readyz never said {status}: {body}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The assistant message a turn's events create: its id.
fn reply_id(events: &[Sse]) -> String {
    let created = events
        .iter()
        .find(|event| event.event == "message.created" && event.data["role"] == "assistant")
        .expect("the reply's message.created");
    created.data["id"].as_str().unwrap().to_owned()
}

/// Reads events until `count` deltas of the reply came.
async fn until_deltas(reader: &mut SseReader, count: usize) -> Vec<Sse> {
    let mut events = Vec::new();
    while events.iter().filter(|e: &&Sse| e.delta().is_some()).count() < count {
        events.push(reader.next().await.expect("the stream goes on"));
    }
    events
}

/// The events of a watcher from the turn's first `message.created` on.
fn from_turn_start(events: Vec<Sse>) -> Vec<Sse> {
    let start = events
        .iter()
        .position(|event| event.event == "message.created")
        .expect("the turn's message.created");
    events.into_iter().skip(start).collect()
}

#[tokio::test]
async fn a_reply_on_one_replica_is_read_watched_resumed_and_cancelled_on_another() {
    let cluster = Cluster::new().await;
    let (a, b) = tokio::join!(cluster.replica(), cluster.replica());

    // A session made on A is B's to read.
    let session = a.new_session().await;
    let read = b
        .get(&format!("/api/v1/sessions/{session}"))
        .send()
        .await
        .unwrap();
    assert_eq!(read.status(), 200);
    let read: Value = read.json().await.unwrap();
    assert_eq!(read["id"], session.as_str());

    // A reply sent on A, watched on B.
    let mut watcher = b.subscribe(&session, None).await;
    cluster.fake.push(Behaviour::text(LONG).pace(PACE));
    let mut sent = a.send_streaming(&session, "count for me").await;
    let mut on_a = until_deltas(&mut sent, 3).await;
    let reply = reply_id(&on_a);

    // One reply per session across replicas.
    let refused = b.send(&session, "me too").await;
    assert_eq!(refused.status(), 409);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );

    on_a.extend(sent.until_reply_ends(&reply).await);
    assert!(sent.next().await.is_none(), "the send stream ends");
    let end = on_a.last().unwrap();
    assert_eq!(end.event, "message.completed");
    assert_eq!(end.data["status"], "complete");
    assert_eq!(text_of(&on_a), LONG);

    let on_b = from_turn_start(watcher.until_reply_ends(&reply).await);
    assert_eq!(on_b, on_a, "B's watcher sees A's events, ids and all");
    assert!(on_a.iter().all(|event| event.id.is_some()), "{on_a:#?}");

    // Resuming on B from an id A gave: every later event, once.
    let resume_at = 4;
    let seen_id = on_a[resume_at].id.clone().unwrap();
    let mut resumed = b.subscribe(&session, Some(&seen_id)).await;
    let after = resumed.until_reply_ends(&reply).await;
    assert_eq!(after, on_a[resume_at + 1..], "resumed from {seen_id}");
    let stored = b.stored_final(&session, &reply).await;
    assert_eq!(stored["content"], LONG);

    // Cancelled from B while A runs it.
    cluster.fake.push(Behaviour::text(LONG).pace(PACE));
    let mut sent = a.send_streaming(&session, "count again").await;
    let started = until_deltas(&mut sent, 2).await;
    let reply = reply_id(&started);
    let cancelled = b
        .post(&format!("/api/v1/sessions/{session}/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), 200);
    let cancelled: Value = cancelled.json().await.unwrap();
    assert_eq!(cancelled, json!({"cancelled": true}));
    let rest = sent.until_reply_ends(&reply).await;
    let end = rest.last().unwrap();
    assert_eq!(end.event, "message.completed", "{end:?}");
    assert_eq!(end.data["status"], "cancelled");
    let kept = end.data["content"].as_str().unwrap();
    assert!(
        kept.len() < LONG.len() && LONG.starts_with(kept),
        "{kept:?}"
    );
    let stored = b.stored_final(&session, &reply).await;
    assert_eq!(stored["status"], "cancelled");
    assert_eq!(stored["content"], kept);
}

#[tokio::test]
async fn a_replica_killed_mid_reply_has_its_reply_ended_by_another() {
    let cluster = Cluster::new().await;
    let (mut a, b) = tokio::join!(cluster.replica(), cluster.replica());
    let session = a.new_session().await;
    let mut watcher = b.subscribe(&session, None).await;
    cluster.fake.push(Behaviour::text(LONG).pace(PACE));
    let reply = a
        .send_accepted(&session, "count until you are stopped")
        .await;
    // Two and a half seconds of words: the reply's text was flushed to the
    // database (every second) at least twice.
    let mut watched = until_deltas(&mut watcher, 25).await;
    a.served.kill().await;
    let killed = Instant::now();

    watched.extend(watcher.until_reply_ends(&reply).await);
    let took = killed.elapsed();
    let end = watched.last().unwrap();
    assert_eq!(end.event, "message.failed", "{end:?}");
    assert_eq!(end.data["status"], "interrupted");
    assert_eq!(end.data["error"]["code"], "interrupted");
    assert!(
        took < LEASE * 4,
        "the reply ended {took:?} after the kill, lease {LEASE:?}"
    );

    let stored = b.stored_final(&session, &reply).await;
    assert_eq!(stored["status"], "interrupted");
    let kept = stored["content"].as_str().unwrap();
    assert_eq!(end.data["content"], kept, "the event says what is stored");
    assert!(
        kept.len() >= "one two three four five six seven ".len(),
        "the text last flushed is kept: {kept:?}"
    );
    assert!(
        text_of(&watched).starts_with(kept),
        "{kept:?} is what was streamed"
    );

    // The session is free again, on B.
    let next = b.send_accepted(&session, "are you back?").await;
    let answer = b.stored_final(&session, &next).await;
    assert_eq!(answer["status"], "complete");
    assert_eq!(answer["content"], "Echo: are you back?");
}

#[tokio::test]
async fn a_replica_that_starts_leaves_the_running_replies_of_others_alone() {
    let cluster = Cluster::new().await;
    let (a, b) = tokio::join!(cluster.replica(), cluster.replica());
    let session = a.new_session().await;
    cluster.fake.push(Behaviour::text(LONG).pace(PACE));
    let mut sent = b.send_streaming(&session, "take your time").await;
    let started = until_deltas(&mut sent, 2).await;
    let reply = reply_id(&started);

    // C starts (and sweeps, at once and every half lease) while B runs the
    // reply, which goes on for more than a lease after C is up.
    let c = cluster.replica().await;
    let mut on_c = c.subscribe(&session, None).await;
    let rest = sent.until_reply_ends(&reply).await;
    let end = rest.last().unwrap();
    assert_eq!(end.event, "message.completed", "{end:?}");
    assert_eq!(end.data["status"], "complete");
    let watched = on_c.until_reply_ends(&reply).await;
    assert_eq!(watched.last(), Some(end), "C's watcher sees B's end");
    assert!(
        !watched.iter().any(|event| event.event == "message.failed"),
        "{watched:#?}"
    );
    for replica in [&a, &b, &c] {
        let stored = replica.stored_final(&session, &reply).await;
        assert_eq!(stored["status"], "complete");
        assert_eq!(stored["content"], LONG);
    }
}

#[tokio::test]
async fn a_replica_that_loses_redis_completes_its_reply_and_recovers() {
    let cluster = Cluster::new().await;
    let proxy = Proxy::start(cluster.redis.address()).await;
    let replica = cluster.replica_through(&proxy.url()).await;
    assert_eq!(replica.wait_for_readiness("ready").await["events"], "ok");
    let session = replica.new_session().await;
    let mut watcher = replica.subscribe(&session, None).await;
    cluster.fake.push(Behaviour::text(LONG).pace(PACE));
    let reply = replica.send_accepted(&session, "keep going").await;
    let before_cut = until_deltas(&mut watcher, 3).await;

    proxy.cut();
    let degraded = replica.wait_for_readiness("degraded").await;
    assert_eq!(degraded["database"], "ok");
    assert_eq!(degraded["events"], "unavailable");
    // Reading works without Redis; a new reply cannot be coordinated with
    // the other replicas, so it is refused as unavailable, not a 500.
    assert_eq!(replica.history(&session).await.len(), 2);
    let other = replica.new_session().await;
    let refused = replica.send(&other, "hello?").await;
    assert_eq!(refused.status(), 503);
    assert_eq!(
        refused.headers()["content-type"],
        "application/problem+json"
    );
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["status"], 503, "{problem}");
    // Nothing else answers a 5xx but a 503 problem either.
    let pokes = [
        replica.get(&format!("/api/v1/sessions/{session}")),
        replica.get("/api/v1/sessions"),
        replica.get(&format!("/api/v1/sessions/{other}/events")),
        replica.post(&format!("/api/v1/sessions/{other}/cancel")),
        replica.post(&format!("/api/v1/sessions/{other}/stream-token")),
    ];
    for poke in pokes {
        let response = poke.send().await.unwrap();
        let (url, status) = (response.url().path().to_owned(), response.status());
        if status.is_server_error() {
            assert_eq!(status, 503, "{url}");
            assert_eq!(
                response.headers()["content-type"],
                "application/problem+json",
                "{url}"
            );
        }
    }

    // The reply runs to its end and is stored whole.
    let stored = replica.stored_final(&session, &reply).await;
    assert_eq!(stored["status"], "complete", "{stored}");
    assert_eq!(stored["content"], LONG);

    proxy.restore();
    replica.wait_for_readiness("ready").await;
    // The watcher missed the rest of the reply: it is told so, never left
    // with a silent gap, and then gets the reply's end with the whole text.
    let mut before_resync = before_cut;
    loop {
        let event = watcher.next().await.expect("the watcher's stream goes on");
        if event.event == "stream.resync" {
            break;
        }
        assert!(
            event.delta().is_some(),
            "only deltas come before the resync: {event:?}"
        );
        before_resync.push(event);
    }
    assert!(LONG.starts_with(&text_of(&before_resync)));
    let end = watcher.until_reply_ends(&reply).await;
    let end = end.last().unwrap();
    assert_eq!(end.event, "message.completed", "{end:?}");
    assert_eq!(end.data["status"], "complete");
    assert_eq!(end.data["content"], LONG);

    // And the next message works.
    let next = replica.send_accepted(&session, "still there?").await;
    let answer = replica.stored_final(&session, &next).await;
    assert_eq!(answer["status"], "complete");
    assert_eq!(answer["content"], "Echo: still there?");
    let ended = watcher.until_reply_ends(&next).await;
    assert_eq!(ended.last().unwrap().data["status"], "complete");
}

#[tokio::test]
async fn a_reply_outlives_a_redis_outage_longer_than_its_lease() {
    let cluster = Cluster::new().await;
    let proxy = Proxy::start(cluster.redis.address()).await;
    let replica = cluster.replica_through(&proxy.url()).await;
    let session = replica.new_session().await;
    let mut watcher = replica.subscribe(&session, None).await;
    // Seven and a half seconds of words, and Redis away for three of them.
    cluster
        .fake
        .push(Behaviour::text(LONG).pace(Duration::from_millis(150)));
    let reply = replica.send_accepted(&session, "keep going").await;
    let mut watched = until_deltas(&mut watcher, 3).await;
    proxy.cut();
    tokio::time::sleep(LEASE + Duration::from_secs(1)).await;
    proxy.restore();

    // The lease lapsed while Redis was away, and nobody took it: the reply
    // takes it again, runs to its end and is stored whole.
    watched.extend(watcher.until_reply_ends(&reply).await);
    let end = watched.last().unwrap();
    assert_eq!(end.event, "message.completed", "{end:?}");
    assert_eq!(end.data["status"], "complete");
    assert_eq!(end.data["content"], LONG);
    assert!(
        watched.iter().any(|event| event.event == "stream.resync"),
        "the watcher is told that it missed some: {watched:#?}"
    );
    let stored = replica.stored_final(&session, &reply).await;
    assert_eq!(stored["status"], "complete");
    assert_eq!(stored["content"], LONG);
}

#[tokio::test]
async fn a_delete_on_one_replica_ends_the_reply_another_runs() {
    let cluster = Cluster::new().await;
    let (a, b) = tokio::join!(cluster.replica(), cluster.replica());
    let session = a.new_session().await;
    cluster.fake.push(Behaviour::text(LONG).pace(PACE));
    let mut sent = a.send_streaming(&session, "count for me").await;
    let started = until_deltas(&mut sent, 2).await;
    let reply = reply_id(&started);

    let deleted = b
        .served
        .http
        .delete(b.served.url(&format!("/api/v1/sessions/{session}")))
        .bearer_auth(&b.key)
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    let rest = sent.until_reply_ends(&reply).await;
    let end = rest.last().unwrap();
    assert_eq!(end.event, "message.completed", "{end:?}");
    assert_eq!(end.data["status"], "cancelled");
    assert!(
        sent.next().await.is_none(),
        "the stream ends with the session"
    );
    for replica in [&a, &b] {
        let gone = replica
            .get(&format!("/api/v1/sessions/{session}"))
            .send()
            .await
            .unwrap();
        assert_eq!(gone.status(), 404);
    }
}

#[tokio::test]
async fn a_principals_limits_are_counted_across_replicas() {
    let cluster = Cluster::new().await;
    let limits = [
        ("COLLOQUY_MAX_REPLIES_PER_PRINCIPAL", "1"),
        ("COLLOQUY_RATE_LIMIT_PER_MINUTE", "30"),
    ];
    let redis = cluster.redis.url.clone();
    let (a, b) = tokio::join!(
        cluster.replica_with(&redis, &limits),
        cluster.replica_with(&redis, &limits)
    );

    // One reply at a time for alice, whichever replica runs it.
    let (first, second) = (a.new_session().await, b.new_session().await);
    cluster.fake.push(Behaviour::text(LONG).pace(PACE));
    let mut sent = a.send_streaming(&first, "count for me").await;
    let reply = reply_id(&until_deltas(&mut sent, 2).await);
    let refused = b.send(&second, "and me").await;
    assert_eq!(refused.status(), 429);
    let problem: Value = refused.json().await.unwrap();
    assert_eq!(problem["limit"], "replies_at_once", "{problem}");
    b.post(&format!("/api/v1/sessions/{first}/cancel"))
        .send()
        .await
        .unwrap();
    sent.until_reply_ends(&reply).await;
    cluster.fake.push(Behaviour::text("fine"));
    assert_eq!(b.send(&second, "now me").await.status(), 202);

    // Thirty requests a minute in all: spread over two replicas, each
    // sees fewer than thirty, and still the thirty-first is refused.
    let mut refusals = Vec::new();
    for n in 0..40 {
        let replica = if n % 2 == 0 { &a } else { &b };
        let response = replica.get("/api/v1/me").send().await.unwrap();
        if response.status() == 429 {
            let problem: Value = response.json().await.unwrap();
            refusals.push(problem["limit"].clone());
        } else {
            assert_eq!(response.status(), 200);
        }
    }
    assert!(
        !refusals.is_empty() && refusals.iter().all(|limit| limit == "requests_per_minute"),
        "the rate is alice's across replicas: {refusals:?}"
    );
}

#[tokio::test]
async fn the_database_going_away_is_a_503_never_a_500_and_then_all_works_again() {
    let cluster = Cluster::new().await;
    let postgres = Proxy::start(host_and_port(cluster.database.url())).await;
    let through_proxy = postgres.in_front_of(cluster.database.url());
    let redis = cluster.redis.url.clone();
    let replica = cluster
        .replica_with(&redis, &[("DATABASE_URL", &through_proxy)])
        .await;
    let session = replica.new_session().await;

    postgres.cut();
    let (status, body) = replica.readiness().await;
    assert_eq!(status, 503, "/readyz without the database: {body}");
    for response in [
        replica
            .get(&format!("/api/v1/sessions/{session}/messages"))
            .send()
            .await
            .unwrap(),
        replica.get("/api/v1/sessions").send().await.unwrap(),
        replica.send(&session, "anyone there?").await,
        replica
            .post("/api/v1/sessions")
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    ] {
        assert_eq!(response.status(), 503, "{response:?}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
    }

    postgres.restore();
    replica.wait_for_readiness("ready").await;
    cluster.fake.push(Behaviour::text("back again"));
    let reply = replica.send_accepted(&session, "hello?").await;
    let stored = replica.stored_final(&session, &reply).await;
    assert_eq!(stored["content"], "back again");
    let history = replica.history(&session).await;
    assert_eq!(history.len(), 2, "no message lost or doubled: {history:#?}");
}

#[tokio::test]
async fn a_turn_of_two_on_one_replica_is_left_alone_by_the_others_sweepers() {
    let cluster = Cluster::new().await;
    let (a, b) = tokio::join!(cluster.replica(), cluster.replica());
    let session = a.new_session().await;
    let (poet, critic) = (
        a.new_assistant("Poet").await,
        a.new_assistant("Critic").await,
    );
    let mut watcher = b.subscribe(&session, None).await;
    // The poet speaks for five seconds (two and a half leases, ten of B's
    // sweeps) while the critic's reply waits, stored `streaming`, its turn.
    cluster.fake.push(Behaviour::text(LONG).pace(PACE));
    cluster.fake.push(Behaviour::text("Fine."));
    let replies = a.send_to(&session, "go", &[&poet, &critic]).await;
    assert_eq!(replies.len(), 2);

    let events = watcher.until_reply_ends(&replies[1]).await;
    let ends: Vec<&Sse> = events
        .iter()
        .filter(|e| matches!(e.event.as_str(), "message.completed" | "message.failed"))
        .collect();
    assert_eq!(ends.len(), 2, "{ends:#?}");
    assert!(
        ends.iter().all(|e| e.data["status"] == "complete"),
        "{ends:#?}"
    );
    assert_eq!(ends[1].data["content"], "Fine.");
    for reply in &replies {
        assert_eq!(b.stored_final(&session, reply).await["status"], "complete");
    }
}

#[tokio::test]
async fn a_replica_killed_mid_turn_has_every_reply_of_the_turn_ended_by_another() {
    let cluster = Cluster::new().await;
    let (mut a, b) = tokio::join!(cluster.replica(), cluster.replica());
    let session = a.new_session().await;
    let (poet, critic) = (
        a.new_assistant("Poet").await,
        a.new_assistant("Critic").await,
    );
    let mut watcher = b.subscribe(&session, None).await;
    cluster.fake.push(Behaviour::text(LONG).pace(PACE));
    let replies = a.send_to(&session, "go", &[&poet, &critic]).await;
    let mut watched = until_deltas(&mut watcher, 15).await;
    a.served.kill().await;

    watched.extend(watcher.until_reply_ends(&replies[1]).await);
    let ends: Vec<&Sse> = watched
        .iter()
        .filter(|e| matches!(e.event.as_str(), "message.completed" | "message.failed"))
        .collect();
    let ended: Vec<&str> = ends
        .iter()
        .map(|e| e.data["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ended,
        [replies[0].as_str(), replies[1].as_str()],
        "each reply ends, in order"
    );
    for (end, reply) in ends.iter().zip(&replies) {
        assert_eq!(end.data["status"], "interrupted", "{end:?}");
        let stored = b.stored_final(&session, reply).await;
        assert_eq!(stored["status"], "interrupted");
        assert_eq!(
            end.data["content"], stored["content"],
            "the event says what is stored"
        );
    }
    assert_eq!(ends[1].data["content"], "", "the critic never got to speak");
    assert_eq!(ends[1].data["name"], "Critic");

    // The session is free again, on B.
    let next = b.send_accepted(&session, "are you back?").await;
    assert_eq!(b.stored_final(&session, &next).await["status"], "complete");
}
