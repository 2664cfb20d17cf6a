//! The `replicas` scenario: the same streaming load against the upstream
//! directly, against colloquy in-process (SQLite and the in-process hub),
//! and against colloquy on PostgreSQL and Redis with one replica and with
//! two. Every session has a watcher, on the other replica when there are
//! two, so the figures include what crossing replicas costs; and the run
//! counts what each turn costs the engines.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::backing::{calls_since, BenchRedis, PgWrites};
use crate::client::Target;
use crate::deploy::{Backing, Deployment, Seed};
use crate::load::{self, LoadPlan, LoadReport};
use crate::scenarios::{check_persisted, run_on_servers, Added, Env, Idle, StreamKnobs};
use crate::upstream::{ReplyShape, Upstream};

/// Where the shared modes' engines are.
#[derive(Debug, Clone)]
pub struct SharedSetup {
    /// A PostgreSQL user who may create databases (the run makes its own).
    pub postgres_url: String,
    /// A Redis to use instead of a `redis-server` of the run's own.
    pub redis_url: Option<String>,
    pub redis_server_bin: String,
    /// Sessions get watchers (on the other replica, with two).
    pub watch: bool,
}

/// One mode at one level.
#[derive(Debug, Clone, Serialize)]
pub struct ModeRun {
    /// `in-process`, or `shared` (PostgreSQL + Redis).
    pub mode: &'static str,
    pub replicas: usize,
    pub report: LoadReport,
    pub added_ttft_vs_direct: Added,
    pub added_gap_vs_direct: Added,
    /// The shared modes only: what they add over the in-process one.
    pub added_ttft_vs_in_process: Option<Added>,
    pub added_gap_vs_in_process: Option<Added>,
    pub redis: Option<RedisCost>,
    pub postgres: Option<PostgresCost>,
    pub server_log_problems: usize,
    /// Seeded runs: stored replies of the run read back intact.
    pub persisted_checked: Option<usize>,
}

/// Redis commands over the whole run (warm-up included).
#[derive(Debug, Clone, Serialize)]
pub struct RedisCost {
    /// Calls per command, those that scripts run included.
    pub calls: BTreeMap<String, u64>,
    pub total: u64,
    pub per_delta: f64,
    pub per_turn: f64,
    /// Script calls (`EVALSHA` and `EVAL`) per delta: the round trips of
    /// publishing.
    pub scripts_per_delta: f64,
    /// The run's own `redis-server`'s CPU, in cores (none for an external one).
    pub server_cores: Option<f64>,
    /// Whether the counts are colloquy's alone (the run's own server).
    pub private: bool,
}

/// PostgreSQL's counts over the whole run, the servers' start-up included.
#[derive(Debug, Clone, Serialize)]
pub struct PostgresCost {
    pub writes: PgWrites,
    pub commits_per_turn: f64,
    pub rows_written_per_turn: f64,
    /// The CPU of this machine's `postgres` processes over the run, in
    /// cores; zero when PostgreSQL runs elsewhere.
    pub server_cores: f64,
}

/// Every mode at one level.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub streams: usize,
    /// Turns each session held when the run began (zero: fresh sessions).
    pub turns_before: usize,
    /// Turns before a client opened a new session; zero: never.
    pub turns_per_session: usize,
    pub chunks: usize,
    pub pace_ms: f64,
    pub first_token_ms: f64,
    pub direct: LoadReport,
    pub modes: Vec<ModeRun>,
    /// Turns per second with two replicas over one, both shared.
    pub two_over_one_turns: Option<f64>,
}

impl Level {
    pub fn is_clean(&self) -> bool {
        self.direct.is_clean() && self.modes.iter().all(|m| m.report.is_clean())
    }
}

