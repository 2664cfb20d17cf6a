//! A session's summary: counts from the store, prose from the model, cached.

use colloquy_app::{ChatError, ChatService, MessageCounts};
use colloquy_domain::{Message, MessageContent, MessageStatus, Session, Usage};
use colloquy_ports::{LlmError, MockChatRepository, MockLlmClient, PromptRole, ResponseFormat};
use serde_json::Value;

use crate::support::{config, scripted, session, text_stream};

fn history(session: &Session) -> Vec<Message> {
    let mut messages = Vec::new();
    for (question, answer, used) in [
        ("What is Rust?", "A language.", 12),
        ("Is it fast?", "Yes.", 20),
    ] {
        messages.push(Message::user(
            session.id,
            MessageContent::parse(question.into(), 100).unwrap(),
        ));
        let mut reply = Message::streaming_reply(session.id, &session.model);
        reply.content = answer.into();
        reply.usage = Some(Usage {
            prompt_tokens: used,
            completion_tokens: 3,
        });
        reply.finish(MessageStatus::Complete, None);
        messages.push(reply);
    }
    messages
}

fn summarizing(session: &Session, messages: Vec<Message>, llm: MockLlmClient) -> ChatService {
    let mut repo = MockChatRepository::new();
    let known = session.clone();
    repo.expect_get_session()
        .returning(move |_, _| Ok(known.clone()));
    repo.expect_list_branch()
        .returning(move |_, _, _, _, _| Ok(crate::support::branch_page(messages.clone())));
    crate::support::service_with(repo, llm, config())
}

const GOOD: &str = r#"{"summary": "The user asked about Rust.", "highlights": ["Rust is a language"], "topics": ["Rust"]}"#;

#[tokio::test]
async fn counts_and_usage_come_from_the_store_and_the_prose_from_the_model() {
    let session = session();
    let messages = history(&session);
    let (llm, requests) = scripted(vec![text_stream(&[GOOD])]);
    let service = summarizing(&session, messages.clone(), llm);

    let summary = service.summarize(&session.owner, session.id).await.unwrap();
    assert_eq!(
        summary.message_count,
        MessageCounts {
            user: 2,
            assistant: 2,
            total: 4
        }
    );
    assert_eq!(
        summary.usage,
        Usage {
            prompt_tokens: 32,
            completion_tokens: 6
        }
    );
    assert_eq!(summary.first_message_at, Some(messages[0].created_at));
    assert_eq!(summary.last_message_at, Some(messages[3].created_at));
    assert_eq!(summary.summary, "The user asked about Rust.");
    assert_eq!(summary.highlights, ["Rust is a language"]);
    assert_eq!(summary.topics, ["Rust"]);

    let requests = requests.lock().unwrap();
    let texts: Vec<&str> = requests[0]
        .messages
        .iter()
        .map(|m| m.content.as_str())
        .collect();
    assert_eq!(
        texts[1..5],
        ["What is Rust?", "A language.", "Is it fast?", "Yes."]
    );
    assert_eq!(requests[0].messages[0].role, PromptRole::System);
    let Some(ResponseFormat::JsonSchema { schema, .. }) = &requests[0].response_format else {
        panic!("a structured output");
    };
    let schema: Value = serde_json::from_str(schema).unwrap();
    assert_eq!(
        schema["required"],
        serde_json::json!(["summary", "highlights", "topics"])
    );
}

#[tokio::test]
async fn a_summary_is_cached_until_the_session_changes() {
    let session = session();
    let (llm, _) = scripted(vec![text_stream(&[GOOD])]);
    let service = summarizing(&session, history(&session), llm);
    let first = service.summarize(&session.owner, session.id).await.unwrap();
    // The scripted model answers once: a second call would fail the test.
    assert_eq!(
        service.summarize(&session.owner, session.id).await.unwrap(),
        first
    );
}

#[tokio::test]
async fn junk_from_the_model_is_refused_whole() {
    for junk in [
        "Here is your summary: it went well.",
        r#"{"summary": "ok", "highlights": []}"#,
        r#"{"summary": "", "highlights": [], "topics": []}"#,
        r#"{"summary": "ok", "highlights": ["a\nb"], "topics": []}"#,
    ] {
        let session = session();
        let (llm, _) = scripted(vec![text_stream(&[junk])]);
        let service = summarizing(&session, history(&session), llm);
        let refused = service.summarize(&session.owner, session.id).await;
        assert!(
            matches!(refused, Err(ChatError::BadModelOutput(_))),
            "{junk:?}: {refused:?}"
        );
    }
}

#[tokio::test]
async fn a_model_that_cannot_answer_is_an_error_never_a_partial_summary() {
    let session = session();
    let mut llm = MockLlmClient::new();
    // Retried as a reply would be (three retries), then given up.
    llm.expect_stream_chat().times(4).returning(|_| {
        Err(LlmError::Unavailable {
            retry_after: None,
            message: "503".into(),
        })
    });
    let service = summarizing(&session, history(&session), llm);
    assert!(matches!(
        service.summarize(&session.owner, session.id).await,
        Err(ChatError::ModelUnavailable(_))
    ));

    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat().times(1).returning(|_| {
        Err(LlmError::Rejected {
            status: 400,
            message: "unsupported".into(),
        })
    });
    let service = summarizing(&session, history(&session), llm);
    assert!(matches!(
        service.summarize(&session.owner, session.id).await,
        Err(ChatError::ModelFailed(_))
    ));
}

#[tokio::test]
async fn an_empty_session_is_summarised_without_the_model() {
    let session = session();
    let service = summarizing(&session, Vec::new(), MockLlmClient::new());
    let summary = service.summarize(&session.owner, session.id).await.unwrap();
    assert_eq!(summary.message_count, MessageCounts::default());
    assert_eq!(summary.first_message_at, None);
    assert!(summary.highlights.is_empty() && summary.topics.is_empty());
    assert!(!summary.summary.is_empty());
}
