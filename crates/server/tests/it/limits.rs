//! The limits of the contract over real HTTP: each reached, answered `429`
//! with `Retry-After` and the limit's name, and recovered from; the models
//! offered; the reply token limit; `GET /api/v1/me`.

use std::time::Duration;

use colloquy_fake_upstream::Behaviour;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::support::{spawn_app_with, start_on, TestApp};

/// A `429` as the contract says it: problem+json, `Retry-After`, the limit named.
async fn assert_limited(response: reqwest::Response, limit: &str) -> u64 {
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds");
    assert!(retry_after >= 1);
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["status"], 429);
    assert_eq!(body["limit"], limit, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("COLLOQUY_"),
        "the detail names the variable: {body}"
    );
    retry_after
}

async fn get(app: &TestApp, path: &str) -> reqwest::Response {
    app.http.get(app.url(path)).send().await.unwrap()
}

#[tokio::test]
async fn requests_over_the_minutes_allowance_get_429_until_it_refills() {
    // 120 a minute: one more every half second.
    let app = spawn_app_with(&[("COLLOQUY_RATE_LIMIT_PER_MINUTE", "120")]).await;
    for _ in 0..120 {
        assert_eq!(get(&app, "/api/v1/sessions").await.status(), StatusCode::OK);
    }
    let retry_after =
        assert_limited(get(&app, "/api/v1/sessions").await, "requests_per_minute").await;
    assert!(retry_after <= 1, "one request refills in half a second");
    // Health checks are not API requests and are never limited.
    assert_eq!(get(&app, "/healthz").await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(get(&app, "/api/v1/sessions").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn replies_at_once_are_limited_per_principal() {
    let app = spawn_app_with(&[("COLLOQUY_MAX_REPLIES_PER_PRINCIPAL", "1")]).await;
    app.fake
        .push(Behaviour::text("a slow answer").stall_after(1));
    let (first, second) = (app.new_session().await, app.new_session().await);
    let started = app.send_accepted(&first, "take your time").await;
    let reply = started["assistant_message"]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let refused = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{second}/messages")))
        .json(&json!({"content": "me too"}))
        .send()
        .await
        .unwrap();
    assert_limited(refused, "replies_at_once").await;
    // Nothing was stored for the refused send.
    assert!(app.history(&second).await.is_empty());

    let cancelled = app
        .http
        .post(app.url(&format!("/api/v1/sessions/{first}/cancel")))
        .send()
        .await
        .unwrap();
    assert_eq!(cancelled.status(), StatusCode::OK);
    app.stored_final(&first, &reply).await;
    let accepted = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let response = app
                .http
                .post(app.url(&format!("/api/v1/sessions/{second}/messages")))
                .json(&json!({"content": "me too"}))
                .send()
                .await
                .unwrap();
            if response.status() == StatusCode::ACCEPTED {
                return;
            }
            assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await;
    assert!(
        accepted.is_ok(),
        "the place is given back after the reply ends"
    );
}

#[tokio::test]
async fn open_streams_are_limited_and_a_closed_one_gives_its_place_back() {
    let app = spawn_app_with(&[("COLLOQUY_MAX_STREAMS_PER_PRINCIPAL", "1")]).await;
    let session = app.new_session().await;
    let events = format!("/api/v1/sessions/{session}/events");
    let open = get(&app, &events).await;
    assert_eq!(open.status(), StatusCode::OK);
    assert_limited(get(&app, &events).await, "streams_at_once").await;

    // The server learns that a client left when writing to it fails: the
    // next event (here, a rename) or keep-alive frees the place.
    drop(open);
    let reopened = tokio::time::timeout(Duration::from_secs(5), async {
        loop {
            let renamed = app
                .http
                .patch(app.url(&format!("/api/v1/sessions/{session}")))
                .json(&json!({"title": "a write to every stream"}))
                .send()
                .await
                .unwrap();
            assert_eq!(renamed.status(), StatusCode::OK);
            let response = get(&app, &events).await;
            if response.status() == StatusCode::OK {
                return response;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    })
    .await
    .expect("a closed stream gives its place back");
    drop(reopened);
}

#[tokio::test]
async fn the_days_tokens_once_spent_refuse_replies_until_midnight_even_after_a_restart() {
    let limit = [("COLLOQUY_DAILY_TOKENS_PER_PRINCIPAL", "10")];
    let app = spawn_app_with(&limit).await;
    let session = app.new_session().await;
    let (_, reply) = app.chat(&session, "spend it all").await;
    let used = &reply["usage"];
    let spent =
        used["prompt_tokens"].as_u64().unwrap() + used["completion_tokens"].as_u64().unwrap();
    assert!(spent >= 10, "the fake's usage spends the allowance: {used}");

    let me: Value = get(&app, "/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["principal"], "anonymous");
    assert_eq!(me["limits"]["daily_tokens"], 10);
    assert_eq!(me["usage_today"]["prompt_tokens"], used["prompt_tokens"]);
    assert_eq!(
        me["usage_today"]["completion_tokens"],
        used["completion_tokens"]
    );

    let send = |app: &TestApp| {
        app.http
            .post(app.url(&format!("/api/v1/sessions/{session}/messages")))
            .json(&json!({"content": "one more"}))
            .send()
    };
    let retry_after = assert_limited(send(&app).await.unwrap(), "daily_tokens").await;
    assert!(retry_after <= 86_400);
    assert_eq!(
        app.history(&session).await.len(),
        2,
        "nothing stored for the refusal"
    );

    // The ledger is in the database: a restarted server remembers it.
    app.stop().await;
    let TestApp { fake, db_dir, .. } = app;
    let restarted = start_on(fake, db_dir, &limit).await;
    assert_limited(send(&restarted).await.unwrap(), "daily_tokens").await;
}

#[tokio::test]
async fn me_shows_the_limits_in_force_and_null_for_those_turned_off() {
    let app = spawn_app_with(&[
        ("COLLOQUY_RATE_LIMIT_PER_MINUTE", "0"),
        ("COLLOQUY_MAX_REPLY_TOKENS", "512"),
    ])
    .await;
    let me: Value = get(&app, "/api/v1/me").await.json().await.unwrap();
    assert_eq!(
        me["limits"],
        json!({
            "requests_per_minute": null,
            "replies_at_once": 4,
            "streams_at_once": 64,
            "daily_tokens": null,
            "max_reply_tokens": 512,
        })
    );
    assert_eq!(
        me["usage_today"],
        json!({"prompt_tokens": 0, "completion_tokens": 0})
    );
}

#[tokio::test]
async fn only_the_models_offered_may_be_named() {
    let app = spawn_app_with(&[("COLLOQUY_MODELS", "fake-model, fake-large")]).await;
    let models: Value = get(&app, "/api/v1/models").await.json().await.unwrap();
    assert_eq!(
        models,
        json!({"data": [{"id": "fake-model"}, {"id": "fake-large"}]})
    );
    let created = app.create_session(json!({"model": "fake-large"})).await;
    assert_eq!(created["model"], "fake-large");

    let refused = app
        .http
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"model": "gpt-4o"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["detail"].as_str().unwrap().contains("gpt-4o"),
        "{body}"
    );
    let id = created["id"].as_str().unwrap();
    let patched = app
        .http
        .patch(app.url(&format!("/api/v1/sessions/{id}")))
        .json(&json!({"model": "gpt-4o"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), StatusCode::UNPROCESSABLE_ENTITY);
}

#[tokio::test]
async fn by_default_only_the_default_model_is_offered_and_a_star_offers_any() {
    // Empty is unset: the contract's default.
    let strict = spawn_app_with(&[("COLLOQUY_MODELS", "")]).await;
    let models: Value = get(&strict, "/api/v1/models").await.json().await.unwrap();
    assert_eq!(models, json!({"data": [{"id": "fake-model"}]}));
    let refused = strict
        .http
        .post(strict.url("/api/v1/sessions"))
        .json(&json!({"model": "other-model"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), StatusCode::UNPROCESSABLE_ENTITY);

    let open = spawn_app_with(&[("COLLOQUY_MODELS", "*")]).await;
    let created = open.create_session(json!({"model": "other-model"})).await;
    assert_eq!(created["model"], "other-model");
}

#[tokio::test]
async fn the_reply_token_limit_goes_upstream_and_a_reply_cut_there_is_complete() {
    let app = spawn_app_with(&[("COLLOQUY_MAX_REPLY_TOKENS", "3")]).await;
    app.fake
        .push(Behaviour::text("one two three four five six").split(6));
    let session = app.new_session().await;
    let (_, reply) = app.chat(&session, "say six words").await;
    assert_eq!(reply["status"], "complete");
    assert_eq!(reply["finish_reason"], "length");
    let asked = app.fake.requests();
    let body = &asked.last().expect("the reply's request").body;
    let sent = body
        .get("max_completion_tokens")
        .or_else(|| body.get("max_tokens"))
        .expect("a token limit is sent");
    assert_eq!(sent, 3);
}

#[tokio::test]
async fn guessing_credentials_is_held_to_the_rate_limit_of_the_address() {
    let app = spawn_app_with(&[
        ("COLLOQUY_AUTH", "keys"),
        ("COLLOQUY_RATE_LIMIT_PER_MINUTE", "120"),
    ])
    .await;
    let store = colloquy_diesel::SqliteRepository::connect(
        &app.db_dir.path().join("colloquy.db").display().to_string(),
        1,
    )
    .unwrap();
    let key = colloquy_auth::ApiKeys::issue(
        &store,
        colloquy_domain::Principal::parse("alice").unwrap(),
        None,
    )
    .await
    .unwrap()
    .key;
    let guess = |bearer: &str| {
        app.http
            .get(app.url("/api/v1/sessions"))
            .bearer_auth(bearer)
            .send()
    };
    for n in 0..120 {
        let refused = guess(&format!("ck_guess{n}")).await.unwrap();
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    }
    assert_limited(
        guess("ck_one-guess-too-many").await.unwrap(),
        "requests_per_minute",
    )
    .await;
    // The address's allowance is not alice's: her key still works.
    assert_eq!(guess(&key).await.unwrap().status(), StatusCode::OK);
}
