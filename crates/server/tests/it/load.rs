//! Many sessions streaming at once, each watched twice.

use std::time::Duration;

use colloquy_fake_upstream::Behaviour;

use crate::support::{spawn_app_with, text_of};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_sessions_stream_at_once_and_every_subscriber_sees_its_stored_reply() {
    // One anonymous client holding 400 streams and 200 replies: the
    // per-principal limits would refuse most of it (they have tests of their own).
    let app = std::sync::Arc::new(
        spawn_app_with(&[
            ("COLLOQUY_RATE_LIMIT_PER_MINUTE", "0"),
            ("COLLOQUY_MAX_REPLIES_PER_PRINCIPAL", "0"),
            ("COLLOQUY_MAX_STREAMS_PER_PRINCIPAL", "0"),
        ])
        .await,
    );
    app.fake
        .set_default(Behaviour::echo().pace(Duration::from_millis(10)));
    let turns = (0..200).map(|n| {
        let app = std::sync::Arc::clone(&app);
        tokio::spawn(async move {
            let session = app.new_session().await;
            let mut watchers = [
                app.subscribe(&session, None).await,
                app.subscribe(&session, None).await,
            ];
            let content = format!("session {n} says hello to everyone listening here");
            let sent = app.send_accepted(&session, &content).await;
            let reply_id = sent["assistant_message"]["id"].as_str().unwrap().to_owned();
            let mut texts = Vec::new();
            for watcher in &mut watchers {
                texts.push(text_of(&watcher.until_reply_ends(&reply_id).await));
            }
            let stored = app.stored_final(&session, &reply_id).await;
            assert_eq!(stored["status"], "complete");
            assert_eq!(stored["content"], format!("Echo: {content}"));
            for text in texts {
                assert_eq!(text, stored["content"].as_str().unwrap());
            }
        })
    });
    for turn in futures::future::join_all(turns).await {
        turn.unwrap();
    }
    assert_eq!(app.fake.request_count(), 200);
}
