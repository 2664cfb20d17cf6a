//! A model-based test of the event hub and the reply driver.
//!
//! Random sequences of steps — sends answered by a scripted model (text,
//! text cut by an error, a 503, a 400, a stream that hangs until cancelled,
//! a stream that panics), cancels, deletions and new sessions, subscribers
//! that connect, reconnect from an id and read at their own pace, store
//! faults, time passing — run against a real `ChatService` on a real
//! `InProcessEventLog` with small limits, and hand-written doubles of the
//! store and the model (`fakes`). After every step the real parts are held
//! against a reference model (`reference`): what the log published, as a
//! subscriber that never lags read it, what it must still keep, and which
//! reply holds each session's slot.
//!
//! Each case runs on a current-thread runtime with paused time, one
//! `block_on` per step: between steps nothing runs, time passes only when a
//! step waits, and every step ends once each running reply has ended or
//! waits on a stream that hangs as scripted.
//!
//! `COLLOQUY_MODEL_CASES=<n>` runs `n` cases instead of the default 64.

mod clients;
pub(crate) mod fakes;
mod reference;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Once};
use std::time::Duration;

use colloquy_app::{ChatError, ChatService, EventKind, NewSession, SessionPatch};
use colloquy_domain::{ErrorCode, MessageId, MessageStatus, SessionId};
use colloquy_inprocess::{InProcessEventLog, LogLimits};
use colloquy_ports::{EventLog, EventStream, StartAt};
use futures::StreamExt;
use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::Union;
use proptest::test_runner::Config;
use proptest_state_machine::{prop_state_machine, ReferenceStateMachine, StateMachineTest};

use self::clients::Client;
use self::fakes::{lock, Answer, FakeRepo, Fault, Script, ScriptedLlm, Write, SCRIPTED_PANIC};
use self::reference::{stored_agrees, SessionLog};
use crate::support::config;

/// Longest (in the paused clock) a step waits for the replies to end or
/// hang: well past a reply's slowest path (every retry, then every retry of
/// its final write, some 1.6 s).
const SETTLE_LIMIT: Duration = Duration::from_secs(8);

/// How often a waiting step looks again (in the paused clock).
const SETTLE_TICK: Duration = Duration::from_millis(5);

prop_state_machine! {
    #![proptest_config(proptest_config())]

    #[test]
    fn the_hub_and_the_reply_driver_keep_their_promises(sequential 1..32 => Hub);
}

fn proptest_config() -> Config {
    let cases = std::env::var("COLLOQUY_MODEL_CASES")
        .ok()
        .and_then(|cases| cases.parse().ok())
        .unwrap_or(64);
    Config {
        cases,
        // A failure prints its shrunk steps; nothing is written into the tree.
        failure_persistence: None,
        ..Config::default()
    }
}

/// What the steps are generated from: the log's limits, and which of the
/// two session slots hold a session that was not deleted.
#[derive(Debug, Clone)]
pub struct Outline {
    max_events: usize,
    max_bytes: usize,
    live: [bool; 2],
}

/// One step of a case.
#[derive(Debug, Clone)]
pub enum Step {
    /// Sends a message to the slot's session; the model answers by `script`.
    Send {
        slot: usize,
        script: Script,
    },
    Cancel {
        slot: usize,
    },
    Delete {
        slot: usize,
    },
    /// A new session in a slot whose session was deleted.
    Create {
        slot: usize,
    },
    Rename {
        slot: usize,
    },
    /// A new client of the slot's session, without an id (`Live`).
    Subscribe {
        slot: usize,
    },
    /// A client reconnects with a `Last-Event-ID`.
    Resume {
        client: Index,
        from: ResumeFrom,
    },
    /// A client reads up to this many events (whatever is ready).
    Read {
        client: Index,
        events: usize,
    },
    /// Every client reads everything that is ready.
    ReadAll,
    /// The store's next writes of one kind fail.
    FailStore {
        write: Write,
        fault: Fault,
        times: usize,
    },
    /// Time passes (in the paused clock).
    Wait {
        ms: u64,
    },
}

