//! Reworking a conversation: regenerating and editing add branches beside
//! the old ones, which stay; the history, the context and the count follow
//! the active branch; switching branch; search terms; imports.

use std::time::Duration;

use colloquy_app::{ChatError, EventKind, ImportedConversation, ImportedMessage, SessionPatch};
use colloquy_domain::{Message, MessageId, MessageStatus, Principal, Role, Timestamp};
use colloquy_ports::PromptRole;

use crate::support::{conversation, ended_messages, Conversation, Requests};

impl Conversation {
    async fn history(&self, leaf: Option<MessageId>) -> Vec<(String, usize, usize)> {
        self.service
            .history(self.owner(), self.session.id, leaf, 100, None)
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|listed| {
                (
                    listed.message.content,
                    listed.siblings.index,
                    listed.siblings.ids.len(),
                )
            })
            .collect()
    }

    async fn count(&self) -> u64 {
        self.service
            .get_session(self.owner(), self.session.id)
            .await
            .unwrap()
            .message_count
    }
}

fn texts(requests: &Requests, index: usize) -> Vec<(PromptRole, String)> {
    requests.lock().unwrap()[index]
        .messages
        .iter()
        .skip(1)
        .map(|m| (m.role, m.content.clone()))
        .collect()
}

#[tokio::test]
async fn a_regenerated_reply_is_a_sibling_and_the_new_head() {
    let talk = conversation(&["four", "4", "IV"]).await;
    let (question, first) = talk.send("2+2?").await;
    assert_eq!(first.parent_id, Some(question.id));

    let mut again = talk
        .service
        .regenerate(talk.owner(), talk.session.id, first.id)
        .await
        .unwrap();
    assert!(again.user_message.is_none());
    let second = ended_messages(&mut again.events).await.pop().unwrap();
    assert_eq!(
        second.parent_id,
        Some(question.id),
        "beside the first reply"
    );
    assert_eq!(second.content, "4");
    // The question is asked again, without the reply it replaces.
    assert_eq!(
        texts(&talk.requests, 1),
        [(PromptRole::User, "2+2?".into())]
    );

    assert_eq!(
        talk.history(None).await,
        [("2+2?".into(), 0, 1), ("4".into(), 1, 2)]
    );
    // The old branch is still there.
    assert_eq!(
        talk.history(Some(first.id)).await,
        [("2+2?".into(), 0, 1), ("four".into(), 0, 2)]
    );
    assert_eq!(talk.count().await, 2, "the active branch's messages");

    // The next question follows the new head.
    let (next, _) = talk.send("and 3+3?").await;
    assert_eq!(next.parent_id, Some(second.id));
    assert_eq!(
        texts(&talk.requests, 2),
        [
            (PromptRole::User, "2+2?".into()),
            (PromptRole::Assistant, "4".into()),
            (PromptRole::User, "and 3+3?".into()),
        ]
    );
}

#[tokio::test]
async fn an_edited_question_starts_a_branch_beside_the_old_one() {
    let talk = conversation(&["Paris", "Lyon", "Berlin"]).await;
    let (_, _) = talk.send("Capital of France?").await;
    let (second_question, _) = talk.send("Second city?").await;

    let mut edited = talk
        .service
        .edit_message(
            talk.owner(),
            talk.session.id,
            second_question.id,
            "Capital of Germany?".into(),
            None,
        )
        .await
        .unwrap();
    let question = edited.user_message.clone().unwrap();
    assert_eq!(question.parent_id, second_question.parent_id);
    let reply = ended_messages(&mut edited.events).await.pop().unwrap();
    assert_eq!(reply.content, "Berlin");
    assert_eq!(
        texts(&talk.requests, 2),
        [
            (PromptRole::User, "Capital of France?".into()),
            (PromptRole::Assistant, "Paris".into()),
            (PromptRole::User, "Capital of Germany?".into()),
        ],
        "the old question is not in the new branch"
    );
    let history = talk.history(None).await;
    assert_eq!(history[2], ("Capital of Germany?".into(), 1, 2));
    assert_eq!(history.len(), 4);
    assert_eq!(talk.count().await, 4);
}

