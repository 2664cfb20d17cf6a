//! Conversation chains on both backends: a conversation is found by the
//! chain of its roles and texts once its texts are final, only the owner's
//! and only under the same system prompt; every way a text becomes final
//! stores its chain (append, a reply's end, an interruption, an import);
//! a database from before the chains gets them when it is opened; and a
//! client's tool results are stored on the call they answer.

use colloquy_domain::{ConversationChain, Message, MessageId, MessageStatus, Session, ToolCall};
use colloquy_ports::RepoError;

use crate::support::{
    alice, bob, chain, new_session, on_both_backends, reply_to, stored_session, streaming_reply,
    untitled_session, user_message, Backend, Store, TestDb,
};
use crate::upgrade::{insert_sql, Place, CHAINS};

/// The chain of `messages`, one branch oldest first, as a request resending
/// them would compute it.
fn chain_of(messages: &[&Message]) -> ConversationChain {
    ConversationChain::of(
        messages
            .iter()
            .map(|message| (message.role, message.content.as_str())),
    )
    .expect("at least one message")
}

fn system_prompt_of(session: &Session) -> Option<String> {
    session
        .system_prompt
        .as_ref()
        .map(|prompt| prompt.as_str().to_owned())
}

async fn found(repo: &dyn Store, session: &Session, messages: &[&Message]) -> Option<MessageId> {
    repo.find_by_chain(
        &session.owner,
        chain_of(messages),
        system_prompt_of(session),
    )
    .await
    .expect("find_by_chain")
    .map(|message| message.id)
}

/// A reply with `text`, ended as `status`.
fn ended(mut reply: Message, text: &str, status: MessageStatus) -> Message {
    reply.content = text.to_owned();
    reply.finish(status, None);
    reply
}

/// A question and its answer stored the way a turn stores them: the question
/// and a streaming reply appended, then the reply's end.
async fn stored_exchange(
    repo: &dyn Store,
    session: &Session,
    after: Option<MessageId>,
    question: &str,
    answer: &str,
) -> (Message, Message) {
    let asked = chain(after, vec![user_message(session.id, question)]).remove(0);
    let streaming = reply_to(&asked, streaming_reply(session.id));
    repo.append_messages(&session.owner, &[asked.clone(), streaming.clone()])
        .await
        .expect("append");
    let answered = ended(streaming, answer, MessageStatus::Complete);
    repo.update_message(&session.owner, &answered)
        .await
        .expect("update_message");
    (asked, answered)
}

async fn a_conversation_is_found_by_its_roles_and_texts(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = &*db.repo;
    let session = stored_session(repo).await;
    let (question, answer) = stored_exchange(repo, &session, None, "Hi", "Hello!").await;

    assert_eq!(found(repo, &session, &[&question]).await, Some(question.id));
    assert_eq!(
        found(repo, &session, &[&question, &answer]).await,
        Some(answer.id)
    );
    let full = repo
        .find_by_chain(
            &alice(),
            chain_of(&[&question, &answer]),
            system_prompt_of(&session),
        )
        .await
        .unwrap()
        .expect("found");
    assert_eq!(
        full,
        repo.get_message(&alice(), session.id, answer.id)
            .await
            .unwrap()
    );

    // Any other text, role or order is another conversation.
    let mut reworded = answer.clone();
    reworded.content = "Hello".to_owned();
    assert_eq!(found(repo, &session, &[&question, &reworded]).await, None);
    assert_eq!(found(repo, &session, &[&answer, &question]).await, None);

    // Only the owner's, and only under the same system prompt.
    assert_eq!(
        repo.find_by_chain(&bob(), chain_of(&[&question]), system_prompt_of(&session))
            .await
            .unwrap(),
        None
    );
    for other_prompt in [None, Some("Be long.".to_owned())] {
        assert_eq!(
            repo.find_by_chain(&alice(), chain_of(&[&question]), other_prompt)
                .await
                .unwrap(),
            None
        );
    }

    // A session with no system prompt is found with none.
    let bare = untitled_session(repo).await;
    let (bare_question, _) = stored_exchange(repo, &bare, None, "Hi", "Hey").await;
    assert_eq!(
        found(repo, &bare, &[&bare_question]).await,
        Some(bare_question.id)
    );
}

async fn a_reply_is_found_only_once_it_has_ended(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = &*db.repo;
    let session = stored_session(repo).await;
    let question = user_message(session.id, "Count to three");
    let mut reply = reply_to(&question, streaming_reply(session.id));
    repo.append_messages(&alice(), &[question.clone(), reply.clone()])
        .await
        .unwrap();
    reply.content = "one, two".to_owned();
    repo.update_message(&alice(), &reply).await.unwrap();
    assert_eq!(found(repo, &session, &[&question, &reply]).await, None);

    // However it ends, it ends with what was generated.
    let failed = ended(reply, "one, two", MessageStatus::Failed);
    repo.update_message(&alice(), &failed).await.unwrap();
    assert_eq!(
        found(repo, &session, &[&question, &failed]).await,
        Some(failed.id)
    );
}