/// The id a client resumes from.
#[derive(Debug, Clone)]
pub enum ResumeFrom {
    /// One it was given.
    Seen(Index),
    /// The session's newest plus this (past it, or long gone).
    FromNewest(i64),
    /// One no session ever had.
    Zero,
}

fn answer() -> impl Strategy<Value = Answer> {
    prop_oneof![
        4 => (0u8..=6).prop_map(Answer::Text),
        2 => (0u8..=3).prop_map(Answer::Broken),
        1 => Just(Answer::Unavailable),
        1 => Just(Answer::Rejected),
        2 => (0u8..=3).prop_map(Answer::Hang),
        1 => (0u8..=2).prop_map(Answer::Panic),
    ]
}

fn script() -> impl Strategy<Value = Script> {
    (
        proptest::collection::vec(answer(), 1..=5),
        proptest::bool::weighted(0.35),
    )
        .prop_map(|(answers, long_pieces)| Script {
            answers,
            long_pieces,
        })
}

fn resume_from() -> impl Strategy<Value = ResumeFrom> {
    prop_oneof![
        3 => any::<Index>().prop_map(ResumeFrom::Seen),
        2 => prop_oneof![-40i64..=-1, Just(0), 1i64..=3].prop_map(ResumeFrom::FromNewest),
        1 => Just(ResumeFrom::Zero),
    ]
}

/// The steps' generator.
pub struct Steps;

impl ReferenceStateMachine for Steps {
    type State = Outline;
    type Transition = Step;

    fn init_state() -> BoxedStrategy<Outline> {
        (8usize..=40, 1_500usize..=6_000)
            .prop_map(|(max_events, max_bytes)| Outline {
                max_events,
                max_bytes,
                live: [true, true],
            })
            .boxed()
    }

    fn transitions(outline: &Outline) -> BoxedStrategy<Step> {
        let slot = || 0..2usize;
        let mut steps: Vec<(u32, BoxedStrategy<Step>)> = vec![
            (
                6,
                (slot(), script())
                    .prop_map(|(slot, script)| Step::Send { slot, script })
                    .boxed(),
            ),
            (2, slot().prop_map(|slot| Step::Cancel { slot }).boxed()),
            (1, slot().prop_map(|slot| Step::Delete { slot }).boxed()),
            (1, slot().prop_map(|slot| Step::Rename { slot }).boxed()),
            (3, slot().prop_map(|slot| Step::Subscribe { slot }).boxed()),
            (
                2,
                (any::<Index>(), resume_from())
                    .prop_map(|(client, from)| Step::Resume { client, from })
                    .boxed(),
            ),
            (
                6,
                (any::<Index>(), 1usize..=6)
                    .prop_map(|(client, events)| Step::Read { client, events })
                    .boxed(),
            ),
            (1, Just(Step::ReadAll).boxed()),
            (
                1,
                (
                    prop_oneof![Just(Write::Update), Just(Write::Append)],
                    prop_oneof![Just(Fault::Unavailable), Just(Fault::Unknown)],
                    1usize..=6,
                )
                    .prop_map(|(write, fault, times)| Step::FailStore {
                        write,
                        fault,
                        times,
                    })
                    .boxed(),
            ),
            (
                2,
                prop_oneof![Just(1u64), Just(25), Just(150), Just(11_000)]
                    .prop_map(|ms| Step::Wait { ms })
                    .boxed(),
            ),
        ];
        let deleted: Vec<usize> = (0..2).filter(|slot| !outline.live[*slot]).collect();
        if !deleted.is_empty() {
            steps.push((
                3,
                proptest::sample::select(deleted)
                    .prop_map(|slot| Step::Create { slot })
                    .boxed(),
            ));
        }
        Union::new_weighted(steps).boxed()
    }

    fn preconditions(outline: &Outline, step: &Step) -> bool {
        match step {
            Step::Create { slot } => !outline.live[*slot],
            _ => true,
        }
    }

    fn apply(mut outline: Outline, step: &Step) -> Outline {
        match step {
            Step::Delete { slot } => outline.live[*slot] = false,
            Step::Create { slot } => outline.live[*slot] = true,
            _ => {}
        }
        outline
    }
}

