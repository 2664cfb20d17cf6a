//! Two replicas on one Redis: what one publishes, claims, cancels or closes,
//! the other sees.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use colloquy_domain::{MessageId, SessionId};
use colloquy_ports::{EventKind, EventLog, StartAt};

use crate::support::{delta, next, nothing_more, TestRedis};

#[tokio::test]
async fn what_one_replica_publishes_the_other_serves_live_and_resumed_exactly_once_in_order() {
    let redis = TestRedis::new();
    let (a, b) = (redis.default_log(), redis.default_log());
    let session = SessionId::new();
    let message = MessageId::new();
    let mut live_on_b = b.subscribe(session, StartAt::Live).await.unwrap();

    let mut ids = Vec::new();
    for n in 0..20 {
        ids.push(
            a.publish(session, delta(message, &n.to_string()))
                .await
                .unwrap(),
        );
    }
    for (n, id) in ids.iter().enumerate() {
        assert_eq!(
            next(&mut live_on_b).await,
            (*id, delta(message, &n.to_string()))
        );
    }
    nothing_more(&mut live_on_b).await;

    // A client that saw the tenth event on A comes back on B.
    let mut resumed_on_b = b.subscribe(session, StartAt::After(ids[9])).await.unwrap();
    for (n, id) in ids.iter().enumerate().skip(10) {
        assert_eq!(
            next(&mut resumed_on_b).await,
            (*id, delta(message, &n.to_string()))
        );
    }
    nothing_more(&mut resumed_on_b).await;
    let later = b.publish(session, delta(message, "from b")).await.unwrap();
    assert_eq!(later, ids[19] + 1, "one counter, whoever publishes");
    assert_eq!(next(&mut resumed_on_b).await.0, later);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_publishing_at_once_never_give_out_one_id_twice() {
    const EACH: usize = 150;
    let redis = TestRedis::new();
    let a = Arc::new(redis.default_log());
    let b = Arc::new(redis.default_log());
    let session = SessionId::new();
    let mut watcher = a.subscribe(session, StartAt::Live).await.unwrap();

    let publishers: Vec<_> = [(Arc::clone(&a), "a"), (Arc::clone(&b), "b")]
        .into_iter()
        .map(|(log, name)| {
            tokio::spawn(async move {
                let message = MessageId::new();
                let mut ids = Vec::new();
                for n in 0..EACH {
                    ids.push(
                        log.publish(session, delta(message, &format!("{name}{n}")))
                            .await
                            .unwrap(),
                    );
                }
                ids
            })
        })
        .collect();
    let mut all = Vec::new();
    for publisher in publishers {
        let ids = publisher.await.unwrap();
        assert!(
            ids.windows(2).all(|pair| pair[0] < pair[1]),
            "each publisher's ids increase"
        );
        all.extend(ids);
    }
    let unique: HashSet<u64> = all.iter().copied().collect();
    assert_eq!(unique.len(), 2 * EACH, "no id was given twice");
    all.sort_unstable();
    assert!(
        all.windows(2).all(|pair| pair[1] == pair[0] + 1),
        "the ids are consecutive"
    );

    // The watcher sees every event once, in id order, each publisher's in
    // its own order.
    let mut seen = Vec::new();
    let mut last_of = std::collections::HashMap::new();
    for _ in 0..2 * EACH {
        let (id, kind) = next(&mut watcher).await;
        let EventKind::MessageDelta { delta, .. } = kind else {
            panic!("a delta, got {kind:?}");
        };
        let (name, n) = delta.split_at(1);
        let n: usize = n.parse().unwrap();
        if let Some(previous) = last_of.insert(name.to_owned(), n) {
            assert_eq!(n, previous + 1, "{name}'s deltas in order");
        }
        seen.push(id);
    }
    assert_eq!(seen, all);
    nothing_more(&mut watcher).await;
}

#[tokio::test]
async fn a_claim_on_one_replica_holds_the_slot_for_all_and_a_cancel_from_another_reaches_it() {
    let redis = TestRedis::new();
    let (a, b) = (redis.default_log(), redis.default_log());
    let session = SessionId::new();
    let reply = MessageId::new();
    let mut watcher_on_b = b.subscribe(session, StartAt::Live).await.unwrap();
    let claim = a.claim_reply(session, reply).await.unwrap().unwrap();

    assert!(
        b.claim_reply(session, MessageId::new())
            .await
            .unwrap()
            .is_none(),
        "one reply per session across replicas (a 409)"
    );
    assert_eq!(b.active_reply(session).await.unwrap(), Some(reply));
    assert!(
        !b.cancel_reply(session, Some(MessageId::new()))
            .await
            .unwrap(),
        "a cancel of another reply stops nothing"
    );
    assert!(
        tokio::time::timeout(Duration::from_millis(200), claim.cancelled())
            .await
            .is_err(),
        "not cancelled by someone else's cancel"
    );

    // Pub/sub brings it in about a millisecond; the second allowed is for a
    // loaded machine (this is a test of delivery, not of latency).
    assert!(b.cancel_reply(session, Some(reply)).await.unwrap());
    tokio::time::timeout(Duration::from_secs(1), claim.cancelled())
        .await
        .expect("the claim hears the cancel");

    let end = claim.finish(delta(reply, "stopped")).await.unwrap();
    assert_eq!(
        next(&mut watcher_on_b).await,
        (end, delta(reply, "stopped"))
    );
    assert_eq!(b.active_reply(session).await.unwrap(), None);
    assert!(
        b.claim_reply(session, MessageId::new())
            .await
            .unwrap()
            .is_some(),
        "the next message may be sent at once, on any replica"
    );
}

#[tokio::test]
async fn a_replica_that_joins_while_a_reply_streams_serves_it_from_its_start() {
    let redis = TestRedis::new();
    let (a, b) = (redis.default_log(), redis.default_log());
    let session = SessionId::new();
    let reply = MessageId::new();
    a.publish(session, delta(reply, "an earlier turn"))
        .await
        .unwrap();
    let claim = a.claim_reply(session, reply).await.unwrap().unwrap();
    let first = a.publish(session, delta(reply, "Hel")).await.unwrap();
    let second = a.publish(session, delta(reply, "lo")).await.unwrap();

    let mut late_on_b = b.subscribe(session, StartAt::Live).await.unwrap();
    assert_eq!(next(&mut late_on_b).await, (first, delta(reply, "Hel")));
    assert_eq!(next(&mut late_on_b).await, (second, delta(reply, "lo")));
    let end = claim.finish(delta(reply, "!")).await.unwrap();
    assert_eq!(next(&mut late_on_b).await, (end, delta(reply, "!")));
}

#[tokio::test]
async fn closing_a_session_on_one_replica_ends_the_others_streams_after_what_was_published() {
    let redis = TestRedis::new();
    let (a, b) = (redis.default_log(), redis.default_log());
    let session = SessionId::new();
    let message = MessageId::new();
    let mut on_b = b.subscribe(session, StartAt::Live).await.unwrap();
    let mut also_on_a = a.subscribe(session, StartAt::Live).await.unwrap();
    let last = a
        .publish(session, delta(message, "last words"))
        .await
        .unwrap();
    a.close_session(session).await.unwrap();

    for stream in [&mut on_b, &mut also_on_a] {
        assert_eq!(next(stream).await, (last, delta(message, "last words")));
        let end = tokio::time::timeout(Duration::from_secs(2), futures::StreamExt::next(stream))
            .await
            .expect("the stream ends in time");
        assert!(end.is_none(), "ended, got {end:?}");
    }

    // The session's next use (its id reused) starts afresh, above the old ids.
    let again = b.publish(session, delta(message, "new")).await.unwrap();
    assert!(again > last);
    let mut resumed = a.subscribe(session, StartAt::After(last)).await.unwrap();
    assert!(
        matches!(next(&mut resumed).await.1, EventKind::StreamResync(_)),
        "the closed session's events are not served as the new one's"
    );
}
