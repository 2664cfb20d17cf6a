//! The scenarios of the benchmark, each a function that starts what it needs
//! (fake upstream, colloquy, a database in a temporary directory), measures,
//! and returns a serializable result. None of them asserts a target: the
//! report says which were met; only `--smoke` fails on broken replies.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context as _};
use colloquy_diesel::SqliteRepository;
use colloquy_domain::{Message, MessageContent, MessageStatus, ModelName, Principal, Session};
use colloquy_ports::ChatRepository;
use futures::StreamExt as _;
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::sync::Semaphore;

use crate::client::{Client, SseParser, Target};
use crate::deploy::{Backing, Deployment, Seed};
use crate::load::{self, LoadPlan, LoadReport, Summary};
use crate::seed::SeededSession;
use crate::server::Server;
use crate::upstream::{ReplyShape, Upstream};

/// What every scenario needs to know.
#[derive(Debug, Clone)]
pub struct Env {
    pub server_bin: PathBuf,
    pub client: Client,
}

/// The knobs of a streaming load.
#[derive(Debug, Clone)]
pub struct StreamKnobs {
    pub chunks: usize,
    pub pace: Duration,
    pub first_token: Duration,
    pub duration: Duration,
    pub warmup: Duration,
    pub turns_per_session: usize,
}

/// colloquy minus direct at one percentile, in microseconds (negative when
/// colloquy was faster, which is noise).
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Added {
    pub p50_us: i64,
    pub p99_us: i64,
    pub p999_us: i64,
}

impl Added {
    pub fn of(colloquy: &Summary, direct: &Summary) -> Self {
        let diff = |a: u64, b: u64| {
            i64::try_from(a).unwrap_or(i64::MAX) - i64::try_from(b).unwrap_or(i64::MAX)
        };
        Self {
            p50_us: diff(colloquy.p50_us, direct.p50_us),
            p99_us: diff(colloquy.p99_us, direct.p99_us),
            p999_us: diff(colloquy.p999_us, direct.p999_us),
        }
    }
}

/// One load level, against both targets.
#[derive(Debug, Clone, Serialize)]
pub struct Comparison {
    pub streams: usize,
    pub chunks: usize,
    pub pace_ms: f64,
    pub first_token_ms: f64,
    pub direct: LoadReport,
    pub colloquy: LoadReport,
    pub added_ttft: Added,
    pub added_gap: Added,
    pub added_total: Added,
    /// Turns per second colloquy completed, as a share of what the same
    /// clients completed straight against the upstream.
    pub throughput_ratio: f64,
    /// Server-side warnings and errors logged during the run.
    pub server_log_problems: usize,
}

impl Comparison {
    pub fn is_clean(&self) -> bool {
        self.direct.is_clean() && self.colloquy.is_clean()
    }
}

/// A scratch directory with colloquy's database in it.
pub(crate) fn scratch() -> anyhow::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::Builder::new()
        .prefix("colloquy-bench-")
        .tempdir()?;
    let database = dir.path().join("bench.db");
    Ok((dir, database))
}

/// colloquy on the SQLite file `database` in the scratch directory `dir`,
/// relaying to `upstream`, with the in-process event log.
pub(crate) async fn sqlite_server(
    env: &Env,
    dir: &tempfile::TempDir,
    database: &Path,
    upstream: &Upstream,
) -> anyhow::Result<Server> {
    Server::start(
        &env.server_bin,
        &database.to_string_lossy(),
        &upstream.base_url(),
        dir.path(),
        &[],
    )
    .await
}

