use colloquy_domain::{ModelName, Session, SessionId, SystemPrompt, Timestamp, Title};
use colloquy_ports::{RepoError, SessionChanges};

use crate::support::{
    alice, chain, new_session, on_both_backends, stored_session, untitled_session, user_message,
    Backend, TestDb,
};

async fn a_created_session_reads_back_whole(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut session = new_session();
    session.created_at = Timestamp::from_micros(1_700_000_000_123_456);
    session.updated_at = Timestamp::from_micros(1_700_000_000_999_999);
    db.repo.create_session(&session).await.unwrap();

    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session
    );
}

async fn a_session_without_title_or_prompt_reads_back_without_them(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut session = new_session();
    session.title = None;
    session.system_prompt = None;
    db.repo.create_session(&session).await.unwrap();

    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session
    );
}

async fn message_count_starts_at_zero_whatever_the_caller_says(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut session = new_session();
    session.message_count = 7;
    db.repo.create_session(&session).await.unwrap();

    assert_eq!(
        db.repo
            .get_session(&alice(), session.id)
            .await
            .unwrap()
            .message_count,
        0
    );
}

async fn an_unknown_session_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let error = db
        .repo
        .get_session(&alice(), SessionId::new())
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");
}

async fn creating_the_same_session_twice_fails_and_keeps_the_first(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let mut again = session.clone();
    again.model = ModelName::parse("other").unwrap();

    let error = db.repo.create_session(&again).await.unwrap_err();
    assert!(matches!(error, RepoError::Unknown(_)), "{error:?}");
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session
    );
}

/// Five sessions, oldest first.
async fn five_sessions(db: &TestDb) -> Vec<SessionId> {
    let mut ids = Vec::new();
    for _ in 0..5 {
        ids.push(stored_session(&*db.repo).await.id);
    }
    ids
}

fn ids(page: &colloquy_ports::Page<colloquy_domain::Session>) -> Vec<SessionId> {
    page.items.iter().map(|session| session.id).collect()
}

async fn sessions_list_newest_first_in_pages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = five_sessions(&db).await;

    let first = db.repo.list_sessions(&alice(), 2, None).await.unwrap();
    assert_eq!(ids(&first), [s[4], s[3]]);
    assert!(first.has_more);
    let second = db
        .repo
        .list_sessions(&alice(), 2, Some(s[3]))
        .await
        .unwrap();
    assert_eq!(ids(&second), [s[2], s[1]]);
    assert!(second.has_more);
    let last = db
        .repo
        .list_sessions(&alice(), 2, Some(s[1]))
        .await
        .unwrap();
    assert_eq!(ids(&last), [s[0]]);
    assert!(!last.has_more);
    let past_the_end = db
        .repo
        .list_sessions(&alice(), 2, Some(s[0]))
        .await
        .unwrap();
    assert!(past_the_end.items.is_empty() && !past_the_end.has_more);
}

async fn has_more_is_exact_at_the_page_boundary(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = five_sessions(&db).await;

    let exact = db.repo.list_sessions(&alice(), 5, None).await.unwrap();
    assert_eq!(exact.items.len(), 5);
    assert!(!exact.has_more, "exactly a page left: nothing more");
    let one_short = db.repo.list_sessions(&alice(), 4, None).await.unwrap();
    assert_eq!(ids(&one_short), [s[4], s[3], s[2], s[1]]);
    assert!(one_short.has_more);
    let exact_after_cursor = db
        .repo
        .list_sessions(&alice(), 3, Some(s[3]))
        .await
        .unwrap();
    assert_eq!(ids(&exact_after_cursor), [s[2], s[1], s[0]]);
    assert!(!exact_after_cursor.has_more);
    let none = db.repo.list_sessions(&alice(), 0, None).await.unwrap();
    assert!(
        none.items.is_empty() && none.has_more,
        "an empty page still says more exist"
    );
    let huge = db
        .repo
        .list_sessions(&alice(), usize::MAX, None)
        .await
        .unwrap();
    assert_eq!(huge.items.len(), 5);
    assert!(!huge.has_more);
}

async fn the_session_cursor_need_not_exist(backend: Backend) {
    let db = TestDb::new(backend).await;
    let s = five_sessions(&db).await;
    db.repo.delete_session(&alice(), s[2]).await.unwrap();

    let after_deleted = db
        .repo
        .list_sessions(&alice(), 10, Some(s[2]))
        .await
        .unwrap();
    assert_eq!(ids(&after_deleted), [s[1], s[0]]);
    let never_stored = SessionId::new();
    let after_unknown = db
        .repo
        .list_sessions(&alice(), 10, Some(never_stored))
        .await
        .unwrap();
    assert_eq!(
        ids(&after_unknown),
        [s[4], s[3], s[1], s[0]],
        "a newer id starts before everything"
    );
}

