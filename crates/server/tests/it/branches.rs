//! Branches over real HTTP: regenerating a reply and editing a question
//! stream like a send and add a branch beside the old one, which stays
//! readable; `siblings` say "2 / 3"; `PATCH {"head_message_id"}` switches
//! (announced as `session.updated`); `?leaf=` reads another branch; the
//! model hears the branch it answers on.

use std::time::Duration;

use colloquy_fake_upstream::{Behaviour, RecordedRequest};
use reqwest::header::ACCEPT;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::assistants::{assert_problem, call, create_assistant, id_of};
use crate::support::{spawn_app, text_of, SseReader, TestApp};

fn rework(session: &str, message: &str, action: &str) -> String {
    format!("/api/v1/sessions/{session}/messages/{message}/{action}")
}

/// Regenerates or edits (`action`) asking for the turn's event stream.
async fn rework_streaming(
    app: &TestApp,
    session: &str,
    message: &str,
    action: &str,
    body: Option<Value>,
) -> SseReader {
    let mut request = app
        .http
        .post(app.url(&rework(session, message, action)))
        .header(ACCEPT, "text/event-stream");
    if let Some(body) = body {
        request = request.json(&body);
    }
    SseReader::new(request.send().await.unwrap())
}

/// What a request to the model held after its system prompt: (role, text).
fn heard(request: &RecordedRequest) -> Vec<(String, String)> {
    let messages = request.messages();
    assert_eq!(messages[0]["role"], "system");
    messages[1..]
        .iter()
        .map(|message| {
            (
                message["role"].as_str().unwrap().to_owned(),
                message["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn said(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(role, text)| ((*role).to_owned(), (*text).to_owned()))
        .collect()
}

fn ids(messages: &[Value]) -> Vec<String> {
    messages.iter().map(id_of).collect()
}

async fn session_of(app: &TestApp, session: &str) -> Value {
    let (status, body) = call(
        app,
        Method::GET,
        &format!("/api/v1/sessions/{session}"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body
}

#[tokio::test]
async fn regenerating_twice_keeps_three_replies_side_by_side_and_one_can_switch_back() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    app.fake.push(Behaviour::text("Tram 28."));
    let (_, first) = app.chat(&session, "Which tram goes to the castle?").await;
    let question = id_of(&app.history(&session).await[0]);
    let first = id_of(&first);

    // Streamed like a send: the new reply's events, then the end.
    app.fake.push(Behaviour::text("Tram 12, then walk."));
    let mut reader = rework_streaming(&app, &session, &first, "regenerate", None).await;
    let created = reader.next().await.unwrap();
    assert_eq!(created.event, "message.created");
    assert_eq!(created.data["role"], "assistant");
    assert_eq!(created.data["status"], "streaming");
    assert_eq!(
        created.data["parent_id"], question,
        "beside the first reply, under the same question"
    );
    let second = id_of(&created.data);
    let events = reader.until_reply_ends(&second).await;
    assert_eq!(text_of(&events), "Tram 12, then walk.");
    assert_eq!(events.last().unwrap().event, "message.completed");
    assert!(
        reader.next().await.is_none(),
        "the stream ends with the reply"
    );
    assert_eq!(
        heard(&app.fake.requests()[1]),
        said(&[("user", "Which tram goes to the castle?")]),
        "the model hears the question, not the reply it replaces"
    );

    // Without an event stream (and with an empty body): a 202.
    app.fake.push(Behaviour::text("Tram 15."));
    let (status, accepted) = call(
        &app,
        Method::POST,
        &rework(&session, &first, "regenerate"),
        None,
        Some(&json!({})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert!(accepted["user_message"].is_null(), "{accepted}");
    assert_eq!(
        accepted["events_url"],
        format!("/api/v1/sessions/{session}/events")
    );
    let third = id_of(&accepted["assistant_message"]);
    let turn = accepted["assistant_messages"].as_array().unwrap();
    assert_eq!((turn.len(), id_of(&turn[0])), (1, third.clone()));
    let stored = app.stored_final(&session, &third).await;
    assert_eq!(stored["content"], "Tram 15.");

    let listed = app.branch(&session, None).await;
    assert_eq!(ids(&listed), [question.clone(), third.clone()]);
    assert_eq!(
        listed[0]["siblings"],
        json!({"ids": [question], "index": 0})
    );
    assert_eq!(
        listed[1]["siblings"],
        json!({"ids": [first, second, third], "index": 2}),
        "3 / 3"
    );
    let now = session_of(&app, &session).await;
    assert_eq!(now["head_message_id"], third);
    assert_eq!(now["message_count"], 2, "the active branch's messages");

    // Back to the second reply: a PATCH, which every watcher hears of.
    let mut watcher = app.subscribe(&session, None).await;
    let (status, patched) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/sessions/{session}"),
        None,
        Some(&json!({"head_message_id": second})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["head_message_id"], second);
    assert_eq!(patched["message_count"], 2);
    let update = watcher.next().await.unwrap();
    assert_eq!(update.event, "session.updated");
    assert_eq!(
        update.data, patched,
        "the event carries the session as patched"
    );
    let listed = app.branch(&session, None).await;
    assert_eq!(ids(&listed), [question.clone(), second.clone()]);
    assert_eq!(listed[1]["siblings"]["index"], 1, "2 / 3");

    // `?leaf=` reads another branch without switching to it.
    let other = app.branch(&session, Some(&first)).await;
    assert_eq!(ids(&other), [question.clone(), first.clone()]);
    assert_eq!(other[1]["content"], "Tram 28.");
    assert_eq!(other[1]["siblings"]["index"], 0);
    assert_eq!(session_of(&app, &session).await["head_message_id"], second);

    // The next question follows the branch switched to.
    app.fake.push(Behaviour::text("About twenty minutes."));
    app.chat(&session, "How long is the ride?").await;
    assert_eq!(
        heard(app.fake.requests().last().unwrap()),
        said(&[
            ("user", "Which tram goes to the castle?"),
            ("assistant", "Tram 12, then walk."),
            ("user", "How long is the ride?"),
        ])
    );
    let history = app.history(&session).await;
    assert_eq!(history.len(), 4);
    assert_eq!(history[2]["parent_id"], second);
}

#[tokio::test]
async fn editing_a_question_asks_it_again_on_a_new_branch_and_the_old_one_stays() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    app.fake.push(Behaviour::text("Paris."));
    app.chat(&session, "Capital of France?").await;
    app.fake.push(Behaviour::text("About two million."));
    app.chat(&session, "How many people live there?").await;
    let old = app.history(&session).await;
    let (first_question, first_answer) = (id_of(&old[0]), id_of(&old[1]));
    let old_question = id_of(&old[2]);

    // Streamed like a send: the new question, its reply, the end.
    app.fake
        .push(Behaviour::text("About 105 square kilometres."));
    let mut reader = rework_streaming(
        &app,
        &session,
        &old_question,
        "edit",
        Some(json!({"content": "How big is it?"})),
    )
    .await;
    let asked = reader.next().await.unwrap();
    assert_eq!(
        (asked.event.as_str(), &asked.data["role"]),
        ("message.created", &json!("user"))
    );
    assert_eq!(asked.data["content"], "How big is it?");
    assert_eq!(
        asked.data["parent_id"], first_answer,
        "beside the old question"
    );
    let answer = reader.next().await.unwrap();
    assert_eq!(answer.data["role"], "assistant");
    assert_eq!(answer.data["parent_id"], asked.data["id"]);
    let events = reader.until_reply_ends(&id_of(&answer.data)).await;
    assert_eq!(text_of(&events), "About 105 square kilometres.");
    assert!(reader.next().await.is_none());
    assert_eq!(
        heard(app.fake.requests().last().unwrap()),
        said(&[
            ("user", "Capital of France?"),
            ("assistant", "Paris."),
            ("user", "How big is it?"),
        ])
    );

    let listed = app.branch(&session, None).await;
    assert_eq!(
        ids(&listed),
        [
            first_question.clone(),
            first_answer.clone(),
            id_of(&asked.data),
            id_of(&answer.data)
        ]
    );
    assert_eq!(
        listed[2]["siblings"],
        json!({"ids": [old_question, id_of(&asked.data)], "index": 1})
    );
    let kept = app.branch(&session, Some(&id_of(&old[3]))).await;
    let texts: Vec<&str> = kept
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(
        texts,
        [
            "Capital of France?",
            "Paris.",
            "How many people live there?",
            "About two million."
        ],
        "nothing was overwritten"
    );
    assert_eq!(session_of(&app, &session).await["message_count"], 4);

    // Editing the first question makes a second root, here answered by
    // a named assistant; regenerating that reply asks the same assistant.
    let guide = create_assistant(&app, json!({"name": "Guide", "model": "guide-model"})).await;
    app.fake.push(Behaviour::text("Madrid."));
    let (status, accepted) = call(
        &app,
        Method::POST,
        &rework(&session, &first_question, "edit"),
        None,
        Some(&json!({"content": "Capital of Spain?", "assistant_ids": [id_of(&guide)]})),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{accepted}");
    assert_eq!(accepted["user_message"]["content"], "Capital of Spain?");
    assert!(accepted["user_message"]["parent_id"].is_null());
    let madrid = id_of(&accepted["assistant_message"]);
    assert_eq!(app.stored_final(&session, &madrid).await["name"], "Guide");
    assert_eq!(
        heard(app.fake.requests().last().unwrap()),
        said(&[("user", "Capital of Spain?")])
    );
    let listed = app.branch(&session, None).await;
    assert_eq!(listed.len(), 2);
    assert_eq!(
        listed[0]["siblings"],
        json!({"ids": [first_question, id_of(&accepted["user_message"])], "index": 1})
    );
    app.fake.push(Behaviour::text("Madrid, of course."));
    let (status, again) = call(
        &app,
        Method::POST,
        &rework(&session, &madrid, "regenerate"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{again}");
    assert_eq!(again["assistant_message"]["name"], "Guide");
    assert_eq!(again["assistant_message"]["model"], "guide-model");
    app.stored_final(&session, &id_of(&again["assistant_message"]))
        .await;

    // Switching to the first question goes to the newest message below it.
    let (status, patched) = call(
        &app,
        Method::PATCH,
        &format!("/api/v1/sessions/{session}"),
        None,
        Some(&json!({"head_message_id": first_question})),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{patched}");
    assert_eq!(patched["head_message_id"], id_of(&answer.data));
    assert_eq!(patched["message_count"], 4);
}

#[tokio::test]
async fn the_wrong_role_a_message_not_in_the_session_or_a_running_turn_is_refused() {
    let app = spawn_app().await;
    let session = app.new_session().await;
    let (_, reply) = app.chat(&session, "hello").await;
    let question = id_of(&app.history(&session).await[0]);
    let reply = id_of(&reply);
    let elsewhere = app.new_session().await;
    let (_, foreign) = app.chat(&elsewhere, "elsewhere").await;
    let foreign = id_of(&foreign);
    let unknown = "01936f4e-8a2b-7c3d-9e4f-5a6b7c8d9e0f";
    let edit = json!({"content": "again"});

    let refusals: Vec<(Method, String, Option<Value>, StatusCode, &str)> = vec![
        (
            Method::POST,
            rework(&session, &question, "regenerate"),
            None,
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong-role",
        ),
        (
            Method::POST,
            rework(&session, &reply, "edit"),
            Some(edit.clone()),
            StatusCode::UNPROCESSABLE_ENTITY,
            "wrong-role",
        ),
        (
            Method::POST,
            rework(&session, unknown, "regenerate"),
            None,
            StatusCode::NOT_FOUND,
            "message-not-found",
        ),
        (
            Method::POST,
            rework(&session, &foreign, "regenerate"),
            None,
            StatusCode::NOT_FOUND,
            "message-not-found",
        ),
        (
            Method::POST,
            rework(&session, unknown, "edit"),
            Some(edit.clone()),
            StatusCode::NOT_FOUND,
            "message-not-found",
        ),
        (
            Method::POST,
            rework(unknown, &reply, "regenerate"),
            None,
            StatusCode::NOT_FOUND,
            "session-not-found",
        ),
        (
            Method::POST,
            rework(&session, "not-an-id", "regenerate"),
            None,
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            Method::POST,
            rework(&session, &question, "edit"),
            Some(json!({"content": "   "})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            Method::POST,
            rework(&session, &question, "edit"),
            Some(json!({})),
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
        ),
        (
            Method::GET,
            format!("/api/v1/sessions/{session}/messages?leaf={unknown}"),
            None,
            StatusCode::NOT_FOUND,
            "message-not-found",
        ),
        (
            Method::GET,
            format!("/api/v1/sessions/{session}/messages?leaf={foreign}"),
            None,
            StatusCode::NOT_FOUND,
            "message-not-found",
        ),
        (
            Method::GET,
            format!("/api/v1/sessions/{session}/messages?leaf=nope"),
            None,
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
        (
            Method::PATCH,
            format!("/api/v1/sessions/{session}"),
            Some(json!({"head_message_id": foreign})),
            StatusCode::NOT_FOUND,
            "message-not-found",
        ),
        (
            Method::PATCH,
            format!("/api/v1/sessions/{session}"),
            Some(json!({"head_message_id": "nope"})),
            StatusCode::BAD_REQUEST,
            "bad-request",
        ),
    ];
    for (method, path, body, expected, slug) in refusals {
        let (status, problem) = call(&app, method.clone(), &path, None, body.as_ref()).await;
        assert_problem(status, &problem, expected, slug);
        assert!(
            problem["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{method} {path}: {problem}"
        );
    }
    let detail = call(
        &app,
        Method::POST,
        &rework(&session, &question, "regenerate"),
        None,
        None,
    )
    .await
    .1["detail"]
        .clone();
    assert!(
        detail.as_str().unwrap().contains("edit"),
        "the refusal says what to do instead: {detail}"
    );
    assert_eq!(app.history(&session).await.len(), 2, "nothing was added");
    assert_eq!(app.fake.request_count(), 2, "the model was never asked");

    // One turn at a time: a regenerate or an edit while a reply streams is 409.
    app.fake.push(
        Behaviour::text("one two three four five six seven eight").pace(Duration::from_millis(250)),
    );
    let running = app.send_accepted(&session, "tell me slowly").await;
    for (path, body) in [
        (rework(&session, &reply, "regenerate"), None),
        (rework(&session, &question, "edit"), Some(edit.clone())),
    ] {
        let (status, problem) = call(&app, Method::POST, &path, None, body.as_ref()).await;
        assert_problem(status, &problem, StatusCode::CONFLICT, "reply-in-progress");
    }
    let (status, _) = call(
        &app,
        Method::POST,
        &format!("/api/v1/sessions/{session}/cancel"),
        None,
        None,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    let ended = app
        .stored_final(&session, &id_of(&running["assistant_message"]))
        .await;
    assert_eq!(ended["status"], "cancelled");
}
