//! The closed loop: C clients, each sending its next message as soon as the
//! previous reply ended, for a fixed window, every turn's figures recorded.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::client::{Client, Exchange, Recording, Target, Turn};
use crate::watch::{Awaited, Watcher};

/// How long a watcher may take to see a reply end after its sender did.
const WATCH_PATIENCE: Duration = Duration::from_secs(10);

/// How a load run is shaped.
#[derive(Debug, Clone)]
pub struct LoadPlan {
    pub clients: usize,
    /// Measured time, after the warm-up.
    pub duration: Duration,
    /// Turns started before this much time has passed are not recorded:
    /// connections, sessions and caches are being set up.
    pub warmup: Duration,
    /// Client starts are spread evenly over this much time, so that a
    /// thousand streams do not tick in lockstep (a real crowd does not).
    pub ramp: Duration,
    /// A colloquy client opens a new session after this many turns, so that
    /// history (and the prompt built from it) stays the same size throughout;
    /// zero: never, one session for the whole run that grows as a real chat
    /// does.
    pub turns_per_session: usize,
    /// colloquy only: sessions that exist already (seeded with history);
    /// client `i` starts in the `i`-th (modulo their number) instead of a
    /// new one.
    pub sessions: Option<Arc<[String]>>,
    /// The upstream's pace: a gap over twice this is a stall (zero: none).
    pub pace: Duration,
    /// The text every reply must arrive as.
    pub expected: Arc<str>,
    /// colloquy only: every session also has a watcher (`GET …/events`) on
    /// the next target after its sender's, whose view of each reply is
    /// compared with the sender's.
    pub watch: bool,
    /// Chat Completions targets only: each client is a stateless one that
    /// resends its whole conversation every turn (a new conversation after
    /// `turns_per_session` turns), and every conversation is kept in the
    /// report to be checked afterwards.
    pub resend_history: bool,
}

/// What one turn of a kept conversation got, beside its [`Exchange`].
#[derive(Debug, Clone)]
pub struct ConversationTurn {
    pub ttft: Option<Duration>,
    /// Started inside the measured window.
    pub counted: bool,
    /// The facade only: where it said it recorded the turn.
    pub recording: Option<Recording>,
}

/// A stateless client's conversation, as it went.
#[derive(Debug, Clone, Default)]
pub struct Conversation {
    /// Every finished turn, oldest first: what the next request resends.
    pub exchanges: Vec<Exchange>,
    /// The same turns' figures, in the same order.
    pub turns: Vec<ConversationTurn>,
    /// A turn failed, and the client left the conversation there.
    pub broken: bool,
}

/// Percentiles of one measure, in microseconds.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct Summary {
    pub count: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub p999_us: u64,
    pub max_us: u64,
    pub mean_us: f64,
}

impl Summary {
    pub fn of_histogram(histogram: &Histogram<u64>) -> Self {
        if histogram.is_empty() {
            return Self::default();
        }
        Self {
            count: histogram.len(),
            p50_us: histogram.value_at_quantile(0.50),
            p99_us: histogram.value_at_quantile(0.99),
            p999_us: histogram.value_at_quantile(0.999),
            max_us: histogram.max(),
            mean_us: histogram.mean(),
        }
    }
}

