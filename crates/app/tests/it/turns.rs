//! Turns answered by several assistants: one reply each, in order, each
//! built with its own instructions, model and tools and hearing the others
//! by name; a cancel stops the rest of the turn; every reply of a turn ends,
//! whatever happens; and the assistants' own use cases.

use std::sync::Arc;
use std::time::Duration;

use colloquy_app::{
    AssistantPatch, ChatConfig, ChatError, ChatService, EventKind, ModelAllowlist, NewAssistant,
    NewSession, ReplyEvents, SessionPatch, ToolRegistry,
};
use colloquy_domain::{
    Assistant, AssistantId, Message, MessageStatus, ModelName, Principal, Role, Session,
};
use colloquy_inprocess::{InProcessEventLog, LogLimits};
use colloquy_ports::{
    AssistantStore, ChatStream, LlmError, MockChatRepository, MockLlmClient, PromptRole,
};
use futures::StreamExt;

use crate::support::{
    config, endless_stream, repo_with, scripted, service_with_assistants, session, text_stream,
    MemoryAssistants, Requests, Writes,
};

/// A config that lets assistants name any model, and offers the built-in tools.
fn open_config() -> ChatConfig {
    let mut config = config();
    config.models = ModelAllowlist::Any;
    config.tools = ToolRegistry::builtin(&["current_time", "calculator"]).unwrap();
    config
}

struct World {
    service: ChatService,
    session: Session,
    writes: Writes,
}

fn world(repo: MockChatRepository, writes: Writes, llm: MockLlmClient, session: Session) -> World {
    world_with(repo, writes, llm, session, open_config())
}

fn world_with(
    repo: MockChatRepository,
    writes: Writes,
    llm: MockLlmClient,
    session: Session,
    config: ChatConfig,
) -> World {
    let service = service_with_assistants(
        Arc::new(repo),
        Arc::new(llm),
        Arc::new(InProcessEventLog::new(LogLimits::default())),
        Arc::new(MemoryAssistants::default()),
        Arc::default(),
        config,
    );
    World {
        service,
        session,
        writes,
    }
}

async fn assistant(service: &ChatService, owner: &Principal, name: &str, model: &str) -> Assistant {
    service
        .create_assistant(
            owner,
            NewAssistant {
                name: name.to_owned(),
                instructions: Some(format!("You are {name}.")),
                model: Some(model.to_owned()),
                tools: None,
            },
        )
        .await
        .unwrap()
}

/// Every event of a turn, to the end of its stream.
async fn whole_turn(events: &mut ReplyEvents) -> Vec<EventKind> {
    let mut seen = Vec::new();
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), events.next())
            .await
            .expect("the turn ends in time");
        match next {
            Some(event) => seen.push(event.kind.clone()),
            None => return seen,
        }
    }
}

fn finals(events: &[EventKind]) -> Vec<Message> {
    events
        .iter()
        .filter_map(EventKind::finished_message)
        .cloned()
        .collect()
}

fn created(events: &[EventKind]) -> Vec<Message> {
    events
        .iter()
        .filter_map(|event| match event {
            EventKind::MessageCreated(message) => Some(message.clone()),
            _ => None,
        })
        .collect()
}

/// A Poet and a Critic (of `models`), a model that answers `answers` in
/// order, and `content` sent to both.
async fn turn_of_two(
    answers: Vec<ChatStream>,
    models: [&str; 2],
    content: &str,
) -> (World, Requests, [Assistant; 2], colloquy_app::SendOutcome) {
    let session = session();
    let (repo, writes) = repo_with(&session);
    let (llm, requests) = scripted(answers);
    let world = world(repo, writes, llm, session);
    let owner = &world.session.owner;
    let poet = assistant(&world.service, owner, "Poet", models[0]).await;
    let critic = assistant(&world.service, owner, "Critic", models[1]).await;
    let sent = world
        .service
        .send_message_to(
            owner,
            world.session.id,
            content.into(),
            Some(vec![poet.id, critic.id]),
        )
        .await
        .unwrap();
    (world, requests, [poet, critic], sent)
}

