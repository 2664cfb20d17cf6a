//! The sweeper: a reply whose replica died is stored `interrupted` and its
//! end announced once, whatever final state the store holds wins, and a
//! reply some replica still runs is never touched.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use colloquy_app::{ReplySweeper, SweepReport};
use colloquy_domain::{
    ErrorCode, Message, MessageError, MessageId, MessageStatus, ModelName, SessionId,
};
use colloquy_inprocess::{InProcessEventLog, LogLimits};
use colloquy_ports::{
    EventKind, EventLog, EventLogError, ExpiredReply, MockChatRepository, MockExpiredLeases,
    MockSweepClaim, RepoError, StoredEnd, SweepClaim,
};

const LEASE: Duration = Duration::from_secs(10);

fn reply() -> ExpiredReply {
    ExpiredReply {
        session: SessionId::new(),
        message: MessageId::new(),
    }
}

fn stored(reply: ExpiredReply, status: MessageStatus) -> Message {
    let mut message =
        Message::streaming_reply(reply.session, &ModelName::parse("test-model").unwrap());
    message.id = reply.message;
    message.content = "Hel".to_owned();
    if status != MessageStatus::Streaming {
        let error = (status == MessageStatus::Interrupted).then(|| MessageError {
            code: ErrorCode::Interrupted,
            message: "stopped".to_owned(),
        });
        message.finish(status, error);
    }
    message
}

/// What a sweep claim was told to do.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Ending {
    Finished(Box<EventKind>),
    Dismissed,
}

type Endings = Arc<Mutex<Vec<Ending>>>;

/// A claim of `reply` that records how it was ended (and none when dropped).
fn claim(reply: ExpiredReply, endings: &Endings) -> Box<dyn SweepClaim> {
    let mut claim = MockSweepClaim::new();
    claim.expect_reply().return_const(reply);
    let finished = Arc::clone(endings);
    claim.expect_finish().returning(move |last| {
        finished
            .lock()
            .unwrap()
            .push(Ending::Finished(Box::new(last)));
        Ok(Some(42))
    });
    let dismissed = Arc::clone(endings);
    claim.expect_dismiss().returning(move || {
        dismissed.lock().unwrap().push(Ending::Dismissed);
        Ok(true)
    });
    Box::new(claim)
}

/// Leases where `expired` ran out, each claimed by this sweeper.
fn leases_expired(expired: Vec<ExpiredReply>, endings: &Endings) -> MockExpiredLeases {
    let mut leases = MockExpiredLeases::new();
    leases
        .expect_expired_replies()
        .returning(move |_| Ok(expired.clone()));
    let endings = Arc::clone(endings);
    leases
        .expect_claim_sweep()
        .returning(move |reply| Ok(Some(claim(reply, &endings))));
    leases
}

/// A store holding no reply `streaming` but those given.
fn repo_with_streaming(streaming: Vec<(SessionId, MessageId)>) -> MockChatRepository {
    let mut repo = MockChatRepository::new();
    repo.expect_streaming_replies()
        .returning(move |_, _| Ok(streaming.clone()));
    repo
}

fn sweeper(repo: MockChatRepository, leases: MockExpiredLeases) -> ReplySweeper {
    sweeper_on(
        repo,
        leases,
        Arc::new(InProcessEventLog::new(LogLimits::default())),
    )
}

fn sweeper_on(
    repo: MockChatRepository,
    leases: MockExpiredLeases,
    events: Arc<dyn EventLog>,
) -> ReplySweeper {
    ReplySweeper::new(Arc::new(repo), events, Arc::new(leases), LEASE)
}

#[tokio::test]
async fn an_expired_reply_is_stored_interrupted_and_announced() {
    let expired = reply();
    let endings = Endings::default();
    let end = stored(expired, MessageStatus::Interrupted);
    let mut repo = repo_with_streaming(Vec::new());
    let interrupted = end.clone();
    repo.expect_interrupt_turn()
        .withf(move |session, message| (*session, *message) == (expired.session, expired.message))
        .times(1)
        .returning(move |_, _| {
            Ok(vec![StoredEnd {
                message: interrupted.clone(),
                changed: true,
            }])
        });
    let report = sweeper(repo, leases_expired(vec![expired], &endings))
        .sweep()
        .await;

    assert_eq!(
        report,
        SweepReport {
            interrupted: 1,
            announced: 1,
            dismissed: 0
        }
    );
    assert_eq!(
        *endings.lock().unwrap(),
        [Ending::Finished(Box::new(EventKind::MessageFailed(end)))]
    );
}