/// Streams at each concurrency in `levels`, first straight at the fake, then
/// through colloquy (one server for all levels).
pub async fn streams(
    env: &Env,
    levels: &[usize],
    knobs: &StreamKnobs,
) -> anyhow::Result<Vec<Comparison>> {
    let shape = ReplyShape::new(knobs.chunks, knobs.pace, knobs.first_token);
    let upstream = Upstream::start(&shape)?;
    let (dir, database) = scratch()?;
    let mut server = sqlite_server(env, &dir, &database, &upstream).await?;
    let mut results = Vec::new();
    for &clients in levels {
        let plan = LoadPlan {
            clients,
            duration: knobs.duration,
            warmup: knobs.warmup,
            // Spread the starts over one reply, capped by the warm-up so every
            // client is running when the measurement begins.
            ramp: shape.duration().min(knobs.warmup.mul_f64(0.8)),
            turns_per_session: knobs.turns_per_session,
            pace: knobs.pace,
            expected: Arc::from(shape.text.as_str()),
            watch: false,
            resend_history: false,
            sessions: None,
        };
        eprintln!(
            "  {clients} stream(s), {} chunks at {:?}: direct…",
            knobs.chunks, knobs.pace
        );
        let direct = load::run(
            &env.client,
            &[Target::Direct {
                base_url: upstream.base_url(),
            }],
            &plan,
        )
        .await;
        eprintln!("  {clients} stream(s): colloquy…");
        let problems_before = server.logged_problems();
        let colloquy = run_against_colloquy(env, &mut server, &plan).await?;
        results.push(compare(
            clients,
            &shape,
            direct,
            colloquy,
            server.logged_problems() - problems_before,
        ));
        // Let the previous level's connections and replies settle.
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(results)
}

/// Runs `plan` against colloquy's native API, with the server's memory and
/// CPU for the run; fails if the server did not survive it.
async fn run_against_colloquy(
    env: &Env,
    server: &mut Server,
    plan: &LoadPlan,
) -> anyhow::Result<LoadReport> {
    let target = Target::Colloquy {
        base_url: server.base_url.clone(),
    };
    run_against_server(env, server, target, plan).await
}

/// Runs `plan` against `target`, one of `server`'s APIs, as
/// [`run_against_colloquy`] does.
pub(crate) async fn run_against_server(
    env: &Env,
    server: &mut Server,
    target: Target,
    plan: &LoadPlan,
) -> anyhow::Result<LoadReport> {
    run_on_servers(env, std::slice::from_mut(server), &[target], plan).await
}

/// Runs `plan` against `targets` (clients round-robin), served by
/// `servers`, with their memory and CPU summed (over the whole run and over
/// the measured window); fails if one did not survive it.
pub(crate) async fn run_on_servers(
    env: &Env,
    servers: &mut [Server],
    targets: &[Target],
    plan: &LoadPlan,
) -> anyhow::Result<LoadReport> {
    for server in servers.iter() {
        server.reset_peak();
    }
    let cpu = |servers: &[Server]| servers.iter().map(Server::cpu_secs).sum::<Option<f64>>();
    let pids: Vec<u32> = servers.iter().map(Server::pid).collect();
    let cpu_before = cpu(servers);
    let started = Instant::now();
    let (mut report, window) = load::run_metered(&env.client, targets, plan, &pids).await;
    report.rss_peak_kib = servers.iter().map(Server::peak_rss_kib).sum();
    report.rss_end_kib = servers.iter().map(Server::rss_kib).sum();
    if let (Some(before), Some(after)) = (cpu_before, cpu(servers)) {
        report.account_cpu(after - before, started.elapsed().as_secs_f64(), window);
    }
    for server in servers.iter_mut() {
        if !server.is_alive() {
            bail!("colloquy died during the run: {}", server.log_tail());
        }
    }
    Ok(report)
}

pub(crate) fn compare(
    clients: usize,
    shape: &ReplyShape,
    direct: LoadReport,
    colloquy: LoadReport,
    problems: usize,
) -> Comparison {
    Comparison {
        streams: clients,
        chunks: shape.chunks,
        pace_ms: shape.pace.as_secs_f64() * 1e3,
        first_token_ms: shape.first_token.as_secs_f64() * 1e3,
        added_ttft: Added::of(&colloquy.ttft, &direct.ttft),
        added_gap: Added::of(&colloquy.gap, &direct.gap),
        added_total: Added::of(&colloquy.total, &direct.total),
        throughput_ratio: if direct.turns_per_sec > 0.0 {
            colloquy.turns_per_sec / direct.turns_per_sec
        } else {
            0.0
        },
        server_log_problems: problems,
        direct,
        colloquy,
    }
}

/// Turns per second against an upstream that sends a whole reply at once,
/// everything stored in SQLite; then a check that what was stored is whole.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// Sessions as the knobs say (by default one per client for the whole
    /// run, growing from nothing), against direct.
    pub comparison: Comparison,
    /// Turns before a client opened a new session; zero: never.
    pub turns_per_session: usize,
    /// Assistant messages read back from the history and found complete
    /// with the expected text.
    pub persisted_checked: usize,
    /// Turns the upstream served (colloquy's and direct's).
    pub upstream_requests: u64,
    /// The same load on sessions seeded with history, one length a row.
    pub lengths: Vec<LengthRun>,
    /// How far apart the rows' turns per second are.
    pub length_spread: Option<Spread>,
}

