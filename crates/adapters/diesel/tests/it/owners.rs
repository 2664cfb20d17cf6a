//! Every session belongs to a principal: another principal finds nothing of
//! it, exactly as if it did not exist, and changes nothing of it.

use colloquy_diesel::SqliteRepository;
use colloquy_domain::{MessageStatus, Principal, Session, SessionId, Timestamp, Title};
use colloquy_ports::{ChatRepository, RepoError, SessionChanges};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::BigInt;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness as _};

use crate::support::{
    alice, all_messages, bob, chain, new_session, on_both_backends, stored_session,
    streaming_reply, untitled_session, user_message, Backend, Store, TestDb,
};

/// The same migrations the repository embeds, so that a test can stop
/// between them.
const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../../migrations/sqlite");

fn assert_not_found<T: std::fmt::Debug>(outcome: Result<T, RepoError>) {
    assert!(
        matches!(outcome, Err(RepoError::NotFound)),
        "expected NotFound, got {outcome:?}"
    );
}

/// A session of `owner`'s, stored.
async fn session_of(repo: &dyn Store, owner: Principal) -> Session {
    let mut session = new_session();
    session.owner = owner;
    repo.create_session(&session).await.unwrap();
    session
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    count: i64,
}

/// One of alice's sessions holding a question and a reply still streaming,
/// as stored.
async fn alices_exchange(db: &TestDb) -> (Session, Vec<colloquy_domain::Message>) {
    let session = stored_session(&*db.repo).await;
    let messages = chain(
        None,
        vec![
            user_message(session.id, "mine"),
            streaming_reply(session.id),
        ],
    );
    db.repo.append_messages(&alice(), &messages).await.unwrap();
    let session = db.repo.get_session(&alice(), session.id).await.unwrap();
    (session, messages)
}

async fn a_session_is_stored_with_its_owner(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = session_of(&*db.repo, bob()).await;
    let stored = db.repo.get_session(&bob(), session.id).await.unwrap();
    assert_eq!(stored, session);
    assert_eq!(stored.owner, bob());
}

async fn another_principal_cannot_get_a_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;

    assert_not_found(db.repo.get_session(&bob(), session.id).await);
    // Names are compared byte for byte, and `anonymous` is no master key.
    for stranger in [
        Principal::parse("Alice").unwrap(),
        Principal::parse("alice ").unwrap(),
        Principal::anonymous(),
    ] {
        assert_not_found(db.repo.get_session(&stranger, session.id).await);
    }
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session
    );
}

async fn a_listing_holds_only_the_principals_own_sessions(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Interleaved, so that each principal's sessions sit between the other's.
    let mut alices = Vec::new();
    let mut bobs = Vec::new();
    for _ in 0..3 {
        alices.push(session_of(&*db.repo, alice()).await.id);
        bobs.push(session_of(&*db.repo, bob()).await.id);
    }
    let ids = |page: &colloquy_ports::Page<Session>| -> Vec<SessionId> {
        page.items.iter().map(|session| session.id).collect()
    };

    let for_bob = db.repo.list_sessions(&bob(), 10, None).await.unwrap();
    assert_eq!(ids(&for_bob), [bobs[2], bobs[1], bobs[0]]);
    assert!(!for_bob.has_more);
    let for_alice = db.repo.list_sessions(&alice(), 10, None).await.unwrap();
    assert_eq!(ids(&for_alice), [alices[2], alices[1], alices[0]]);

    // `has_more` counts the principal's own sessions only.
    let first = db.repo.list_sessions(&bob(), 2, None).await.unwrap();
    assert_eq!(ids(&first), [bobs[2], bobs[1]]);
    assert!(first.has_more);
    let last = db
        .repo
        .list_sessions(&bob(), 2, Some(bobs[1]))
        .await
        .unwrap();
    assert_eq!(ids(&last), [bobs[0]]);
    assert!(!last.has_more, "alice's older session is not more for bob");

    // A cursor naming alice's session is only a place in the order for bob.
    let after_alices = db
        .repo
        .list_sessions(&bob(), 10, Some(alices[2]))
        .await
        .unwrap();
    assert_eq!(ids(&after_alices), [bobs[1], bobs[0]]);
    let after_alices_oldest = db
        .repo
        .list_sessions(&bob(), 10, Some(alices[0]))
        .await
        .unwrap();
    assert!(after_alices_oldest.items.is_empty() && !after_alices_oldest.has_more);

    let nobody = Principal::parse("carol").unwrap();
    let empty = db.repo.list_sessions(&nobody, 10, None).await.unwrap();
    assert!(empty.items.is_empty() && !empty.has_more);
}

