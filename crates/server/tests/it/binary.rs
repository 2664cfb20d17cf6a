//! The real `colloquy` binary as a child process: `colloquy serve` on a free
//! port, waited for until `/readyz` answers, and one-off commands such as
//! `colloquy keys create`. Every child runs with only the environment the
//! test gives it, in a directory of the test's, so no `.env` or variable of
//! the developer's changes what is tested.

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use tokio::process::{Child, Command};

/// How long a server may take to answer `/readyz` after it was spawned: a
/// loaded two-core machine runs migrations and connects slowly.
const READY_WITHIN: Duration = Duration::from_secs(20);

/// `colloquy ARGS…` in `dir` with `env` and nothing else of the test's
/// environment; killed if the test drops it.
pub fn command(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_colloquy"));
    command
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .kill_on_drop(true);
    command
}

/// Runs `colloquy ARGS…` to its end and returns its standard output.
///
/// # Panics
/// When it fails, with what it said on standard error.
pub async fn succeeds(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> String {
    let output: Output = command(dir, env, args).output().await.unwrap();
    assert!(
        output.status.success(),
        "colloquy {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).unwrap()
}

/// A port nobody listens on this moment.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// One running `colloquy serve`, its standard output and error written to
/// a log file in the test's directory (shown when it does not come up).
#[derive(Debug)]
pub struct Served {
    pub child: Child,
    pub base: String,
    pub log: PathBuf,
    pub http: reqwest::Client,
}

impl Served {
    /// `colloquy serve` with `env` on a free port, once `/readyz` answers
    /// `200` (ready, or degraded when Redis is away).
    ///
    /// # Panics
    /// When the server exits or does not answer within [`READY_WITHIN`],
    /// with its log.
    pub async fn start(dir: &Path, env: &[(&str, &str)]) -> Self {
        let port = free_port();
        let log = dir.join(format!("serve-{port}.log"));
        let output = std::fs::File::create(&log).unwrap();
        let address = format!("127.0.0.1:{port}");
        let child = command(dir, env, &["serve"])
            .env("COLLOQUY_ADDR", &address)
            .stdout(output.try_clone().unwrap())
            .stderr(output)
            .spawn()
            .unwrap();
        let mut served = Self {
            child,
            base: format!("http://{address}"),
            log,
            http: reqwest::Client::new(),
        };
        served.wait_until_ready().await;
        served
    }

    async fn wait_until_ready(&mut self) {
        let deadline = tokio::time::Instant::now() + READY_WITHIN;
        while tokio::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("the server exited ({status}):\n{}", self.log_text());
            }
            if let Ok(response) = self.http.get(self.url("/readyz")).send().await {
                if response.status() == 200 {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!(
            "the server did not answer /readyz within {READY_WITHIN:?}:\n{}",
            self.log_text()
        );
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// What the server logged so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Sends `kill -NAME` (`-TERM`, `-KILL`) to the server.
    pub fn signal(&self, name: &str) {
        let pid = self.child.id().expect("the server runs").to_string();
        let status = std::process::Command::new("kill")
            .args([name, &pid])
            .status()
            .unwrap();
        assert!(status.success(), "kill {name} {pid}");
    }

    /// SIGKILL, and waits until the process is gone: a crash, nothing of
    /// the shutdown path runs.
    pub async fn kill(&mut self) {
        self.child.start_kill().unwrap();
        self.child.wait().await.unwrap();
    }

    /// SIGTERM, and the clean exit that follows within `within`.
    ///
    /// # Panics
    /// When it does not exit within `within`, or exits with a failure.
    pub async fn stop_within(mut self, within: Duration) {
        self.signal("-TERM");
        let exit = tokio::time::timeout(within, self.child.wait())
            .await
            .expect("the server stops within its grace period")
            .unwrap();
        assert!(exit.success(), "a clean exit: {exit}\n{}", self.log_text());
    }
}
