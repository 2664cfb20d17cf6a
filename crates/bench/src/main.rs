//! `colloquy-bench`: measures the colloquy relay against the same load sent
//! straight to the upstream, and reports what the relay adds.
//!
//! The fake OpenAI upstream and the load generator run in this process; the
//! colloquy server under test runs as a child process (`colloquy serve`) so
//! that its resident memory is its own. See `docs/BENCHMARKS.md`.

mod backing;
mod client;
mod deploy;
mod facade;
mod load;
mod plot;
mod report;
mod scenarios;
mod search;
mod seed;
mod server;
mod shared;
mod suite;
mod upstream;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Context as _;
use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::client::Client;
use crate::scenarios::{Env, StreamKnobs};

/// Benchmark colloquy against a direct upstream. With no scenario named,
/// runs them all at full size (`all`).
#[derive(Debug, Parser)]
#[command(name = "colloquy-bench", version, about)]
struct Cli {
    #[command(subcommand)]
    scenario: Option<Scenario>,
    /// A few seconds of every scenario at small sizes; exits non-zero when a
    /// reply errs or arrives altered (for CI).
    #[arg(long)]
    smoke: bool,
    /// The colloquy binary; defaults to `colloquy` next to this binary.
    #[arg(long, global = true)]
    server_bin: Option<PathBuf>,
    /// Also write the results as JSON here.
    #[arg(long, global = true)]
    json: Option<PathBuf>,
    /// Also draw the SVG charts the results have figures for into this
    /// directory (latency by streams, turns/s by conversation length,
    /// memory by idle subscribers).
    #[arg(long, global = true)]
    plots: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum Scenario {
    /// Every scenario at full size, in-process and (unless
    /// `--skip-shared`) on PostgreSQL + Redis: what running with no
    /// scenario does.
    All(SuiteArgs),
    /// Streams at each concurrency level: added TTFT, added gap, stalls, text intact.
    Streams {
        /// Concurrency levels, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,100,1000")]
        levels: Vec<usize>,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// The same streams straight to the upstream, through colloquy
    /// in-process (SQLite, in-process hub), and through colloquy on
    /// PostgreSQL + Redis with one replica and with two (clients
    /// round-robin, each session watched on the other replica): added TTFT
    /// and gap against both, Redis commands per delta, PostgreSQL writes
    /// per turn. `--pace-ms 0` measures throughput.
    Replicas {
        /// Concurrency levels, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,100")]
        levels: Vec<usize>,
        #[command(flatten)]
        knobs: Knobs,
        #[command(flatten)]
        shared: SharedArgs,
        /// No watchers: senders only, as in `streams`.
        #[arg(long)]
        no_watchers: bool,
        /// After the fresh sessions, the same load on sessions seeded with
        /// each of these many turns (comma-separated), in every mode.
        #[arg(long, value_delimiter = ',')]
        lengths: Vec<usize>,
        /// Instead of the loads: idle subscribers in steps (comma-separated
        /// totals), in-process and on one replica on PostgreSQL + Redis.
        #[arg(long, value_delimiter = ',')]
        idle: Vec<usize>,
    },
    /// Stateless OpenAI clients resending their whole conversation each
    /// turn, straight to the upstream and through colloquy's
    /// `/v1/chat/completions`: added TTFT and gap, text intact, and every
    /// conversation read back as one session holding what streamed.
    Facade {
        /// Concurrency levels, comma-separated.
        #[arg(long, value_delimiter = ',', default_value = "1,100")]
        levels: Vec<usize>,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Turns per second against a zero-delay upstream, persisted in SQLite;
    /// by default each client keeps one session for the whole run.
    Throughput {
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[command(flatten)]
        knobs: Knobs,
        /// Then the same on sessions seeded with each of these many turns
        /// (comma-separated, e.g. 10,100,1000): turns/s by conversation length.
        #[arg(long, value_delimiter = ',')]
        lengths: Vec<usize>,
    },
    /// Idle `EventSource` subscribers: resident memory per subscriber.
    Idle {
        /// Subscribers, connected in steps: comma-separated totals
        /// (e.g. 1000,5000,10000), the memory read after each.
        #[arg(long, value_delimiter = ',', default_value = "10000")]
        subscribers: Vec<usize>,
        /// Sessions they are spread over (default: one each).
        #[arg(long)]
        sessions: Option<usize>,
    },
    /// `GET /api/v1/search` latency by the number of stored messages: a
    /// common word, a rare one, two words.
    Search {
        #[arg(long, value_delimiter = ',', default_value = "1000,10000,100000")]
        sizes: Vec<usize>,
        /// Timed searches per query.
        #[arg(long, default_value_t = 200)]
        requests: usize,
    },
    /// `GET …/messages` latency, first and last page, by session size.
    History {
        #[arg(long, value_delimiter = ',', default_value = "100,1000,10000,100000")]
        sizes: Vec<usize>,
        /// Timed requests per page.
        #[arg(long, default_value_t = 300)]
        requests: usize,
        /// Page size (`limit`).
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
    /// Redraws the SVG charts from a results file (`--json` of any run).
    Plot {
        #[arg(long)]
        from: PathBuf,
        #[arg(long)]
        out: PathBuf,
    },
}

/// Where the PostgreSQL + Redis modes' engines are.
#[derive(Debug, Clone, Args)]
struct SharedArgs {
    /// A PostgreSQL user who may create databases: the run creates one
    /// of its own there and drops it after.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres_url: String,
    /// Use this Redis (with a key prefix of the run's own) instead of
    /// starting a `redis-server`; its command counts then include every
    /// other client's.
    #[arg(long)]
    redis_url: Option<String>,
    /// The `redis-server` the run starts (on a free port, nothing on disk).
    #[arg(long, default_value = "redis-server")]
    redis_server_bin: String,
}

impl SharedArgs {
    fn setup(&self, watch: bool) -> shared::SharedSetup {
        shared::SharedSetup {
            postgres_url: self.postgres_url.clone(),
            redis_url: self.redis_url.clone(),
            redis_server_bin: self.redis_server_bin.clone(),
            watch,
        }
    }
}

/// The knobs of the whole suite.
#[derive(Debug, Clone, Parser)]
#[command(name = "all")]
pub struct SuiteArgs {
    /// Leave out the PostgreSQL + Redis modes (when neither is installed).
    #[arg(long)]
    skip_shared: bool,
    /// Measured seconds of each load.
    #[arg(long, default_value_t = 20.0)]
    duration_secs: f64,
    /// Unmeasured seconds before each load.
    #[arg(long, default_value_t = 3.0)]
    warmup_secs: f64,
    #[command(flatten)]
    shared: SharedArgs,
}

#[derive(Debug, Clone, Args)]
struct Knobs {
    /// Content chunks per reply.
    #[arg(long, default_value_t = 64)]
    chunks: usize,
    /// Time between chunks, in milliseconds (throughput: ignored, zero).
    #[arg(long, default_value_t = 20.0)]
    pace_ms: f64,
    /// Time to the first chunk, in milliseconds.
    #[arg(long, default_value_t = 0.0)]
    first_token_ms: f64,
    /// Measured seconds per target and level.
    #[arg(long, default_value_t = 20.0)]
    duration_secs: f64,
    /// Unmeasured seconds before that.
    #[arg(long, default_value_t = 3.0)]
    warmup_secs: f64,
    /// Turns before a client opens a new session (facade: a new
    /// conversation); 0: never, one session per client that grows for the
    /// whole run. Default 10; 0 for `throughput` and zero-delay `replicas`.
    #[arg(long)]
    turns_per_session: Option<usize>,
}

impl Knobs {
    fn stream_knobs(&self, default_turns_per_session: usize) -> StreamKnobs {
        let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1e3);
        StreamKnobs {
            chunks: self.chunks.max(1),
            pace: ms(self.pace_ms),
            first_token: ms(self.first_token_ms),
            duration: Duration::from_secs_f64(self.duration_secs.max(0.1)),
            warmup: Duration::from_secs_f64(self.warmup_secs.max(0.0)),
            turns_per_session: self.turns_per_session.unwrap_or(default_turns_per_session),
        }
    }
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(error) => {
            eprintln!("colloquy-bench: {error:#}");
            ExitCode::from(2)
        }
    }
}

/// Runs what the command line asks; `Ok(false)` when a check failed.
async fn run(cli: Cli) -> anyhow::Result<bool> {
    if let Some(Scenario::Plot { from, out }) = &cli.scenario {
        let text =
            std::fs::read_to_string(from).with_context(|| format!("reading {}", from.display()))?;
        let results: Value = serde_json::from_str(&text)
            .with_context(|| format!("{} is not JSON", from.display()))?;
        report_plots(&plot::draw_all(&results, out)?);
        return Ok(true);
    }
    // A thousand streams are a thousand sockets to colloquy plus a thousand
    // from colloquy to the fake; ten thousand subscribers, ten thousand more.
    // The server inherits the raised limit.
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) => eprintln!("open-file limit: {limit}"),
        Err(error) => eprintln!("could not raise the open-file limit: {error}"),
    }
    let env = Env {
        server_bin: cli
            .server_bin
            .clone()
            .unwrap_or_else(server::default_binary),
        client: Client::new()?,
    };
    let mut results = serde_json::Map::new();
    results.insert("machine".to_owned(), report::machine());
    let mut ok = true;
    let scenario = match cli.scenario {
        _ if cli.smoke => None,
        Some(scenario) => Some(scenario),
        // No scenario: the whole suite, with its defaults.
        None => Some(Scenario::All(SuiteArgs::parse_from(["all"]))),
    };
    match scenario {
        None => ok = smoke(&env, &mut results).await?,
        Some(Scenario::All(args)) => ok = suite::all(&env, &args, &mut results).await?,
        Some(Scenario::Plot { .. }) => unreachable!("answered above"),
        Some(Scenario::Streams { levels, knobs }) => {
            let comparisons = scenarios::streams(&env, &levels, &knobs.stream_knobs(10)).await?;
            report::streams(&comparisons);
            results.insert("streams".to_owned(), json!(comparisons));
        }
        Some(Scenario::Facade { levels, knobs }) => {
            let levels = facade::facade(&env, &levels, &knobs.stream_knobs(10)).await?;
            report::facade(&levels);
            ok = levels.iter().all(facade::FacadeLevel::is_clean);
            results.insert("facade".to_owned(), json!(levels));
        }
        Some(Scenario::Replicas {
            levels,
            knobs,
            shared: engines,
            no_watchers,
            lengths,
            idle,
        }) => {
            let setup = engines.setup(!no_watchers);
            if idle.is_empty() {
                // A zero-delay run is the throughput scenario's: one growing
                // session per client unless told otherwise.
                let default_turns = if knobs.pace_ms > 0.0 { 10 } else { 0 };
                let knobs = knobs.stream_knobs(default_turns);
                let levels = shared::replicas(&env, &levels, &knobs, &setup, &lengths).await?;
                report::replicas(&levels);
                ok = levels.iter().all(shared::Level::is_clean);
                // Zero-delay runs are the throughput figures (and their chart).
                let key = if knobs.pace.is_zero() {
                    "replicas_throughput"
                } else {
                    "replicas"
                };
                results.insert(key.to_owned(), json!(levels));
            } else {
                let idle = shared::idle(&env, &idle, &setup).await?;
                report::idle_modes(&idle);
                ok = idle.in_process.live_checked >= idle.in_process.live_expected
                    && idle.shared.live_checked >= idle.shared.live_expected;
                results.insert("replicas_idle".to_owned(), json!(idle));
            }
        }
        Some(Scenario::Throughput {
            clients,
            knobs,
            lengths,
        }) => {
            let throughput =
                scenarios::throughput(&env, clients, &knobs.stream_knobs(0), &lengths).await?;
            report::throughput(&throughput);
            ok = throughput.is_clean();
            results.insert("throughput".to_owned(), json!(throughput));
        }
        Some(Scenario::Idle {
            subscribers,
            sessions,
        }) => {
            let idle = scenarios::idle(&env, &subscribers, sessions).await?;
            report::idle(&idle);
            ok = idle.live_checked >= idle.live_expected;
            results.insert("idle".to_owned(), json!(idle));
        }
        Some(Scenario::Search { sizes, requests }) => {
            let rows = search::search(&env, &sizes, requests.max(1)).await?;
            report::search(&rows);
            results.insert("search".to_owned(), json!(rows));
        }
        Some(Scenario::History {
            sizes,
            requests,
            limit,
        }) => {
            let rows =
                scenarios::history(&env, &sizes, requests.max(1), limit.clamp(1, 1000)).await?;
            report::history(&rows);
            results.insert("history".to_owned(), json!(rows));
        }
    }
    let results = Value::Object(results);
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&results)?)?;
        eprintln!("results written to {}", path.display());
    }
    if let Some(dir) = &cli.plots {
        report_plots(&plot::draw_all(&results, dir)?);
    }
    Ok(ok)
}

