//! What a principal may use: replies and streams at once, upstream tokens
//! per day (replies, titles and summaries counted), the models offered, the
//! reply token limit sent upstream.

use std::sync::Arc;
use std::time::Duration;

use colloquy_app::{ChatError, ChatService, ModelAllowlist, NewSession, SessionPatch};
use colloquy_domain::{ModelName, Principal, Session, Usage};
use colloquy_ports::{Limit, LimitReached, Limits, MockChatRepository, MockLlmClient};

use crate::support::{
    config, endless_stream, repo_with, scripted, service_on, session, text_stream_with_usage,
    until_reply_ends, MemoryLedger,
};

fn limits(replies: u32, streams: u32, daily_tokens: u64) -> Limits {
    Limits {
        requests_per_minute: 0,
        replies_at_once: replies,
        streams_at_once: streams,
        daily_tokens,
    }
}

fn limited(
    session: &Session,
    llm: MockLlmClient,
    limits: Limits,
) -> (ChatService, Arc<MemoryLedger>) {
    let (repo, _) = repo_with(session);
    let ledger = Arc::new(MemoryLedger::default());
    let mut config = config();
    config.limits = limits;
    let service = service_on(Arc::new(repo), Arc::new(llm), Arc::clone(&ledger), config);
    (service, ledger)
}

fn reached(error: ChatError) -> LimitReached {
    match error {
        ChatError::LimitReached(reached) => reached,
        other => panic!("expected a limit, got {other:?}"),
    }
}

#[tokio::test]
async fn a_principal_generates_only_so_many_replies_at_once() {
    let session = session();
    let (llm, _) = scripted(vec![
        endless_stream(&["thinking"]),
        text_stream_with_usage(&["done"], 1, 1),
    ]);
    let (service, _) = limited(&session, llm, limits(1, 0, 0));
    let owner = &session.owner;

    let first = service
        .send_message(owner, session.id, "one".into())
        .await
        .unwrap();
    let refused = reached(
        service
            .send_message(owner, session.id, "two".into())
            .await
            .unwrap_err(),
    );
    assert_eq!(refused.limit, Limit::RepliesAtOnce);
    assert_eq!(refused.max, 1);
    assert!(refused.retry_after >= Duration::from_secs(1));

    // The place is given back once the reply has ended.
    let mut events = first.events;
    assert!(service.cancel_reply(owner, session.id).await.unwrap());
    until_reply_ends(&mut events).await;
    let mut again = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            match service.send_message(owner, session.id, "two".into()).await {
                Ok(outcome) => return outcome,
                // The finished turn's task lets go of its place a moment
                // after its final event.
                Err(ChatError::LimitReached(_) | ChatError::ReplyInProgress) => {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                Err(other) => panic!("{other:?}"),
            }
        }
    })
    .await
    .expect("the place is given back");
    until_reply_ends(&mut again.events).await;
}

#[tokio::test]
async fn a_principal_holds_only_so_many_streams_and_gets_a_place_back_when_one_closes() {
    let session = session();
    let (service, _) = limited(&session, MockLlmClient::new(), limits(0, 2, 0));
    let owner = &session.owner;

    let first = service.subscribe(owner, session.id, None).await.unwrap();
    let second = service
        .subscribe(owner, session.id, None)
        .await
        .unwrap()
        .into_stream();
    let refused = reached(
        service
            .subscribe(owner, session.id, None)
            .await
            .unwrap_err(),
    );
    assert_eq!((refused.limit, refused.max), (Limit::StreamsAtOnce, 2));

    drop(first);
    let third = service.subscribe(owner, session.id, None).await.unwrap();
    // A subscription turned into a stream still holds its place…
    reached(
        service
            .subscribe(owner, session.id, None)
            .await
            .unwrap_err(),
    );
    // …until the stream is dropped.
    drop(second);
    service.subscribe(owner, session.id, None).await.unwrap();
    drop(third);
}