/// The throughput load on sessions that already held `turns_before` turns.
#[derive(Debug, Clone, Serialize)]
pub struct LengthRun {
    /// Turns in each session when the run began (twice as many messages).
    pub turns_before: usize,
    pub turns_per_sec: f64,
    /// Of direct's turns per second, in the same run.
    pub ratio_to_direct: f64,
    /// Turns the run added to each session, on average (warm-up included):
    /// the sessions end this much longer.
    pub turns_added_per_session: f64,
    pub report: LoadReport,
    pub added_ttft: Added,
    pub persisted_checked: usize,
    pub server_log_problems: usize,
}

/// The spread of a set of turns-per-second figures: `max ÷ min − 1`.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Spread {
    pub min: f64,
    pub max: f64,
    pub spread: f64,
    /// The target: every figure within this of the others.
    pub limit: f64,
    pub met: bool,
}

impl Spread {
    /// The target of issue 15: turns/s within 15 % of each other.
    pub const LIMIT: f64 = 0.15;

    /// `None` with fewer than two figures, or a zero or a non-number among
    /// them.
    pub fn of(values: &[f64]) -> Option<Self> {
        if values.len() < 2 || values.iter().any(|v| !v.is_finite()) {
            return None;
        }
        let min = values.iter().copied().fold(f64::INFINITY, f64::min);
        let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if min <= 0.0 {
            return None;
        }
        let spread = max / min - 1.0;
        Some(Self {
            min,
            max,
            spread,
            limit: Self::LIMIT,
            met: spread <= Self::LIMIT,
        })
    }
}

impl Throughput {
    /// No errors or altered text, in any run.
    pub fn is_clean(&self) -> bool {
        self.comparison.is_clean()
            && self.comparison.colloquy.turns > 0
            && self
                .lengths
                .iter()
                .all(|l| l.report.is_clean() && l.report.turns > 0)
    }
}

/// The closed loop of the throughput scenario: no pace, a short ramp.
pub(crate) fn throughput_plan(clients: usize, knobs: &StreamKnobs, shape: &ReplyShape) -> LoadPlan {
    LoadPlan {
        clients,
        duration: knobs.duration,
        warmup: knobs.warmup,
        ramp: Duration::from_millis(100).min(knobs.warmup),
        turns_per_session: knobs.turns_per_session,
        pace: Duration::ZERO,
        expected: Arc::from(shape.text.as_str()),
        watch: false,
        resend_history: false,
        sessions: None,
    }
}

pub async fn throughput(
    env: &Env,
    clients: usize,
    knobs: &StreamKnobs,
    lengths: &[usize],
) -> anyhow::Result<Throughput> {
    let shape = ReplyShape::new(knobs.chunks, Duration::ZERO, Duration::ZERO);
    let upstream = Upstream::start(&shape)?;
    let plan = throughput_plan(clients, knobs, &shape);
    eprintln!("  {clients} clients, zero-delay upstream: direct…");
    let direct = load::run(
        &env.client,
        &[Target::Direct {
            base_url: upstream.base_url(),
        }],
        &plan,
    )
    .await;
    let growing = if knobs.turns_per_session == 0 {
        "one growing session each".to_owned()
    } else {
        format!("a new session every {} turns", knobs.turns_per_session)
    };
    eprintln!("  {clients} clients, zero-delay upstream, {growing}: colloquy…");
    let mut deployment = Deployment::start(env, Backing::InProcess, &upstream, None).await?;
    let targets = deployment.targets();
    let colloquy = run_on_servers(env, &mut deployment.servers, &targets, &plan).await?;
    let persisted_checked = check_persisted(
        &env.client,
        &deployment.servers[0].base_url,
        &shape.text,
        &[],
    )
    .await?;
    let problems = deployment.logged_problems();
    drop(deployment);
    let mut rows = Vec::new();
    for &turns in lengths {
        eprintln!("  {clients} clients, sessions of {turns} turns: colloquy…");
        rows.push(length_run(env, Backing::InProcess, &upstream, &plan, &direct, turns).await?);
    }
    let length_spread = Spread::of(&rows.iter().map(|r| r.turns_per_sec).collect::<Vec<_>>());
    Ok(Throughput {
        comparison: compare(clients, &shape, direct, colloquy, problems),
        turns_per_session: knobs.turns_per_session,
        persisted_checked,
        upstream_requests: upstream.request_count(),
        lengths: rows,
        length_spread,
    })
}