#[tokio::test]
async fn a_reply_its_replica_ended_before_dying_is_announced_as_stored() {
    let expired = reply();
    let endings = Endings::default();
    let end = stored(expired, MessageStatus::Complete);
    let completed = end.clone();
    let mut repo = repo_with_streaming(Vec::new());
    repo.expect_interrupt_turn().returning(move |_, _| {
        Ok(vec![StoredEnd {
            message: completed.clone(),
            changed: false,
        }])
    });
    let report = sweeper(repo, leases_expired(vec![expired], &endings))
        .sweep()
        .await;

    assert_eq!((report.interrupted, report.announced), (0, 1));
    assert_eq!(
        *endings.lock().unwrap(),
        [Ending::Finished(Box::new(EventKind::MessageCompleted(end)))],
        "the history and the last event agree"
    );
}

#[tokio::test]
async fn a_deleted_reply_is_dismissed_without_an_event() {
    let expired = reply();
    let endings = Endings::default();
    let mut repo = repo_with_streaming(Vec::new());
    repo.expect_interrupt_turn()
        .returning(|_, _| Err(RepoError::NotFound));
    let report = sweeper(repo, leases_expired(vec![expired], &endings))
        .sweep()
        .await;

    assert_eq!(report.dismissed, 1);
    assert_eq!(*endings.lock().unwrap(), [Ending::Dismissed]);
}

#[tokio::test]
async fn a_store_that_fails_leaves_the_reply_for_a_later_sweep() {
    let expired = reply();
    let endings = Endings::default();
    let mut repo = repo_with_streaming(Vec::new());
    repo.expect_interrupt_turn()
        .returning(|_, _| Err(RepoError::Unavailable(anyhow::anyhow!("down"))));
    let report = sweeper(repo, leases_expired(vec![expired], &endings))
        .sweep()
        .await;

    assert_eq!(report, SweepReport::default());
    assert!(
        endings.lock().unwrap().is_empty(),
        "the claim is dropped, so the reply expires again and is retried"
    );
}

#[tokio::test]
async fn a_reply_another_replica_sweeps_is_left_to_it() {
    let mut leases = MockExpiredLeases::new();
    let expired = reply();
    leases
        .expect_expired_replies()
        .returning(move |_| Ok(vec![expired]));
    leases.expect_claim_sweep().returning(|_| Ok(None));
    let mut repo = repo_with_streaming(Vec::new());
    repo.expect_interrupt_turn().never();
    assert_eq!(sweeper(repo, leases).sweep().await, SweepReport::default());
}

#[tokio::test]
async fn a_log_that_cannot_be_reached_ends_nothing_and_fails_nothing() {
    let mut leases = MockExpiredLeases::new();
    leases.expect_expired_replies().returning(|_| {
        Err(EventLogError::Unavailable(anyhow::anyhow!(
            "connection refused"
        )))
    });
    let mut repo = repo_with_streaming(Vec::new());
    repo.expect_interrupt_turn().never();
    assert_eq!(sweeper(repo, leases).sweep().await, SweepReport::default());
}

/// Leases that name no reply: every orphan can be adopted once.
fn leases_with_orphans(endings: &Endings) -> MockExpiredLeases {
    let mut leases = MockExpiredLeases::new();
    leases
        .expect_expired_replies()
        .returning(|_| Ok(Vec::new()));
    let endings = Arc::clone(endings);
    leases
        .expect_adopt_orphan()
        .returning(move |reply| Ok(Some(claim(reply, &endings))));
    leases
}

#[tokio::test(start_paused = true)]
async fn an_orphan_is_adopted_only_after_a_whole_lease_without_its_slot() {
    let orphan = reply();
    let endings = Endings::default();
    let end = stored(orphan, MessageStatus::Interrupted);
    let interrupted = end.clone();
    let mut repo = repo_with_streaming(vec![(orphan.session, orphan.message)]);
    repo.expect_interrupt_turn()
        .times(1)
        .returning(move |_, _| {
            Ok(vec![StoredEnd {
                message: interrupted.clone(),
                changed: true,
            }])
        });
    let mut leases = MockExpiredLeases::new();
    leases
        .expect_expired_replies()
        .returning(|_| Ok(Vec::new()));
    let adopted = Arc::clone(&endings);
    leases
        .expect_adopt_orphan()
        .times(1)
        .returning(move |reply| Ok(Some(claim(reply, &adopted))));
    let sweeper = sweeper(repo, leases);

    assert_eq!(
        sweeper.sweep().await,
        SweepReport::default(),
        "first seen: its replica may still be ending it"
    );
    tokio::time::advance(LEASE / 2).await;
    assert_eq!(sweeper.sweep().await, SweepReport::default());
    tokio::time::advance(LEASE / 2).await;
    let report = sweeper.sweep().await;
    assert_eq!((report.interrupted, report.announced), (1, 1));
    assert_eq!(
        *endings.lock().unwrap(),
        [Ending::Finished(Box::new(EventKind::MessageFailed(end)))]
    );
}