fn report_plots(written: &[PathBuf]) {
    if written.is_empty() {
        eprintln!("no chart drawn: the results hold none of their figures");
    }
    for path in written {
        eprintln!("chart written to {}", path.display());
    }
}

/// Every scenario, small and short. Fails on any error, altered text, dead
/// subscriber or wrong page; latency is not judged (CI machines vary).
async fn smoke(env: &Env, results: &mut serde_json::Map<String, Value>) -> anyhow::Result<bool> {
    let knobs = StreamKnobs {
        chunks: 16,
        pace: Duration::from_millis(5),
        first_token: Duration::from_millis(2),
        duration: Duration::from_secs(2),
        warmup: Duration::from_millis(500),
        turns_per_session: 5,
    };
    let mut ok = true;
    eprintln!("smoke: streams");
    let comparisons = scenarios::streams(env, &[1, 20], &knobs).await?;
    report::streams(&comparisons);
    for comparison in &comparisons {
        if !comparison.is_clean() || comparison.colloquy.turns == 0 {
            eprintln!(
                "smoke: FAILED at {} streams: {:?}",
                comparison.streams, comparison.colloquy.error_samples
            );
            ok = false;
        }
    }
    results.insert("streams".to_owned(), json!(comparisons));

    eprintln!("smoke: facade");
    let levels = facade::facade(env, &[1, 20], &knobs).await?;
    report::facade(&levels);
    for level in &levels {
        if !level.is_clean() {
            eprintln!(
                "smoke: FAILED facade at {} conversations: {:?} {:?}",
                level.comparison.streams,
                level.comparison.colloquy.error_samples,
                level.readback.samples
            );
            ok = false;
        }
    }
    results.insert("facade".to_owned(), json!(levels));

    eprintln!(
        "smoke: throughput (one growing session per client, then sessions of 5 and 20 turns)"
    );
    let growing = StreamKnobs {
        turns_per_session: 0,
        ..knobs.clone()
    };
    let throughput = scenarios::throughput(env, 8, &growing, &[5, 20]).await?;
    report::throughput(&throughput);
    if !throughput.is_clean() {
        eprintln!(
            "smoke: FAILED throughput: {:?} {:?}",
            throughput.comparison.colloquy.error_samples,
            throughput
                .lengths
                .iter()
                .map(|l| &l.report.error_samples)
                .collect::<Vec<_>>()
        );
        ok = false;
    }
    results.insert("throughput".to_owned(), json!(throughput));

    eprintln!("smoke: idle subscribers");
    let idle = scenarios::idle(env, &[100, 200], Some(50)).await?;
    report::idle(&idle);
    if idle.live_checked < idle.live_expected {
        eprintln!(
            "smoke: FAILED: {} of {} subscribers saw the update",
            idle.live_checked, idle.live_expected
        );
        ok = false;
    }
    results.insert("idle".to_owned(), json!(idle));

    eprintln!("smoke: history");
    // Pages are checked for their length inside; an error fails the run.
    let rows = scenarios::history(env, &[100, 2_000], 20, 100).await?;
    report::history(&rows);
    results.insert("history".to_owned(), json!(rows));

    eprintln!("smoke: search");
    let rows = search::search(env, &[300, 1_500], 20).await?;
    report::search(&rows);
    results.insert("search".to_owned(), json!(rows));
    // The charts are drawn from these results, as `--plots` would.
    let charts = tempfile::tempdir()?;
    let drawn = plot::draw_all(&Value::Object(results.clone()), charts.path())?;
    eprintln!("smoke: {} charts drawn", drawn.len());
    if drawn.len() < 3 {
        eprintln!("smoke: FAILED: charts missing, only {drawn:?}");
        ok = false;
    }
    eprintln!("smoke: {}", if ok { "ok" } else { "FAILED" });
    Ok(ok)
}
