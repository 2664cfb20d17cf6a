//! A session's messages as a tree: appends under parents, branches read
//! with their siblings and paged, the newest messages of a branch, switching
//! branch, and the count that follows the active branch.

use colloquy_domain::{Message, MessageId, SessionId, Timestamp};
use colloquy_ports::{BranchMessage, Page, RepoError};

use crate::support::{
    alice, all_messages, bob, chain, micros_now, on_both_backends, reply_to, stored_session,
    streaming_reply, user_message, Backend, Store, TestDb,
};

fn ids(page: &Page<BranchMessage>) -> Vec<MessageId> {
    page.items.iter().map(|item| item.message.id).collect()
}

fn message_ids(messages: &[Message]) -> Vec<MessageId> {
    messages.iter().map(|message| message.id).collect()
}

async fn append(repo: &dyn Store, messages: &[Message]) {
    repo.append_messages(&alice(), messages)
        .await
        .expect("append_messages");
}

async fn branch(
    repo: &dyn Store,
    session: SessionId,
    leaf: Option<MessageId>,
    limit: usize,
    after: Option<MessageId>,
) -> Page<BranchMessage> {
    repo.list_branch(&alice(), session, leaf, limit, after)
        .await
        .expect("list_branch")
}

fn assert_not_found<T: std::fmt::Debug>(outcome: Result<T, RepoError>) {
    assert!(matches!(outcome, Err(RepoError::NotFound)), "{outcome:?}");
}

/// Regenerating a reply adds a sibling under the same question, and
/// editing the first question adds a second root: each becomes the head,
/// and every message is listed with its siblings, oldest first.
async fn replies_go_under_their_parents_and_list_with_their_siblings(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let question = user_message(session.id, "first question");
    let first = reply_to(&question, streaming_reply(session.id));
    append(&*db.repo, &[question.clone(), first.clone()]).await;
    let second = reply_to(&question, streaming_reply(session.id));
    append(&*db.repo, std::slice::from_ref(&second)).await;

    let stored = db.repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(stored.head_message_id, Some(second.id));
    assert_eq!(stored.message_count, 2);
    let active = branch(&*db.repo, session.id, None, 10, None).await;
    assert_eq!(ids(&active), [question.id, second.id]);
    assert!(!active.has_more);
    assert_eq!(active.items[0].message, question);
    assert_eq!(active.items[0].siblings.ids, [question.id]);
    assert_eq!(active.items[0].siblings.index, 0);
    assert_eq!(active.items[1].message, second);
    assert_eq!(active.items[1].siblings.ids, [first.id, second.id]);
    assert_eq!(active.items[1].siblings.index, 1);

    let earlier = branch(&*db.repo, session.id, Some(first.id), 10, None).await;
    assert_eq!(ids(&earlier), [question.id, first.id]);
    assert_eq!(earlier.items[1].siblings.ids, [first.id, second.id]);
    assert_eq!(earlier.items[1].siblings.index, 0);

    // An edited first question is a root beside the first.
    let edited = user_message(session.id, "first question, better put");
    let answer = reply_to(&edited, streaming_reply(session.id));
    append(&*db.repo, &[edited.clone(), answer.clone()]).await;
    let active = branch(&*db.repo, session.id, None, 10, None).await;
    assert_eq!(ids(&active), [edited.id, answer.id]);
    assert_eq!(active.items[0].siblings.ids, [question.id, edited.id]);
    assert_eq!(active.items[0].siblings.index, 1);
    assert_eq!(active.items[1].siblings.ids, [answer.id]);

    // Nothing is lost: every branch is still there, by id.
    assert_eq!(
        message_ids(&all_messages(&*db.repo, session.id, 10).await),
        [question.id, first.id, second.id, edited.id, answer.id]
    );
}

/// A chain of seven, and a side branch of two after its third message.
async fn a_tree(repo: &dyn Store, session: SessionId) -> (Vec<Message>, Vec<Message>) {
    let main = chain(
        None,
        (1..=7)
            .map(|n| user_message(session, &format!("m{n}")))
            .collect(),
    );
    append(repo, &main[..3]).await;
    append(repo, &main[3..]).await;
    let side = chain(
        Some(main[2].id),
        vec![user_message(session, "x4"), user_message(session, "x5")],
    );
    append(repo, &side).await;
    repo.switch_branch(&alice(), session, main[6].id, Timestamp::now())
        .await
        .unwrap();
    (main, side)
}

