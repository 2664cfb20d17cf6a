//! Naming an untitled session after its first complete reply.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use colloquy_app::{ChatService, EventKind, Subscription};
use colloquy_domain::{Session, Title};
use colloquy_ports::{LlmError, MockLlmClient, ResponseFormat};
use serde_json::Value;

use crate::support::{
    config, repo_with, scripted, session, text_stream, until_reply_ends, Requests,
};

/// A repository that also stores session updates, and the service with
/// automatic titles on.
fn titling(session: &Session, llm: MockLlmClient) -> (ChatService, Arc<Mutex<Vec<Session>>>) {
    let (mut repo, _) = repo_with(session);
    let updates: Arc<Mutex<Vec<Session>>> = Arc::default();
    let stored = Arc::clone(&updates);
    let known = session.clone();
    repo.expect_set_title_if_untitled()
        .returning(move |_, _, title, at| {
            let mut named = known.clone();
            named.title = Some(title.clone());
            named.updated_at = at;
            stored.lock().unwrap().push(named.clone());
            Ok(Some(named))
        });
    let mut config = config();
    config.auto_title = true;
    (crate::support::service_with(repo, llm, config), updates)
}

/// The next `session.updated` on `events`, within a second.
async fn session_updated(events: &mut Subscription) -> Session {
    // The send's own stream ends with its reply: titles come after, on the
    // session's stream.
    loop {
        let event = tokio::time::timeout(Duration::from_secs(2), events.next())
            .await
            .expect("session.updated in time")
            .expect("open");
        if let EventKind::SessionUpdated(session) = &event.kind {
            return session.clone();
        }
    }
}

fn title_schema(requests: &Requests) -> Value {
    let requests = requests.lock().unwrap();
    let Some(ResponseFormat::JsonSchema { name, schema }) = &requests[1].response_format else {
        panic!("the title is asked for as a structured output");
    };
    assert_eq!(name, "session_title");
    assert!(requests[1].tools.is_empty());
    serde_json::from_str(schema).unwrap()
}

#[tokio::test]
async fn the_first_complete_reply_names_the_session_with_the_models_title() {
    let session = session();
    let (llm, requests) = scripted(vec![
        text_stream(&["Rye sourdough needs a ", "stiff starter."]),
        text_stream(&[r#"{"title": "#, r#""Baking rye sourdough"}"#]),
    ]);
    let (service, updates) = titling(&session, llm);
    let mut watch = service
        .subscribe(&session.owner, session.id, None)
        .await
        .unwrap();
    let mut sent = service
        .send_message(
            &session.owner,
            session.id,
            "How do I bake rye sourdough?".into(),
        )
        .await
        .unwrap();
    let reply = until_reply_ends(&mut sent.events).await;
    assert!(
        matches!(reply.last(), Some(EventKind::MessageCompleted(_))),
        "the reply ends first"
    );

    let named = session_updated(&mut watch).await;
    assert_eq!(
        named.title,
        Some(Title::parse("Baking rye sourdough").unwrap())
    );
    assert_eq!(updates.lock().unwrap().as_slice(), [named]);
    assert_eq!(title_schema(&requests)["required"][0], "title");
    let asked = &requests.lock().unwrap()[1].messages;
    assert_eq!(asked[1].content, "How do I bake rye sourdough?");
    assert_eq!(asked[2].content, "Rye sourdough needs a stiff starter.");
}

#[tokio::test]
async fn junk_from_the_model_gives_the_first_words_of_the_message() {
    for junk in [
        "Sure! A good title would be: Rye bread",
        r#"{"title": "This title goes on and on well past the sixty characters allowed"}"#,
        r#"{"title": "two\nlines"}"#,
    ] {
        let session = session();
        let (llm, _) = scripted(vec![text_stream(&["answer"]), text_stream(&[junk])]);
        let (service, _) = titling(&session, llm);
        let mut watch = service
            .subscribe(&session.owner, session.id, None)
            .await
            .unwrap();
        let mut sent = service
            .send_message(
                &session.owner,
                session.id,
                "  How do I bake\nrye sourdough?".into(),
            )
            .await
            .unwrap();
        until_reply_ends(&mut sent.events).await;
        let named = session_updated(&mut watch).await;
        assert_eq!(
            named.title.unwrap().as_str(),
            "How do I bake rye sourdough?",
            "after {junk:?}"
        );
    }
}

#[tokio::test]
async fn a_failing_model_gives_the_fallback_title() {
    let session = session();
    let mut llm = MockLlmClient::new();
    let mut seq = mockall::Sequence::new();
    llm.expect_stream_chat()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| Ok(text_stream(&["answer"])));
    llm.expect_stream_chat()
        .times(1)
        .in_sequence(&mut seq)
        .returning(|_| {
            Err(LlmError::Rejected {
                status: 400,
                message: "no response_format here".into(),
            })
        });
    let (service, _) = titling(&session, llm);
    let mut watch = service
        .subscribe(&session.owner, session.id, None)
        .await
        .unwrap();
    let mut sent = service
        .send_message(&session.owner, session.id, "Plan a week in Lisbon".into())
        .await
        .unwrap();
    until_reply_ends(&mut sent.events).await;
    assert_eq!(
        session_updated(&mut watch).await.title.unwrap().as_str(),
        "Plan a week in Lisbon"
    );
}

#[tokio::test]
async fn a_titled_session_is_never_renamed() {
    let session = Session {
        title: Some(Title::parse("Mine").unwrap()),
        ..session()
    };
    let (llm, _) = scripted(vec![text_stream(&["answer"])]);
    let (service, updates) = titling(&session, llm);
    let mut sent = service
        .send_message(&session.owner, session.id, "hello".into())
        .await
        .unwrap();
    until_reply_ends(&mut sent.events).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(
        updates.lock().unwrap().is_empty(),
        "no second model call, no update"
    );
}

#[tokio::test]
async fn a_failed_reply_names_nothing() {
    let session = session();
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().times(1).returning(|_| {
        Err(LlmError::Rejected {
            status: 401,
            message: "bad key".into(),
        })
    });
    let (service, updates) = titling(&session, llm);
    let mut sent = service
        .send_message(&session.owner, session.id, "hello".into())
        .await
        .unwrap();
    until_reply_ends(&mut sent.events).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(updates.lock().unwrap().is_empty());
}
