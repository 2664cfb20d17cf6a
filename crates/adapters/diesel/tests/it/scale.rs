//! Measurements, not pass/fail checks: run with
//! `cargo test -p colloquy-diesel --test it -- --ignored --nocapture scale`
//! (add a test's name, `sqlite` or `postgres` to measure less; `--release`
//! for numbers worth comparing).

use std::time::Instant;

use colloquy_domain::Message;

use crate::support::{alice, chain, stored_session, user_message, Backend, TestDb};

const MESSAGES: usize = 100_000;
const BATCH: usize = 1_000;
const PAGE: usize = 50;

/// The branch a turn reads its history from, and how many reads are timed.
const BRANCH: usize = 200;
const READS: u32 = 2_000;

mod history_pages_stay_fast_at_100k_messages {
    #[tokio::test]
    #[ignore = "a measurement that prints timings; fills a 100k-message database first"]
    async fn sqlite() {
        super::history_pages_stay_fast_at_100k_messages(crate::support::Backend::Sqlite).await;
    }

    #[tokio::test]
    #[ignore = "a measurement that prints timings; fills a 100k-message database first"]
    async fn postgres() {
        super::history_pages_stay_fast_at_100k_messages(crate::support::Backend::Postgres).await;
    }
}

mod recent_messages_of_a_200_message_branch {
    #[tokio::test]
    #[ignore = "a measurement that prints timings"]
    async fn sqlite() {
        super::recent_messages_of_a_200_message_branch(crate::support::Backend::Sqlite).await;
    }

    #[tokio::test]
    #[ignore = "a measurement that prints timings"]
    async fn postgres() {
        super::recent_messages_of_a_200_message_branch(crate::support::Backend::Postgres).await;
    }
}

/// What a chat turn pays to read its history, one call after another: the
/// cost of one call at the repository (the pool, the transaction, the
/// statements and the rows), averaged over many.
async fn recent_messages_of_a_200_message_branch(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let messages = chain(
        None,
        (0..BRANCH)
            .map(|n| user_message(session.id, &format!("message {n} of a long conversation")))
            .collect(),
    );
    db.repo.append_messages(&alice(), &messages).await.unwrap();
    for limit in [PAGE, BRANCH] {
        // Every connection of the pool has run the statements once.
        for _ in 0..100 {
            db.repo
                .recent_messages(&alice(), session.id, None, limit)
                .await
                .unwrap();
        }
        let started = Instant::now();
        for _ in 0..READS {
            let recent = db
                .repo
                .recent_messages(&alice(), session.id, None, limit)
                .await
                .unwrap();
            assert_eq!(recent.len(), limit);
        }
        let elapsed = started.elapsed();
        eprintln!(
            "recent_messages, newest {limit:>3} of {BRANCH}: {READS} calls in {elapsed:>10.3?}, \
             {:>8.1?} a call",
            elapsed / READS
        );
    }
}

async fn history_pages_stay_fast_at_100k_messages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    // Neighbours, so that the index has other sessions' rows to skip.
    for _ in 0..10 {
        let other = stored_session(&*db.repo).await;
        let noise: Vec<Message> = (0..BATCH)
            .map(|n| user_message(other.id, &format!("noise {n}")))
            .collect();
        db.repo.append_messages(&alice(), &noise).await.unwrap();
    }

    let started = Instant::now();
    let mut middle = None;
    // One branch, 100k long: each message follows the one before.
    let mut last = None;
    for batch in 0..MESSAGES / BATCH {
        let messages = chain(
            last,
            (0..BATCH)
                .map(|n| {
                    user_message(
                        session.id,
                        &format!(
                            "message {} with some text to make it realistic",
                            batch * BATCH + n
                        ),
                    )
                })
                .collect(),
        );
        last = messages.last().map(|message| message.id);
        if batch == MESSAGES / BATCH / 2 {
            middle = Some(messages[0].id);
        }
        db.repo.append_messages(&alice(), &messages).await.unwrap();
    }
    eprintln!(
        "appended {MESSAGES} messages in batches of {BATCH}: {:?}",
        started.elapsed()
    );

    let time =
        |label: &str, started: Instant| eprintln!("{label:<32} {:>10.3?}", started.elapsed());
    for round in 0..3 {
        eprintln!("round {round}");
        let started = Instant::now();
        let page = db
            .repo
            .list_messages(&alice(), session.id, PAGE, None)
            .await
            .unwrap();
        time("first page", started);
        assert_eq!(page.items.len(), PAGE);

        let started = Instant::now();
        let page = db
            .repo
            .list_messages(&alice(), session.id, PAGE, middle)
            .await
            .unwrap();
        time("page from the middle", started);
        assert!(page.has_more);

        let started = Instant::now();
        let recent = db
            .repo
            .recent_messages(&alice(), session.id, None, PAGE)
            .await
            .unwrap();
        time("newest page (recent_messages)", started);
        assert_eq!(recent.len(), PAGE);

        let started = Instant::now();
        db.repo.get_session(&alice(), session.id).await.unwrap();
        time("get_session", started);

        let started = Instant::now();
        let page = db
            .repo
            .list_branch(&alice(), session.id, None, PAGE, middle)
            .await
            .unwrap();
        time("branch page from the middle", started);
        assert!(page.has_more);

        let started = Instant::now();
        let found = db
            .repo
            .search_messages(
                &alice(),
                &["message".to_owned(), "77777".to_owned()],
                20,
                None,
            )
            .await
            .unwrap();
        time("search, one hit", started);
        assert_eq!(found.items.len(), 1);

        let started = Instant::now();
        let found = db
            .repo
            .search_messages(&alice(), &["realistic".to_owned()], 20, None)
            .await
            .unwrap();
        time("search, 100k hits, a page", started);
        assert!(found.has_more);

        let started = Instant::now();
        let next = Message {
            parent_id: last,
            ..user_message(session.id, "one more")
        };
        last = Some(next.id);
        db.repo.append_messages(&alice(), &[next]).await.unwrap();
        time("append one message", started);

        let started = Instant::now();
        db.repo.interrupt_streaming().await.unwrap();
        time("interrupt_streaming (none)", started);
    }
}
