//! The `facade` scenario: colloquy's OpenAI-compatible facade
//! (`/v1/chat/completions`) against the fake upstream itself, both spoken
//! to by the same stateless Chat Completions client that resends its whole
//! conversation every turn.
//!
//! Against the facade that client exercises what a send through the native
//! API does not: each request's earlier messages are matched against the
//! stored conversations (by their chain) to find the session it continues,
//! and a conversation's first request imports a new session. Afterwards
//! every conversation is read back through the native API: it must be one
//! session (as the `X-Colloquy-Session` headers said) whose branch holds
//! exactly the prompts sent and the replies streamed.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use crate::client::{Client, Target};
use crate::load::{self, Conversation, LoadPlan, Summary};
use crate::scenarios::{
    compare, run_against_server, scratch, sqlite_server, Added, Comparison, Env, StreamKnobs,
};
use crate::upstream::{ReplyShape, Upstream};

/// One load level, against both targets, and the read-back.
#[derive(Debug, Clone, Serialize)]
pub struct FacadeLevel {
    /// `colloquy` is the facade's run.
    pub comparison: Comparison,
    pub turns_per_conversation: usize,
    /// TTFT of the turns that open a conversation (through the facade: a
    /// new session is stored before the upstream is asked).
    pub first_turns: TtftOfTurns,
    /// TTFT of the turns that continue one (through the facade: the
    /// conversation is found by its chain).
    pub later_turns: TtftOfTurns,
    pub readback: Readback,
}

impl FacadeLevel {
    pub fn is_clean(&self) -> bool {
        self.comparison.is_clean() && self.comparison.colloquy.turns > 0 && self.readback.is_clean()
    }
}

/// Measured TTFT of one kind of turn, against both targets.
#[derive(Debug, Clone, Serialize)]
pub struct TtftOfTurns {
    pub direct: Summary,
    pub facade: Summary,
    pub added: Added,
}

/// What reading the facade's conversations back found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Readback {
    /// Conversations the facade run held (warm-up included).
    pub conversations: u64,
    /// Of those, read back and compared.
    pub checked: u64,
    /// Replies found stored as they streamed.
    pub replies_intact: u64,
    /// Exchanges stored otherwise than sent and streamed (a reply's text or
    /// status, a prompt, or a message missing or extra): counted as altered.
    pub altered: u64,
    /// Conversations recorded in more than one session (or without the
    /// header that says which).
    pub split: u64,
    /// Turns recorded otherwise than their place calls for: `started` for
    /// a conversation's first, `continued` for every later one.
    pub misrecorded: u64,
    /// Conversations a failed turn ended (the error is counted already):
    /// not read back, as the store may hold the failed turn.
    pub broken: u64,
    /// The first few problems, to say what went wrong.
    pub samples: Vec<String>,
}

impl Readback {
    pub fn is_clean(&self) -> bool {
        self.checked > 0 && self.altered == 0 && self.split == 0 && self.misrecorded == 0
    }

    fn problem(&mut self, text: String) {
        if self.samples.len() < 5 {
            self.samples.push(text);
        }
    }
}