/// `plan` on sessions seeded with `turns` turns each (one per client, kept
/// for the whole run), deployed as `backing` says; every stored reply of
/// the run read back afterwards.
pub(crate) async fn length_run(
    env: &Env,
    backing: Backing<'_>,
    upstream: &Upstream,
    plan: &LoadPlan,
    direct: &LoadReport,
    turns: usize,
) -> anyhow::Result<LengthRun> {
    let seed = Seed {
        sessions: plan.clients,
        turns,
    };
    let mut deployment = Deployment::start(env, backing, upstream, Some(seed)).await?;
    let plan = LoadPlan {
        turns_per_session: 0,
        sessions: deployment.session_ids(),
        ..plan.clone()
    };
    let targets = deployment.targets();
    let report = run_on_servers(env, &mut deployment.servers, &targets, &plan).await?;
    let persisted_checked = check_persisted(
        &env.client,
        &deployment.servers[0].base_url,
        &plan.expected,
        &deployment.seeded,
    )
    .await?;
    let server_log_problems = deployment.logged_problems();
    deployment.stop().await?;
    Ok(LengthRun {
        turns_before: turns,
        turns_per_sec: report.turns_per_sec,
        ratio_to_direct: if direct.turns_per_sec > 0.0 {
            report.turns_per_sec / direct.turns_per_sec
        } else {
            0.0
        },
        turns_added_per_session: report.all_turns as f64 / plan.clients.max(1) as f64,
        added_ttft: Added::of(&report.ttft, &direct.ttft),
        report,
        persisted_checked,
        server_log_problems,
    })
}

/// Reads back what the run stored: every finished assistant message must
/// be `complete` with the text that streamed. With `seeded` sessions, the
/// first 20 of them are read from their last seeded message on (the run's
/// messages, the newest of the session); otherwise the 20 sessions updated
/// last, whole. A session's branch is read page by page.
pub(crate) async fn check_persisted(
    client: &Client,
    base_url: &str,
    expected: &str,
    seeded: &[SeededSession],
) -> anyhow::Result<usize> {
    let sessions: Vec<(String, Option<String>)> = if seeded.is_empty() {
        let listed: Value = client
            .http()
            .get(format!("{base_url}/api/v1/sessions?limit=20"))
            .send()
            .await?
            .json()
            .await?;
        listed["data"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|s| {
                s["id"]
                    .as_str()
                    .map(|id| (id.to_owned(), None))
                    .context("a session without an id")
            })
            .collect::<anyhow::Result<_>>()?
    } else {
        seeded
            .iter()
            .take(20)
            .map(|s| (s.id.clone(), Some(s.tail.clone())))
            .collect()
    };
    let mut checked = 0;
    for (id, mut after) in sessions {
        loop {
            let mut url = format!("{base_url}/api/v1/sessions/{id}/messages?limit=1000");
            if let Some(after) = &after {
                url.push_str(&format!("&after={after}"));
            }
            let page: Value = client.http().get(url).send().await?.json().await?;
            let messages = page["data"].as_array().cloned().unwrap_or_default();
            for message in messages.iter().filter(|m| m["role"] == "assistant") {
                // A client's session may hold a reply that was still
                // streaming when the run ended; only finished ones are judged.
                if message["status"] == "streaming" {
                    continue;
                }
                ensure!(
                    message["status"] == "complete" && message["content"] == expected,
                    "a stored reply differs from what streamed: {message}"
                );
                checked += 1;
            }
            match messages.last().and_then(|m| m["id"].as_str()) {
                Some(last) if messages.len() == 1000 => after = Some(last.to_owned()),
                _ => break,
            }
        }
    }
    ensure!(checked > 0, "no stored reply found to check");
    Ok(checked)
}