/// The system under test, and the runtime it runs on.
pub struct Sut {
    world: World,
    runtime: tokio::runtime::Runtime,
}

/// The real parts, the doubles, the clients and the reference model.
struct World {
    service: ChatService,
    log: Arc<InProcessEventLog>,
    repo: Arc<FakeRepo>,
    llm: Arc<ScriptedLlm>,
    limits: LogLimits,
    /// Every session made, in order.
    sessions: Vec<Tracked>,
    /// Each slot's session, as an index into `sessions`.
    slots: [usize; 2],
    clients: Vec<Client>,
    /// Each reply's turn (its user message), which names its script.
    turns: HashMap<MessageId, String>,
    sent: usize,
}

struct Tracked {
    id: SessionId,
    model: Arc<Mutex<SessionLog>>,
}

/// The test itself.
pub struct Hub;

impl StateMachineTest for Hub {
    type SystemUnderTest = Sut;
    type Reference = Steps;

    fn init_test(outline: &Outline) -> Sut {
        quiet_scripted_panics();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(true)
            .build()
            .expect("a runtime");
        let limits = LogLimits {
            // Retention runs on the real clock: out of play here.
            retention: Duration::from_secs(3_600),
            max_events: outline.max_events,
            max_bytes: outline.max_bytes,
        };
        let log = Arc::new(InProcessEventLog::new(limits));
        let repo = Arc::new(FakeRepo::default());
        let llm = Arc::new(ScriptedLlm::default());
        let mut config = config();
        // A hanging stream hangs until it is cancelled, unless a step lets
        // this much time pass.
        config.llm.first_chunk_timeout = Duration::from_secs(10);
        config.llm.idle_timeout = Duration::from_secs(10);
        // The reference model knows nothing of limits: many hanging replies
        // at once must not be refused here (the limits have tests of their own).
        config.limits = colloquy_ports::Limits {
            requests_per_minute: 0,
            replies_at_once: 0,
            streams_at_once: 0,
            daily_tokens: 0,
        };
        let service = runtime.block_on(async {
            crate::support::service_with_events(
                Arc::clone(&repo) as _,
                Arc::clone(&llm) as _,
                Arc::clone(&log) as _,
                Arc::default(),
                config,
            )
        });
        let mut world = World {
            service,
            log,
            repo,
            llm,
            limits,
            sessions: Vec::new(),
            slots: [0, 0],
            clients: Vec::new(),
            turns: HashMap::new(),
            sent: 0,
        };
        runtime.block_on(async {
            world.create(0).await;
            world.create(1).await;
            world.settle().await;
        });
        Sut { world, runtime }
    }

    fn apply(mut sut: Sut, _: &Outline, step: Step) -> Sut {
        sut.runtime.block_on(sut.world.apply(step));
        sut
    }

    fn check_invariants(sut: &Sut, _: &Outline) {
        sut.runtime.block_on(sut.world.check());
    }
}

/// Keeps the scripted panics (expected, and caught by the runtime) out of
/// the output; every other panic is reported as usual.
fn quiet_scripted_panics() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let report = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if info.payload().downcast_ref::<&str>() != Some(&SCRIPTED_PANIC) {
                report(info);
            }
        }));
    });
}

/// Lets every task that is ready run until none is (the reply tasks, the
/// reference subscribers); time does not pass.
async fn quiesce() {
    for _ in 0..8 {
        tokio::task::yield_now().await;
    }
}

/// The reference subscriber of a session: reads every event the moment it
/// is published, into the session's model.
async fn record(mut events: EventStream, model: Arc<Mutex<SessionLog>>, repo: Arc<FakeRepo>) {
    while let Some(event) = events.next().await {
        lock(&model).observe(&event, &repo);
    }
    lock(&model).recorder_ended = true;
}

fn expect_not_found<T: std::fmt::Debug>(result: &Result<T, ChatError>, what: &str) {
    assert!(
        matches!(result, Err(ChatError::SessionNotFound)),
        "{what} of a deleted session must fail with SessionNotFound, got {result:?}"
    );
}

