//! A reply always ends, and its end tells the truth: whatever happens to its
//! task, its slot is freed and its message stored with the final event.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use colloquy_app::{ChatError, EventKind};
use colloquy_domain::{ErrorCode, MessageStatus};
use colloquy_ports::{ChatStream, LlmError, MockLlmClient, RepoError};
use futures::StreamExt;

use crate::support::{
    config, deltas, endless_stream, final_message, repo_with, scripted, service, service_with,
    session, text_stream, until_reply_ends, Writes,
};

/// A stream that gives `pieces`, then panics when polled again.
fn panicking_stream(pieces: &[&str]) -> ChatStream {
    let items: Vec<_> = pieces
        .iter()
        .map(|piece| Ok(colloquy_ports::ChatChunk::Delta((*piece).to_owned())))
        .collect();
    futures::stream::iter(items)
        .chain(futures::stream::poll_fn(
            |_| -> std::task::Poll<Option<_>> { panic!("a bug in the model adapter") },
        ))
        .boxed()
}

fn last_write(writes: &Writes) -> colloquy_domain::Message {
    writes.lock().unwrap().last().cloned().expect("a write")
}

#[tokio::test]
async fn a_reply_task_that_panics_ends_failed_and_frees_the_slot() {
    let session = session();
    let (repo, writes) = repo_with(&session);
    let (llm, _) = scripted(vec![
        panicking_stream(&["half an ", "answer"]),
        text_stream(&["next"]),
    ]);
    let service = service(repo, llm);
    let mut sent = service
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    let reply = final_message(&events);
    assert!(matches!(events.last(), Some(EventKind::MessageFailed(_))));
    assert_eq!(reply.status, MessageStatus::Failed);
    assert_eq!(
        reply.error.as_ref().map(|e| e.code),
        Some(ErrorCode::Internal)
    );
    assert_eq!(reply.content, "half an answer", "the text so far is kept");
    assert_eq!(last_write(&writes), reply, "stored as announced");

    let mut next = service
        .send_message(&session.owner, session.id, "again".into())
        .await
        .expect("the slot was freed: no 409");
    let events = until_reply_ends(&mut next.events).await;
    assert_eq!(final_message(&events).status, MessageStatus::Complete);
}

/// A repository that knows `session` and answers every `update_message`
/// with `update` (after recording the messages it accepted).
fn repo_updating(
    session: &colloquy_domain::Session,
    update: impl Fn(&colloquy_domain::Message) -> Result<(), RepoError> + Send + 'static,
) -> (colloquy_ports::MockChatRepository, Writes) {
    let mut repo = colloquy_ports::MockChatRepository::new();
    let known = session.clone();
    repo.expect_get_session()
        .returning(move |_, _| Ok(known.clone()));
    repo.expect_recent_messages()
        .returning(|_, _, _, _| Ok(Vec::new()));
    repo.expect_append_messages().returning(|_, _| Ok(()));
    let writes: Writes = Arc::default();
    let accepted = Arc::clone(&writes);
    repo.expect_update_message().returning(move |_, message| {
        update(message)?;
        accepted.lock().unwrap().push(message.clone());
        Ok(())
    });
    (repo, writes)
}

#[tokio::test]
async fn a_failed_final_write_is_announced_as_failed_never_complete() {
    let session = session();
    // Progress writes succeed; every write of a final state fails.
    let finals = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&finals);
    let (repo, writes) = repo_updating(&session, move |message| {
        if message.status.is_final() {
            counted.fetch_add(1, Ordering::SeqCst);
            return Err(RepoError::Unknown(anyhow::anyhow!("disk I/O error")));
        }
        Ok(())
    });
    let (llm, _) = scripted(vec![text_stream(&["all ", "of it"])]);
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    assert!(
        matches!(events.last(), Some(EventKind::MessageFailed(_))),
        "{:?}",
        events.last()
    );
    let reply = final_message(&events);
    assert_eq!(
        reply.error.as_ref().map(|e| e.code),
        Some(ErrorCode::Internal)
    );
    assert_eq!(reply.content, "all of it");
    assert!(finals.load(Ordering::SeqCst) >= 1);
    assert!(
        writes
            .lock()
            .unwrap()
            .iter()
            .all(|message| !message.status.is_final()),
        "the store holds no final state the event contradicts"
    );
}

#[tokio::test]
async fn a_reply_whose_end_was_stored_elsewhere_frees_its_slot_without_a_second_end() {
    let session = session();
    // Another replica's sweeper stored this reply's end first (this one
    // lost its lease): the store refuses to overwrite it.
    let (repo, writes) = repo_updating(&session, |message| {
        if message.status.is_final() {
            return Err(RepoError::NotFound);
        }
        Ok(())
    });
    let (llm, _) = scripted(vec![
        text_stream(&["all ", "of it"]),
        text_stream(&["next"]),
    ]);
    let service = service(repo, llm);
    let mut sent = service
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let mut seen = Vec::new();
    while let Ok(Some(event)) =
        tokio::time::timeout(Duration::from_millis(300), sent.events.next()).await
    {
        seen.push(event.kind.clone());
    }
    assert!(
        seen.iter().all(|kind| kind.finished_message().is_none()),
        "the sweeper announced this reply's end; announcing another contradicts the history: {seen:?}"
    );
    assert!(deltas(&seen).contains("of it"), "{seen:?}");
    assert!(
        writes.lock().unwrap().iter().all(|m| !m.status.is_final()),
        "nothing final was written over the stored end"
    );
    service
        .send_message(&session.owner, session.id, "again".into())
        .await
        .expect("the slot was freed: no 409");
}