/// Runs every mode at each level in `levels`: on fresh sessions, then on
/// sessions seeded with each of `lengths` turns (one per client, kept for
/// the whole run).
pub async fn replicas(
    env: &Env,
    levels: &[usize],
    knobs: &StreamKnobs,
    setup: &SharedSetup,
    lengths: &[usize],
) -> anyhow::Result<Vec<Level>> {
    let shape = ReplyShape::new(knobs.chunks, knobs.pace, knobs.first_token);
    let upstream = Upstream::start(&shape)?;
    let redis = BenchRedis::start(setup.redis_url.as_deref(), &setup.redis_server_bin).await?;
    let mut results = Vec::new();
    for &clients in levels {
        let plan = LoadPlan {
            clients,
            duration: knobs.duration,
            warmup: knobs.warmup,
            ramp: if knobs.pace.is_zero() {
                Duration::from_millis(100).min(knobs.warmup)
            } else {
                shape.duration().min(knobs.warmup.mul_f64(0.8))
            },
            turns_per_session: knobs.turns_per_session,
            pace: knobs.pace,
            expected: Arc::from(shape.text.as_str()),
            watch: setup.watch,
            resend_history: false,
            sessions: None,
        };
        eprintln!("  {clients} stream(s): direct…");
        let direct_plan = LoadPlan {
            watch: false,
            ..plan.clone()
        };
        let direct = load::run(
            &env.client,
            &[Target::Direct {
                base_url: upstream.base_url(),
            }],
            &direct_plan,
        )
        .await;
        for turns_before in std::iter::once(0).chain(lengths.iter().copied()) {
            let seed = (turns_before > 0).then_some(Seed {
                sessions: clients,
                turns: turns_before,
            });
            let of = if turns_before > 0 {
                format!(", sessions of {turns_before} turns")
            } else {
                String::new()
            };
            eprintln!("  {clients} stream(s){of}: in-process (SQLite, in-process hub)…");
            let in_process = measure(env, Backing::InProcess, None, &upstream, &plan, seed).await?;
            let mut modes = vec![mode_run("in-process", 1, in_process, &direct, None)];
            for replicas in [1, 2] {
                eprintln!("  {clients} stream(s){of}: PostgreSQL + Redis, {replicas} replica(s)…");
                let backing = Backing::Shared {
                    postgres_url: &setup.postgres_url,
                    redis: &redis,
                    replicas,
                };
                let run = measure(env, backing, Some(&redis), &upstream, &plan, seed).await?;
                let baseline = modes[0].report.clone();
                modes.push(mode_run("shared", replicas, run, &direct, Some(&baseline)));
            }
            let turns = |replicas| {
                modes
                    .iter()
                    .find(|m| m.mode == "shared" && m.replicas == replicas)
                    .map(|m| m.report.turns_per_sec)
            };
            let two_over_one_turns = match (turns(2), turns(1)) {
                (Some(two), Some(one)) if one > 0.0 => Some(two / one),
                _ => None,
            };
            results.push(Level {
                streams: clients,
                turns_before,
                turns_per_session: if turns_before > 0 {
                    0
                } else {
                    knobs.turns_per_session
                },
                chunks: shape.chunks,
                pace_ms: shape.pace.as_secs_f64() * 1e3,
                first_token_ms: shape.first_token.as_secs_f64() * 1e3,
                direct: direct.clone(),
                modes,
                two_over_one_turns,
            });
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    Ok(results)
}

/// Idle subscribers on colloquy in-process and on one replica on
/// PostgreSQL + Redis, the same steps on both.
#[derive(Debug, Clone, Serialize)]
pub struct IdleModes {
    pub in_process: Idle,
    pub shared: Idle,
}

pub async fn idle(env: &Env, steps: &[usize], setup: &SharedSetup) -> anyhow::Result<IdleModes> {
    let upstream = Upstream::start(&ReplyShape::new(4, Duration::ZERO, Duration::ZERO))?;
    eprintln!("  idle subscribers {steps:?}: in-process…");
    let in_process = crate::scenarios::idle(env, steps, None).await?;
    let redis = BenchRedis::start(setup.redis_url.as_deref(), &setup.redis_server_bin).await?;
    let backing = Backing::Shared {
        postgres_url: &setup.postgres_url,
        redis: &redis,
        replicas: 1,
    };
    eprintln!("  idle subscribers {steps:?}: PostgreSQL + Redis, 1 replica…");
    let deployment = Deployment::start(env, backing, &upstream, None).await?;
    let shared = crate::scenarios::idle_on(env, &deployment.servers[0], steps, None).await?;
    deployment.stop().await?;
    Ok(IdleModes { in_process, shared })
}

/// What one mode's run measured, before it is compared.
#[derive(Debug)]
struct Measured {
    report: LoadReport,
    redis: Option<RedisCost>,
    postgres: Option<PostgresCost>,
    server_log_problems: usize,
    persisted_checked: Option<usize>,
}

/// `plan` on colloquy deployed as `backing` says (on seeded sessions with
/// `seed`), with what it cost Redis (`redis`, the shared modes') and
/// PostgreSQL. Seeded runs read every stored reply of the run back.
async fn measure(
    env: &Env,
    backing: Backing<'_>,
    redis: Option<&BenchRedis>,
    upstream: &Upstream,
    plan: &LoadPlan,
    seed: Option<Seed>,
) -> anyhow::Result<Measured> {
    let mut deployment = Deployment::start(env, backing, upstream, seed).await?;
    let plan = LoadPlan {
        sessions: deployment.session_ids(),
        turns_per_session: if seed.is_some() {
            0
        } else {
            plan.turns_per_session
        },
        ..plan.clone()
    };
    let calls_before = match redis {
        Some(redis) => Some(redis.command_calls().await?),
        None => None,
    };
    let redis_cpu_before = redis.and_then(BenchRedis::cpu_secs);
    let postgres_cpu_before = crate::server::cpu_secs_by_name("postgres");
    let started = Instant::now();
    let targets = deployment.targets();
    let report = run_on_servers(env, &mut deployment.servers, &targets, &plan).await?;
    let redis_cost = match (redis, calls_before) {
        (Some(redis), Some(before)) => {
            let calls = calls_since(&redis.command_calls().await?, &before);
            let server_cores = redis
                .cpu_secs()
                .zip(redis_cpu_before)
                .map(|(after, before)| (after - before) / started.elapsed().as_secs_f64());
            let total: u64 = calls.values().sum();
            let scripts = calls.get("evalsha").copied().unwrap_or(0)
                + calls.get("eval").copied().unwrap_or(0);
            Some(RedisCost {
                total,
                per_delta: per(total as f64, report.all_deltas),
                per_turn: per(total as f64, report.all_turns),
                scripts_per_delta: per(scripts as f64, report.all_deltas),
                calls,
                server_cores,
                private: redis.private,
            })
        }
        _ => None,
    };
    let postgres_cores = crate::server::cpu_secs_since(
        &postgres_cpu_before,
        &crate::server::cpu_secs_by_name("postgres"),
    ) / started.elapsed().as_secs_f64();
    let persisted_checked = if deployment.seeded.is_empty() {
        None
    } else {
        Some(
            check_persisted(
                &env.client,
                &deployment.servers[0].base_url,
                &plan.expected,
                &deployment.seeded,
            )
            .await?,
        )
    };
    let server_log_problems = deployment.logged_problems();
    // Stopped, so that PostgreSQL publishes the counts of their connections.
    let postgres = deployment.stop().await?.map(|writes| PostgresCost {
        commits_per_turn: per(writes.commits as f64, report.all_turns),
        rows_written_per_turn: per(writes.rows() as f64, report.all_turns),
        writes,
        server_cores: postgres_cores,
    });
    Ok(Measured {
        redis: redis_cost,
        postgres,
        server_log_problems,
        persisted_checked,
        report,
    })
}

fn per(count: f64, of: u64) -> f64 {
    if of > 0 {
        count / of as f64
    } else {
        0.0
    }
}

/// A mode's figures with what they add over direct (and, for the shared
/// modes, over the in-process one).
fn mode_run(
    mode: &'static str,
    replicas: usize,
    measured: Measured,
    direct: &LoadReport,
    in_process: Option<&LoadReport>,
) -> ModeRun {
    let report = measured.report;
    ModeRun {
        mode,
        replicas,
        added_ttft_vs_direct: Added::of(&report.ttft, &direct.ttft),
        added_gap_vs_direct: Added::of(&report.gap, &direct.gap),
        added_ttft_vs_in_process: in_process.map(|base| Added::of(&report.ttft, &base.ttft)),
        added_gap_vs_in_process: in_process.map(|base| Added::of(&report.gap, &base.gap)),
        redis: measured.redis,
        postgres: measured.postgres,
        server_log_problems: measured.server_log_problems,
        persisted_checked: measured.persisted_checked,
        report,
    }
}
