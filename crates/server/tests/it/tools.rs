//! Tools the model calls, scripted on the fake upstream, over real HTTP.

use colloquy_fake_upstream::{Behaviour, ScriptedToolCall};
use serde_json::{json, Value};

use crate::support::{spawn_app, text_of};

fn calculator(id: &str, arguments: &str) -> ScriptedToolCall {
    ScriptedToolCall::new(id, "calculator", arguments).split(3)
}

/// The `tool` messages of a recorded request, parsed.
fn tool_answers(body: &Value) -> Vec<(String, Value)> {
    body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| {
            let content = serde_json::from_str(m["content"].as_str().unwrap()).unwrap();
            (m["tool_call_id"].as_str().unwrap().to_owned(), content)
        })
        .collect()
}

#[tokio::test]
async fn a_calculator_call_gets_14_back_to_the_model_and_the_final_answer_streams() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::tool_calls([calculator(
            "call_1",
            r#"{"expression": "2*(3+4)"}"#,
        )]))
        .push(Behaviour::text("2*(3+4) is 14."));
    let session = app.new_session().await;
    let (events, last) = app.chat(&session, "What is 2*(3+4)?").await;

    let requests = app.fake.requests();
    assert_eq!(requests.len(), 2);
    let offered: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|tool| tool["function"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(offered, ["current_time", "calculator"]);
    let messages = requests[1].messages();
    let call_turn = &messages[messages.len() - 2];
    assert_eq!(call_turn["role"], "assistant");
    assert_eq!(call_turn["tool_calls"][0]["id"], "call_1");
    assert_eq!(
        call_turn["tool_calls"][0]["function"]["arguments"],
        r#"{"expression": "2*(3+4)"}"#
    );
    assert_eq!(
        tool_answers(&requests[1].body),
        [(
            "call_1".to_owned(),
            json!({"expression": "2*(3+4)", "value": 14})
        )]
    );

    let tool_event = events
        .iter()
        .find(|e| e.event == "message.tool_call")
        .expect("message.tool_call");
    assert_eq!(tool_event.data["message_id"], last["id"]);
    assert_eq!(
        tool_event.data["tool_call"]["arguments"],
        json!({"expression": "2*(3+4)"})
    );
    assert_eq!(tool_event.data["tool_call"]["result"]["value"], 14);
    assert_eq!(text_of(&events), "2*(3+4) is 14.");
    assert_eq!(last["status"], "complete");
    assert_eq!(last["content"], "2*(3+4) is 14.");
    assert_eq!(last["tool_calls"][0]["name"], "calculator");
    assert_eq!(last["tool_calls"][0]["error"], Value::Null);

    let history = app.history(&session).await;
    assert_eq!(history.len(), 2, "one user message, one assistant message");
    assert_eq!(history[1], last, "the calls are stored with the reply");
}

#[tokio::test]
async fn malformed_arguments_and_an_unknown_tool_end_in_clear_stored_errors() {
    let app = spawn_app().await;
    app.fake
        .push(Behaviour::tool_calls([
            calculator("call_bad", r#"{"expression": "2*(3"#),
            ScriptedToolCall::new("call_unknown", "run_shell", r#"{"cmd": "ls"}"#),
        ]))
        .push(Behaviour::text("I could not run those."));
    let session = app.new_session().await;
    let (_, last) = app.chat(&session, "break things").await;

    assert_eq!(
        last["status"], "complete",
        "a broken call never breaks the reply"
    );
    assert_eq!(last["content"], "I could not run those.");
    let calls = last["tool_calls"].as_array().unwrap();
    let bad = calls[0]["error"].as_str().unwrap();
    assert!(
        bad.starts_with("invalid arguments: not valid JSON"),
        "{bad}"
    );
    assert_eq!(
        calls[0]["arguments"], r#"{"expression": "2*(3"#,
        "kept as the model wrote it"
    );
    assert_eq!(
        calls[1]["error"],
        "unknown tool `run_shell`: the available tools are `current_time`, `calculator`"
    );
    assert!(calls.iter().all(|call| call["result"].is_null()));

    let answers = tool_answers(&app.fake.requests()[1].body);
    assert_eq!(answers.len(), 2);
    assert_eq!(answers[0].1, json!({ "error": bad }));
    assert_eq!(answers[1].0, "call_unknown");
    assert_eq!(app.history(&session).await[1], last);
}

#[tokio::test]
async fn a_fifth_round_of_tool_calls_ends_failed_and_stored() {
    let app = spawn_app().await;
    for round in 0..5 {
        app.fake.push(Behaviour::tool_calls([calculator(
            &format!("call_{round}"),
            r#"{"expression": "1+1"}"#,
        )]));
    }
    let session = app.new_session().await;
    let (events, last) = app.chat(&session, "keep calling").await;

    assert_eq!(events.last().unwrap().event, "message.failed");
    assert_eq!(last["status"], "failed");
    assert_eq!(last["error"]["code"], "internal");
    assert!(last["error"]["message"]
        .as_str()
        .unwrap()
        .contains("after 4 rounds"));
    let calls = last["tool_calls"].as_array().unwrap();
    assert_eq!(calls.len(), 5);
    assert!(calls[..4].iter().all(|call| call["result"]["value"] == 2));
    assert!(calls[4]["error"].as_str().unwrap().starts_with("not run"));
    let requests = app.fake.requests();
    assert_eq!(requests.len(), 5);
    assert!(requests[3].body.get("tools").is_some());
    assert!(
        requests[4].body.get("tools").is_none(),
        "the last request offers no tools"
    );
    assert_eq!(app.history(&session).await[1], last);
}
