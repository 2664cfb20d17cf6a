use std::time::Duration;

use colloquy_domain::{MessageId, SessionId};
use colloquy_ports::{EventKind, EventLog, EventStream, ResyncReason, StartAt};
use futures::StreamExt;

use crate::{InProcessEventLog, LogLimits};

fn delta(message_id: MessageId, text: &str) -> EventKind {
    EventKind::MessageDelta {
        message_id,
        delta: text.to_owned(),
    }
}

fn log(limits: LogLimits) -> InProcessEventLog {
    InProcessEventLog::new(limits)
}

fn roomy() -> InProcessEventLog {
    log(LogLimits::default())
}

async fn next(stream: &mut EventStream) -> (u64, EventKind) {
    let event = tokio::time::timeout(Duration::from_secs(1), stream.next())
        .await
        .expect("an event in time")
        .expect("the stream is open");
    (event.id, event.kind.clone())
}

async fn nothing_more(stream: &mut EventStream) {
    assert!(
        tokio::time::timeout(Duration::from_millis(50), stream.next())
            .await
            .is_err(),
        "no further event"
    );
}

#[tokio::test]
async fn a_late_subscriber_gets_the_running_reply_from_its_start_then_resumes_by_id() {
    let log = roomy();
    let session = SessionId::new();
    let message = MessageId::new();
    log.publish(session, delta(message, "before"))
        .await
        .unwrap();
    let claim = log.claim_reply(session, message).await.unwrap().unwrap();
    let a = log.publish(session, delta(message, "a")).await.unwrap();
    let b = log.publish(session, delta(message, "b")).await.unwrap();
    assert_eq!(b, a + 1);

    let mut late = log.subscribe(session, StartAt::Live).await.unwrap();
    assert_eq!(next(&mut late).await, (a, delta(message, "a")));
    assert_eq!(next(&mut late).await, (b, delta(message, "b")));

    let mut resumed = log.subscribe(session, StartAt::After(a)).await.unwrap();
    let end = claim.finish(delta(message, "end")).await.unwrap();
    assert_eq!(next(&mut resumed).await, (b, delta(message, "b")));
    assert_eq!(next(&mut resumed).await, (end, delta(message, "end")));
    assert_eq!(log.active_reply(session).await.unwrap(), None);
}

#[tokio::test]
async fn events_stay_resumable_across_later_replies() {
    let log = roomy();
    let session = SessionId::new();
    let first = MessageId::new();
    let claim = log.claim_reply(session, first).await.unwrap().unwrap();
    let seen = log.publish(session, delta(first, "one")).await.unwrap();
    log.publish(session, delta(first, "two")).await.unwrap();
    claim.finish(delta(first, "done")).await.unwrap();
    let second = MessageId::new();
    let claim = log.claim_reply(session, second).await.unwrap().unwrap();
    log.publish(session, delta(second, "three")).await.unwrap();

    let mut resumed = log.subscribe(session, StartAt::After(seen)).await.unwrap();
    let mut texts = Vec::new();
    for _ in 0..3 {
        if let (_, EventKind::MessageDelta { delta, .. }) = next(&mut resumed).await {
            texts.push(delta);
        }
    }
    assert_eq!(texts, ["two", "done", "three"]);
    drop(claim);
}

#[tokio::test]
async fn a_reader_that_falls_out_of_the_kept_events_is_told_to_resync() {
    let log = log(LogLimits {
        max_events: 4,
        ..LogLimits::default()
    });
    let session = SessionId::new();
    let message = MessageId::new();
    let mut slow = log.subscribe(session, StartAt::Live).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            log.publish(session, delta(message, &n.to_string()))
                .await
                .unwrap(),
        );
    }
    assert_eq!(log.kept(session).0, 4, "the count limit holds");
    let (resync_id, kind) = next(&mut slow).await;
    let EventKind::StreamResync(resync) = kind else {
        panic!("expected stream.resync, got {kind:?}");
    };
    assert_eq!(resync.reason, ResyncReason::FellBehind);
    assert_eq!(resync.oldest_event_id, ids[6]);
    // No reply runs: the subscriber goes on with live events only.
    assert_eq!(resync_id, ids[9]);
    nothing_more(&mut slow).await;
    let live = log.publish(session, delta(message, "live")).await.unwrap();
    assert_eq!(next(&mut slow).await, (live, delta(message, "live")));

    let mut old = log
        .subscribe(session, StartAt::After(ids[1]))
        .await
        .unwrap();
    assert!(matches!(
        next(&mut old).await.1,
        EventKind::StreamResync(resync) if resync.reason == ResyncReason::NotKept
    ));
    let mut recent = log
        .subscribe(session, StartAt::After(ids[6]))
        .await
        .unwrap();
    assert_eq!(next(&mut recent).await.0, ids[7], "what is kept is served");
}

#[tokio::test]
async fn after_a_resync_a_running_reply_is_given_from_its_start_when_kept() {
    let log = log(LogLimits {
        max_events: 6,
        ..LogLimits::default()
    });
    let session = SessionId::new();
    let message = MessageId::new();
    let old = log.publish(session, delta(message, "old")).await.unwrap();
    for _ in 0..6 {
        log.publish(session, delta(message, "filler"))
            .await
            .unwrap();
    }
    let _claim = log.claim_reply(session, message).await.unwrap().unwrap();
    let start = log.publish(session, delta(message, "start")).await.unwrap();
    let mut resumed = log.subscribe(session, StartAt::After(old)).await.unwrap();
    let (id, kind) = next(&mut resumed).await;
    assert!(matches!(kind, EventKind::StreamResync(_)));
    assert_eq!(id, start - 1);
    assert_eq!(next(&mut resumed).await, (start, delta(message, "start")));
}