#[tokio::test]
async fn switching_branch_moves_the_head_to_the_newest_leaf_below_and_tells_the_watchers() {
    let talk = conversation(&["a", "b"]).await;
    let (question, first) = talk.send("q").await;
    let mut again = talk
        .service
        .regenerate(talk.owner(), talk.session.id, first.id)
        .await
        .unwrap();
    ended_messages(&mut again.events).await;
    let mut watcher = talk
        .service
        .subscribe(talk.owner(), talk.session.id, None)
        .await
        .unwrap();

    let switched = talk
        .service
        .update_session(
            talk.owner(),
            talk.session.id,
            SessionPatch {
                head_message_id: Some(first.id),
                ..SessionPatch::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(switched.head_message_id, Some(first.id));
    let event = watcher.next().await.unwrap();
    assert!(
        matches!(&event.kind, EventKind::SessionUpdated(s) if s.head_message_id == Some(first.id))
    );
    // From the question, the newest leaf below it is the regenerated reply.
    let back = talk
        .service
        .update_session(
            talk.owner(),
            talk.session.id,
            SessionPatch {
                head_message_id: Some(question.id),
                ..SessionPatch::default()
            },
        )
        .await
        .unwrap();
    assert_ne!(back.head_message_id, Some(first.id));
    assert_eq!(talk.history(None).await[1].0, "b");
}

#[tokio::test]
async fn the_wrong_kind_of_message_or_none_is_refused() {
    let talk = conversation(&["a"]).await;
    let (question, reply) = talk.send("q").await;
    let (service, owner, id) = (&talk.service, talk.owner(), talk.session.id);

    assert!(matches!(
        service.regenerate(owner, id, question.id).await,
        Err(ChatError::WrongRole(_))
    ));
    assert!(matches!(
        service
            .edit_message(owner, id, reply.id, "x".into(), None)
            .await,
        Err(ChatError::WrongRole(_))
    ));
    assert!(matches!(
        service.regenerate(owner, id, MessageId::new()).await,
        Err(ChatError::MessageNotFound)
    ));
    assert!(matches!(
        service
            .regenerate(owner, colloquy_domain::SessionId::new(), reply.id)
            .await,
        Err(ChatError::SessionNotFound)
    ));
    let stranger = Principal::parse("mallory").unwrap();
    assert!(matches!(
        service.regenerate(&stranger, id, reply.id).await,
        Err(ChatError::SessionNotFound)
    ));
    assert!(matches!(
        service
            .history(owner, id, Some(MessageId::new()), 10, None)
            .await,
        Err(ChatError::MessageNotFound)
    ));
}

#[tokio::test]
async fn a_search_needs_a_word_and_not_too_many() {
    let talk = conversation(&["Bonjour tout le monde"]).await;
    talk.send("Say hello in French").await;
    let (service, owner) = (&talk.service, talk.owner());
    for bad in ["", "   ", "!!! ???", &"word ".repeat(17), &"x".repeat(257)] {
        assert!(
            matches!(
                service.search(owner, bad, 10, None).await,
                Err(ChatError::BadQuery(_))
            ),
            "{bad:?}"
        );
    }
    let hits = service
        .search(owner, "bonjour monde", 10, None)
        .await
        .unwrap();
    assert_eq!(hits.items.len(), 1);
    assert_eq!(hits.items[0].role, Role::Assistant);
    // Control characters separate words as white space does: no store
    // tokenizer keeps one in a word, and a NUL cannot reach either store.
    let hits = service
        .search(owner, "bonjour\0monde\u{7f}", 10, None)
        .await
        .unwrap();
    assert_eq!(hits.items.len(), 1);
    assert!(matches!(
        service.search(owner, "\0\u{15}\r", 10, None).await,
        Err(ChatError::BadQuery(_))
    ));
}

fn imported(key: &str, parent: Option<&str>, role: Role, text: &str, at: i64) -> ImportedMessage {
    let session = colloquy_domain::SessionId::new();
    let mut message = match role {
        Role::User => Message::user(
            session,
            colloquy_domain::MessageContent::parse(text.into(), 10_000).unwrap(),
        ),
        Role::Assistant => {
            let mut reply = Message::streaming_reply(
                session,
                &colloquy_domain::ModelName::parse("old-model").unwrap(),
            );
            reply.content = text.into();
            reply.finish(MessageStatus::Complete, None);
            reply
        }
    };
    message.created_at = ts(at);
    ImportedMessage {
        key: key.into(),
        parent: parent.map(Into::into),
        message,
        name: (role == Role::Assistant).then(|| "Poet".to_owned()),
    }
}

#[tokio::test]
async fn an_import_keeps_the_tree_with_new_ids_or_stores_nothing() {
    let talk = conversation(&[]).await;
    let (service, owner) = (&talk.service, talk.owner());
    // Children listed before their parents, as a export's map may be.
    let messages = vec![
        imported("r2", Some("q"), Role::Assistant, "second try", 3_000),
        imported("q", None, Role::User, "question", 1_000),
        imported("r1", Some("q"), Role::Assistant, "first try", 2_000),
    ];
    let session = service
        .import_session(
            owner,
            ImportedConversation {
                title: Some("Imported".into()),
                messages: messages.clone(),
                head: Some("r1".into()),
                ..ImportedConversation::default()
            },
        )
        .await
        .unwrap();
    let listed = service
        .history(owner, session.id, None, 10, None)
        .await
        .unwrap();
    let branch: Vec<(&str, Option<&str>, usize)> = listed
        .items
        .iter()
        .map(|l| {
            (
                l.message.content.as_str(),
                l.message.speaker.as_ref().map(|s| s.name.as_str()),
                l.siblings.index,
            )
        })
        .collect();
    assert_eq!(
        branch,
        [("question", None, 0), ("first try", Some("Poet"), 0)],
        "the head as given; siblings in their original order"
    );
    assert_eq!(listed.items[1].message.created_at, ts(2_000));
    assert!(listed
        .items
        .iter()
        .all(|l| !messages.iter().any(|m| m.message.id == l.message.id)));

    for broken in [
        vec![imported("a", Some("nowhere"), Role::User, "x", 1)],
        vec![
            imported("a", None, Role::User, "x", 1),
            imported("a", None, Role::User, "y", 2),
        ],
        vec![
            imported("a", Some("b"), Role::User, "x", 1),
            imported("b", Some("a"), Role::Assistant, "y", 2),
        ],
    ] {
        let before = service
            .list_sessions(owner, 100, None)
            .await
            .unwrap()
            .items
            .len();
        let refused = service
            .import_session(
                owner,
                ImportedConversation {
                    messages: broken,
                    ..ImportedConversation::default()
                },
            )
            .await;
        assert!(
            matches!(refused, Err(ChatError::BadImport(_))),
            "{refused:?}"
        );
        assert_eq!(
            service
                .list_sessions(owner, 100, None)
                .await
                .unwrap()
                .items
                .len(),
            before,
            "nothing stored"
        );
    }
}

fn ts(millis: i64) -> Timestamp {
    Timestamp::from_system_time(
        std::time::UNIX_EPOCH + Duration::from_millis(u64::try_from(millis).unwrap()),
    )
}
