use reqwest::StatusCode;
use serde_json::{json, Value};

use super::{export_json, import, search, session_ids};
use crate::assistants::{assert_problem, id_of};
use crate::support::{spawn_app, TestApp};

/// One conversation of a ChatGPT data export, as `conversations.json`
/// holds it: two answers to its first question (the second one the person
/// went on with), a system node, hidden custom instructions, a call of the
/// code tool and its output, an image beside a question, a stopped reply.
const CHATGPT: &str =
    include_str!("../../../../http/src/archive/testdata/chatgpt-conversation.json");

fn by_content<'a>(messages: &'a [Value], text: &str) -> &'a Value {
    messages
        .iter()
        .find(|message| message["content"] == text)
        .unwrap_or_else(|| panic!("`{text}` was imported"))
}

fn texts(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|message| message["content"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn a_chatgpt_conversation_comes_in_with_its_branches_and_without_its_hidden_nodes() {
    let app = spawn_app().await;
    let body: Value = serde_json::from_str(CHATGPT).unwrap();
    let (status, session) = import(&app, &body, None).await;
    assert_eq!(status, StatusCode::CREATED, "{session}");
    let id = id_of(&session);
    assert_eq!(session["title"], "Lisbon trams");
    assert_eq!(session["model"], "gpt-4o");
    assert_eq!(session["created_at"], "2024-11-11T16:00:00.123456Z");
    assert_eq!(session["message_count"], 4);

    // The active branch is the one ChatGPT showed last (`current_node`).
    let history = app.branch(&id, None).await;
    assert_eq!(
        texts(&history),
        [
            "Which tram goes up to the castle?",
            "Take tram 28, or tram 12 for a shorter loop.",
            "What is this building at the last stop?",
            "That is the Basílica da Estrela,\n\nat the end of line 28.",
        ]
    );
    let roles: Vec<&str> = history
        .iter()
        .map(|message| message["role"].as_str().unwrap())
        .collect();
    assert_eq!(roles, ["user", "assistant", "user", "assistant"]);
    assert_eq!(history[0]["created_at"], "2024-11-11T16:00:01.250000Z");
    assert!(
        history[0]["parent_id"].is_null(),
        "the system node is left out"
    );
    assert_eq!(history[1]["model"], "gpt-4o-mini");
    assert_eq!(history[1]["siblings"]["index"], 1, "2 / 2");
    assert_eq!(history[3]["status"], "cancelled", "the person stopped it");
    assert_eq!(session["head_message_id"], history[3]["id"]);

    // The other answer's branch, whose tool call and output are left out.
    let exported = export_json(&app, &id).await;
    let messages = exported["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 7, "{exported}");
    let all = exported.to_string();
    for hidden in ["Porto", "Answer briefly", "3 * 3.20", "9.600000000000001"] {
        assert!(!all.contains(hidden), "{hidden} is not imported");
    }
    let ticket = by_content(messages, "How much is a ticket for 3 rides?");
    let priced = by_content(
        messages,
        "Three single rides cost €9.60; a 24-hour pass (€6.80) is cheaper.",
    );
    assert_eq!(
        priced["parent_id"], ticket["id"],
        "the answer after the tool joins the question it answers"
    );
    let branch = app.branch(&id, Some(priced["id"].as_str().unwrap())).await;
    assert_eq!(
        texts(&branch),
        [
            "Which tram goes up to the castle?",
            "Tram 28 climbs to the castle from Martim Moniz.",
            "How much is a ticket for 3 rides?",
            "Three single rides cost €9.60; a 24-hour pass (€6.80) is cheaper.",
        ]
    );
    assert_eq!(branch[1]["siblings"]["index"], 0, "1 / 2");
}

fn message(id: &str, parent: Option<&str>, role: &str, text: &str) -> Value {
    json!({"id": id, "parent_id": parent, "role": role, "content": text,
        "created_at": "2026-11-23T10:15:31Z"})
}

fn colloquy(messages: Vec<Value>, head: Option<&str>) -> Value {
    json!({"format": "colloquy.v1",
        "session": {"title": "Zanzibar", "head_message_id": head}, "messages": messages})
}

/// A chain of `count` messages, each `text`, questions and answers in turn.
fn chain(count: usize, text: &str) -> Vec<Value> {
    (0..count)
        .map(|index| {
            let parent = index.checked_sub(1).map(|parent| parent.to_string());
            let role = if index % 2 == 0 { "user" } else { "assistant" };
            message(&index.to_string(), parent.as_deref(), role, text)
        })
        .collect()
}

async fn post_raw(app: &TestApp, content_type: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let response = app
        .http
        .post(app.url("/api/v1/sessions/import"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    assert_eq!(
        response.headers()["content-type"],
        "application/problem+json"
    );
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn an_import_that_is_not_a_conversation_is_refused_saying_why_and_stores_nothing() {
    let app = spawn_app().await;
    let word = "zanzibar";
    let refused: Vec<(Value, &str)> = vec![
        (
            json!([colloquy(chain(2, word), None)]),
            "send one of its elements",
        ),
        (json!({"title": word}), "no `mapping`"),
        (
            json!({"format": "colloquy.v9", "session": {}, "messages": []}),
            "`format` is `colloquy.v9`",
        ),
        (
            colloquy(vec![message("a", None, "system", word)], None),
            "`role` is `system`",
        ),
        (
            colloquy(vec![message("a", Some("ghost"), "user", word)], None),
            "`ghost`, which is not in the conversation",
        ),
        (
            colloquy(
                vec![
                    message("a", Some("b"), "user", word),
                    message("b", Some("a"), "assistant", word),
                ],
                None,
            ),
            "in a circle",
        ),
        (
            colloquy(
                vec![
                    message("a", None, "user", word),
                    message("a", None, "user", word),
                ],
                None,
            ),
            "two messages have the id `a`",
        ),
        (
            colloquy(chain(2, word), Some("elsewhere")),
            "`elsewhere` is not one of the conversation's messages",
        ),
        (
            colloquy(
                vec![message(
                    "a",
                    None,
                    "user",
                    &format!("{word} ").repeat(50_000),
                )],
                None,
            ),
            "at most 400000",
        ),
        (colloquy(chain(10_001, word), None), "at most 10000"),
        (
            json!({"mapping": {"a": {"parent": null, "message": {"author": {"role": "user"},
                "content": {"content_type": "text", "parts": [word]}, "create_time": 1.0e9}}},
                "current_node": "nowhere"}),
            "`current_node` is `nowhere`",
        ),
    ];
    for (body, says) in refused {
        let (status, problem) = import(&app, &body, None).await;
        assert_problem(
            status,
            &problem,
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad-import",
        );
        let detail = problem["detail"].as_str().unwrap();
        assert!(detail.contains(says), "`{detail}` should say `{says}`");
    }

    let malformed = br#"{"format": "colloquy.v1", "session": {"#.to_vec();
    let (status, problem) = post_raw(&app, "application/json", malformed).await;
    assert_problem(status, &problem, StatusCode::BAD_REQUEST, "bad-request");
    let (status, problem) = post_raw(&app, "text/plain", b"{}".to_vec()).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "unsupported-media-type",
    );
    let (status, problem) = post_raw(&app, "application/json", Vec::new()).await;
    assert_problem(
        status,
        &problem,
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
    );
    // Over 16 MiB: refused before it is parsed.
    let oversized = colloquy(chain(1, &format!("{word} ").repeat(1_900_000)), None);
    let oversized = serde_json::to_vec(&oversized).unwrap();
    assert!(oversized.len() > 16 * 1024 * 1024);
    let (status, problem) = post_raw(&app, "application/json", oversized).await;
    assert_problem(
        status,
        &problem,
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
    );
    assert!(
        problem["detail"].as_str().unwrap().contains("16777216"),
        "{problem}"
    );

    assert_eq!(
        session_ids(&app, None).await,
        Vec::<String>::new(),
        "no session was made"
    );
    let (status, found) = search(&app, word, "", None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(found["data"], json!([]), "no message was stored");

    // Over the usual 1 MiB and under 16 MiB, an import like any other.
    let long = format!("{word} {}", "x".repeat(300_000));
    let large = colloquy(chain(8, &long), Some("7"));
    assert!(serde_json::to_vec(&large).unwrap().len() > 2 * 1024 * 1024);
    let (status, session) = import(&app, &large, None).await;
    assert_eq!(status, StatusCode::CREATED, "{}", session["detail"]);
    assert_eq!(session["message_count"], 8);
    assert_eq!(session["title"], "Zanzibar");
}
