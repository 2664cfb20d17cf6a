use std::collections::HashSet;

use colloquy_diesel::testing::TestDatabase;
use reqwest::StatusCode;

use super::{canonical, conversation_with_branches, export, export_json, import, search};
use crate::assistants::id_of;
use crate::support::{spawn_app, spawn_app_with, TestApp};

/// Export → import → export: a new session with new ids and the same tree,
/// roles, texts, names, statuses and times, its head on the same branch;
/// both copies found by search.
async fn exports_come_back_as_they_left(app: &TestApp) {
    let original = conversation_with_branches(app).await;
    let exported = export_json(app, &original).await;
    let messages = exported["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 9, "every branch: {exported}");
    assert!(messages
        .iter()
        .all(|message| message.get("parent_id").is_some() && message.get("siblings").is_none()));
    assert_eq!(exported["session"]["message_count"], 6);

    let (status, imported) = import(app, &exported, None).await;
    assert_eq!(status, StatusCode::CREATED, "{imported}");
    let copy = id_of(&imported);
    assert_ne!(copy, original);
    assert_eq!(imported["message_count"], 6, "the head's branch, as stored");
    assert_eq!(imported["title"], "Lisbon by tram");
    let again = export_json(app, &copy).await;
    assert_eq!(
        again["session"], imported,
        "the import answers the session stored"
    );
    assert_eq!(canonical(&again), canonical(&exported));
    let old_ids: HashSet<&str> = messages.iter().map(|m| m["id"].as_str().unwrap()).collect();
    for message in again["messages"].as_array().unwrap() {
        assert!(
            !old_ids.contains(message["id"].as_str().unwrap()),
            "new ids"
        );
        assert_eq!(message["session_id"], copy);
    }
    let named: Vec<&serde_json::Value> = again["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|message| message["name"] == "Guide")
        .collect();
    assert_eq!(named.len(), 1);
    assert!(named[0]["assistant_id"].is_string(), "{}", named[0]);

    // The copy's history is the original's active branch.
    let texts = |history: Vec<serde_json::Value>| -> Vec<String> {
        history
            .iter()
            .map(|message| message["content"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        texts(app.history(&copy).await),
        texts(app.history(&original).await)
    );

    // The import is searchable as soon as it is stored.
    let (status, found) = search(app, "crowded", "", None).await;
    assert_eq!(status, StatusCode::OK, "{found}");
    let sessions: HashSet<&str> = found["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|hit| hit["session_id"].as_str().unwrap())
        .collect();
    assert_eq!(sessions, HashSet::from([original.as_str(), copy.as_str()]));
}

#[tokio::test]
async fn an_export_imported_again_is_the_same_conversation() {
    exports_come_back_as_they_left(&spawn_app().await).await;
}

#[tokio::test]
async fn an_export_imported_again_is_the_same_conversation_on_postgres() {
    let database = TestDatabase::create().await;
    let app = spawn_app_with(&[("DATABASE_URL", database.url())]).await;
    exports_come_back_as_they_left(&app).await;
    app.stop().await;
}

#[tokio::test]
async fn the_markdown_export_is_the_active_branch_as_a_transcript() {
    let app = spawn_app().await;
    let session = conversation_with_branches(&app).await;
    let response = export(&app, &session, Some("markdown"), None).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(
        response.headers()["content-type"],
        "text/markdown; charset=utf-8"
    );
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"lisbon-by-tram.md\""
    );
    let text = response.text().await.unwrap();
    assert!(text.starts_with("# Lisbon by tram\n"), "{text}");
    let authors: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("### "))
        .map(|heading| heading.split(" · ").next().unwrap())
        .collect();
    assert_eq!(
        authors,
        ["You", "Assistant", "You", "Guide", "You", "Assistant"],
        "{text}"
    );
    let last = text.lines().rfind(|line| line.starts_with("### ")).unwrap();
    assert!(last.ends_with(" · *cancelled*"), "{last}");
    for said in [
        "Which tram goes to the castle?",
        "Tram 12 loops around it.",
        "How long is the ride?",
        "About twenty minutes, end to end.",
        "Tell me every stop.",
    ] {
        assert!(text.contains(said), "{said} in {text}");
    }
    for other_branch in ["Tram 28 climbs", "Is it crowded?", "Yes, in summer."] {
        assert!(
            !text.contains(other_branch),
            "{other_branch} is not on the branch"
        );
    }
    assert_eq!(
        text.matches(" · *").count(),
        1,
        "only the unfinished reply shows a status"
    );

    let json = export(&app, &session, Some("json"), None).await;
    assert_eq!(
        json.headers()["content-disposition"],
        "attachment; filename=\"lisbon-by-tram.json\""
    );
    for (format, status, slug) in [
        ("pdf", StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ("Markdown", StatusCode::UNPROCESSABLE_ENTITY, "validation"),
    ] {
        let response = export(&app, &session, Some(format), None).await;
        assert_eq!(response.status(), status, "{format}");
        assert_eq!(
            response.headers()["content-type"],
            "application/problem+json"
        );
        let problem: serde_json::Value = response.json().await.unwrap();
        assert_eq!(problem["type"], format!("urn:colloquy:problem:{slug}"));
    }
    let unknown = export(&app, "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f", None, None).await;
    assert_eq!(unknown.status(), StatusCode::NOT_FOUND);
    let malformed = export(&app, "nope", None, None).await;
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
}
