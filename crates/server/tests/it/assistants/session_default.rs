//! A session's default assistant: it answers a message that names none; the
//! session's own system prompt and model win over its; deleting it leaves
//! its messages named and the session with the default voice.

use colloquy_fake_upstream::Behaviour;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{assert_problem, call, create_assistant, id_of, MODELS, POET_MODEL};
use crate::support::spawn_app_with;

const GUIDE: &str = "You are a mountain guide.";

#[tokio::test]
async fn a_sessions_assistant_answers_plain_sends_until_it_is_deleted() {
    let app = spawn_app_with(&[MODELS]).await;
    let guide = create_assistant(
        &app,
        json!({"name": "Guide", "instructions": GUIDE, "model": POET_MODEL}),
    )
    .await;
    let guide_id = id_of(&guide);
    let session = app.create_session(json!({"assistant_id": guide_id})).await;
    assert_eq!(session["assistant_id"], guide_id.as_str());
    assert_eq!(
        session["model"], POET_MODEL,
        "without a model of its own, the session takes the assistant's"
    );
    assert_eq!(session["system_prompt"], Value::Null);
    let session = id_of(&session);

    app.fake.push(Behaviour::text("Take the ridge."));
    let (_, reply) = app.chat(&session, "Which way up?").await;
    assert_eq!(reply["assistant_id"], guide_id.as_str());
    assert_eq!(reply["name"], "Guide");
    assert_eq!(reply["model"], POET_MODEL);
    let first = &app.fake.requests()[0];
    assert_eq!(
        first.messages()[0],
        json!({"role": "system", "content": GUIDE})
    );
    assert_eq!(first.body["model"], POET_MODEL);
    assert!(
        first.body.get("tools").is_none(),
        "an assistant made without tools has none"
    );

    // The session's own system prompt wins over the assistant's.
    let url = format!("/api/v1/sessions/{session}");
    let brief = json!({"system_prompt": "Be brief."});
    let (status, _) = call(&app, Method::PATCH, &url, None, Some(&brief)).await;
    assert_eq!(status, StatusCode::OK);
    app.fake.push(Behaviour::text("Left."));
    let (_, reply) = app.chat(&session, "And then?").await;
    assert_eq!(reply["name"], "Guide");
    assert_eq!(
        app.fake.requests()[1].messages()[0],
        json!({"role": "system", "content": "Be brief."})
    );

    let (status, _) = call(
        &app,
        Method::DELETE,
        &format!("/api/v1/assistants/{guide_id}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, after) = call(&app, Method::GET, &url, None, None).await;
    assert_eq!(after["assistant_id"], Value::Null, "the session falls back");
    assert_eq!(after["model"], POET_MODEL, "and keeps its model");
    let history = app.history(&session).await;
    for reply in [&history[1], &history[3]] {
        assert_eq!(
            (reply["name"].as_str(), reply["assistant_id"].as_str()),
            (Some("Guide"), Some(guide_id.as_str())),
            "a deleted assistant's messages keep saying who wrote them"
        );
    }

    app.fake.push(Behaviour::text("Down."));
    let (_, reply) = app.chat(&session, "Now what?").await;
    assert_eq!(
        (&reply["name"], &reply["assistant_id"]),
        (&Value::Null, &Value::Null),
        "the default voice answers"
    );
    let third = app.fake.requests()[2].messages().to_vec();
    assert_eq!(third[0], json!({"role": "system", "content": "Be brief."}));
    assert_eq!(
        third[2],
        json!({"role": "user", "name": "Guide", "content": "Guide: Take the ridge."}),
        "the default voice hears the deleted assistant by its name"
    );
}

#[tokio::test]
async fn a_sessions_assistant_is_set_changed_and_cleared_and_its_model_follows() {
    let app = spawn_app_with(&[MODELS]).await;
    let guide = id_of(&create_assistant(&app, json!({"name": "Guide", "model": POET_MODEL})).await);
    let own_model = app
        .create_session(json!({"assistant_id": guide, "model": "critic-model"}))
        .await;
    assert_eq!(
        (
            own_model["assistant_id"].as_str(),
            own_model["model"].as_str()
        ),
        (Some(guide.as_str()), Some("critic-model")),
        "the session's own model wins"
    );

    let plain = app.create_session(json!({})).await;
    assert_eq!(plain["assistant_id"], Value::Null);
    assert_eq!(plain["model"], "fake-model");
    let url = format!("/api/v1/sessions/{}", id_of(&plain));
    let patch = |body: Value| {
        let (app, url) = (&app, url.clone());
        async move { call(app, Method::PATCH, &url, None, Some(&body)).await }
    };
    let (status, set) = patch(json!({"assistant_id": guide})).await;
    assert_eq!(status, StatusCode::OK, "{set}");
    assert_eq!(
        (set["assistant_id"].as_str(), set["model"].as_str()),
        (Some(guide.as_str()), Some(POET_MODEL))
    );
    let (_, titled) = patch(json!({"title": "Alps"})).await;
    assert_eq!(
        titled["assistant_id"],
        guide.as_str(),
        "left out, left alone"
    );
    let (_, cleared) = patch(json!({"assistant_id": null})).await;
    assert_eq!(
        (&cleared["assistant_id"], cleared["model"].as_str()),
        (&Value::Null, Some(POET_MODEL)),
        "null clears it and keeps the model"
    );
    let (_, both) = patch(json!({"assistant_id": guide, "model": "critic-model"})).await;
    assert_eq!(both["model"], "critic-model");

    for (body, expected, slug) in [
        (
            json!({"assistant_id": "guide"}),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            json!({"assistant_id": "0190c6a4-1f55-7a0e-8b1a-5a5a5a5a5a5a"}),
            StatusCode::NOT_FOUND,
            "assistant-not-found",
        ),
    ] {
        let (status, problem) = patch(body.clone()).await;
        assert_problem(status, &problem, expected, slug);
        let (status, problem) =
            call(&app, Method::POST, "/api/v1/sessions", None, Some(&body)).await;
        assert_problem(status, &problem, expected, slug);
    }
    let (_, unchanged) = call(&app, Method::GET, &url, None, None).await;
    assert_eq!(unchanged, both, "a refused patch changes nothing");
    let (_, sessions) = call(&app, Method::GET, "/api/v1/sessions", None, None).await;
    assert_eq!(sessions["data"].as_array().unwrap().len(), 2, "nor creates");
}
