//! The limiter on Redis: the in-process limiter's rules, with counts that
//! every replica shares, and places that lapse when their replica dies.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use colloquy_domain::Principal;
use colloquy_ports::{Held, Limit, LimitError, LimitReached, Limiter, Limits};
use colloquy_redis::RedisConfig;

use crate::proxy::Proxy;
use crate::support::{eventually, TestRedis};

fn alice() -> Principal {
    Principal::parse("alice").unwrap()
}

fn limits(requests_per_minute: u32, replies_at_once: u32, streams_at_once: u32) -> Limits {
    Limits {
        requests_per_minute,
        replies_at_once,
        streams_at_once,
        daily_tokens: 0,
    }
}

fn reached(error: LimitError) -> LimitReached {
    match error {
        LimitError::Reached(reached) => reached,
        LimitError::Unavailable(error) => panic!("Redis is up, yet: {error:#}"),
    }
}

#[tokio::test]
async fn requests_are_counted_across_replicas_and_the_one_after_the_allowance_is_refused() {
    let redis = TestRedis::new();
    let config = redis.config();
    let (a, b) = (
        redis.limiter(&config, limits(2, 1, 1)),
        redis.limiter(&config, limits(2, 1, 1)),
    );
    a.count_request("alice").await.unwrap();
    b.count_request("alice").await.unwrap();

    let refused = reached(a.count_request("alice").await.unwrap_err());
    assert_eq!(refused.limit, Limit::RequestsPerMinute);
    assert_eq!(refused.max, 2);
    // One request comes back every 30 s; a few milliseconds have passed.
    assert_eq!(refused.retry_after, Duration::from_secs(30));
    assert_eq!(
        reached(b.count_request("alice").await.unwrap_err()).retry_after,
        Duration::from_secs(30)
    );
    // An anonymous client's address is a key of its own.
    a.count_request("ip:192.0.2.1").await.unwrap();
}

#[tokio::test]
async fn the_allowance_refills_continuously_and_idle_keys_leave_redis() {
    let redis = TestRedis::new();
    // 60 a minute: one request a second, so the burst below is spent long
    // before any of it comes back, however loaded the machine.
    let limiter = redis.limiter(&redis.config(), limits(60, 0, 0));
    for _ in 0..60 {
        limiter.count_request("bob").await.unwrap();
    }
    let refused = reached(limiter.count_request("bob").await.unwrap_err());
    assert_eq!(
        refused.retry_after,
        Duration::from_secs(1),
        "under a second, said as 1 s"
    );
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    limiter.count_request("bob").await.unwrap();

    limiter.count_request("one-off").await.unwrap();
    eventually(Duration::from_secs(2), || async {
        let keys = redis.keys();
        (!keys.iter().any(|key| key.ends_with("rate:one-off"))).then_some(())
    })
    .await;
}

#[tokio::test]
async fn a_place_held_on_one_replica_counts_on_the_other_until_it_is_dropped() {
    let redis = TestRedis::new();
    let config = redis.config();
    let (a, b) = (
        redis.limiter(&config, limits(0, 1, 2)),
        redis.limiter(&config, limits(0, 1, 2)),
    );
    let reply = a.acquire(Held::Reply, &alice()).await.unwrap();
    let refused = reached(b.acquire(Held::Reply, &alice()).await.unwrap_err());
    assert_eq!(
        refused,
        LimitReached {
            limit: Limit::RepliesAtOnce,
            max: 1,
            retry_after: Held::Reply.retry_after(),
        }
    );
    // Streams have their own count, and so has every principal.
    let _stream = b.acquire(Held::Stream, &alice()).await.unwrap();
    let _bobs = b
        .acquire(Held::Reply, &Principal::parse("bob").unwrap())
        .await
        .unwrap();

    drop(reply);
    let _again = a.acquire(Held::Reply, &alice()).await.unwrap();
    assert_eq!(a.places_held_here(), 1);
}

#[tokio::test]
async fn a_limit_of_zero_counts_nothing_and_refuses_nothing() {
    let redis = TestRedis::new();
    let limiter = redis.limiter(&redis.config(), limits(0, 0, 0));
    for request in 0..200 {
        limiter
            .count_request(&format!("ip:10.1.0.{request}"))
            .await
            .unwrap();
    }
    let mut permits = Vec::new();
    for _ in 0..50 {
        permits.push(limiter.acquire(Held::Reply, &alice()).await.unwrap());
        permits.push(limiter.acquire(Held::Stream, &alice()).await.unwrap());
    }
    assert_eq!(redis.keys(), Vec::<String>::new(), "nothing was written");
    assert_eq!(limiter.limits(), limits(0, 0, 0));
}

