//! What only PostgreSQL has: a server that can go away and come back, many
//! processes migrating one database, and a schema that must stay SQLite's.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use colloquy_diesel::testing::TestDatabase;
use colloquy_diesel::{migrate_postgres, PostgresRepository};
use colloquy_domain::{Message, Timestamp, Title, Usage, UtcDay};
use colloquy_ports::{ChatRepository, RepoError, SessionChanges, UsageLedger};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness as _};

use crate::support::{
    alice, new_session, stored_session, streaming_reply, untitled_session, user_message, Backend,
    TestDb, POOL_SIZE,
};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../../migrations/postgres");
const INIT: &str = "2026-12-01-220000_init";
const ASSISTANTS: &str = "2026-12-02-000000_assistants";
const BRANCHES: &str = "2026-12-03-000000_branches";
const CHAINS: &str = "2026-12-04-000000_chains";

#[tokio::test]
async fn migrate_applies_each_migration_once() {
    let database = TestDatabase::create().await;
    assert_eq!(
        migrate_postgres(database.url()).await.unwrap(),
        [INIT, ASSISTANTS, BRANCHES, CHAINS]
    );
    assert!(migrate_postgres(database.url()).await.unwrap().is_empty());

    let repo = PostgresRepository::connect(database.url(), 2)
        .await
        .unwrap();
    assert!(repo.run_migrations().await.unwrap().is_empty());
}

/// Replicas starting together on a fresh database: one migrates, the others
/// wait for it and find nothing to do; none fails on a table the first made.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn replicas_migrating_a_fresh_database_at_once_apply_each_migration_once() {
    let database = TestDatabase::create().await;
    let url = database.url().to_owned();
    let replicas: Vec<_> = (0..4)
        .map(|_| {
            let url = url.clone();
            tokio::spawn(async move { migrate_postgres(&url).await })
        })
        .collect();
    let mut applied = Vec::new();
    for replica in replicas {
        applied.extend(replica.await.unwrap().expect("no replica fails"));
    }
    assert_eq!(
        applied,
        [INIT, ASSISTANTS, BRANCHES, CHAINS],
        "exactly one replica migrated"
    );
}

/// The down migrations undo the up ones, newest first, and the up ones run
/// again on what they left, so a rollback is not a dead end.
#[tokio::test]
async fn the_schema_reverts_and_reapplies() {
    let db = TestDb::new(Backend::Postgres).await;
    let session = stored_session(&*db.repo).await;
    let url = db.postgres().url().to_owned();
    let reverted = tokio::task::spawn_blocking(move || {
        let mut connection = AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
        (0..4)
            .map(|_| {
                connection
                    .revert_last_migration(MIGRATIONS)
                    .unwrap()
                    .to_string()
            })
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    assert_eq!(
        reverted,
        [
            "20261204000000",
            "20261203000000",
            "20261202000000",
            "20261201220000"
        ]
    );
    let error = db.try_execute("SELECT id FROM sessions").await.unwrap_err();
    assert!(error.contains("does not exist"), "{error}");

    assert_eq!(
        migrate_postgres(db.postgres().url()).await.unwrap(),
        [INIT, ASSISTANTS, BRANCHES, CHAINS]
    );
    assert!(matches!(
        db.repo.get_session(&alice(), session.id).await,
        Err(RepoError::NotFound)
    ));
    db.repo.create_session(&new_session()).await.unwrap();
}

/// A column as both backends can describe it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Column {
    table: String,
    name: String,
    /// `text`, `integer` or `bytes`.
    kind: String,
    not_null: bool,
}

#[derive(QueryableByName)]
struct SqliteColumn {
    #[diesel(sql_type = Text)]
    name: String,
    #[diesel(sql_type = Text)]
    kind: String,
    #[diesel(sql_type = BigInt)]
    not_null: i64,
    #[diesel(sql_type = BigInt)]
    primary_key: i64,
}

#[derive(QueryableByName)]
struct IndexName {
    #[diesel(sql_type = Text)]
    name: String,
}

const TABLES: [&str; 5] = [
    "sessions",
    "messages",
    "api_keys",
    "daily_usage",
    "assistants",
];

/// The indexes the migrations name; the rest back primary keys and UNIQUEs,
/// whose names differ between the two by design.
const NAMED_INDEXES: [&str; 9] = [
    "sessions_owner_id",
    "messages_session_id_id",
    "messages_streaming",
    "messages_session_parent_id",
    "messages_session_depth",
    "messages_chain",
    "messages_unchained",
    "assistants_owner_name",
    "assistants_owner_id",
];

/// What each backend keeps for full-text search, its own way: SQLite's FTS5
/// table, PostgreSQL's generated column and its GIN index, of this name.
const SEARCH: &str = "messages_search";

async fn sqlite_schema() -> (BTreeSet<Column>, BTreeSet<String>) {
    let db = TestDb::new(Backend::Sqlite).await;
    let mut connection = db.sqlite();
    let mut columns = BTreeSet::new();
    for table in TABLES {
        let rows: Vec<SqliteColumn> = diesel::sql_query(format!(
            "SELECT name, type AS kind, \"notnull\" AS not_null, pk AS primary_key \
             FROM pragma_table_info('{table}')"
        ))
        .load(&mut connection)
        .unwrap();
        columns.extend(rows.into_iter().map(|row| {
            Column {
                table: table.to_owned(),
                name: row.name,
                kind: match row.kind.as_str() {
                    "TEXT" => "text",
                    "BIGINT" | "INTEGER" => "integer",
                    "BLOB" => "bytes",
                    other => panic!("an unexpected SQLite type {other}"),
                }
                .to_owned(),
                // A primary key column of a WITHOUT ROWID table is NOT NULL
                // whatever its declaration says.
                not_null: row.not_null == 1 || row.primary_key > 0,
            }
        }));
    }
    let indexes: Vec<IndexName> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'index' AND name NOT LIKE 'sqlite_autoindex%'",
    )
    .load(&mut connection)
    .unwrap();
    let search: Vec<IndexName> = diesel::sql_query(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND sql LIKE '%USING fts5%'",
    )
    .load(&mut connection)
    .unwrap();
    assert_eq!(
        search
            .iter()
            .map(|table| table.name.as_str())
            .collect::<Vec<_>>(),
        [SEARCH]
    );
    (
        columns,
        indexes.into_iter().map(|index| index.name).collect(),
    )
}

