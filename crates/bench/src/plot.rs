//! SVG charts drawn from a results file: added latency against streams,
//! turns per second against conversation length, resident memory against
//! idle subscribers.
//!
//! Every chart is drawn from the JSON the benchmark writes (never from the
//! in-memory results), so `colloquy-bench plot --from results.json` redraws
//! exactly what a run drew. Extracting the figures ([`latency_charts`],
//! [`length_chart`], [`memory_chart`]) is kept apart from drawing them
//! ([`draw`]) so that the extraction can be tested on a small JSON value.
//!
//! plotters' SVG backend writes text as `<text>` elements, which the viewer
//! lays out: no font library is needed to draw labels.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use plotters::coord::ranged1d::ValueFormatter;
use plotters::prelude::*;
use serde_json::Value;

/// One line of a chart.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    pub label: String,
    /// `(x, y)`, in the order drawn.
    pub points: Vec<(f64, f64)>,
}

/// A horizontal line across a chart (a figure that does not vary with x).
#[derive(Debug, Clone, PartialEq)]
pub struct Reference {
    pub label: String,
    pub value: f64,
}

/// What one chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub x_label: String,
    pub y_label: String,
    pub x_log: bool,
    pub y_log: bool,
    pub series: Vec<Series>,
    pub references: Vec<Reference>,
    /// Where the legend goes: where the figures leave room.
    pub legend: Legend,
}

/// A corner or side of the plotting area.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Legend {
    UpperLeft,
    MiddleRight,
    LowerRight,
}

impl Legend {
    const fn position(self) -> SeriesLabelPosition {
        match self {
            Self::UpperLeft => SeriesLabelPosition::UpperLeft,
            Self::MiddleRight => SeriesLabelPosition::MiddleRight,
            Self::LowerRight => SeriesLabelPosition::LowerRight,
        }
    }
}

impl Chart {
    fn is_empty(&self) -> bool {
        self.series.iter().all(|s| s.points.is_empty()) && self.references.is_empty()
    }
}

/// Latencies under this are drawn at it on a logarithmic axis (an added
/// latency at or below zero is measurement noise).
const FLOOR_MS: f64 = 0.01;

fn f(value: &Value) -> Option<f64> {
    value.as_f64()
}

/// An added figure of a comparison (`added_ttft`, `added_gap`) in ms.
fn added_ms(object: &Value, field: &str, percentile: &str) -> Option<f64> {
    f(&object[field][percentile]).map(|us| us / 1e3)
}

/// The three panels of the latency chart: added TTFT p50, added TTFT p99
/// and added gap p99 against streams, one line per way of running colloquy.
///
/// In-process figures come from `streams` (the `streams` scenario) or,
/// failing that, from the in-process mode of `replicas`; the shared modes
/// from `replicas`. At one stream, TTFT is taken from `ttft` /
/// `replicas_ttft` (short replies, many turns) when the run has them.
pub fn latency_charts(results: &Value) -> Vec<Chart> {
    let panels = [
        (
            "added TTFT p50",
            "added_ttft",
            "added_ttft_vs_direct",
            "p50_us",
            true,
        ),
        (
            "added TTFT p99",
            "added_ttft",
            "added_ttft_vs_direct",
            "p99_us",
            true,
        ),
        (
            "added gap p99",
            "added_gap",
            "added_gap_vs_direct",
            "p99_us",
            false,
        ),
    ];
    panels
        .iter()
        .map(|&(title, field, mode_field, percentile, ttft)| {
            let mut series = Vec::new();
            let in_process = comparisons_points(
                &results["streams"],
                ttft.then_some(&results["ttft"]),
                field,
                percentile,
            );
            let in_process = if in_process.is_empty() {
                mode_points(results, ("in-process", 1), ttft, mode_field, percentile)
            } else {
                in_process
            };
            series.push(Series {
                label: "in-process (SQLite)".to_owned(),
                points: in_process,
            });
            for replicas in [1, 2] {
                series.push(Series {
                    label: format!("PostgreSQL + Redis, {replicas} replica(s)"),
                    points: mode_points(
                        results,
                        ("shared", replicas),
                        ttft,
                        mode_field,
                        percentile,
                    ),
                });
            }
            series.retain(|s| !s.points.is_empty());
            Chart {
                title: format!("{title}, colloquy − direct"),
                x_label: "streams".to_owned(),
                y_label: "ms".to_owned(),
                x_log: true,
                y_log: true,
                series,
                references: Vec::new(),
                // Latency grows with streams: the upper left stays free.
                legend: Legend::UpperLeft,
            }
        })
        .collect()
}

