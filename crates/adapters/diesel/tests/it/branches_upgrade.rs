//! The branches' migration on a database that holds history already, on
//! both backends: each session's messages become one chain, with its head
//! and count, nothing lost, searchable at once; reverting it keeps every
//! message.

use colloquy_domain::{Message, Session, Timestamp};

use crate::support::{
    alice, bob, chain, finished_reply, new_session, on_both_backends, reply_to, streaming_reply,
    user_message, Backend,
};
use crate::upgrade::{insert_sql, Place, BRANCHES, CHAINS};

/// Sessions as the schema before branches held them: alice's with four
/// messages, alice's empty one, and bob's with two; all their messages in
/// id order, as they were made.
fn old_sessions() -> Vec<(Session, Vec<Message>)> {
    let at = |micros| Timestamp::from_micros(micros);
    let mut long = new_session();
    long.created_at = at(1_000);
    long.updated_at = at(5_000);
    long.message_count = 4;
    let long_messages = vec![
        user_message(long.id, "How far is the Moon?"),
        finished_reply(long.id),
        user_message(long.id, "And the Sun, roughly?"),
        Message {
            content: "About 150 million kilometres, half an ans".to_owned(),
            ..streaming_reply(long.id)
        },
    ];
    let mut empty = new_session();
    empty.title = None;
    empty.created_at = at(2_000);
    empty.updated_at = at(2_000);
    let mut bobs = Session {
        owner: bob(),
        ..new_session()
    };
    bobs.created_at = at(3_000);
    bobs.updated_at = at(3_000);
    bobs.message_count = 2;
    let bobs_messages = vec![
        user_message(bobs.id, "bob asks about the Moon"),
        finished_reply(bobs.id),
    ];
    vec![
        (long, long_messages),
        (empty, Vec::new()),
        (bobs, bobs_messages),
    ]
}

async fn history_from_before_branches_becomes_one_chain_per_session(backend: Backend) {
    let place = Place::new(backend).await;
    place
        .migrations(|harness| harness.run_those_before(BRANCHES))
        .await;
    let old = old_sessions();
    for (session, messages) in &old {
        place.execute(insert_sql(session, messages)).await;
    }

    assert_eq!(place.migrate().await, [BRANCHES, CHAINS]);
    let repo = place.open().await;
    for (session, messages) in &old {
        let owner = &session.owner;
        let upgraded = Session {
            head_message_id: messages.last().map(|last| last.id),
            ..session.clone()
        };
        assert_eq!(repo.get_session(owner, session.id).await.unwrap(), upgraded);
        let chained = chain(None, messages.clone());
        let stored = repo
            .list_messages(owner, session.id, 10, None)
            .await
            .unwrap();
        assert_eq!(
            stored.items, chained,
            "every message, each after the one before"
        );
        let active = repo
            .list_branch(owner, session.id, None, 10, None)
            .await
            .unwrap();
        let active: Vec<Message> = active
            .items
            .into_iter()
            .map(|item| {
                assert_eq!(item.siblings.ids, [item.message.id], "no siblings");
                item.message
            })
            .collect();
        assert_eq!(active, chained);
        assert_eq!(
            repo.recent_messages(owner, session.id, None, 2)
                .await
                .unwrap(),
            chained[chained.len().saturating_sub(2)..]
        );
    }

    // Stored before, found now: the index covers the old rows.
    let (long, messages) = &old[0];
    let found = repo
        .search_messages(&alice(), &["moon".to_owned()], 10, None)
        .await
        .unwrap();
    let found: Vec<_> = found.items.iter().map(|hit| hit.message_id).collect();
    assert_eq!(found, [messages[0].id], "alice's only");

    // The old chain takes new branches: a second answer to the last
    // question, then back to the first.
    let regenerated = reply_to(&messages[2], finished_reply(long.id));
    repo.append_messages(&alice(), std::slice::from_ref(&regenerated))
        .await
        .unwrap();
    let stored = repo.get_session(&alice(), long.id).await.unwrap();
    assert_eq!(
        (stored.head_message_id, stored.message_count),
        (Some(regenerated.id), 4)
    );
    let switched = repo
        .switch_branch(&alice(), long.id, messages[3].id, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(switched.head_message_id, Some(messages[3].id));
    let interrupted = repo.interrupt_streaming().await.unwrap();
    assert_eq!(
        interrupted, 1,
        "the old reply still streaming is there to end"
    );
}

/// Reverting forgets the branches and keeps every message; the count is
/// every message again. Applying it again makes the chains anew.
async fn the_branches_migration_reverts_and_reapplies(backend: Backend) {
    let place = Place::new(backend).await;
    let repo = place.open().await;
    let session = new_session();
    repo.create_session(&session).await.unwrap();
    let question = user_message(session.id, "the question");
    let first = reply_to(&question, finished_reply(session.id));
    repo.append_messages(&alice(), &[question.clone(), first.clone()])
        .await
        .unwrap();
    let second = reply_to(&question, finished_reply(session.id));
    repo.append_messages(&alice(), std::slice::from_ref(&second))
        .await
        .unwrap();
    drop(repo);

    let reverted = place
        .migrations(|harness| [harness.revert_last(), harness.revert_last()])
        .await;
    assert_eq!(reverted, ["20261204000000", "20261203000000"]);
    assert_eq!(place.migrate().await, [BRANCHES, CHAINS]);

    let repo = place.open().await;
    let stored = repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(stored.message_count, 3, "every message, one chain again");
    assert_eq!(stored.head_message_id, Some(second.id));
    let history = repo
        .list_messages(&alice(), session.id, 10, None)
        .await
        .unwrap();
    assert_eq!(history.items, chain(None, vec![question, first, second]));
    let found = repo
        .search_messages(&alice(), &["question".to_owned()], 10, None)
        .await
        .unwrap();
    assert_eq!(found.items.len(), 1, "the index is made anew");
}

on_both_backends! {
    history_from_before_branches_becomes_one_chain_per_session,
    the_branches_migration_reverts_and_reapplies,
}
