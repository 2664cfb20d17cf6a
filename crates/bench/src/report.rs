//! Tables on stdout (Markdown, so they paste into `docs/BENCHMARKS.md`) and
//! the machine's description for the JSON.

use std::io::Write as _;

use serde_json::{json, Value};

use crate::facade::{FacadeLevel, TtftOfTurns};
use crate::load::{LoadReport, Summary};
use crate::scenarios::{Added, Comparison, HistoryRow, Idle, Spread, Throughput};
use crate::search::SearchRow;
use crate::shared::{IdleModes, Level, ModeRun};

/// What the figures were measured on.
pub fn machine() -> Value {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = cpuinfo.lines().find_map(|line| {
        line.strip_prefix("model name")
            .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
    });
    let memory_kib = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .next()
                .and_then(|line| line.split_whitespace().nth(1))
                .and_then(|v| v.parse::<u64>().ok())
        });
    json!({
        "cpus": std::thread::available_parallelism().map(std::num::NonZero::get).ok(),
        "cpu_model": cpu,
        "memory_kib": memory_kib,
        "load_average": std::fs::read_to_string("/proc/loadavg").ok().map(|l| l.trim().to_owned()),
    })
}

fn ms(us: u64) -> String {
    format!("{:.2}", us as f64 / 1e3)
}

fn added_ms(us: i64) -> String {
    format!("{:+.2}", us as f64 / 1e3)
}

fn percentiles(summary: &Summary) -> String {
    format!(
        "{} / {} / {}",
        ms(summary.p50_us),
        ms(summary.p99_us),
        ms(summary.p999_us)
    )
}

fn added(added: &Added) -> String {
    format!(
        "{} / {} / {}",
        added_ms(added.p50_us),
        added_ms(added.p99_us),
        added_ms(added.p999_us)
    )
}

fn rss(report: &LoadReport) -> String {
    match (report.rss_peak_kib, report.rss_end_kib) {
        (Some(peak), Some(end)) => {
            format!("{:.1} / {:.1}", peak as f64 / 1024.0, end as f64 / 1024.0)
        }
        _ => "–".to_owned(),
    }
}

/// Turns with a stall: how many, and their share of the turns.
fn stalled(report: &LoadReport) -> String {
    format!(
        "{} ({:.2} %)",
        report.stalled_turns,
        report.stalled_share() * 100.0
    )
}

/// The server's cores over the measured window (the whole run's when the
/// window could not be read).
fn cores(report: &LoadReport) -> String {
    report
        .server_cores_window
        .or(report.server_cores)
        .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}"))
}

/// Server CPU per delta relayed in the measured window.
fn per_delta(report: &LoadReport) -> String {
    report
        .server_cpu_us_per_delta
        .map_or_else(|| "–".to_owned(), |c| format!("{c:.1}"))
}

fn per_turn(report: &LoadReport) -> String {
    report
        .server_cpu_us_per_turn
        .map_or_else(|| "–".to_owned(), |c| format!("{:.2} ms", c / 1e3))
}

fn spread(spread: Option<&Spread>) -> String {
    spread.map_or_else(
        || "–".to_owned(),
        |s| {
            format!(
                "{:.1} % ({}: within {:.0} %)",
                s.spread * 100.0,
                if s.met { "met" } else { "missed" },
                s.limit * 100.0
            )
        },
    )
}

