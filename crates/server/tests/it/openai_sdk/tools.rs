//! A client's own tool through the SDK: the model's call comes back to the
//! client (`finish_reason: tool_calls`), the client answers with a `tool`
//! message, the model's answer follows — all in one session.

use colloquy_fake_upstream::{Behaviour, ScriptedToolCall};
use serde_json::json;

use super::{recorded, sdk};
use crate::support::spawn_app;

const RESULT: &str = "Sunny, 21 degrees";

#[tokio::test]
async fn a_client_tool_call_goes_to_the_client_and_its_result_to_the_model() {
    let app = spawn_app().await;
    let arguments = r#"{"city":"Paris"}"#;
    app.fake
        .push(Behaviour::tool_calls([ScriptedToolCall::new(
            "call_whole",
            "weather",
            arguments,
        )]))
        .push(Behaviour::text("It is sunny in Paris."))
        .push(Behaviour::tool_calls([ScriptedToolCall::new(
            "call_streamed",
            "weather",
            arguments,
        )
        .split(4)]))
        .push(Behaviour::text("Still sunny in Paris."));

    let rounds = sdk(&app, "tools", &[RESULT]).await;

    let requests = app.fake.requests();
    assert_eq!(requests.len(), 4, "two requests a round, no more");
    for (index, (mode, call_id, answer)) in [
        ("whole", "call_whole", "It is sunny in Paris."),
        ("streamed", "call_streamed", "Still sunny in Paris."),
    ]
    .into_iter()
    .enumerate()
    {
        let round = &rounds[mode];
        assert_eq!(round["finish_reason"], "tool_calls", "{mode}: {round}");
        assert_eq!(
            round["calls"],
            json!([{"id": call_id, "name": "weather", "arguments": arguments}]),
            "{mode}"
        );
        assert_eq!(round["answer"], answer, "{mode}");

        let (session, how) = recorded(&round["called_headers"]);
        assert_eq!(how, "started", "{mode}");
        assert_eq!(
            recorded(&round["answered_headers"]),
            (session.clone(), "continued".to_owned()),
            "{mode}: the result continues the session"
        );

        // The upstream was offered the tool, then heard its result.
        let (called, answered) = (&requests[2 * index], &requests[2 * index + 1]);
        assert_eq!(called.body["tools"][0]["function"]["name"], "weather");
        let heard = answered.messages();
        let tool_message = heard.last().unwrap();
        assert_eq!(tool_message["role"], "tool", "{heard:#?}");
        assert_eq!(tool_message["tool_call_id"], call_id);
        assert_eq!(tool_message["content"], RESULT);

        let history = app.history(&session).await;
        let stored_call = history
            .iter()
            .find_map(|message| message["tool_calls"].as_array()?.first().cloned())
            .unwrap_or_else(|| panic!("{mode}: the call is stored: {history:#?}"));
        assert_eq!(stored_call["id"], call_id);
        assert_eq!(stored_call["name"], "weather");
        assert_eq!(
            history.last().unwrap()["content"],
            answer,
            "{mode}: {history:#?}"
        );
    }
}
