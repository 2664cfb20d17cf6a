//! API keys: stored by hash, found by hash, revoked once, and a last use
//! that only ever moves forwards.

use colloquy_domain::{ApiKeyId, Principal, Timestamp};
use colloquy_ports::ApiKeyRecord;
use diesel::prelude::*;
use diesel::sql_types::Text;

use crate::support::{alice, bob, on_both_backends, Backend, TestDb};

/// A key of `principal`'s whose hash is 32 copies of `fill`.
fn key(principal: Principal, fill: u8, label: Option<&str>) -> ApiKeyRecord {
    ApiKeyRecord {
        id: ApiKeyId::new(),
        principal,
        label: label.map(str::to_owned),
        hash: [fill; 32],
        created_at: Timestamp::now(),
        last_used_at: None,
        revoked_at: None,
    }
}

async fn stored(db: &TestDb, id: ApiKeyId) -> ApiKeyRecord {
    db.repo
        .list_api_keys()
        .await
        .unwrap()
        .into_iter()
        .find(|key| key.id == id)
        .expect("the key is listed")
}

async fn a_key_is_stored_listed_oldest_first_and_found_by_its_hash(backend: Backend) {
    let db = TestDb::new(backend).await;
    let first = key(alice(), 1, Some("laptop"));
    let second = key(bob(), 2, None);
    db.repo.create_api_key(&first).await.unwrap();
    db.repo.create_api_key(&second).await.unwrap();

    assert_eq!(
        db.repo.list_api_keys().await.unwrap(),
        vec![first.clone(), second.clone()]
    );
    assert_eq!(db.repo.find_api_key(&[1; 32]).await.unwrap(), Some(first));
    assert_eq!(db.repo.find_api_key(&[2; 32]).await.unwrap(), Some(second));
    // Survives a restart: it is in the file, not in the pool.
    assert_eq!(db.reopen().await.list_api_keys().await.unwrap().len(), 2);
}

async fn an_unknown_hash_finds_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    assert_eq!(db.repo.find_api_key(&[7; 32]).await.unwrap(), None);
    db.repo
        .create_api_key(&key(alice(), 1, None))
        .await
        .unwrap();
    assert_eq!(db.repo.find_api_key(&[7; 32]).await.unwrap(), None);
    assert!(db.repo.list_api_keys().await.unwrap().len() == 1);
}