/// What a load run measured.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub target: &'static str,
    /// Deltas received over the whole run, warm-up included.
    pub all_deltas: u64,
    pub clients: usize,
    pub turns: u64,
    pub turns_per_sec: f64,
    pub errors: u64,
    /// Gaps over twice the pace.
    pub stalls: u64,
    /// Turns with at least one stall.
    pub stalled_turns: u64,
    pub altered: u64,
    pub ttft: Summary,
    pub gap: Summary,
    pub total: Summary,
    /// The first few errors, to say what went wrong.
    pub error_samples: Vec<String>,
    /// The server's resident memory (colloquy only), in KiB.
    pub rss_peak_kib: Option<u64>,
    pub rss_end_kib: Option<u64>,
    /// Turns that ended well over the whole run, warm-up included.
    pub all_turns: u64,
    /// With watchers: how they saw the replies.
    pub watch: Option<WatchReport>,
    /// Deltas that arrived inside the measured window, whichever turn they
    /// belong to.
    pub window_deltas: u64,
    /// Turns that ended inside the measured window.
    pub window_turns_ended: u64,
    /// CPU the server used over the whole run (warm-up included), per
    /// second of it: 2.0 is both cores of this machine (with two replicas,
    /// both together).
    pub server_cores: Option<f64>,
    /// CPU the server used in the measured window, per second of it.
    pub server_cores_window: Option<f64>,
    /// Server CPU per delta relayed, in microseconds: its CPU time over the
    /// measured window divided by the deltas that arrived in it.
    pub server_cpu_us_per_delta: Option<f64>,
    /// The same over the whole run, warm-up and the last turns' ends
    /// included, divided by every delta of every turn.
    pub server_cpu_us_per_delta_run: Option<f64>,
    /// Server CPU per turn that ended in the measured window, in
    /// microseconds.
    pub server_cpu_us_per_turn: Option<f64>,
    /// With `resend_history`: every conversation, warm-up included, for
    /// the checks made after the run (too many to belong in the JSON).
    #[serde(skip)]
    pub conversations: Vec<Conversation>,
}

impl LoadReport {
    /// The share of turns with at least one stall.
    pub fn stalled_share(&self) -> f64 {
        if self.turns == 0 {
            0.0
        } else {
            self.stalled_turns as f64 / self.turns as f64
        }
    }

    /// Fills in the server-CPU figures from its CPU time over the whole
    /// run (`run_cpu_secs`, `run_secs` long) and over the measured window.
    pub fn account_cpu(&mut self, run_cpu_secs: f64, run_secs: f64, window: Option<(f64, f64)>) {
        self.server_cores = Some(run_cpu_secs / run_secs.max(1e-9));
        if self.all_deltas > 0 {
            self.server_cpu_us_per_delta_run = Some(run_cpu_secs * 1e6 / self.all_deltas as f64);
        }
        if let Some((cpu, secs)) = window {
            self.server_cores_window = Some(cpu / secs.max(1e-9));
            if self.window_deltas > 0 {
                self.server_cpu_us_per_delta = Some(cpu * 1e6 / self.window_deltas as f64);
            }
            if self.window_turns_ended > 0 {
                self.server_cpu_us_per_turn = Some(cpu * 1e6 / self.window_turns_ended as f64);
            }
        }
    }

    /// Whether every turn arrived whole, at the sender and every watcher.
    pub fn is_clean(&self) -> bool {
        self.errors == 0
            && self.altered == 0
            && self
                .watch
                .as_ref()
                .is_none_or(|w| w.missed == 0 && w.altered == 0)
    }
}

/// How the watchers saw the measured turns.
#[derive(Debug, Clone, Serialize)]
pub struct WatchReport {
    /// Replies a watcher saw end.
    pub replies: u64,
    /// Request sent (by the sender) → the watcher's first delta.
    pub ttft: Summary,
    /// For each delta, the watcher's arrival minus the sender's (zero when
    /// the watcher was first): what reaching another replica adds.
    pub lag: Summary,
    /// Replies a watcher did not see end, or saw with other deltas.
    pub missed: u64,
    /// Replies whose text (joined deltas or final content) differed.
    pub altered: u64,
    pub resyncs: u64,
}