async fn another_principal_cannot_update_a_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let changes = SessionChanges {
        title: Some(Some(Title::parse("Bob's now").unwrap())),
        system_prompt: Some(None),
        model: None,
        assistant_id: Some(Some(colloquy_domain::AssistantId::new())),
    };

    assert_not_found(
        db.repo
            .update_session(&bob(), session.id, &changes, Timestamp::now())
            .await,
    );
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session,
        "neither the fields nor updated_at moved"
    );
}

async fn another_principal_cannot_title_a_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let untitled = untitled_session(&*db.repo).await;
    let titled = stored_session(&*db.repo).await;
    let title = Title::parse("Bob's title").unwrap();

    // Not `Ok(None)` for the titled one either: that would tell bob it exists.
    for session in [&untitled, &titled] {
        assert_not_found(
            db.repo
                .set_title_if_untitled(&bob(), session.id, &title, Timestamp::now())
                .await,
        );
        assert_eq!(
            &db.repo.get_session(&alice(), session.id).await.unwrap(),
            session
        );
    }
}

async fn another_principal_cannot_delete_a_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (session, messages) = alices_exchange(&db).await;

    assert_not_found(db.repo.delete_session(&bob(), session.id).await);
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session
    );
    assert_eq!(all_messages(&*db.repo, session.id, 10).await, messages);
    db.repo.delete_session(&alice(), session.id).await.unwrap();
}

async fn another_principal_cannot_append_to_a_session(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (session, messages) = alices_exchange(&db).await;
    let intruder = user_message(session.id, "bob was here");

    assert_not_found(
        db.repo
            .append_messages(&bob(), std::slice::from_ref(&intruder))
            .await,
    );
    assert_eq!(
        db.repo.get_session(&alice(), session.id).await.unwrap(),
        session,
        "neither the count nor updated_at moved"
    );
    assert_eq!(all_messages(&*db.repo, session.id, 10).await, messages);
    let stored = db
        .integer(
            "SELECT count(*) AS value FROM messages WHERE id = $1",
            &intruder.id.to_string(),
        )
        .await;
    assert_eq!(stored, 0, "nothing was inserted");
}

async fn another_principal_cannot_update_a_message(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (session, messages) = alices_exchange(&db).await;
    let mut hijacked = messages[1].clone();
    hijacked.content = "words put in alice's mouth".to_owned();
    hijacked.finish(MessageStatus::Complete, None);

    assert_not_found(db.repo.update_message(&bob(), &hijacked).await);
    // Naming one of bob's own sessions does not reach alice's message either.
    let bobs = session_of(&*db.repo, bob()).await;
    let mut moved = hijacked.clone();
    moved.session_id = bobs.id;
    assert_not_found(db.repo.update_message(&bob(), &moved).await);

    assert_eq!(all_messages(&*db.repo, session.id, 10).await, messages);
    db.repo.update_message(&alice(), &hijacked).await.unwrap();
    assert_eq!(
        all_messages(&*db.repo, session.id, 10).await[1],
        hijacked,
        "the owner still can"
    );
}

async fn another_principal_cannot_read_a_sessions_messages(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (session, messages) = alices_exchange(&db).await;

    assert_not_found(db.repo.list_messages(&bob(), session.id, 10, None).await);
    assert_not_found(
        db.repo
            .list_messages(&bob(), session.id, 10, Some(messages[0].id))
            .await,
    );
    assert_not_found(db.repo.recent_messages(&bob(), session.id, None, 10).await);
    assert_eq!(
        db.repo
            .recent_messages(&alice(), session.id, None, 10)
            .await
            .unwrap(),
        messages
    );
}

fn owner_columns(connection: &mut SqliteConnection) -> i64 {
    diesel::sql_query(
        "SELECT count(*) AS count FROM pragma_table_info('sessions') WHERE name = 'owner'",
    )
    .get_result::<Count>(connection)
    .unwrap()
    .count
}

