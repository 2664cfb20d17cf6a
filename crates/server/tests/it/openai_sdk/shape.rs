//! The same streamed requests through the SDK, once straight to the fake
//! upstream (OpenAI's shape, as the fake writes it) and once through
//! colloquy: the chunks must look alike to the SDK, field for field; only
//! ids, timestamps and how finely the text is cut may differ.

use colloquy_fake_upstream::{Behaviour, ScriptedToolCall};
use serde_json::{Map, Value};

use super::run_scenario;
use crate::support::spawn_app;

/// Fields whose value is part of the shape; every other string is only
/// "a string".
const LITERAL: [&str; 4] = ["object", "role", "type", "finish_reason"];

/// A chunk with each value replaced by its kind, but for [`LITERAL`]s.
fn skeleton(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::Object(fields) => Value::Object(
            fields
                .iter()
                .map(|(name, field)| (name.clone(), skeleton(field, Some(name))))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => items.iter().map(|item| skeleton(item, None)).collect(),
        Value::String(_) if key.is_some_and(|key| LITERAL.contains(&key)) => value.clone(),
        Value::String(_) => Value::from("string"),
        Value::Number(_) => Value::from("number"),
        Value::Bool(_) => Value::from("bool"),
        Value::Null => Value::Null,
    }
}

/// The kinds of chunk a stream is made of, in order, each once: a run of
/// content chunks is one kind. A tool call's later fragments (no `id`,
/// only more `arguments`) are left out: colloquy sends each call whole in
/// its first fragment, which OpenAI's stream allows.
fn kinds(chunks: &[Value]) -> Vec<Value> {
    let mut kinds: Vec<Value> = Vec::new();
    for chunk in chunks {
        let call = &chunk["choices"][0]["delta"]["tool_calls"][0];
        if call.is_object() && call.get("id").is_none() {
            continue;
        }
        let kind = skeleton(chunk, None);
        if kinds.last() != Some(&kind) {
            kinds.push(kind);
        }
    }
    kinds
}

/// The text, the tool calls (`index`, `id`, name, arguments joined) and the
/// last finish reason a client reads out of a stream.
fn read_out(chunks: &[Value]) -> (String, Vec<Value>, Value) {
    let mut text = String::new();
    let mut calls: Vec<Value> = Vec::new();
    let mut finish = Value::Null;
    for choice in chunks.iter().filter_map(|chunk| chunk["choices"].get(0)) {
        text.push_str(choice["delta"]["content"].as_str().unwrap_or_default());
        for fragment in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = usize::try_from(fragment["index"].as_u64().unwrap()).unwrap();
            if calls.len() <= index {
                calls.push(serde_json::json!({"id": fragment["id"], "name": "", "arguments": ""}));
            }
            let function = &fragment["function"];
            for part in ["name", "arguments"] {
                let joined = format!(
                    "{}{}",
                    calls[index][part].as_str().unwrap(),
                    function[part].as_str().unwrap_or_default()
                );
                calls[index][part] = Value::from(joined);
            }
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].clone();
        }
    }
    (text, calls, finish)
}

/// Every chunk of a stream shares its `id`, `created` and `model`.
fn assert_one_reply(chunks: &[Value], whose: &str) {
    for field in ["id", "created", "model"] {
        assert!(
            chunks.iter().all(|chunk| chunk[field] == chunks[0][field]),
            "{whose}: one `{field}` for the whole stream: {chunks:#?}"
        );
    }
}

#[tokio::test]
async fn streamed_chunks_through_colloquy_have_the_upstreams_shape() {
    let app = spawn_app().await;
    let text = "Foxes are quick and brown.";
    let call = ScriptedToolCall::new("call_1", "weather", r#"{"city":"Paris"}"#);
    // The scenario asks straight, then through colloquy; text, then a tool.
    app.fake
        .push(Behaviour::text(text))
        .push(Behaviour::text(text))
        .push(Behaviour::tool_calls([call.clone().split(3)]))
        .push(Behaviour::tool_calls([call.split(3)]));

    let compared = run_scenario(
        "compare",
        &app.url("/v1"),
        "no-key-needed",
        &[&app.fake.base_url()],
    )
    .await;

    for case in ["text", "tool"] {
        let upstream = compared[case]["upstream"].as_array().unwrap();
        let colloquy = compared[case]["colloquy"].as_array().unwrap();
        assert_one_reply(upstream, "the upstream");
        assert_one_reply(colloquy, "colloquy");
        assert_eq!(
            kinds(colloquy),
            kinds(upstream),
            "{case}: the kinds of chunk, in order\ncolloquy: {colloquy:#?}\nupstream: {upstream:#?}"
        );
        assert_eq!(
            read_out(colloquy),
            read_out(upstream),
            "{case}: what a client reads"
        );
    }
    let (read, _, finish) = read_out(compared["text"]["colloquy"].as_array().unwrap());
    assert_eq!(read, text);
    assert_eq!(finish, "stop");
    let (_, calls, finish) = read_out(compared["tool"]["colloquy"].as_array().unwrap());
    assert_eq!(calls[0]["arguments"], r#"{"city":"Paris"}"#);
    assert_eq!(finish, "tool_calls");
}