/// Idle `EventSource` subscribers and what they cost the server.
#[derive(Debug, Clone, Serialize)]
pub struct Idle {
    /// The most subscribers connected (the last step).
    pub subscribers: usize,
    pub sessions: usize,
    /// With the sessions made and no subscriber.
    pub rss_before_kib: u64,
    /// With every subscriber connected.
    pub rss_after_kib: u64,
    pub bytes_per_subscriber: f64,
    /// The server's memory as subscribers were added, step by step.
    pub steps: Vec<IdleStep>,
    /// Time to open every subscription.
    pub connect_secs: f64,
    /// Subscribers that received a `session.updated` pushed after they were
    /// all connected (proof that they were live, not just open sockets).
    pub live_checked: u64,
    pub live_expected: u64,
}

/// The server's memory once `subscribers` were connected.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct IdleStep {
    pub subscribers: usize,
    pub rss_kib: u64,
    /// (RSS now − RSS with no subscriber) ÷ subscribers.
    pub bytes_per_subscriber: f64,
}

/// Idle subscribers on colloquy in-process: see [`idle_on`].
pub async fn idle(env: &Env, steps: &[usize], sessions: Option<usize>) -> anyhow::Result<Idle> {
    let shape = ReplyShape::new(4, Duration::ZERO, Duration::ZERO);
    let upstream = Upstream::start(&shape)?;
    let deployment = Deployment::start(env, Backing::InProcess, &upstream, None).await?;
    idle_on(env, &deployment.servers[0], steps, sessions).await
}

