//! Opening, configuring, migrating and re-opening the database, and waiting
//! for other writers. The SQLite-only tests are about files and pragmas;
//! PostgreSQL's own are in `postgres.rs`.

use std::time::{Duration, Instant};

use colloquy_diesel::{migrate, SqliteRepository};
use colloquy_ports::{ChatRepository, RepoError};

use crate::support::{
    alice, all_messages, finished_reply, new_session, on_both_backends, stored_session,
    user_message, Backend, TestDb, POOL_SIZE,
};

async fn data_survives_reopening_the_database(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let messages = [
        user_message(session.id, "remember me"),
        finished_reply(session.id),
    ];
    db.repo.append_messages(&alice(), &messages).await.unwrap();
    let stored = db.repo.get_session(&alice(), session.id).await.unwrap();

    let reopened = db.reopen().await;
    assert_eq!(
        reopened.get_session(&alice(), session.id).await.unwrap(),
        stored
    );
    assert_eq!(all_messages(&*reopened, session.id, 1).await, messages);
}

async fn ping_answers(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.repo.ping().await.unwrap();
}

async fn a_write_waits_for_another_writer_instead_of_failing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let holder = db.hold_write_lock(Duration::from_millis(400)).await;

    let started = Instant::now();
    db.repo.create_session(&new_session()).await.unwrap();
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "it waited for the lock"
    );
    holder.await.unwrap();
}

/// SQLite's `busy_timeout` and PostgreSQL's `lock_timeout` are both 5 s.
async fn a_lock_held_past_the_timeout_makes_the_store_unavailable(backend: Backend) {
    let db = TestDb::new(backend).await;
    let holder = db.hold_write_lock(Duration::from_millis(6_500)).await;

    let started = Instant::now();
    let error = db.repo.create_session(&new_session()).await.unwrap_err();
    assert!(matches!(error, RepoError::Unavailable(_)), "{error:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(4_500),
        "{:?}",
        started.elapsed()
    );
    // Reads do not need the write lock: WAL, or MVCC, serves them meanwhile.
    assert!(db
        .repo
        .list_sessions(&alice(), 10, None)
        .await
        .unwrap()
        .items
        .is_empty());
    holder.await.unwrap();
}

on_both_backends! {
    data_survives_reopening_the_database,
    ping_answers,
    a_write_waits_for_another_writer_instead_of_failing,
    a_lock_held_past_the_timeout_makes_the_store_unavailable,
}

#[tokio::test]
async fn every_sqlite_connection_runs_with_the_configured_pragmas() {
    let db = TestDb::new(Backend::Sqlite).await;
    let repo = SqliteRepository::connect(db.path().to_str().unwrap(), POOL_SIZE).unwrap();
    // More concurrent calls than connections, so every pooled connection answers.
    let calls = (0..POOL_SIZE * 3).map(|_| {
        let repo = repo.clone();
        tokio::spawn(async move { repo.connection_settings().await })
    });
    for call in calls {
        let settings = call.await.unwrap().unwrap();
        assert_eq!(settings.journal_mode, "wal");
        assert_eq!(settings.synchronous, 1, "NORMAL");
        assert_eq!(settings.busy_timeout, Duration::from_secs(5));
        assert!(settings.foreign_keys);
        assert_eq!(settings.cache_size, -8192);
    }
}

#[test]
fn migrate_applies_each_sqlite_migration_once() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fresh.db");
    let location = format!("sqlite://{}", path.display());

    let applied = migrate(&location).unwrap();
    assert!(!applied.is_empty());
    assert!(applied[0].ends_with("_init"), "{applied:?}");
    assert!(path.exists());
    assert!(migrate(&location).unwrap().is_empty());
}

#[tokio::test]
async fn a_migrated_sqlite_file_serves_a_repository() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("migrated.db");
    migrate(path.to_str().unwrap()).unwrap();

    let repo = SqliteRepository::connect(path.to_str().unwrap(), 2).unwrap();
    assert!(repo.run_migrations().await.unwrap().is_empty());
    let session = new_session();
    repo.create_session(&session).await.unwrap();
    assert_eq!(
        repo.get_session(&alice(), session.id).await.unwrap(),
        session
    );
}

#[tokio::test]
async fn sqlite_locations_may_be_urls_and_missing_directories_are_created() {
    let dir = tempfile::tempdir().unwrap();
    let absolute = dir.path().join("a/b/abs.db");
    let relative_to_root = dir.path().join("rel.db");
    let odd = dir.path().join("with space ?#%.db");
    for (location, file) in [
        (format!("sqlite://{}", absolute.display()), &absolute),
        (
            format!("sqlite:{}", relative_to_root.display()),
            &relative_to_root,
        ),
        (odd.display().to_string(), &odd),
    ] {
        let repo = SqliteRepository::connect(&location, 1).unwrap();
        repo.create_session(&new_session()).await.unwrap();
        assert!(
            file.is_file(),
            "{location} should create {}",
            file.display()
        );
    }
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.contains(&"with space ?#%.db".to_owned()),
        "the name is used as given: {names:?}"
    );
}

#[tokio::test]
async fn an_in_memory_sqlite_database_works_for_tests() {
    let repo = SqliteRepository::connect(":memory:", 4).unwrap();
    let session = stored_session(&repo).await;
    repo.append_messages(&alice(), &[user_message(session.id, "kept")])
        .await
        .unwrap();
    assert_eq!(
        repo.get_session(&alice(), session.id)
            .await
            .unwrap()
            .message_count,
        1
    );
    assert_eq!(
        repo.connection_settings().await.unwrap().journal_mode,
        "memory"
    );
    repo.ping().await.unwrap();
}

#[test]
fn bad_sqlite_locations_and_pool_sizes_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.db");
    assert!(SqliteRepository::connect(path.to_str().unwrap(), 0).is_err());
    assert!(SqliteRepository::connect("sqlite://x.db?mode=rwc", 1).is_err());
    assert!(SqliteRepository::connect("", 1).is_err());
    let not_a_directory = path.join("below-a-file.db");
    std::fs::write(&path, b"").unwrap();
    let error = SqliteRepository::connect(not_a_directory.to_str().unwrap(), 1).unwrap_err();
    assert!(
        format!("{error:#}").contains("below-a-file") || format!("{error:#}").contains("x.db"),
        "{error:#}"
    );
}
