//! Chat Completions requests recorded as conversations: a stateless client
//! resending its history grows one session, a divergence is a branch, a
//! named session is continued, anything else starts a session; the
//! request's own system message, tools, temperature and token limit are
//! honoured, and the client's tools are the client's to run.

use std::sync::Arc;
use std::time::Duration;

use colloquy_app::{
    ChatError, ChatService, CompletionMessage, CompletionRequest, CompletionStarted, EventKind,
    ModelAllowlist, NewSession, Recorded,
};
use colloquy_domain::{Message, MessageStatus, ModelName, Principal, Role, SessionId, ToolCall};
use colloquy_inprocess::{InProcessEventLog, LogLimits};
use colloquy_ports::{ChatRepository, ChatStream, PromptRole, ToolSpec};

use crate::model::fakes::FakeRepo;
use crate::support::{
    config, scripted, service_with_events, text_stream, tool_call_stream, Requests,
};

struct Gateway {
    service: ChatService,
    requests: Requests,
    owner: Principal,
}

fn gateway(answers: Vec<ChatStream>) -> Gateway {
    let repo = Arc::new(FakeRepo::default());
    let (llm, requests) = scripted(answers);
    let mut config = config();
    config.models = ModelAllowlist::Only(vec![
        config.default_model.clone(),
        ModelName::parse("other-model").unwrap(),
    ]);
    config.max_reply_tokens = Some(1000);
    let service = service_with_events(
        Arc::clone(&repo) as Arc<dyn ChatRepository>,
        Arc::new(llm),
        Arc::new(InProcessEventLog::new(LogLimits::default())),
        Arc::default(),
        config,
    );
    Gateway {
        service,
        requests,
        owner: Principal::parse("alice").unwrap(),
    }
}

fn answers(texts: &[&str]) -> Vec<ChatStream> {
    texts.iter().map(|text| text_stream(&[text])).collect()
}

fn said(role: Role, content: &str) -> CompletionMessage {
    CompletionMessage {
        role,
        content: content.to_owned(),
        tool_calls: Vec::new(),
    }
}

fn request(messages: Vec<CompletionMessage>) -> CompletionRequest {
    CompletionRequest {
        session: None,
        system_prompt: None,
        messages,
        model: None,
        tools: Vec::new(),
        temperature: None,
        max_tokens: None,
    }
}

async fn reply_of(started: &mut CompletionStarted) -> Message {
    let reply = started.outcome.assistant_message().id;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), started.outcome.events.next())
            .await
            .expect("the reply ends in time")
            .expect("the reply's final event");
        if let Some(message) = event.kind.finished_message() {
            if message.id == reply {
                return message.clone();
            }
        }
    }
}

impl Gateway {
    /// Sends `request`, waits for its reply; the session, how it was
    /// recorded, and the reply's text.
    async fn complete(&self, request: CompletionRequest) -> (SessionId, Recorded, Message) {
        let mut started = self.service.complete(&self.owner, request).await.unwrap();
        let reply = reply_of(&mut started).await;
        (started.session_id, started.recorded, reply)
    }

    async fn branch(&self, session: SessionId) -> Vec<(Role, String)> {
        self.service
            .history(&self.owner, session, None, 100, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|listed| (listed.message.role, listed.message.content))
            .collect()
    }
}

#[tokio::test]
async fn a_stateless_client_resending_its_history_grows_one_session() {
    let gateway = gateway(answers(&["Hello!", "Fine.", "Bye."]));
    let mut history = vec![said(Role::User, "Hi")];
    let (first, recorded, reply) = gateway.complete(request(history.clone())).await;
    assert_eq!(recorded, Recorded::Started);
    for question in ["How are you?", "Goodbye"] {
        history.push(said(Role::Assistant, &reply_text(&gateway, first).await));
        history.push(said(Role::User, question));
        let (session, recorded, _) = gateway.complete(request(history.clone())).await;
        assert_eq!((session, recorded), (first, Recorded::Continued));
    }
    assert_eq!(reply.content, "Hello!");
    assert_eq!(
        gateway.branch(first).await,
        vec![
            (Role::User, "Hi".to_owned()),
            (Role::Assistant, "Hello!".to_owned()),
            (Role::User, "How are you?".to_owned()),
            (Role::Assistant, "Fine.".to_owned()),
            (Role::User, "Goodbye".to_owned()),
            (Role::Assistant, "Bye.".to_owned()),
        ]
    );
    let sessions = gateway
        .service
        .list_sessions(&gateway.owner, 10, None)
        .await
        .unwrap();
    assert_eq!(sessions.items.len(), 1);
    // Each request upstream is the conversation, and no system prompt was
    // added to a client's that had none.
    let requests = gateway.requests.lock().unwrap().clone();
    assert_eq!(requests[2].messages.len(), 5);
    assert_eq!(requests[2].messages[0].role, PromptRole::User);
}