#[tokio::test]
async fn spending_the_days_tokens_refuses_replies_and_summaries_until_midnight_utc() {
    let session = session();
    let (llm, _) = scripted(vec![text_stream_with_usage(&["an answer"], 70, 40)]);
    let (service, ledger) = limited(&session, llm, limits(0, 0, 100));
    let owner = &session.owner;

    let mut turn = service
        .send_message(owner, session.id, "spend".into())
        .await
        .unwrap();
    until_reply_ends(&mut turn.events).await;
    assert_eq!(
        ledger.today(owner),
        Usage {
            prompt_tokens: 70,
            completion_tokens: 40
        }
    );

    let refused = reached(
        service
            .send_message(owner, session.id, "more".into())
            .await
            .unwrap_err(),
    );
    assert_eq!((refused.limit, refused.max), (Limit::DailyTokens, 100));
    assert!(refused.retry_after > Duration::ZERO);
    assert!(refused.retry_after <= Duration::from_secs(86_400));
    // The account says so too.
    let account = service.account(owner).await.unwrap();
    assert_eq!(account.usage_today.prompt_tokens, 70);
    assert_eq!(account.limits.daily_tokens, 100);
}

#[tokio::test]
async fn another_principals_spending_is_its_own() {
    let session = session();
    let (service, ledger) = limited(&session, MockLlmClient::new(), limits(0, 0, 100));
    let bob = Principal::parse("bob").unwrap();
    use colloquy_ports::UsageLedger;
    ledger
        .add_usage(
            &bob,
            colloquy_domain::UtcDay::today(),
            Usage {
                prompt_tokens: 100,
                completion_tokens: 0,
            },
        )
        .await
        .unwrap();
    assert_eq!(
        service.account(&session.owner).await.unwrap().usage_today,
        Usage::default()
    );
    assert_eq!(
        service
            .account(&bob)
            .await
            .unwrap()
            .usage_today
            .prompt_tokens,
        100
    );
}