/// Connects idle subscribers to `server` in steps (`steps` are totals,
/// ascending: 1,000 then 5,000 then 10,000), reading its memory after each,
/// spread over `sessions` sessions (default: one each at the last step);
/// then checks that they are live.
pub async fn idle_on(
    env: &Env,
    server: &Server,
    steps: &[usize],
    sessions: Option<usize>,
) -> anyhow::Result<Idle> {
    let mut steps: Vec<usize> = steps.iter().copied().filter(|&s| s > 0).collect();
    steps.sort_unstable();
    steps.dedup();
    let subscribers = steps.last().copied().unwrap_or(1);
    if steps.is_empty() {
        steps.push(subscribers);
    }
    let sessions = sessions.unwrap_or(subscribers).clamp(1, subscribers);

    // Sessions first, so that the memory they cost (rows, cache) is in the
    // baseline and only the subscriptions are in the difference.
    let gate = Arc::new(Semaphore::new(64));
    let mut created = Vec::with_capacity(sessions);
    for _ in 0..sessions {
        let (client, base, gate) = (
            env.client.clone(),
            server.base_url.clone(),
            Arc::clone(&gate),
        );
        created.push(tokio::spawn(async move {
            let _permit = gate.acquire_owned().await;
            client.create_session(&base).await
        }));
    }
    let mut ids = Vec::with_capacity(sessions);
    for task in created {
        ids.push(task.await??);
    }
    // A warm-up subscriber opens and closes, so one-off costs (the first
    // SSE route's buffers, the hub's map) are in the baseline too.
    {
        let response = env
            .client
            .http()
            .get(format!(
                "{}/api/v1/sessions/{}/events",
                server.base_url, ids[0]
            ))
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "subscribing answered {}",
            response.status()
        );
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let rss_before = server.rss_kib().context("reading the server's RSS")?;

    let connected = Arc::new(AtomicU64::new(0));
    let updated = Arc::new(AtomicU64::new(0));
    let gate = Arc::new(Semaphore::new(256));
    let mut connect_secs = 0.0;
    let mut holders = Vec::with_capacity(subscribers);
    let mut measured = Vec::with_capacity(steps.len());
    let mut opened = 0;
    for &step in &steps {
        let started = Instant::now();
        for index in std::mem::replace(&mut opened, step)..step {
            let url = format!(
                "{}/api/v1/sessions/{}/events",
                server.base_url,
                ids[index % sessions]
            );
            let (client, gate, connected, updated) = (
                env.client.clone(),
                Arc::clone(&gate),
                Arc::clone(&connected),
                Arc::clone(&updated),
            );
            holders.push(tokio::spawn(async move {
                let permit = gate.acquire_owned().await;
                let response = client
                    .http()
                    .get(url)
                    .header("accept", "text/event-stream")
                    .send()
                    .await?;
                ensure!(
                    response.status().is_success(),
                    "subscribing answered {}",
                    response.status()
                );
                connected.fetch_add(1, Ordering::Relaxed);
                drop(permit);
                // Read like an EventSource would, counting `session.updated`.
                let mut body = response.bytes_stream();
                let mut parser = SseParser::default();
                while let Some(bytes) = body.next().await {
                    parser.feed(&bytes?);
                    while let Some(event) = parser.next_event() {
                        if event.name == "session.updated" {
                            updated.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                }
                anyhow::Ok(())
            }));
        }
        let total = u64::try_from(step).unwrap_or(u64::MAX);
        let deadline = Instant::now() + Duration::from_secs(120);
        while connected.load(Ordering::Relaxed) < total {
            if let Some(failed) = holders
                .iter()
                .position(tokio::task::JoinHandle::is_finished)
            {
                let task = holders.swap_remove(failed);
                task.await??;
                bail!("a subscriber ended before the others connected");
            }
            ensure!(
                Instant::now() < deadline,
                "only {} of {step} subscribers connected in 120 s",
                connected.load(Ordering::Relaxed)
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        connect_secs += started.elapsed().as_secs_f64();
        tokio::time::sleep(Duration::from_secs(2)).await;
        let rss = server.rss_kib().context("reading the server's RSS")?;
        measured.push(IdleStep {
            subscribers: step,
            rss_kib: rss,
            bytes_per_subscriber: (rss.saturating_sub(rss_before) * 1024) as f64 / step as f64,
        });
    }
    let rss_after = measured.last().map_or(rss_before, |step| step.rss_kib);

    // Rename a few sessions: each of their subscribers must see it.
    let probes = sessions.min(20);
    for id in &ids[..probes] {
        let response = env
            .client
            .http()
            .patch(format!("{}/api/v1/sessions/{id}", server.base_url))
            .json(&json!({ "title": "renamed by the benchmark" }))
            // A server that stopped accepting fails the run, not hangs it.
            .timeout(Duration::from_secs(30))
            .send()
            .await?;
        ensure!(
            response.status().is_success(),
            "renaming answered {}",
            response.status()
        );
    }
    let live_expected = (0..subscribers).filter(|i| i % sessions < probes).count() as u64;
    let deadline = Instant::now() + Duration::from_secs(10);
    while updated.load(Ordering::Relaxed) < live_expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for holder in &holders {
        holder.abort();
    }
    Ok(Idle {
        subscribers,
        sessions,
        rss_before_kib: rss_before,
        rss_after_kib: rss_after,
        bytes_per_subscriber: (rss_after.saturating_sub(rss_before) * 1024) as f64
            / subscribers.max(1) as f64,
        steps: measured,
        connect_secs,
        live_checked: updated.load(Ordering::Relaxed),
        live_expected,
    })
}

/// History page latency of one session size.
#[derive(Debug, Clone, Serialize)]
pub struct HistoryRow {
    pub messages: usize,
    pub limit: usize,
    pub first_page: Summary,
    pub last_page: Summary,
}

pub async fn history(
    env: &Env,
    sizes: &[usize],
    requests: usize,
    limit: usize,
) -> anyhow::Result<Vec<HistoryRow>> {
    let shape = ReplyShape::new(4, Duration::ZERO, Duration::ZERO);
    let upstream = Upstream::start(&shape)?;
    let (dir, database) = scratch()?;
    // Seeded straight into SQLite through the repository colloquy itself
    // uses: 100,000 messages through the API would be 50,000 turns of setup.
    eprintln!("  seeding sessions of {sizes:?} messages…");
    let seeded = seed(&database, sizes).await?;
    let server = sqlite_server(env, &dir, &database, &upstream).await?;
    let mut rows = Vec::new();
    for (size, session, ids) in seeded {
        let first_url = format!(
            "{}/api/v1/sessions/{session}/messages?limit={limit}",
            server.base_url
        );
        // The page after the message `limit + 1` from the end: the last page.
        let last_url = match size.checked_sub(limit + 1) {
            Some(index) => format!("{first_url}&after={}", ids[index]),
            None => first_url.clone(),
        };
        let expected = size.min(limit);
        let first_page = time_pages(&env.client, &first_url, requests, expected).await?;
        let last_page = time_pages(&env.client, &last_url, requests, expected).await?;
        rows.push(HistoryRow {
            messages: size,
            limit,
            first_page,
            last_page,
        });
    }
    Ok(rows)
}

/// Creates one session per size, filled with alternating user and assistant
/// messages of a few hundred characters; returns each with its message ids
/// in the order the API lists them.
async fn seed(
    database: &Path,
    sizes: &[usize],
) -> anyhow::Result<Vec<(usize, String, Vec<String>)>> {
    let repo = SqliteRepository::connect(&database.to_string_lossy(), 2)?;
    let model = ModelName::parse("fake-model").map_err(|e| anyhow::anyhow!("{e:?}"))?;
    let text = "A message of the seeded history, long enough to look like a real turn of a chat: "
        .repeat(4);
    let mut seeded = Vec::new();
    for &size in sizes {
        // The benchmark's server runs without authentication: its sessions
        // are the anonymous principal's.
        let session = Session::new(Principal::anonymous(), None, None, model.clone());
        repo.create_session(&session).await?;
        let mut ids = Vec::with_capacity(size);
        let mut parent = None;
        // Appended in batches: one transaction of 100,000 rows is fine for
        // SQLite but holds every row in memory at once.
        for batch_start in (0..size).step_by(5_000) {
            let mut batch = Vec::with_capacity(5_000);
            for i in batch_start..size.min(batch_start + 5_000) {
                let content = MessageContent::parse(format!("{text}#{i}"), 32_000)
                    .map_err(|e| anyhow::anyhow!("{e:?}"))?;
                let mut message = Message::user(session.id, content.clone());
                if i % 2 == 1 {
                    message = Message::streaming_reply(session.id, &model);
                    message.content = content.into_inner();
                    message.finish(MessageStatus::Complete, None);
                }
                // One branch: each message follows the one before.
                message.parent_id = parent;
                parent = Some(message.id);
                ids.push(message.id.to_string());
                batch.push(message);
            }
            repo.append_messages(&session.owner, &batch).await?;
        }
        // Ids are UUID v7 and the API lists by id: sorting them gives the
        // order the pages come in, whatever the clock did while seeding.
        ids.sort();
        seeded.push((size, session.id.to_string(), ids));
    }
    Ok(seeded)
}

async fn time_pages(
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
        let got = page["data"].as_array().map_or(0, Vec::len);
        ensure!(
            got == expected,
            "GET {url} gave {got} messages, not {expected}"
        );
        // The first tenth warms the page cache and the connection.
        if i >= requests / 10 {
            histogram.record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))?;
        }
    }
    Ok(Summary::of_histogram(&histogram))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_is_the_largest_over_the_smallest_less_one() {
        let spread = Spread::of(&[1_000.0, 1_100.0, 1_150.0]).unwrap();
        assert!((spread.spread - 0.15).abs() < 1e-12);
        assert!(spread.met);
        let spread = Spread::of(&[1_000.0, 1_160.0]).unwrap();
        assert!(!spread.met);
        assert!((spread.min - 1_000.0).abs() < f64::EPSILON);
        assert!((spread.max - 1_160.0).abs() < f64::EPSILON);
    }

    #[test]
    fn no_spread_of_one_figure_or_of_a_zero() {
        assert!(Spread::of(&[1_000.0]).is_none());
        assert!(Spread::of(&[0.0, 1_000.0]).is_none());
        assert!(Spread::of(&[f64::NAN, 1_000.0]).is_none());
    }
}