/// Tasks on two replicas take and give back places of one principal as
/// fast as they can: at no moment do more than `max` hold one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn takers_on_two_replicas_never_hold_more_than_the_limit() {
    const MAX: usize = 3;
    let redis = TestRedis::new();
    let config = redis.config();
    let replicas = [
        Arc::new(redis.limiter(&config, limits(0, 3, 0))),
        Arc::new(redis.limiter(&config, limits(0, 3, 0))),
    ];
    let holding = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let refusals = Arc::new(AtomicUsize::new(0));
    let tasks: Vec<_> = (0..12)
        .map(|task| {
            let limiter = Arc::clone(&replicas[task % 2]);
            let (holding, most_at_once, refusals) = (
                Arc::clone(&holding),
                Arc::clone(&most_at_once),
                Arc::clone(&refusals),
            );
            tokio::spawn(async move {
                for _ in 0..40 {
                    match limiter.acquire(Held::Reply, &alice()).await {
                        Ok(permit) => {
                            let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                            most_at_once.fetch_max(now, Ordering::SeqCst);
                            tokio::time::sleep(Duration::from_millis(1)).await;
                            holding.fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                        }
                        Err(error) => {
                            assert_eq!(reached(error).limit, Limit::RepliesAtOnce);
                            refusals.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let most = most_at_once.load(Ordering::SeqCst);
    assert!((1..=MAX).contains(&most), "{most} held at once");
    assert!(refusals.load(Ordering::SeqCst) > 0, "the limit was reached");
    // Every place is free again, on either replica.
    let mut permits = Vec::new();
    for replica in [0, 1, 0] {
        permits.push(
            replicas[replica]
                .acquire(Held::Reply, &alice())
                .await
                .unwrap(),
        );
    }
    assert!(replicas[1].acquire(Held::Reply, &alice()).await.is_err());
}

#[tokio::test]
async fn places_stay_held_while_renewed_and_lapse_when_their_replica_dies() {
    const LEASE: Duration = Duration::from_millis(600);
    let redis = TestRedis::new();
    let config = RedisConfig {
        lease: LEASE,
        ..redis.config()
    };
    let proxy = Proxy::start(redis.address()).await;
    let dying = redis.limiter(
        &RedisConfig {
            url: proxy.url(),
            ..config.clone()
        },
        limits(0, 1, 0),
    );
    let other = redis.limiter(&config, limits(0, 1, 0));
    let held = dying.acquire(Held::Reply, &alice()).await.unwrap();
    tokio::time::sleep(LEASE * 3).await;
    assert!(
        other.acquire(Held::Reply, &alice()).await.is_err(),
        "a renewed place outlives its lease"
    );

    proxy.cut();
    let started = Instant::now();
    let place = eventually(LEASE * 5, || async {
        other.acquire(Held::Reply, &alice()).await.ok()
    })
    .await;
    assert!(
        started.elapsed() >= LEASE / 2,
        "not before the lease ran out"
    );
    drop((held, place));
}

#[tokio::test]
async fn the_limiter_says_so_promptly_when_redis_is_unreachable() {
    let redis = TestRedis::new();
    let proxy = Proxy::start(redis.address()).await;
    let limiter = redis.limiter(
        &RedisConfig {
            url: proxy.url(),
            command_timeout: Duration::from_millis(300),
            ..redis.config()
        },
        limits(10, 1, 1),
    );
    limiter.count_request("alice").await.unwrap();
    proxy.cut();
    for _ in 0..3 {
        let started = Instant::now();
        let counted = limiter.count_request("alice").await;
        assert!(
            matches!(counted, Err(LimitError::Unavailable(_))),
            "{counted:?}"
        );
        let acquired = limiter.acquire(Held::Stream, &alice()).await;
        assert!(
            matches!(acquired, Err(LimitError::Unavailable(_))),
            "{acquired:?}"
        );
        assert!(started.elapsed() < Duration::from_millis(1_500));
    }
    proxy.restore();
    eventually(Duration::from_secs(5), || async {
        limiter.count_request("alice").await.ok()
    })
    .await;
}
