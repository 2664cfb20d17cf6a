//! API keys: stored by hash, found by hash, revoked once, and a last use
//! that only ever moves forwards.

use colloquy_domain::{ApiKeyId, Principal, Timestamp};
use colloquy_ports::{ApiKeyRecord, ApiKeyStore};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Binary, Text};

use crate::support::{alice, bob, TestDb};

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

#[tokio::test]
async fn a_key_is_stored_listed_oldest_first_and_found_by_its_hash() {
    let db = TestDb::new();
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
    assert_eq!(db.reopen().list_api_keys().await.unwrap().len(), 2);
}

#[tokio::test]
async fn an_unknown_hash_finds_nothing() {
    let db = TestDb::new();
    assert_eq!(db.repo.find_api_key(&[7; 32]).await.unwrap(), None);
    db.repo
        .create_api_key(&key(alice(), 1, None))
        .await
        .unwrap();
    assert_eq!(db.repo.find_api_key(&[7; 32]).await.unwrap(), None);
    assert!(db.repo.list_api_keys().await.unwrap().len() == 1);
}

#[tokio::test]
async fn two_keys_with_one_hash_cannot_both_be_stored() {
    let db = TestDb::new();
    db.repo
        .create_api_key(&key(alice(), 1, None))
        .await
        .unwrap();
    assert!(db.repo.create_api_key(&key(bob(), 1, None)).await.is_err());
    let found = db.repo.find_api_key(&[1; 32]).await.unwrap().unwrap();
    assert_eq!(found.principal, alice());
}

#[tokio::test]
async fn a_key_is_revoked_once_and_an_unknown_one_not_at_all() {
    let db = TestDb::new();
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

#[tokio::test]
async fn uses_are_recorded_in_one_batch_and_never_move_backwards() {
    let db = TestDb::new();
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

#[derive(QueryableByName)]
struct Plan {
    #[diesel(sql_type = Text)]
    detail: String,
}

#[test]
fn a_lookup_by_hash_uses_an_index() {
    let db = TestDb::new();
    let plan: Vec<Plan> =
        diesel::sql_query("EXPLAIN QUERY PLAN SELECT id FROM api_keys WHERE key_hash = ?")
            .bind::<Binary, _>(vec![0_u8; 32])
            .load(&mut db.raw())
            .unwrap();
    let plan: Vec<&str> = plan.iter().map(|row| row.detail.as_str()).collect();
    assert!(
        plan.iter().any(|detail| detail.contains("USING INDEX")),
        "{plan:?}"
    );
}

#[test]
fn the_table_refuses_rows_no_key_could_make() {
    let db = TestDb::new();
    let insert = |principal: &str, hash: Vec<u8>| {
        diesel::sql_query(
            "INSERT INTO api_keys (id, principal, key_hash, created_at) VALUES (?, ?, ?, ?)",
        )
        .bind::<Text, _>(ApiKeyId::new().to_string())
        .bind::<Text, _>(principal.to_owned())
        .bind::<Binary, _>(hash)
        .bind::<BigInt, _>(0_i64)
        .execute(&mut db.raw())
    };
    assert!(insert("alice", vec![0; 32]).is_ok());
    assert!(insert("", vec![1; 32]).is_err(), "an empty principal");
    assert!(insert("alice", vec![2; 31]).is_err(), "a short hash");
}

/// The down migration drops the table, and the up one makes it again.
#[test]
fn the_api_keys_migration_reverts_and_reapplies() {
    use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness as _};
    const MIGRATIONS: EmbeddedMigrations = embed_migrations!("../../../migrations/sqlite");

    let db = TestDb::new();
    let mut connection = db.raw();
    // The daily usage's migration came after this one, so it goes first.
    for expected in ["20261201000002", "20261201000001"] {
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
        colloquy_diesel::migrate(db.path.to_str().unwrap()).unwrap(),
        [
            "2026-12-01-000001_api_keys",
            "2026-12-01-000002_daily_usage"
        ]
    );
}
