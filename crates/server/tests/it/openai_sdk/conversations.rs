//! Conversations through the SDK: a completion whole and streamed, a
//! stateless client resending its history, a divergence, a named session;
//! each checked against what colloquy recorded.

use std::time::Duration;

use colloquy_fake_upstream::Behaviour;
use serde_json::{json, Value};

use super::{pairs, recorded, said, sdk};
use crate::support::spawn_app;

#[tokio::test]
async fn a_whole_completion_is_the_upstreams_reply_and_is_recorded() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text("Hello from the fake upstream."));

    let answer = sdk(&app, "complete", &["Say hello"]).await;

    let completion = &answer["completion"];
    assert_eq!(completion["object"], "chat.completion", "{completion}");
    let choice = &completion["choices"][0];
    assert_eq!(choice["message"]["role"], "assistant");
    assert_eq!(
        choice["message"]["content"],
        "Hello from the fake upstream."
    );
    assert_eq!(choice["finish_reason"], "stop");
    let usage = &completion["usage"];
    assert_eq!(usage["completion_tokens"], 5, "one a word: {usage}");
    assert!(usage["prompt_tokens"].as_u64().unwrap() > 0, "{usage}");
    assert_eq!(
        usage["total_tokens"].as_u64(),
        Some(usage["prompt_tokens"].as_u64().unwrap() + 5)
    );

    let (session, how) = recorded(&answer["headers"]);
    assert_eq!(how, "started");
    let history = app.history(&session).await;
    assert_eq!(
        said(&history),
        pairs(&[
            ("user", "Say hello"),
            ("assistant", "Hello from the fake upstream.")
        ])
    );
    let reply = &history[1];
    assert_eq!(reply["status"], "complete");
    assert_eq!(answer["headers"]["x-colloquy-message"], reply["id"]);
    assert_eq!(
        completion["id"],
        format!("chatcmpl-{}", reply["id"].as_str().unwrap())
    );
    assert_eq!(reply["usage"]["completion_tokens"], 5);
}

#[tokio::test]
async fn a_streamed_completion_arrives_chunk_by_chunk_and_ends_with_its_usage() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::text("One two three four").pace(Duration::from_millis(5)));

    let answer = sdk(&app, "stream", &["Count to four"]).await;

    assert_eq!(answer["text"], "One two three four");
    let chunks = answer["chunks"].as_array().unwrap();
    assert!(
        chunks
            .iter()
            .all(|chunk| chunk["object"] == "chat.completion.chunk"),
        "{chunks:#?}"
    );
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    let contents = chunks
        .iter()
        .filter(|chunk| {
            chunk["choices"][0]["delta"]["content"]
                .as_str()
                .is_some_and(|text| !text.is_empty())
        })
        .count();
    assert_eq!(
        contents, 4,
        "a chunk a word, as the upstream sent them: {chunks:#?}"
    );

    let (usage_chunk, choice_chunks) = chunks.split_last().unwrap();
    let finishes: Vec<&Value> = choice_chunks
        .iter()
        .map(|chunk| &chunk["choices"][0]["finish_reason"])
        .collect();
    assert_eq!(finishes.last().copied(), Some(&json!("stop")));
    assert!(
        finishes[..finishes.len() - 1]
            .iter()
            .all(|reason| reason.is_null()),
        "only the last choice chunk finishes: {finishes:?}"
    );
    assert_eq!(usage_chunk["choices"], json!([]), "{usage_chunk}");
    assert_eq!(usage_chunk["usage"]["completion_tokens"], 4);

    let (session, how) = recorded(&answer["headers"]);
    assert_eq!(how, "started");
    let history = app.history(&session).await;
    assert_eq!(history[1]["content"], "One two three four");
    assert_eq!(history[1]["status"], "complete");
    assert_eq!(
        history[1]["usage"]["prompt_tokens"],
        usage_chunk["usage"]["prompt_tokens"]
    );
}

