//! How a reply survives (or reports) upstream faults.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use colloquy_app::EventKind;
use colloquy_domain::{ErrorCode, MessageStatus};
use colloquy_ports::{LlmError, MockLlmClient};

use crate::support::{
    broken_stream, deltas, endless_stream, final_message, repo_with, service, session, text_stream,
    until_reply_ends,
};

fn unavailable() -> LlmError {
    LlmError::Unavailable {
        retry_after: None,
        message: "503".into(),
    }
}

#[tokio::test]
async fn an_error_mid_reply_keeps_the_partial_text_when_retries_run_out() {
    let session = session();
    let (repo, writes) = repo_with(&session);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().times(4).returning(|_| {
        Ok(broken_stream(
            &["partial ", "text"],
            LlmError::Protocol {
                message: "cut".into(),
            },
        ))
    });
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    let reply = final_message(&events);
    assert_eq!(reply.status, MessageStatus::Failed);
    assert_eq!(
        reply.content, "partial text",
        "the last attempt's text is kept"
    );
    assert_eq!(
        reply.error.as_ref().map(|e| e.code),
        Some(ErrorCode::UpstreamProtocolError)
    );
    let resets = events
        .iter()
        .filter(|e| matches!(e, EventKind::MessageReset { .. }))
        .count();
    assert_eq!(resets, 3, "one reset before each retry that discards text");
    let stored = writes.lock().unwrap().last().cloned().unwrap();
    assert_eq!(
        stored, reply,
        "the stored message is the one the client saw"
    );
}

#[tokio::test]
async fn retryable_failures_are_retried_with_backoff_then_succeed() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let calls = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = Arc::clone(&calls);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().times(3).returning(move |_| {
        let mut seen = seen.lock().unwrap();
        seen.push(Instant::now());
        if seen.len() < 3 {
            Err(unavailable())
        } else {
            Ok(text_stream(&["fine"]))
        }
    });
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    assert_eq!(final_message(&events).status, MessageStatus::Complete);
    assert_eq!(deltas(&events), "fine");
    let calls = calls.lock().unwrap();
    // base 10 ms, doubling, jitter takes off at most a quarter.
    assert!(calls[1] - calls[0] >= Duration::from_micros(7_500));
    assert!(calls[2] - calls[1] >= Duration::from_millis(15));
}

#[tokio::test]
async fn retry_after_is_waited_for() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let calls = Arc::new(Mutex::new(Vec::<Instant>::new()));
    let seen = Arc::clone(&calls);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().times(2).returning(move |_| {
        let mut seen = seen.lock().unwrap();
        seen.push(Instant::now());
        if seen.len() == 1 {
            Err(LlmError::RateLimited {
                retry_after: Some(Duration::from_millis(150)),
                message: "slow down".into(),
            })
        } else {
            Ok(text_stream(&["ok"]))
        }
    });
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    until_reply_ends(&mut sent.events).await;
    let calls = calls.lock().unwrap();
    assert!(calls[1] - calls[0] >= Duration::from_millis(150));
}

#[tokio::test]
async fn rejected_requests_are_never_retried() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().times(1).returning(|_| {
        Err(LlmError::Rejected {
            status: 401,
            message: "bad key".into(),
        })
    });
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let reply = final_message(&until_reply_ends(&mut sent.events).await);
    assert_eq!(reply.status, MessageStatus::Failed);
    assert_eq!(
        reply.error.map(|e| e.code),
        Some(ErrorCode::UpstreamRejected)
    );
}

#[tokio::test]
async fn a_stall_longer_than_the_idle_timeout_is_a_retried_failure() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let attempts = Arc::new(AtomicU32::new(0));
    let counted = Arc::clone(&attempts);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().returning(move |_| {
        if counted.fetch_add(1, Ordering::SeqCst) == 0 {
            Ok(endless_stream(&["stalled "]))
        } else {
            Ok(text_stream(&["recovered"]))
        }
    });
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    assert_eq!(attempts.load(Ordering::SeqCst), 2);
    assert!(events
        .iter()
        .any(|e| matches!(e, EventKind::MessageReset { .. })));
    assert_eq!(final_message(&events).content, "recovered");
}

#[tokio::test]
async fn a_stream_that_just_stops_is_not_a_finished_reply() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().times(4).returning(|_| {
        use futures::StreamExt;
        Ok(futures::stream::iter([Ok(colloquy_ports::ChatChunk::Delta("half".into()))]).boxed())
    });
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let reply = final_message(&until_reply_ends(&mut sent.events).await);
    assert_eq!(reply.status, MessageStatus::Failed);
    assert_eq!(reply.content, "half");
}

#[tokio::test]
async fn shutdown_interrupts_replies_that_outlive_the_grace_period() {
    let session = session();
    let (repo, writes) = repo_with(&session);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat()
        .returning(|_| Ok(endless_stream(&["unfinished"])));
    let service = service(repo, llm);
    let mut sent = service
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    // Let the first delta through before shutting down.
    tokio::time::sleep(Duration::from_millis(50)).await;
    service.shutdown(Duration::from_millis(20)).await;
    let reply = final_message(&until_reply_ends(&mut sent.events).await);
    assert_eq!(reply.status, MessageStatus::Interrupted);
    assert_eq!(reply.content, "unfinished");
    assert_eq!(
        writes.lock().unwrap().last().unwrap().status,
        MessageStatus::Interrupted
    );
}

#[tokio::test]
async fn a_busy_store_gets_more_tries_at_the_final_write() {
    let session = session();
    let (mut repo, writes) = repo_with(&session);
    // Replace the recording `update_message` with one that refuses the final
    // write twice, as a store busy with another writer would.
    repo.checkpoint();
    let known = session.clone();
    repo.expect_get_session()
        .returning(move |_, _| Ok(known.clone()));
    repo.expect_recent_messages()
        .returning(|_, _, _, _| Ok(Vec::new()));
    repo.expect_append_messages().returning(|_, _| Ok(()));
    let refusals = Arc::new(AtomicU32::new(0));
    let refused = Arc::clone(&refusals);
    let stored = Arc::clone(&writes);
    repo.expect_update_message().returning(move |_, message| {
        if message.status.is_final() && refused.fetch_add(1, Ordering::SeqCst) < 2 {
            return Err(colloquy_ports::RepoError::Unavailable(anyhow::anyhow!(
                "database is locked"
            )));
        }
        stored.lock().unwrap().push(message.clone());
        Ok(())
    });
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat()
        .returning(|_| Ok(text_stream(&["kept ", "whole"])));
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let reply = final_message(&until_reply_ends(&mut sent.events).await);
    assert_eq!(
        refusals.load(Ordering::SeqCst),
        3,
        "two refusals, then the write that took"
    );
    let last = writes.lock().unwrap().last().cloned().unwrap();
    assert_eq!(last, reply);
    assert_eq!(last.content, "kept whole");
}