fn as_array(value: &Value) -> &[Value] {
    value.as_array().map_or(&[], Vec::as_slice)
}

/// `(streams, ms)` of a list of comparisons, the one-stream point replaced
/// by `one_stream`'s when it has one.
fn comparisons_points(
    comparisons: &Value,
    one_stream: Option<&Value>,
    field: &str,
    percentile: &str,
) -> Vec<(f64, f64)> {
    let single = one_stream
        .map(as_array)
        .and_then(|list| list.iter().find(|c| c["streams"] == 1))
        .and_then(|c| added_ms(c, field, percentile));
    let mut points: Vec<(f64, f64)> = as_array(comparisons)
        .iter()
        .filter_map(|c| {
            let streams = f(&c["streams"])?;
            let value = if streams == 1.0 {
                single.or_else(|| added_ms(c, field, percentile))
            } else {
                added_ms(c, field, percentile)
            };
            Some((streams, value?))
        })
        .collect();
    if points.is_empty() {
        if let Some(value) = single {
            points.push((1.0, value));
        }
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// `(streams, ms)` of one mode of the `replicas` levels.
fn mode_points(
    results: &Value,
    (mode, replicas): (&str, u64),
    ttft: bool,
    field: &str,
    percentile: &str,
) -> Vec<(f64, f64)> {
    let of = |levels: &Value| -> Vec<(f64, f64)> {
        as_array(levels)
            .iter()
            .filter_map(|level| {
                let run = as_array(&level["modes"])
                    .iter()
                    .find(|m| m["mode"] == mode && m["replicas"] == replicas)?;
                Some((f(&level["streams"])?, added_ms(run, field, percentile)?))
            })
            .collect()
    };
    let mut points = of(&results["replicas"]);
    if ttft {
        if let Some(&single) = of(&results["replicas_ttft"]).iter().find(|p| p.0 == 1.0) {
            points.retain(|p| p.0 != 1.0);
            points.push(single);
        }
    }
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    points
}

/// Persisted turns per second against the conversation's length when the
/// run began (in turns), one line per way of running colloquy; the growing
/// sessions (from nothing) and direct are horizontal references.
///
/// In-process figures come from `throughput` or, failing that, from the
/// in-process mode of `replicas_throughput` (the `replicas` scenario with
/// `--pace-ms 0`), which also gives the shared modes.
pub fn length_chart(results: &Value) -> Chart {
    let mut series = Vec::new();
    let mut references = Vec::new();
    let mut add = |label: &str, points: Vec<(f64, f64)>, growing: Option<f64>| {
        if !points.is_empty() {
            series.push(Series {
                label: label.to_owned(),
                points,
            });
        }
        if let Some(value) = growing {
            references.push(Reference {
                label: format!("{label}, growing from nothing"),
                value,
            });
        }
    };
    let throughput = &results["throughput"];
    let levels = as_array(&results["replicas_throughput"]);
    let direct = f(&throughput["comparison"]["direct"]["turns_per_sec"]).or_else(|| {
        levels
            .first()
            .and_then(|l| f(&l["direct"]["turns_per_sec"]))
    });
    let mut modes = vec![
        ("shared", 1, "PostgreSQL + Redis, 1 replica"),
        ("shared", 2, "PostgreSQL + Redis, 2 replicas"),
    ];
    let in_process_label = "in-process (SQLite)";
    let from_throughput: Vec<(f64, f64)> = as_array(&throughput["lengths"])
        .iter()
        .filter_map(|row| Some((f(&row["turns_before"])?, f(&row["turns_per_sec"])?)))
        .collect();
    let growing = f(&throughput["comparison"]["colloquy"]["turns_per_sec"]);
    if from_throughput.is_empty() && growing.is_none() {
        modes.insert(0, ("in-process", 1, in_process_label));
    } else {
        add(in_process_label, from_throughput, growing);
    }
    for (mode, replicas, label) in modes {
        let turns = |level: &Value| {
            as_array(&level["modes"])
                .iter()
                .find(|m| m["mode"] == mode && m["replicas"] == replicas)
                .and_then(|m| f(&m["report"]["turns_per_sec"]))
        };
        let points: Vec<(f64, f64)> = levels
            .iter()
            .filter(|level| level["turns_before"].as_u64().is_some_and(|t| t > 0))
            .filter_map(|level| Some((f(&level["turns_before"])?, turns(level)?)))
            .collect();
        let growing = levels
            .iter()
            .find(|level| level["turns_before"] == 0 && level["turns_per_session"] == 0)
            .and_then(turns);
        add(label, points, growing);
    }
    if let Some(value) = direct {
        references.push(Reference {
            label: "direct (the upstream alone)".to_owned(),
            value,
        });
    }
    Chart {
        title: "persisted turns/s, zero-delay upstream, by conversation length".to_owned(),
        x_label: "turns in each session when the run began".to_owned(),
        y_label: "turns/s".to_owned(),
        x_log: true,
        y_log: true,
        series,
        references,
        // Between colloquy's figures and direct's, ten times higher.
        legend: Legend::MiddleRight,
    }
}

/// The server's resident memory against idle subscribers, one line per
/// way of running colloquy (the sessions' own memory is in the first
/// point, at zero subscribers). From `idle`, and `replicas_idle` (the
/// `replicas --idle` scenario).
pub fn memory_chart(results: &Value) -> Chart {
    let mut series = Vec::new();
    let mut add =
        |label: &str, idle: &Value| {
            let mut points: Vec<(f64, f64)> = Vec::new();
            if let Some(before) = f(&idle["rss_before_kib"]) {
                points.push((0.0, before / 1024.0));
            }
            points.extend(as_array(&idle["steps"]).iter().filter_map(|step| {
                Some((f(&step["subscribers"])?, f(&step["rss_kib"])? / 1024.0))
            }));
            if points.len() > 1 {
                series.push(Series {
                    label: label.to_owned(),
                    points,
                });
            }
        };
    let in_process = if results["idle"].is_object() {
        &results["idle"]
    } else {
        &results["replicas_idle"]["in_process"]
    };
    add("in-process (SQLite)", in_process);
    add(
        "PostgreSQL + Redis, 1 replica",
        &results["replicas_idle"]["shared"],
    );
    Chart {
        title: "server resident memory with idle subscribers".to_owned(),
        x_label: "idle subscribers (GET …/events)".to_owned(),
        y_label: "RSS, MiB".to_owned(),
        x_log: false,
        y_log: false,
        series,
        references: Vec::new(),
        // The sessions' memory is the base every line stands on.
        legend: Legend::LowerRight,
    }
}

const COLOURS: [RGBColor; 6] = [
    RGBColor(0x1f, 0x77, 0xb4),
    RGBColor(0xd6, 0x27, 0x28),
    RGBColor(0x2c, 0xa0, 0x2c),
    RGBColor(0x94, 0x67, 0xbd),
    RGBColor(0xff, 0x7f, 0x0e),
    RGBColor(0x7f, 0x7f, 0x7f),
];

/// The range an axis needs for `values`, with some room around them.
/// On a logarithmic axis, the y range is whole decades (so that it always
/// has labelled key points) and the x range a little wider than its points.
fn range(values: impl Iterator<Item = f64>, log: bool, decades: bool) -> (f64, f64) {
    let values: Vec<f64> = values
        .map(|v| if log { v.max(FLOOR_MS) } else { v })
        .filter(|v| v.is_finite())
        .collect();
    let lo = values.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !lo.is_finite() || !hi.is_finite() {
        return if log { (1.0, 10.0) } else { (0.0, 1.0) };
    }
    if log && !decades {
        (lo / 1.5, hi * 1.5)
    } else if log {
        let decade = |v: f64| 10f64.powf(v);
        (
            decade((lo / 1.5).log10().floor()),
            decade((hi * 1.5).log10().ceil()),
        )
    } else {
        let span = (hi - lo).max(hi.abs() * 0.1).max(1e-9);
        ((lo - span * 0.05).min(0.0), hi + span * 0.1)
    }
}

/// An axis label: whole numbers without decimals, small ones with two.
fn tick(value: &f64) -> String {
    if value.abs() >= 10.0 || value.fract() == 0.0 {
        format!("{value:.0}")
    } else {
        format!("{value:.2}")
    }
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;

/// Draws `chart` into `area`.
fn draw_one(area: &Area<'_>, chart: &Chart) -> anyhow::Result<()> {
    let xs = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0));
    let ys = chart
        .series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .chain(chart.references.iter().map(|r| r.value));
    let (x0, x1) = range(xs, chart.x_log, false);
    let (y0, y1) = range(ys, chart.y_log, true);
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&chart.title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(60);
    // The four axis kinds are four coordinate types: one generic body.
    match (chart.x_log, chart.y_log) {
        (true, true) => {
            let mut ctx = builder.build_cartesian_2d((x0..x1).log_scale(), (y0..y1).log_scale())?;
            fill(&mut ctx, chart, x0, x1)
        }
        (true, false) => {
            let mut ctx = builder.build_cartesian_2d((x0..x1).log_scale(), y0..y1)?;
            fill(&mut ctx, chart, x0, x1)
        }
        (false, true) => {
            let mut ctx = builder.build_cartesian_2d(x0..x1, (y0..y1).log_scale())?;
            fill(&mut ctx, chart, x0, x1)
        }
        (false, false) => {
            let mut ctx = builder.build_cartesian_2d(x0..x1, y0..y1)?;
            fill(&mut ctx, chart, x0, x1)
        }
    }
}

fn fill<'a, X, Y>(
    ctx: &mut ChartContext<'a, SVGBackend<'a>, Cartesian2d<X, Y>>,
    chart: &Chart,
    x0: f64,
    x1: f64,
) -> anyhow::Result<()>
where
    X: Ranged<ValueType = f64> + ValueFormatter<f64>,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let floor = |y: f64| if chart.y_log { y.max(FLOOR_MS) } else { y };
    ctx.configure_mesh()
        .max_light_lines(1)
        .light_line_style(RGBColor(235, 235, 235))
        .x_label_formatter(&tick)
        .y_label_formatter(&tick)
        .x_desc(chart.x_label.as_str())
        .y_desc(chart.y_label.as_str())
        .label_style(("sans-serif", 13))
        .draw()?;
    for (index, series) in chart.series.iter().enumerate() {
        let colour = COLOURS[index % COLOURS.len()];
        let points: Vec<(f64, f64)> = series.points.iter().map(|&(x, y)| (x, floor(y))).collect();
        ctx.draw_series(LineSeries::new(points.clone(), colour.stroke_width(2)))?
            .label(series.label.as_str())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
        ctx.draw_series(
            points
                .iter()
                .map(|&point| Circle::new(point, 4, colour.filled())),
        )?;
    }
    for (index, reference) in chart.references.iter().enumerate() {
        let colour = COLOURS[(chart.series.len() + index) % COLOURS.len()];
        let y = floor(reference.value);
        ctx.draw_series(DashedLineSeries::new(
            [(x0, y), (x1, y)],
            8,
            5,
            colour.stroke_width(2),
        ))?
        .label(reference.label.as_str())
        .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], colour.stroke_width(2)));
    }
    ctx.configure_series_labels()
        .position(chart.legend.position())
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .draw()?;
    Ok(())
}