async fn an_empty_store_lists_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let page = db.repo.list_sessions(&alice(), 10, None).await.unwrap();
    assert!(page.items.is_empty() && !page.has_more);
}

/// A minute after `session` was last updated.
fn a_minute_after(session: &Session) -> Timestamp {
    Timestamp::from_micros(session.updated_at.as_micros() + 60_000_000)
}

fn title(text: &str) -> Title {
    Title::parse(text).unwrap()
}

fn prompt(text: &str) -> SystemPrompt {
    SystemPrompt::parse(text).unwrap()
}

async fn update_replaces_settings_and_keeps_the_message_count(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let messages = chain(
        None,
        vec![
            user_message(session.id, "one"),
            user_message(session.id, "two"),
        ],
    );
    db.repo.append_messages(&alice(), &messages).await.unwrap();

    let changes = SessionChanges {
        title: Some(None),
        system_prompt: Some(Some(prompt("Answer in French."))),
        model: Some(ModelName::parse("bigger-model").unwrap()),
        assistant_id: Some(Some(colloquy_domain::AssistantId::new())),
    };
    let at = a_minute_after(&session);
    let returned = db
        .repo
        .update_session(&alice(), session.id, &changes, at)
        .await
        .unwrap();

    let stored = db.repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(returned, stored, "the session as stored afterwards");
    assert_eq!(stored.title, None, "a cleared title is stored as cleared");
    assert_eq!(stored.system_prompt, Some(prompt("Answer in French.")));
    assert_eq!(stored.model.as_str(), "bigger-model");
    assert_eq!(stored.assistant_id, changes.assistant_id.unwrap());
    assert_eq!(stored.updated_at, at);
    assert_eq!(stored.created_at, session.created_at);
    assert_eq!(stored.message_count, 2, "the count belongs to the store");
}

async fn updating_only_the_prompt_leaves_the_title_written_before(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = untitled_session(&*db.repo).await;
    let titled = SessionChanges {
        title: Some(Some(title("Named by the user"))),
        ..SessionChanges::default()
    };
    db.repo
        .update_session(&alice(), session.id, &titled, session.updated_at)
        .await
        .unwrap();

    let prompted = SessionChanges {
        system_prompt: Some(Some(prompt("Be terse."))),
        ..SessionChanges::default()
    };
    let at = a_minute_after(&session);
    let returned = db
        .repo
        .update_session(&alice(), session.id, &prompted, at)
        .await
        .unwrap();

    assert_eq!(returned.title, Some(title("Named by the user")));
    assert_eq!(returned.system_prompt, Some(prompt("Be terse.")));
    assert_eq!(returned.model, session.model);
    assert_eq!(returned.updated_at, at);
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        returned
    );
}

async fn updating_only_the_title_leaves_the_prompt_written_before(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = untitled_session(&*db.repo).await;
    let prompted = SessionChanges {
        system_prompt: Some(Some(prompt("Be terse."))),
        ..SessionChanges::default()
    };
    db.repo
        .update_session(&alice(), session.id, &prompted, session.updated_at)
        .await
        .unwrap();

    let titled = SessionChanges {
        title: Some(Some(title("Named by the user"))),
        ..SessionChanges::default()
    };
    let returned = db
        .repo
        .update_session(&alice(), session.id, &titled, a_minute_after(&session))
        .await
        .unwrap();

    assert_eq!(returned.title, Some(title("Named by the user")));
    assert_eq!(returned.system_prompt, Some(prompt("Be terse.")));
    assert_eq!(returned.model, session.model);
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        returned
    );
}

async fn some_none_clears_the_title_and_the_prompt(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    assert!(session.title.is_some() && session.system_prompt.is_some());

    let cleared = SessionChanges {
        title: Some(None),
        system_prompt: Some(None),
        model: None,
        assistant_id: None,
    };
    let returned = db
        .repo
        .update_session(&alice(), session.id, &cleared, a_minute_after(&session))
        .await
        .unwrap();

    assert_eq!(returned.title, None);
    assert_eq!(returned.system_prompt, None);
    assert_eq!(returned.model, session.model, "no model given: kept");
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        returned
    );
}

