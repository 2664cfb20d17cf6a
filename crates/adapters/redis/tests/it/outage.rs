//! Redis going away: calls fail promptly as unavailable, the adapters
//! reconnect by themselves, and subscribers whose events were lost
//! meanwhile are told to resync.

use std::time::{Duration, Instant};

use colloquy_domain::{MessageId, SessionId};
use colloquy_inprocess::LogLimits;
use colloquy_ports::{EventKind, EventLog, EventLogError, ResyncReason, StartAt};
use colloquy_redis::RedisConfig;

use crate::proxy::Proxy;
use crate::support::{delta, eventually, next, nothing_more, TestRedis};

const TIMEOUT: Duration = Duration::from_millis(300);

/// The longest a call may take to fail: the command timeout, twice over
/// for a connection being re-established, and some slack for the machine.
const PROMPTLY: Duration = Duration::from_millis(1_200);

async fn fails_promptly<T>(call: impl std::future::Future<Output = Result<T, EventLogError>>) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(Duration::from_secs(10), call)
        .await
        .expect("the call does not hang");
    let took = started.elapsed();
    match outcome {
        Err(EventLogError::Unavailable(_)) => {}
        Err(other) => panic!("unavailable, not {other:?}"),
        Ok(_) => panic!("it succeeded while Redis was unreachable"),
    }
    assert!(took < PROMPTLY, "it took {took:?} to fail");
}

#[tokio::test]
async fn calls_fail_promptly_while_redis_is_unreachable_and_work_again_after() {
    let redis = TestRedis::new();
    let proxy = Proxy::start(redis.address()).await;
    let log = redis.log(&RedisConfig {
        url: proxy.url(),
        command_timeout: TIMEOUT,
        ..redis.config()
    });
    let session = SessionId::new();
    let message = MessageId::new();
    let before = log.publish(session, delta(message, "a")).await.unwrap();

    for outage in ["stalled", "cut"] {
        if outage == "stalled" {
            proxy.stall();
        } else {
            proxy.cut();
        }
        fails_promptly(log.publish(session, delta(message, "lost"))).await;
        fails_promptly(log.subscribe(session, StartAt::Live)).await;
        fails_promptly(log.claim_reply(session, MessageId::new())).await;
        fails_promptly(log.active_reply(session)).await;
        fails_promptly(log.cancel_reply(session, None)).await;

        proxy.restore();
        let after = eventually(Duration::from_secs(5), || async {
            log.publish(session, delta(message, "b")).await.ok()
        })
        .await;
        assert!(after > before, "{outage}: the log works again by itself");
    }
}

#[tokio::test]
async fn a_subscriber_cut_off_while_events_were_trimmed_is_told_to_resync() {
    let redis = TestRedis::new();
    let limits = LogLimits {
        max_events: 4,
        ..LogLimits::default()
    };
    let proxy = Proxy::start(redis.address()).await;
    let cut_off = redis.log(&RedisConfig {
        url: proxy.url(),
        command_timeout: TIMEOUT,
        ..redis.config_with(limits)
    });
    let publisher = redis.log(&redis.config_with(limits));
    let session = SessionId::new();
    let message = MessageId::new();
    let mut watcher = cut_off.subscribe(session, StartAt::Live).await.unwrap();
    let seen = publisher
        .publish(session, delta(message, "seen"))
        .await
        .unwrap();
    assert_eq!(next(&mut watcher).await.0, seen);

    proxy.cut();
    let mut ids = Vec::new();
    for n in 0..10 {
        ids.push(
            publisher
                .publish(session, delta(message, &n.to_string()))
                .await
                .unwrap(),
        );
    }
    proxy.restore();

    let (resync_id, kind) = next(&mut watcher).await;
    let EventKind::StreamResync(resync) = kind else {
        panic!("expected stream.resync, got {kind:?}");
    };
    assert_eq!(resync.reason, ResyncReason::FellBehind);
    assert_eq!(resync.oldest_event_id, ids[6]);
    assert_eq!(resync_id, ids[9]);
    nothing_more(&mut watcher).await;
    let live = publisher
        .publish(session, delta(message, "live"))
        .await
        .unwrap();
    assert_eq!(next(&mut watcher).await, (live, delta(message, "live")));
}

