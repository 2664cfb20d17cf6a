//! Tables on stdout (Markdown, so they paste into `docs/BENCHMARKS.md`) and
//! the machine's description for the JSON.

use std::io::Write as _;

use serde_json::{json, Value};

use crate::load::{LoadReport, Summary};
use crate::scenarios::{Added, Comparison, HistoryRow, Idle, Throughput};

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

fn out(text: &str) {
    // A closed stdout (`| head`) is no reason to fail a benchmark.
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

pub fn streams(comparisons: &[Comparison]) {
    let mut table = String::from(
        "\n| streams | target | turns | turns/s | TTFT p50/p99/p99.9 ms | gap p50/p99/p99.9 ms | turn p50/p99/p99.9 ms | errors | stalls | altered | server RSS peak/end MiB | server cores | server µs/delta |\n\
         |---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for c in comparisons {
        for r in [&c.direct, &c.colloquy] {
            table.push_str(&format!(
                "| {} | {} | {} | {:.1} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n",
                c.streams,
                r.target,
                r.turns,
                r.turns_per_sec,
                percentiles(&r.ttft),
                percentiles(&r.gap),
                percentiles(&r.total),
                r.errors,
                r.stalls,
                r.altered,
                rss(r),
                r.server_cores
                    .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}")),
                r.server_cpu_us_per_delta
                    .map_or_else(|| "–".to_owned(), |c| format!("{c:.1}")),
            ));
        }
        table.push_str(&format!(
            "| {} | **added** | | {:.0} % | **{}** | **{}** | {} | | | | | | |\n",
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

pub fn throughput(result: &Throughput) {
    streams(std::slice::from_ref(&result.comparison));
    out(&format!(
        "\nthroughput: colloquy {:.0} turns/s ({} chunks each), direct {:.0} turns/s; {} stored replies read back intact\n",
        result.comparison.colloquy.turns_per_sec,
        result.comparison.chunks,
        result.comparison.direct.turns_per_sec,
        result.persisted_checked,
    ));
}

pub fn idle(result: &Idle) {
    out(&format!(
        "\n| subscribers | sessions | RSS before MiB | RSS after MiB | per subscriber KiB | connect s | live |\n\
         |---|---|---|---|---|---|---|\n\
         | {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {}/{} |\n",
        result.subscribers,
        result.sessions,
        result.rss_before_kib as f64 / 1024.0,
        result.rss_after_kib as f64 / 1024.0,
        result.bytes_per_subscriber / 1024.0,
        result.connect_secs,
        result.live_checked,
        result.live_expected,
    ));
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
