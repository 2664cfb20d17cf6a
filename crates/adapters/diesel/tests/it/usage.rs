//! The usage ledger: sums per principal and UTC day that survive restarts
//! and concurrent writers.

use colloquy_domain::{Usage, UtcDay};
use colloquy_ports::RepoError;

use crate::support::{alice, bob, on_both_backends, Backend, TestDb};

fn usage(prompt_tokens: u64, completion_tokens: u64) -> Usage {
    Usage {
        prompt_tokens,
        completion_tokens,
    }
}

/// 2026-12-01 UTC.
fn today() -> UtcDay {
    UtcDay::from_days_since_epoch(20_788)
}

fn tomorrow() -> UtcDay {
    UtcDay::from_days_since_epoch(20_789)
}

async fn additions_on_one_day_are_summed(backend: Backend) {
    let db = TestDb::new(backend).await;
    assert_eq!(
        db.repo.usage_on(&alice(), today()).await.unwrap(),
        usage(0, 0)
    );

    db.repo
        .add_usage(&alice(), today(), usage(120, 30))
        .await
        .unwrap();
    db.repo
        .add_usage(&alice(), today(), usage(7, 0))
        .await
        .unwrap();
    db.repo
        .add_usage(&alice(), today(), usage(0, 5))
        .await
        .unwrap();
    db.repo
        .add_usage(&alice(), today(), usage(0, 0))
        .await
        .unwrap();

    assert_eq!(
        db.repo.usage_on(&alice(), today()).await.unwrap(),
        usage(127, 35)
    );
}

async fn days_and_principals_are_kept_apart(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.repo
        .add_usage(&alice(), today(), usage(10, 1))
        .await
        .unwrap();
    db.repo
        .add_usage(&alice(), tomorrow(), usage(20, 2))
        .await
        .unwrap();
    db.repo
        .add_usage(&bob(), today(), usage(30, 3))
        .await
        .unwrap();

    assert_eq!(
        db.repo.usage_on(&alice(), today()).await.unwrap(),
        usage(10, 1)
    );
    assert_eq!(
        db.repo.usage_on(&alice(), tomorrow()).await.unwrap(),
        usage(20, 2)
    );
    assert_eq!(
        db.repo.usage_on(&bob(), today()).await.unwrap(),
        usage(30, 3)
    );
    assert_eq!(
        db.repo.usage_on(&bob(), tomorrow()).await.unwrap(),
        usage(0, 0)
    );
    // Days before the epoch are days like any other.
    let long_ago = UtcDay::from_days_since_epoch(-1);
    assert_eq!(
        db.repo.usage_on(&alice(), long_ago).await.unwrap(),
        usage(0, 0)
    );
    db.repo
        .add_usage(&alice(), long_ago, usage(1, 1))
        .await
        .unwrap();
    assert_eq!(
        db.repo.usage_on(&alice(), long_ago).await.unwrap(),
        usage(1, 1)
    );
}

/// Eight tasks on four threads add to the same row at once, through a pool
/// of connections, and to a second repository on the same file (another
/// server process): every addition is counted.
async fn concurrent_additions_lose_nothing(backend: Backend) {
    const TASKS: u64 = 8;
    const ROUNDS: u64 = 40;
    let db = TestDb::new(backend).await;
    let other_process = db.reopen().await;

    let adders: Vec<_> = (0..TASKS)
        .map(|task| {
            let repo = if task % 2 == 0 {
                db.repo.clone()
            } else {
                other_process.clone()
            };
            tokio::spawn(async move {
                for _ in 0..ROUNDS {
                    repo.add_usage(&alice(), today(), usage(3, 1)).await?;
                }
                Ok::<_, RepoError>(())
            })
        })
        .collect();
    for adder in adders {
        adder
            .await
            .unwrap()
            .expect("no addition fails under contention");
    }

    assert_eq!(
        db.repo.usage_on(&alice(), today()).await.unwrap(),
        usage(3 * TASKS * ROUNDS, TASKS * ROUNDS)
    );
}

async fn the_ledger_survives_closing_and_reopening_the_file(backend: Backend) {
    let db = TestDb::new(backend).await;
    {
        let server = db.reopen().await;
        server
            .add_usage(&alice(), today(), usage(500, 250))
            .await
            .unwrap();
        // The server stops: its pool and every connection close here.
    }

    let restarted = db.reopen().await;
    assert_eq!(
        restarted.usage_on(&alice(), today()).await.unwrap(),
        usage(500, 250)
    );
    restarted
        .add_usage(&alice(), today(), usage(1, 1))
        .await
        .unwrap();
    drop(restarted);
    assert_eq!(
        db.reopen().await.usage_on(&alice(), today()).await.unwrap(),
        usage(501, 251)
    );
}

async fn a_count_too_large_to_store_is_refused_and_changes_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.repo
        .add_usage(&alice(), today(), usage(1, 2))
        .await
        .unwrap();

    let refused = db
        .repo
        .add_usage(&alice(), today(), usage(u64::MAX, 0))
        .await
        .unwrap_err();

    assert!(matches!(refused, RepoError::Unknown(_)), "{refused:?}");
    assert_eq!(
        db.repo.usage_on(&alice(), today()).await.unwrap(),
        usage(1, 2)
    );
}

on_both_backends! {
    additions_on_one_day_are_summed,
    days_and_principals_are_kept_apart,
    #[multi_thread] concurrent_additions_lose_nothing,
    the_ledger_survives_closing_and_reopening_the_file,
    a_count_too_large_to_store_is_refused_and_changes_nothing,
}