impl World {
    async fn create(&mut self, slot: usize) {
        let session = self
            .service
            .create_session(&owner(), NewSession::default())
            .await
            .expect("creating a session");
        let model = Arc::new(Mutex::new(SessionLog::new(self.limits)));
        let events = self
            .log
            .subscribe(session.id, StartAt::Live)
            .await
            .expect("the in-process log answers");
        tokio::spawn(record(events, Arc::clone(&model), Arc::clone(&self.repo)));
        // Named at once, so its log is never empty: the model then knows
        // the ids the channel gives, and so where a resumed client starts.
        let patch = SessionPatch {
            title: Some(Some(format!("session {}", self.sessions.len()))),
            ..SessionPatch::default()
        };
        self.service
            .update_session(&session.owner, session.id, patch)
            .await
            .expect("naming a session");
        self.sessions.push(Tracked {
            id: session.id,
            model,
        });
        self.slots[slot] = self.sessions.len() - 1;
    }

    /// The slot's session: its index, id and model.
    fn slot(&self, slot: usize) -> (usize, SessionId, Arc<Mutex<SessionLog>>) {
        let index = self.slots[slot];
        let tracked = &self.sessions[index];
        (index, tracked.id, Arc::clone(&tracked.model))
    }

    async fn apply(&mut self, step: Step) {
        match step {
            Step::Send { slot, script } => self.send(slot, &script).await,
            Step::Cancel { slot } => self.cancel(slot).await,
            Step::Delete { slot } => self.delete(slot).await,
            Step::Create { slot } => self.create(slot).await,
            Step::Rename { slot } => {
                let (_, id, model) = self.slot(slot);
                let deleted = lock(&model).deleted;
                let patch = SessionPatch {
                    title: Some(Some(format!("title {}", self.sent))),
                    ..SessionPatch::default()
                };
                let result = self.service.update_session(&owner(), id, patch).await;
                if deleted {
                    expect_not_found(&result, "renaming");
                } else {
                    result.expect("renaming a session");
                }
            }
            Step::Subscribe { slot } => {
                let (index, id, model) = self.slot(slot);
                let (deleted, start) = {
                    let model = lock(&model);
                    (model.deleted, model.start_live())
                };
                let result = self.service.subscribe(&owner(), id, None).await;
                if deleted {
                    expect_not_found(&result, "subscribing");
                } else {
                    let subscription = result.expect("subscribing to a session");
                    self.clients
                        .push(Client::subscriber(index, subscription, start));
                }
            }
            Step::Resume { client, from } => self.resume(&client, &from).await,
            Step::Read { client, events } => {
                if let Some(client) = self.pick(&client) {
                    self.read(client, events);
                }
            }
            Step::ReadAll => {
                for client in 0..self.clients.len() {
                    self.read(client, usize::MAX);
                }
            }
            Step::FailStore {
                write,
                fault,
                times,
            } => self.repo.fail_next(write, fault, times),
            Step::Wait { ms } => tokio::time::sleep(Duration::from_millis(ms)).await,
        }
        self.settle().await;
    }

    async fn send(&mut self, slot: usize, script: &Script) {
        let (index, id, model) = self.slot(slot);
        self.sent += 1;
        let turn = format!("turn {}", self.sent);
        self.llm.script(&turn, script);
        let (deleted, running) = {
            let model = lock(&model);
            (model.deleted, model.running)
        };
        let fault = self.repo.next_append_fault();
        let result = self.service.send_message(&owner(), id, turn.clone()).await;
        match (running, deleted, fault) {
            (Some(running), _, _) => assert!(
                matches!(result, Err(ChatError::ReplyInProgress)),
                "a send while reply {running} runs must be refused with ReplyInProgress, got \
                 {result:?}"
            ),
            (None, true, _) => expect_not_found(&result, "sending"),
            (None, false, Some(Fault::Unavailable)) => assert!(
                matches!(result, Err(ChatError::StoreUnavailable(_))),
                "a send whose turn the store refuses (busy) must fail with StoreUnavailable, got \
                 {result:?}"
            ),
            (None, false, Some(Fault::Unknown)) => assert!(
                matches!(result, Err(ChatError::Unexpected(_))),
                "a send whose turn the store refuses (a bug) must fail with Unexpected, got \
                 {result:?}"
            ),
            (None, false, None) => {
                let outcome = match result {
                    Ok(outcome) => outcome,
                    Err(ChatError::ReplyInProgress) => panic!(
                        "a send was refused with ReplyInProgress though no reply runs in its \
                         session: a slot stayed claimed after its reply ended"
                    ),
                    Err(error) => panic!("a send failed: {error:?}"),
                };
                quiesce().await;
                let reply = outcome.assistant_message().id;
                let turn_start = lock(&model)
                    .replies
                    .get(&reply)
                    .map(|reply| (reply.first_event, reply.user));
                let Some((first_event, user)) = turn_start else {
                    panic!("the turn of reply {reply} was not announced before the send returned");
                };
                assert_eq!(
                    user,
                    outcome.user_message.as_ref().unwrap().id,
                    "reply {reply} was announced after another user message than its own"
                );
                self.turns.insert(reply, turn);
                self.clients.push(Client::sender(
                    index,
                    outcome.events,
                    user,
                    reply,
                    first_event,
                ));
            }
        }
    }