/// A database from before owners, holding a session and its messages, is
/// migrated the way a server upgrade migrates it: its history becomes the
/// anonymous principal's, and nothing else changes.
/// SQLite only: PostgreSQL's schema was made with owners from the start.
#[tokio::test]
async fn sessions_stored_before_owners_belong_to_anonymous() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.db");
    let session = SessionId::new();
    let question = colloquy_domain::MessageId::new();
    let answer = colloquy_domain::MessageId::new();
    {
        let mut old = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
        let first = old.run_next_migration(MIGRATIONS).unwrap().to_string();
        assert_eq!(first, "20261123000000", "the first migration only");
        assert_eq!(owner_columns(&mut old), 0, "the schema before owners");
        old.batch_execute(&format!(
            "INSERT INTO sessions (id, title, model, created_at, updated_at, message_count)
                 VALUES ('{session}', 'Old talk', 'old-model', 1, 2, 2);
             INSERT INTO messages (id, session_id, role, content, status, created_at)
                 VALUES ('{question}', '{session}', 'user', 'Still there?', 'complete', 1),
                        ('{answer}', '{session}', 'assistant', 'Yes.', 'complete', 2);"
        ))
        .unwrap();
    }

    let applied = colloquy_diesel::migrate(path.to_str().unwrap()).unwrap();
    assert_eq!(
        applied.first().map(String::as_str),
        Some("2026-12-01-000000_session_owners"),
        "{applied:?}"
    );

    let repo = SqliteRepository::connect(path.to_str().unwrap(), 2).unwrap();
    let anonymous = Principal::anonymous();
    let stored = repo.get_session(&anonymous, session).await.unwrap();
    assert_eq!(stored.owner, anonymous);
    assert_eq!(stored.title, Some(Title::parse("Old talk").unwrap()));
    assert_eq!(stored.message_count, 2);
    assert_eq!(
        stored.updated_at,
        Timestamp::from_micros(2),
        "not touched by the migration"
    );
    let listed = repo.list_sessions(&anonymous, 10, None).await.unwrap();
    assert_eq!(listed.items, [stored]);
    let history = repo
        .list_messages(&anonymous, session, 10, None)
        .await
        .unwrap();
    let read: Vec<_> = history
        .items
        .iter()
        .map(|message| (message.id, message.content.as_str(), message.status))
        .collect();
    assert_eq!(
        read,
        [
            (question, "Still there?", MessageStatus::Complete),
            (answer, "Yes.", MessageStatus::Complete),
        ]
    );
    assert_not_found(repo.get_session(&alice(), session).await);
}

/// The down migration undoes the up one, and the up one runs again on what
/// it left, so a rollback is not a dead end.
#[test]
fn the_owner_migration_reverts_and_reapplies() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("revert.db");
    colloquy_diesel::migrate(path.to_str().unwrap()).unwrap();
    let mut connection = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    connection
        .batch_execute(&format!(
            "INSERT INTO sessions (id, owner, model, created_at, updated_at)
                 VALUES ('{}', 'alice', 'm', 1, 1)",
            SessionId::new()
        ))
        .unwrap();

    // The migrations that came after this one go first, newest first.
    for expected in [
        "20261204000000",
        "20261203000000",
        "20261202000000",
        "20261201000002",
        "20261201000001",
        "20261201000000",
    ] {
        let reverted = connection
            .revert_last_migration(MIGRATIONS)
            .unwrap()
            .to_string();
        assert_eq!(reverted, expected);
    }
    assert_eq!(owner_columns(&mut connection), 0);
    drop(connection);

    assert_eq!(
        colloquy_diesel::migrate(path.to_str().unwrap()).unwrap(),
        [
            "2026-12-01-000000_session_owners",
            "2026-12-01-000001_api_keys",
            "2026-12-01-000002_daily_usage",
            "2026-12-02-000000_assistants",
            "2026-12-03-000000_branches",
            "2026-12-04-000000_chains"
        ]
    );
    let mut connection = SqliteConnection::establish(path.to_str().unwrap()).unwrap();
    assert_eq!(owner_columns(&mut connection), 1);
}

on_both_backends! {
    a_session_is_stored_with_its_owner,
    another_principal_cannot_get_a_session,
    a_listing_holds_only_the_principals_own_sessions,
    another_principal_cannot_update_a_session,
    another_principal_cannot_title_a_session,
    another_principal_cannot_delete_a_session,
    another_principal_cannot_append_to_a_session,
    another_principal_cannot_update_a_message,
    another_principal_cannot_read_a_sessions_messages,
}