/// Streams at each concurrency in `levels`, first straight at the fake, then
/// through colloquy's facade (one server for all levels).
pub async fn facade(
    env: &Env,
    levels: &[usize],
    knobs: &StreamKnobs,
) -> anyhow::Result<Vec<FacadeLevel>> {
    let shape = ReplyShape::new(knobs.chunks, knobs.pace, knobs.first_token);
    let upstream = Upstream::start(&shape)?;
    let (dir, database) = scratch()?;
    let mut server = sqlite_server(env, &dir, &database, &upstream).await?;
    let facade_target = Target::Facade {
        base_url: format!("{}/v1", server.base_url),
    };
    let mut results = Vec::new();
    for &clients in levels {
        let plan = LoadPlan {
            clients,
            duration: knobs.duration,
            warmup: knobs.warmup,
            ramp: shape.duration().min(knobs.warmup.mul_f64(0.8)),
            turns_per_session: knobs.turns_per_session,
            pace: knobs.pace,
            expected: Arc::from(shape.text.as_str()),
            watch: false,
            resend_history: true,
            sessions: None,
        };
        eprintln!(
            "  {clients} client(s), conversations of {} turns, {} chunks at {:?}: direct…",
            knobs.turns_per_session, knobs.chunks, knobs.pace
        );
        let direct = load::run(
            &env.client,
            &[Target::Direct {
                base_url: upstream.base_url(),
            }],
            &plan,
        )
        .await;
        eprintln!("  {clients} client(s): facade…");
        let problems_before = server.logged_problems();
        let facade = run_against_server(env, &mut server, facade_target.clone(), &plan).await?;
        eprintln!(
            "  reading {} conversation(s) back…",
            facade.conversations.len()
        );
        let readback = read_back(&env.client, &server.base_url, &facade.conversations).await?;
        let first_turns = ttft_of_turns(&direct.conversations, &facade.conversations, |i| i == 0);
        let later_turns = ttft_of_turns(&direct.conversations, &facade.conversations, |i| i > 0);
        results.push(FacadeLevel {
            comparison: compare(
                clients,
                &shape,
                direct,
                facade,
                server.logged_problems() - problems_before,
            ),
            turns_per_conversation: knobs.turns_per_session,
            first_turns,
            later_turns,
            readback,
        });
        // Let the previous level's connections and replies settle.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(results)
}

/// TTFT of the measured turns whose place in their conversation `wanted`
/// accepts.
fn ttft_of_turns(
    direct: &[Conversation],
    facade: &[Conversation],
    wanted: impl Fn(usize) -> bool,
) -> TtftOfTurns {
    let summary = |conversations: &[Conversation]| {
        let mut histogram = Histogram::<u64>::new(3)
            .unwrap_or_else(|_| unreachable!("3 significant figures is a valid precision"));
        for conversation in conversations {
            for (index, turn) in conversation.turns.iter().enumerate() {
                if let (true, true, Some(ttft)) = (turn.counted, wanted(index), turn.ttft) {
                    let _ = histogram.record(u64::try_from(ttft.as_micros()).unwrap_or(u64::MAX));
                }
            }
        }
        Summary::of_histogram(&histogram)
    };
    let (direct, facade) = (summary(direct), summary(facade));
    TtftOfTurns {
        added: Added::of(&facade, &direct),
        direct,
        facade,
    }
}

/// Checks every conversation against what colloquy stored of it.
async fn read_back(
    client: &Client,
    base_url: &str,
    conversations: &[Conversation],
) -> anyhow::Result<Readback> {
    let mut readback = Readback {
        conversations: conversations.len() as u64,
        ..Readback::default()
    };
    for conversation in conversations {
        check_recordings(conversation, &mut readback);
        if conversation.broken {
            readback.broken += 1;
            continue;
        }
        let Some(session) = one_session(conversation, &mut readback) else {
            continue;
        };
        let Some(last_reply) = conversation
            .turns
            .last()
            .and_then(|turn| turn.recording.as_ref())
            .map(|recording| recording.message.clone())
        else {
            continue;
        };
        // The branch that ends at the conversation's last reply: what the
        // client resent, plus that reply.
        let url =
            format!("{base_url}/api/v1/sessions/{session}/messages?leaf={last_reply}&limit=1000");
        let response = client.http().get(&url).send().await?;
        if !response.status().is_success() {
            readback.altered += conversation.exchanges.len() as u64;
            readback.problem(format!("GET {url} answered {}", response.status()));
            continue;
        }
        let page: Value = response
            .json()
            .await
            .with_context(|| format!("GET {url}"))?;
        let stored = page["data"].as_array().cloned().unwrap_or_default();
        compare_stored(conversation, &stored, &mut readback);
        readback.checked += 1;
    }
    Ok(readback)
}

/// Counts the turns whose `X-Colloquy-Recorded` is not what their place in
/// the conversation calls for.
fn check_recordings(conversation: &Conversation, readback: &mut Readback) {
    for (index, turn) in conversation.turns.iter().enumerate() {
        let expected = if index == 0 { "started" } else { "continued" };
        let how = turn.recording.as_ref().map(|r| r.how.as_str());
        if how != Some(expected) {
            readback.misrecorded += 1;
            readback.problem(format!(
                "turn {} of a conversation was recorded {how:?}, not {expected}",
                index + 1
            ));
        }
    }
}

/// The one session a conversation was recorded in, or `None` (counted as
/// split) when its turns named several, or one named none.
fn one_session(conversation: &Conversation, readback: &mut Readback) -> Option<String> {
    let mut sessions: Vec<Option<&str>> = conversation
        .turns
        .iter()
        .map(|turn| turn.recording.as_ref().map(|r| r.session.as_str()))
        .collect();
    sessions.dedup();
    match sessions.as_slice() {
        [Some(session)] => Some((*session).to_owned()),
        _ => {
            readback.split += 1;
            readback.problem(format!(
                "a conversation of {} turns was recorded in the sessions {sessions:?}",
                conversation.turns.len()
            ));
            None
        }
    }
}

/// Compares a conversation's stored branch with what its client sent and
/// streamed, exchange by exchange.
fn compare_stored(conversation: &Conversation, stored: &[Value], readback: &mut Readback) {
    for (index, exchange) in conversation.exchanges.iter().enumerate() {
        let (question, reply) = (stored.get(2 * index), stored.get(2 * index + 1));
        let question_intact = question.is_some_and(|message| {
            message["role"] == "user" && message["content"] == exchange.prompt.as_str()
        });
        let reply_intact = reply.is_some_and(|message| {
            message["role"] == "assistant"
                && message["status"] == "complete"
                && message["content"] == exchange.reply.as_str()
        });
        if question_intact && reply_intact {
            readback.replies_intact += 1;
        } else {
            readback.altered += 1;
            readback.problem(format!(
                "exchange {} stored as {} / {}",
                index + 1,
                question.map_or_else(|| "nothing".to_owned(), brief),
                reply.map_or_else(|| "nothing".to_owned(), brief),
            ));
        }
    }
    let sent = 2 * conversation.exchanges.len();
    if stored.len() != sent {
        readback.altered += 1;
        readback.problem(format!(
            "a conversation of {sent} messages was stored as {}",
            stored.len()
        ));
    }
}

/// A stored message, short enough for a sample.
fn brief(message: &Value) -> String {
    let content = message["content"].as_str().unwrap_or_default();
    let end = content
        .char_indices()
        .nth(60)
        .map_or(content.len(), |(end, _)| end);
    format!(
        "{} {} {:?}",
        message["role"].as_str().unwrap_or("?"),
        message["status"].as_str().unwrap_or("?"),
        &content[..end]
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::client::{Exchange, Recording};
    use crate::load::ConversationTurn;

    /// A conversation of `turns` exchanges, each recorded in `sessions[i]`.
    fn conversation(sessions: &[&str]) -> Conversation {
        let mut conversation = Conversation::default();
        for (index, session) in sessions.iter().enumerate() {
            conversation.exchanges.push(Exchange {
                prompt: format!("question {index}"),
                reply: format!("answer {index}"),
            });
            conversation.turns.push(ConversationTurn {
                ttft: Some(Duration::from_millis(1)),
                counted: true,
                recording: Some(Recording {
                    session: (*session).to_owned(),
                    how: if index == 0 { "started" } else { "continued" }.to_owned(),
                    message: format!("reply {index}"),
                }),
            });
        }
        conversation
    }

    /// The branch colloquy would list for `conversation`, stored intact.
    fn stored(conversation: &Conversation) -> Vec<Value> {
        conversation
            .exchanges
            .iter()
            .flat_map(|exchange| {
                [
                    json!({ "role": "user", "status": "complete", "content": exchange.prompt }),
                    json!({ "role": "assistant", "status": "complete", "content": exchange.reply }),
                ]
            })
            .collect()
    }

    #[test]
    fn a_conversation_stored_as_it_streamed_is_intact() {
        let conversation = conversation(&["s", "s", "s"]);
        let mut readback = Readback::default();
        compare_stored(&conversation, &stored(&conversation), &mut readback);
        assert_eq!((readback.replies_intact, readback.altered), (3, 0));
    }

    #[test]
    fn a_stored_reply_that_differs_or_is_unfinished_is_altered() {
        let conversation = conversation(&["s", "s", "s"]);
        let mut messages = stored(&conversation);
        messages[1]["content"] = json!("answer 0, changed");
        messages[5]["status"] = json!("streaming");
        let mut readback = Readback::default();
        compare_stored(&conversation, &messages, &mut readback);
        assert_eq!((readback.replies_intact, readback.altered), (1, 2));
        assert_eq!(readback.samples.len(), 2);
    }

    #[test]
    fn a_stored_branch_longer_or_shorter_than_the_conversation_is_altered() {
        let conversation = conversation(&["s", "s"]);
        let mut longer = stored(&conversation);
        longer.push(json!({ "role": "user", "status": "complete", "content": "extra" }));
        let mut readback = Readback::default();
        compare_stored(&conversation, &longer, &mut readback);
        assert_eq!((readback.replies_intact, readback.altered), (2, 1));

        let mut readback = Readback::default();
        compare_stored(&conversation, &stored(&conversation)[..3], &mut readback);
        // The second reply is missing, and the length is wrong.
        assert_eq!((readback.replies_intact, readback.altered), (1, 2));
    }

    #[test]
    fn a_conversation_recorded_in_two_sessions_is_split() {
        let mut readback = Readback::default();
        assert_eq!(
            one_session(&conversation(&["a", "a", "a"]), &mut readback),
            Some("a".to_owned())
        );
        assert_eq!(readback.split, 0);
        assert_eq!(
            one_session(&conversation(&["a", "b", "a"]), &mut readback),
            None
        );
        assert_eq!(readback.split, 1);
    }

    #[test]
    fn a_later_turn_not_recorded_as_continued_is_misrecorded() {
        let mut conversation = conversation(&["a", "a", "a"]);
        let mut readback = Readback::default();
        check_recordings(&conversation, &mut readback);
        assert_eq!(readback.misrecorded, 0);
        if let Some(recording) = conversation.turns[2].recording.as_mut() {
            recording.how = "branched".to_owned();
        }
        conversation.turns[1].recording = None;
        check_recordings(&conversation, &mut readback);
        assert_eq!(readback.misrecorded, 2);
    }

    #[test]
    fn first_and_later_turns_are_timed_apart_and_only_when_measured() {
        let mut direct = conversation(&["-", "-"]);
        direct.turns[1].ttft = Some(Duration::from_millis(2));
        let mut facade = conversation(&["a", "a", "a"]);
        facade.turns[0].ttft = Some(Duration::from_millis(5));
        facade.turns[1].ttft = Some(Duration::from_millis(7));
        facade.turns[2].counted = false;
        let first = ttft_of_turns(
            std::slice::from_ref(&direct),
            std::slice::from_ref(&facade),
            |i| i == 0,
        );
        assert_eq!((first.direct.count, first.facade.count), (1, 1));
        // Three significant figures: within a few microseconds.
        assert!((first.added.p50_us - 4_000).abs() < 10, "{:?}", first.added);
        let later = ttft_of_turns(&[direct], &[facade], |i| i > 0);
        assert_eq!((later.direct.count, later.facade.count), (1, 1));
        assert!((later.added.p50_us - 5_000).abs() < 10, "{:?}", later.added);
    }
}