    async fn cancel(&mut self, slot: usize) {
        let (_, id, model) = self.slot(slot);
        let (deleted, running) = {
            let model = lock(&model);
            (model.deleted, model.running)
        };
        let result = self.service.cancel_reply(&owner(), id).await;
        if deleted {
            expect_not_found(&result, "cancelling");
            return;
        }
        let cancelled = result.expect("cancelling a reply");
        assert_eq!(
            cancelled,
            running.is_some(),
            "cancel must say whether a reply was running (the model's running reply: {running:?})"
        );
        self.settle().await;
        if let Some(reply) = running {
            assert_stopped(&model, reply, "cancelled");
        }
    }

    async fn delete(&mut self, slot: usize) {
        let (_, id, model) = self.slot(slot);
        let (deleted, running) = {
            let model = lock(&model);
            (model.deleted, model.running)
        };
        let result = self.service.delete_session(&owner(), id).await;
        if deleted {
            expect_not_found(&result, "deleting");
            return;
        }
        result.expect("deleting a session");
        lock(&model).deleted = true;
        self.settle().await;
        if let Some(reply) = running {
            assert_stopped(&model, reply, "deleted with its session");
        }
    }

    async fn resume(&mut self, client: &Index, from: &ResumeFrom) {
        let Some(client) = self.pick(client) else {
            return;
        };
        let index = self.clients[client].session;
        let id = self.sessions[index].id;
        let model = Arc::clone(&self.sessions[index].model);
        let (deleted, after, start) = {
            let model = lock(&model);
            let from_newest = |offset: i64| {
                model
                    .newest()
                    .map_or(0, |newest| newest.saturating_add_signed(offset))
            };
            let seen = &self.clients[client].seen;
            let after = match from {
                ResumeFrom::Seen(pick) if !seen.is_empty() => seen[pick.index(seen.len())],
                ResumeFrom::Seen(_) => from_newest(0),
                ResumeFrom::FromNewest(offset) => from_newest(*offset),
                ResumeFrom::Zero => 0,
            };
            (model.deleted, after, model.start_after(after))
        };
        let result = self.service.subscribe(&owner(), id, Some(after)).await;
        if deleted {
            expect_not_found(&result, "resuming");
        } else {
            let subscription = result.expect("resuming a session's events");
            self.clients[client].reconnect(subscription, start);
        }
    }

    /// The client an index picks, newest first (so that a shrunk case
    /// names the client it is about as `Index(0)` more often than not).
    fn pick(&self, client: &Index) -> Option<usize> {
        let count = self.clients.len();
        (count > 0).then(|| count - 1 - client.index(count))
    }

    /// The client reads up to `most` events, each judged by the model.
    fn read(&mut self, client: usize, most: usize) {
        let model = Arc::clone(&self.sessions[self.clients[client].session].model);
        let model = lock(&model);
        for _ in 0..most {
            match self.clients[client].read(&model) {
                Ok(true) => {}
                Ok(false) => break,
                Err(problem) => panic!("client {client} ({:?}): {problem}", self.clients[client]),
            }
        }
    }