#[tokio::test]
async fn two_assistants_answer_in_order_and_the_second_hears_the_first_by_name() {
    let (world, requests, _, mut sent) = turn_of_two(
        vec![
            text_stream(&["Roses ", "are red"]),
            text_stream(&["Derivative."]),
        ],
        ["poet-model", "critic-model"],
        "write me a line",
    )
    .await;
    assert_eq!(sent.assistant_messages.len(), 2);
    let events = whole_turn(&mut sent.events).await;

    // The whole turn is announced first, then each reply in order.
    let announced = created(&events);
    assert_eq!(announced.len(), 3);
    assert_eq!(announced[0].role, Role::User);
    let speakers: Vec<Option<&str>> = announced[1..]
        .iter()
        .map(|m| m.speaker.as_ref().map(|s| s.name.as_str()))
        .collect();
    assert_eq!(speakers, [Some("Poet"), Some("Critic")]);
    assert_eq!(announced[1].model.as_deref(), Some("poet-model"));
    assert_eq!(announced[2].model.as_deref(), Some("critic-model"));
    let ended = finals(&events);
    assert_eq!(ended.len(), 2, "one final event per reply");
    assert_eq!(
        (ended[0].content.as_str(), ended[1].content.as_str()),
        ("Roses are red", "Derivative.")
    );
    assert!(ended.iter().all(|m| m.status == MessageStatus::Complete));
    let poet_done = events
        .iter()
        .position(|e| e.finished_message().is_some())
        .unwrap();
    let critic_first_delta = events
        .iter()
        .position(|e| matches!(e, EventKind::MessageDelta { message_id, .. } if *message_id == ended[1].id))
        .unwrap();
    assert!(
        poet_done < critic_first_delta,
        "the critic speaks after the poet ended"
    );

    let requests = requests.lock().unwrap();
    assert_eq!(requests[0].model, "poet-model");
    assert_eq!(requests[0].messages[0].content, "You are Poet.");
    assert_eq!(requests[0].messages.len(), 2);
    let second = &requests[1];
    assert_eq!(second.model, "critic-model");
    let seen: Vec<(PromptRole, Option<&str>, &str)> = second
        .messages
        .iter()
        .map(|m| (m.role, m.name.as_deref(), m.content.as_str()))
        .collect();
    assert_eq!(
        seen,
        [
            (PromptRole::System, None, "You are Critic."),
            (PromptRole::User, None, "write me a line"),
            (PromptRole::User, Some("Poet"), "Poet: Roses are red"),
        ]
    );
    // Stored: the turn in one write, then each reply's progress and end.
    let writes = world.writes.lock().unwrap();
    let last_of = |id| writes.iter().rev().find(|m| m.id == id).unwrap().clone();
    assert_eq!(last_of(ended[0].id), ended[0]);
    assert_eq!(last_of(ended[1].id), ended[1]);
}

#[tokio::test]
async fn a_cancel_stops_the_rest_of_the_turn() {
    // One scripted answer: asking for the second would fail the test.
    let (world, _, [_, critic], mut sent) =
        turn_of_two(vec![endless_stream(&["Ro"])], ["m", "m"], "go").await;
    let owner = &world.session.owner;
    let mut events = Vec::new();
    while let Some(event) = sent.events.next().await {
        let delta = matches!(event.kind, EventKind::MessageDelta { .. });
        events.push(event.kind.clone());
        if delta {
            break;
        }
    }
    assert!(world
        .service
        .cancel_reply(owner, world.session.id)
        .await
        .unwrap());
    events.extend(whole_turn(&mut sent.events).await);

    let ended = finals(&events);
    assert_eq!(ended.len(), 2);
    assert_eq!(ended[0].status, MessageStatus::Cancelled);
    assert_eq!(ended[0].content, "Ro");
    assert_eq!(ended[1].status, MessageStatus::Cancelled);
    assert_eq!(ended[1].content, "");
    assert_eq!(ended[1].speaker.as_ref().unwrap().id, critic.id);
    // The slot is free once the turn ended.
    assert!(!world
        .service
        .cancel_reply(owner, world.session.id)
        .await
        .unwrap());
}