async fn postgres_schema() -> (BTreeSet<Column>, BTreeSet<String>) {
    let db = TestDb::new(Backend::Postgres).await;
    let client = db.pg_client().await;
    let columns = client
        .query(
            "SELECT table_name::text, column_name::text, data_type::text, is_nullable::text \
             FROM information_schema.columns WHERE table_schema = 'public' \
             AND table_name = ANY($1)",
            &[&TABLES.to_vec()],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| Column {
            table: row.get(0),
            name: row.get(1),
            kind: match row.get::<_, String>(2).as_str() {
                "text" => "text",
                "bigint" => "integer",
                "bytea" => "bytes",
                "tsvector" => "words",
                other => panic!("an unexpected PostgreSQL type {other}"),
            }
            .to_owned(),
            not_null: row.get::<_, String>(3) == "NO",
        })
        .collect();
    let mut columns: BTreeSet<Column> = columns;
    let search_vector = Column {
        table: "messages".to_owned(),
        name: "search_vector".to_owned(),
        kind: "words".to_owned(),
        not_null: false,
    };
    assert!(columns.remove(&search_vector), "{columns:#?}");
    let mut indexes: BTreeSet<String> = client
        .query(
            "SELECT indexname::text FROM pg_indexes WHERE schemaname = 'public' \
             AND indexname NOT LIKE '%_pkey' AND indexname NOT LIKE '%_key'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    assert!(indexes.remove(SEARCH), "{indexes:#?}");
    (columns, indexes)
}

/// The two migration histories must end in the same logical schema: the
/// same tables, columns, column kinds, NULL rules and named indexes, since
/// one set of Diesel row types reads and writes both. Only what search
/// keeps differs, as each backend does it.
#[tokio::test]
async fn the_schema_is_sqlites_table_for_table_and_column_for_column() {
    let (sqlite_columns, sqlite_indexes) = sqlite_schema().await;
    let (postgres_columns, postgres_indexes) = postgres_schema().await;
    assert_eq!(sqlite_columns.len(), 48, "{sqlite_columns:#?}");
    assert_eq!(
        sqlite_columns
            .symmetric_difference(&postgres_columns)
            .collect::<Vec<_>>(),
        Vec::<&Column>::new(),
        "columns that only one backend has, or has differently"
    );
    let named: BTreeSet<String> = NAMED_INDEXES
        .iter()
        .map(|name| (*name).to_owned())
        .collect();
    assert_eq!(sqlite_indexes, named);
    assert_eq!(postgres_indexes, named);
}

/// Opens a few pooled connections, so that there are some to lose.
async fn warm_up(repo: &PostgresRepository) {
    let calls: Vec<_> = (0..POOL_SIZE)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move { repo.ping().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
}

/// A restart, a failover or `pg_terminate_backend` closes every connection
/// the pool holds: the next call of every kind succeeds at once, because the
/// pool checks a connection before handing it out and opens a new one in
/// place of a dead one. Writes that are never made twice (an append, an
/// addition) succeed too: they never meet the dead connection.
#[tokio::test]
async fn connections_the_server_closed_are_replaced_before_the_next_call() {
    let database = TestDatabase::create().await;
    let repo = PostgresRepository::connect(database.url(), POOL_SIZE as usize)
        .await
        .unwrap();
    let session = new_session();
    repo.create_session(&session).await.unwrap();

    let mut last = None;
    for round in 0..3 {
        warm_up(&repo).await;
        let terminated = database.terminate_connections().await;
        assert!(terminated >= 1, "round {round}: nothing to terminate");

        repo.get_session(&alice(), session.id).await.unwrap();
        let next = Message {
            parent_id: last,
            ..user_message(session.id, "still here?")
        };
        last = Some(next.id);
        repo.append_messages(&alice(), &[next]).await.unwrap();
        repo.add_usage(
            &alice(),
            UtcDay::from_days_since_epoch(20_788),
            Usage {
                prompt_tokens: 1,
                completion_tokens: 1,
            },
        )
        .await
        .unwrap();
        repo.ping().await.unwrap();
    }
    assert_eq!(
        repo.get_session(&alice(), session.id)
            .await
            .unwrap()
            .message_count,
        3
    );
}

/// Waits until one of the repository's connections is blocked on a lock,
/// and terminates it: a connection lost in the middle of a statement.
async fn terminate_the_blocked_call(db: &TestDb) {
    let admin = db.pg_client().await;
    let started = Instant::now();
    loop {
        let terminated: i64 = admin
            .query_one(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
                 WHERE datname = current_database() AND application_name = 'colloquy' \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if terminated > 0 {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "the call never waited for the lock"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// A call whose connection dies while its statement runs is made again on
/// a new connection when repeating it cannot change the outcome (here an
/// update that sets a title), and also when it could but the server's answer
/// shows the first attempt took no effect: an append whose transaction never
/// reached COMMIT, a conditional title the server refused to finish. Each
/// is stored exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_whose_connection_dies_midway_is_repeated_when_that_is_safe() {
    let db = TestDb::new(Backend::Postgres).await;
    let session = stored_session(&*db.repo).await;
    let renamed = SessionChanges {
        title: Some(Some(Title::parse("Renamed").unwrap())),
        ..SessionChanges::default()
    };

    let holder = db.hold_write_lock(Duration::from_millis(600)).await;
    let update = {
        let (repo, renamed) = (db.repo.clone(), renamed.clone());
        tokio::spawn(async move {
            repo.update_session(&alice(), session.id, &renamed, Timestamp::now())
                .await
        })
    };
    terminate_the_blocked_call(&db).await;
    holder.await.unwrap();
    let updated = update.await.unwrap().expect("the update was made again");
    assert_eq!(updated.title, renamed.title.clone().unwrap());

    let holder = db.hold_write_lock(Duration::from_millis(600)).await;
    let append = {
        let repo = db.repo.clone();
        tokio::spawn(async move {
            repo.append_messages(&alice(), &[user_message(session.id, "once")])
                .await
        })
    };
    terminate_the_blocked_call(&db).await;
    holder.await.unwrap();
    append
        .await
        .unwrap()
        .expect("an append that never committed was made again");
    let stored = db.repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(stored.message_count, 1, "the append was stored once");
    let history = db
        .repo
        .list_messages(&alice(), session.id, 10, None)
        .await
        .unwrap();
    assert_eq!(history.items.len(), 1, "{:?}", history.items);

    let untitled = untitled_session(&*db.repo).await;
    let holder = db.hold_write_lock(Duration::from_millis(600)).await;
    let titling = {
        let repo = db.repo.clone();
        tokio::spawn(async move {
            repo.set_title_if_untitled(
                &alice(),
                untitled.id,
                &Title::parse("Named once").unwrap(),
                Timestamp::now(),
            )
            .await
        })
    };
    terminate_the_blocked_call(&db).await;
    holder.await.unwrap();
    let titled = titling
        .await
        .unwrap()
        .expect("a title the server never set was set again")
        .expect("and this call is the one that set it");
    assert_eq!(titled.title.unwrap().as_str(), "Named once");
}

/// Connections killed again and again while calls run: a call may fail,
/// but only as `Unavailable` (a 503 with `Retry-After`), never as `Unknown`
/// (a 500), and once the killing stops every call succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn connections_killed_during_calls_never_fail_as_unknown() {
    let database = Arc::new(TestDatabase::create().await);
    let repo = PostgresRepository::connect(database.url(), POOL_SIZE as usize)
        .await
        .unwrap();
    let session = new_session();
    repo.create_session(&session).await.unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let terminated = Arc::new(AtomicU64::new(0));

    let killer = {
        let (database, stop, terminated) = (database.clone(), stop.clone(), terminated.clone());
        tokio::spawn(async move {
            while !stop.load(Ordering::SeqCst) {
                let killed = database.terminate_connections().await;
                terminated.fetch_add(killed, Ordering::SeqCst);
                tokio::time::sleep(Duration::from_millis(15)).await;
            }
        })
    };
    let callers: Vec<_> = (0..4)
        .map(|_| {
            let repo = repo.clone();
            tokio::spawn(async move {
                let (mut succeeded, mut unavailable) = (0_u32, 0_u32);
                let started = Instant::now();
                while started.elapsed() < Duration::from_millis(1_500) {
                    let outcomes = [
                        repo.get_session(&alice(), session.id).await.map(drop),
                        repo.list_messages(&alice(), session.id, 10, None)
                            .await
                            .map(drop),
                        repo.append_messages(&alice(), &[streaming_reply(session.id)])
                            .await,
                    ];
                    for outcome in outcomes {
                        match outcome {
                            Ok(()) => succeeded += 1,
                            Err(RepoError::Unavailable(_)) => unavailable += 1,
                            Err(other) => panic!("a lost connection became {other:?}"),
                        }
                    }
                }
                (succeeded, unavailable)
            })
        })
        .collect();
    let mut succeeded = 0;
    for caller in callers {
        succeeded += caller.await.unwrap().0;
    }
    stop.store(true, Ordering::SeqCst);
    killer.await.unwrap();

    assert!(
        terminated.load(Ordering::SeqCst) > 0,
        "the test killed no connection"
    );
    assert!(succeeded > 0, "no call got through between the kills");
    repo.get_session(&alice(), session.id).await.unwrap();
    repo.append_messages(&alice(), &[user_message(session.id, "after")])
        .await
        .unwrap();
    assert!(
        repo.interrupt_streaming().await.unwrap() > 0,
        "the replies appended meanwhile are there to interrupt"
    );
}

/// A database dropped under a running server: connections are refused from
/// then on, and every call says the store is unavailable, none crashes.
#[tokio::test]
async fn a_database_that_went_away_makes_the_store_unavailable() {
    let database = TestDatabase::create().await;
    let repo = PostgresRepository::connect(database.url(), POOL_SIZE as usize)
        .await
        .unwrap();
    let session = stored_session(&repo).await;
    database.destroy().await;

    let started = Instant::now();
    for outcome in [
        repo.get_session(&alice(), session.id).await.map(drop),
        repo.append_messages(&alice(), &[user_message(session.id, "hello?")])
            .await,
        repo.ping().await,
    ] {
        assert!(
            matches!(outcome, Err(RepoError::Unavailable(_))),
            "{outcome:?}"
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "refused connections are reported at once: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn a_server_that_cannot_be_reached_fails_connect_with_the_reason() {
    // Nothing listens on port 1.
    let started = Instant::now();
    let error = PostgresRepository::connect("postgres://colloquy:hunter2@127.0.0.1:1/chat", 4)
        .await
        .unwrap_err();
    let text = format!("{error:#}");
    assert!(
        text.contains("postgres://colloquy@127.0.0.1:1/chat"),
        "{text}"
    );
    assert!(
        !text.contains("hunter2"),
        "the password stays secret: {text}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn bad_urls_and_pool_sizes_are_refused_before_connecting() {
    let database = TestDatabase::create().await;
    assert!(PostgresRepository::connect(database.url(), 0)
        .await
        .is_err());
    assert!(PostgresRepository::connect("sqlite://colloquy.db", 4)
        .await
        .is_err());
    let separator = if database.url().contains('?') {
        '&'
    } else {
        '?'
    };
    let asks_for_tls = format!("{}{separator}sslmode=require", database.url());
    let error = PostgresRepository::connect(&asks_for_tls, 4)
        .await
        .unwrap_err();
    assert!(format!("{error:#}").contains("asks for TLS"), "{error:#}");
    let tables = database
        .client()
        .await
        .query_one(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, i64>(0);
    assert_eq!(tables, 0, "a refused pool size or URL migrated nothing");
}

#[tokio::test]
async fn the_repository_shows_no_password() {
    let database = TestDatabase::create().await;
    let (scheme, rest) = database.url().split_once("://").unwrap();
    let (user_info, host) = rest.split_once('@').expect("the test URL names a user");
    // Trust authentication ignores a password, so any will do when the test
    // server's URL has none.
    let (url, password) = match user_info.split_once(':') {
        Some((_, password)) => (database.url().to_owned(), password.to_owned()),
        None => (
            format!("{scheme}://{user_info}:hunter2@{host}"),
            "hunter2".to_owned(),
        ),
    };
    let repo = PostgresRepository::connect(&url, 2).await.unwrap();
    let shown = format!("{repo:?}");
    assert!(!shown.contains(&password), "{shown}");
    assert!(shown.contains(database.name()), "{shown}");
}
