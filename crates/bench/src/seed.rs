//! Conversations written straight through the repository colloquy uses
//! (SQLite or PostgreSQL), so that a run can start on sessions that are
//! already long: a thousand turns through the API would be a thousand turns
//! of set-up per client.
//!
//! The text is meant to look like a chat's: a question of one or two
//! sentences, an answer of three to six, a few hundred characters each, no
//! two messages alike (colloquy remembers token counts by text, so repeated
//! text would make the prompt cheaper than a real conversation's).

use std::time::Instant;

use colloquy_domain::{Message, MessageContent, MessageStatus, ModelName, Principal, Session};
use colloquy_ports::ChatRepository;

/// A session seeded with history.
#[derive(Debug, Clone)]
pub struct SeededSession {
    pub id: String,
    /// The last message written: the run's first message follows it.
    pub tail: String,
}

const QUESTIONS: [&str; 8] = [
    "Could you explain how the scheduler decides which task runs next when two of them wake at once?",
    "What would change if we moved the nightly import to a queue instead of the cron job we have now?",
    "I tried the migration on a copy of the database and it took forty minutes; is that expected?",
    "How should I name the new configuration option so that it reads well next to the old ones?",
    "Is there a way to keep the cache warm across deploys without serving stale prices to customers?",
    "My test passes alone but fails when the whole suite runs; where would you start looking?",
    "Can you summarise the trade-offs between the two designs we discussed yesterday afternoon?",
    "Why does the report show twice as many sessions on Mondays, and is it a bug or the weekend?",
];

const FOLLOW_UPS: [&str; 6] = [
    "We run it on two small machines, if that matters.",
    "The team would rather not add another service to operate.",
    "Please keep the answer short, I will read the details later.",
    "Last time the logs showed nothing unusual around that hour.",
    "A colleague suggested a lock, but I am not sure it is needed.",
    "The numbers come from last week's dashboard, rounded.",
];

const ANSWERS: [&str; 12] = [
    "The short answer is that it depends on the order in which the events reach the queue, not on when they were created.",
    "When two tasks become ready together, the one that was enqueued first runs first, and the other waits for the next free worker.",
    "A queue makes the work visible: you can see how much is pending, retry what failed and spread it over the day.",
    "Forty minutes is long but not alarming for a table of that size, because every row is rewritten and every index rebuilt.",
    "Names that say what the option limits, and in which unit, age best: a reader should not need the documentation to guess.",
    "Warming the cache from the previous release's keys avoids the cold start, as long as prices are checked against their source.",
    "Tests that pass alone and fail together usually share something: a file, a port, a global, or the clock.",
    "The first design is simpler to run and the second is easier to change; which matters more depends on how often the rules move.",
    "Mondays carry the weekend's backlog: sessions opened on Saturday and Sunday are counted when they are first read.",
    "I would start by running the failing test after each of the others in turn, which finds the one that leaves state behind.",
    "None of this needs a lock if each step can be repeated safely, which is worth checking before adding one.",
    "If it helps, I can write the steps down as a checklist that the next person can follow without me.",
];

/// A small, fast, deterministic mixer (splitmix64): the same seed gives the
/// same conversation on every run.
const fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn pick<'a>(list: &[&'a str], seed: u64) -> &'a str {
    list[usize::try_from(seed % list.len() as u64).unwrap_or(0)]
}

/// The user's message of turn `turn` of conversation `conversation`.
pub fn question(conversation: u64, turn: u64) -> String {
    let seed = mix(conversation.wrapping_mul(1_000_003) ^ turn);
    let mut text = format!(
        "(turn {turn} of chat {conversation}) {}",
        pick(&QUESTIONS, seed)
    );
    if !seed.is_multiple_of(3) {
        text.push(' ');
        text.push_str(pick(&FOLLOW_UPS, mix(seed)));
    }
    text
}

/// The assistant's reply of that turn.
pub fn answer(conversation: u64, turn: u64) -> String {
    let mut seed = mix(conversation.wrapping_mul(7_000_003) ^ turn ^ 0x5eed);
    let sentences = 3 + seed % 4;
    let mut text = String::new();
    for _ in 0..sentences {
        seed = mix(seed);
        if !text.is_empty() {
            text.push(' ');
        }
        text.push_str(pick(&ANSWERS, seed));
    }
    text.push_str(&format!(" (reply {turn} of chat {conversation})"));
    text
}

/// Creates `sessions` sessions of the anonymous principal (the benchmark's
/// servers run without authentication), each holding `turns` turns: a user
/// message and its complete reply, each under the one before, so that the
/// session's branch is `2 × turns` messages long and its head is the last
/// reply.
///
/// # Errors
/// When the repository refuses a session or a message.
pub async fn conversations(
    repo: &dyn ChatRepository,
    sessions: usize,
    turns: usize,
) -> anyhow::Result<Vec<SeededSession>> {
    let started = Instant::now();
    let model = ModelName::parse("fake-model").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut seeded = Vec::with_capacity(sessions);
    for index in 0..sessions {
        let session = Session::new(Principal::anonymous(), None, None, model.clone());
        repo.create_session(&session).await?;
        let mut parent = None;
        let mut batch = Vec::with_capacity(turns.min(1_000) * 2);
        let conversation = index as u64;
        for turn in 0..turns as u64 {
            for assistant in [false, true] {
                let text = if assistant {
                    answer(conversation, turn)
                } else {
                    question(conversation, turn)
                };
                let content =
                    MessageContent::parse(text, 32_000).map_err(|e| anyhow::anyhow!("{e:?}"))?;
                let mut message = Message::user(session.id, content.clone());
                if assistant {
                    message = Message::streaming_reply(session.id, &model);
                    message.content = content.into_inner();
                    message.finish(MessageStatus::Complete, None);
                }
                message.parent_id = parent;
                parent = Some(message.id);
                batch.push(message);
            }
            // Appended in transactions of at most 2,000 messages: one
            // transaction per session would hold every row in memory.
            if batch.len() >= 2_000 {
                repo.append_messages(&session.owner, &batch).await?;
                batch.clear();
            }
        }
        if !batch.is_empty() {
            repo.append_messages(&session.owner, &batch).await?;
        }
        seeded.push(SeededSession {
            id: session.id.to_string(),
            tail: parent.map(|id| id.to_string()).unwrap_or_default(),
        });
    }
    eprintln!(
        "  seeded {sessions} sessions of {turns} turns in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok(seeded)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_a_few_hundred_characters_and_all_different() {
        let mut seen = std::collections::HashSet::new();
        for conversation in 0..4 {
            for turn in 0..50 {
                let (q, a) = (question(conversation, turn), answer(conversation, turn));
                assert!((60..400).contains(&q.len()), "{q}");
                assert!((250..1_000).contains(&a.len()), "{a}");
                assert!(seen.insert(q));
                assert!(seen.insert(a));
            }
        }
    }

    #[test]
    fn the_same_seed_gives_the_same_text() {
        assert_eq!(question(3, 7), question(3, 7));
        assert_eq!(answer(3, 7), answer(3, 7));
        assert_ne!(answer(3, 7), answer(4, 7));
    }
}
