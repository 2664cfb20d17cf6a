//! Turns several assistants answer, one after the other; discussions between
//! them (`POST …/replies`); cancelling a turn; one turn at a time.

use std::time::Duration;

use colloquy_fake_upstream::Behaviour;
use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use super::{
    assert_problem, call, created, finals, id_of, poet_and_critic, whole_turn, CRITIC,
    CRITIC_MODEL, MODELS, POET, POET_MODEL,
};
use crate::support::{spawn_app_with, SseReader, TestApp};

const VERSE: &str = "The sea is wide, the sea is deep.";
const REVIEW: &str = "Wide and deep, and nothing more.";

fn system(content: &str) -> Value {
    json!({"role": "system", "content": content})
}

fn user(content: &str) -> Value {
    json!({"role": "user", "content": content})
}

/// Another voice's message, as the one answering reads it: a `user` turn
/// carrying its author in `name` and in the text.
fn said_by(name: &str, content: &str) -> Value {
    json!({"role": "user", "name": name, "content": format!("{name}: {content}")})
}

fn offered_tools(body: &Value) -> Vec<&str> {
    body["tools"].as_array().map_or_else(Vec::new, |tools| {
        tools
            .iter()
            .map(|tool| tool["function"]["name"].as_str().unwrap())
            .collect()
    })
}

/// A request that starts a turn, asking for its event stream.
async fn streamed(app: &TestApp, path: &str, body: &Value) -> SseReader {
    let response = app
        .http
        .post(app.url(path))
        .header(ACCEPT, "text/event-stream")
        .json(body)
        .send()
        .await
        .unwrap();
    SseReader::new(response)
}

#[tokio::test]
async fn two_assistants_answer_in_order_each_with_its_own_voice_and_the_other_named() {
    let app = spawn_app_with(&[MODELS]).await;
    let (poet, critic) = poet_and_critic(&app).await;
    app.fake
        .push(Behaviour::text(VERSE).pace(Duration::from_millis(2)))
        .push(Behaviour::text(REVIEW).pace(Duration::from_millis(2)));
    let session = app.new_session().await;
    let reader = app
        .send_streaming(
            &session,
            json!({"content": "Write about the sea.", "assistant_ids": [poet, critic]}),
        )
        .await;
    let events = whole_turn(reader).await;

    let created = created(&events);
    assert_eq!(created.len(), 3, "the user message, then both replies");
    assert_eq!(created[0]["role"], "user");
    assert_eq!(
        (&created[0]["assistant_id"], &created[0]["name"]),
        (&Value::Null, &Value::Null)
    );
    for (message, (id, name, model)) in created[1..].iter().zip([
        (&poet, "Poet", POET_MODEL),
        (&critic, "Critic", CRITIC_MODEL),
    ]) {
        assert_eq!(message["role"], "assistant");
        assert_eq!(message["status"], "streaming");
        assert_eq!(message["assistant_id"], id.as_str());
        assert_eq!(message["name"], name);
        assert_eq!(message["model"], model);
    }
    let finals = finals(&events);
    assert_eq!(finals.len(), 2);
    assert_eq!(finals[0]["id"], created[1]["id"]);
    assert_eq!(finals[1]["id"], created[2]["id"]);
    assert_eq!(
        (finals[0]["content"].as_str(), finals[1]["content"].as_str()),
        (Some(VERSE), Some(REVIEW))
    );
    assert!(finals.iter().all(|message| message["status"] == "complete"));
    // In order: the Critic's first word comes after the Poet's last event,
    // and the stream ends with the Critic's.
    let poet_ends = events
        .iter()
        .position(|event| event.event == "message.completed")
        .unwrap();
    let critic_starts = events
        .iter()
        .position(|event| event.delta().is_some() && event.data["message_id"] == created[2]["id"])
        .unwrap();
    assert!(poet_ends < critic_starts);
    assert_eq!(events.last().unwrap().data["id"], created[2]["id"]);
    let ids: Vec<u64> = events
        .iter()
        .map(|event| event.id.as_ref().unwrap().parse().unwrap())
        .collect();
    assert!(ids.windows(2).all(|pair| pair[0] < pair[1]));

    let requests = app.fake.requests();
    assert_eq!(requests.len(), 2, "one request per assistant");
    assert_eq!(requests[0].body["model"], POET_MODEL);
    assert_eq!(offered_tools(&requests[0].body), ["calculator"]);
    assert_eq!(
        requests[0].messages(),
        [system(POET), user("Write about the sea.")]
    );
    assert_eq!(requests[1].body["model"], CRITIC_MODEL);
    assert!(
        requests[1].body.get("tools").is_none(),
        "an assistant made without tools is offered none"
    );
    assert_eq!(
        requests[1].messages(),
        [
            system(CRITIC),
            user("Write about the sea."),
            said_by("Poet", VERSE)
        ],
        "the Critic hears the Poet by name, not as its own words"
    );
    let history = app.history(&session).await;
    assert_eq!(
        history,
        [created[0].clone(), finals[0].clone(), finals[1].clone()]
    );
}