fn out(text: &str) {
    // A closed stdout (`| head`) is no reason to fail a benchmark.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

pub fn streams(comparisons: &[Comparison]) {
    let mut table = String::from(
        "\n| streams | target | turns | turns/s | TTFT p50/p99/p99.9 ms | gap p50/p99/p99.9 ms | turn p50/p99/p99.9 ms | errors | stalls | stalled turns | altered | server RSS peak/end MiB | server cores | server µs/delta |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in comparisons {
        for r in [&c.direct, &c.colloquy] {
            table.push_str(&format!(
                "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                c.streams,
                r.target,
                r.turns,
                r.turns_per_sec,
                percentiles(&r.ttft),
                percentiles(&r.gap),
                percentiles(&r.total),
                r.errors,
                r.stalls,
                stalled(r),
                r.altered,
                rss(r),
                cores(r),
                per_delta(r),
            ));
        }
        table.push_str(&format!(
            "| {} | **added** | | {:.0} % | **{}** | **{}** | {} | | | | | | | |\n",
            c.streams,
            c.throughput_ratio * 100.0,
            added(&c.added_ttft),
            added(&c.added_gap),
            added(&c.added_total),
        ));
    }
    for c in comparisons {
        for r in [&c.direct, &c.colloquy] {
            for sample in &r.error_samples {
                table.push_str(&format!("\n{} streams, {}: {sample}", c.streams, r.target));
            }
        }
        if c.server_log_problems > 0 {
            table.push_str(&format!(
                "\n{} streams: the server logged {} warnings or errors",
                c.streams, c.server_log_problems
            ));
        }
    }
    table.push('\n');
    out(&table);
}

fn ttft_cells(turns: &TtftOfTurns) -> String {
    format!(
        "{} | {} | {}",
        percentiles(&turns.direct),
        percentiles(&turns.facade),
        added(&turns.added)
    )
}

/// The `facade` scenario: the streams table (the `colloquy` rows are the
/// facade's), TTFT by a turn's place in its conversation, and the read-back.
pub fn facade(levels: &[FacadeLevel]) {
    let comparisons: Vec<Comparison> = levels.iter().map(|l| l.comparison.clone()).collect();
    streams(&comparisons);
    let mut table = String::from(
        "\n| streams | turns per conversation | first turns: TTFT direct | facade | added | later turns: TTFT direct | facade | added |\n|---|---|---|---|---|---|---|---|\n",
    );
    for level in levels {
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            level.comparison.streams,
            level.turns_per_conversation,
            ttft_cells(&level.first_turns),
            ttft_cells(&level.later_turns),
        ));
    }
    table.push_str(
        "\n| streams | conversations | read back | replies stored intact | stored ≠ streamed | split over sessions | misrecorded turns | ended by an error |\n|---|---|---|---|---|---|---|---|\n",
    );
    for level in levels {
        let r = &level.readback;
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} |\n",
            level.comparison.streams,
            r.conversations,
            r.checked,
            r.replies_intact,
            r.altered,
            r.split,
            r.misrecorded,
            r.broken
        ));
    }
    for level in levels {
        for sample in &level.readback.samples {
            table.push_str(&format!(
                "\n{} streams, read back: {sample}",
                level.comparison.streams
            ));
        }
    }
    table.push('\n');
    out(&table);
}

pub fn throughput(result: &Throughput) {
    streams(std::slice::from_ref(&result.comparison));
    let c = &result.comparison;
    let sessions = if result.turns_per_session == 0 {
        "one session per client, growing for the whole run".to_owned()
    } else {
        format!("a new session every {} turns", result.turns_per_session)
    };
    let mut table = format!(
        "\n| sessions | turns before | turns/s colloquy | % of direct | turns added per session | TTFT p50/p99/p99.9 ms | server cores | server CPU per turn | errors | altered | stored replies checked |\n\
         |---|---|---|---|---|---|---|---|---|---|---|\n\
         | {sessions} | 0 | **{:.0}** | {:.1} % | {:.0} | {} | {} | {} | {} | {} | {} |\n",
        c.colloquy.turns_per_sec,
        c.throughput_ratio * 100.0,
        c.colloquy.all_turns as f64 / c.colloquy.clients.max(1) as f64,
        percentiles(&c.colloquy.ttft),
        cores(&c.colloquy),
        per_turn(&c.colloquy),
        c.colloquy.errors,
        c.colloquy.altered,
        result.persisted_checked,
    );
    for row in &result.lengths {
        let r = &row.report;
        table.push_str(&format!(
            "| seeded, kept for the run | {} | **{:.0}** | {:.1} % | {:.0} | {} | {} | {} | {} | {} | {} |\n",
            row.turns_before,
            row.turns_per_sec,
            row.ratio_to_direct * 100.0,
            row.turns_added_per_session,
            percentiles(&r.ttft),
            cores(r),
            per_turn(r),
            r.errors,
            r.altered,
            row.persisted_checked,
        ));
    }
    table.push_str(&format!(
        "\nthroughput: direct {:.0} turns/s ({} chunks each, {} clients)",
        c.direct.turns_per_sec, c.chunks, c.streams
    ));
    if !result.lengths.is_empty() {
        table.push_str(&format!(
            "; spread of turns/s over the lengths (max ÷ min − 1): {}",
            spread(result.length_spread.as_ref())
        ));
    }
    for row in &result.lengths {
        for sample in &row.report.error_samples {
            table.push_str(&format!("\n{} turns before: {sample}", row.turns_before));
        }
    }
    table.push('\n');
    out(&table);
}

