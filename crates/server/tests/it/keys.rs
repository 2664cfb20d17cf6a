//! `colloquy keys`, the real binary against a temporary database.

use std::path::Path;
use std::process::Output;

use serde_json::Value;

/// Runs `colloquy keys ARGS…` with `DATABASE_URL` set to `db` and nothing
/// else in its environment.
async fn keys(db: &Path, args: &[&str]) -> Output {
    tokio::process::Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .arg("keys")
        .args(args)
        .current_dir(db.parent().unwrap())
        .env_clear()
        .env("DATABASE_URL", db)
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap()
}

fn stdout(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).unwrap()
}

async fn listed(db: &Path) -> Vec<Value> {
    let output = keys(db, &["list", "--json"]).await;
    let Value::Array(keys) = serde_json::from_str(&stdout(&output)).unwrap() else {
        panic!("not an array");
    };
    keys
}

#[tokio::test]
async fn a_key_is_created_listed_and_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("colloquy.db");

    let created = stdout(&keys(&db, &["create", "--principal", "alice", "--label", "ci"]).await);
    let lines: Vec<&str> = created.lines().collect();
    assert_eq!(lines.len(), 2, "{created}");
    let key = lines[1];
    assert!(key.starts_with("ck_") && key.len() == 46, "{key}");
    assert!(lines[0].contains("alice"), "{created}");

    let listed_keys = listed(&db).await;
    assert_eq!(listed_keys.len(), 1);
    let entry = listed_keys[0].as_object().unwrap();
    let mut fields: Vec<&str> = entry.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "created_at",
            "id",
            "label",
            "last_used_at",
            "principal",
            "revoked_at"
        ]
    );
    let id = entry["id"].as_str().unwrap().to_owned();
    assert!(lines[0].contains(&id), "the id is shown: {created}");
    assert_eq!(entry["principal"], "alice");
    assert_eq!(entry["label"], "ci");
    assert!(entry["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(entry["last_used_at"], Value::Null);
    assert_eq!(entry["revoked_at"], Value::Null);

    let table = stdout(&keys(&db, &["list"]).await);
    assert!(table.contains(&id) && table.contains("alice"), "{table}");
    assert!(!table.contains(key), "the key is never listed: {table}");
    let listing = String::from_utf8(keys(&db, &["list", "--json"]).await.stdout).unwrap();
    assert!(!listing.contains(key), "nor in JSON");

    let revoked = stdout(&keys(&db, &["revoke", &id]).await);
    assert!(revoked.contains(&id), "{revoked}");
    let after = listed(&db).await;
    let revoked_at = after[0]["revoked_at"].as_str().expect("revoked_at is set");
    assert!(revoked_at >= entry["created_at"].as_str().unwrap());

    let again = stdout(&keys(&db, &["revoke", &id]).await);
    assert!(again.contains("already revoked"), "{again}");
    assert_eq!(listed(&db).await[0]["revoked_at"], revoked_at, "unchanged");
}

#[tokio::test]
async fn keys_list_oldest_first_and_each_key_is_new() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("colloquy.db");
    assert_eq!(listed(&db).await, Vec::<Value>::new());
    let first = stdout(&keys(&db, &["create", "--principal", "alice"]).await);
    let second = stdout(&keys(&db, &["create", "--principal", "bob"]).await);
    assert_ne!(first.lines().last(), second.lines().last());
    let all = listed(&db).await;
    let principals: Vec<&str> = all
        .iter()
        .map(|key| key["principal"].as_str().unwrap())
        .collect();
    assert_eq!(principals, ["alice", "bob"]);
    assert_eq!(all[0]["label"], Value::Null);
}

#[tokio::test]
async fn revoking_an_unknown_id_fails_and_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("colloquy.db");
    let unknown = keys(&db, &["revoke", "0193a5e0-0000-7000-8000-000000000000"]).await;
    assert!(!unknown.status.success());
    let stderr = String::from_utf8_lossy(&unknown.stderr);
    assert!(stderr.contains("no API key"), "{stderr}");

    let junk = keys(&db, &["revoke", "not-an-id"]).await;
    assert!(!junk.status.success());
    assert!(String::from_utf8_lossy(&junk.stderr).contains("not a valid id"));
}

#[tokio::test]
async fn a_bad_principal_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("colloquy.db");
    let output = keys(&db, &["create", "--principal", "  "]).await;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    assert!(!db.exists(), "refused before the database is opened");
}

/// The key the command prints is the one the authenticator accepts, for the
/// principal it was made for, until it is revoked; its use shows in the list.
#[tokio::test]
async fn a_created_key_authenticates_until_it_is_revoked() {
    use colloquy_auth::ApiKeys;
    use colloquy_ports::{AuthError, Authenticator as _};

    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("colloquy.db");
    let created = stdout(&keys(&db, &["create", "--principal", "alice"]).await);
    let key = created.lines().last().unwrap().to_owned();

    let store = colloquy::application::open_sqlite(db.to_str().unwrap()).unwrap();
    let auth = ApiKeys::new(store);
    let principal = auth.authenticate(Some(key.clone())).await.unwrap();
    assert_eq!(principal.as_str(), "alice");
    auth.flush().await.unwrap();
    let entry = listed(&db).await.remove(0);
    assert!(entry["last_used_at"].is_string(), "{entry}");

    let id = entry["id"].as_str().unwrap().to_owned();
    stdout(&keys(&db, &["revoke", &id]).await);
    assert!(matches!(
        auth.authenticate(Some(key)).await,
        Err(AuthError::Revoked)
    ));
}
