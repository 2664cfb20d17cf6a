use colloquy_diesel::testing::TestDatabase;
use colloquy_fake_upstream::Behaviour;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::search;
use crate::assistants::{assert_problem, call, id_of};
use crate::auth::{keyed, new_key};
use crate::support::{spawn_app, spawn_app_with, TestApp};

fn hit_ids(page: &Value) -> Vec<String> {
    page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["message_id"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_word_must_match_hits_are_marked_newest_first_on_every_branch_never_deleted() {
    let app = spawn_app().await;
    let lisbon = app.create_session(json!({"title": "Lisbon"})).await;
    let lisbon = id_of(&lisbon);
    app.fake.push(Behaviour::text(
        "The yellow Tram 28 climbs there every ten minutes.",
    ));
    let (_, answer) = app
        .chat(&lisbon, "Which yellow tram climbs to the castle?")
        .await;
    let question = id_of(&app.history(&lisbon).await[0]);
    let answer = id_of(&answer);
    let depot = app.new_session().await;
    app.fake.push(Behaviour::text("Near Santo Amaro."));
    app.chat(&depot, "Where is the tram depot?").await;
    let depot_question = id_of(&app.history(&depot).await[0]);

    let (status, found) = search(&app, "yellow TRAM", "", None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found["has_more"], false);
    assert_eq!(
        hit_ids(&found),
        [answer.clone(), question.clone()],
        "both words, any case, newest first; the depot lacks `yellow`"
    );
    let hit = &found["data"][0];
    assert_eq!(hit["session_id"], lisbon);
    assert_eq!(hit["session_title"], "Lisbon");
    assert_eq!(hit["role"], "assistant");
    assert!(hit["created_at"].as_str().unwrap().ends_with('Z'), "{hit}");
    let snippet = hit["snippet"].as_str().unwrap();
    assert!(
        snippet.contains("«yellow»") && snippet.contains("«Tram»"),
        "{snippet}"
    );
    assert_eq!(found["data"][1]["role"], "user");
    assert!(found["data"][1]["snippet"]
        .as_str()
        .unwrap()
        .contains("«tram»"));

    // Pages, newest first, `after` the last hit of the one before.
    let (_, first_page) = search(&app, "tram", "&limit=2", None).await;
    assert_eq!(
        hit_ids(&first_page),
        [depot_question.clone(), answer.clone()]
    );
    assert_eq!(first_page["has_more"], true);
    let (_, second_page) = search(&app, "tram", &format!("&limit=2&after={answer}"), None).await;
    assert_eq!(hit_ids(&second_page), std::slice::from_ref(&question));
    assert_eq!(second_page["has_more"], false);
    assert!(
        hit_ids(&search(&app, "depot", "", None).await.1)[0] == depot_question,
        "the other session is found by its own words"
    );

    // An edited question is found by its new words, the old one still is.
    app.fake
        .push(Behaviour::text("The red one is a tourist tram."));
    let (status, edited) = call(
        &app,
        Method::POST,
        &format!("/api/v1/sessions/{lisbon}/messages/{question}/edit"),
        None,
        Some(&json!({"content": "Which red tram goes to the castle?"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{edited}");
    app.stored_final(&lisbon, &id_of(&edited["assistant_message"]))
        .await;
    let (_, red) = search(&app, "red castle", "", None).await;
    assert_eq!(hit_ids(&red), [id_of(&edited["user_message"])]);
    let (_, yellow) = search(&app, "yellow", "", None).await;
    assert_eq!(hit_ids(&yellow), [answer.clone(), question.clone()]);

    // Words that look like query syntax are only words.
    for query in [
        "tram OR depot",
        "\"tram",
        "NEAR(tram depot)",
        "tram* -yellow",
        "tram:depot",
        "((( tram",
    ] {
        let (status, page) = search(&app, query, "", None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {page}");
    }
    let (_, or) = search(&app, "tram OR depot", "", None).await;
    assert!(
        hit_ids(&or).iter().all(|id| *id != answer),
        "`OR` is a word the answer lacks, not an operator: {or}"
    );

    // A deleted session's messages are never found again.
    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/sessions/{lisbon}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, gone) = search(&app, "yellow", "", None).await;
    assert_eq!(gone["data"], json!([]));
    let (_, tram) = search(&app, "tram", "", None).await;
    assert_eq!(hit_ids(&tram), [depot_question]);
}

#[tokio::test]
async fn a_query_with_no_word_a_bad_limit_or_a_malformed_cursor_is_refused() {
    let app = spawn_app().await;
    let many = vec!["word"; 17].join(" ");
    for (path, expected, slug) in [
        (
            "/api/v1/search".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-query",
        ),
        (
            "/api/v1/search?q=".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-query",
        ),
        (
            "/api/v1/search?q=%20%20%20".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-query",
        ),
        (
            "/api/v1/search?q=%3F!%20%E2%80%A6".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-query",
        ),
        (
            format!("/api/v1/search?q={}", many.replace(' ', "%20")),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-query",
        ),
        (
            format!("/api/v1/search?q={}", "x".repeat(257)),
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-query",
        ),
        (
            "/api/v1/search?q=tram&limit=0".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "/api/v1/search?q=tram&limit=101".to_owned(),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            "/api/v1/search?q=tram&after=nope".to_owned(),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
    ] {
        let (status, problem) = call(&app, Method::GET, &path, None, None).await;
        assert_problem(status, &problem, expected, slug);
        assert!(!problem["detail"].as_str().unwrap().is_empty(), "{path}");
    }
    let (status, page) = search(&app, "tram", "&limit=100", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, json!({"data": [], "has_more": false}));
}

#[tokio::test]
async fn a_search_finds_the_callers_own_messages_only() {
    let app = keyed().await;
    let alice = new_key(&app, "alice").await;
    let bob = new_key(&app, "bob").await;
    for (key, text) in [
        (&alice, "Alice asks about the funicular to Bica"),
        (&bob, "Bob asks about the funicular to Gloria"),
    ] {
        let (status, session) = call(&app, Method::POST, "/api/v1/sessions", Some(key), None).await;
        assert_eq!(status, StatusCode::CREATED, "{session}");
        let (status, accepted) = call(
            &app,
            Method::POST,
            &format!("/api/v1/sessions/{}/messages", id_of(&session)),
            Some(key),
            Some(&json!({"content": text})),
        )
        .await;
        assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    }
    let (_, mine) = search(&app, "funicular", "", Some(&alice)).await;
    let texts: Vec<&str> = mine["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["snippet"].as_str().unwrap())
        .collect();
    assert!(!texts.is_empty());
    assert!(
        texts
            .iter()
            .all(|text| text.contains("Bica") && !text.contains("Gloria")),
        "{texts:?}"
    );
    let (_, none) = search(&app, "Bica", "", Some(&bob)).await;
    assert_eq!(none["data"], json!([]), "Bob never finds Alice's words");
    let (status, _) = search(&app, "funicular", "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}

/// A fuzzer's query (a NUL, a carriage return, C1 controls amid letters) once
/// reached SQLite's FTS5 parser whole, which read the NUL as the end of the
/// query and failed with a 500. Control characters separate words, as
/// white space does.
#[tokio::test]
async fn control_characters_in_a_query_separate_its_words() {
    control_characters_separate_words(&spawn_app().await).await;
}

#[tokio::test]
async fn control_characters_in_a_query_separate_its_words_on_postgres() {
    let database = TestDatabase::create().await;
    let app = spawn_app_with(&[("DATABASE_URL", database.url())]).await;
    control_characters_separate_words(&app).await;
    app.stop().await;
}

async fn control_characters_separate_words(app: &TestApp) {
    let lisbon = app.new_session().await;
    app.fake.push(Behaviour::text(
        "The yellow Tram 28 climbs there every ten minutes.",
    ));
    app.chat(&lisbon, "Which yellow tram climbs to the castle?")
        .await;

    let (status, found) = search(app, "yellow\0tram\r\u{9f}", "", None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(
        hit_ids(&found).len(),
        2,
        "both words, in both messages: {found}"
    );
    let (status, found) = search(
        app,
        "\u{cd}\u{8c}\u{c7}\u{15}\0\u{9f}\u{ff}\r\u{ed}\u{98}H\u{7f}",
        "",
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{found}");
    assert_eq!(found, json!({"data": [], "has_more": false}));
}
