//! What lands in the database, and what happens when the database is wrong.

use colloquy_ports::RepoError;

use crate::support::{
    alice, finished_reply, on_both_backends, stored_assistant, stored_session, user_message,
    Backend, TestDb,
};

async fn stored(db: &TestDb, sql: &str, id: &str) -> Option<String> {
    db.text(sql, id).await
}

async fn ids_are_stored_as_hyphenated_lower_case_text(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let id = session.id.to_string();
    assert_eq!(id.len(), 36);
    assert_eq!(
        stored(&db, "SELECT id AS value FROM sessions WHERE id = $1", &id).await,
        Some(id.clone())
    );
    assert_eq!(id, id.to_lowercase());
}

async fn tool_calls_are_a_json_array_with_their_texts_as_strings(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    let question = user_message(session.id, "q");
    let reply = finished_reply(session.id);
    db.repo
        .append_messages(&alice(), &[question.clone(), reply.clone()])
        .await
        .unwrap();

    let sql = "SELECT tool_calls AS value FROM messages WHERE id = $1";
    assert_eq!(
        stored(&db, sql, &question.id.to_string()).await,
        None,
        "no tool calls: NULL"
    );
    let text = stored(&db, sql, &reply.id.to_string())
        .await
        .expect("tool calls stored");
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
/// refuse most damage: SQLite ignores them on this connection only, and
/// PostgreSQL, which cannot, loses them (the database is the test's own).
async fn damage(db: &TestDb, sql: &str) {
    let without_checks = match db.backend {
        Backend::Sqlite => "PRAGMA ignore_check_constraints = ON;",
        Backend::Postgres => {
            "DO $$ DECLARE c record; BEGIN
                FOR c IN SELECT conrelid::regclass AS tab, conname FROM pg_constraint
                         WHERE contype = 'c' AND connamespace = 'public'::regnamespace LOOP
                    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', c.tab, c.conname);
                END LOOP;
            END $$;"
        }
    };
    db.execute(&format!("{without_checks} {sql}")).await;
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

async fn a_corrupt_message_row_is_an_error_not_a_panic(backend: Backend) {
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
        (
            "UPDATE messages SET assistant_name = 'Critic'",
            "only one of assistant_id and assistant_name",
        ),
        (
            "UPDATE messages SET assistant_id = 'not-an-id', assistant_name = 'Critic'",
            "not a valid id",
        ),
    ];
    for (damage_sql, detail) in cases {
        let db = TestDb::new(backend).await;
        let session = stored_session(&*db.repo).await;
        db.repo
            .append_messages(&alice(), &[finished_reply(session.id)])
            .await
            .unwrap();
        damage(&db, damage_sql).await;

        assert_corrupt(
            db.repo
                .list_messages(&alice(), session.id, 10, None)
                .await
                .unwrap_err(),
            detail,
        );
        assert_corrupt(
            db.repo
                .recent_messages(&alice(), session.id, None, 10)
                .await
                .unwrap_err(),
            detail,
        );
    }
}

async fn a_corrupt_message_id_is_an_error_not_a_panic(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    db.repo
        .append_messages(&alice(), &[user_message(session.id, "x")])
        .await
        .unwrap();
    damage(
        &db,
        "UPDATE messages SET id = 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz'",
    )
    .await;

    assert_corrupt(
        db.repo
            .list_messages(&alice(), session.id, 10, None)
            .await
            .unwrap_err(),
        "not a valid id",
    );
}

async fn a_corrupt_session_row_is_an_error_not_a_panic(backend: Backend) {
    let cases = [
        ("UPDATE sessions SET model = 'has spaces'", "model"),
        ("UPDATE sessions SET title = '   '", "title"),
        (
            "UPDATE sessions SET message_count = -1",
            "negative message_count",
        ),
        (
            "UPDATE sessions SET assistant_id = 'not-an-id'",
            "not a valid id",
        ),
    ];
    for (damage_sql, detail) in cases {
        let db = TestDb::new(backend).await;
        let session = stored_session(&*db.repo).await;
        damage(&db, damage_sql).await;

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

async fn a_corrupt_assistant_row_is_an_error_not_a_panic(backend: Backend) {
    let cases = [
        ("UPDATE assistants SET tools = '{}'", "invalid type"),
        ("UPDATE assistants SET name = 'two\nlines'", "name"),
        ("UPDATE assistants SET instructions = ' '", "instructions"),
    ];
    for (damage_sql, detail) in cases {
        let db = TestDb::new(backend).await;
        let assistant = stored_assistant(&*db.repo, "Critic").await;
        damage(&db, damage_sql).await;

        assert_corrupt(
            db.repo
                .get_assistant(&alice(), assistant.id)
                .await
                .unwrap_err(),
            detail,
        );
        assert_corrupt(
            db.repo
                .list_assistants(&alice(), 10, None)
                .await
                .unwrap_err(),
            detail,
        );
        assert_corrupt(
            db.repo
                .find_assistants(&alice(), &[assistant.id])
                .await
                .unwrap_err(),
            detail,
        );
    }
}

async fn the_schema_refuses_rows_the_domain_could_not_read(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = stored_session(&*db.repo).await;
    stored_assistant(&*db.repo, "Critic").await;
    db.repo
        .append_messages(&alice(), &[finished_reply(session.id)])
        .await
        .unwrap();
    // SQLite says "constraint failed"; PostgreSQL names the kind of
    // constraint, or the JSON it could not parse.
    let refusals: &[&str] = match backend {
        Backend::Sqlite => &["constraint failed"],
        Backend::Postgres => &["violates", "invalid input syntax for type json"],
    };
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
        "UPDATE sessions SET assistant_id = 'not-an-id'",
        "UPDATE messages SET assistant_name = 'Critic'",
        "UPDATE messages SET assistant_id = upper(session_id), assistant_name = 'Critic'",
        "UPDATE assistants SET name = ''",
        "UPDATE assistants SET tools = 'not json'",
        "UPDATE assistants SET tools = '{}'",
        "UPDATE assistants SET tools = NULL",
    ] {
        let error = db.try_execute(bad).await.unwrap_err();
        assert!(
            refusals.iter().any(|refusal| error.contains(refusal)),
            "{bad}: {error}"
        );
    }
}

on_both_backends! {
    ids_are_stored_as_hyphenated_lower_case_text,
    tool_calls_are_a_json_array_with_their_texts_as_strings,
    a_corrupt_message_row_is_an_error_not_a_panic,
    a_corrupt_message_id_is_an_error_not_a_panic,
    a_corrupt_session_row_is_an_error_not_a_panic,
    a_corrupt_assistant_row_is_an_error_not_a_panic,
    the_schema_refuses_rows_the_domain_could_not_read,
}
