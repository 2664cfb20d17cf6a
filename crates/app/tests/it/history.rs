//! The branch of a running conversation is kept between its turns: the next
//! turn reads only the session, and what the model is sent is the branch
//! the store holds, whatever moved the head meanwhile (a regenerated reply,
//! a branch switch, a turn another replica stored).

use colloquy_app::SessionPatch;
use colloquy_domain::{Message, MessageContent, MessageStatus};
use colloquy_ports::{ChatRepository, PromptRole};

use crate::support::{conversation, ended_messages, Conversation};

impl Conversation {
    /// The texts of the last request to the model, after its system prompt.
    fn last_heard(&self) -> Vec<(PromptRole, String)> {
        let requests = self.requests.lock().unwrap();
        let request = requests.last().expect("the model was asked");
        request
            .messages
            .iter()
            .skip(1)
            .map(|m| (m.role, m.content.clone()))
            .collect()
    }
}

fn heard(texts: &[(PromptRole, &str)]) -> Vec<(PromptRole, String)> {
    texts
        .iter()
        .map(|(role, text)| (*role, (*text).to_owned()))
        .collect()
}

use PromptRole::{Assistant as A, User as U};

#[tokio::test]
async fn the_next_turn_hears_the_kept_branch_and_reads_only_the_session() {
    let talk = conversation(&["a1", "a2", "a3"]).await;
    talk.send("u1").await;
    talk.send("u2").await;
    talk.send("u3").await;
    assert_eq!(
        talk.last_heard(),
        heard(&[(U, "u1"), (A, "a1"), (U, "u2"), (A, "a2"), (U, "u3")])
    );
    assert_eq!(
        talk.repo.recent_reads(),
        1,
        "only the first turn reads the branch from the store"
    );
}

#[tokio::test]
async fn a_head_moved_by_a_regenerated_reply_or_a_switch_is_followed() {
    let talk = conversation(&["a1", "a2", "b1", "b3", "a4", "a5"]).await;
    let (_, first) = talk.send("u1").await;
    let (_, second) = talk.send("u2").await;
    let mut again = talk
        .service
        .regenerate(talk.owner(), talk.session.id, first.id)
        .await
        .unwrap();
    ended_messages(&mut again.events).await;
    talk.send("u3").await;
    assert_eq!(
        talk.last_heard(),
        heard(&[(U, "u1"), (A, "b1"), (U, "u3")]),
        "the regenerated branch, not the one kept before it"
    );

    talk.service
        .update_session(
            talk.owner(),
            talk.session.id,
            SessionPatch {
                head_message_id: Some(second.id),
                ..SessionPatch::default()
            },
        )
        .await
        .unwrap();
    talk.send("u4").await;
    assert_eq!(
        talk.last_heard(),
        heard(&[(U, "u1"), (A, "a1"), (U, "u2"), (A, "a2"), (U, "u4")]),
        "the branch switched back to"
    );
    talk.send("u5").await;
    assert_eq!(talk.last_heard().len(), 7);
    // The first send, the regenerated reply (under its question) and the
    // send after the switch read the store; the others found their branch.
    assert_eq!(talk.repo.recent_reads(), 3);
}

#[tokio::test]
async fn a_turn_stored_by_another_replica_is_read_from_the_store() {
    let talk = conversation(&["a1", "a3"]).await;
    let (_, first) = talk.send("u1").await;

    // Another replica ran a turn of this session: the store holds it, this
    // service never saw it.
    let session = talk.session.id;
    let mut question = Message::user(session, MessageContent::parse("u2".into(), 100).unwrap());
    question.parent_id = Some(first.id);
    let mut answer = Message::streaming_reply(session, &talk.session.model);
    answer.parent_id = Some(question.id);
    answer.content = "a2 elsewhere".into();
    answer.finish(MessageStatus::Complete, None);
    talk.repo
        .append_messages(talk.owner(), &[question, answer])
        .await
        .unwrap();

    talk.send("u3").await;
    assert_eq!(
        talk.last_heard(),
        heard(&[
            (U, "u1"),
            (A, "a1"),
            (U, "u2"),
            (A, "a2 elsewhere"),
            (U, "u3")
        ])
    );
    assert_eq!(talk.repo.recent_reads(), 2);
}
