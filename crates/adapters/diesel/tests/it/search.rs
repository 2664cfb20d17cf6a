//! Full-text search on both backends: every word required, case and
//! accents folded, nothing a user types read as query syntax, marked and
//! bounded snippets, the owner's messages only, newest first in pages, and
//! an index that follows every write (updates, deletes by cascade).

use colloquy_domain::{Message, MessageId, MessageStatus, Role, Session, Title};
use colloquy_ports::{Page, SearchHit};

use crate::support::{
    alice, bob, chain, new_session, on_both_backends, reply_to, stored_session, streaming_reply,
    user_message, Backend, Store, TestDb,
};

fn terms(words: &[&str]) -> Vec<String> {
    words.iter().map(|word| (*word).to_owned()).collect()
}

async fn search(repo: &dyn Store, words: &[&str]) -> Vec<MessageId> {
    hits(repo, words, 50, None)
        .await
        .items
        .iter()
        .map(|hit| hit.message_id)
        .collect()
}

async fn hits(
    repo: &dyn Store,
    words: &[&str],
    limit: usize,
    after: Option<MessageId>,
) -> Page<SearchHit> {
    repo.search_messages(&alice(), &terms(words), limit, after)
        .await
        .expect("search_messages")
}

/// Stores `texts` in `session`, one branch, and returns the messages.
async fn said(repo: &dyn Store, session: &Session, texts: &[&str]) -> Vec<Message> {
    let messages = chain(
        session.head_message_id,
        texts
            .iter()
            .map(|text| user_message(session.id, text))
            .collect(),
    );
    repo.append_messages(&session.owner, &messages)
        .await
        .unwrap();
    messages
}

/// Whether the backend folds accents: always on SQLite; on PostgreSQL when
/// the server had `unaccent` for the migration to use.
async fn folds_accents(db: &TestDb) -> bool {
    match db.backend {
        Backend::Sqlite => true,
        Backend::Postgres => {
            db.integer(
                "SELECT count(*) AS value FROM pg_ts_config_map AS map \
                 JOIN pg_ts_config AS config ON config.oid = map.mapcfg \
                 JOIN pg_ts_dict AS dictionary ON dictionary.oid = map.mapdict \
                 WHERE config.cfgname = $1 AND dictionary.dictname = 'unaccent'",
                "colloquy_search",
            )
            .await
                > 0
        }
    }
}

async fn every_word_is_required_and_words_are_whole(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let m = said(
        &*db.repo,
        &session,
        &[
            "the quick brown fox",
            "the lazy dog",
            "a quick dog, at last",
        ],
    )
    .await;

    assert_eq!(search(&*db.repo, &["quick"]).await, [m[2].id, m[0].id]);
    assert_eq!(search(&*db.repo, &["quick", "dog"]).await, [m[2].id]);
    assert_eq!(search(&*db.repo, &["dog", "quick"]).await, [m[2].id]);
    assert!(search(&*db.repo, &["quick", "cat"]).await.is_empty());
    assert!(
        search(&*db.repo, &["qui"]).await.is_empty(),
        "words, not substrings"
    );
    assert_eq!(
        search(&*db.repo, &["last"]).await,
        [m[2].id],
        "after a comma"
    );
}

async fn case_and_accents_are_ignored(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let m = said(
        &*db.repo,
        &session,
        &["Café Crème in Zürich", "a RESUME of ΔΈΛΤΑ"],
    )
    .await;

    assert_eq!(search(&*db.repo, &["café", "ZÜRICH"]).await, [m[0].id]);
    assert_eq!(search(&*db.repo, &["resume"]).await, [m[1].id]);
    assert_eq!(
        search(&*db.repo, &["δέλτα"]).await,
        [m[1].id],
        "beyond ASCII"
    );
    if folds_accents(&db).await {
        assert_eq!(search(&*db.repo, &["cafe", "creme"]).await, [m[0].id]);
        assert_eq!(search(&*db.repo, &["Zurich"]).await, [m[0].id]);
        assert_eq!(search(&*db.repo, &["résumé"]).await, [m[1].id]);
    }
}

