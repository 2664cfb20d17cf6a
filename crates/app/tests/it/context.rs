//! What the model is sent when the history outgrows the context budget.

use colloquy_domain::{Message, MessageContent, MessageStatus};
use colloquy_ports::PromptRole;

use crate::support::{config, repo_with, scripted, session, text_stream, until_reply_ends};

#[tokio::test]
async fn the_newest_whole_turns_that_fit_are_sent_after_the_system_prompt() {
    let session = session();
    let (mut repo, _) = repo_with(&session);
    repo.checkpoint();
    let known = session.clone();
    repo.expect_get_session()
        .returning(move |_, _| Ok(known.clone()));
    let id = session.id;
    let model = session.model.clone();
    repo.expect_recent_messages().returning(move |_, _, _, _| {
        let mut history = Vec::new();
        for turn in 1..=5 {
            let words = format!("turn {turn} ") + &"apple ".repeat(40);
            history.push(Message::user(
                id,
                MessageContent::parse(words.clone(), 1_000).unwrap(),
            ));
            let mut reply = Message::streaming_reply(id, &model);
            reply.content = format!("answer {turn} ") + &"pear ".repeat(40);
            reply.finish(MessageStatus::Complete, None);
            history.push(reply);
        }
        Ok(history)
    });
    repo.expect_append_messages().returning(|_, _| Ok(()));
    repo.expect_update_message().returning(|_, _| Ok(()));
    let (llm, requests) = scripted(vec![text_stream(&["ok"])]);
    let mut config = config();
    config.max_message_chars = 1_000;
    config.default_system_prompt = "Be brief.".into();
    // Each turn is about 90 tokens: room for two of the five, not three.
    config.context_tokens = 250;
    config.tools = colloquy_app::ToolRegistry::none();
    let service = crate::support::service_with(repo, llm, config);
    let mut sent = service
        .send_message(&session.owner, session.id, "the new question".into())
        .await
        .unwrap();
    until_reply_ends(&mut sent.events).await;

    let requests = requests.lock().unwrap();
    let sent: Vec<(PromptRole, String)> = requests[0]
        .messages
        .iter()
        .map(|m| {
            (
                m.role,
                m.content.split(' ').take(2).collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    let expected: Vec<(PromptRole, String)> = [
        (PromptRole::System, "Be brief."),
        (PromptRole::User, "turn 4"),
        (PromptRole::Assistant, "answer 4"),
        (PromptRole::User, "turn 5"),
        (PromptRole::Assistant, "answer 5"),
        (PromptRole::User, "the new"),
    ]
    .into_iter()
    .map(|(role, text)| (role, text.to_owned()))
    .collect();
    assert_eq!(sent, expected);
}