async fn a_branch_is_paged_from_its_root(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let (main, side) = a_tree(&*db.repo, session.id).await;

    let first = branch(&*db.repo, session.id, None, 3, None).await;
    assert_eq!(ids(&first), message_ids(&main[..3]));
    assert!(first.has_more);
    let second = branch(&*db.repo, session.id, None, 3, Some(main[2].id)).await;
    assert_eq!(ids(&second), message_ids(&main[3..6]));
    assert!(second.has_more);
    let last = branch(&*db.repo, session.id, None, 3, Some(main[5].id)).await;
    assert_eq!(ids(&last), [main[6].id]);
    assert!(!last.has_more);
    let past_the_end = branch(&*db.repo, session.id, None, 3, Some(main[6].id)).await;
    assert!(past_the_end.items.is_empty() && !past_the_end.has_more);

    // The side branch, from the message it leaves the main one at: its
    // first message has a sibling there.
    let aside = branch(
        &*db.repo,
        session.id,
        Some(side[1].id),
        10,
        Some(main[2].id),
    )
    .await;
    assert_eq!(ids(&aside), message_ids(&side));
    assert!(!aside.has_more);
    assert_eq!(aside.items[0].siblings.ids, [main[3].id, side[0].id]);
    assert_eq!(aside.items[0].siblings.index, 1);
    let whole = branch(&*db.repo, session.id, Some(side[1].id), 2, None).await;
    assert_eq!(ids(&whole), message_ids(&main[..2]));
    assert!(whole.has_more);
    let none = branch(&*db.repo, session.id, None, 0, None).await;
    assert!(none.items.is_empty() && none.has_more);
}

/// The newest messages of a branch follow that branch, not the order of
/// ids, and never read further up than `limit` messages.
async fn recent_messages_follow_the_branch_and_stop_at_the_limit(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let (main, side) = a_tree(&*db.repo, session.id).await;
    let recent = |leaf, limit| {
        let repo = db.repo.clone();
        async move {
            repo.recent_messages(&alice(), session.id, leaf, limit)
                .await
        }
    };

    assert_eq!(recent(None, 3).await.unwrap(), main[4..]);
    assert_eq!(recent(None, 100).await.unwrap(), main);
    let aside = recent(Some(side[1].id), 4).await.unwrap();
    assert_eq!(
        message_ids(&aside),
        [main[1].id, main[2].id, side[0].id, side[1].id]
    );
    assert!(recent(Some(side[0].id), 0).await.unwrap().is_empty());

    // Damage the first message so that reading it fails: a walk of three
    // from the head never reaches it, a walk of seven does.
    db.execute(&format!(
        "UPDATE messages SET tool_calls = '[1]' WHERE id = '{}'",
        main[0].id
    ))
    .await;
    assert_eq!(recent(None, 3).await.unwrap(), main[4..]);
    assert_eq!(recent(Some(side[1].id), 4).await.unwrap(), aside);
    assert!(matches!(recent(None, 7).await, Err(RepoError::Unknown(_))));
}

/// The head moves to the newest leaf below the message switched to: a
/// subtree's newest leaf may be deeper than an older one's.
async fn switching_branch_makes_the_newest_leaf_below_the_head(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let first = chain(
        None,
        vec![
            user_message(session.id, "q1"),
            streaming_reply(session.id),
            user_message(session.id, "q2"),
            streaming_reply(session.id),
        ],
    );
    append(&*db.repo, &first).await;
    let regenerated = reply_to(&first[0], streaming_reply(session.id));
    append(&*db.repo, std::slice::from_ref(&regenerated)).await;

    let at = Timestamp::from_micros(micros_now() + 60_000_000);
    let switched = db
        .repo
        .switch_branch(&alice(), session.id, first[1].id, at)
        .await
        .unwrap();
    assert_eq!(switched.head_message_id, Some(first[3].id));
    assert_eq!(switched.message_count, 4);
    assert_eq!(switched.updated_at, at);
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        switched
    );
    assert_eq!(
        ids(&branch(&*db.repo, session.id, None, 10, None).await),
        message_ids(&first)
    );

    let to_root = db
        .repo
        .switch_branch(&alice(), session.id, first[0].id, at)
        .await
        .unwrap();
    assert_eq!(
        to_root.head_message_id,
        Some(regenerated.id),
        "the newest leaf"
    );
    assert_eq!(to_root.message_count, 2);
    let to_leaf = db
        .repo
        .switch_branch(&alice(), session.id, first[3].id, at)
        .await
        .unwrap();
    assert_eq!(to_leaf.head_message_id, Some(first[3].id), "a leaf itself");

    let elsewhere = stored_session(&*db.repo).await;
    let stranger = user_message(elsewhere.id, "elsewhere");
    append(&*db.repo, std::slice::from_ref(&stranger)).await;
    assert_not_found(
        db.repo
            .switch_branch(&alice(), session.id, stranger.id, at)
            .await,
    );
    assert_not_found(
        db.repo
            .switch_branch(&alice(), session.id, MessageId::new(), at)
            .await,
    );
    assert_not_found(
        db.repo
            .switch_branch(&bob(), session.id, first[1].id, at)
            .await,
    );
    assert_eq!(
        db.repo
            .get_session(&alice(), session.id)
            .await
            .unwrap()
            .head_message_id,
        Some(first[3].id),
        "a refused switch moves nothing"
    );
}

