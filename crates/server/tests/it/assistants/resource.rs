//! `/api/v1/assistants`: create, read, list, change, delete; the refusals;
//! each principal's own.

use std::sync::Arc;

use colloquy_auth::ApiKeys;
use colloquy_diesel::SqliteRepository;
use colloquy_domain::Principal;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{assert_problem, call, create_assistant, id_of, MODELS};
use crate::support::{spawn_app, spawn_app_with, TestApp};

#[tokio::test]
async fn an_assistant_is_created_read_listed_changed_and_deleted() {
    let app = spawn_app_with(&[MODELS]).await;
    let body = json!({
        "name": "  Critic ",
        "instructions": "Find the weak point.",
        "model": "critic-model",
        "tools": ["calculator", "current_time", "calculator"],
    });
    let response = app
        .http
        .post(app.url("/api/v1/assistants"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::CREATED);
    let location = response.headers()["location"].to_str().unwrap().to_owned();
    let created: Value = response.json().await.unwrap();
    let id = id_of(&created);
    assert_eq!(location, format!("/api/v1/assistants/{id}"));
    assert_eq!(created["name"], "Critic", "the name is trimmed");
    assert_eq!(created["instructions"], "Find the weak point.");
    assert_eq!(created["model"], "critic-model");
    assert_eq!(
        created["tools"],
        json!(["calculator", "current_time"]),
        "in order, without repeats"
    );
    assert_eq!(created["created_at"], created["updated_at"]);
    let fields: Vec<&String> = created.as_object().unwrap().keys().collect();
    assert_eq!(
        fields,
        [
            "created_at",
            "id",
            "instructions",
            "model",
            "name",
            "tools",
            "updated_at"
        ],
        "exactly the contract's fields"
    );

    let (status, read) = call(&app, Method::GET, &location, None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(read, created);
    let (status, page) = call(&app, Method::GET, "/api/v1/assistants", None, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(page, json!({"data": [created], "has_more": false}));

    // A patch writes only what it names; `null` clears the instructions.
    let patch = json!({"name": "Sceptic", "instructions": null, "tools": []});
    let (status, changed) = call(&app, Method::PATCH, &location, None, Some(&patch)).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    assert_eq!(changed["id"], created["id"]);
    assert_eq!(changed["name"], "Sceptic");
    assert_eq!(changed["instructions"], Value::Null);
    assert_eq!(changed["tools"], json!([]));
    assert_eq!(changed["model"], "critic-model", "left alone");
    assert_eq!(changed["created_at"], created["created_at"]);
    assert!(
        changed["updated_at"].as_str() > created["updated_at"].as_str(),
        "{changed}"
    );
    let (_, read) = call(&app, Method::GET, &location, None, None).await;
    assert_eq!(read, changed, "the change is stored");

    // Created with nothing but a name: the default model, no tools.
    let plain = create_assistant(&app, json!({"name": "Plain"})).await;
    assert_eq!(plain["model"], "fake-model");
    assert_eq!(plain["tools"], json!([]));
    assert_eq!(plain["instructions"], Value::Null);

    let (status, body) = call(&app, Method::DELETE, &location, None, None).await;
    assert_eq!((status, body), (StatusCode::NO_CONTENT, Value::Null));
    for method in [Method::GET, Method::DELETE] {
        let (status, body) = call(&app, method, &location, None, None).await;
        assert_problem(status, &body, StatusCode::NOT_FOUND, "assistant-not-found");
    }
    let (status, body) = call(&app, Method::PATCH, &location, None, Some(&patch)).await;
    assert_problem(status, &body, StatusCode::NOT_FOUND, "assistant-not-found");
    let (_, page) = call(&app, Method::GET, "/api/v1/assistants", None, None).await;
    assert_eq!(page["data"], json!([plain]));
}

#[tokio::test]
async fn a_taken_name_is_409_and_invalid_fields_are_422_storing_nothing() {
    let app = spawn_app_with(&[MODELS]).await;
    let critic = create_assistant(&app, json!({"name": "Critic"})).await;
    let poet = create_assistant(&app, json!({"name": "Poet"})).await;
    let assistants = "/api/v1/assistants";
    let post = |body: Value| {
        let app = &app;
        async move { call(app, Method::POST, assistants, None, Some(&body)).await }
    };

    let (status, body) = post(json!({"name": "Critic", "model": "poet-model"})).await;
    assert_problem(status, &body, StatusCode::CONFLICT, "assistant-name-taken");
    assert!(
        body["detail"].as_str().unwrap().contains("`Critic`"),
        "{body}"
    );
    let poet_url = format!("{assistants}/{}", id_of(&poet));
    let rename = json!({"name": " Critic"});
    let (status, body) = call(&app, Method::PATCH, &poet_url, None, Some(&rename)).await;
    assert_problem(status, &body, StatusCode::CONFLICT, "assistant-name-taken");

    for (body, slug) in [
        (json!({"name": ""}), "validation"),
        (json!({"name": " \t "}), "validation"),
        (json!({"name": "é".repeat(65)}), "validation"),
        (json!({"name": "two\nlines"}), "validation"),
        (json!({}), "validation"),
        (json!({"name": 7}), "validation"),
        (json!({"name": "Q", "instructions": "   "}), "validation"),
        (
            json!({"name": "Q", "tools": ["calculator", "rm_rf"]}),
            "unknown-tool",
        ),
        (
            json!({"name": "Q", "model": "gpt-5-ultra"}),
            "model-not-allowed",
        ),
        (json!({"name": "Q", "model": "no spaces"}), "validation"),
    ] {
        let (status, problem) = post(body.clone()).await;
        assert_problem(status, &problem, StatusCode::UNPROCESSABLE_ENTITY, slug);
    }
    let (_, problem) = post(json!({"name": "Q", "tools": ["rm_rf"]})).await;
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("`rm_rf`") && detail.contains("current_time, calculator"),
        "says what is offered: {detail}"
    );
    // The same refusals on a patch, which then changes nothing.
    for patch in [
        json!({"name": ""}),
        json!({"tools": ["rm_rf"]}),
        json!({"model": "gpt-5-ultra"}),
        json!({"instructions": ""}),
    ] {
        let (status, body) = call(&app, Method::PATCH, &poet_url, None, Some(&patch)).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{patch}: {body}");
    }
    let (_, unchanged) = call(&app, Method::GET, &poet_url, None, None).await;
    assert_eq!(unchanged, poet);

    // 64 characters is the most a name may have.
    let longest = create_assistant(&app, json!({"name": "é".repeat(64)})).await;
    assert_eq!(longest["name"].as_str().unwrap().chars().count(), 64);

    let malformed = app
        .http
        .post(app.url(assistants))
        .header("content-type", "application/json")
        .body("{\"name\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    let not_json = app
        .http
        .post(app.url(assistants))
        .body("name=Q")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::UNSUPPORTED_MEDIA_TYPE);
    for method in [Method::GET, Method::PATCH, Method::DELETE] {
        let (status, body) = call(
            &app,
            method.clone(),
            &format!("{assistants}/not-a-uuid"),
            None,
            Some(&json!({})),
        )
        .await;
        assert_problem(status, &body, StatusCode::BAD_REQUEST, "bad-request");
    }
    let (_, page) = call(&app, Method::GET, assistants, None, None).await;
    let names: Vec<&str> = page["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|assistant| assistant["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [longest["name"].as_str().unwrap(), "Poet", "Critic"],
        "only what was accepted is stored, newest first"
    );
    assert_eq!(critic["name"], "Critic");
}

/// A new API key of `principal`, made in `app`'s database as `colloquy keys
/// create` makes one.
async fn key_for(app: &TestApp, principal: &str) -> String {
    let path = app.db_dir.path().join("colloquy.db");
    let store = Arc::new(SqliteRepository::connect(&path.display().to_string(), 1).unwrap());
    ApiKeys::issue(store.as_ref(), Principal::parse(principal).unwrap(), None)
        .await
        .unwrap()
        .key
}

#[tokio::test]
async fn another_principals_assistant_is_404_wherever_it_is_named() {
    let app = spawn_app_with(&[("COLLOQUY_AUTH", "keys")]).await;
    let alice = key_for(&app, "alice").await;
    let bob = key_for(&app, "bob").await;
    let as_ = |key: &str, method: Method, path: &str, body: Option<Value>| {
        let (app, key, path) = (&app, key.to_owned(), path.to_owned());
        async move { call(app, method, &path, Some(&key), body.as_ref()).await }
    };
    let assistants = "/api/v1/assistants";
    let (status, hers) = as_(
        &alice,
        Method::POST,
        assistants,
        Some(json!({"name": "Muse"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED);
    let hers_url = format!("{assistants}/{}", id_of(&hers));
    let (status, unknown) = as_(
        &bob,
        Method::GET,
        &format!("{assistants}/0190c6a4-1f55-7a0e-8b1a-5a5a5a5a5a5a"),
        None,
    )
    .await;
    assert_problem(
        status,
        &unknown,
        StatusCode::NOT_FOUND,
        "assistant-not-found",
    );

    for (method, body) in [
        (Method::GET, None),
        (Method::PATCH, Some(json!({"name": "Mine now"}))),
        (Method::DELETE, None),
    ] {
        let (status, body) = as_(&bob, method.clone(), &hers_url, body).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{method}");
        assert_eq!(body, unknown, "the same body as an unknown id");
    }
    let (_, page) = as_(&bob, Method::GET, assistants, None).await;
    assert_eq!(page, json!({"data": [], "has_more": false}));

    // Nor can bob make it answer, or make it his session's default.
    let (_, session) = as_(&bob, Method::POST, "/api/v1/sessions", Some(json!({}))).await;
    let session = id_of(&session);
    let send = json!({"content": "hello", "assistant_ids": [hers["id"]]});
    let (status, body) = as_(
        &bob,
        Method::POST,
        &format!("/api/v1/sessions/{session}/messages"),
        Some(send),
    )
    .await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown));
    let (status, body) = as_(
        &bob,
        Method::POST,
        &format!("/api/v1/sessions/{session}/replies"),
        Some(json!({"assistant_ids": [hers["id"]]})),
    )
    .await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown));
    let with_hers = json!({"assistant_id": hers["id"]});
    let (status, body) = as_(
        &bob,
        Method::POST,
        "/api/v1/sessions",
        Some(with_hers.clone()),
    )
    .await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown));
    let (status, body) = as_(
        &bob,
        Method::PATCH,
        &format!("/api/v1/sessions/{session}"),
        Some(with_hers),
    )
    .await;
    assert_eq!((status, &body), (StatusCode::NOT_FOUND, &unknown));
    assert_eq!(app.fake.request_count(), 0, "nothing reached the model");

    // Names are unique per principal: bob may have a Muse of his own.
    let (status, his) = as_(
        &bob,
        Method::POST,
        assistants,
        Some(json!({"name": "Muse"})),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{his}");
    let (status, still_hers) = as_(&alice, Method::GET, &hers_url, None).await;
    assert_eq!((status, still_hers), (StatusCode::OK, hers));
    let (status, _) = call(&app, Method::GET, assistants, None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "no credentials, no list");
}