#[derive(Debug)]
struct Recorder {
    ttft: Histogram<u64>,
    gap: Histogram<u64>,
    total: Histogram<u64>,
    turns: u64,
    errors: u64,
    stalls: u64,
    stalled_turns: u64,
    altered: u64,
    error_samples: Vec<String>,
    window_deltas: u64,
    window_turns_ended: u64,
    /// Deltas received in every turn, measured or not.
    all_deltas: u64,
    all_turns: u64,
    watch_ttft: Histogram<u64>,
    watch_lag: Histogram<u64>,
    watched: u64,
    watch_missed: u64,
    watch_altered: u64,
    watch_resyncs: u64,
    conversations: Vec<Conversation>,
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

fn histogram() -> Histogram<u64> {
    // Three significant figures, resizing as needed: 0.1 % resolution at any
    // magnitude, from a microsecond to minutes.
    Histogram::new(3).unwrap_or_else(|_| unreachable!("3 significant figures is a valid precision"))
}

impl Recorder {
    fn new() -> Self {
        Self {
            ttft: histogram(),
            gap: histogram(),
            total: histogram(),
            turns: 0,
            errors: 0,
            stalls: 0,
            stalled_turns: 0,
            altered: 0,
            error_samples: Vec::new(),
            window_deltas: 0,
            window_turns_ended: 0,
            all_deltas: 0,
            all_turns: 0,
            watch_ttft: histogram(),
            watch_lag: histogram(),
            watched: 0,
            watch_missed: 0,
            watch_altered: 0,
            watch_resyncs: 0,
            conversations: Vec::new(),
        }
    }

    fn sample(&mut self, text: String) {
        if self.error_samples.len() < 5 {
            self.error_samples.push(text);
        }
    }

    /// Compares what the watcher saw of `turn` with what its sender saw.
    fn watched(&mut self, turn: &Turn, started: Instant, awaited: Awaited, plan: &LoadPlan) {
        self.watch_resyncs += awaited.resyncs;
        let Some(reply) = awaited.reply else {
            self.watch_missed += 1;
            self.sample(
                awaited
                    .problem
                    .unwrap_or_else(|| "a watcher saw nothing".to_owned()),
            );
            return;
        };
        self.watched += 1;
        if reply.delta_times.len() != turn.delta_times.len() {
            self.watch_missed += 1;
            self.sample(format!(
                "a watcher saw {} deltas of {}, the sender {}",
                reply.delta_times.len(),
                reply.reply_id,
                turn.delta_times.len()
            ));
        }
        if reply.status != "complete"
            || reply.text != *plan.expected
            || reply.final_content != *plan.expected
        {
            self.watch_altered += 1;
            self.sample(format!(
                "a watcher saw {} end {} with {:?}",
                reply.reply_id,
                reply.status,
                truncate(&reply.text)
            ));
        }
        if let Some(first) = reply.delta_times.first() {
            let _ = self.watch_ttft.record(micros(*first - started));
        }
        for (watcher, sender) in reply.delta_times.iter().zip(&turn.delta_times) {
            let _ = self
                .watch_lag
                .record(micros(watcher.saturating_duration_since(*sender)));
        }
    }

    fn watch_report(&self, plan: &LoadPlan) -> Option<WatchReport> {
        plan.watch.then(|| WatchReport {
            replies: self.watched,
            ttft: Summary::of_histogram(&self.watch_ttft),
            lag: Summary::of_histogram(&self.watch_lag),
            missed: self.watch_missed,
            altered: self.watch_altered,
            resyncs: self.watch_resyncs,
        })
    }

    fn error(&mut self, error: &anyhow::Error) {
        self.errors += 1;
        self.sample(format!("{error:#}"));
    }

    fn turn(&mut self, turn: &Turn, plan: &LoadPlan) {
        self.turns += 1;
        if let Some(ttft) = turn.ttft {
            let _ = self.ttft.record(micros(ttft));
        }
        let mut stalled = false;
        for &gap in &turn.gaps {
            let _ = self.gap.record(micros(gap));
            if !plan.pace.is_zero() && gap > plan.pace * 2 {
                self.stalls += 1;
                stalled = true;
            }
        }
        self.stalled_turns += u64::from(stalled);
        let _ = self.total.record(micros(turn.total));
        let final_differs = turn
            .final_content
            .as_deref()
            .is_some_and(|content| content != &*plan.expected);
        if turn.text != *plan.expected || final_differs {
            self.altered += 1;
            if self.error_samples.len() < 5 {
                self.error_samples
                    .push(format!("altered text: {:?}", truncate(&turn.text)));
            }
        }
    }
}

fn truncate(text: &str) -> &str {
    text.char_indices()
        .nth(80)
        .map_or(text, |(end, _)| &text[..end])
}

/// Runs `plan` against `targets` and returns what it measured. Client `i`
/// sends to target `i mod n` (round-robin over replicas, no load balancer
/// needed) and, with `plan.watch`, watches on target `i + 1 mod n`.
pub async fn run(client: &Client, targets: &[Target], plan: &LoadPlan) -> LoadReport {
    run_metered(client, targets, plan, &[]).await.0
}

/// CPU seconds the processes `pids` used so far, together.
fn cpu_of(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|&pid| crate::server::cpu_secs(pid)).sum()
}