fn idle_rows(label: &str, result: &Idle) -> String {
    let mut rows = String::new();
    let mut previous = (0, result.rss_before_kib);
    for step in &result.steps {
        let added = step.subscribers - previous.0;
        let marginal =
            (step.rss_kib.saturating_sub(previous.1) * 1024) as f64 / added.max(1) as f64;
        rows.push_str(&format!(
            "| {label} | {} | {} | {:.1} | {:.1} | **{:.2}** | {:.2} |\n",
            step.subscribers,
            result.sessions,
            result.rss_before_kib as f64 / 1024.0,
            step.rss_kib as f64 / 1024.0,
            step.bytes_per_subscriber / 1024.0,
            marginal / 1024.0,
        ));
        previous = (step.subscribers, step.rss_kib);
    }
    rows
}

const IDLE_HEADER: &str = "\n| server | subscribers | sessions | RSS before MiB | RSS after MiB | per subscriber KiB | of the step's own KiB |\n|---|---|---|---|---|---|---|\n";

pub fn idle(result: &Idle) {
    let mut table = String::from(IDLE_HEADER);
    table.push_str(&idle_rows("in-process", result));
    table.push_str(&format!(
        "\nconnect {:.1} s; live: {}/{} subscribers saw the update\n",
        result.connect_secs, result.live_checked, result.live_expected,
    ));
    out(&table);
}

pub fn idle_modes(result: &IdleModes) {
    let mut table = String::from(IDLE_HEADER);
    table.push_str(&idle_rows("in-process", &result.in_process));
    table.push_str(&idle_rows("PG + Redis, 1 replica", &result.shared));
    table.push_str(&format!(
        "\nlive: in-process {}/{}, PG + Redis {}/{}; per subscriber, PG + Redis − in-process: {:+.2} KiB\n",
        result.in_process.live_checked,
        result.in_process.live_expected,
        result.shared.live_checked,
        result.shared.live_expected,
        (result.shared.bytes_per_subscriber - result.in_process.bytes_per_subscriber) / 1024.0,
    ));
    out(&table);
}

pub fn history(rows: &[HistoryRow]) {
    let mut table = String::from(
        "\n| messages in session | limit | first page p50/p99/p99.9 ms | last page p50/p99/p99.9 ms |\n|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.messages,
            row.limit,
            percentiles(&row.first_page),
            percentiles(&row.last_page)
        ));
    }
    out(&table);
}

pub fn search(rows: &[SearchRow]) {
    let mut table = String::from(
        "\n| messages stored | `q=apple` (1 in 10) p50/p99/p99.9 ms | rare word (1 message) | `q=apple banana` (1 in 30) |\n|---|---|---|---|\n",
    );
    for row in rows {
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            row.messages,
            percentiles(&row.common),
            percentiles(&row.rare),
            percentiles(&row.both)
        ));
    }
    out(&table);
}

/// Per mode and level of clients, the spread of turns/s over the seeded
/// lengths, and the stored replies read back.
fn length_spreads(levels: &[Level]) -> String {
    let mut text = String::new();
    let mut streams: Vec<usize> = levels
        .iter()
        .filter(|l| l.turns_before > 0)
        .map(|l| l.streams)
        .collect();
    streams.dedup();
    for clients in streams {
        let seeded: Vec<&Level> = levels
            .iter()
            .filter(|l| l.streams == clients && l.turns_before > 0)
            .collect();
        let Some(first) = seeded.first() else {
            continue;
        };
        for (index, m) in first.modes.iter().enumerate() {
            let values: Vec<f64> = seeded
                .iter()
                .filter_map(|l| l.modes.get(index).map(|m| m.report.turns_per_sec))
                .collect();
            let checked: usize = seeded
                .iter()
                .filter_map(|l| l.modes.get(index).and_then(|m| m.persisted_checked))
                .sum();
            text.push_str(&format!(
                "\n{clients} clients, {}: spread of turns/s over the lengths {}; {checked} stored replies read back intact",
                mode_label(m),
                spread(Spread::of(&values).as_ref()),
            ));
        }
    }
    if !text.is_empty() {
        text.push('\n');
    }
    text
}

fn mode_label(run: &ModeRun) -> String {
    match run.mode {
        "shared" => format!("PG + Redis, {} replica(s)", run.replicas),
        other => other.to_owned(),
    }
}