#[tokio::test]
async fn a_busy_store_gets_more_tries_for_the_final_write() {
    let session = session();
    let busy = Arc::new(AtomicU32::new(2));
    let (repo, writes) = repo_updating(&session, move |message| {
        if message.status.is_final() && busy.fetch_sub(1, Ordering::SeqCst) > 0 {
            return Err(RepoError::Unavailable(anyhow::anyhow!(
                "database is locked"
            )));
        }
        Ok(())
    });
    let (llm, _) = scripted(vec![text_stream(&["fine"])]);
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    let reply = final_message(&events);
    assert_eq!(reply.status, MessageStatus::Complete);
    assert_eq!(last_write(&writes), reply);
}

#[tokio::test]
async fn deleting_mid_reply_gives_every_client_the_cancelled_end_then_ends_their_streams() {
    let session = session();
    let (mut repo, writes) = repo_with(&session);
    repo.expect_delete_session()
        .times(1)
        .returning(|_, _| Ok(()));
    let (llm, _) = scripted(vec![endless_stream(&["some ", "words"])]);
    let service = service(repo, llm);
    let mut watcher = service
        .subscribe(&session.owner, session.id, None)
        .await
        .unwrap();
    let mut sent = service
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    // Wait until the reply streams.
    loop {
        let event = sent.events.next().await.unwrap();
        if matches!(event.kind, EventKind::MessageDelta { .. }) {
            break;
        }
    }
    service
        .delete_session(&session.owner, session.id)
        .await
        .unwrap();
    let rest = until_reply_ends(&mut sent.events).await;
    let reply = final_message(&rest);
    assert_eq!(reply.status, MessageStatus::Cancelled);
    assert!(
        sent.events.next().await.is_none(),
        "the send's stream ended"
    );

    let mut seen = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(2), watcher.next())
        .await
        .expect("the watcher's stream ends")
    {
        seen.push(event.kind.clone());
    }
    assert_eq!(
        seen.last().and_then(EventKind::finished_message),
        Some(&reply)
    );
    assert_eq!(deltas(&seen), "some words");
    assert_eq!(last_write(&writes), reply);
}

#[tokio::test]
async fn cancel_on_drop_stops_only_its_own_reply() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let (llm, _) = scripted(vec![text_stream(&["first"]), endless_stream(&["second"])]);
    let mut config = config();
    config.llm.idle_timeout = Duration::from_secs(10);
    let service = service_with(repo, llm, config);
    let mut first = service
        .send_message(&session.owner, session.id, "one".into())
        .await
        .unwrap();
    let guard = first.cancel_on_drop();
    until_reply_ends(&mut first.events).await;
    let mut second = service
        .send_message(&session.owner, session.id, "two".into())
        .await
        .unwrap();
    // The first reply's client goes away after its reply ended.
    drop(guard);
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        tokio::time::timeout(
            Duration::from_millis(300),
            until_reply_ends(&mut second.events)
        )
        .await
        .is_err(),
        "the second reply goes on streaming"
    );
    assert!(service
        .cancel_reply(&session.owner, session.id)
        .await
        .unwrap());
}

/// A repository whose session holds one complete answer, `text`.
fn repo_with_one_answer(
    session: &colloquy_domain::Session,
    text: &str,
) -> colloquy_ports::MockChatRepository {
    let (mut repo, _) = repo_with(session);
    let mut answer = colloquy_domain::Message::streaming_reply(session.id, &session.model);
    answer.content = text.into();
    answer.finish(MessageStatus::Complete, None);
    repo.expect_list_branch()
        .returning(move |_, _, _, _, _| Ok(crate::support::branch_page(vec![answer.clone()])));
    repo
}

#[tokio::test]
async fn concurrent_summaries_of_one_session_share_one_model_call() {
    let session = session();
    let repo = repo_with_one_answer(&session, "Rust is a language.");
    let calls = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&calls);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().returning(move |_| {
        counted.fetch_add(1, Ordering::SeqCst);
        let answer = r#"{"summary": "About Rust.", "highlights": [], "topics": ["Rust"]}"#;
        Ok(futures::stream::iter(vec![
            Ok(colloquy_ports::ChatChunk::Delta(answer.to_owned())),
            Ok(colloquy_ports::ChatChunk::Finished(
                colloquy_ports::Completion {
                    finish_reason: "stop".into(),
                    usage: None,
                },
            )),
        ])
        .then(|item| async move {
            // Slow enough that every request misses the cache at once.
            tokio::time::sleep(Duration::from_millis(20)).await;
            item
        })
        .boxed())
    });
    let service = service(repo, llm);
    let summaries =
        futures::future::join_all((0..8).map(|_| service.summarize(&session.owner, session.id)))
            .await;
    for summary in summaries {
        assert_eq!(summary.unwrap().summary, "About Rust.");
    }
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "one upstream call for all eight"
    );
}

#[tokio::test]
async fn a_summary_has_an_overall_deadline() {
    let session = session();
    let repo = repo_with_one_answer(&session, "Some text.");
    // Each attempt trickles a byte just inside the idle timeout, forever.
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().returning(|_| {
        Ok(
            futures::stream::repeat_with(|| Ok(colloquy_ports::ChatChunk::Delta(" ".to_owned())))
                .then(|item| async move {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    item
                })
                .boxed(),
        )
    });
    let mut config = config();
    config.summary_deadline = Duration::from_millis(300);
    let service = service_with(repo, llm, config);
    let started = std::time::Instant::now();
    let error = service
        .summarize(&session.owner, session.id)
        .await
        .unwrap_err();
    assert!(
        matches!(error, ChatError::ModelUnavailable(LlmError::Timeout { .. })),
        "{error:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(2));
}
