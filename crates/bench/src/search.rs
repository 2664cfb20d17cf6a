//! The search scenario: `GET /api/v1/search` latency as the caller's
//! messages grow (1,000, 10,000, 100,000 by default), for a word in one
//! message of ten, a word in a single message, and two words that must both
//! be there. Each answer is checked: the hits it must have, newest first.

use std::time::{Duration, Instant};

use anyhow::ensure;
use colloquy_diesel::SqliteRepository;
use colloquy_domain::{Message, MessageContent, MessageStatus, ModelName, Principal, Session};
use colloquy_ports::ChatRepository;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::Value;

use crate::client::Client;
use crate::load::Summary;
use crate::scenarios::{scratch, sqlite_server, Env};
use crate::upstream::{ReplyShape, Upstream};

/// Messages per seeded session.
const SESSION_LENGTH: usize = 100;
/// Hits asked for per search.
const LIMIT: usize = 20;

/// The latency of each query at one number of stored messages.
#[derive(Debug, Clone, Serialize)]
pub struct SearchRow {
    pub messages: usize,
    /// A word in one message of ten.
    pub common: Summary,
    /// A word in one message.
    pub rare: Summary,
    /// Two words, both in one message of thirty.
    pub both: Summary,
}

/// Runs the scenario: seeds up to each size in turn (straight into SQLite,
/// as `history` does), then times `requests` searches of each query.
///
/// # Errors
/// When seeding fails, or a search answers wrongly.
pub async fn search(env: &Env, sizes: &[usize], requests: usize) -> anyhow::Result<Vec<SearchRow>> {
    let upstream = Upstream::start(&ReplyShape::new(4, Duration::ZERO, Duration::ZERO))?;
    let (dir, database) = scratch()?;
    let repo = SqliteRepository::connect(&database.to_string_lossy(), 2)?;
    let mut sizes = sizes.to_vec();
    sizes.sort_unstable();
    let mut stored = 0;
    let mut rows = Vec::new();
    for size in sizes {
        eprintln!("  seeding {size} messages to search…");
        stored = seed(&repo, stored, size).await?;
        let server = sqlite_server(env, &dir, &database, &upstream).await?;
        let url = |q: &str| format!("{}/api/v1/search?q={q}&limit={LIMIT}", server.base_url);
        let rare = format!("zephyr{size}");
        rows.push(SearchRow {
            messages: stored,
            common: time_search(
                &env.client,
                &url("apple"),
                requests,
                LIMIT.min(stored.div_ceil(10)),
            )
            .await?,
            rare: time_search(&env.client, &url(&rare), requests, 1).await?,
            both: time_search(
                &env.client,
                &url("apple%20banana"),
                requests,
                LIMIT.min(stored.div_ceil(30)),
            )
            .await?,
        });
    }
    Ok(rows)
}

/// Adds messages `from..to` in sessions of [`SESSION_LENGTH`], each one
/// branch, their words a deterministic mix; returns `to`.
async fn seed(repo: &SqliteRepository, from: usize, to: usize) -> anyhow::Result<usize> {
    let model = ModelName::parse("fake-model").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let mut index = from;
    while index < to {
        // The benchmark's server authenticates nobody: the anonymous
        // principal's sessions.
        let session = Session::new(Principal::anonymous(), None, None, model.clone());
        repo.create_session(&session).await?;
        let mut batch = Vec::with_capacity(SESSION_LENGTH);
        let mut parent = None;
        for _ in 0..SESSION_LENGTH.min(to - index) {
            let content = MessageContent::parse(words(index, to), 32_000)
                .map_err(|e| anyhow::anyhow!("{e:?}"))?;
            let mut message = Message::user(session.id, content.clone());
            if index % 2 == 1 {
                message = Message::streaming_reply(session.id, &model);
                message.content = content.into_inner();
                message.finish(MessageStatus::Complete, None);
            }
            message.parent_id = parent;
            parent = Some(message.id);
            batch.push(message);
            index += 1;
        }
        repo.append_messages(&session.owner, &batch).await?;
    }
    Ok(to)
}

/// The text of message `index`: thirty words of a small vocabulary, with
/// `apple` in one message of ten, `banana` in one of three, and the rare
/// word of a stage (`zephyr{stage}`) in one message of it.
fn words(index: usize, stage: usize) -> String {
    const VOCABULARY: [&str; 16] = [
        "river", "stone", "cloud", "paper", "light", "garden", "window", "music", "winter",
        "coffee", "letter", "bridge", "forest", "candle", "market", "silver",
    ];
    let mut text: Vec<String> = (0..30)
        .map(|i| VOCABULARY[(index * 7 + i * 13) % VOCABULARY.len()].to_owned())
        .collect();
    if index.is_multiple_of(10) {
        text.push("apple".to_owned());
    }
    if index.is_multiple_of(3) {
        text.push("banana".to_owned());
    }
    if index == stage - 1 {
        text.push(format!("zephyr{stage}"));
    }
    text.join(" ")
}

async fn time_search(
    client: &Client,
    url: &str,
    requests: usize,
    expected: usize,
) -> anyhow::Result<Summary> {
    let mut histogram = Histogram::<u64>::new(3)?;
    for i in 0..requests + requests / 10 {
        let started = Instant::now();
        let response = client.http().get(url).send().await?;
        ensure!(
            response.status().is_success(),
            "GET {url} answered {}",
            response.status()
        );
        let body = response.bytes().await?;
        let elapsed = started.elapsed();
        let page: Value = serde_json::from_slice(&body)?;
        let hits = page["data"].as_array().map_or(&[][..], Vec::as_slice);
        ensure!(
            hits.len() == expected,
            "GET {url} found {} messages, not {expected}",
            hits.len()
        );
        ensure!(
            hits.iter()
                .all(|hit| hit["snippet"].as_str().is_some_and(|s| s.contains('«'))),
            "GET {url}: a snippet without its hit marked"
        );
        // The first tenth warms the caches and the connection.
        if i >= requests / 10 {
            histogram.record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))?;
        }
    }
    Ok(Summary::of_histogram(&histogram))
}
