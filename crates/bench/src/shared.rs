//! The `replicas` scenario: the same streaming load against the upstream
//! directly, against colloquy in-process (SQLite and the in-process hub),
//! and against colloquy on PostgreSQL and Redis with one replica and with
//! two. Every session has a watcher, on the other replica when there are
//! two, so the figures include what crossing replicas costs; and the run
//! counts what each turn costs the engines.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::bail;
use serde::Serialize;

use crate::backing::{calls_since, BenchDatabase, BenchRedis, PgWrites};
use crate::client::Target;
use crate::load::{self, LoadPlan, LoadReport};
use crate::scenarios::{Added, Env, StreamKnobs};
use crate::server::Server;
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
}

/// Every mode at one level.
#[derive(Debug, Clone, Serialize)]
pub struct Level {
    pub streams: usize,
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

/// Runs every mode at each level in `levels`.
pub async fn replicas(
    env: &Env,
    levels: &[usize],
    knobs: &StreamKnobs,
    setup: &SharedSetup,
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
            ramp: shape.duration().min(knobs.warmup.mul_f64(0.8)),
            turns_per_session: knobs.turns_per_session,
            pace: knobs.pace,
            expected: Arc::from(shape.text.as_str()),
            watch: setup.watch,
            resend_history: false,
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

        eprintln!("  {clients} stream(s): in-process (SQLite, in-process hub)…");
        let in_process = in_process_run(env, &upstream, &plan).await?;
        let mut modes = vec![mode_run("in-process", 1, in_process, &direct, None)];
        for replicas in [1, 2] {
            eprintln!("  {clients} stream(s): PostgreSQL + Redis, {replicas} replica(s)…");
            let run = shared_run(env, setup, &redis, &upstream, &plan, replicas).await?;
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
            chunks: shape.chunks,
            pace_ms: shape.pace.as_secs_f64() * 1e3,
            first_token_ms: shape.first_token.as_secs_f64() * 1e3,
            direct,
            modes,
            two_over_one_turns,
        });
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    Ok(results)
}

/// What one mode's run measured, before it is compared.
#[derive(Debug)]
struct Measured {
    report: LoadReport,
    redis: Option<RedisCost>,
    postgres: Option<PostgresCost>,
    server_log_problems: usize,
}

/// colloquy as one replica does it: SQLite and the in-process hub.
async fn in_process_run(
    env: &Env,
    upstream: &Upstream,
    plan: &LoadPlan,
) -> anyhow::Result<Measured> {
    let dir = scratch()?;
    let database = dir.path().join("bench.db");
    let mut servers = vec![
        Server::start(
            &env.server_bin,
            &database.to_string_lossy(),
            &upstream.base_url(),
            dir.path(),
            &[],
        )
        .await?,
    ];
    let report = run_on(env, &mut servers, plan).await?;
    Ok(Measured {
        server_log_problems: servers.iter().map(Server::logged_problems).sum(),
        report,
        redis: None,
        postgres: None,
    })
}

/// colloquy on a fresh PostgreSQL database and a key prefix of its own in
/// Redis, with `replicas` processes.
async fn shared_run(
    env: &Env,
    setup: &SharedSetup,
    redis: &BenchRedis,
    upstream: &Upstream,
    plan: &LoadPlan,
    replicas: usize,
) -> anyhow::Result<Measured> {
    let database = BenchDatabase::create(&setup.postgres_url).await?;
    let pg_before = database.writes().await?;
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_nanos());
    let prefix = format!("colloquy-bench-{}-{nanos:x}:", std::process::id());
    let extra = [
        ("COLLOQUY_REDIS_URL", redis.url.clone()),
        ("COLLOQUY_REDIS_KEY_PREFIX", prefix),
    ];
    let mut dirs = Vec::new();
    let mut servers = Vec::new();
    for _ in 0..replicas {
        let dir = scratch()?;
        servers.push(
            Server::start(
                &env.server_bin,
                &database.url,
                &upstream.base_url(),
                dir.path(),
                &extra,
            )
            .await?,
        );
        dirs.push(dir);
    }
    let calls_before = redis.command_calls().await?;
    let redis_cpu_before = redis.cpu_secs();
    let started = Instant::now();
    let report = run_on(env, &mut servers, plan).await?;
    let calls = calls_since(&redis.command_calls().await?, &calls_before);
    let redis_cores = redis
        .cpu_secs()
        .zip(redis_cpu_before)
        .map(|(after, before)| (after - before) / started.elapsed().as_secs_f64());
    let server_log_problems = servers.iter().map(Server::logged_problems).sum();
    // Stopped, so that PostgreSQL publishes the counts of their connections.
    drop(servers);
    let writes = database.writes().await?.since(pg_before);
    database.drop_now().await?;

    let per = |count: f64, of: u64| if of > 0 { count / of as f64 } else { 0.0 };
    let total: u64 = calls.values().sum();
    let scripts =
        calls.get("evalsha").copied().unwrap_or(0) + calls.get("eval").copied().unwrap_or(0);
    Ok(Measured {
        redis: Some(RedisCost {
            total,
            per_delta: per(total as f64, report.all_deltas),
            per_turn: per(total as f64, report.all_turns),
            scripts_per_delta: per(scripts as f64, report.all_deltas),
            calls,
            server_cores: redis_cores,
            private: redis.private,
        }),
        postgres: Some(PostgresCost {
            commits_per_turn: per(writes.commits as f64, report.all_turns),
            rows_written_per_turn: per(writes.rows() as f64, report.all_turns),
            writes,
        }),
        server_log_problems,
        report,
    })
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
        report,
    }
}

/// Runs `plan` over `servers` (clients round-robin), with their memory and
/// CPU summed; fails if one did not survive it.
async fn run_on(env: &Env, servers: &mut [Server], plan: &LoadPlan) -> anyhow::Result<LoadReport> {
    for server in servers.iter() {
        server.reset_peak();
    }
    let cpu = |servers: &[Server]| servers.iter().map(Server::cpu_secs).sum::<Option<f64>>();
    let cpu_before = cpu(servers);
    let started = Instant::now();
    let targets: Vec<Target> = servers
        .iter()
        .map(|server| Target::Colloquy {
            base_url: server.base_url.clone(),
        })
        .collect();
    let mut report = load::run(&env.client, &targets, plan).await;
    report.rss_peak_kib = servers.iter().map(Server::peak_rss_kib).sum();
    report.rss_end_kib = servers.iter().map(Server::rss_kib).sum();
    if let (Some(before), Some(after)) = (cpu_before, cpu(servers)) {
        let used = after - before;
        report.server_cores = Some(used / started.elapsed().as_secs_f64());
        if report.all_deltas > 0 {
            report.server_cpu_us_per_delta = Some(used * 1e6 / report.all_deltas as f64);
        }
    }
    for server in servers.iter_mut() {
        if !server.is_alive() {
            bail!("colloquy died during the run: {}", server.log_tail());
        }
    }
    Ok(report)
}

fn scratch() -> anyhow::Result<tempfile::TempDir> {
    Ok(tempfile::Builder::new()
        .prefix("colloquy-bench-")
        .tempdir()?)
}