#[tokio::test]
async fn a_failed_reply_does_not_silence_the_next_assistant() {
    let rejected: ChatStream = futures::stream::iter(vec![Err(LlmError::Rejected {
        status: 404,
        message: "no such model".into(),
    })])
    .boxed();
    let (_world, requests, _, mut sent) = turn_of_two(
        vec![rejected, text_stream(&["Still here."])],
        ["gone-model", "m"],
        "go",
    )
    .await;
    let ended = finals(&whole_turn(&mut sent.events).await);

    assert_eq!(ended[0].status, MessageStatus::Failed);
    assert_eq!(ended[1].status, MessageStatus::Complete);
    // A reply with no words is not put before the next voice.
    assert_eq!(requests.lock().unwrap()[1].messages.len(), 2);
}

#[tokio::test]
async fn a_turn_whose_task_dies_ends_every_reply_failed() {
    let panicking: ChatStream = futures::stream::once(async {
        panic!("the model client broke");
    })
    .boxed();
    let (world, _, _, mut sent) = turn_of_two(vec![panicking], ["m", "m"], "go").await;
    let ended = finals(&whole_turn(&mut sent.events).await);

    assert_eq!(ended.len(), 2);
    assert!(ended.iter().all(|m| m.status == MessageStatus::Failed));
    let writes = world.writes.lock().unwrap();
    for reply in &ended {
        let stored = writes.iter().rev().find(|m| m.id == reply.id).unwrap();
        assert_eq!(stored.status, MessageStatus::Failed, "stored as announced");
    }
}

#[tokio::test]
async fn a_discussion_adds_replies_without_a_user_message() {
    let session = session();
    let (repo, writes) = repo_with(&session);
    let (llm, requests) = scripted(vec![text_stream(&["I disagree."])]);
    let world = world(repo, writes, llm, session);
    let owner = &world.session.owner;
    let critic = assistant(&world.service, owner, "Critic", "m").await;
    let mut sent = world
        .service
        .start_replies(owner, world.session.id, vec![critic.id])
        .await
        .unwrap();
    assert!(sent.user_message.is_none());
    let events = whole_turn(&mut sent.events).await;

    let announced = created(&events);
    assert_eq!(announced.len(), 1);
    assert_eq!(announced[0].role, Role::Assistant);
    assert_eq!(finals(&events)[0].content, "I disagree.");
    let requests = requests.lock().unwrap();
    assert_eq!(requests[0].messages.len(), 1, "the system prompt alone");
    let appended = world.writes.lock().unwrap();
    assert!(appended.iter().all(|m| m.role == Role::Assistant));
}

#[tokio::test]
async fn a_turn_names_one_to_eight_assistants_all_of_them_the_callers() {
    // No expectations: nothing may be stored or asked.
    let world = world(
        MockChatRepository::new(),
        Writes::default(),
        MockLlmClient::new(),
        session(),
    );
    let (service, owner, id) = (&world.service, &world.session.owner, world.session.id);
    let mine = assistant(service, owner, "Mine", "m").await;
    let someone_else = Principal::parse("mallory").unwrap();
    let theirs = assistant(service, &someone_else, "Theirs", "m").await;

    let empty = service.start_replies(owner, id, Vec::new()).await;
    assert!(matches!(empty, Err(ChatError::BadAssistants(_))));
    let nine = service
        .send_message_to(owner, id, "hi".into(), Some(vec![mine.id; 9]))
        .await;
    assert!(matches!(nine, Err(ChatError::BadAssistants(_))));
    let foreign = service
        .send_message_to(owner, id, "hi".into(), Some(vec![mine.id, theirs.id]))
        .await;
    assert!(matches!(foreign, Err(ChatError::AssistantNotFound)));
    let unknown = service
        .start_replies(owner, id, vec![AssistantId::new()])
        .await;
    assert!(matches!(unknown, Err(ChatError::AssistantNotFound)));
}

