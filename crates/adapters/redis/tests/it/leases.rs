//! Reply slots as leases: renewed while the claim lives, lost when its
//! replica stops renewing, and then swept by exactly one other replica.

use std::time::Duration;

use colloquy_domain::{
    ErrorCode, Message, MessageError, MessageId, MessageStatus, ModelName, SessionId,
};
use colloquy_ports::{EventKind, EventLog, EventLogError, ExpiredLeases, ExpiredReply, StartAt};
use colloquy_redis::RedisConfig;

use crate::proxy::Proxy;
use crate::support::{delta, eventually, next, nothing_more, TestRedis};

const LEASE: Duration = Duration::from_millis(600);

fn short_lease(redis: &TestRedis) -> RedisConfig {
    RedisConfig {
        lease: LEASE,
        ..redis.config()
    }
}

fn interrupted(session: SessionId, reply: MessageId) -> EventKind {
    let mut message = Message::streaming_reply(session, &ModelName::parse("offline").unwrap());
    message.id = reply;
    message.content = "Hel".to_owned();
    message.finish(
        MessageStatus::Interrupted,
        Some(MessageError {
            code: ErrorCode::Interrupted,
            message: "the server stopped while the reply streamed".to_owned(),
        }),
    );
    EventKind::MessageFailed(message)
}

#[tokio::test]
async fn a_claim_keeps_its_lease_for_as_long_as_it_lives() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let (a, b) = (redis.log(&config), redis.log(&config));
    let session = SessionId::new();
    let reply = MessageId::new();
    let claim = a.claim_reply(session, reply).await.unwrap().unwrap();

    tokio::time::sleep(LEASE * 3).await;
    assert!(b
        .claim_reply(session, MessageId::new())
        .await
        .unwrap()
        .is_none());
    assert!(b.expired_replies(10).await.unwrap().is_empty());
    assert!(
        tokio::time::timeout(Duration::from_millis(10), claim.cancelled())
            .await
            .is_err(),
        "a renewed claim is not cancelled"
    );

    claim.finish(delta(reply, "done")).await.unwrap();
    tokio::time::sleep(LEASE * 2).await;
    assert!(
        b.expired_replies(10).await.unwrap().is_empty(),
        "a finished reply is never swept"
    );
}