async fn reply_text(gateway: &Gateway, session: SessionId) -> String {
    gateway.branch(session).await.last().unwrap().1.clone()
}

#[tokio::test]
async fn resending_an_earlier_point_with_another_question_is_a_branch() {
    let gateway = gateway(answers(&["A1", "A2", "B2"]));
    let (session, _, _) = gateway
        .complete(request(vec![said(Role::User, "Q1")]))
        .await;
    let base = vec![said(Role::User, "Q1"), said(Role::Assistant, "A1")];
    let mut second = base.clone();
    second.push(said(Role::User, "Q2"));
    gateway.complete(request(second)).await;

    let mut other = base;
    other.push(said(Role::User, "Q2 asked otherwise"));
    let (branched, recorded, reply) = gateway.complete(request(other)).await;
    assert_eq!((branched, recorded), (session, Recorded::Branched));
    assert_eq!(reply.content, "B2");
    assert_eq!(
        gateway.branch(session).await,
        vec![
            (Role::User, "Q1".to_owned()),
            (Role::Assistant, "A1".to_owned()),
            (Role::User, "Q2 asked otherwise".to_owned()),
            (Role::Assistant, "B2".to_owned()),
        ]
    );
}

#[tokio::test]
async fn a_conversation_never_recorded_or_with_another_system_prompt_starts_a_session() {
    let gateway = gateway(answers(&["A1", "x", "y"]));
    let (session, _, _) = gateway
        .complete(request(vec![said(Role::User, "Q1")]))
        .await;
    let repeated = vec![
        said(Role::User, "Q1"),
        said(Role::Assistant, "A1"),
        said(Role::User, "Q2"),
    ];
    let mut with_system = request(repeated.clone());
    with_system.system_prompt = Some("Be terse.".to_owned());
    let (other, recorded, _) = gateway.complete(with_system).await;
    assert_ne!(other, session);
    assert_eq!(recorded, Recorded::Started);
    // The new session holds the request's earlier messages, and its system prompt.
    assert_eq!(gateway.branch(other).await.len(), 4);
    let stored = gateway
        .service
        .get_session(&gateway.owner, other)
        .await
        .unwrap();
    assert_eq!(stored.system_prompt.unwrap().as_str(), "Be terse.");
    // The request's system message is what the model is sent.
    let requests = gateway.requests.lock().unwrap().clone();
    assert_eq!(requests[1].messages[0].role, PromptRole::System);
    assert_eq!(requests[1].messages[0].content, "Be terse.");

    let mut altered = repeated;
    altered[1].content = "A1, misremembered".to_owned();
    let (third, recorded, _) = gateway.complete(request(altered)).await;
    assert!(third != session && third != other);
    assert_eq!(recorded, Recorded::Started);
}

#[tokio::test]
async fn another_callers_conversation_is_never_continued() {
    let gateway = gateway(answers(&["A1", "A2"]));
    let (session, _, _) = gateway
        .complete(request(vec![said(Role::User, "Q1")]))
        .await;
    let bob = Principal::parse("bob").unwrap();
    let mut started = gateway
        .service
        .complete(
            &bob,
            request(vec![
                said(Role::User, "Q1"),
                said(Role::Assistant, "A1"),
                said(Role::User, "Q2"),
            ]),
        )
        .await
        .unwrap();
    reply_of(&mut started).await;
    assert_ne!(started.session_id, session);
    assert_eq!(started.recorded, Recorded::Started);
    assert_eq!(gateway.branch(session).await.len(), 2);
}

#[tokio::test]
async fn a_named_session_is_continued_with_its_own_history() {
    let gateway = gateway(answers(&["It is 4."]));
    let session = gateway
        .service
        .create_session(&gateway.owner, NewSession::default())
        .await
        .unwrap();
    let mut named = request(vec![said(Role::User, "2+2?")]);
    named.session = Some(session.id);
    named.model = Some("other-model".to_owned());
    named.temperature = Some(0.2);
    named.max_tokens = Some(5000);
    let (id, recorded, reply) = gateway.complete(named).await;
    assert_eq!((id, recorded), (session.id, Recorded::Continued));
    assert_eq!(reply.model.as_deref(), Some("other-model"));
    let requests = gateway.requests.lock().unwrap().clone();
    assert_eq!(requests[0].model, "other-model");
    assert_eq!(requests[0].temperature, Some(0.2));
    // Capped at the service's own limit.
    assert_eq!(requests[0].max_tokens, Some(1000));

    let mut elsewhere = request(vec![said(Role::User, "hi")]);
    elsewhere.session = Some(SessionId::new());
    let refused = gateway.service.complete(&gateway.owner, elsewhere).await;
    assert!(matches!(refused, Err(ChatError::SessionNotFound)));
}