/// [`run`], reading the CPU time of the server processes `pids` when the
/// measured window opens and when it closes: returns the report and, when
/// both reads succeeded, `(CPU seconds, seconds)` of the window.
pub async fn run_metered(
    client: &Client,
    targets: &[Target],
    plan: &LoadPlan,
    pids: &[u32],
) -> (LoadReport, Option<(f64, f64)>) {
    let recorder = Arc::new(Mutex::new(Recorder::new()));
    let started = Instant::now();
    let window_start = started + plan.warmup;
    let window_end = window_start + plan.duration;
    let meter = {
        let pids = pids.to_vec();
        tokio::spawn(async move {
            tokio::time::sleep_until(window_start.into()).await;
            let (before, opened) = (cpu_of(&pids), Instant::now());
            tokio::time::sleep_until(window_end.into()).await;
            let (after, closed) = (cpu_of(&pids), Instant::now());
            before
                .zip(after)
                .map(|(before, after)| (after - before, (closed - opened).as_secs_f64()))
        })
    };
    let mut tasks = Vec::with_capacity(plan.clients);
    for index in 0..plan.clients {
        let delay = plan.ramp.mul_f64(index as f64 / plan.clients.max(1) as f64);
        let (client, target, watched, plan, recorder) = (
            client.clone(),
            targets[index % targets.len()].clone(),
            targets[(index + 1) % targets.len()].clone(),
            plan.clone(),
            Arc::clone(&recorder),
        );
        tasks.push(tokio::spawn(async move {
            tokio::time::sleep(delay).await;
            client_loop(
                index,
                &client,
                (&target, &watched),
                &plan,
                &recorder,
                window_start,
                window_end,
            )
            .await;
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let window = if pids.is_empty() {
        meter.abort();
        None
    } else {
        meter.await.ok().flatten()
    };
    let mut recorder = recorder.lock().unwrap_or_else(PoisonError::into_inner);
    let measured = plan.duration.as_secs_f64();
    let report = LoadReport {
        target: targets[0].label(),
        clients: plan.clients,
        turns: recorder.turns,
        turns_per_sec: recorder.turns as f64 / measured,
        errors: recorder.errors,
        stalls: recorder.stalls,
        stalled_turns: recorder.stalled_turns,
        altered: recorder.altered,
        ttft: Summary::of_histogram(&recorder.ttft),
        gap: Summary::of_histogram(&recorder.gap),
        total: Summary::of_histogram(&recorder.total),
        error_samples: recorder.error_samples.clone(),
        all_deltas: recorder.all_deltas,
        all_turns: recorder.all_turns,
        watch: recorder.watch_report(plan),
        window_deltas: recorder.window_deltas,
        window_turns_ended: recorder.window_turns_ended,
        rss_peak_kib: None,
        rss_end_kib: None,
        server_cores: None,
        server_cores_window: None,
        server_cpu_us_per_delta: None,
        server_cpu_us_per_delta_run: None,
        server_cpu_us_per_turn: None,
        conversations: std::mem::take(&mut recorder.conversations),
    };
    (report, window)
}

async fn client_loop(
    index: usize,
    client: &Client,
    (target, watched): (&Target, &Target),
    plan: &LoadPlan,
    recorder: &Mutex<Recorder>,
    window_start: Instant,
    window_end: Instant,
) {
    let record = |f: &mut dyn FnMut(&mut Recorder)| {
        f(&mut recorder.lock().unwrap_or_else(PoisonError::into_inner))
    };
    let mut session: Option<String> = match (target, &plan.sessions) {
        (Target::Colloquy { .. }, Some(sessions)) if !sessions.is_empty() => {
            Some(sessions[index % sessions.len()].clone())
        }
        _ => None,
    };
    let mut watcher: Option<Watcher> = None;
    // A session given beforehand is watched as a new one would be.
    if let (Some(id), Target::Colloquy { base_url: watched }, true) =
        (&session, watched, plan.watch)
    {
        match Watcher::open(client, watched, id).await {
            Ok(opened) => watcher = Some(opened),
            Err(error) => {
                record(&mut |r| r.error(&error));
                session = None;
            }
        }
    }
    let rotates = |turns: usize| plan.turns_per_session > 0 && turns >= plan.turns_per_session;
    let mut turns_in_session = 0;
    let mut sequence = 0_u64;
    let mut conversation = Conversation::default();
    let keep = |conversation: &mut Conversation| {
        let ended = std::mem::take(conversation);
        if plan.resend_history && !ended.turns.is_empty() {
            recorder
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .conversations
                .push(ended);
        }
    };
    loop {
        let turn_start = Instant::now();
        if turn_start >= window_end {
            keep(&mut conversation);
            return;
        }
        if rotates(conversation.exchanges.len()) {
            keep(&mut conversation);
        }
        if let Target::Colloquy { base_url } = target {
            if session.is_none() || rotates(turns_in_session) {
                match open_session(client, base_url, watched, plan.watch).await {
                    Ok((id, watching)) => {
                        session = Some(id);
                        watcher = watching;
                        turns_in_session = 0;
                    }
                    Err(error) => {
                        record(&mut |r| r.error(&error));
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                }
            }
        }
        sequence += 1;
        turns_in_session += 1;
        let prompt = format!("client {index} message {sequence}: tell me something");
        // Only the turn is timed, not the session it may have needed.
        let turn_start = Instant::now();
        let earlier: &[Exchange] = if plan.resend_history {
            &conversation.exchanges
        } else {
            &[]
        };
        let outcome = client
            .turn(target, session.as_deref(), earlier, &prompt)
            .await;
        let counted = turn_start >= window_start && turn_start < window_end;
        match outcome {
            Ok(mut turn) => {
                if plan.resend_history {
                    conversation.turns.push(ConversationTurn {
                        ttft: turn.ttft,
                        counted,
                        recording: turn.recording.take(),
                    });
                    conversation.exchanges.push(Exchange {
                        prompt,
                        reply: turn.text.clone(),
                    });
                }
                let mut awaited = match (&mut watcher, &turn.reply_id) {
                    (Some(watcher), Some(reply)) => {
                        Some(watcher.reply(reply, WATCH_PATIENCE).await)
                    }
                    _ => None,
                };
                let in_window = |at: &Instant| *at >= window_start && *at < window_end;
                let window_deltas = turn.delta_times.iter().filter(|at| in_window(at)).count();
                let ended_in_window = in_window(&(turn_start + turn.total));
                record(&mut |r| {
                    r.all_deltas += turn.gaps.len() as u64 + u64::from(turn.ttft.is_some());
                    r.all_turns += 1;
                    r.window_deltas += window_deltas as u64;
                    r.window_turns_ended += u64::from(ended_in_window);
                    if counted {
                        r.turn(&turn, plan);
                        if let Some(awaited) = awaited.take() {
                            r.watched(&turn, turn_start, awaited, plan);
                        }
                    }
                });
            }
            Err(error) => {
                record(&mut |r| r.error(&error));
                // A broken session (a stuck reply answers 409) is left behind.
                session = None;
                watcher = None;
                conversation.broken = true;
                keep(&mut conversation);
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Creates a session on `base_url` and, when asked, subscribes a watcher to
/// it on `watched` before anything is sent.
async fn open_session(
    client: &Client,
    base_url: &str,
    watched: &Target,
    watch: bool,
) -> anyhow::Result<(String, Option<Watcher>)> {
    let id = client.create_session(base_url).await?;
    let watcher = match watched {
        Target::Colloquy { base_url } if watch => Some(Watcher::open(client, base_url, &id).await?),
        _ => None,
    };
    Ok((id, watcher))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(pace_ms: u64) -> LoadPlan {
        LoadPlan {
            clients: 1,
            duration: Duration::from_secs(1),
            warmup: Duration::ZERO,
            ramp: Duration::ZERO,
            turns_per_session: 0,
            pace: Duration::from_millis(pace_ms),
            expected: Arc::from("text"),
            watch: false,
            resend_history: false,
            sessions: None,
        }
    }

    fn turn(gaps_ms: &[u64]) -> Turn {
        Turn {
            ttft: Some(Duration::from_millis(1)),
            gaps: gaps_ms
                .iter()
                .map(|&ms| Duration::from_millis(ms))
                .collect(),
            text: "text".to_owned(),
            ..Turn::default()
        }
    }

    #[test]
    fn a_turn_with_several_stalls_is_one_stalled_turn() {
        let plan = plan(20);
        let mut recorder = Recorder::new();
        recorder.turn(&turn(&[20, 41, 90, 21]), &plan);
        recorder.turn(&turn(&[20, 40, 21]), &plan);
        recorder.turn(&turn(&[50]), &plan);
        recorder.turn(&turn(&[]), &plan);
        assert_eq!(recorder.stalls, 3);
        assert_eq!(recorder.stalled_turns, 2);
        assert_eq!(recorder.altered, 0);
    }

    #[test]
    fn without_a_pace_nothing_stalls() {
        let mut recorder = Recorder::new();
        recorder.turn(&turn(&[500]), &plan(0));
        assert_eq!((recorder.stalls, recorder.stalled_turns), (0, 0));
    }

    fn report(turns: u64, stalled_turns: u64) -> LoadReport {
        let mut recorder = Recorder::new();
        recorder.turns = turns;
        recorder.stalled_turns = stalled_turns;
        recorder.all_deltas = 1_000;
        recorder.window_deltas = 500;
        recorder.window_turns_ended = 10;
        let plan = plan(20);
        LoadReport {
            target: "colloquy",
            all_deltas: recorder.all_deltas,
            clients: 1,
            turns,
            turns_per_sec: 0.0,
            errors: 0,
            stalls: 0,
            stalled_turns,
            altered: 0,
            ttft: Summary::default(),
            gap: Summary::default(),
            total: Summary::default(),
            error_samples: Vec::new(),
            rss_peak_kib: None,
            rss_end_kib: None,
            all_turns: turns,
            watch: recorder.watch_report(&plan),
            window_deltas: recorder.window_deltas,
            window_turns_ended: recorder.window_turns_ended,
            server_cores: None,
            server_cores_window: None,
            server_cpu_us_per_delta: None,
            server_cpu_us_per_delta_run: None,
            server_cpu_us_per_turn: None,
            conversations: Vec::new(),
        }
    }

    #[test]
    fn stalled_share_is_of_the_turns() {
        assert!((report(200, 3).stalled_share() - 0.015).abs() < 1e-12);
        assert!(report(0, 0).stalled_share().abs() < f64::EPSILON);
    }

    #[test]
    fn cpu_per_delta_is_the_window_s_cpu_over_the_window_s_deltas() {
        let mut report = report(10, 0);
        // 2 s of CPU over a 10 s run; 0.05 s over the 1 s window.
        report.account_cpu(2.0, 10.0, Some((0.05, 1.0)));
        let close = |a: Option<f64>, b: f64| (a.unwrap() - b).abs() < 1e-9;
        assert!(close(report.server_cores, 0.2));
        assert!(close(report.server_cpu_us_per_delta_run, 2_000.0));
        assert!(close(report.server_cores_window, 0.05));
        assert!(close(report.server_cpu_us_per_delta, 100.0));
        assert!(close(report.server_cpu_us_per_turn, 5_000.0));
    }
}