    /// Runs until every running reply has ended or waits on a stream that
    /// hangs as scripted: a reply that does neither is a reply that never ends.
    async fn settle(&self) {
        let started = tokio::time::Instant::now();
        loop {
            quiesce().await;
            let waiting: Vec<MessageId> = self
                .sessions
                .iter()
                .filter_map(|tracked| lock(&tracked.model).running)
                .filter(|reply| {
                    !self
                        .turns
                        .get(reply)
                        .is_some_and(|turn| self.llm.is_hanging(turn))
                })
                .collect();
            if waiting.is_empty() {
                return;
            }
            assert!(
                started.elapsed() < SETTLE_LIMIT,
                "replies {waiting:?} neither ended nor wait on a hanging upstream {SETTLE_LIMIT:?} \
                 after the step began: a reply must always end, announce its end and free its slot"
            );
            tokio::time::sleep(SETTLE_TICK).await;
        }
    }

    /// The invariants that hold between any two steps.
    async fn check(&self) {
        let limits = self.limits;
        for (index, tracked) in self.sessions.iter().enumerate() {
            let (violations, deleted, recorder_ended, running, kept, finals) = {
                let model = lock(&tracked.model);
                let finals: Vec<EventKind> = model
                    .replies
                    .values()
                    .filter_map(|reply| reply.end.clone())
                    .collect();
                (
                    model.violations.clone(),
                    model.deleted,
                    model.recorder_ended,
                    model.running,
                    model.kept(),
                    finals,
                )
            };
            assert!(
                violations.is_empty(),
                "session {index}: {}",
                violations.join("; ")
            );
            assert!(
                !recorder_ended || deleted,
                "session {index}: the reference subscriber's stream ended though the session was \
                 not deleted"
            );

            let actual = self.log.kept(tracked.id);
            if deleted {
                assert_eq!(
                    actual,
                    (0, 0),
                    "session {index} was deleted: the log must keep nothing of it"
                );
            } else {
                let (events, bytes) = actual;
                assert!(
                    events <= limits.max_events && (bytes <= limits.max_bytes || events == 1),
                    "session {index}: the log keeps {events} events, {bytes} bytes, over its \
                     limits of {} events, {} bytes (only the newest event alone may be bigger)",
                    limits.max_events,
                    limits.max_bytes
                );
                assert_eq!(
                    actual, kept,
                    "session {index}: the log keeps (events, bytes) {actual:?} where the newest \
                     events that fit its limits are {kept:?}: an event may leave only when a \
                     limit makes it"
                );
            }

            let active = self
                .log
                .active_reply(tracked.id)
                .await
                .expect("the in-process log answers");
            let expected = if deleted { None } else { running };
            assert_eq!(
                active, expected,
                "session {index}: the slot is held by {active:?}, but the running reply is \
                 {expected:?}: a slot is held from a reply's start to its final event, never after"
            );

            if !deleted {
                for last in &finals {
                    if let Err(problem) = stored_agrees(&self.repo, last) {
                        panic!("session {index}: {problem}");
                    }
                }
            }
        }
    }
}

/// A reply that was stopped (cancelled, or its session deleted) has ended
/// `cancelled`, or `failed` (`internal`) when the store refused its end.
fn assert_stopped(model: &Mutex<SessionLog>, reply: MessageId, how: &str) {
    let model = lock(model);
    let end = model
        .replies
        .get(&reply)
        .and_then(|reply| reply.end.as_ref())
        .and_then(EventKind::finished_message);
    let Some(message) = end else {
        panic!("reply {reply} was {how} but has not ended");
    };
    let failed_to_store = message.status == MessageStatus::Failed
        && message.error.as_ref().map(|error| error.code) == Some(ErrorCode::Internal);
    assert!(
        message.status == MessageStatus::Cancelled || failed_to_store,
        "reply {reply} was {how} but ended {}",
        message.status.as_str()
    );
}

/// The one principal of the model: ownership is the repository's business,
/// tested with it; here it only has to be passed along.
fn owner() -> colloquy_domain::Principal {
    colloquy_domain::Principal::parse("model-owner").unwrap()
}