#[tokio::test]
async fn a_stateless_client_resending_its_history_grows_one_session() {
    let app = spawn_app().await;
    let questions = [
        "First question",
        "Second question",
        "Third question",
        "Fourth question",
    ];

    // The fake echoes each last user message: "Echo: …".
    let answer = sdk(&app, "stateless", &questions).await;

    let turns = answer["turns"].as_array().unwrap();
    let recorded: Vec<(String, String)> = turns
        .iter()
        .map(|turn| recorded(&turn["headers"]))
        .collect();
    let session = &recorded[0].0;
    assert!(
        recorded.iter().all(|(id, _)| id == session),
        "every turn in one session: {recorded:?}"
    );
    let hows: Vec<&str> = recorded.iter().map(|(_, how)| how.as_str()).collect();
    assert_eq!(hows, ["started", "continued", "continued", "continued"]);

    let mut expected = Vec::new();
    for question in questions {
        expected.push(("user".to_owned(), question.to_owned()));
        expected.push(("assistant".to_owned(), format!("Echo: {question}")));
    }
    assert_eq!(said(&app.history(session).await), expected);
    let sessions: Value = app
        .http
        .get(app.url("/api/v1/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["data"].as_array().unwrap().len(), 1, "{sessions}");

    // The upstream heard the conversation once, not the request's copy
    // appended to the session's own.
    let last = app.fake.requests().pop().unwrap();
    let heard = last.messages();
    assert_eq!(heard[0]["role"], "system");
    assert_eq!(heard[0]["content"], "You are terse.");
    assert_eq!(said(&heard[1..]), expected[..expected.len() - 1]);
}

#[tokio::test]
async fn resending_an_earlier_turn_with_another_question_branches_the_session() {
    let app = spawn_app().await;

    let answer = sdk(
        &app,
        "diverge",
        &["Where is Paris?", "And Rome?", "And Madrid?"],
    )
    .await;

    let turns = answer["turns"].as_array().unwrap();
    let recorded: Vec<(String, String)> = turns.iter().map(recorded).collect();
    let session = &recorded[0].0;
    assert!(recorded.iter().all(|(id, _)| id == session), "{recorded:?}");
    let hows: Vec<&str> = recorded.iter().map(|(_, how)| how.as_str()).collect();
    assert_eq!(hows, ["started", "continued", "branched"]);

    let active = app.branch(session, None).await;
    assert_eq!(
        said(&active),
        pairs(&[
            ("user", "Where is Paris?"),
            ("assistant", "Echo: Where is Paris?"),
            ("user", "And Madrid?"),
            ("assistant", "Echo: And Madrid?"),
        ])
    );
    let forks = active[2]["siblings"]["ids"].as_array().unwrap();
    assert_eq!(
        forks.len(),
        2,
        "two questions after the first reply: {active:#?}"
    );

    let old_reply = turns[1]["x-colloquy-message"].as_str().unwrap();
    let old = app.branch(session, Some(old_reply)).await;
    assert_eq!(
        said(&old),
        pairs(&[
            ("user", "Where is Paris?"),
            ("assistant", "Echo: Where is Paris?"),
            ("user", "And Rome?"),
            ("assistant", "Echo: And Rome?"),
        ])
    );
    assert!(forks.contains(&old[2]["id"]), "{forks:?}");
}

#[tokio::test]
async fn a_session_named_by_header_or_metadata_is_continued_with_its_own_history() {
    let app = spawn_app().await;
    let created = app
        .create_session(json!({"system_prompt": "The session's own prompt."}))
        .await;
    let session = created["id"].as_str().unwrap().to_owned();
    app.chat(&session, "Asked natively").await;

    let answer = sdk(&app, "named", &[&session, "Via the header", "Via metadata"]).await;

    for way in ["by_header", "by_metadata"] {
        assert_eq!(
            recorded(&answer[way]["headers"]),
            (session.clone(), "continued".to_owned()),
            "{way}: {answer}"
        );
    }
    assert_eq!(answer["by_metadata"]["reply"], "Echo: Via metadata");
    let expected = pairs(&[
        ("user", "Asked natively"),
        ("assistant", "Echo: Asked natively"),
        ("user", "Via the header"),
        ("assistant", "Echo: Via the header"),
        ("user", "Via metadata"),
        ("assistant", "Echo: Via metadata"),
    ]);
    assert_eq!(said(&app.history(&session).await), expected);

    // The request held only the new question and no system message; the
    // upstream heard the session's own prompt and history before it.
    let last = app.fake.requests().pop().unwrap();
    let heard = last.messages();
    assert_eq!(heard[0]["role"], "system");
    assert_eq!(heard[0]["content"], "The session's own prompt.");
    assert_eq!(said(&heard[1..]), expected[..expected.len() - 1]);
}