#[tokio::test]
async fn a_subscriber_is_told_to_resync_when_redis_lost_everything_even_before_the_next_event() {
    let redis = TestRedis::new();
    let proxy = Proxy::start(redis.address()).await;
    let cut_off = redis.log(&RedisConfig {
        url: proxy.url(),
        command_timeout: TIMEOUT,
        ..redis.config()
    });
    let publisher = redis.default_log();
    let session = SessionId::new();
    let message = MessageId::new();
    let mut watcher = cut_off.subscribe(session, StartAt::Live).await.unwrap();
    let seen = publisher
        .publish(session, delta(message, "seen"))
        .await
        .unwrap();
    assert_eq!(next(&mut watcher).await.0, seen);

    // Redis restarts (it keeps nothing on disk) while this replica is cut
    // off: whatever was published meanwhile is gone with it.
    proxy.cut();
    publisher
        .publish(session, delta(message, "gone"))
        .await
        .unwrap();
    redis.lose_everything();
    // A restarted Redis knows no scripts either (clients that use scripts
    // load them again on NOSCRIPT, so this disturbs no other test).
    let _: () = redis::cmd("SCRIPT")
        .arg("FLUSH")
        .query(&mut redis.connection())
        .unwrap();
    proxy.restore();

    let (_, kind) = next(&mut watcher).await;
    assert!(
        matches!(kind, EventKind::StreamResync(resync) if resync.reason == ResyncReason::NotKept),
        "{kind:?}"
    );
    let after = publisher
        .publish(session, delta(message, "new"))
        .await
        .unwrap();
    assert!(after > seen + 1, "ids go on increasing after the restart");
    assert_eq!(next(&mut watcher).await, (after, delta(message, "new")));
}

#[tokio::test]
async fn events_a_replica_could_not_publish_are_a_resync_for_every_subscriber_once_redis_is_back() {
    let redis = TestRedis::new();
    let proxy = Proxy::start(redis.address()).await;
    let cut_off = redis.log(&RedisConfig {
        url: proxy.url(),
        command_timeout: TIMEOUT,
        ..redis.config()
    });
    let elsewhere = redis.default_log();
    let session = SessionId::new();
    let message = MessageId::new();
    let mut local = cut_off.subscribe(session, StartAt::Live).await.unwrap();
    let mut remote = elsewhere.subscribe(session, StartAt::Live).await.unwrap();
    let seen = cut_off
        .publish(session, delta(message, "seen"))
        .await
        .unwrap();
    assert_eq!(next(&mut local).await.0, seen);
    assert_eq!(next(&mut remote).await.0, seen);

    // The reply goes on while Redis is away; its events cannot be kept.
    proxy.cut();
    fails_promptly(cut_off.publish(session, delta(message, " lost"))).await;
    proxy.restore();

    // Nothing else is published, and still every subscriber, here and on
    // other replicas, learns that it missed something.
    let (resync_id, kind) = next(&mut remote).await;
    let EventKind::StreamResync(resync) = kind else {
        panic!("expected stream.resync, got {kind:?}");
    };
    assert_eq!(resync.reason, ResyncReason::NotKept);
    assert!(resync_id > seen, "{resync_id} after {seen}");
    assert_eq!(resync.oldest_event_id, resync_id + 1);
    assert_eq!(
        next(&mut local).await,
        (resync_id, EventKind::StreamResync(resync))
    );

    // Once, not at every publish after it; and a client resuming from
    // before the loss is told too.
    let after = cut_off
        .publish(session, delta(message, " after"))
        .await
        .unwrap();
    assert_eq!(next(&mut remote).await, (after, delta(message, " after")));
    assert_eq!(next(&mut local).await, (after, delta(message, " after")));
    let mut resumed = elsewhere
        .subscribe(session, StartAt::After(seen))
        .await
        .unwrap();
    assert_eq!(next(&mut resumed).await.0, resync_id);
    assert_eq!(next(&mut resumed).await, (after, delta(message, " after")));
}