#[tokio::test]
async fn the_list_pages_newest_first_with_limit_and_after() {
    let app = spawn_app().await;
    let mut ids = Vec::new();
    for name in ["A", "B", "C", "D", "E"] {
        ids.push(id_of(
            &create_assistant(&app, json!({ "name": name })).await,
        ));
    }
    ids.reverse();
    let page = |query: String| {
        let app = &app;
        async move {
            call(
                app,
                Method::GET,
                &format!("/api/v1/assistants{query}"),
                None,
                None,
            )
            .await
        }
    };
    let ids_of = |page: &Value| -> Vec<String> {
        page["data"].as_array().unwrap().iter().map(id_of).collect()
    };
    let (status, first) = page("?limit=2".to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (ids_of(&first), first["has_more"].clone()),
        (ids[..2].to_vec(), json!(true))
    );
    let (_, second) = page(format!("?limit=2&after={}", ids[1])).await;
    assert_eq!(
        (ids_of(&second), second["has_more"].clone()),
        (ids[2..4].to_vec(), json!(true))
    );
    let (_, last) = page(format!("?limit=2&after={}", ids[3])).await;
    assert_eq!(
        (ids_of(&last), last["has_more"].clone()),
        (ids[4..].to_vec(), json!(false))
    );
    let (_, all) = page(String::new()).await;
    assert_eq!(ids_of(&all), ids, "20 by default");

    for bad in ["?limit=0", "?limit=101", "?limit=ten"] {
        let (status, body) = page(bad.to_owned()).await;
        assert_problem(
            status,
            &body,
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        );
    }
    let (status, body) = page("?after=yesterday".to_owned()).await;
    assert_problem(status, &body, StatusCode::BAD_REQUEST, "bad-request");
    let (_, hundred) = page("?limit=100".to_owned()).await;
    assert_eq!(ids_of(&hundred).len(), 5);
}
