//! What lands in the file, and what happens when the file is wrong.

use colloquy_ports::{ChatRepository, RepoError};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Text};

use crate::support::{alice, finished_reply, stored_session, user_message, TestDb};

#[derive(QueryableByName)]
struct StoredText {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

fn stored(db: &TestDb, sql: &str, id: &str) -> Option<String> {
    diesel::sql_query(sql)
        .bind::<Text, _>(id)
        .get_result::<StoredText>(&mut db.raw())
        .unwrap()
        .value
}

#[tokio::test]
async fn ids_are_stored_as_hyphenated_lower_case_text() {
    let db = TestDb::new();
    let session = stored_session(&db.repo).await;
    let id = session.id.to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(
        stored(&db, "SELECT id AS value FROM sessions WHERE id = ?", &id),
        Some(id.clone())
    );
    assert_eq!(id, id.to_lowercase());
}

#[tokio::test]
async fn tool_calls_are_a_json_array_with_their_texts_as_strings() {
    let db = TestDb::new();
    let session = stored_session(&db.repo).await;
    let question = user_message(session.id, "q");
    let reply = finished_reply(session.id);
    db.repo
        .append_messages(&alice(), &[question.clone(), reply.clone()])
        .await
        .unwrap();

    let sql = "SELECT tool_calls AS value FROM messages WHERE id = ?";
    assert_eq!(
        stored(&db, sql, &question.id.to_string()),
        None,
        "no tool calls: NULL"
    );
    let text = stored(&db, sql, &reply.id.to_string()).expect("tool calls stored");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(
        json,
        serde_json::json!([
            {
                "id": "call_1",
                "name": "weather",
                "arguments": reply.tool_calls[0].arguments,
                "result": "{\"temp\":-3}",
                "error": null,
            },
            {
                "id": "call_2",
                "name": "broken",
                "arguments": "{\"unterminated\": ",
                "result": null,
                "error": "arguments are not valid JSON",
            },
        ])
    );
    // And back, byte for byte, including the text that is not JSON at all.
    let read = db
        .repo
        .list_messages(&alice(), session.id, 10, None)
        .await
        .unwrap();
    assert_eq!(read.items[1].tool_calls, reply.tool_calls);
}

/// Damages the store behind the repository's back. CHECK constraints would
/// refuse most damage, so they are switched off for this connection only.
fn damage(db: &TestDb, sql: &str) {
    db.raw()
        .batch_execute(&format!("PRAGMA ignore_check_constraints = ON; {sql}"))
        .unwrap();
}

fn assert_corrupt(error: RepoError, detail: &str) {
    let RepoError::Unknown(error) = error else {
        panic!("expected RepoError::Unknown, got {error:?}");
    };
    let text = format!("{error:#}");
    assert!(
        text.contains("corrupt row") && text.contains(detail),
        "{text}"
    );
}

#[tokio::test]
async fn a_corrupt_message_row_is_an_error_not_a_panic() {
    let cases = [
        (
            "UPDATE messages SET status = 'paused'",
            "unknown status `paused`",
        ),
        (
            "UPDATE messages SET role = 'system'",
            "unknown role `system`",
        ),
        (
            "UPDATE messages SET tool_calls = '{\"not\": \"an array\"}'",
            "invalid type",
        ),
        (
            "UPDATE messages SET error_code = 'gremlins'",
            "unknown error code `gremlins`",
        ),
        (
            "UPDATE messages SET completion_tokens = NULL",
            "only one of prompt_tokens",
        ),
        (
            "UPDATE messages SET prompt_tokens = -5",
            "negative token count -5",
        ),
        (
            "UPDATE messages SET error_message = NULL",
            "only one of error_code",
        ),
    ];
    for (damage_sql, detail) in cases {
        let db = TestDb::new();
        let session = stored_session(&db.repo).await;
        db.repo
            .append_messages(&alice(), &[finished_reply(session.id)])
            .await
            .unwrap();
        damage(&db, damage_sql);

        assert_corrupt(
            db.repo
                .list_messages(&alice(), session.id, 10, None)
                .await
                .unwrap_err(),
            detail,
        );
        assert_corrupt(
            db.repo
                .recent_messages(&alice(), session.id, 10)
                .await
                .unwrap_err(),
            detail,
        );
    }
}

#[tokio::test]
async fn a_corrupt_message_id_is_an_error_not_a_panic() {
    let db = TestDb::new();
    let session = stored_session(&db.repo).await;
    db.repo
        .append_messages(&alice(), &[user_message(session.id, "x")])
        .await
        .unwrap();
    damage(
        &db,
        "UPDATE messages SET id = 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz'",
    );

    assert_corrupt(
        db.repo
            .list_messages(&alice(), session.id, 10, None)
            .await
            .unwrap_err(),
        "not a valid id",
    );
}

#[tokio::test]
async fn a_corrupt_session_row_is_an_error_not_a_panic() {
    let cases = [
        ("UPDATE sessions SET model = 'has spaces'", "model"),
        ("UPDATE sessions SET title = '   '", "title"),
        (
            "UPDATE sessions SET message_count = -1",
            "negative message_count",
        ),
    ];
    for (damage_sql, detail) in cases {
        let db = TestDb::new();
        let session = stored_session(&db.repo).await;
        damage(&db, damage_sql);

        assert_corrupt(
            db.repo.get_session(&alice(), session.id).await.unwrap_err(),
            detail,
        );
        assert_corrupt(
            db.repo.list_sessions(&alice(), 10, None).await.unwrap_err(),
            detail,
        );
    }
}

#[tokio::test]
async fn the_schema_refuses_rows_the_domain_could_not_read() {
    let db = TestDb::new();
    let session = stored_session(&db.repo).await;
    db.repo
        .append_messages(&alice(), &[finished_reply(session.id)])
        .await
        .unwrap();
    let mut raw = db.raw();
    for bad in [
        "UPDATE messages SET status = 'paused'",
        "UPDATE messages SET role = 'system'",
        "UPDATE messages SET tool_calls = 'not json'",
        "UPDATE messages SET tool_calls = '{}'",
        "UPDATE messages SET prompt_tokens = NULL",
        "UPDATE messages SET error_code = NULL",
        "UPDATE sessions SET id = upper(id)",
        "UPDATE sessions SET message_count = -1",
        "UPDATE sessions SET model = ''",
        "UPDATE sessions SET owner = ''",
        "UPDATE sessions SET owner = NULL",
    ] {
        let error = raw.batch_execute(bad).unwrap_err();
        assert!(
            error.to_string().contains("constraint failed"),
            "{bad}: {error}"
        );
    }
}
