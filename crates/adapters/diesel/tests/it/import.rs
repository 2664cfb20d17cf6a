//! Importing a whole session in one transaction, on both backends: the
//! tree comes back as it went in, an export imported again gives the same
//! tree, and an import that fails anywhere stores nothing.

use std::collections::HashMap;

use colloquy_domain::{Message, MessageId, Session, SessionId, Speaker, Timestamp};
use colloquy_ports::RepoError;

use crate::support::{
    alice, all_messages, bob, finished_reply, new_session, on_both_backends, reply_to,
    stored_session, streaming_reply, user_message, Backend, Store, TestDb,
};

/// A session of alice's from long ago, not stored, and its tree: a
/// question with two replies, the second continued by a question and a
/// reply by a named assistant, which is the head.
fn exported() -> (Session, Vec<Message>) {
    let mut session = new_session();
    session.created_at = Timestamp::from_micros(1_000_000);
    session.updated_at = Timestamp::from_micros(2_000_000);
    let question = user_message(session.id, "What should I pack for Oslo?");
    let first = reply_to(&question, finished_reply(session.id));
    let mut second = reply_to(&question, streaming_reply(session.id));
    second.content = "A warm coat and good boots.".to_owned();
    second.finish(colloquy_domain::MessageStatus::Complete, None);
    let follow_up = reply_to(&second, user_message(session.id, "And in summer?"));
    let answer = Message {
        speaker: Some(Speaker {
            id: colloquy_domain::AssistantId::new(),
            name: "Guide".to_owned(),
        }),
        ..reply_to(&follow_up, finished_reply(session.id))
    };
    session.head_message_id = Some(answer.id);
    (session, vec![question, first, second, follow_up, answer])
}

/// The session and every message of it, as an export reads them.
async fn export(repo: &dyn Store, session: SessionId) -> (Session, Vec<Message>) {
    (
        repo.get_session(&alice(), session).await.unwrap(),
        all_messages(repo, session, 2).await,
    )
}

/// `messages` under new ids in a new session, parents before children, as
/// an import of an export makes them.
fn with_new_ids(session: &Session, messages: &[Message]) -> (Session, Vec<Message>) {
    let new_session = Session {
        id: SessionId::new(),
        ..session.clone()
    };
    let ids: HashMap<MessageId, MessageId> = messages
        .iter()
        .map(|message| (message.id, MessageId::new()))
        .collect();
    let copies = messages
        .iter()
        .map(|message| Message {
            id: ids[&message.id],
            session_id: new_session.id,
            parent_id: message.parent_id.map(|parent| ids[&parent]),
            ..message.clone()
        })
        .collect();
    let new_session = Session {
        head_message_id: session.head_message_id.map(|head| ids[&head]),
        ..new_session
    };
    (new_session, copies)
}

/// What a tree is, whatever its ids: each message's role, text, author and
/// times, and the place of its parent among the messages.
fn shape(messages: &[Message]) -> Vec<(Option<usize>, String, String, Option<String>)> {
    let place: HashMap<MessageId, usize> = messages
        .iter()
        .enumerate()
        .map(|(index, message)| (message.id, index))
        .collect();
    messages
        .iter()
        .map(|message| {
            (
                message.parent_id.map(|parent| place[&parent]),
                message.role.as_str().to_owned(),
                message.content.clone(),
                message.speaker.as_ref().map(|speaker| speaker.name.clone()),
            )
        })
        .collect()
}

async fn an_imported_session_reads_back_with_its_tree(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (session, messages) = exported();
    db.repo.import_session(&session, &messages).await.unwrap();

    let stored = db.repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(
        stored,
        Session {
            message_count: 4,
            ..session.clone()
        },
        "its times and head as given, the count of the head's branch"
    );
    assert_eq!(all_messages(&*db.repo, session.id, 2).await, messages);
    let active = db
        .repo
        .list_branch(&alice(), session.id, None, 10, None)
        .await
        .unwrap();
    let active: Vec<MessageId> = active.items.iter().map(|item| item.message.id).collect();
    assert_eq!(
        active,
        [
            messages[0].id,
            messages[2].id,
            messages[3].id,
            messages[4].id
        ]
    );
    let found = db
        .repo
        .search_messages(&alice(), &["Oslo".to_owned()], 10, None)
        .await
        .unwrap();
    assert_eq!(found.items[0].message_id, messages[0].id, "indexed too");
    assert!(matches!(
        db.repo.get_session(&bob(), session.id).await,
        Err(RepoError::NotFound)
    ));

    // Appending carries on from the imported head.
    let next = reply_to(&messages[4], user_message(session.id, "Thanks!"));
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&next))
        .await
        .unwrap();
    assert_eq!(
        db.repo
            .get_session(&alice(), session.id)
            .await
            .unwrap()
            .message_count,
        5
    );
}