async fn an_empty_change_only_moves_updated_at(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let at = a_minute_after(&session);

    let returned = db
        .repo
        .update_session(&alice(), session.id, &SessionChanges::default(), at)
        .await
        .unwrap();

    assert_eq!(
        returned,
        Session {
            updated_at: at,
            ..session
        }
    );
}

async fn updating_an_unknown_session_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let changes = SessionChanges {
        title: Some(Some(title("Nobody's"))),
        ..SessionChanges::default()
    };
    let error = db
        .repo
        .update_session(&alice(), SessionId::new(), &changes, Timestamp::now())
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");
}

async fn titling_an_unknown_session_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let error = db
        .repo
        .set_title_if_untitled(
            &alice(),
            SessionId::new(),
            &title("Nobody's"),
            Timestamp::now(),
        )
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");
}

async fn an_untitled_session_takes_the_title(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = untitled_session(&*db.repo).await;
    let at = a_minute_after(&session);

    let returned = db
        .repo
        .set_title_if_untitled(&alice(), session.id, &title("Weather in Oslo"), at)
        .await
        .unwrap()
        .expect("the title is set");

    assert_eq!(
        returned,
        Session {
            title: Some(title("Weather in Oslo")),
            updated_at: at,
            ..session
        }
    );
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        returned
    );
}

async fn a_titled_session_keeps_its_title_and_nothing_changes(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    assert_eq!(session.title, Some(title("A title")));

    let outcome = db
        .repo
        .set_title_if_untitled(
            &alice(),
            session.id,
            &title("Generated"),
            a_minute_after(&session),
        )
        .await
        .unwrap();

    assert_eq!(outcome, None);
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session,
        "neither the title nor updated_at moved"
    );
}

async fn stored_messages_of(db: &TestDb, session: SessionId) -> i64 {
    db.integer(
        "SELECT count(*) AS value FROM messages WHERE session_id = $1",
        &session.to_string(),
    )
    .await
}

async fn deleting_a_session_deletes_its_messages_and_nothing_else(backend: Backend) {
    let db = TestDb::new(backend).await;
    let doomed = stored_session(&*db.repo).await;
    let kept = stored_session(&*db.repo).await;
    db.repo
        .append_messages(
            &alice(),
            &[user_message(doomed.id, "a"), user_message(doomed.id, "b")],
        )
        .await
        .unwrap();
    db.repo
        .append_messages(&alice(), &[user_message(kept.id, "c")])
        .await
        .unwrap();

    db.repo.delete_session(&alice(), doomed.id).await.unwrap();

    assert!(matches!(
        db.repo.get_session(&alice(), doomed.id).await,
        Err(RepoError::NotFound)
    ));
    assert!(matches!(
        db.repo.list_messages(&alice(), doomed.id, 10, None).await,
        Err(RepoError::NotFound)
    ));
    assert_eq!(
        stored_messages_of(&db, doomed.id).await,
        0,
        "the messages went with the session"
    );
    assert_eq!(stored_messages_of(&db, kept.id).await, 1);
    assert_eq!(
        db.repo
            .get_session(&alice(), kept.id)
            .await
            .unwrap()
            .message_count,
        1
    );
}

async fn deleting_an_unknown_session_is_not_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    db.repo.delete_session(&alice(), session.id).await.unwrap();

    let error = db
        .repo
        .delete_session(&alice(), session.id)
        .await
        .unwrap_err();
    assert!(matches!(error, RepoError::NotFound), "{error:?}");
}

on_both_backends! {
    a_created_session_reads_back_whole,
    a_session_without_title_or_prompt_reads_back_without_them,
    message_count_starts_at_zero_whatever_the_caller_says,
    an_unknown_session_is_not_found,
    creating_the_same_session_twice_fails_and_keeps_the_first,
    sessions_list_newest_first_in_pages,
    has_more_is_exact_at_the_page_boundary,
    the_session_cursor_need_not_exist,
    an_empty_store_lists_nothing,
    update_replaces_settings_and_keeps_the_message_count,
    updating_only_the_prompt_leaves_the_title_written_before,
    updating_only_the_title_leaves_the_prompt_written_before,
    some_none_clears_the_title_and_the_prompt,
    an_empty_change_only_moves_updated_at,
    updating_an_unknown_session_is_not_found,
    titling_an_unknown_session_is_not_found,
    an_untitled_session_takes_the_title,
    a_titled_session_keeps_its_title_and_nothing_changes,
    deleting_a_session_deletes_its_messages_and_nothing_else,
    deleting_an_unknown_session_is_not_found,
}
