//! What the upstream is sent: the session's settings, then the history
//! that fits the context budget.

use colloquy_fake_upstream::Behaviour;
use serde_json::{json, Value};

use crate::support::spawn_app_with;

#[tokio::test]
async fn the_upstream_gets_the_system_prompt_then_the_newest_turns_within_the_budget() {
    // Each turn below is about 95 tokens: 250 holds the system prompt, the
    // new message and two turns, not three.
    let app = spawn_app_with(&[
        ("COLLOQUY_CONTEXT_TOKENS", "250"),
        ("COLLOQUY_TOOLS", "none"),
    ])
    .await;
    let session = app
        .create_session(json!({"system_prompt": "Be brief.", "model": "session-model"}))
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    for turn in 1..=3 {
        let (_, last) = app
            .chat(&session, &format!("turn {turn} {}", "apple ".repeat(40)))
            .await;
        assert_eq!(last["status"], "complete");
    }
    app.fake.push(Behaviour::text("ok"));
    app.chat(&session, "the new question").await;

    let history = app.history(&session).await;
    let sent = &app.fake.requests()[3].body;
    assert_eq!(sent["model"], "session-model");
    let turn = |index: usize| {
        let message: &Value = &history[index];
        json!({"role": message["role"], "content": message["content"]})
    };
    assert_eq!(
        sent["messages"],
        json!([
            {"role": "system", "content": "Be brief."},
            turn(2), turn(3), turn(4), turn(5),
            {"role": "user", "content": "the new question"},
        ]),
        "the first turn is dropped whole"
    );
    assert!(
        sent.get("tools").is_none(),
        "COLLOQUY_TOOLS=none offers none"
    );
}

#[tokio::test]
async fn sessions_without_a_system_prompt_get_the_default_and_a_patch_changes_it() {
    let app = spawn_app_with(&[]).await;
    let session = app.new_session().await;
    app.chat(&session, "hello").await;
    let first = app.fake.requests()[0].body.clone();
    assert_eq!(first["messages"][0]["role"], "system");
    assert_eq!(
        first["messages"][0]["content"],
        colloquy_app::DEFAULT_SYSTEM_PROMPT
    );
    assert_eq!(first["model"], "fake-model");

    let patched = app
        .http
        .patch(app.url(&format!("/api/v1/sessions/{session}")))
        .json(&json!({"system_prompt": "Answer in French.", "model": "other-model"}))
        .send()
        .await
        .unwrap();
    assert_eq!(patched.status(), 200);
    app.chat(&session, "again").await;
    let second = &app.fake.requests()[1].body;
    assert_eq!(second["messages"][0]["content"], "Answer in French.");
    assert_eq!(second["model"], "other-model");
    let history = app.history(&session).await;
    assert_eq!(
        second["messages"].as_array().unwrap().len(),
        4,
        "system prompt, the first turn, the new message"
    );
    assert_eq!(history[3]["model"], "other-model");
    // The upstream's own count is what is stored.
    let usage = &history[3]["usage"];
    assert!(
        usage["prompt_tokens"].as_u64().unwrap() > 0
            && usage["completion_tokens"].as_u64().unwrap() > 0
    );
}
