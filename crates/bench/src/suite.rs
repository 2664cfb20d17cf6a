//! The whole benchmark at full size, what `colloquy-bench` with no
//! scenario runs: every scenario in-process, then (unless skipped) the
//! PostgreSQL + Redis modes of the loads, tables printed as each ends and
//! every figure kept for the JSON and the charts.

use std::time::Duration;

use anyhow::Context as _;
use serde_json::{json, Map, Value};

use crate::backing::BenchRedis;
use crate::scenarios::{self, Env, StreamKnobs};
use crate::{facade, report, search, shared, SuiteArgs};

/// Conversation lengths of the throughput runs, in turns.
const LENGTHS: [usize; 3] = [10, 100, 1_000];
/// Idle subscribers, in steps (the memory chart's points).
const IDLE_STEPS: [usize; 3] = [1_000, 5_000, 10_000];
/// Clients of the throughput runs.
const THROUGHPUT_CLIENTS: usize = 64;

/// Runs the suite; `Ok(false)` when a reply erred or arrived altered, a
/// subscriber was dead or a facade conversation was misrecorded.
pub async fn all(
    env: &Env,
    args: &SuiteArgs,
    results: &mut Map<String, Value>,
) -> anyhow::Result<bool> {
    let setup = args.shared.setup(true);
    if args.skip_shared {
        eprintln!("suite: the PostgreSQL + Redis modes are skipped (--skip-shared)");
    } else {
        // Found missing now, not after twenty minutes of in-process runs.
        probe_shared(&setup).await?;
    }
    let duration = Duration::from_secs_f64(args.duration_secs.max(0.1));
    let warmup = Duration::from_secs_f64(args.warmup_secs.max(0.0));
    let paced = |chunks| StreamKnobs {
        chunks,
        pace: Duration::from_millis(20),
        first_token: Duration::ZERO,
        duration,
        warmup,
        turns_per_session: 10,
    };
    let zero_delay = StreamKnobs {
        pace: Duration::ZERO,
        turns_per_session: 0,
        ..paced(64)
    };
    let mut ok = true;
    let mut judge = |name: &str, clean: bool| {
        if !clean {
            eprintln!("suite: {name}: errors, altered text or a failed check (see its table)");
            ok = false;
        }
    };

    eprintln!("suite: 1 stream, 4 chunks at 20 ms (TTFT over many turns)");
    let ttft = scenarios::streams(env, &[1], &paced(4)).await?;
    report::streams(&ttft);
    judge("ttft", ttft.iter().all(scenarios::Comparison::is_clean));
    results.insert("ttft".to_owned(), json!(ttft));

    eprintln!("suite: streams of 64 chunks at 20 ms, 1, 100 and 1,000 streams");
    let streams = scenarios::streams(env, &[1, 100, 1_000], &paced(64)).await?;
    report::streams(&streams);
    judge(
        "streams",
        streams.iter().all(scenarios::Comparison::is_clean),
    );
    results.insert("streams".to_owned(), json!(streams));

    eprintln!("suite: throughput, growing sessions and sessions of {LENGTHS:?} turns");
    let throughput = scenarios::throughput(env, THROUGHPUT_CLIENTS, &zero_delay, &LENGTHS).await?;
    report::throughput(&throughput);
    judge("throughput", throughput.is_clean());
    results.insert("throughput".to_owned(), json!(throughput));

    eprintln!("suite: idle subscribers {IDLE_STEPS:?}");
    let idle = scenarios::idle(env, &IDLE_STEPS, None).await?;
    report::idle(&idle);
    judge("idle", idle.live_checked >= idle.live_expected);
    results.insert("idle".to_owned(), json!(idle));

    eprintln!("suite: history pages");
    let history = scenarios::history(env, &[100, 1_000, 10_000, 100_000], 300, 100).await?;
    report::history(&history);
    results.insert("history".to_owned(), json!(history));

    eprintln!("suite: search");
    let found = search::search(env, &[1_000, 10_000, 100_000], 200).await?;
    report::search(&found);
    results.insert("search".to_owned(), json!(found));

    eprintln!("suite: the OpenAI facade, 1 and 100 streams");
    let facade = facade::facade(env, &[1, 100], &paced(64)).await?;
    report::facade(&facade);
    judge("facade", facade.iter().all(facade::FacadeLevel::is_clean));
    results.insert("facade".to_owned(), json!(facade));

    if args.skip_shared {
        return Ok(ok);
    }
    eprintln!("suite: PostgreSQL + Redis, 1 stream of 4 chunks");
    let levels = shared::replicas(env, &[1], &paced(4), &setup, &[]).await?;
    report::replicas(&levels);
    judge("replicas_ttft", levels.iter().all(shared::Level::is_clean));
    results.insert("replicas_ttft".to_owned(), json!(levels));

    eprintln!("suite: PostgreSQL + Redis, 1, 100 and 1,000 streams of 64 chunks");
    let levels = shared::replicas(env, &[1, 100, 1_000], &paced(64), &setup, &[]).await?;
    report::replicas(&levels);
    judge("replicas", levels.iter().all(shared::Level::is_clean));
    results.insert("replicas".to_owned(), json!(levels));

    eprintln!("suite: PostgreSQL + Redis, throughput, growing and {LENGTHS:?} turns");
    let levels =
        shared::replicas(env, &[THROUGHPUT_CLIENTS], &zero_delay, &setup, &LENGTHS).await?;
    report::replicas(&levels);
    judge(
        "replicas_throughput",
        levels.iter().all(shared::Level::is_clean),
    );
    results.insert("replicas_throughput".to_owned(), json!(levels));

    eprintln!("suite: PostgreSQL + Redis, idle subscribers {IDLE_STEPS:?}");
    let idle = shared::idle(env, &IDLE_STEPS, &setup).await?;
    report::idle_modes(&idle);
    judge(
        "replicas_idle",
        idle.shared.live_checked >= idle.shared.live_expected,
    );
    results.insert("replicas_idle".to_owned(), json!(idle));
    Ok(ok)
}

/// Fails with what to do when PostgreSQL or Redis is not there.
async fn probe_shared(setup: &shared::SharedSetup) -> anyhow::Result<()> {
    let advice = "start it, point --postgres-url / --redis-url at one, or pass --skip-shared \
                  to leave the PostgreSQL + Redis modes out";
    crate::backing::probe_postgres(&setup.postgres_url)
        .await
        .with_context(|| format!("the PostgreSQL + Redis modes need PostgreSQL: {advice}"))?;
    let redis = BenchRedis::start(setup.redis_url.as_deref(), &setup.redis_server_bin)
        .await
        .with_context(|| format!("the PostgreSQL + Redis modes need Redis: {advice}"))?;
    redis
        .command_calls()
        .await
        .with_context(|| format!("Redis at {} does not answer: {advice}", redis.url))?;
    Ok(())
}