/// Draws `charts` side by side into the SVG file `path`.
pub fn draw(path: &Path, charts: &[Chart]) -> anyhow::Result<()> {
    let width = 640 * u32::try_from(charts.len().max(1)).unwrap_or(1);
    let root = SVGBackend::new(path, (width, 440)).into_drawing_area();
    root.fill(&WHITE)?;
    let panels = root.split_evenly((1, charts.len().max(1)));
    for (area, chart) in panels.iter().zip(charts) {
        draw_one(area, chart)?;
    }
    root.present()
        .with_context(|| format!("writing {}", path.display()))?;
    Ok(())
}

/// Draws every chart the results hold figures for into `dir`; returns the
/// files written.
pub fn draw_all(results: &Value, dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let mut written = Vec::new();
    let mut write = |name: &str, charts: Vec<Chart>| -> anyhow::Result<()> {
        let charts: Vec<Chart> = charts.into_iter().filter(|c| !c.is_empty()).collect();
        if charts.is_empty() {
            return Ok(());
        }
        let path = dir.join(name);
        draw(&path, &charts)?;
        written.push(path);
        Ok(())
    };
    write("latency-by-streams.svg", latency_charts(results))?;
    write("turns-by-length.svg", vec![length_chart(results)])?;
    write("memory-by-subscribers.svg", vec![memory_chart(results)])?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn comparison(streams: u64, ttft_p50: i64, gap_p99: i64) -> Value {
        json!({
            "streams": streams,
            "added_ttft": { "p50_us": ttft_p50, "p99_us": ttft_p50 * 3, "p999_us": 0 },
            "added_gap": { "p50_us": 0, "p99_us": gap_p99, "p999_us": 0 },
        })
    }

    fn mode(mode: &str, replicas: u64, ttft_p50: i64) -> Value {
        json!({
            "mode": mode,
            "replicas": replicas,
            "added_ttft_vs_direct": { "p50_us": ttft_p50, "p99_us": ttft_p50 * 2, "p999_us": 0 },
            "added_gap_vs_direct": { "p50_us": 0, "p99_us": 500, "p999_us": 0 },
        })
    }

    fn results() -> Value {
        json!({
            "streams": [comparison(1, 1_500, 300), comparison(100, 2_000, 700), comparison(1000, 70_000, 90_000)],
            "ttft": [comparison(1, 1_000, 100)],
            "replicas": [
                { "streams": 1, "modes": [mode("in-process", 1, 2_000), mode("shared", 1, 5_000), mode("shared", 2, 6_000)] },
                { "streams": 100, "modes": [mode("in-process", 1, 2_100), mode("shared", 1, 25_000), mode("shared", 2, 50_000)] },
            ],
            "throughput": {
                "comparison": { "colloquy": { "turns_per_sec": 1_300.0 }, "direct": { "turns_per_sec": 15_000.0 } },
                "lengths": [
                    { "turns_before": 10, "turns_per_sec": 1_250.0 },
                    { "turns_before": 100, "turns_per_sec": 1_100.0 },
                    { "turns_before": 1000, "turns_per_sec": 1_050.0 },
                ],
            },
            "replicas_throughput": [
                { "turns_before": 0, "turns_per_session": 0, "direct": { "turns_per_sec": 14_000.0 },
                  "modes": [{ "mode": "shared", "replicas": 1, "report": { "turns_per_sec": 200.0 } }] },
                { "turns_before": 10, "turns_per_session": 0,
                  "modes": [{ "mode": "shared", "replicas": 1, "report": { "turns_per_sec": 190.0 } }] },
                { "turns_before": 100, "turns_per_session": 0,
                  "modes": [{ "mode": "shared", "replicas": 1, "report": { "turns_per_sec": 180.0 } }] },
            ],
            "replicas_idle": {
                "shared": { "rss_before_kib": 51_200, "steps": [{ "subscribers": 1000, "rss_kib": 61_440 }] },
            },
            "idle": {
                "rss_before_kib": 40_960,
                "steps": [
                    { "subscribers": 1000, "rss_kib": 53_248 },
                    { "subscribers": 10000, "rss_kib": 163_840 },
                ],
            },
        })
    }

    #[test]
    fn latency_points_come_from_each_mode_and_the_short_replies_at_one_stream() {
        let charts = latency_charts(&results());
        assert_eq!(charts.len(), 3);
        let ttft_p50 = &charts[0];
        assert_eq!(ttft_p50.series.len(), 3);
        assert_eq!(ttft_p50.series[0].label, "in-process (SQLite)");
        // One stream from `ttft` (1.0 ms), not from the 64-chunk run (1.5).
        assert_eq!(
            ttft_p50.series[0].points,
            vec![(1.0, 1.0), (100.0, 2.0), (1000.0, 70.0)]
        );
        assert_eq!(ttft_p50.series[2].points, vec![(1.0, 6.0), (100.0, 50.0)]);
        // The gap keeps the 64-chunk run's figure at one stream.
        assert_eq!(charts[2].series[0].points[0], (1.0, 0.3));
    }

    #[test]
    fn in_process_latency_falls_back_to_the_replicas_run() {
        let mut results = results();
        results["streams"] = Value::Null;
        results["ttft"] = Value::Null;
        let charts = latency_charts(&results);
        assert_eq!(charts[0].series[0].points, vec![(1.0, 2.0), (100.0, 2.1)]);
    }

    #[test]
    fn lengths_are_points_and_growing_and_direct_are_references() {
        let chart = length_chart(&results());
        assert_eq!(chart.series.len(), 2);
        assert_eq!(
            chart.series[0].points,
            vec![(10.0, 1_250.0), (100.0, 1_100.0), (1000.0, 1_050.0)]
        );
        assert_eq!(chart.series[1].label, "PostgreSQL + Redis, 1 replica");
        assert_eq!(chart.series[1].points, vec![(10.0, 190.0), (100.0, 180.0)]);
        let references: Vec<f64> = chart.references.iter().map(|r| r.value).collect();
        assert_eq!(references, vec![1_300.0, 200.0, 15_000.0]);
    }

    #[test]
    fn lengths_of_a_replicas_run_alone_give_every_mode_and_its_direct() {
        let mut results = results();
        results["throughput"] = Value::Null;
        let chart = length_chart(&results);
        assert_eq!(chart.series.len(), 1);
        let references: Vec<f64> = chart.references.iter().map(|r| r.value).collect();
        assert_eq!(references, vec![200.0, 14_000.0]);
    }

    #[test]
    fn memory_starts_from_the_sessions_alone() {
        let chart = memory_chart(&results());
        assert_eq!(
            chart.series[0].points,
            vec![(0.0, 40.0), (1000.0, 52.0), (10000.0, 160.0)]
        );
        assert_eq!(chart.series[1].points, vec![(0.0, 50.0), (1000.0, 60.0)]);
    }

    #[test]
    fn charts_are_svg_with_every_series_labelled() {
        let dir = tempfile::tempdir().unwrap();
        let written = draw_all(&results(), dir.path()).unwrap();
        assert_eq!(written.len(), 3);
        for path in &written {
            let text = std::fs::read_to_string(path).unwrap();
            let document = roxmltree::Document::parse(&text).unwrap();
            assert_eq!(document.root_element().tag_name().name(), "svg");
            let texts: Vec<String> = document
                .descendants()
                .filter(|n| n.has_tag_name("text"))
                .filter_map(|n| n.text().map(|t| t.trim().to_owned()))
                .collect();
            let lines = document
                .descendants()
                .filter(|n| n.has_tag_name("polyline") || n.has_tag_name("path"))
                .count();
            assert!(lines > 0, "{}: no lines drawn", path.display());
            let name = path.file_name().unwrap().to_string_lossy();
            let expected: &[&str] = match &*name {
                "latency-by-streams.svg" => &[
                    "in-process (SQLite)",
                    "PostgreSQL + Redis, 1 replica(s)",
                    "PostgreSQL + Redis, 2 replica(s)",
                    "added TTFT p50, colloquy − direct",
                    "streams",
                ],
                "turns-by-length.svg" => &[
                    "in-process (SQLite)",
                    "in-process (SQLite), growing from nothing",
                    "direct (the upstream alone)",
                ],
                _ => &["in-process (SQLite)", "RSS, MiB"],
            };
            for label in expected {
                assert!(
                    texts.iter().any(|t| t == label),
                    "{name}: no text {label:?} in {texts:?}"
                );
            }
        }
    }

    #[test]
    fn nothing_is_drawn_without_figures() {
        let dir = tempfile::tempdir().unwrap();
        let written = draw_all(&json!({ "machine": {} }), dir.path()).unwrap();
        assert!(written.is_empty());
    }
}