#[tokio::test]
async fn what_cannot_be_answered_is_refused_before_anything_is_stored() {
    let gateway = gateway(Vec::new());
    let cases = [
        request(Vec::new()),
        request(vec![
            said(Role::User, "Q"),
            said(Role::Assistant, "prefilled"),
        ]),
        request(vec![said(Role::User, "   ")]),
        CompletionRequest {
            model: Some("not-offered".to_owned()),
            ..request(vec![said(Role::User, "Q")])
        },
    ];
    for case in cases {
        let refused = gateway.service.complete(&gateway.owner, case).await;
        assert!(
            matches!(
                refused,
                Err(ChatError::BadConversation(_)
                    | ChatError::Invalid(_)
                    | ChatError::ModelNotAllowed(_))
            ),
            "{refused:?}"
        );
    }
    let sessions = gateway
        .service
        .list_sessions(&gateway.owner, 10, None)
        .await
        .unwrap();
    assert!(sessions.items.is_empty());
}

#[tokio::test]
async fn the_clients_tools_are_returned_to_it_and_their_results_carried_on_from() {
    let gateway = gateway(vec![
        tool_call_stream(&[("call_1", "weather", r#"{"city":"Paris"}"#)]),
        text_stream(&["Sunny in Paris."]),
    ]);
    let weather = ToolSpec {
        name: "weather".to_owned(),
        description: "The weather in a city".to_owned(),
        parameters: r#"{"type":"object","properties":{"city":{"type":"string"}}}"#.to_owned(),
    };
    let mut asking = request(vec![said(Role::User, "Weather in Paris?")]);
    asking.tools = vec![weather.clone()];
    let (session, _, called) = gateway.complete(asking).await;
    assert_eq!(called.status, MessageStatus::Complete);
    assert_eq!(called.finish_reason.as_deref(), Some("tool_calls"));
    assert_eq!(called.tool_calls.len(), 1);
    assert_eq!(
        called.tool_calls[0].result, None,
        "colloquy does not run it"
    );

    let mut answered = request(vec![
        said(Role::User, "Weather in Paris?"),
        CompletionMessage {
            role: Role::Assistant,
            content: String::new(),
            tool_calls: vec![ToolCall {
                result: Some("sunny".to_owned()),
                ..called.tool_calls[0].clone()
            }],
        },
    ]);
    answered.tools = vec![weather];
    let (same, recorded, reply) = gateway.complete(answered).await;
    assert_eq!((same, recorded), (session, Recorded::Continued));
    assert_eq!(reply.content, "Sunny in Paris.");
    assert_eq!(reply.parent_id, Some(called.id));

    let requests = gateway.requests.lock().unwrap().clone();
    assert_eq!(requests[0].tools.len(), 1);
    let followed: Vec<_> = requests[1]
        .messages
        .iter()
        .map(|m| (m.role, m.tool_call_id.clone(), m.tool_calls.len()))
        .collect();
    assert_eq!(
        followed,
        vec![
            (PromptRole::User, None, 0),
            (PromptRole::Assistant, None, 1),
            (PromptRole::Tool, Some("call_1".to_owned()), 0),
        ]
    );
    assert_eq!(requests[1].messages[2].content, "sunny");
}

#[tokio::test]
async fn a_conversation_being_answered_is_recorded_apart_rather_than_refused() {
    let (llm, _requests) = scripted(vec![
        text_stream(&["A1"]),
        crate::support::endless_stream(&["…"]),
        text_stream(&["second"]),
    ]);
    let repo = Arc::new(FakeRepo::default());
    // The reply that never ends must not time out and ask again meanwhile.
    let mut patient = config();
    patient.llm.idle_timeout = Duration::from_secs(60);
    let service = service_with_events(
        Arc::clone(&repo) as Arc<dyn ChatRepository>,
        Arc::new(llm),
        Arc::new(InProcessEventLog::new(LogLimits::default())),
        Arc::default(),
        patient,
    );
    let owner = Principal::parse("alice").unwrap();
    let mut first = service
        .complete(&owner, request(vec![said(Role::User, "Q1")]))
        .await
        .unwrap();
    reply_of(&mut first).await;
    let follow_up = vec![
        said(Role::User, "Q1"),
        said(Role::Assistant, "A1"),
        said(Role::User, "Q2"),
    ];
    let mut running = service
        .complete(&owner, request(follow_up.clone()))
        .await
        .unwrap();
    assert_eq!(running.session_id, first.session_id);
    // Its first token first: the upstream's answers are handed out in the
    // order requests reach it, and this one must get the endless stream.
    let streaming = running.outcome.assistant_message().id;
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), running.outcome.events.next())
            .await
            .expect("the running reply streams")
            .expect("its events go on");
        if matches!(event.kind, EventKind::MessageDelta { message_id, .. } if message_id == streaming)
        {
            break;
        }
    }
    let mut apart = service.complete(&owner, request(follow_up)).await.unwrap();
    assert_ne!(apart.session_id, first.session_id);
    assert_eq!(apart.recorded, Recorded::Started);
    assert_eq!(reply_of(&mut apart).await.content, "second");
    service
        .cancel_reply(&owner, running.session_id)
        .await
        .unwrap();
}