async fn the_newest_of_the_same_conversation_is_found(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = &*db.repo;
    let older = stored_session(repo).await;
    let newer = stored_session(repo).await;
    let (_, first) = stored_exchange(repo, &older, None, "Same", "Answer").await;
    let (_, second) = stored_exchange(repo, &newer, None, "Same", "Answer").await;
    assert_ne!(first.id, second.id);
    assert_eq!(
        found(repo, &older, &[&first]).await,
        None,
        "a reply is not a first message"
    );
    let both = [&user_message(older.id, "Same"), &first];
    assert_eq!(found(repo, &older, &both).await, Some(second.id));
}

/// Two voices in one turn: the second reply is stored under the first
/// while both stream. Whichever ends first, both are found once both ended.
async fn a_reply_under_a_streaming_reply_is_chained_when_that_one_ends(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = &*db.repo;
    let session = stored_session(repo).await;
    let question = user_message(session.id, "Debate it");
    let first = reply_to(&question, streaming_reply(session.id));
    let second = reply_to(&first, streaming_reply(session.id));
    repo.append_messages(&alice(), &[question.clone(), first.clone(), second.clone()])
        .await
        .unwrap();

    let second = ended(second, "I disagree.", MessageStatus::Complete);
    repo.update_message(&alice(), &second).await.unwrap();
    let first_text = Message {
        content: "I agree.".to_owned(),
        ..first.clone()
    };
    assert_eq!(
        found(repo, &session, &[&question, &first_text, &second]).await,
        None,
        "its parent's text is not final yet"
    );

    let first = ended(first, "I agree.", MessageStatus::Complete);
    repo.update_message(&alice(), &first).await.unwrap();
    assert_eq!(
        found(repo, &session, &[&question, &first]).await,
        Some(first.id)
    );
    assert_eq!(
        found(repo, &session, &[&question, &first, &second]).await,
        Some(second.id)
    );
}

async fn interrupted_replies_are_chained(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = &*db.repo;
    let session = stored_session(repo).await;

    // At start-up, every reply still streaming.
    let question = user_message(session.id, "Tell me a story");
    let mut reply = reply_to(&question, streaming_reply(session.id));
    reply.content = "Once upon".to_owned();
    repo.append_messages(&alice(), &[question.clone(), reply.clone()])
        .await
        .unwrap();
    repo.update_message(&alice(), &reply).await.unwrap();
    assert_eq!(repo.interrupt_streaming().await.unwrap(), 1);
    assert_eq!(
        found(repo, &session, &[&question, &reply]).await,
        Some(reply.id)
    );

    // A turn whose replica went away.
    let next = reply_to(&reply, user_message(session.id, "Go on"));
    let mut cut = reply_to(&next, streaming_reply(session.id));
    cut.content = "a time".to_owned();
    repo.append_messages(&alice(), &[next.clone(), cut.clone()])
        .await
        .unwrap();
    repo.update_message(&alice(), &cut).await.unwrap();
    repo.interrupt_turn(session.id, cut.id).await.unwrap();
    assert_eq!(
        found(repo, &session, &[&question, &reply, &next, &cut]).await,
        Some(cut.id)
    );
}

async fn an_imported_conversation_is_chained(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = &*db.repo;
    let mut session = new_session();
    let messages = chain(
        None,
        vec![
            user_message(session.id, "Imported question"),
            ended(
                streaming_reply(session.id),
                "Imported answer",
                MessageStatus::Complete,
            ),
            user_message(session.id, "And then?"),
        ],
    );
    session.head_message_id = Some(messages[2].id);
    session.message_count = 3;
    repo.import_session(&session, &messages).await.unwrap();
    let all: Vec<&Message> = messages.iter().collect();
    assert_eq!(found(repo, &session, &all).await, Some(messages[2].id));
}

/// History stored before the chains: the migration adds the column, and
/// opening the database stores every final message's chain, a reply still
/// streaming then excepted until it ends.
async fn history_from_before_the_chains_is_found_after_the_upgrade(backend: Backend) {
    let place = Place::new(backend).await;
    place
        .migrations(|harness| harness.run_those_before(CHAINS))
        .await;
    let mut session = new_session();
    let messages = chain(
        None,
        vec![
            user_message(session.id, "Old question"),
            ended(
                streaming_reply(session.id),
                "Old answer",
                MessageStatus::Complete,
            ),
            user_message(session.id, "Old follow-up"),
            Message {
                content: "half an ans".to_owned(),
                ..streaming_reply(session.id)
            },
        ],
    );
    session.message_count = 4;
    session.head_message_id = Some(messages[3].id);
    let mut sql = insert_sql(&session, &messages);
    for (depth, message) in messages.iter().enumerate() {
        if let Some(parent) = message.parent_id {
            sql.push_str(&format!(
                "UPDATE messages SET parent_id = '{parent}', depth = {depth} WHERE id = '{}';",
                message.id
            ));
        }
    }
    sql.push_str(&format!(
        "UPDATE sessions SET head_message_id = '{}' WHERE id = '{}';",
        messages[3].id, session.id
    ));
    place.execute(sql).await;

    assert_eq!(place.migrate().await, [CHAINS]);
    let repo = place.open().await;
    let repo = &*repo;
    let old: Vec<&Message> = messages.iter().collect();
    assert_eq!(found(repo, &session, &old[..3]).await, Some(messages[2].id));
    assert_eq!(found(repo, &session, &old).await, None, "still streaming");

    // Reopening finds nothing more to do, and a new turn extends the old chain.
    let repo = place.open().await;
    let repo = &*repo;
    let (asked, answered) =
        stored_exchange(repo, &session, Some(messages[2].id), "New", "Reply").await;
    let mut longer = old[..3].to_vec();
    longer.extend([&asked, &answered]);
    assert_eq!(found(repo, &session, &longer).await, Some(answered.id));
}