#[tokio::test]
async fn a_cancelled_reply_is_billed_by_an_estimate() {
    let session = session();
    let (llm, _) = scripted(vec![endless_stream(&["a few words of a long answer"])]);
    let (service, ledger) = limited(&session, llm, limits(0, 0, 0));
    let owner = &session.owner;

    let mut turn = service
        .send_message(owner, session.id, "go on".into())
        .await
        .unwrap();
    // The first delta has arrived once the next event is a delta.
    loop {
        let event = turn.events.next().await.unwrap();
        if matches!(event.kind, colloquy_app::EventKind::MessageDelta { .. }) {
            break;
        }
    }
    service.cancel_reply(owner, session.id).await.unwrap();
    until_reply_ends(&mut turn.events).await;
    let billed = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let usage = ledger.today(owner);
            if usage != Usage::default() {
                return usage;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the cancelled reply is billed");
    assert!(billed.prompt_tokens > 0, "{billed:?}");
    assert!(billed.completion_tokens > 0, "{billed:?}");
}

#[tokio::test]
async fn every_reply_request_carries_the_reply_token_limit() {
    let session = session();
    let (llm, requests) = scripted(vec![text_stream_with_usage(&["short"], 1, 1)]);
    let (repo, _) = repo_with(&session);
    let mut config = config();
    config.max_reply_tokens = Some(321);
    let service = service_on(Arc::new(repo), Arc::new(llm), Arc::default(), config);
    let mut turn = service
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    until_reply_ends(&mut turn.events).await;
    assert_eq!(requests.lock().unwrap()[0].max_tokens, Some(321));
}

#[tokio::test]
async fn only_the_models_offered_may_be_named() {
    let mut repo = MockChatRepository::new();
    repo.expect_create_session().returning(|_| Ok(()));
    let mut config = config();
    config.models = ModelAllowlist::Only(vec![
        ModelName::parse("test-model").unwrap(),
        ModelName::parse("big-model").unwrap(),
    ]);
    let service = service_on(
        Arc::new(repo),
        Arc::new(MockLlmClient::new()),
        Arc::default(),
        config,
    );
    let alice = Principal::parse("alice").unwrap();
    let named = |model: &str| NewSession {
        model: Some(model.into()),
        ..NewSession::default()
    };

    let big = service
        .create_session(&alice, named("big-model"))
        .await
        .unwrap();
    assert_eq!(big.model.as_str(), "big-model");
    let refused = service
        .create_session(&alice, named("gpt-4o"))
        .await
        .unwrap_err();
    assert!(
        matches!(&refused, ChatError::ModelNotAllowed(model) if model == "gpt-4o"),
        "{refused:?}"
    );
    // A patch is held to the same list, before the store is touched.
    let patch = service
        .update_session(
            &alice,
            big.id,
            SessionPatch {
                model: Some("gpt-4o".into()),
                ..SessionPatch::default()
            },
        )
        .await
        .unwrap_err();
    assert!(matches!(patch, ChatError::ModelNotAllowed(_)), "{patch:?}");
    let listed: Vec<String> = service
        .models()
        .iter()
        .map(|model| model.as_str().to_owned())
        .collect();
    assert_eq!(listed, ["test-model", "big-model"]);
}

#[tokio::test]
async fn the_title_a_reply_earns_is_billed_to_the_sessions_owner() {
    let session = session();
    let (llm, _) = scripted(vec![
        text_stream_with_usage(&["an answer"], 10, 5),
        text_stream_with_usage(&[r#"{"title": "A title"}"#], 3, 2),
    ]);
    let (mut repo, _) = repo_with(&session);
    let known = session.clone();
    repo.expect_set_title_if_untitled()
        .returning(move |_, _, title, _| {
            let mut named = known.clone();
            named.title = Some(title.clone());
            Ok(Some(named))
        });
    let ledger = Arc::new(MemoryLedger::default());
    let mut config = config();
    config.auto_title = true;
    let service = service_on(Arc::new(repo), Arc::new(llm), Arc::clone(&ledger), config);
    let owner = &session.owner;
    let mut watch = service.subscribe(owner, session.id, None).await.unwrap();

    let mut turn = service
        .send_message(owner, session.id, "a question".into())
        .await
        .unwrap();
    until_reply_ends(&mut turn.events).await;
    // The title is stored (and billed) after the reply's end.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(2), watch.next())
            .await
            .expect("the title in time")
            .expect("open");
        if matches!(event.kind, colloquy_app::EventKind::SessionUpdated(_)) {
            break;
        }
    }
    assert_eq!(
        ledger.today(owner),
        Usage {
            prompt_tokens: 13,
            completion_tokens: 7
        }
    );
}

#[tokio::test]
async fn a_summary_is_billed_and_refused_once_the_days_tokens_are_spent() {
    let session = session();
    let summary = r#"{"summary": "A short chat.", "highlights": [], "topics": []}"#;
    let summarizer = |llm: MockLlmClient, ledger: &Arc<MemoryLedger>| {
        let mut answered = colloquy_domain::Message::streaming_reply(session.id, &session.model);
        answered.content = "Something to summarize.".into();
        answered.finish(colloquy_domain::MessageStatus::Complete, None);
        let (mut repo, _) = repo_with(&session);
        repo.expect_list_branch().returning(move |_, _, _, _, _| {
            Ok(crate::support::branch_page(vec![answered.clone()]))
        });
        let mut config = config();
        config.limits = limits(0, 0, 100);
        service_on(Arc::new(repo), Arc::new(llm), Arc::clone(ledger), config)
    };
    let owner = &session.owner;
    let ledger = Arc::new(MemoryLedger::default());

    let (llm, _) = scripted(vec![text_stream_with_usage(&[summary], 90, 20)]);
    summarizer(llm, &ledger)
        .summarize(owner, session.id)
        .await
        .unwrap();
    assert_eq!(
        ledger.today(owner),
        Usage {
            prompt_tokens: 90,
            completion_tokens: 20
        }
    );

    // 110 of 100 spent: a summary the model would have to write is refused,
    // and the model is not asked.
    let refused = summarizer(MockLlmClient::new(), &ledger)
        .summarize(owner, session.id)
        .await
        .unwrap_err();
    assert_eq!(reached(refused).limit, Limit::DailyTokens);
}

#[tokio::test]
async fn yesterdays_spending_does_not_count_today() {
    use colloquy_ports::UsageLedger;
    let session = session();
    let (llm, _) = scripted(vec![text_stream_with_usage(&["fresh"], 1, 1)]);
    let (service, ledger) = limited(&session, llm, limits(0, 0, 100));
    let owner = &session.owner;
    let yesterday = colloquy_domain::UtcDay::from_days_since_epoch(
        colloquy_domain::UtcDay::today().days_since_epoch() - 1,
    );
    ledger
        .add_usage(
            owner,
            yesterday,
            Usage {
                prompt_tokens: 5_000,
                completion_tokens: 5_000,
            },
        )
        .await
        .unwrap();
    let mut turn = service
        .send_message(owner, session.id, "a new day".into())
        .await
        .expect("yesterday's allowance is not today's");
    until_reply_ends(&mut turn.events).await;
    assert_eq!(
        service.account(owner).await.unwrap().usage_today,
        Usage {
            prompt_tokens: 1,
            completion_tokens: 1
        }
    );
}
