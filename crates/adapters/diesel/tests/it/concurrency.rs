use std::collections::HashSet;

use colloquy_domain::MessageStatus;
use colloquy_ports::ChatRepository;

use crate::support::{all_messages, stored_session, streaming_reply, user_message, TestDb};

const TASKS: usize = 8;
const ROUNDS: usize = 25;

/// Eight tasks each append exchanges to one shared session and finish their
/// replies, while listing it: no call may fail with SQLITE_BUSY, and the
/// count must add up.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writers_and_readers_all_succeed() {
    let db = TestDb::new();
    let shared = stored_session(&db.repo).await;

    let writers = (0..TASKS).map(|task| {
        let repo = db.repo.clone();
        tokio::spawn(async move {
            for round in 0..ROUNDS {
                let question = user_message(shared.id, &format!("task {task} round {round}"));
                let mut reply = streaming_reply(shared.id);
                repo.append_messages(&[question, reply.clone()]).await?;
                reply.content = format!("answer {task}/{round}");
                reply.finish(MessageStatus::Complete, None);
                repo.update_message(&reply).await?;
                repo.list_messages(shared.id, 20, None).await?;
            }
            Ok::<_, colloquy_ports::RepoError>(())
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer
            .await
            .unwrap()
            .expect("no call fails under contention");
    }

    let expected = TASKS * ROUNDS * 2;
    let session = db.repo.get_session(shared.id).await.unwrap();
    assert_eq!(session.message_count, u64::try_from(expected).unwrap());
    let messages = all_messages(&db.repo, shared.id, 64).await;
    assert_eq!(messages.len(), expected);
    assert!(
        messages.windows(2).all(|pair| pair[0].id < pair[1].id),
        "oldest first"
    );
    assert_eq!(
        messages.iter().map(|m| m.id).collect::<HashSet<_>>().len(),
        expected
    );
    assert!(messages.iter().all(|m| m.status == MessageStatus::Complete));
}
