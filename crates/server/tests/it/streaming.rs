//! Fan-out, late join, resume, cancel: every client sees the stored truth.

use std::time::Duration;

use colloquy_fake_upstream::{Behaviour, Outcome};
use serde_json::{json, Value};

use crate::support::{spawn_app, text_of, Sse, SseReader, TestApp};

const WORDS: &str =
    "one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen";

async fn read_n(reader: &mut SseReader, count: usize) -> Vec<Sse> {
    let mut events = Vec::new();
    for _ in 0..count {
        events.push(reader.next().await.expect("an event"));
    }
    events
}

#[tokio::test]
async fn two_subscribers_see_identical_events_equal_to_the_stored_reply() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(5)));
    let session = app.new_session().await;
    let mut first = app.subscribe(&session, None).await;
    let mut second = app.subscribe(&session, None).await;
    let sent = app.send_accepted(&session, "count").await;
    let reply_id = sent["assistant_message"]["id"].as_str().unwrap();

    let seen_first = first.until_reply_ends(reply_id).await;
    let seen_second = second.until_reply_ends(reply_id).await;
    assert_eq!(seen_first, seen_second, "same events, same ids, same order");
    let stored = app.stored_final(&session, reply_id).await;
    assert_eq!(text_of(&seen_first), stored["content"].as_str().unwrap());
    assert_eq!(stored["content"], WORDS);
    assert_eq!(seen_first.last().unwrap().data, stored);
}

#[tokio::test]
async fn a_late_subscriber_gets_the_reply_from_its_first_word() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(40)));
    let session = app.new_session().await;
    let mut early = app.subscribe(&session, None).await;
    let sent = app.send_accepted(&session, "count").await;
    let reply_id = sent["assistant_message"]["id"].as_str().unwrap();
    // Let a few words go by before the late client arrives.
    read_n(&mut early, 6).await;
    let mut late = app.subscribe(&session, None).await;
    let seen_late = late.until_reply_ends(reply_id).await;
    assert_eq!(seen_late[0].event, "message.created");
    assert_eq!(seen_late[0].data["role"], "user");
    assert_eq!(seen_late[1].data["id"], reply_id);
    assert_eq!(seen_late[2].delta(), Some("one "));
    assert_eq!(text_of(&seen_late), WORDS);
}

#[tokio::test]
async fn resuming_from_the_tenth_event_delivers_the_rest_exactly_once() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(20)));
    let session = app.new_session().await;
    let mut witness = app.subscribe(&session, None).await;
    let mut leaver = app.subscribe(&session, None).await;
    let sent = app.send_accepted(&session, "count").await;
    let reply_id = sent["assistant_message"]["id"].as_str().unwrap();

    let before = read_n(&mut leaver, 10).await;
    drop(leaver);
    let tenth = before[9].id.clone().unwrap();
    let mut resumed = app.subscribe(&session, Some(&tenth)).await;
    let after = resumed.until_reply_ends(reply_id).await;

    let everything = witness.until_reply_ends(reply_id).await;
    let rejoined: Vec<Sse> = before.into_iter().chain(after).collect();
    assert_eq!(rejoined, everything, "nothing missing, nothing twice");

    // The query parameter works as the header does, also after the reply ended.
    let by_query = app
        .http
        .get(app.url(&format!(
            "/api/v1/sessions/{session}/events?last_event_id={tenth}"
        )))
        .send()
        .await
        .unwrap();
    let mut by_query = SseReader::new(by_query);
    let replayed = by_query.until_reply_ends(reply_id).await;
    assert_eq!(replayed[..], everything[10..]);
}

#[tokio::test]
async fn a_client_that_leaves_does_not_stop_the_reply() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(20)));
    let session = app.new_session().await;
    let mut reader = app
        .send_streaming(&session, json!({"content": "count"}))
        .await;
    let events = read_n(&mut reader, 4).await;
    let reply_id = events[1].data["id"].as_str().unwrap().to_owned();
    drop(reader);
    let stored = app.stored_final(&session, &reply_id).await;
    assert_eq!(stored["status"], "complete");
    assert_eq!(stored["content"], WORDS);
}

#[tokio::test]
async fn cancel_on_disconnect_stops_the_reply_and_the_upstream_request() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(50)));
    let session = app.new_session().await;
    let mut reader = app
        .send_streaming(
            &session,
            json!({"content": "count", "cancel_on_disconnect": true}),
        )
        .await;
    let events = read_n(&mut reader, 5).await;
    let reply_id = events[1].data["id"].as_str().unwrap().to_owned();
    drop(reader);
    let stored = app.stored_final(&session, &reply_id).await;
    assert_eq!(stored["status"], "cancelled");
    let kept = stored["content"].as_str().unwrap();
    assert!(
        kept.starts_with("one two three") && kept.len() < WORDS.len(),
        "partial text kept: {kept:?}"
    );
    assert!(
        app.fake
            .wait_until(Duration::from_secs(5), |requests| requests[0].outcome
                == Outcome::ClientGone)
            .await,
        "the upstream request was aborted"
    );
}

#[tokio::test]
async fn the_cancel_route_stops_the_reply_and_keeps_its_text() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(50)));
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    let sent = app.send_accepted(&session, "count").await;
    let reply_id = sent["assistant_message"]["id"].as_str().unwrap();
    read_n(&mut watcher, 5).await;
    let cancel = |app: &TestApp| {
        app.http
            .post(app.url(&format!("/api/v1/sessions/{session}/cancel")))
            .send()
    };
    let answer: Value = cancel(&app).await.unwrap().json().await.unwrap();
    assert_eq!(answer, json!({"cancelled": true}));
    let events = watcher.until_reply_ends(reply_id).await;
    let last = events.last().unwrap();
    assert_eq!(last.event, "message.completed");
    assert_eq!(last.data["status"], "cancelled");
    let stored = app.stored_final(&session, reply_id).await;
    assert_eq!(&stored, &last.data);
    assert!(!stored["content"].as_str().unwrap().is_empty());
    let again: Value = cancel(&app).await.unwrap().json().await.unwrap();
    assert_eq!(again, json!({"cancelled": false}), "nothing left to cancel");
    // The slot is free again.
    app.fake.push(Behaviour::text("next"));
    let (_, next) = app.chat(&session, "again").await;
    assert_eq!(next["content"], "next");
}

#[tokio::test]
async fn deleting_a_session_cancels_its_reply_and_ends_its_streams() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text(WORDS).pace(Duration::from_millis(100)));
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    app.send_accepted(&session, "count").await;
    read_n(&mut watcher, 3).await;
    let deleted = app
        .http
        .delete(app.url(&format!("/api/v1/sessions/{session}")))
        .send()
        .await
        .unwrap();
    assert_eq!(deleted.status(), 204);
    // The stream ends (possibly after the reply's last event).
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), watcher.next())
        .await
        .expect("stream ends")
    {
        assert_ne!(
            event.event, "message.delta",
            "no more words after the delete: {event:?}"
        );
    }
    assert!(
        app.fake
            .wait_until(Duration::from_secs(5), |requests| requests[0].outcome
                == Outcome::ClientGone)
            .await,
        "the upstream request was aborted"
    );
    app.assert_healthy().await;
}

#[tokio::test]
async fn session_updates_reach_subscribers() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    app.http
        .patch(app.url(&format!("/api/v1/sessions/{session}")))
        .json(&json!({"title": "Renamed"}))
        .send()
        .await
        .unwrap();
    let event = watcher.next().await.unwrap();
    assert_eq!(event.event, "session.updated");
    assert_eq!(event.data["title"], "Renamed");
}
