//! `colloquy-bench`: measures the colloquy relay against the same load sent
//! straight to the upstream, and reports what the relay adds.
//!
//! The fake OpenAI upstream and the load generator run in this process; the
//! colloquy server under test runs as a child process (`colloquy serve`) so
//! that its resident memory is its own. See `docs/BENCHMARKS.md`.

mod backing;
mod client;
mod facade;
mod load;
mod plot;
mod report;
mod scenarios;
mod search;
mod server;
mod shared;
mod upstream;
mod watch;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use serde_json::{json, Value};

use crate::client::Client;
use crate::scenarios::{Env, StreamKnobs};

/// Benchmark colloquy against a direct upstream.
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
}

#[derive(Debug, Subcommand)]
enum Scenario {
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
        /// No watchers: senders only, as in `streams`.
        #[arg(long)]
        no_watchers: bool,
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
    /// Turns per second against a zero-delay upstream, persisted in SQLite.
    Throughput {
        #[arg(long, default_value_t = 64)]
        clients: usize,
        #[command(flatten)]
        knobs: Knobs,
    },
    /// Idle `EventSource` subscribers: resident memory per subscriber.
    Idle {
        #[arg(long, default_value_t = 10_000)]
        subscribers: usize,
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
    /// conversation).
    #[arg(long, default_value_t = 10)]
    turns_per_session: usize,
}

impl Knobs {
    fn stream_knobs(&self) -> StreamKnobs {
        let ms = |v: f64| Duration::from_secs_f64(v.max(0.0) / 1e3);
        StreamKnobs {
            chunks: self.chunks.max(1),
            pace: ms(self.pace_ms),
            first_token: ms(self.first_token_ms),
            duration: Duration::from_secs_f64(self.duration_secs.max(0.1)),
            warmup: Duration::from_secs_f64(self.warmup_secs.max(0.0)),
            turns_per_session: self.turns_per_session.max(1),
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
    if cli.smoke {
        ok = smoke(&env, &mut results).await?;
    } else {
        let Some(scenario) = cli.scenario else {
            anyhow::bail!(
                "name a scenario (streams, facade, replicas, throughput, idle, history, search) or pass --smoke; see --help"
            );
        };
        match scenario {
            Scenario::Streams { levels, knobs } => {
                let comparisons = scenarios::streams(&env, &levels, &knobs.stream_knobs()).await?;
                report::streams(&comparisons);
                results.insert("streams".to_owned(), json!(comparisons));
            }
            Scenario::Facade { levels, knobs } => {
                let levels = facade::facade(&env, &levels, &knobs.stream_knobs()).await?;
                report::facade(&levels);
                ok = levels.iter().all(facade::FacadeLevel::is_clean);
                results.insert("facade".to_owned(), json!(levels));
            }
            Scenario::Replicas {
                levels,
                knobs,
                postgres_url,
                redis_url,
                redis_server_bin,
                no_watchers,
            } => {
                let setup = shared::SharedSetup {
                    postgres_url,
                    redis_url,
                    redis_server_bin,
                    watch: !no_watchers,
                };
                let levels = shared::replicas(&env, &levels, &knobs.stream_knobs(), &setup).await?;
                report::replicas(&levels);
                ok = levels.iter().all(shared::Level::is_clean);
                results.insert("replicas".to_owned(), json!(levels));
            }
            Scenario::Throughput { clients, knobs } => {
                let throughput =
                    scenarios::throughput(&env, clients, &knobs.stream_knobs()).await?;
                report::throughput(&throughput);
                results.insert("throughput".to_owned(), json!(throughput));
            }
            Scenario::Idle {
                subscribers,
                sessions,
            } => {
                let idle =
                    scenarios::idle(&env, subscribers, sessions.unwrap_or(subscribers)).await?;
                report::idle(&idle);
                results.insert("idle".to_owned(), json!(idle));
            }
            Scenario::Search { sizes, requests } => {
                let rows = search::search(&env, &sizes, requests.max(1)).await?;
                report::search(&rows);
                results.insert("search".to_owned(), json!(rows));
            }
            Scenario::History {
                sizes,
                requests,
                limit,
            } => {
                let rows =
                    scenarios::history(&env, &sizes, requests.max(1), limit.clamp(1, 1000)).await?;
                report::history(&rows);
                results.insert("history".to_owned(), json!(rows));
            }
        }
    }
    if let Some(path) = &cli.json {
        std::fs::write(path, serde_json::to_string_pretty(&Value::Object(results))?)?;
        eprintln!("results written to {}", path.display());
    }
    Ok(ok)
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

    eprintln!("smoke: throughput");
    let throughput = scenarios::throughput(env, 8, &knobs).await?;
    report::throughput(&throughput);
    if !throughput.comparison.is_clean() || throughput.comparison.colloquy.turns == 0 {
        eprintln!(
            "smoke: FAILED throughput: {:?}",
            throughput.comparison.colloquy.error_samples
        );
        ok = false;
    }
    results.insert("throughput".to_owned(), json!(throughput));

    eprintln!("smoke: idle subscribers");
    let idle = scenarios::idle(env, 200, 50).await?;
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
    eprintln!("smoke: {}", if ok { "ok" } else { "FAILED" });
    Ok(ok)
}
