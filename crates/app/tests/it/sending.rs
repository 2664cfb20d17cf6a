use colloquy_app::{ChatError, EventKind};
use colloquy_domain::{MessageStatus, Role};
use colloquy_ports::{MockChatRepository, MockLlmClient, PromptRole};
use mockall::Sequence;

use crate::support::{
    deltas, endless_stream, final_message, repo_with, service, session, text_stream,
    until_reply_ends,
};

#[tokio::test]
async fn the_user_message_is_stored_before_the_model_is_called() {
    let session = session();
    let mut order = Sequence::new();
    let mut repo = MockChatRepository::new();
    let known = session.clone();
    repo.expect_get_session()
        .returning(move |_, _| Ok(known.clone()));
    repo.expect_recent_messages()
        .returning(|_, _, _, _| Ok(Vec::new()));
    repo.expect_append_messages()
        .withf(|_, messages| {
            messages.len() == 2
                && messages[0].role == Role::User
                && messages[0].content == "hello"
                && messages[1].status == MessageStatus::Streaming
        })
        .times(1)
        .in_sequence(&mut order)
        .returning(|_, _| Ok(()));
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat()
        .times(1)
        .in_sequence(&mut order)
        .returning(|_| Ok(text_stream(&["Hi", " there"])));
    repo.expect_update_message().returning(|_, _| Ok(()));

    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hello".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    assert_eq!(deltas(&events), "Hi there");
    let reply = final_message(&events);
    assert_eq!(reply.status, MessageStatus::Complete);
    assert_eq!(reply.finish_reason.as_deref(), Some("stop"));
}

#[tokio::test]
async fn invalid_content_never_reaches_the_model_or_the_store() {
    // No expectations on either mock: touching them would panic.
    let service = service(MockChatRepository::new(), MockLlmClient::new());
    for content in ["", "   \n\t", &"x".repeat(101)] {
        let refused = service
            .send_message(&session().owner, session().id, content.to_owned())
            .await;
        assert!(
            matches!(refused, Err(ChatError::Invalid(_))),
            "{content:?} must be refused"
        );
    }
}

#[tokio::test]
async fn the_model_gets_the_system_prompt_history_and_new_message() {
    let session = session();
    let (mut repo, _) = repo_with(&session);
    repo.checkpoint();
    let known = session.clone();
    repo.expect_get_session()
        .returning(move |_, _| Ok(known.clone()));
    let earlier = session.id;
    repo.expect_recent_messages().returning(move |_, _, _, _| {
        let question =
            colloquy_domain::MessageContent::parse("first question".into(), 100).unwrap();
        let mut answer = colloquy_domain::Message::streaming_reply(
            earlier,
            &colloquy_domain::ModelName::parse("m").unwrap(),
        );
        answer.content = "first answer".into();
        answer.finish(MessageStatus::Complete, None);
        Ok(vec![
            colloquy_domain::Message::user(earlier, question),
            answer,
        ])
    });
    repo.expect_append_messages().returning(|_, _| Ok(()));
    repo.expect_update_message().returning(|_, _| Ok(()));
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat()
        .withf(|request| {
            let roles: Vec<PromptRole> = request.messages.iter().map(|m| m.role).collect();
            let texts: Vec<&str> = request
                .messages
                .iter()
                .map(|m| m.content.as_str())
                .collect();
            request.model == "test-model"
                && roles
                    == [
                        PromptRole::System,
                        PromptRole::User,
                        PromptRole::Assistant,
                        PromptRole::User,
                    ]
                && texts[1..] == ["first question", "first answer", "second question"]
        })
        .times(1)
        .returning(|_| Ok(text_stream(&["ok"])));
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "second question".into())
        .await
        .unwrap();
    until_reply_ends(&mut sent.events).await;
}

#[tokio::test]
async fn a_second_send_while_a_reply_streams_is_refused() {
    let session = session();
    let (repo, writes) = repo_with(&session);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat()
        .times(1)
        .returning(|_| Ok(endless_stream(&["still going"])));
    let service = service(repo, llm);

    let first = service
        .send_message(&session.owner, session.id, "one".into())
        .await
        .unwrap();
    let second = service
        .send_message(&session.owner, session.id, "two".into())
        .await;
    assert!(matches!(second, Err(ChatError::ReplyInProgress)));
    assert_eq!(
        writes.lock().unwrap().len(),
        2,
        "the refused message was not stored"
    );

    let mut events = first.events;
    while !matches!(
        events.next().await.unwrap().kind,
        EventKind::MessageDelta { .. }
    ) {}
    assert!(service
        .cancel_reply(&session.owner, session.id)
        .await
        .unwrap());
    let reply = final_message(&until_reply_ends(&mut events).await);
    assert_eq!(reply.status, MessageStatus::Cancelled);
    assert_eq!(
        reply.content, "still going",
        "a cancelled reply keeps its text"
    );
}

#[tokio::test]
async fn dropping_a_cancel_on_drop_guard_cancels_the_reply() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat()
        .returning(|_| Ok(endless_stream(&["partial"])));
    let service = service(repo, llm);
    let mut sent = service
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let guard = sent.cancel_on_drop();
    drop(guard);
    let reply = final_message(&until_reply_ends(&mut sent.events).await);
    assert_eq!(reply.status, MessageStatus::Cancelled);
}

#[tokio::test]
async fn the_events_of_a_turn_come_in_the_contract_order() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat()
        .returning(|_| Ok(text_stream(&["a", "b"])));
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let names: Vec<&str> = until_reply_ends(&mut sent.events)
        .await
        .iter()
        .map(EventKind::name)
        .collect();
    assert_eq!(
        names,
        [
            "message.created",
            "message.created",
            "message.delta",
            "message.delta",
            "message.completed"
        ]
    );
}

#[tokio::test]
async fn shutting_down_refuses_new_messages() {
    let service = service(MockChatRepository::new(), MockLlmClient::new());
    service.shutdown(std::time::Duration::from_millis(10)).await;
    let refused = service
        .send_message(&session().owner, session().id, "hi".into())
        .await;
    assert!(matches!(refused, Err(ChatError::ShuttingDown)));
}
