//! Who wrote each message, and each session's default assistant: stored,
//! read back by every read, and what deleting an assistant leaves of them.

use colloquy_domain::{AssistantId, Message, Session, Speaker, Timestamp};
use colloquy_ports::SessionChanges;

use crate::support::{
    alice, all_messages, bob, chain, finished_reply, new_assistant, new_session, on_both_backends,
    stored_assistant, stored_session, streaming_reply, user_message, Backend, Store, TestDb,
};

/// A session of `owner`'s whose default voice is `assistant`, stored.
async fn session_answered_by(
    repo: &dyn Store,
    owner: colloquy_domain::Principal,
    assistant: Option<AssistantId>,
) -> Session {
    let mut session = Session {
        owner,
        ..new_session()
    };
    session.assistant_id = assistant;
    repo.create_session(&session).await.unwrap();
    session
}

fn reply_by(session: &Session, speaker: &Speaker) -> Message {
    Message {
        speaker: Some(speaker.clone()),
        ..finished_reply(session.id)
    }
}

async fn a_sessions_assistant_round_trips_through_every_read(backend: Backend) {
    let db = TestDb::new(backend).await;
    let assistant = stored_assistant(&*db.repo, "Critic").await;
    let session = session_answered_by(&*db.repo, alice(), Some(assistant.id)).await;

    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session
    );
    assert_eq!(
        db.repo
            .list_sessions(&alice(), 10, None)
            .await
            .unwrap()
            .items,
        std::slice::from_ref(&session)
    );

    let other = AssistantId::new();
    let at = Timestamp::from_micros(session.updated_at.as_micros() + 1);
    let switched = db
        .repo
        .update_session(
            &alice(),
            session.id,
            &SessionChanges {
                assistant_id: Some(Some(other)),
                ..SessionChanges::default()
            },
            at,
        )
        .await
        .unwrap();
    assert_eq!(switched.assistant_id, Some(other));
    assert_eq!(switched.title, session.title, "only what it changes");

    let retitled = db
        .repo
        .update_session(
            &alice(),
            session.id,
            &SessionChanges {
                title: Some(None),
                ..SessionChanges::default()
            },
            at,
        )
        .await
        .unwrap();
    assert_eq!(retitled.assistant_id, Some(other), "left alone by None");

    let cleared = db
        .repo
        .update_session(
            &alice(),
            session.id,
            &SessionChanges {
                assistant_id: Some(None),
                ..SessionChanges::default()
            },
            at,
        )
        .await
        .unwrap();
    assert_eq!(cleared.assistant_id, None, "Some(None) clears it");
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        cleared
    );
}

async fn who_wrote_a_message_round_trips_through_every_read(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let speaker = stored_assistant(&*db.repo, "Critic").await.speaker();
    let question = user_message(session.id, "Which is better?");
    let answer = reply_by(&session, &speaker);
    let default_voice = finished_reply(session.id);
    let mut streaming = streaming_reply(session.id);
    streaming.speaker = Some(speaker.clone());
    let written = chain(
        None,
        vec![
            question.clone(),
            answer.clone(),
            default_voice.clone(),
            streaming.clone(),
        ],
    );
    streaming.parent_id = written[3].parent_id;
    db.repo.append_messages(&alice(), &written).await.unwrap();

    assert_eq!(all_messages(&*db.repo, session.id, 2).await, written);
    assert_eq!(
        db.repo
            .recent_messages(&alice(), session.id, None, 3)
            .await
            .unwrap(),
        written[1..]
    );

    // Finishing a reply writes its text, not who wrote it: that stays.
    streaming.content = "On balance, neither.".to_owned();
    streaming.finish(colloquy_domain::MessageStatus::Complete, None);
    let mut without_speaker = streaming.clone();
    without_speaker.speaker = None;
    db.repo
        .update_message(&alice(), &without_speaker)
        .await
        .unwrap();
    assert_eq!(
        all_messages(&*db.repo, session.id, 10).await[3],
        streaming,
        "the speaker stored when it was appended"
    );
}

async fn deleting_an_assistant_resets_its_owners_sessions_and_keeps_its_messages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let critic = stored_assistant(&*db.repo, "Critic").await;
    let poet = stored_assistant(&*db.repo, "Poet").await;
    let by_critic = session_answered_by(&*db.repo, alice(), Some(critic.id)).await;
    let also_by_critic = session_answered_by(&*db.repo, alice(), Some(critic.id)).await;
    let by_poet = session_answered_by(&*db.repo, alice(), Some(poet.id)).await;
    // No use case lets another principal name alice's assistant; were it
    // stored anyway, alice's delete would not reach into bob's sessions.
    let bobs = session_answered_by(&*db.repo, bob(), Some(critic.id)).await;
    let written = [
        user_message(by_critic.id, "Judge this."),
        reply_by(&by_critic, &critic.speaker()),
        reply_by(&by_critic, &poet.speaker()),
    ];
    db.repo.append_messages(&alice(), &written).await.unwrap();
    let before = db.repo.get_session(&alice(), by_critic.id).await.unwrap();

    db.repo.delete_assistant(&alice(), critic.id).await.unwrap();

    for session in [&by_critic, &also_by_critic] {
        let read = db.repo.get_session(&alice(), session.id).await.unwrap();
        assert_eq!(read.assistant_id, None, "back to the default voice");
    }
    let after = db.repo.get_session(&alice(), by_critic.id).await.unwrap();
    assert_eq!(
        Session {
            assistant_id: None,
            ..before
        },
        after,
        "nothing else of the session changes"
    );
    assert_eq!(
        db.repo
            .get_session(&alice(), by_poet.id)
            .await
            .unwrap()
            .assistant_id,
        Some(poet.id)
    );
    assert_eq!(
        db.repo
            .get_session(&bob(), bobs.id)
            .await
            .unwrap()
            .assistant_id,
        Some(critic.id)
    );
    assert_eq!(
        all_messages(&*db.repo, by_critic.id, 10).await,
        written,
        "its messages keep its id and name"
    );
}

/// A renamed assistant's earlier messages keep the name they were written under.
async fn a_message_keeps_the_name_its_assistant_had(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let assistant = new_assistant(alice(), "Critic");
    db.repo.create_assistant(&assistant).await.unwrap();
    let answer = reply_by(&session, &assistant.speaker());
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&answer))
        .await
        .unwrap();
    db.repo
        .update_assistant(
            &alice(),
            assistant.id,
            &colloquy_ports::AssistantChanges {
                name: Some(colloquy_domain::AssistantName::parse("Reviewer").unwrap()),
                ..colloquy_ports::AssistantChanges::default()
            },
            Timestamp::now(),
        )
        .await
        .unwrap();
    let read = &all_messages(&*db.repo, session.id, 10).await[0];
    assert_eq!(
        read.speaker.as_ref().map(|speaker| speaker.name.as_str()),
        Some("Critic")
    );
}

on_both_backends! {
    a_sessions_assistant_round_trips_through_every_read,
    who_wrote_a_message_round_trips_through_every_read,
    deleting_an_assistant_resets_its_owners_sessions_and_keeps_its_messages,
    a_message_keeps_the_name_its_assistant_had,
}
