//! The colloquy server under test, as a process of its own.
//!
//! A separate process is what makes its resident memory measurable apart
//! from the load generator and the fake upstream: `VmRSS` in
//! `/proc/PID/status` is the server's alone.

use std::collections::HashMap;
use std::fs::File;
use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context as _};

/// The `colloquy` binary next to this one (same target directory and
/// profile), unless the caller names one.
pub fn default_binary() -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(|dir| dir.join("colloquy")))
        .unwrap_or_else(|| PathBuf::from("target/release/colloquy"))
}

/// A running `colloquy serve`, killed when dropped.
#[derive(Debug)]
pub struct Server {
    child: Child,
    pub base_url: String,
    log_path: PathBuf,
    sampler: Option<RssSampler>,
}

impl Server {
    /// Starts `binary` on a free port with its database at `database` (a
    /// SQLite path or a `postgres://` URL), talking to `upstream`, with the
    /// variables `extra` on top (Redis for the shared modes), and waits until
    /// it answers `/readyz`. It logs to `server.log` in `dir`.
    pub async fn start(
        binary: &Path,
        database: &str,
        upstream: &str,
        dir: &Path,
        extra: &[(&str, String)],
    ) -> anyhow::Result<Self> {
        if !binary.exists() {
            bail!(
                "no colloquy binary at {}: build it first (`cargo build --release -p colloquy`) or pass --server-bin",
                binary.display()
            );
        }
        // Ask the kernel for a free port, then hand it over. Another process
        // could take it in between; on a benchmark machine nothing does.
        let port = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?
            .local_addr()?
            .port();
        let log_path = dir.join("server.log");
        let log = File::create(&log_path)?;
        let child = Command::new(binary)
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("COLLOQUY_ADDR", format!("127.0.0.1:{port}"))
            .env("DATABASE_URL", database)
            .env("COLLOQUY_LLM", "openai")
            .env("OPENAI_BASE_URL", upstream)
            .env("OPENAI_API_KEY", "sk-bench")
            .env("OPENAI_MODEL", "fake-model")
            // One upstream request per turn: the relay path, not title
            // generation or tool round trips, is what is measured.
            .env("COLLOQUY_AUTO_TITLE", "false")
            .env("COLLOQUY_TOOLS", "none")
            // Every simulated user is the one anonymous principal on one
            // address: the per-principal limits would measure themselves.
            .env("COLLOQUY_RATE_LIMIT_PER_MINUTE", "0")
            .env("COLLOQUY_MAX_REPLIES_PER_PRINCIPAL", "0")
            .env("COLLOQUY_MAX_STREAMS_PER_PRINCIPAL", "0")
            // Ten thousand idle subscribers are ten thousand connections, the
            // default cap: past it, the next request would wait in the backlog.
            .env("COLLOQUY_MAX_CONNECTIONS", "0")
            .env("RUST_LOG", "warn")
            .envs(extra.iter().map(|(name, value)| (name, value)))
            .current_dir(dir)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .with_context(|| format!("starting {}", binary.display()))?;
        let mut server = Self {
            child,
            base_url: format!("http://127.0.0.1:{port}"),
            log_path,
            sampler: None,
        };
        server.wait_ready().await?;
        server.sampler = Some(RssSampler::start(server.child.id()));
        Ok(server)
    }

    async fn wait_ready(&mut self) -> anyhow::Result<()> {
        let client = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "colloquy exited at start-up ({status}): {}",
                    self.log_tail()
                );
            }
            let ready = client.get(format!("{}/readyz", self.base_url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "colloquy did not become ready within 30 s: {}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The server's resident memory now, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id())
    }

    /// CPU time the server has used so far (user + system), in seconds.
    pub fn cpu_secs(&self) -> Option<f64> {
        cpu_secs(self.child.id())
    }

    /// The highest resident memory seen since the last reset, in KiB.
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.sampler
            .as_ref()
            .map(|s| s.peak.load(Ordering::Relaxed))
            .filter(|&p| p > 0)
    }

    pub fn reset_peak(&self) {
        if let Some(sampler) = &self.sampler {
            sampler
                .peak
                .store(self.rss_kib().unwrap_or(0), Ordering::Relaxed);
        }
    }

    /// Whether the process is still running (a crash fails the benchmark).
    pub fn is_alive(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }

    /// The last lines the server logged, for error messages.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log_path).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// How many warnings and errors the server logged.
    pub fn logged_problems(&self) -> usize {
        std::fs::read_to_string(&self.log_path).map_or(0, |log| {
            log.lines()
                .filter(|l| l.contains("WARN") || l.contains("ERROR"))
                .count()
        })
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        drop(self.sampler.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Reads `VmRSS` of a process, in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Reads a process's user + system CPU time from `/proc/PID/stat`, in
/// seconds (the kernel counts in clock ticks, 100 a second on Linux).
pub fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    Some(name_and_cpu_secs(&stat)?.1)
}

/// The command name and the user + system CPU seconds of a
/// `/proc/PID/stat` line.
fn name_and_cpu_secs(stat: &str) -> Option<(&str, f64)> {
    // The command name may hold spaces and parentheses: it ends at the
    // last `)`, and the fields are counted after it.
    let (head, rest) = stat.rsplit_once(')')?;
    let name = head.split_once('(')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((name, (utime + stime) as f64 / 100.0))
}

/// The CPU time of every process of this machine named `name` (as
/// `/proc/PID/stat` names it), by PID: PostgreSQL's backends, which the
/// bench does not start and which come and go with their connections.
pub fn cpu_secs_by_name(name: &str) -> HashMap<u32, f64> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(|entry| entry.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
            let (found, secs) = name_and_cpu_secs(&stat)?;
            (found == name).then_some((pid, secs))
        })
        .collect()
}

/// The CPU the processes of `after` spent since `before` was taken; a
/// process that started in between counts from zero, and one that ended
/// in between is lost (a connection closed during the run).
pub fn cpu_secs_since(before: &HashMap<u32, f64>, after: &HashMap<u32, f64>) -> f64 {
    after
        .iter()
        .map(|(pid, secs)| secs - before.get(pid).copied().unwrap_or(0.0))
        .filter(|spent| *spent > 0.0)
        .sum()
}

/// Samples a process's RSS every 50 ms on a thread, keeping the peak.
#[derive(Debug)]
struct RssSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RssSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (peak, stop) = (Arc::clone(&peak), Arc::clone(&stop));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    if let Some(rss) = rss_kib(pid) {
                        peak.fetch_max(rss, Ordering::Relaxed);
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            })
        };
        Self {
            peak,
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for RssSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn processes_are_found_by_the_name_proc_gives_them() {
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap();
        let name = stat.split_once('(').unwrap().1.rsplit_once(')').unwrap().0;
        let found = cpu_secs_by_name(name);
        assert!(found.contains_key(&std::process::id()), "{name}: {found:?}");
        assert!(cpu_secs_by_name("no process has this name").is_empty());
    }

    #[test]
    fn cpu_since_counts_new_processes_from_zero_and_skips_ended_ones() {
        let before = HashMap::from([(1, 2.0), (2, 5.0)]);
        let after = HashMap::from([(1, 2.5), (3, 0.25)]);
        assert!((cpu_secs_since(&before, &after) - 0.75).abs() < 1e-9);
    }
}
