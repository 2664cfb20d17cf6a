//! OpenAI's own Python SDK (PyPI `openai`) against the `/v1` routes of the
//! real server, over real HTTP, with the fake upstream behind it.
//!
//! Each test queues what the fake upstream will do, runs one scenario of
//! `tests/openai_sdk/client.py` (the SDK used as an application would) and
//! asserts on the JSON it prints, and on what colloquy recorded, read back
//! through the native API. The SDK lives in a venv under the target
//! directory, made once by `tests/openai_sdk/venv.py`; a machine that cannot
//! make it (no `python3`, no PyPI) fails these tests, never skips them.

mod conversations;
mod failures;
mod refusals;
mod shape;
mod tools;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::time::Duration;

use serde_json::Value;

use crate::support::TestApp;

/// The SDK release the tests run against. Pinned, so that a new release
/// changes nothing until it is chosen here.
const OPENAI_REQUIREMENT: &str = "openai==3.57.0";

/// The longest a scenario may take; each takes one or two seconds, most of
/// it the SDK's import.
const SCENARIO_TIMEOUT: Duration = Duration::from_secs(60);

fn scripts() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/openai_sdk")
}

/// `target/openai-venv`, in whichever target directory this test binary
/// was built (`CARGO_TARGET_DIR` included): the parent of its `tmp`.
fn venv_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(tmp).join("openai-venv")
}

/// The venv's Python, with the SDK installed: made by the first test of
/// this process that asks, while the others wait (`venv.py` locks across
/// processes too).
fn sdk_python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = PYTHON.get_or_init(|| {
        let venv = venv_dir();
        let output = std::process::Command::new("python3")
            .arg(scripts().join("venv.py"))
            .arg(&venv)
            .arg(OPENAI_REQUIREMENT)
            .output()
            .map_err(|error| format!("`python3` could not be run: {error}"))?;
        if !output.status.success() {
            return Err(format!(
                "`python3 venv.py` exited with {}:\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ));
        }
        Ok(venv.join("bin/python"))
    });
    match made {
        Ok(python) => python,
        Err(why) => panic!(
            "the OpenAI SDK tests need {OPENAI_REQUIREMENT} in a venv at {} (python3 with venv, \
             and pip reaching PyPI), which could not be made: {why}",
            venv_dir().display()
        ),
    }
}

/// Runs `client.py SCENARIO BASE_URL API_KEY ARGS…` and returns what it
/// printed, as JSON.
///
/// # Panics
/// When the scenario fails (its traceback is in the message), takes too
/// long, or prints anything but one JSON value.
async fn run_scenario(scenario: &str, base_url: &str, api_key: &str, args: &[&str]) -> Value {
    let python = sdk_python();
    let child = tokio::process::Command::new(python)
        .arg(scripts().join("client.py"))
        .args([scenario, base_url, api_key])
        .args(args)
        // Only what the test gives it: no key or base URL of the machine's,
        // and no proxy between the SDK and 127.0.0.1.
        .env_remove("OPENAI_API_KEY")
        .env_remove("OPENAI_BASE_URL")
        .env_remove("OPENAI_ORG_ID")
        .env_remove("OPENAI_PROJECT_ID")
        .env("NO_PROXY", "*")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the venv's python runs");
    let output = tokio::time::timeout(SCENARIO_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("the SDK scenario `{scenario}` took over {SCENARIO_TIMEOUT:?}"))
        .expect("the SDK scenario's output is read");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the SDK scenario `{scenario}` failed ({}):\n{stderr}{stdout}",
        output.status
    );
    serde_json::from_str(&stdout).unwrap_or_else(|error| {
        panic!("the SDK scenario `{scenario}` printed no JSON ({error}):\n{stdout}\n{stderr}")
    })
}

/// A scenario against `app`'s `/v1`, as the anonymous caller.
async fn sdk(app: &TestApp, scenario: &str, args: &[&str]) -> Value {
    run_scenario(scenario, &app.url("/v1"), "no-key-needed", args).await
}

/// The session an answer was recorded in, and how (`X-Colloquy-Session`,
/// `X-Colloquy-Recorded`).
fn recorded(headers: &Value) -> (String, String) {
    let text = |name: &str| {
        headers[name]
            .as_str()
            .unwrap_or_else(|| panic!("the answer has `{name}`: {headers}"))
            .to_owned()
    };
    (text("x-colloquy-session"), text("x-colloquy-recorded"))
}

/// `(role, content)` of each message of a branch, as the native API lists it.
fn said(messages: &[Value]) -> Vec<(String, String)> {
    messages
        .iter()
        .map(|message| {
            (
                message["role"].as_str().unwrap().to_owned(),
                message["content"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected
        .iter()
        .map(|(role, text)| ((*role).to_owned(), (*text).to_owned()))
        .collect()
}
