//! The limiter through its port, as the core uses it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use colloquy_domain::Principal;
use colloquy_ports::{Held, Limit, LimitError, LimitReached, Limiter, Limits};

use super::InProcessLimiter;

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
        LimitError::Unavailable(error) => {
            panic!("an in-process limiter is never unavailable: {error:#}")
        }
    }
}

#[tokio::test]
async fn the_request_after_the_allowance_is_refused_with_its_limit_and_a_wait() {
    let limiter = InProcessLimiter::new(limits(2, 1, 1));
    limiter.count_request("alice").await.unwrap();
    limiter.count_request("alice").await.unwrap();

    let refused = reached(limiter.count_request("alice").await.unwrap_err());
    assert_eq!(refused.limit, Limit::RequestsPerMinute);
    assert_eq!(refused.max, 2);
    // One request comes back every 30 s; a few microseconds have passed.
    assert_eq!(refused.retry_after, Duration::from_secs(30));
    // An anonymous client's address is a key of its own.
    limiter.count_request("ip:192.0.2.1").await.unwrap();
    assert_eq!(limiter.tracked_request_keys(), 2);
}

#[tokio::test]
async fn a_permit_gives_its_place_back_when_dropped() {
    let limiter = InProcessLimiter::new(limits(0, 1, 2));
    let reply = limiter.acquire(Held::Reply, &alice()).await.unwrap();

    let refused = reached(limiter.acquire(Held::Reply, &alice()).await.unwrap_err());
    assert_eq!(
        refused,
        LimitReached {
            limit: Limit::RepliesAtOnce,
            max: 1,
            retry_after: Held::Reply.retry_after(),
        }
    );
    // Streams have their own count.
    let _stream = limiter.acquire(Held::Stream, &alice()).await.unwrap();

    drop(reply);
    let _again = limiter.acquire(Held::Reply, &alice()).await.unwrap();
    assert_eq!(limiter.held_counters(), 2);
}

#[tokio::test]
async fn a_limit_of_zero_counts_nothing_and_refuses_nothing() {
    let limiter = InProcessLimiter::new(limits(0, 0, 0));
    for request in 0..5_000 {
        limiter
            .count_request(&format!("ip:10.1.{}.{}", request / 256, request % 256))
            .await
            .unwrap();
        limiter.count_request("alice").await.unwrap();
    }
    let mut permits = Vec::new();
    for _ in 0..100 {
        permits.push(limiter.acquire(Held::Reply, &alice()).await.unwrap());
        permits.push(limiter.acquire(Held::Stream, &alice()).await.unwrap());
    }
    assert_eq!(limiter.tracked_request_keys(), 0);
    assert_eq!(limiter.held_counters(), 0);
    assert_eq!(limiter.limits(), limits(0, 0, 0));
}

/// Many tasks on several threads take and give back places of one
/// principal as fast as they can: at no moment do more than `max` hold one.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_takers_never_hold_more_than_the_limit() {
    const MAX: usize = 3;
    const TASKS: usize = 32;
    const ROUNDS: usize = 200;
    let limiter = Arc::new(InProcessLimiter::new(limits(0, 3, 0)));
    let holding = Arc::new(AtomicUsize::new(0));
    let most_at_once = Arc::new(AtomicUsize::new(0));
    let refusals = Arc::new(AtomicUsize::new(0));

    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let (limiter, holding, most_at_once, refusals) = (
                Arc::clone(&limiter),
                Arc::clone(&holding),
                Arc::clone(&most_at_once),
                Arc::clone(&refusals),
            );
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    match limiter.acquire(Held::Reply, &alice()).await {
                        Ok(permit) => {
                            let now = holding.fetch_add(1, Ordering::SeqCst) + 1;
                            most_at_once.fetch_max(now, Ordering::SeqCst);
                            tokio::task::yield_now().await;
                            holding.fetch_sub(1, Ordering::SeqCst);
                            drop(permit);
                        }
                        Err(error) => {
                            assert_eq!(reached(error).limit, Limit::RepliesAtOnce);
                            refusals.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    tokio::task::yield_now().await;
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }

    let most = most_at_once.load(Ordering::SeqCst);
    assert!((1..=MAX).contains(&most), "{most} held at once");
    assert!(
        refusals.load(Ordering::SeqCst) > 0,
        "the limit was never reached"
    );
    assert_eq!(limiter.held_counters(), 0, "every place was given back");
    // All places are free again.
    let mut permits = Vec::new();
    for _ in 0..MAX {
        permits.push(limiter.acquire(Held::Reply, &alice()).await.unwrap());
    }
    assert!(limiter.acquire(Held::Reply, &alice()).await.is_err());
}