/// Export, import under new ids, export again: the same tree.
async fn an_export_imported_again_is_the_same_tree(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (session, messages) = exported();
    db.repo.import_session(&session, &messages).await.unwrap();
    let (first_session, first_messages) = export(&*db.repo, session.id).await;

    let (copy, copies) = with_new_ids(&first_session, &first_messages);
    db.repo.import_session(&copy, &copies).await.unwrap();
    let (second_session, second_messages) = export(&*db.repo, copy.id).await;

    assert_eq!(shape(&second_messages), shape(&first_messages));
    assert_eq!(second_messages, copies);
    assert_eq!(second_session.message_count, first_session.message_count);
    let head_place = |session: &Session, messages: &[Message]| {
        messages
            .iter()
            .position(|message| Some(message.id) == session.head_message_id)
    };
    assert_eq!(
        head_place(&second_session, &second_messages),
        head_place(&first_session, &first_messages)
    );
}

/// Without a head, the last message is the head, as after an append; with
/// no messages, the session is empty.
async fn an_import_without_a_head_ends_at_its_last_message(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (session, messages) = exported();
    let headless = Session {
        head_message_id: None,
        ..session
    };
    db.repo.import_session(&headless, &messages).await.unwrap();
    let stored = db.repo.get_session(&alice(), headless.id).await.unwrap();
    assert_eq!(stored.head_message_id, Some(messages[4].id));
    assert_eq!(stored.message_count, 4);

    let empty = Session {
        head_message_id: None,
        message_count: 9,
        ..new_session()
    };
    db.repo.import_session(&empty, &[]).await.unwrap();
    let stored = db.repo.get_session(&alice(), empty.id).await.unwrap();
    assert_eq!((stored.head_message_id, stored.message_count), (None, 0));
}

/// Whatever makes an import fail, before or after some of its rows were
/// written, nothing of it is stored.
async fn a_failing_import_stores_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let existing = stored_session(&*db.repo).await;
    let taken = user_message(existing.id, "already stored");
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&taken))
        .await
        .unwrap();

    let (session, messages) = exported();
    let mut broken: Vec<(&str, Session, Vec<Message>)> = Vec::new();
    let mut orphan = messages.clone();
    orphan[3].parent_id = Some(MessageId::new());
    broken.push(("a parent outside the import", session.clone(), orphan));
    let mut late = messages.clone();
    late.swap(3, 4);
    broken.push(("a child before its parent", session.clone(), late));
    let mut stray = messages.clone();
    stray[2].session_id = existing.id;
    broken.push(("a message of another session", session.clone(), stray));
    let headless = Session {
        head_message_id: Some(MessageId::new()),
        ..session.clone()
    };
    broken.push(("a head that is none of them", headless, messages.clone()));
    // A long import whose 600th message repeats a stored id: the database
    // refuses it after the session and hundreds of rows were written.
    let mut long = vec![user_message(session.id, "first of many")];
    for n in 1..700 {
        let previous = long.last().unwrap();
        long.push(reply_to(
            previous,
            user_message(session.id, &format!("many {n}")),
        ));
    }
    long[600].id = taken.id;
    long[601].parent_id = Some(taken.id);
    broken.push(("an id already taken", session.clone(), long));
    let reused = Session {
        id: existing.id,
        ..session.clone()
    };
    let reused_messages: Vec<Message> = messages
        .iter()
        .map(|message| Message {
            session_id: existing.id,
            ..message.clone()
        })
        .collect();
    broken.push(("a session id already taken", reused, reused_messages));

    for (what, session, messages) in broken {
        let error = db
            .repo
            .import_session(&session, &messages)
            .await
            .unwrap_err();
        assert!(matches!(error, RepoError::Unknown(_)), "{what}: {error:?}");
        if session.id != existing.id {
            assert!(
                matches!(
                    db.repo.get_session(&alice(), session.id).await,
                    Err(RepoError::NotFound)
                ),
                "{what}: the session was stored"
            );
        }
    }
    assert_eq!(
        db.repo
            .list_sessions(&alice(), 10, None)
            .await
            .unwrap()
            .items,
        [db.repo.get_session(&alice(), existing.id).await.unwrap()]
    );
    assert_eq!(all_messages(&*db.repo, existing.id, 10).await, [taken]);
    assert_eq!(
        db.integer(
            "SELECT count(*) AS value FROM messages WHERE content <> $1",
            ""
        )
        .await,
        1,
        "no message of any failed import is left"
    );
    let found = db
        .repo
        .search_messages(&alice(), &["Oslo".to_owned()], 10, None)
        .await
        .unwrap();
    assert!(found.items.is_empty());
}

on_both_backends! {
    an_imported_session_reads_back_with_its_tree,
    an_export_imported_again_is_the_same_tree,
    an_import_without_a_head_ends_at_its_last_message,
    a_failing_import_stores_nothing,
}