async fn two_keys_with_one_hash_cannot_both_be_stored(backend: Backend) {
    let db = TestDb::new(backend).await;
    db.repo
        .create_api_key(&key(alice(), 1, None))
        .await
        .unwrap();
    assert!(db.repo.create_api_key(&key(bob(), 1, None)).await.is_err());
    let found = db.repo.find_api_key(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(found.principal, alice());
}

async fn a_key_is_revoked_once_and_an_unknown_one_not_at_all(backend: Backend) {
    let db = TestDb::new(backend).await;
    let record = key(alice(), 1, None);
    db.repo.create_api_key(&record).await.unwrap();
    let at = Timestamp::from_micros(record.created_at.as_micros() + 1_000);

    assert!(db.repo.revoke_api_key(record.id, at).await.unwrap());
    let revoked = db.repo.find_api_key(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(revoked.revoked_at, Some(at), "found even when revoked");

    let later = Timestamp::from_micros(at.as_micros() + 1_000);
    assert!(!db.repo.revoke_api_key(record.id, later).await.unwrap());
    assert_eq!(
        stored(&db, record.id).await.revoked_at,
        Some(at),
        "the first revocation's time stays"
    );
    assert!(!db
        .repo
        .revoke_api_key(ApiKeyId::new(), later)
        .await
        .unwrap());
}

async fn uses_are_recorded_in_one_batch_and_never_move_backwards(backend: Backend) {
    let db = TestDb::new(backend).await;
    let one = key(alice(), 1, None);
    let two = key(bob(), 2, None);
    let untouched = key(bob(), 3, None);
    for record in [&one, &two, &untouched] {
        db.repo.create_api_key(record).await.unwrap();
    }
    let t = |micros: i64| Timestamp::from_micros(1_800_000_000_000_000 + micros);

    db.repo
        .record_key_use(&[(one.id, t(10)), (two.id, t(20)), (ApiKeyId::new(), t(30))])
        .await
        .expect("an unknown id is skipped, not an error");
    assert_eq!(stored(&db, one.id).await.last_used_at, Some(t(10)));
    assert_eq!(stored(&db, two.id).await.last_used_at, Some(t(20)));
    assert_eq!(stored(&db, untouched.id).await.last_used_at, None);

    // A late batch from another replica: older for `one`, newer for `two`.
    db.repo
        .record_key_use(&[(one.id, t(5)), (two.id, t(25)), (two.id, t(21))])
        .await
        .unwrap();
    assert_eq!(stored(&db, one.id).await.last_used_at, Some(t(10)));
    assert_eq!(stored(&db, two.id).await.last_used_at, Some(t(25)));

    db.repo.record_key_use(&[]).await.unwrap();
}

/// Whether a lookup by hash can be served by an index. PostgreSQL is told
/// not to scan the table where it has any other way, since an empty table is
/// cheaper to scan than to search: what matters is that the index exists.
async fn a_lookup_by_hash_uses_an_index(backend: Backend) {
    let db = TestDb::new(backend).await;
    let lookup = format!(
        "SELECT id FROM api_keys WHERE key_hash = {}",
        db.bytes_literal(&[0; 32])
    );
    let plan = match backend {
        Backend::Sqlite => {
            #[derive(QueryableByName)]
            struct Step {
                #[diesel(sql_type = Text)]
                detail: String,
            }
            let steps: Vec<Step> = diesel::sql_query(format!("EXPLAIN QUERY PLAN {lookup}"))
                .load(&mut db.sqlite())
                .unwrap();
            steps
                .into_iter()
                .map(|step| step.detail)
                .collect::<Vec<_>>()
        }
        Backend::Postgres => {
            let client = db.pg_client().await;
            client
                .batch_execute("SET enable_seqscan = off")
                .await
                .unwrap();
            client
                .query(&format!("EXPLAIN {lookup}"), &[])
                .await
                .unwrap()
                .iter()
                .map(|row| row.get::<_, String>(0))
                .collect()
        }
    };
    let by_index = match backend {
        Backend::Sqlite => "USING INDEX",
        Backend::Postgres => "Index Scan using api_keys_key_hash_key",
    };
    assert!(plan.iter().any(|step| step.contains(by_index)), "{plan:?}");
}

async fn the_table_refuses_rows_no_key_could_make(backend: Backend) {
    let db = TestDb::new(backend).await;
    let insert = |principal: &str, hash: &[u8]| {
        format!(
            "INSERT INTO api_keys (id, principal, key_hash, created_at) VALUES ('{}', '{principal}', {}, 0)",
            ApiKeyId::new(),
            db.bytes_literal(hash)
        )
    };
    db.execute(&insert("alice", &[0; 32])).await;
    assert!(
        db.try_execute(&insert("", &[1; 32])).await.is_err(),
        "an empty principal"
    );
    assert!(
        db.try_execute(&insert("alice", &[2; 31])).await.is_err(),
        "a short hash"
    );
}

/// The down migration drops the table, and the up one makes it again
/// (SQLite: PostgreSQL's one migration is reverted in `postgres.rs`).
#[tokio::test]
async fn the_api_keys_migration_reverts_and_reapplies() {
    use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness as _};
    const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../../migrations/sqlite");

    let db = TestDb::new(Backend::Sqlite).await;
    let mut connection = db.sqlite();
    // The migrations that came after this one go first, newest first.
    for expected in [
        "20261204000000",
        "20261203000000",
        "20261202000000",
        "20261201000002",
        "20261201000001",
    ] {
        let reverted = connection
            .revert_last_migration(MIGRATIONS)
            .unwrap()
            .to_string();
        assert_eq!(reverted, expected);
    }
    assert!(diesel::sql_query("SELECT id FROM api_keys")
        .execute(&mut connection)
        .is_err());
    drop(connection);
    assert_eq!(
        colloquy_diesel::migrate(db.path().to_str().unwrap()).unwrap(),
        [
            "2026-12-01-000001_api_keys",
            "2026-12-01-000002_daily_usage",
            "2026-12-02-000000_assistants",
            "2026-12-03-000000_branches",
            "2026-12-04-000000_chains"
        ]
    );
}

on_both_backends! {
    a_key_is_stored_listed_oldest_first_and_found_by_its_hash,
    an_unknown_hash_finds_nothing,
    two_keys_with_one_hash_cannot_both_be_stored,
    a_key_is_revoked_once_and_an_unknown_one_not_at_all,
    uses_are_recorded_in_one_batch_and_never_move_backwards,
    a_lookup_by_hash_uses_an_index,
    the_table_refuses_rows_no_key_could_make,
}