#[tokio::test]
async fn a_replica_that_stops_renewing_loses_its_lease_and_one_other_replica_sweeps_its_reply() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let proxy = Proxy::start(redis.address()).await;
    let dying = redis.log(&RedisConfig {
        url: proxy.url(),
        ..config.clone()
    });
    let (b, c) = (redis.log(&config), redis.log(&config));
    let session = SessionId::new();
    let reply = MessageId::new();
    let mut watcher = b.subscribe(session, StartAt::Live).await.unwrap();
    let claim = dying.claim_reply(session, reply).await.unwrap().unwrap();
    let first = dying.publish(session, delta(reply, "Hel")).await.unwrap();
    assert_eq!(next(&mut watcher).await, (first, delta(reply, "Hel")));

    // The replica is cut off from Redis, as a dead one is: nothing renews.
    proxy.cut();
    let expired = eventually(LEASE * 5, || async {
        let listed = b.expired_replies(10).await.unwrap();
        (!listed.is_empty()).then_some(listed)
    })
    .await;
    assert_eq!(
        expired,
        [ExpiredReply {
            session,
            message: reply
        }]
    );
    // Cut off, the replica cannot tell a dead Redis from a partition: its
    // reply goes on (and is stored) rather than stop at every outage.
    assert!(
        tokio::time::timeout(LEASE * 2, claim.cancelled())
            .await
            .is_err(),
        "a claim that cannot reach Redis keeps its reply running"
    );

    // Exactly one replica wins the sweep.
    let (on_b, on_c) = tokio::join!(b.claim_sweep(expired[0]), c.claim_sweep(expired[0]));
    let (on_b, on_c) = (on_b.unwrap(), on_c.unwrap());
    assert!(
        on_b.is_some() != on_c.is_some(),
        "one winner, not two or none"
    );
    let sweep = on_b.or(on_c).unwrap();
    assert_eq!(sweep.reply(), expired[0]);
    assert!(
        b.expired_replies(10).await.unwrap().is_empty(),
        "a reply being swept is not listed again"
    );

    // The slot is free for the session's next message meanwhile.
    let next_turn = b.claim_reply(session, MessageId::new()).await.unwrap();
    assert!(next_turn.is_some(), "the dead replica's slot lapsed");
    drop(next_turn);

    let last = interrupted(session, reply);
    let end = sweep
        .finish(last.clone())
        .await
        .unwrap()
        .expect("the sweeper publishes the reply's end");
    assert_eq!(next(&mut watcher).await, (end, last));

    // The replica comes back, learns at its next renewal that its lease is
    // gone, and stops; the end it writes is not published a second time.
    proxy.restore();
    tokio::time::timeout(Duration::from_secs(5), claim.cancelled())
        .await
        .expect("a claim that finds its lease gone stops its reply");
    let late = claim.finish(delta(reply, "too late")).await;
    assert!(matches!(late, Err(EventLogError::Unknown(_))), "{late:?}");
    nothing_more(&mut watcher).await;
    assert!(b.expired_replies(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_sweeper_that_dies_leaves_the_reply_to_the_next_one() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let proxy = Proxy::start(redis.address()).await;
    let dying = redis.log(&RedisConfig {
        url: proxy.url(),
        ..config.clone()
    });
    let (b, c) = (redis.log(&config), redis.log(&config));
    let session = SessionId::new();
    let reply = MessageId::new();
    let claim = dying.claim_reply(session, reply).await.unwrap().unwrap();
    proxy.cut();

    let expired = eventually(LEASE * 5, || async {
        b.expired_replies(10).await.unwrap().first().copied()
    })
    .await;
    let abandoned = b.claim_sweep(expired).await.unwrap().unwrap();
    drop(abandoned);
    assert!(c.claim_sweep(expired).await.unwrap().is_none(), "still b's");
    let retried = eventually(LEASE * 5, || async {
        c.claim_sweep(expired).await.unwrap()
    })
    .await;
    assert!(retried.dismiss().await.unwrap(), "the sweep was still ours");
    assert!(b.expired_replies(10).await.unwrap().is_empty());
    drop(claim);
}

#[tokio::test]
async fn a_claim_whose_lease_another_took_treats_itself_as_cancelled() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let (a, b) = (redis.log(&config), redis.log(&config));
    let session = SessionId::new();
    let claim = a
        .claim_reply(session, MessageId::new())
        .await
        .unwrap()
        .unwrap();
    // The lease lapses (as after a pause longer than the lease) and
    // another replica takes the slot.
    let slot = format!("{}s:{{{session}}}:slot", redis.prefix);
    let _: () = redis::Commands::del(&mut redis.connection(), slot).unwrap();
    let taken = b.claim_reply(session, MessageId::new()).await.unwrap();
    assert!(taken.is_some());
    tokio::time::timeout(LEASE, claim.cancelled())
        .await
        .expect("the claim notices at its next renewal");
    // Ending the stale claim leaves the new holder's slot alone.
    claim.release().await;
    assert!(b
        .claim_reply(session, MessageId::new())
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn a_claim_whose_lease_lapsed_unswept_still_announces_its_own_end_once() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let (a, b) = (redis.log(&config), redis.log(&config));
    let session = SessionId::new();
    let reply = MessageId::new();
    let mut watcher = b.subscribe(session, StartAt::Live).await.unwrap();
    let claim = a.claim_reply(session, reply).await.unwrap().unwrap();
    // A pause longer than the lease: the slot lapsed, no sweeper came yet.
    let slot = format!("{}s:{{{session}}}:slot", redis.prefix);
    let _: () = redis::Commands::del(&mut redis.connection(), slot).unwrap();

    let end = claim.finish(delta(reply, "done")).await.unwrap();
    assert_eq!(next(&mut watcher).await, (end, delta(reply, "done")));
    tokio::time::sleep(LEASE * 2).await;
    assert!(
        b.expired_replies(10).await.unwrap().is_empty(),
        "the reply announced its end: there is nothing to sweep"
    );
}

#[tokio::test]
async fn an_orphan_no_lease_names_is_adopted_once_and_a_live_reply_never() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let (a, b, c) = (redis.log(&config), redis.log(&config), redis.log(&config));
    let session = SessionId::new();
    let reply = MessageId::new();
    let orphan = ExpiredReply {
        session,
        message: reply,
    };
    let claim = a.claim_reply(session, reply).await.unwrap().unwrap();
    assert!(
        b.adopt_orphan(orphan).await.unwrap().is_none(),
        "a running reply is nobody's orphan"
    );
    // Redis forgets the lease and the slot (a restart without persistence)
    // while the reply's replica is gone.
    drop(claim);
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut connection = redis.connection();
    let slot = format!("{}s:{{{session}}}:slot", redis.prefix);
    let running = format!("{}running", redis.prefix);
    let _: () = redis::Commands::del(&mut connection, &[slot, running]).unwrap();

    let mut watcher = c.subscribe(session, StartAt::Live).await.unwrap();
    let (on_b, on_c) = tokio::join!(b.adopt_orphan(orphan), c.adopt_orphan(orphan));
    let mut won: Vec<_> = [on_b.unwrap(), on_c.unwrap()]
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(won.len(), 1, "exactly one sweeper adopts it");
    let adopted = won.pop().unwrap();
    assert_eq!(adopted.reply(), orphan);
    assert!(
        c.claim_sweep(orphan).await.unwrap().is_none(),
        "adopted, it is under the sweeper's lease"
    );
    let last = interrupted(session, reply);
    let end = adopted
        .finish(last.clone())
        .await
        .unwrap()
        .expect("the sweep was still ours");
    assert_eq!(next(&mut watcher).await, (end, last));
    assert!(b.expired_replies(10).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_new_reply_holding_the_slot_is_not_adopted() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let (a, b) = (redis.log(&config), redis.log(&config));
    let session = SessionId::new();
    let reply = MessageId::new();
    let _claim = a.claim_reply(session, reply).await.unwrap().unwrap();
    // Its entry among the running replies is gone, its slot is not.
    let running = format!("{}running", redis.prefix);
    let _: () = redis::Commands::del(&mut redis.connection(), running).unwrap();
    assert!(b
        .adopt_orphan(ExpiredReply {
            session,
            message: reply
        })
        .await
        .unwrap()
        .is_none());
}

/// A turn stores all its replies (one per assistant answering) `streaming`
/// up front, and its slot names the first: none of them is an orphan while
/// the slot is held. A reply older than the turn holding the slot is an
/// earlier turn's, left streaming by a replica that died: that one is.
#[tokio::test]
async fn a_later_reply_of_the_turn_holding_the_slot_is_not_adopted_and_an_older_one_is() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let (a, b) = (redis.log(&config), redis.log(&config));
    let session = SessionId::new();
    // Ids made in one process increase, so this is their creation order.
    let older = MessageId::new();
    let first = MessageId::new();
    let later = MessageId::new();
    assert!(older.to_string() < first.to_string() && first.to_string() < later.to_string());
    let _turn = a.claim_reply(session, first).await.unwrap().unwrap();
    let orphan = |message| ExpiredReply { session, message };

    for reply in [first, later] {
        assert!(
            b.adopt_orphan(orphan(reply)).await.unwrap().is_none(),
            "{reply} is the live turn's"
        );
    }
    let adopted = b
        .adopt_orphan(orphan(older))
        .await
        .unwrap()
        .expect("an earlier turn's reply is adopted");
    assert_eq!(adopted.reply(), orphan(older));
    assert!(adopted.dismiss().await.unwrap());
}

