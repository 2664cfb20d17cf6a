//! A measurement, not a pass/fail check: run with
//! `cargo test -p colloquy-diesel --test it -- --ignored --nocapture scale`
//! (add `sqlite` or `postgres` to measure one backend).

use std::time::Instant;

use colloquy_domain::Message;

use crate::support::{alice, chain, stored_session, user_message, Backend, TestDb};

const MESSAGES: usize = 100_000;
const BATCH: usize = 1_000;
const PAGE: usize = 50;

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