/// `message_count` is the active branch's length, whichever branch that is.
async fn the_count_follows_the_active_branch(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let main = chain(
        None,
        (1..=4)
            .map(|n| user_message(session.id, &format!("m{n}")))
            .collect(),
    );
    append(&*db.repo, &main).await;
    let count = || async {
        let stored = db.repo.get_session(&alice(), session.id).await.unwrap();
        (stored.message_count, stored.head_message_id)
    };
    assert_eq!(count().await, (4, Some(main[3].id)));

    let sibling = reply_to(&main[0], streaming_reply(session.id));
    append(&*db.repo, std::slice::from_ref(&sibling)).await;
    assert_eq!(count().await, (2, Some(sibling.id)));
    let listed = db.repo.list_sessions(&alice(), 10, None).await.unwrap();
    assert_eq!(listed.items[0].message_count, 2);

    db.repo
        .switch_branch(&alice(), session.id, main[2].id, Timestamp::now())
        .await
        .unwrap();
    assert_eq!(count().await, (4, Some(main[3].id)));
    let longer = reply_to(&main[3], user_message(session.id, "m5"));
    append(&*db.repo, std::slice::from_ref(&longer)).await;
    assert_eq!(count().await, (5, Some(longer.id)));
}

async fn a_message_is_got_only_in_its_session_by_its_owner(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let message = user_message(session.id, "here");
    append(&*db.repo, std::slice::from_ref(&message)).await;
    let other = stored_session(&*db.repo).await;

    assert_eq!(
        db.repo
            .get_message(&alice(), session.id, message.id)
            .await
            .unwrap(),
        message
    );
    assert_not_found(db.repo.get_message(&bob(), session.id, message.id).await);
    assert_not_found(db.repo.get_message(&alice(), other.id, message.id).await);
    assert_not_found(
        db.repo
            .get_message(&alice(), session.id, MessageId::new())
            .await,
    );
    assert_not_found(
        db.repo
            .get_message(&alice(), SessionId::new(), message.id)
            .await,
    );
}

/// A parent that is not a message of the session stored before its child
/// is a bug of the caller: the append is refused whole.
async fn an_append_under_a_parent_outside_the_session_stores_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let root = user_message(session.id, "root");
    append(&*db.repo, std::slice::from_ref(&root)).await;
    let other = stored_session(&*db.repo).await;
    let stranger = user_message(other.id, "elsewhere");
    append(&*db.repo, std::slice::from_ref(&stranger)).await;
    let before = db.repo.get_session(&alice(), session.id).await.unwrap();

    let fine = reply_to(&root, user_message(session.id, "fine"));
    let later = user_message(session.id, "later");
    for bad in [
        reply_to(
            &stranger,
            user_message(session.id, "under another session's"),
        ),
        Message {
            parent_id: Some(MessageId::new()),
            ..user_message(session.id, "under nothing")
        },
        reply_to(&later, user_message(session.id, "before its parent")),
    ] {
        let batch = if bad.parent_id == Some(later.id) {
            vec![fine.clone(), bad, later.clone()]
        } else {
            vec![fine.clone(), bad]
        };
        let error = db.repo.append_messages(&alice(), &batch).await.unwrap_err();
        assert!(matches!(error, RepoError::Unknown(_)), "{error:?}");
        assert!(
            format!("{error:#}").contains("is not a message of session"),
            "{error:#}"
        );
    }
    assert_eq!(all_messages(&*db.repo, session.id, 10).await, [root]);
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        before
    );
}

/// A leaf, or a cursor, that is not one of the session's messages is not
/// found; an empty session has an empty branch.
async fn a_branch_of_another_sessions_message_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let empty = branch(&*db.repo, session.id, None, 10, None).await;
    assert!(empty.items.is_empty() && !empty.has_more);
    assert!(db
        .repo
        .recent_messages(&alice(), session.id, None, 10)
        .await
        .unwrap()
        .is_empty());

    let mine = user_message(session.id, "mine");
    append(&*db.repo, std::slice::from_ref(&mine)).await;
    let other = stored_session(&*db.repo).await;
    let stranger = user_message(other.id, "elsewhere");
    append(&*db.repo, std::slice::from_ref(&stranger)).await;

    let repo = &db.repo;
    assert_not_found(
        repo.list_branch(&alice(), session.id, Some(stranger.id), 10, None)
            .await,
    );
    assert_not_found(
        repo.list_branch(&alice(), session.id, None, 10, Some(stranger.id))
            .await,
    );
    assert_not_found(repo.list_branch(&bob(), session.id, None, 10, None).await);
    for limit in [0, 10] {
        assert_not_found(
            repo.recent_messages(&alice(), session.id, Some(stranger.id), limit)
                .await,
        );
    }
    assert_not_found(repo.recent_messages(&bob(), session.id, None, 10).await);
    assert_not_found(
        repo.list_branch(&alice(), SessionId::new(), None, 10, None)
            .await,
    );
}

on_both_backends! {
    replies_go_under_their_parents_and_list_with_their_siblings,
    a_branch_is_paged_from_its_root,
    recent_messages_follow_the_branch_and_stop_at_the_limit,
    switching_branch_makes_the_newest_leaf_below_the_head,
    the_count_follows_the_active_branch,
    a_message_is_got_only_in_its_session_by_its_owner,
    an_append_under_a_parent_outside_the_session_stores_nothing,
    a_branch_of_another_sessions_message_is_not_found,
}