/// Terms are words, never query syntax, on either backend: operators,
/// quotes, prefixes and brackets are searched as the words they hold (or,
/// holding none, ask for nothing) and never fail a search.
async fn nothing_a_user_types_is_query_syntax(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let m = said(
        &*db.repo,
        &session,
        &["to be OR not to be", "foo and bar", "\"quoted\" text"],
    )
    .await;

    assert_eq!(search(&*db.repo, &["OR"]).await, [m[0].id]);
    assert_eq!(search(&*db.repo, &["NOT", "be"]).await, [m[0].id]);
    assert_eq!(search(&*db.repo, &["\"quoted\""]).await, [m[2].id]);
    assert_eq!(search(&*db.repo, &["(bar)", "AND"]).await, [m[1].id]);
    assert!(
        search(&*db.repo, &["fo*"]).await.is_empty(),
        "no prefix search"
    );
    for odd in [
        "\"", "*", "^", ":", "-", "(", ")", "&", "|", "!", "'", "NEAR(", "col:foo", "foo:*", "''",
    ] {
        let outcome = db
            .repo
            .search_messages(&alice(), &terms(&[odd, "foo"]), 10, None)
            .await;
        assert!(outcome.is_ok(), "{odd}: {outcome:?}");
    }
    assert!(search(&*db.repo, &[]).await.is_empty());
    assert!(search(&*db.repo, &["", "  "]).await.is_empty());
    assert!(search(&*db.repo, &["!!!"]).await.is_empty());
}

async fn a_snippet_marks_every_hit_in_a_bounded_excerpt(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let filler = |from: usize| {
        (from..from + 100)
            .map(|n| format!("word{n}"))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let long = format!("{} the needle and the Thread {}", filler(0), filler(100));
    said(&*db.repo, &session, &[&long, "Café au lait"]).await;

    let found = hits(&*db.repo, &["thread", "needle"], 10, None).await;
    let snippet = &found.items[0].snippet;
    assert!(
        snippet.contains("«needle»") && snippet.contains("«Thread»"),
        "{snippet}"
    );
    assert!(
        snippet.split_whitespace().count() <= 32,
        "a bounded excerpt, not the text: {snippet}"
    );
    let cafe = if folds_accents(&db).await {
        "cafe"
    } else {
        "café"
    };
    let found = hits(&*db.repo, &[cafe], 10, None).await;
    assert_eq!(found.items[0].snippet, "«Café» au lait", "as written");
}

/// What a hit tells, and that it is only ever one of the caller's.
async fn a_search_finds_only_the_owners_messages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let untitled = Session {
        title: None,
        ..new_session()
    };
    db.repo.create_session(&untitled).await.unwrap();
    let bobs = Session {
        owner: bob(),
        ..new_session()
    };
    db.repo.create_session(&bobs).await.unwrap();
    let question = said(&*db.repo, &session, &["where is the lighthouse"]).await;
    let mut reply = reply_to(&question[0], streaming_reply(session.id));
    reply.content = "The lighthouse is north.".to_owned();
    reply.finish(MessageStatus::Complete, None);
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&reply))
        .await
        .unwrap();
    let elsewhere = said(&*db.repo, &untitled, &["another lighthouse"]).await;
    said(&*db.repo, &bobs, &["bob's lighthouse"]).await;

    let found = hits(&*db.repo, &["lighthouse"], 10, None).await;
    assert!(!found.has_more);
    let ids: Vec<MessageId> = found.items.iter().map(|hit| hit.message_id).collect();
    assert_eq!(ids, [elsewhere[0].id, reply.id, question[0].id]);
    let hit = &found.items[1];
    assert_eq!(hit.session_id, session.id);
    assert_eq!(hit.session_title, Some(Title::parse("A title").unwrap()));
    assert_eq!(hit.role, Role::Assistant);
    assert_eq!(hit.created_at, reply.created_at);
    assert_eq!(found.items[0].session_title, None);
    assert_eq!(found.items[2].role, Role::User);

    let bobs_hits = db
        .repo
        .search_messages(&bob(), &terms(&["lighthouse"]), 10, None)
        .await
        .unwrap();
    assert_eq!(bobs_hits.items.len(), 1);
    assert_eq!(bobs_hits.items[0].session_id, bobs.id);
}

async fn hits_come_newest_first_in_pages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let one = stored_session(&*db.repo).await;
    let two = stored_session(&*db.repo).await;
    let mut m = said(&*db.repo, &one, &["echo 1", "silence", "echo 2"]).await;
    m.extend(said(&*db.repo, &two, &["echo 3", "echo 4"]).await);
    let one = db.repo.get_session(&alice(), one.id).await.unwrap();
    m.extend(said(&*db.repo, &one, &["echo 5"]).await);
    let echoes = [m[0].id, m[2].id, m[3].id, m[4].id, m[5].id];

    let mut seen = Vec::new();
    let mut after = None;
    let mut pages = 0;
    loop {
        let page = hits(&*db.repo, &["echo"], 2, after).await;
        pages += 1;
        seen.extend(page.items.iter().map(|hit| hit.message_id));
        after = seen.last().copied();
        if !page.has_more {
            break;
        }
    }
    assert_eq!(pages, 3);
    let newest_first: Vec<MessageId> = echoes.iter().rev().copied().collect();
    assert_eq!(seen, newest_first);
}

