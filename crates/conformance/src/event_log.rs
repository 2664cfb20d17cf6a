//! The event log's behaviour, as the contract's "Server-Sent Events" rules
//! and the core's reply slot need it: resuming by id, the limits of what is
//! kept, `stream.resync` instead of a silent gap, one claim per session,
//! cancels and closes.
//!
//! Each `pub async fn` here is one test; [`event_log_conformance!`] turns
//! them all into `#[tokio::test]`s for a [`Harness`].
//!
//! [`event_log_conformance!`]: crate::event_log_conformance

use std::time::Duration;

use async_trait::async_trait;
use colloquy_domain::{MessageId, SessionId};
use colloquy_ports::{EventKind, EventLog, EventStream, ResyncReason, StartAt};
use futures::StreamExt;

/// How much of each session the log under test must keep: the contract's
/// `COLLOQUY_EVENT_RETENTION_SECS`, `COLLOQUY_EVENT_LOG_MAX` and
/// `COLLOQUY_EVENT_LOG_BYTES`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeptLimits {
    pub retention: Duration,
    pub max_events: usize,
    pub max_bytes: usize,
}

impl Default for KeptLimits {
    /// The contract's defaults: 600 s, 10,000 events, 16 MiB.
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(600),
            max_events: 10_000,
            max_bytes: 16 * 1024 * 1024,
        }
    }
}

/// What the suite needs of an adapter: a way to make logs and to look at
/// what they keep.
#[async_trait]
pub trait Harness: Send + Sync {
    type Log: EventLog + 'static;

    /// A fresh log with these limits. Two logs of one harness are two
    /// replicas of one service: they share whatever the adapter shares.
    async fn log(&self, limits: KeptLimits) -> Self::Log;

    /// How many events, and about how many bytes, `log` keeps for `session`.
    async fn kept(&self, log: &Self::Log, session: SessionId) -> (usize, usize);

    /// Loses everything `log` kept, as a restart does (of the process for an
    /// in-process log, of the shared store for a shared one), and gives the
    /// log that serves afterwards.
    async fn restart(&self, log: Self::Log, limits: KeptLimits) -> Self::Log;

    /// Returns once `log` has taken in every event published so far in
    /// `session`, for an adapter that reads its events in the background.
    /// What a subscriber is given can then be checked deterministically.
    async fn settle(&self, log: &Self::Log, session: SessionId);
}

fn delta(message_id: MessageId, text: &str) -> EventKind {
    EventKind::MessageDelta {
        message_id,
        delta: text.to_owned(),
    }
}

async fn next(stream: &mut EventStream) -> (u64, EventKind) {
    let event = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("an event in time")
        .expect("the stream is open");
    (event.id, event.kind.clone())
}

async fn nothing_more(stream: &mut EventStream) {
    assert!(
        tokio::time::timeout(Duration::from_millis(100), stream.next())
            .await
            .is_err(),
        "no further event"
    );
}

async fn ends(stream: &mut EventStream) {
    let end = tokio::time::timeout(Duration::from_secs(2), stream.next())
        .await
        .expect("the stream ends in time");
    assert!(end.is_none(), "the stream ended, but gave {end:?}");
}

pub async fn a_late_subscriber_gets_the_running_reply_from_its_start_then_resumes_by_id<
    H: Harness,
>(
    harness: &H,
) {
    let log = harness.log(KeptLimits::default()).await;
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
    assert_eq!(next(&mut late).await, (end, delta(message, "end")));
    assert_eq!(log.active_reply(session).await.unwrap(), None);
}

/// The core follows its own reply from just before the reply's first event
/// (`StartAt::After(first - 1)`), also when that is a session's very first.
pub async fn resuming_from_just_before_a_sessions_first_event_gives_every_event<H: Harness>(
    harness: &H,
) {
    let log = harness.log(KeptLimits::default()).await;
    let session = SessionId::new();
    let message = MessageId::new();
    let first = log.publish(session, delta(message, "one")).await.unwrap();
    let second = log.publish(session, delta(message, "two")).await.unwrap();
    let mut own = log
        .subscribe(session, StartAt::After(first - 1))
        .await
        .unwrap();
    assert_eq!(next(&mut own).await, (first, delta(message, "one")));
    assert_eq!(next(&mut own).await, (second, delta(message, "two")));
    nothing_more(&mut own).await;
}