/// A service whose store knows `session`, with `assistants` stored.
async fn with_assistants(
    session: &Session,
    assistants: &[&Assistant],
    llm: MockLlmClient,
) -> (ChatService, Writes) {
    let (repo, writes) = repo_with(session);
    let store = Arc::new(MemoryAssistants::default());
    for assistant in assistants {
        store.create_assistant(assistant).await.unwrap();
    }
    let service = service_with_assistants(
        Arc::new(repo),
        Arc::new(llm),
        Arc::new(InProcessEventLog::new(LogLimits::default())),
        store,
        Arc::default(),
        open_config(),
    );
    (service, writes)
}

fn pirate(owner: &Principal) -> Assistant {
    Assistant::new(
        owner.clone(),
        colloquy_domain::AssistantName::parse("Pirate").unwrap(),
        Some(colloquy_domain::Instructions::parse("You are Pirate.").unwrap()),
        ModelName::parse("pirate-model").unwrap(),
        vec!["calculator".to_owned()],
    )
}

#[tokio::test]
async fn the_sessions_default_assistant_answers_a_plain_send_with_its_tools() {
    let mut session = session();
    let pirate = pirate(&session.owner);
    session.assistant_id = Some(pirate.id);
    let (llm, requests) = scripted(vec![text_stream(&["Aye."])]);
    let (service, writes) = with_assistants(&session, &[&pirate], llm).await;
    let mut sent = service
        .send_message(&session.owner, session.id, "ahoy".into())
        .await
        .unwrap();
    let ended = finals(&whole_turn(&mut sent.events).await);

    assert_eq!(ended[0].speaker, Some(pirate.speaker()));
    let requests = requests.lock().unwrap();
    assert_eq!(requests[0].messages[0].content, "You are Pirate.");
    let tools: Vec<&str> = requests[0].tools.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(
        tools,
        ["calculator"],
        "the assistant's tools, not every configured one"
    );
    // The session's model wins (it was the assistant's when it was chosen).
    assert_eq!(requests[0].model, session.model.as_str());
    assert!(writes.lock().unwrap().iter().any(|m| m.speaker.is_some()));
}

#[tokio::test]
async fn a_sessions_system_prompt_wins_over_its_default_assistants_instructions() {
    let mut session = session();
    let pirate = pirate(&session.owner);
    session.assistant_id = Some(pirate.id);
    session.system_prompt = Some(colloquy_domain::SystemPrompt::parse("Speak plainly.").unwrap());
    let (llm, requests) = scripted(vec![text_stream(&["Fine."])]);
    let (service, _) = with_assistants(&session, &[&pirate], llm).await;
    let mut sent = service
        .send_message(&session.owner, session.id, "ahoy".into())
        .await
        .unwrap();
    whole_turn(&mut sent.events).await;
    assert_eq!(
        requests.lock().unwrap()[0].messages[0].content,
        "Speak plainly."
    );
}