/// A page after a message whose session was deleted meanwhile carries on
/// with the messages older than it.
async fn a_page_after_a_deleted_message_carries_on_below_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let kept = stored_session(&*db.repo).await;
    let gone = stored_session(&*db.repo).await;
    let first = said(&*db.repo, &kept, &["tide 1"]).await;
    let doomed = said(&*db.repo, &gone, &["tide 2"]).await;
    let newest = said(
        &*db.repo,
        &db.repo.get_session(&alice(), kept.id).await.unwrap(),
        &["tide 3"],
    )
    .await;
    let page = hits(&*db.repo, &["tide"], 2, None).await;
    let ids: Vec<MessageId> = page.items.iter().map(|hit| hit.message_id).collect();
    assert_eq!(ids, [newest[0].id, doomed[0].id]);

    db.repo.delete_session(&alice(), gone.id).await.unwrap();
    let next = hits(&*db.repo, &["tide"], 2, Some(doomed[0].id)).await;
    let ids: Vec<MessageId> = next.items.iter().map(|hit| hit.message_id).collect();
    assert_eq!(ids, [first[0].id]);
    assert!(!next.has_more);
    let oldest = hits(&*db.repo, &["tide"], 2, Some(first[0].id)).await;
    assert!(oldest.items.is_empty() && !oldest.has_more);
}

/// A reply is found by the text flushed so far while it streams, and once
/// its text changes, by its new words only.
async fn the_index_follows_a_replys_text(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let question = said(&*db.repo, &session, &["tell me"]).await;
    let mut reply = reply_to(&question[0], streaming_reply(session.id));
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&reply))
        .await
        .unwrap();
    assert!(search(&*db.repo, &["draft"]).await.is_empty());

    reply.content = "a first draft".to_owned();
    db.repo.update_message(&alice(), &reply).await.unwrap();
    assert_eq!(
        search(&*db.repo, &["draft"]).await,
        [reply.id],
        "as flushed"
    );

    reply.content = "the final answer".to_owned();
    reply.finish(MessageStatus::Complete, None);
    db.repo.update_message(&alice(), &reply).await.unwrap();
    assert!(
        search(&*db.repo, &["draft"]).await.is_empty(),
        "old words go"
    );
    assert_eq!(search(&*db.repo, &["final", "answer"]).await, [reply.id]);
}

/// Deleting a session takes its messages out of the index too (on SQLite
/// through the triggers that the cascade fires), and a branch that is not
/// the active one is searched as any.
async fn a_deleted_sessions_messages_are_never_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let kept = stored_session(&*db.repo).await;
    let m = said(
        &*db.repo,
        &session,
        &["zanzibar question", "zanzibar answer"],
    )
    .await;
    let sibling = reply_to(&m[0], user_message(session.id, "zanzibar again"));
    db.repo
        .append_messages(&alice(), std::slice::from_ref(&sibling))
        .await
        .unwrap();
    let survivor = said(&*db.repo, &kept, &["zanzibar elsewhere"]).await;
    assert_eq!(
        search(&*db.repo, &["zanzibar"]).await,
        [survivor[0].id, sibling.id, m[1].id, m[0].id],
        "every branch"
    );

    db.repo.delete_session(&alice(), session.id).await.unwrap();
    assert_eq!(search(&*db.repo, &["zanzibar"]).await, [survivor[0].id]);
    if backend == Backend::Sqlite {
        let indexed = db
            .integer(
                "SELECT count(*) AS value FROM messages_search WHERE messages_search MATCH $1",
                "zanzibar",
            )
            .await;
        assert_eq!(indexed, 1, "the index forgot the deleted messages");
    }
}

on_both_backends! {
    every_word_is_required_and_words_are_whole,
    case_and_accents_are_ignored,
    nothing_a_user_types_is_query_syntax,
    a_snippet_marks_every_hit_in_a_bounded_excerpt,
    a_search_finds_only_the_owners_messages,
    hits_come_newest_first_in_pages,
    a_page_after_a_deleted_message_carries_on_below_it,
    the_index_follows_a_replys_text,
    a_deleted_sessions_messages_are_never_found,
}
