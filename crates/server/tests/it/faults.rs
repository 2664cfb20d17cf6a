//! Each upstream fault: what the client saw, the final event and the stored
//! message agree; attempts and waits follow the policy; the server stays up.

use std::time::Duration;

use colloquy_fake_upstream::Behaviour;
use serde_json::Value;

use crate::support::{spawn_app, text_of, TestApp};

/// Runs one turn and checks the three views agree; returns (events, final message).
async fn turn(app: &TestApp) -> (Vec<crate::support::Sse>, Value) {
    let session = app.new_session().await;
    let (events, last) = app.chat(&session, "go").await;
    let stored = app.history(&session).await.pop().unwrap();
    assert_eq!(stored, last, "the stored message is the final event's");
    assert_eq!(
        text_of(&events),
        last["content"].as_str().unwrap(),
        "the client's text is the stored text"
    );
    app.assert_healthy().await;
    (events, last)
}

fn gaps(app: &TestApp) -> Vec<Duration> {
    let requests = app.fake.requests();
    requests
        .windows(2)
        .map(|pair| pair[1].received_at - pair[0].received_at)
        .collect()
}

fn resets(events: &[crate::support::Sse]) -> usize {
    events
        .iter()
        .filter(|event| event.event == "message.reset")
        .count()
}

#[tokio::test]
async fn rate_limits_with_retry_after_are_waited_out() {
    let app = spawn_app().await;
    app.fake.push(Behaviour::status(429).retry_after(1));
    app.fake.push(Behaviour::status(429).retry_after(1));
    app.fake.push(Behaviour::text("finally through"));
    let (_, last) = turn(&app).await;
    assert_eq!(last["status"], "complete");
    assert_eq!(last["content"], "finally through");
    assert_eq!(app.fake.request_count(), 3);
    for gap in gaps(&app) {
        assert!(
            gap >= Duration::from_secs(1),
            "Retry-After: 1 was honoured ({gap:?})"
        );
        assert!(
            gap < Duration::from_millis(1900),
            "and not much more ({gap:?})"
        );
    }
}

#[tokio::test]
async fn retry_after_ms_is_honoured_too() {
    let app = spawn_app().await;
    app.fake.push(Behaviour::status(429).retry_after_ms(300));
    app.fake.push(Behaviour::text("ok"));
    turn(&app).await;
    assert!(gaps(&app)[0] >= Duration::from_millis(300));
}

#[tokio::test]
async fn unavailable_twice_backs_off_exponentially_then_succeeds() {
    let app = spawn_app().await;
    app.fake.push(Behaviour::status(503));
    app.fake.push(Behaviour::status(503));
    app.fake.push(Behaviour::text("back again"));
    let (_, last) = turn(&app).await;
    assert_eq!(last["content"], "back again");
    assert_eq!(app.fake.request_count(), 3);
    let gaps = gaps(&app);
    // The test server's base is 50 ms, doubling; jitter takes off at most a quarter.
    assert!(gaps[0] >= Duration::from_micros(37_500), "{gaps:?}");
    assert!(gaps[1] >= Duration::from_millis(75), "{gaps:?}");
}

#[tokio::test]
async fn a_bad_request_is_never_retried() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::status(400).message("Invalid 'messages'"));
    let (events, last) = turn(&app).await;
    assert_eq!(events.last().unwrap().event, "message.failed");
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"]["code"], "upstream_rejected");
    assert_eq!(app.fake.request_count(), 1);
}

#[tokio::test]
async fn a_permanent_outage_fails_after_the_retries() {
    let app = spawn_app().await;
    app.fake.set_default(Behaviour::status(503));
    let (events, last) = turn(&app).await;
    assert_eq!(events.last().unwrap().event, "message.failed");
    assert_eq!(last["error"]["code"], "upstream_unavailable");
    assert_eq!(
        app.fake.request_count(),
        4,
        "one attempt and COLLOQUY_LLM_MAX_RETRIES=3 retries"
    );
}

#[tokio::test]
async fn a_dropped_stream_is_retried_after_a_reset() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text("this attempt will break off").drop_after(3));
    app.fake
        .push(Behaviour::text("the second attempt completes"));
    let (events, last) = turn(&app).await;
    assert_eq!(resets(&events), 1);
    assert_eq!(last["status"], "complete");
    assert_eq!(last["content"], "the second attempt completes");
    assert_eq!(app.fake.request_count(), 2);
}

#[tokio::test]
async fn a_stream_that_ends_without_finishing_is_a_failure_not_a_reply() {
    let app = spawn_app().await;
    app.fake
        .set_default(Behaviour::text("cut short").end_without_finish());
    let (events, last) = turn(&app).await;
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"]["code"], "upstream_protocol_error");
    assert_eq!(
        last["content"], "cut short",
        "the last attempt's text is kept"
    );
    assert_eq!(resets(&events), 3);
    assert_eq!(app.fake.request_count(), 4);
}

#[tokio::test]
async fn a_malformed_chunk_is_retried() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text("garbage follows soon").malformed_after(2));
    app.fake.push(Behaviour::text("clean answer"));
    let (events, last) = turn(&app).await;
    assert_eq!(resets(&events), 1);
    assert_eq!(last["content"], "clean answer");
    assert_eq!(app.fake.request_count(), 2);
}

#[tokio::test]
async fn an_error_inside_the_stream_is_retried() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text("the server had an error").error_after(2, "The server had an error"));
    app.fake.push(Behaviour::text("recovered"));
    let (_, last) = turn(&app).await;
    assert_eq!(last["content"], "recovered");
    assert_eq!(app.fake.request_count(), 2);
}

#[tokio::test]
async fn a_stall_longer_than_the_idle_timeout_is_retried() {
    // The test server's idle timeout is 1 s.
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text("words then silence").stall_after(2));
    app.fake.push(Behaviour::text("after the stall"));
    let (events, last) = turn(&app).await;
    assert_eq!(resets(&events), 1);
    assert_eq!(last["content"], "after the stall");
    let gap = gaps(&app)[0];
    assert!(
        gap >= Duration::from_secs(1),
        "waited out the idle timeout ({gap:?})"
    );
}

#[tokio::test]
async fn a_permanent_stall_fails_as_a_timeout_keeping_the_text() {
    let app = spawn_app().await;
    app.fake
        .set_default(Behaviour::text("stuck here").stall_after(1));
    let (_, last) = turn(&app).await;
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"]["code"], "upstream_timeout");
    assert_eq!(last["content"], "stuck ");
}