#[tokio::test(start_paused = true)]
async fn an_orphan_someone_else_ended_first_is_not_announced_twice() {
    let orphan = reply();
    let endings = Endings::default();
    let mut repo = repo_with_streaming(vec![(orphan.session, orphan.message)]);
    repo.expect_interrupt_turn().returning(move |_, _| {
        Ok(vec![StoredEnd {
            message: stored(orphan, MessageStatus::Interrupted),
            changed: false,
        }])
    });
    let sweeper = sweeper(repo, leases_with_orphans(&endings));
    sweeper.sweep().await;
    tokio::time::advance(LEASE).await;
    let report = sweeper.sweep().await;

    assert_eq!(report.dismissed, 1);
    assert_eq!(*endings.lock().unwrap(), [Ending::Dismissed]);
}

#[tokio::test(start_paused = true)]
async fn a_reply_that_holds_its_slot_is_never_taken_for_an_orphan() {
    let events = Arc::new(InProcessEventLog::new(LogLimits::default()));
    let running = reply();
    let _slot = events
        .claim_reply(running.session, running.message)
        .await
        .unwrap()
        .unwrap();
    let endings = Endings::default();
    let mut repo = repo_with_streaming(vec![(running.session, running.message)]);
    repo.expect_interrupt_turn().never();
    let mut leases = MockExpiredLeases::new();
    leases
        .expect_expired_replies()
        .returning(|_| Ok(Vec::new()));
    leases.expect_adopt_orphan().never();
    let sweeper = sweeper_on(repo, leases, events);

    for _ in 0..4 {
        assert_eq!(sweeper.sweep().await, SweepReport::default());
        tokio::time::advance(LEASE).await;
    }
    assert!(endings.lock().unwrap().is_empty());
}

/// A turn's replies, made in a row after `first`, in `first`'s session.
fn turn_of(first: ExpiredReply, statuses: &[MessageStatus]) -> Vec<Message> {
    statuses
        .iter()
        .enumerate()
        .map(|(index, status)| {
            let id = if index == 0 {
                first.message
            } else {
                MessageId::new()
            };
            stored(
                ExpiredReply {
                    session: first.session,
                    message: id,
                },
                *status,
            )
        })
        .collect()
}

#[tokio::test]
async fn an_expired_turn_ends_every_reply_still_streaming_and_announces_each() {
    let expired = reply();
    let endings = Endings::default();
    let ends = turn_of(
        expired,
        &[
            MessageStatus::Complete,
            MessageStatus::Interrupted,
            MessageStatus::Interrupted,
        ],
    );
    let mut repo = repo_with_streaming(Vec::new());
    let stored_ends: Vec<StoredEnd> = ends
        .iter()
        .enumerate()
        .map(|(index, message)| StoredEnd {
            message: message.clone(),
            changed: index > 0,
        })
        .collect();
    repo.expect_interrupt_turn()
        .withf(move |session, first| (*session, *first) == (expired.session, expired.message))
        .times(1)
        .returning(move |_, _| Ok(stored_ends.clone()));
    let events = Arc::new(InProcessEventLog::new(LogLimits::default()));
    let mut watcher = events
        .subscribe(expired.session, colloquy_ports::StartAt::Live)
        .await
        .unwrap();
    let report = sweeper_on(repo, leases_expired(vec![expired], &endings), events)
        .sweep()
        .await;

    assert_eq!((report.interrupted, report.announced), (2, 3));
    // The first ended before the replica died; it may not have been
    // announced, so it is (again). The last one's end frees the slot.
    use futures::StreamExt;
    let first = watcher.next().await.unwrap();
    assert_eq!(first.kind, EventKind::MessageCompleted(ends[0].clone()));
    let second = watcher.next().await.unwrap();
    assert_eq!(second.kind, EventKind::MessageFailed(ends[1].clone()));
    assert_eq!(
        *endings.lock().unwrap(),
        [Ending::Finished(Box::new(EventKind::MessageFailed(
            ends[2].clone()
        )))]
    );
}

#[tokio::test(start_paused = true)]
async fn a_later_reply_of_the_turn_holding_the_slot_is_never_taken_for_an_orphan() {
    let events = Arc::new(InProcessEventLog::new(LogLimits::default()));
    let first = reply();
    let _slot = events
        .claim_reply(first.session, first.message)
        .await
        .unwrap()
        .unwrap();
    // Stored `streaming` with the turn, waiting for its assistant's turn.
    let waiting = MessageId::new();
    let mut repo = repo_with_streaming(vec![(first.session, waiting)]);
    repo.expect_interrupt_turn().never();
    let mut leases = MockExpiredLeases::new();
    leases
        .expect_expired_replies()
        .returning(|_| Ok(Vec::new()));
    leases.expect_adopt_orphan().never();
    let sweeper = sweeper_on(repo, leases, events);

    for _ in 0..4 {
        assert_eq!(sweeper.sweep().await, SweepReport::default());
        tokio::time::advance(LEASE).await;
    }
}