#[tokio::test]
async fn the_202_of_a_turn_lists_every_reply_and_they_all_complete() {
    let app = spawn_app_with(&[MODELS]).await;
    let (poet, critic) = poet_and_critic(&app).await;
    app.fake
        .push(Behaviour::text(VERSE))
        .push(Behaviour::text(REVIEW));
    let session = app.new_session().await;
    let (status, accepted) = call(
        &app,
        Method::POST,
        &format!("/api/v1/sessions/{session}/messages"),
        None,
        Some(&json!({"content": "Write about the sea.", "assistant_ids": [poet, critic]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["user_message"]["content"], "Write about the sea.");
    let replies = accepted["assistant_messages"].as_array().unwrap();
    let speakers: Vec<(&Value, &Value, &Value)> = replies
        .iter()
        .map(|reply| (&reply["assistant_id"], &reply["name"], &reply["status"]))
        .collect();
    assert_eq!(
        speakers,
        [
            (&json!(poet), &json!("Poet"), &json!("streaming")),
            (&json!(critic), &json!("Critic"), &json!("streaming")),
        ]
    );
    assert_eq!(
        accepted["assistant_message"], replies[0],
        "the first of them"
    );
    assert_eq!(
        accepted["events_url"],
        format!("/api/v1/sessions/{session}/events")
    );
    let verse = app
        .stored_final(&session, replies[0]["id"].as_str().unwrap())
        .await;
    let review = app
        .stored_final(&session, replies[1]["id"].as_str().unwrap())
        .await;
    assert_eq!(
        (verse["content"].as_str(), verse["status"].as_str()),
        (Some(VERSE), Some("complete"))
    );
    assert_eq!(
        (review["content"].as_str(), review["status"].as_str()),
        (Some(REVIEW), Some("complete"))
    );
}

#[tokio::test]
async fn a_cancel_during_the_first_reply_stops_the_whole_turn() {
    let app = spawn_app_with(&[MODELS]).await;
    let (poet, critic) = poet_and_critic(&app).await;
    let long = "one two three four five six seven eight nine ten eleven twelve thirteen fourteen";
    app.fake
        .push(Behaviour::text(long).pace(Duration::from_millis(100)))
        .push(Behaviour::text("never asked for"));
    let session = app.new_session().await;
    let mut reader = app
        .send_streaming(
            &session,
            json!({"content": "Count slowly.", "assistant_ids": [poet, critic]}),
        )
        .await;
    let mut events = Vec::new();
    while events
        .iter()
        .filter(|event: &&crate::support::Sse| event.delta().is_some())
        .count()
        < 3
    {
        events.push(reader.next().await.expect("the first reply streams"));
    }
    let (status, cancelled) = call(
        &app,
        Method::POST,
        &format!("/api/v1/sessions/{session}/cancel"),
        None,
        None,
    )
    .await;
    assert_eq!(
        (status, cancelled),
        (StatusCode::OK, json!({"cancelled": true}))
    );
    events.extend(whole_turn(reader).await);

    let finals = finals(&events);
    assert_eq!(finals.len(), 2, "both replies end, and then the stream");
    let kept = finals[0]["content"].as_str().unwrap();
    assert_eq!(finals[0]["status"], "cancelled");
    assert_eq!(finals[0]["name"], "Poet");
    assert!(!kept.is_empty() && long.starts_with(kept), "{kept:?}");
    assert_eq!(finals[1]["status"], "cancelled");
    assert_eq!(finals[1]["name"], "Critic");
    assert_eq!(finals[1]["content"], "", "the Critic never spoke");
    assert!(finals
        .iter()
        .all(|message| message["error"].is_null() && message["completed_at"].is_string()));
    let history = app.history(&session).await;
    assert_eq!(history[1..], finals[..], "stored as announced");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        app.fake.requests().len(),
        1,
        "no request for the Critic reached the upstream"
    );
}

#[tokio::test]
async fn a_discussion_adds_replies_with_no_user_message_each_hearing_the_turn_before() {
    let app = spawn_app_with(&[MODELS]).await;
    let (poet, critic) = poet_and_critic(&app).await;
    let session = app.new_session().await;
    app.fake.push(Behaviour::text("Go to Lisbon."));
    app.chat(&session, "Plan a trip.").await;
    app.fake
        .push(Behaviour::text("Lisbon is crowded in summer."))
        .push(Behaviour::text("Yet its light is gold."));

    let replies = format!("/api/v1/sessions/{session}/replies");
    let reader = streamed(&app, &replies, &json!({"assistant_ids": [critic, poet]})).await;
    let events = whole_turn(reader).await;
    let created = created(&events);
    assert_eq!(created.len(), 2, "no user message: {created:?}");
    assert!(created.iter().all(|message| message["role"] == "assistant"));
    let finals = finals(&events);
    let said: Vec<(&str, &str)> = finals
        .iter()
        .map(|message| {
            (
                message["name"].as_str().unwrap(),
                message["content"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        said,
        [
            ("Critic", "Lisbon is crowded in summer."),
            ("Poet", "Yet its light is gold.")
        ]
    );

    let requests = app.fake.requests();
    assert_eq!(requests.len(), 3);
    assert_eq!(
        requests[1].messages(),
        [
            system(CRITIC),
            user("Plan a trip."),
            said_by("Assistant", "Go to Lisbon.")
        ],
        "the Critic answers the turn before, the default voice by its name"
    );
    assert_eq!(
        requests[2].messages(),
        [
            system(POET),
            user("Plan a trip."),
            said_by("Assistant", "Go to Lisbon."),
            said_by("Critic", "Lisbon is crowded in summer."),
        ]
    );
    let history = app.history(&session).await;
    assert_eq!(history.len(), 4);
    assert_eq!(history[2..], finals[..]);

    // As a `202`, and one assistant may speak twice: the second time it
    // hears its first answer as its own.
    app.fake
        .push(Behaviour::text("Gold, and blue."))
        .push(Behaviour::text("And blue again."));
    let (status, accepted) = call(
        &app,
        Method::POST,
        &replies,
        None,
        Some(&json!({"assistant_ids": [poet, poet]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["user_message"], Value::Null);
    let twice = accepted["assistant_messages"].as_array().unwrap();
    assert_eq!(twice.len(), 2);
    assert!(twice.iter().all(|reply| reply["name"] == "Poet"));
    assert_eq!(accepted["assistant_message"], twice[0]);
    app.stored_final(&session, twice[1]["id"].as_str().unwrap())
        .await;
    let requests = app.fake.requests();
    assert_eq!(requests.len(), 5);
    assert_eq!(
        requests[4].messages(),
        [
            system(POET),
            user("Plan a trip."),
            said_by("Assistant", "Go to Lisbon."),
            said_by("Critic", "Lisbon is crowded in summer."),
            json!({"role": "assistant", "content": "Yet its light is gold."}),
            json!({"role": "assistant", "content": "Gold, and blue."}),
        ],
        "its own answers, of the turn before and of this one, are its own"
    );
}

#[tokio::test]
async fn the_assistants_a_turn_names_are_checked_before_anything_is_stored() {
    let app = spawn_app_with(&[MODELS]).await;
    let (poet, _) = poet_and_critic(&app).await;
    let session = app.new_session().await;
    let unknown = "0190c6a4-1f55-7a0e-8b1a-5a5a5a5a5a5a";
    let nine = vec![poet.clone(); 9];
    for path in ["messages", "replies"] {
        let path = format!("/api/v1/sessions/{session}/{path}");
        for (ids, status, slug) in [
            (json!([]), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            (json!(nine), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
            (json!([poet, "bob"]), StatusCode::BAD_REQUEST, "bad-request"),
            (
                json!([poet, unknown]),
                StatusCode::NOT_FOUND,
                "assistant-not-found",
            ),
            (json!(poet), StatusCode::UNPROCESSABLE_ENTITY, "validation"),
        ] {
            let body = json!({"content": "hello", "assistant_ids": ids});
            let (got, problem) = call(&app, Method::POST, &path, None, Some(&body)).await;
            assert_problem(got, &problem, status, slug);
        }
    }
    let (status, problem) = call(
        &app,
        Method::POST,
        &format!("/api/v1/sessions/{session}/replies"),
        None,
        Some(&json!({})),
    )
    .await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    );
    let (status, problem) = call(
        &app,
        Method::POST,
        "/api/v1/sessions/0190c6a4-1f55-7a0e-8b1a-5a5a5a5a5a5b/replies",
        None,
        Some(&json!({"assistant_ids": [poet]})),
    )
    .await;
    assert_problem(status, &problem, StatusCode::NOT_FOUND, "session-not-found");
    assert!(app.history(&session).await.is_empty(), "nothing was stored");
    assert_eq!(app.fake.request_count(), 0, "nothing reached the model");
}

/// A send and a discussion in `session` are both refused: a turn runs.
async fn refused(app: &TestApp, session: &str, assistant: &str) {
    let send = json!({"content": "me too"});
    let messages = format!("/api/v1/sessions/{session}/messages");
    let (status, problem) = call(app, Method::POST, &messages, None, Some(&send)).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "reply-in-progress");
    let discuss = json!({"assistant_ids": [assistant]});
    let replies = format!("/api/v1/sessions/{session}/replies");
    let (status, problem) = call(app, Method::POST, &replies, None, Some(&discuss)).await;
    assert_problem(status, &problem, StatusCode::CONFLICT, "reply-in-progress");
}

#[tokio::test]
async fn a_turn_holds_the_session_from_its_first_reply_to_its_last() {
    let app = spawn_app_with(&[MODELS]).await;
    let (poet, critic) = poet_and_critic(&app).await;
    app.fake
        .push(Behaviour::text("one two three four five six").pace(Duration::from_millis(80)))
        // The Critic's upstream takes a while to answer: the gap between
        // the two replies is long enough to be seen.
        .push(Behaviour::text("Too short.").headers_delay(Duration::from_millis(800)));
    let session = app.new_session().await;
    let mut watcher = app.subscribe(&session, None).await;
    let messages = format!("/api/v1/sessions/{session}/messages");
    let turn = json!({"content": "Count.", "assistant_ids": [poet, critic]});
    let (status, accepted) = call(&app, Method::POST, &messages, None, Some(&turn)).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let ids: Vec<String> = accepted["assistant_messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(id_of)
        .collect();

    refused(&app, &session, &poet).await;
    watcher.until_reply_ends(&ids[0]).await;
    // Between the two replies: the Poet has ended, the Critic not begun.
    let history = app.history(&session).await;
    assert_eq!(
        (
            history[2]["status"].as_str(),
            history[2]["content"].as_str()
        ),
        (Some("streaming"), Some(""))
    );
    refused(&app, &session, &poet).await;
    let last = watcher.until_reply_ends(&ids[1]).await;
    assert_eq!(last.last().unwrap().data["content"], "Too short.");
    let (status, _) = call(
        &app,
        Method::POST,
        &messages,
        None,
        Some(&json!({"content": "now?"})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "free once the turn ended");
    let history = app.history(&session).await;
    assert_eq!(history.len(), 5, "the refused requests stored nothing");
}