/// A reply that ended on calls to the client's tools, answered by the client.
async fn a_clients_tool_results_are_stored_on_their_calls(backend: Backend) {
    let db = TestDb::new(backend).await;
    let repo = &*db.repo;
    let session = stored_session(repo).await;
    let question = user_message(session.id, "Weather in Oslo and Bergen?");
    let mut reply = reply_to(&question, streaming_reply(session.id));
    repo.append_messages(&alice(), &[question.clone(), reply.clone()])
        .await
        .unwrap();
    let call = |id: &str, city: &str| ToolCall {
        id: id.to_owned(),
        name: "weather".to_owned(),
        arguments: format!(r#"{{"city": "{city}"}}"#),
        result: None,
        error: None,
    };
    reply.tool_calls = vec![call("call_oslo", "Oslo"), call("call_bergen", "Bergen")];
    reply.finish_reason = Some("tool_calls".to_owned());
    reply.finish(MessageStatus::Complete, None);
    repo.update_message(&alice(), &reply).await.unwrap();

    let results = [("call_oslo".to_owned(), r#"{"temp": -3}"#.to_owned())];
    let stored = repo
        .record_tool_results(&alice(), session.id, reply.id, &results)
        .await
        .unwrap();
    assert_eq!(
        stored.tool_calls[0].result.as_deref(),
        Some(r#"{"temp": -3}"#)
    );
    assert_eq!(stored.tool_calls[1].result, None);
    assert_eq!(
        repo.get_message(&alice(), session.id, reply.id)
            .await
            .unwrap(),
        stored
    );

    // A result, once stored, stays; the other call gets its own.
    let again = [
        ("call_oslo".to_owned(), "changed".to_owned()),
        ("call_bergen".to_owned(), r#"{"temp": 4}"#.to_owned()),
    ];
    let stored = repo
        .record_tool_results(&alice(), session.id, reply.id, &again)
        .await
        .unwrap();
    let results: Vec<Option<&str>> = stored
        .tool_calls
        .iter()
        .map(|call| call.result.as_deref())
        .collect();
    assert_eq!(results, [Some(r#"{"temp": -3}"#), Some(r#"{"temp": 4}"#)]);
    assert_eq!(stored.status, MessageStatus::Complete);
    assert_eq!(stored.content, reply.content);

    // No such call, or not the caller's message: not found, nothing changed.
    let unknown = [("call_paris".to_owned(), "x".to_owned())];
    for (owner, results) in [(alice(), &unknown[..]), (bob(), &again[..1])] {
        assert!(matches!(
            repo.record_tool_results(&owner, session.id, reply.id, results)
                .await,
            Err(RepoError::NotFound)
        ));
    }
    assert_eq!(
        repo.get_message(&alice(), session.id, reply.id)
            .await
            .unwrap(),
        stored
    );
}

on_both_backends!(
    a_conversation_is_found_by_its_roles_and_texts,
    a_reply_is_found_only_once_it_has_ended,
    the_newest_of_the_same_conversation_is_found,
    a_reply_under_a_streaming_reply_is_chained_when_that_one_ends,
    interrupted_replies_are_chained,
    an_imported_conversation_is_chained,
    history_from_before_the_chains_is_found_after_the_upgrade,
    a_clients_tool_results_are_stored_on_their_calls,
);

/// The lookup reads the chain's index, so its cost does not grow with the
/// number of stored messages.
#[tokio::test]
async fn the_lookup_uses_the_chain_index_on_sqlite() {
    use diesel::prelude::*;
    use diesel::sql_types::Text;

    #[derive(QueryableByName)]
    struct PlanRow {
        #[diesel(sql_type = Text)]
        detail: String,
    }

    let db = TestDb::new(Backend::Sqlite).await;
    let mut connection = db.sqlite();
    let plan: Vec<PlanRow> = diesel::sql_query(
        "EXPLAIN QUERY PLAN SELECT messages.id FROM messages \
         INNER JOIN sessions ON messages.session_id = sessions.id \
         WHERE messages.chain = 1 AND sessions.owner = 'alice' AND sessions.system_prompt IS NULL \
         ORDER BY messages.id DESC LIMIT 1",
    )
    .load(&mut connection)
    .unwrap();
    let details: Vec<&str> = plan.iter().map(|row| row.detail.as_str()).collect();
    assert!(
        details
            .iter()
            .any(|detail| detail.contains("USING INDEX messages_chain")
                || detail.contains("USING COVERING INDEX messages_chain")),
        "{details:?}"
    );
}