#[tokio::test]
async fn the_byte_limit_bounds_a_session_however_many_updates_come() {
    let limit = 64 * 1024;
    let log = log(LogLimits {
        max_bytes: limit,
        ..LogLimits::default()
    });
    let session = SessionId::new();
    let message = MessageId::new();
    let big = "x".repeat(30 * 1024);
    for _ in 0..300 {
        log.publish(session, delta(message, &big)).await.unwrap();
    }
    let (events, bytes) = log.kept(session);
    assert!(bytes <= limit, "{bytes} bytes kept");
    assert_eq!(events, 2);
    // One event bigger than the limit is still delivered.
    let huge = "y".repeat(limit * 2);
    let mut live = log.subscribe(session, StartAt::Live).await.unwrap();
    let id = log.publish(session, delta(message, &huge)).await.unwrap();
    assert_eq!(next(&mut live).await.0, id);
    assert_eq!(log.kept(session).0, 1);
}

#[tokio::test]
async fn events_expire_after_the_retention_time() {
    let log = log(LogLimits {
        retention: Duration::from_millis(30),
        ..LogLimits::default()
    });
    let session = SessionId::new();
    let message = MessageId::new();
    let first = log.publish(session, delta(message, "a")).await.unwrap();
    let _subscriber = log.subscribe(session, StartAt::Live).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let second = log.publish(session, delta(message, "b")).await.unwrap();
    assert_eq!(log.kept(session).0, 1, "the expired event left");
    let mut resumed = log
        .subscribe(session, StartAt::After(first - 1))
        .await
        .unwrap();
    assert!(matches!(
        next(&mut resumed).await.1,
        EventKind::StreamResync(_)
    ));
    let mut fine = log.subscribe(session, StartAt::After(first)).await.unwrap();
    assert_eq!(next(&mut fine).await.0, second);
}

#[tokio::test]
async fn ids_from_before_a_restart_or_never_given_get_a_resync() {
    let session = SessionId::new();
    let message = MessageId::new();
    let before = roomy();
    let old = before.publish(session, delta(message, "a")).await.unwrap();
    before.publish(session, delta(message, "b")).await.unwrap();
    drop(before);

    let after = roomy();
    let mut resumed = after.subscribe(session, StartAt::After(old)).await.unwrap();
    let (_, kind) = next(&mut resumed).await;
    assert!(
        matches!(kind, EventKind::StreamResync(r) if r.reason == ResyncReason::NotKept),
        "{kind:?}"
    );
    let new = after.publish(session, delta(message, "c")).await.unwrap();
    assert!(new > old + 1, "ids keep increasing across restarts");
    assert_eq!(next(&mut resumed).await.0, new);

    let mut bogus = after
        .subscribe(session, StartAt::After(new + 1_000))
        .await
        .unwrap();
    assert!(matches!(
        next(&mut bogus).await.1,
        EventKind::StreamResync(r) if r.reason == ResyncReason::UnknownEventId
    ));
}

#[tokio::test]
async fn one_claim_at_a_time_and_a_dropped_claim_frees_the_slot() {
    let log = roomy();
    let session = SessionId::new();
    let first = MessageId::new();
    let claim = log.claim_reply(session, first).await.unwrap().unwrap();
    assert!(log
        .claim_reply(session, MessageId::new())
        .await
        .unwrap()
        .is_none());
    assert_eq!(log.active_reply(session).await.unwrap(), Some(first));
    drop(claim);
    assert_eq!(log.active_reply(session).await.unwrap(), None);
    let again = log.claim_reply(session, MessageId::new()).await.unwrap();
    assert!(again.is_some(), "the slot is free again");
}

#[tokio::test]
async fn a_cancel_reaches_the_claim() {
    let log = roomy();
    let session = SessionId::new();
    assert!(
        !log.cancel_reply(session, None).await.unwrap(),
        "nothing runs"
    );
    let reply = MessageId::new();
    let claim = log.claim_reply(session, reply).await.unwrap().unwrap();
    assert!(
        !log.cancel_reply(session, Some(MessageId::new()))
            .await
            .unwrap(),
        "another reply's cancel does not stop this one"
    );
    assert!(log.cancel_reply(session, Some(reply)).await.unwrap());
    tokio::time::timeout(Duration::from_secs(1), claim.cancelled())
        .await
        .expect("the claim hears the cancel");
}

#[tokio::test]
async fn closing_a_session_ends_its_streams_after_what_is_left() {
    let log = roomy();
    let session = SessionId::new();
    let message = MessageId::new();
    let mut stream = log.subscribe(session, StartAt::Live).await.unwrap();
    log.publish(session, delta(message, "last words"))
        .await
        .unwrap();
    log.close_session(session).await.unwrap();
    assert_eq!(next(&mut stream).await.1, delta(message, "last words"));
    assert!(stream.next().await.is_none());
}

#[tokio::test]
async fn idle_channels_without_subscribers_are_swept() {
    let log = log(LogLimits {
        retention: Duration::from_millis(20),
        ..LogLimits::default()
    });
    let kept = SessionId::new();
    let _subscriber = log.subscribe(kept, StartAt::Live).await.unwrap();
    log.publish(SessionId::new(), delta(MessageId::new(), "x"))
        .await
        .unwrap();
    assert_eq!(log.channel_count(), 2);
    tokio::time::sleep(Duration::from_millis(40)).await;
    log.publish(SessionId::new(), delta(MessageId::new(), "y"))
        .await
        .unwrap();
    assert_eq!(
        log.channel_count(),
        2,
        "the idle one went, the subscribed one stayed"
    );
}
