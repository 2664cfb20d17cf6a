//! Tool calls: joined from fragments, run, answered, at most four rounds.

use colloquy_app::{EventKind, MAX_TOOL_ROUNDS};
use colloquy_domain::{ErrorCode, MessageStatus, Usage};
use colloquy_ports::{ChatStream, PromptRole};
use serde_json::{json, Value};

use crate::support::{
    deltas, final_message, repo_with, scripted, service, session, text_stream,
    text_stream_with_usage, tool_call_stream, until_reply_ends,
};

fn tool_events(events: &[EventKind]) -> Vec<colloquy_domain::ToolCall> {
    events
        .iter()
        .filter_map(|event| match event {
            EventKind::MessageToolCall { tool_call, .. } => Some(tool_call.clone()),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn a_calculator_call_is_run_its_result_sent_back_and_the_answer_streams() {
    let session = session();
    let (repo, writes) = repo_with(&session);
    let (llm, requests) = scripted(vec![
        tool_call_stream(&[("call_1", "calculator", r#"{"expression": "2*(3+4)"}"#)]),
        text_stream_with_usage(&["It is ", "14."], 30, 4),
    ]);
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "what is 2*(3+4)?".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;

    let requests = requests.lock().unwrap();
    let offered: Vec<&str> = requests[0]
        .tools
        .iter()
        .map(|tool| tool.name.as_str())
        .collect();
    assert_eq!(offered, ["current_time", "calculator"]);
    let second = &requests[1].messages;
    let n = second.len();
    assert_eq!(second[n - 2].role, PromptRole::Assistant);
    assert_eq!(
        second[n - 2].tool_calls[0].arguments,
        r#"{"expression": "2*(3+4)"}"#,
        "fragments joined"
    );
    assert_eq!(second[n - 1].role, PromptRole::Tool);
    assert_eq!(second[n - 1].tool_call_id.as_deref(), Some("call_1"));
    let result: Value = serde_json::from_str(&second[n - 1].content).unwrap();
    assert_eq!(result["value"], json!(14), "the model gets 14 back");

    let reply = final_message(&events);
    assert_eq!(reply.status, MessageStatus::Complete);
    assert_eq!(reply.content, "It is 14.");
    assert_eq!(deltas(&events), "It is 14.");
    assert_eq!(reply.tool_calls.len(), 1);
    assert_eq!(reply.tool_calls[0].error, None);
    assert_eq!(
        tool_events(&events),
        reply.tool_calls,
        "each call is published as it runs"
    );
    assert_eq!(
        reply.usage,
        Some(Usage {
            prompt_tokens: 40,
            completion_tokens: 9
        }),
        "both rounds are counted"
    );
    assert_eq!(
        writes.lock().unwrap().last(),
        Some(&reply),
        "one assistant message, stored as published"
    );
}

#[tokio::test]
async fn malformed_arguments_and_unknown_tools_go_back_to_the_model_as_precise_errors() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let (llm, requests) = scripted(vec![
        tool_call_stream(&[
            ("call_a", "calculator", r#"{"expression": "2*(3"#),
            ("call_b", "shell", r#"{"command": "rm -rf /"}"#),
            ("call_c", "current_time", r#"{"timezone": "Mars/Olympus"}"#),
        ]),
        text_stream(&["Sorry, I could not compute that."]),
    ]);
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "try".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;

    let reply = final_message(&events);
    assert_eq!(
        reply.status,
        MessageStatus::Complete,
        "a broken call never breaks the reply"
    );
    let errors: Vec<&str> = reply
        .tool_calls
        .iter()
        .map(|call| call.error.as_deref().unwrap())
        .collect();
    assert!(
        errors[0].starts_with("invalid arguments: not valid JSON"),
        "{}",
        errors[0]
    );
    assert_eq!(
        errors[1],
        "unknown tool `shell`: the available tools are `current_time`, `calculator`"
    );
    assert!(
        errors[2].contains("`Mars/Olympus` is not an IANA time zone"),
        "{}",
        errors[2]
    );
    assert!(reply.tool_calls.iter().all(|call| call.result.is_none()));

    let requests = requests.lock().unwrap();
    let answers: Vec<Value> = requests[1]
        .messages
        .iter()
        .filter(|message| message.role == PromptRole::Tool)
        .map(|message| serde_json::from_str(&message.content).unwrap())
        .collect();
    assert_eq!(answers.len(), 3, "every call gets an answer");
    for (answer, error) in answers.iter().zip(&errors) {
        assert_eq!(answer, &json!({ "error": error }));
    }
}

#[tokio::test]
async fn fragments_of_interleaved_calls_are_joined_by_index() {
    use colloquy_ports::{ChatChunk, Completion, ToolCallDelta};
    use futures::StreamExt;
    let fragment = |index, id: Option<&str>, name: Option<&str>, arguments: &str| {
        Ok(ChatChunk::ToolCall(ToolCallDelta {
            index,
            id: id.map(str::to_owned),
            name: name.map(str::to_owned),
            arguments: arguments.to_owned(),
        }))
    };
    let interleaved: ChatStream = futures::stream::iter(vec![
        fragment(0, Some("a"), Some("calculator"), r#"{"expres"#),
        fragment(1, Some("b"), Some("calculator"), r#"{"expression""#),
        fragment(0, None, None, r#"sion": "1+1"}"#),
        fragment(1, None, None, r#": "2*3"}"#),
        Ok(ChatChunk::Finished(Completion {
            finish_reason: "tool_calls".into(),
            usage: None,
        })),
    ])
    .boxed();
    let session = session();
    let (repo, _) = repo_with(&session);
    let (llm, _) = scripted(vec![interleaved, text_stream(&["2 and 6"])]);
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "two sums".into())
        .await
        .unwrap();
    let reply = final_message(&until_reply_ends(&mut sent.events).await);
    let results: Vec<Value> = reply
        .tool_calls
        .iter()
        .map(|call| {
            serde_json::from_str::<Value>(call.result.as_deref().unwrap()).unwrap()["value"].clone()
        })
        .collect();
    assert_eq!(results, [json!(2), json!(6)]);
    assert_eq!(reply.tool_calls[0].id, "a");
}

fn calculator_round() -> ChatStream {
    tool_call_stream(&[("call", "calculator", r#"{"expression": "1+1"}"#)])
}

#[tokio::test]
async fn after_four_rounds_the_model_is_asked_once_more_without_tools() {
    let session = session();
    let (repo, _) = repo_with(&session);
    let mut streams: Vec<ChatStream> = (0..MAX_TOOL_ROUNDS).map(|_| calculator_round()).collect();
    streams.push(text_stream(&["Two."]));
    let (llm, requests) = scripted(streams);
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "loop".into())
        .await
        .unwrap();
    let reply = final_message(&until_reply_ends(&mut sent.events).await);
    assert_eq!(reply.status, MessageStatus::Complete);
    assert_eq!(reply.content, "Two.");
    assert_eq!(reply.tool_calls.len(), MAX_TOOL_ROUNDS);
    let requests = requests.lock().unwrap();
    assert!(requests[..MAX_TOOL_ROUNDS]
        .iter()
        .all(|request| !request.tools.is_empty()));
    assert!(
        requests[MAX_TOOL_ROUNDS].tools.is_empty(),
        "the last request offers no tools"
    );
}

#[tokio::test]
async fn a_fifth_round_of_tool_calls_ends_failed_with_every_call_kept() {
    let session = session();
    let (repo, writes) = repo_with(&session);
    let streams: Vec<ChatStream> = (0..=MAX_TOOL_ROUNDS).map(|_| calculator_round()).collect();
    let (llm, _) = scripted(streams);
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "loop".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    let reply = final_message(&events);
    assert!(matches!(events.last(), Some(EventKind::MessageFailed(_))));
    assert_eq!(reply.status, MessageStatus::Failed);
    let error = reply.error.clone().unwrap();
    assert_eq!(error.code, ErrorCode::Internal);
    assert!(
        error.message.contains("after 4 rounds"),
        "{}",
        error.message
    );
    assert_eq!(reply.tool_calls.len(), MAX_TOOL_ROUNDS + 1);
    let last = reply.tool_calls.last().unwrap();
    assert!(last.result.is_none() && last.error.as_deref().unwrap().starts_with("not run"));
    assert_eq!(writes.lock().unwrap().last(), Some(&reply));
}

#[tokio::test]
async fn text_before_a_tool_call_and_after_it_are_separate_paragraphs() {
    use colloquy_ports::{ChatChunk, Completion, ToolCallDelta};
    use futures::StreamExt;
    let thinking: ChatStream = futures::stream::iter(vec![
        Ok(ChatChunk::Delta("Let me check.".into())),
        Ok(ChatChunk::ToolCall(ToolCallDelta {
            index: 0,
            id: Some("c".into()),
            name: Some("calculator".into()),
            arguments: r#"{"expression": "6*7"}"#.into(),
        })),
        Ok(ChatChunk::Finished(Completion {
            finish_reason: "tool_calls".into(),
            usage: None,
        })),
    ])
    .boxed();
    let session = session();
    let (repo, _) = repo_with(&session);
    let (llm, requests) = scripted(vec![thinking, text_stream(&["It is 42."])]);
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "6*7?".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    assert_eq!(final_message(&events).content, "Let me check.\n\nIt is 42.");
    assert_eq!(deltas(&events), "Let me check.\n\nIt is 42.");
    let requests = requests.lock().unwrap();
    let turn = &requests[1].messages[requests[1].messages.len() - 2];
    assert_eq!(
        turn.content, "Let me check.",
        "the assistant turn carries its own text"
    );
}

#[tokio::test]
async fn a_retry_in_a_later_round_keeps_the_earlier_rounds_text() {
    use colloquy_ports::{ChatChunk, Completion, LlmError, ToolCallDelta};
    use futures::StreamExt;
    let thinking: ChatStream = futures::stream::iter(vec![
        Ok(ChatChunk::Delta("Let me check.".into())),
        Ok(ChatChunk::ToolCall(ToolCallDelta {
            index: 0,
            id: Some("c".into()),
            name: Some("calculator".into()),
            arguments: r#"{"expression": "6*7"}"#.into(),
        })),
        Ok(ChatChunk::Finished(Completion {
            finish_reason: "tool_calls".into(),
            usage: None,
        })),
    ])
    .boxed();
    let session = session();
    let (repo, _) = repo_with(&session);
    let (llm, _) = scripted(vec![
        thinking,
        crate::support::broken_stream(
            &["It is"],
            LlmError::Protocol {
                message: "cut".into(),
            },
        ),
        text_stream(&["It is 42."]),
    ]);
    let mut sent = service(repo, llm)
        .send_message(&session.owner, session.id, "6*7?".into())
        .await
        .unwrap();
    let events = until_reply_ends(&mut sent.events).await;
    // What a client shows: the deltas since the last reset.
    let after_reset = events
        .iter()
        .rposition(|event| matches!(event, EventKind::MessageReset { .. }))
        .expect("the broken attempt is reset");
    assert_eq!(deltas(&events[after_reset..]), "Let me check.\n\nIt is 42.");
    assert_eq!(final_message(&events).content, "Let me check.\n\nIt is 42.");
    assert_eq!(
        final_message(&events).tool_calls.len(),
        1,
        "the round's call is not run twice"
    );
}