pub async fn events_stay_resumable_across_later_replies<H: Harness>(harness: &H) {
    let log = harness.log(KeptLimits::default()).await;
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

pub async fn a_reader_that_falls_out_of_the_kept_events_is_told_to_resync<H: Harness>(harness: &H) {
    let log = harness
        .log(KeptLimits {
            max_events: 4,
            ..KeptLimits::default()
        })
        .await;
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
    assert_eq!(
        harness.kept(&log, session).await.0,
        4,
        "the count limit holds"
    );
    harness.settle(&log, session).await;
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

pub async fn after_a_resync_a_running_reply_is_given_from_its_start_when_kept<H: Harness>(
    harness: &H,
) {
    let log = harness
        .log(KeptLimits {
            max_events: 6,
            ..KeptLimits::default()
        })
        .await;
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
    assert!(
        matches!(kind, EventKind::StreamResync(r) if r.reason == ResyncReason::NotKept),
        "{kind:?}"
    );
    assert_eq!(id, start - 1);
    assert_eq!(next(&mut resumed).await, (start, delta(message, "start")));
}

pub async fn the_byte_limit_bounds_a_session_however_many_updates_come<H: Harness>(harness: &H) {
    let limit = 64 * 1024;
    let log = harness
        .log(KeptLimits {
            max_bytes: limit,
            ..KeptLimits::default()
        })
        .await;
    let session = SessionId::new();
    let message = MessageId::new();
    let big = "x".repeat(30 * 1024);
    for _ in 0..300 {
        log.publish(session, delta(message, &big)).await.unwrap();
    }
    let (events, bytes) = harness.kept(&log, session).await;
    assert!(bytes <= limit, "{bytes} bytes kept");
    assert_eq!(events, 2);
    // One event bigger than the limit is still delivered.
    let huge = "y".repeat(limit * 2);
    let mut live = log.subscribe(session, StartAt::Live).await.unwrap();
    let id = log.publish(session, delta(message, &huge)).await.unwrap();
    assert_eq!(next(&mut live).await.0, id);
    assert_eq!(harness.kept(&log, session).await.0, 1);
}

pub async fn events_expire_after_the_retention_time<H: Harness>(harness: &H) {
    let log = harness
        .log(KeptLimits {
            retention: Duration::from_millis(30),
            ..KeptLimits::default()
        })
        .await;
    let session = SessionId::new();
    let message = MessageId::new();
    let first = log.publish(session, delta(message, "a")).await.unwrap();
    let _subscriber = log.subscribe(session, StartAt::Live).await.unwrap();
    tokio::time::sleep(Duration::from_millis(60)).await;
    let second = log.publish(session, delta(message, "b")).await.unwrap();
    assert_eq!(
        harness.kept(&log, session).await.0,
        1,
        "the expired event left"
    );
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

pub async fn ids_from_before_a_restart_or_never_given_get_a_resync<H: Harness>(harness: &H) {
    let session = SessionId::new();
    let message = MessageId::new();
    let before = harness.log(KeptLimits::default()).await;
    let old = before.publish(session, delta(message, "a")).await.unwrap();
    before.publish(session, delta(message, "b")).await.unwrap();

    let after = harness.restart(before, KeptLimits::default()).await;
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

pub async fn one_claim_at_a_time_and_a_dropped_claim_frees_the_slot<H: Harness>(harness: &H) {
    let log = harness.log(KeptLimits::default()).await;
    let session = SessionId::new();
    let first = MessageId::new();
    let claim = log.claim_reply(session, first).await.unwrap().unwrap();
    assert_eq!(claim.message_id(), first);
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

pub async fn a_released_claim_frees_the_slot_without_an_event<H: Harness>(harness: &H) {
    let log = harness.log(KeptLimits::default()).await;
    let session = SessionId::new();
    let mut live = log.subscribe(session, StartAt::Live).await.unwrap();
    let claim = log
        .claim_reply(session, MessageId::new())
        .await
        .unwrap()
        .unwrap();
    claim.release().await;
    assert_eq!(log.active_reply(session).await.unwrap(), None);
    assert!(!log.cancel_reply(session, None).await.unwrap());
    nothing_more(&mut live).await;
    let next_reply = MessageId::new();
    let claim = log.claim_reply(session, next_reply).await.unwrap();
    assert_eq!(claim.map(|claim| claim.message_id()), Some(next_reply));
}

pub async fn a_cancel_reaches_the_claim<H: Harness>(harness: &H) {
    let log = harness.log(KeptLimits::default()).await;
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
    assert!(
        tokio::time::timeout(Duration::from_millis(100), claim.cancelled())
            .await
            .is_err(),
        "not cancelled before anyone asked"
    );
    assert!(log.cancel_reply(session, Some(reply)).await.unwrap());
    tokio::time::timeout(Duration::from_secs(1), claim.cancelled())
        .await
        .expect("the claim hears the cancel");
    claim.finish(delta(reply, "stopped")).await.unwrap();
    assert!(
        !log.cancel_reply(session, Some(reply)).await.unwrap(),
        "a finished reply cannot be cancelled"
    );
}

pub async fn closing_a_session_ends_its_streams_after_what_is_left<H: Harness>(harness: &H) {
    let log = harness.log(KeptLimits::default()).await;
    let session = SessionId::new();
    let message = MessageId::new();
    let mut stream = log.subscribe(session, StartAt::Live).await.unwrap();
    log.publish(session, delta(message, "last words"))
        .await
        .unwrap();
    log.close_session(session).await.unwrap();
    assert_eq!(next(&mut stream).await.1, delta(message, "last words"));
    ends(&mut stream).await;
}

pub async fn every_subscriber_gets_every_event_once_and_in_order<H: Harness>(harness: &H) {
    let log = harness.log(KeptLimits::default()).await;
    let session = SessionId::new();
    let message = MessageId::new();
    let mut streams = Vec::new();
    for _ in 0..5 {
        streams.push(log.subscribe(session, StartAt::Live).await.unwrap());
    }
    let mut ids = Vec::new();
    for n in 0..50 {
        ids.push(
            log.publish(session, delta(message, &n.to_string()))
                .await
                .unwrap(),
        );
    }
    assert!(
        ids.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "ids are consecutive in a session"
    );
    for stream in &mut streams {
        for (n, id) in ids.iter().enumerate() {
            assert_eq!(next(stream).await, (*id, delta(message, &n.to_string())));
        }
        nothing_more(stream).await;
    }
}

pub async fn a_subscriber_that_never_reads_holds_up_nobody<H: Harness>(harness: &H) {
    let log = harness
        .log(KeptLimits {
            max_events: 20,
            ..KeptLimits::default()
        })
        .await;
    let session = SessionId::new();
    let message = MessageId::new();
    let _stalled = log.subscribe(session, StartAt::Live).await.unwrap();
    let mut reader = log.subscribe(session, StartAt::Live).await.unwrap();
    for n in 0..200 {
        let id = tokio::time::timeout(
            Duration::from_secs(2),
            log.publish(session, delta(message, &n.to_string())),
        )
        .await
        .expect("publishing never waits for a subscriber")
        .unwrap();
        assert_eq!(
            next(&mut reader).await,
            (id, delta(message, &n.to_string()))
        );
    }
}

pub async fn close_all_ends_every_stream_and_later_subscriptions_at_once<H: Harness>(harness: &H) {
    let log = harness.log(KeptLimits::default()).await;
    let (one, two) = (SessionId::new(), SessionId::new());
    let message = MessageId::new();
    let mut first = log.subscribe(one, StartAt::Live).await.unwrap();
    let mut second = log.subscribe(two, StartAt::Live).await.unwrap();
    let id = log.publish(one, delta(message, "bye")).await.unwrap();
    harness.settle(&log, one).await;
    log.close_all().await;
    assert_eq!(next(&mut first).await, (id, delta(message, "bye")));
    ends(&mut first).await;
    ends(&mut second).await;
    let mut late = log.subscribe(one, StartAt::Live).await.unwrap();
    ends(&mut late).await;
}

/// Writes one `#[tokio::test]` per behaviour of this module for the
/// [`Harness`] that `$harness` makes (it is evaluated once per test, so each
/// test may get fresh, private state).
#[macro_export]
macro_rules! event_log_conformance {
    ($harness:expr) => {
        $crate::__event_log_tests! { $harness;
            a_late_subscriber_gets_the_running_reply_from_its_start_then_resumes_by_id,
            resuming_from_just_before_a_sessions_first_event_gives_every_event,
            events_stay_resumable_across_later_replies,
            a_reader_that_falls_out_of_the_kept_events_is_told_to_resync,
            after_a_resync_a_running_reply_is_given_from_its_start_when_kept,
            the_byte_limit_bounds_a_session_however_many_updates_come,
            events_expire_after_the_retention_time,
            ids_from_before_a_restart_or_never_given_get_a_resync,
            one_claim_at_a_time_and_a_dropped_claim_frees_the_slot,
            a_released_claim_frees_the_slot_without_an_event,
            a_cancel_reaches_the_claim,
            closing_a_session_ends_its_streams_after_what_is_left,
            every_subscriber_gets_every_event_once_and_in_order,
            a_subscriber_that_never_reads_holds_up_nobody,
            close_all_ends_every_stream_and_later_subscriptions_at_once,
        }
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __event_log_tests {
    ($harness:expr; $($name:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $name() {
                let harness = $harness;
                $crate::event_log::$name(&harness).await;
            }
        )*
    };
}
