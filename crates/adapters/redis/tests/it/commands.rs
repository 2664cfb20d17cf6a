//! What a reply costs in Redis commands, counted on the wire: the
//! publishing replica sends one command per event, and the watching
//! replica's commands do not grow with its number of subscribers.

use std::collections::HashMap;
use std::time::Duration;

use colloquy_domain::{MessageId, SessionId};
use colloquy_ports::{EventLog, StartAt};
use colloquy_redis::RedisConfig;

use crate::proxy::Proxy;
use crate::support::{delta, eventually, next, TestRedis};

const DELTAS: usize = 200;
const SUBSCRIBERS: usize = 20;

/// Every command but the readers' blocking reads (and the pub/sub
/// connection's pings), which run whether or not anything is published.
fn ordinary(commands: &HashMap<String, usize>) -> usize {
    commands
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "XREAD" | "PING"))
        .map(|(_, count)| count)
        .sum()
}

#[tokio::test]
async fn a_reply_costs_one_command_per_event_and_nothing_per_subscriber() {
    let redis = TestRedis::new();
    let (publishing, watching) = (
        Proxy::start(redis.address()).await,
        Proxy::start(redis.address()).await,
    );
    let on = |proxy: &Proxy| RedisConfig {
        url: proxy.url(),
        ..redis.config()
    };
    let (a, b) = (redis.log(&on(&publishing)), redis.log(&on(&watching)));
    // Redis learns the scripts once (after each of its restarts); the
    // count below is of a server that knows them.
    let warm_up = SessionId::new();
    let claim = a
        .claim_reply(warm_up, MessageId::new())
        .await
        .unwrap()
        .unwrap();
    a.publish(warm_up, delta(MessageId::new(), "warm"))
        .await
        .unwrap();
    // Finished, not released: every script the count below sees is known.
    claim
        .finish(delta(MessageId::new(), "warmed"))
        .await
        .unwrap();

    let session = SessionId::new();
    let reply = MessageId::new();
    let mut subscribers = Vec::new();
    for _ in 0..SUBSCRIBERS {
        subscribers.push(b.subscribe(session, StartAt::Live).await.unwrap());
    }
    // Once an event has reached them all, the watching replica's reader
    // covers the session and nothing of the set-up is still on its way.
    let hello = a.publish(session, delta(reply, "hello")).await.unwrap();
    for subscriber in &mut subscribers {
        assert_eq!(next(subscriber).await.0, hello);
    }
    publishing.reset_counts();
    watching.reset_counts();

    let claim = a.claim_reply(session, reply).await.unwrap().unwrap();
    let started = std::time::Instant::now();
    for n in 0..DELTAS {
        a.publish(session, delta(reply, &n.to_string()))
            .await
            .unwrap();
    }
    let publishing_took = started.elapsed();
    let end = claim.finish(delta(reply, "end")).await.unwrap();
    for subscriber in &mut subscribers {
        for _ in 0..DELTAS {
            next(subscriber).await;
        }
        assert_eq!(next(subscriber).await.0, end);
    }
    // The readers' last reads may still be on their way through the proxy.
    eventually(Duration::from_secs(2), || async {
        (b.read_upto(session) == Some(end)).then_some(())
    })
    .await;

    let sent = publishing.commands();
    let watched = watching.commands();
    eprintln!(
        "a reply of {DELTAS} deltas with {SUBSCRIBERS} subscribers on another replica: \
         publishing replica {sent:?}, watching replica {watched:?}; {:?} per publish \
         (through the test's proxy)",
        publishing_took / u32::try_from(DELTAS).unwrap()
    );
    assert_eq!(
        ordinary(&sent),
        DELTAS + 2,
        "a claim, one call per delta, a finish: {sent:?}"
    );
    assert_eq!(sent.get("EVALSHA"), Some(&(DELTAS + 2)));
    assert_eq!(
        ordinary(&watched),
        0,
        "subscribers served from the watch cost no command: {watched:?}"
    );
    let reads = watched.get("XREAD").copied().unwrap_or(0);
    assert!(
        reads <= DELTAS + 3,
        "the watching replica reads each event at most once, whatever its subscribers: {reads}"
    );
}