fn watch_cells(report: &LoadReport) -> String {
    report.watch.as_ref().map_or_else(
        || "– | – | –".to_owned(),
        |w| {
            format!(
                "{} | {} | {} missed, {} altered, {} resyncs",
                percentiles(&w.ttft),
                percentiles(&w.lag),
                w.missed,
                w.altered,
                w.resyncs
            )
        },
    )
}

/// The `replicas` scenario: every mode's figures, what each adds, and what
/// each turn costs the engines.
pub fn replicas(levels: &[Level]) {
    let mut table = String::from(
        "\n| streams | turns before | mode | turns | turns/s | TTFT p50/p99/p99.9 ms | gap p50/p99/p99.9 ms | errors | stalls | stalled turns | altered | watcher TTFT ms | watcher lag ms | watchers | server cores | server µs/delta | server CPU per turn |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for level in levels {
        let rows = std::iter::once(("direct".to_owned(), &level.direct))
            .chain(level.modes.iter().map(|m| (mode_label(m), &m.report)));
        for (label, r) in rows {
            table.push_str(&format!(
                "| {} | {} | {label} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                level.streams,
                level.turns_before,
                r.turns,
                r.turns_per_sec,
                percentiles(&r.ttft),
                percentiles(&r.gap),
                r.errors,
                r.stalls,
                stalled(r),
                r.altered,
                watch_cells(r),
                cores(r),
                per_delta(r),
                per_turn(r),
            ));
        }
    }
    table.push_str(
        "\n| streams | turns before | mode | % of direct's turns | added TTFT vs direct | added gap vs direct | added TTFT vs in-process | added gap vs in-process |\n|---|---|---|---|---|---|---|---|\n",
    );
    for level in levels {
        for m in &level.modes {
            table.push_str(&format!(
                "| {} | {} | {} | {:.1} % | {} | {} | {} | {} |\n",
                level.streams,
                level.turns_before,
                mode_label(m),
                if level.direct.turns_per_sec > 0.0 {
                    m.report.turns_per_sec / level.direct.turns_per_sec * 100.0
                } else {
                    0.0
                },
                added(&m.added_ttft_vs_direct),
                added(&m.added_gap_vs_direct),
                m.added_ttft_vs_in_process
                    .as_ref()
                    .map_or_else(|| "–".to_owned(), added),
                m.added_gap_vs_in_process
                    .as_ref()
                    .map_or_else(|| "–".to_owned(), added),
            ));
        }
    }
    table.push_str(
        "\n| streams | turns before | mode | Redis commands per delta | per turn | scripts per delta | redis-server cores | PG commits per turn | PG rows written per turn | postgres cores | 2 replicas ÷ 1, turns/s |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for level in levels {
        for m in level.modes.iter().filter(|m| m.redis.is_some()) {
            let (Some(redis), Some(pg)) = (&m.redis, &m.postgres) else {
                continue;
            };
            table.push_str(&format!(
                "| {} | {} | {} | {:.2}{} | {:.1} | {:.2} | {} | {:.2} | {:.2} | {:.2} | {} |\n",
                level.streams,
                level.turns_before,
                mode_label(m),
                redis.per_delta,
                if redis.private {
                    ""
                } else {
                    " (shared server)"
                },
                redis.per_turn,
                redis.scripts_per_delta,
                redis
                    .server_cores
                    .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}")),
                pg.commits_per_turn,
                pg.rows_written_per_turn,
                pg.server_cores,
                match (m.replicas, level.two_over_one_turns) {
                    (2, Some(ratio)) => format!(
                        "{ratio:.2} ({})",
                        if ratio >= 2.0 * 0.85 {
                            "about 2×"
                        } else {
                            "not 2×"
                        }
                    ),
                    _ => "–".to_owned(),
                },
            ));
        }
    }
    table.push_str(&length_spreads(levels));
    for level in levels {
        for m in &level.modes {
            for sample in &m.report.error_samples {
                table.push_str(&format!(
                    "\n{} streams, {}: {sample}",
                    level.streams,
                    mode_label(m)
                ));
            }
            if m.server_log_problems > 0 {
                table.push_str(&format!(
                    "\n{} streams, {}: the servers logged {} warnings or errors",
                    level.streams,
                    mode_label(m),
                    m.server_log_problems
                ));
            }
        }
    }
    table.push('\n');
    out(&table);
}