#[tokio::test]
async fn a_lease_that_lapsed_while_redis_was_unreachable_is_taken_again_if_nobody_took_it() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let proxy = Proxy::start(redis.address()).await;
    let cut_off = redis.log(&RedisConfig {
        url: proxy.url(),
        ..config.clone()
    });
    let other = redis.log(&config);
    let session = SessionId::new();
    let reply = MessageId::new();
    let claim = cut_off.claim_reply(session, reply).await.unwrap().unwrap();

    // Redis is away for longer than the lease: the slot lapses.
    proxy.cut();
    eventually(LEASE * 5, || async {
        other
            .active_reply(session)
            .await
            .unwrap()
            .is_none()
            .then_some(())
    })
    .await;
    proxy.restore();

    // The claim's next renewal takes the lease again, before any sweeper
    // has begun: the reply goes on, and holds the session.
    eventually(Duration::from_secs(5), || async {
        (other.active_reply(session).await.unwrap() == Some(reply)).then_some(())
    })
    .await;
    assert!(
        other.expired_replies(10).await.unwrap().is_empty(),
        "a lease taken again is not listed as expired"
    );
    assert!(
        tokio::time::timeout(LEASE, claim.cancelled())
            .await
            .is_err(),
        "the reply goes on"
    );
    assert!(
        other
            .claim_reply(session, MessageId::new())
            .await
            .unwrap()
            .is_none(),
        "one reply per session still"
    );
    let mut watcher = other.subscribe(session, StartAt::Live).await.unwrap();
    let end = claim.finish(delta(reply, "done")).await.unwrap();
    assert_eq!(next(&mut watcher).await, (end, delta(reply, "done")));
}

#[tokio::test]
async fn a_replica_leaves_a_reply_it_runs_itself_to_its_own_renewals() {
    let redis = TestRedis::new();
    let config = short_lease(&redis);
    let (a, b) = (redis.log(&config), redis.log(&config));
    let session = SessionId::new();
    let reply = MessageId::new();
    let _claim = a.claim_reply(session, reply).await.unwrap().unwrap();
    // As after an outage longer than the lease: the deadline has passed
    // before the claim could renew.
    let _: () = redis::Commands::zadd(
        &mut redis.connection(),
        format!("{}running", redis.prefix),
        format!("{session} {reply}"),
        0,
    )
    .unwrap();

    let expired = ExpiredReply {
        session,
        message: reply,
    };
    assert_eq!(b.expired_replies(10).await.unwrap(), [expired]);
    assert!(
        a.expired_replies(10).await.unwrap().is_empty(),
        "the replica running the reply does not sweep it"
    );
}