#[tokio::test]
async fn a_deleted_default_assistant_leaves_the_default_voice() {
    let mut session = session();
    let pirate = pirate(&session.owner);
    session.assistant_id = Some(pirate.id);
    let (llm, requests) = scripted(vec![text_stream(&["Hello."])]);
    // The assistant is not in the store: deleted after the session was read.
    let (service, _) = with_assistants(&session, &[], llm).await;
    let mut sent = service
        .send_message(&session.owner, session.id, "hi".into())
        .await
        .unwrap();
    let ended = finals(&whole_turn(&mut sent.events).await);
    assert_eq!(ended[0].speaker, None);
    assert_eq!(ended[0].status, MessageStatus::Complete);
    assert_eq!(requests.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn assistants_are_validated_before_anything_is_stored() {
    let world = world(
        MockChatRepository::new(),
        Writes::default(),
        MockLlmClient::new(),
        session(),
    );
    let (service, owner) = (&world.service, &world.session.owner);
    let named = |name: &str| NewAssistant {
        name: name.to_owned(),
        ..NewAssistant::default()
    };
    assert!(matches!(
        service.create_assistant(owner, named("  ")).await,
        Err(ChatError::Invalid(_))
    ));
    assert!(matches!(
        service
            .create_assistant(owner, named(&"x".repeat(65)))
            .await,
        Err(ChatError::Invalid(_))
    ));
    let unknown_tool = NewAssistant {
        tools: Some(vec!["shell".to_owned()]),
        ..named("Hacker")
    };
    let refused = service.create_assistant(owner, unknown_tool).await;
    assert!(
        matches!(&refused, Err(ChatError::UnknownTool(detail)) if detail.contains("calculator")),
        "{refused:?}"
    );

    let created = service
        .create_assistant(owner, named("Poet"))
        .await
        .unwrap();
    assert_eq!(created.model.as_str(), "test-model", "the default model");
    assert!(created.tools.is_empty(), "no tools unless named");
    assert!(matches!(
        service.create_assistant(owner, named("Poet")).await,
        Err(ChatError::AssistantNameTaken(name)) if name == "Poet"
    ));
    // Names are unique per principal, not across them.
    let other = Principal::parse("bob").unwrap();
    service
        .create_assistant(&other, named("Poet"))
        .await
        .unwrap();
    assert!(matches!(
        service.get_assistant(&other, created.id).await,
        Err(ChatError::AssistantNotFound)
    ));

    let renamed = service
        .update_assistant(
            owner,
            created.id,
            AssistantPatch {
                name: Some("Bard".to_owned()),
                tools: Some(vec!["calculator".into(), "calculator".into()]),
                ..AssistantPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(renamed.name.as_str(), "Bard");
    assert_eq!(renamed.tools, ["calculator"], "repeats are dropped");
    service
        .create_assistant(owner, named("Poet"))
        .await
        .unwrap();
    assert!(matches!(
        service
            .update_assistant(
                owner,
                created.id,
                AssistantPatch {
                    name: Some("Poet".to_owned()),
                    ..AssistantPatch::default()
                },
            )
            .await,
        Err(ChatError::AssistantNameTaken(_))
    ));
    service.delete_assistant(owner, created.id).await.unwrap();
    assert!(matches!(
        service.delete_assistant(owner, created.id).await,
        Err(ChatError::AssistantNotFound)
    ));
}

#[tokio::test]
async fn a_model_outside_the_allowlist_is_refused_for_an_assistant() {
    let world = world_with(
        MockChatRepository::new(),
        Writes::default(),
        MockLlmClient::new(),
        session(),
        config(),
    );
    let refused = world
        .service
        .create_assistant(
            &world.session.owner,
            NewAssistant {
                name: "Poet".into(),
                model: Some("gpt-5".into()),
                ..NewAssistant::default()
            },
        )
        .await;
    assert!(matches!(refused, Err(ChatError::ModelNotAllowed(_))));
}

#[tokio::test]
async fn a_session_takes_its_default_assistants_model_unless_told_another() {
    let session = session();
    let mut repo = MockChatRepository::new();
    repo.expect_create_session().returning(|_| Ok(()));
    let stored = session.clone();
    repo.expect_update_session()
        .returning(move |_, _, changes, _| {
            let mut after = stored.clone();
            if let Some(model) = &changes.model {
                after.model = model.clone();
            }
            if let Some(assistant) = changes.assistant_id {
                after.assistant_id = assistant;
            }
            Ok(after)
        });
    let world = world(repo, Writes::default(), MockLlmClient::new(), session);
    let (service, owner) = (&world.service, &world.session.owner);
    let poet = assistant(service, owner, "Poet", "poet-model").await;

    let created = service
        .create_session(
            owner,
            NewSession {
                assistant_id: Some(poet.id),
                ..NewSession::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        (created.assistant_id, created.model.as_str()),
        (Some(poet.id), "poet-model")
    );
    let chosen = service
        .create_session(
            owner,
            NewSession {
                assistant_id: Some(poet.id),
                model: Some("other".into()),
                ..NewSession::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(chosen.model.as_str(), "other");
    let patched = service
        .update_session(
            owner,
            world.session.id,
            SessionPatch {
                assistant_id: Some(Some(poet.id)),
                ..SessionPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(patched.model.as_str(), "poet-model");
    assert!(matches!(
        service
            .update_session(
                owner,
                world.session.id,
                SessionPatch {
                    assistant_id: Some(Some(AssistantId::new())),
                    ..SessionPatch::default()
                },
            )
            .await,
        Err(ChatError::AssistantNotFound)
    ));
}
