//! `colloquy ask` against the fake upstream, as a user would run it.

use colloquy_fake_upstream::{Behaviour, FakeUpstream};

#[tokio::test]
async fn ask_streams_the_reply_to_stdout() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("Hello from the fake upstream!"));
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(["ask", "hello"])
        .current_dir(dir.path())
        .env_clear()
        .env("OPENAI_BASE_URL", fake.base_url())
        .env("OPENAI_MODEL", "fake-model")
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8(output.stdout).unwrap(),
        "Hello from the fake upstream!\n"
    );
    let request = &fake.requests()[0];
    assert_eq!(request.messages().last().unwrap()["content"], "hello");
    assert_eq!(request.body["model"], "fake-model");
}

#[tokio::test]
async fn ask_without_a_key_uses_the_offline_model() {
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(["ask", "hey", "who", "are", "you?"])
        .current_dir(dir.path())
        .env_clear()
        .env("RUST_LOG", "error")
        .output()
        .await
        .unwrap();
    assert!(output.status.success());
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        stdout.starts_with("[offline model] You said: \"hey who are you?\""),
        "{stdout}"
    );
}

#[tokio::test]
async fn ask_reports_a_rejected_request_and_fails() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::status(401).message("Incorrect API key provided"));
    let dir = tempfile::tempdir().unwrap();
    let output = tokio::process::Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .args(["ask", "hello"])
        .current_dir(dir.path())
        .env_clear()
        .env("OPENAI_BASE_URL", fake.base_url())
        .env("OPENAI_API_KEY", "sk-wrong")
        .output()
        .await
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("Incorrect API key"), "{stderr}");
    assert!(!stderr.contains("sk-wrong"), "the key is never printed");
    assert_eq!(fake.request_count(), 1, "401 is not retried");
}

/// Runs `colloquy ask hello` against `fake` with these extra variables.
async fn ask_against(fake: &FakeUpstream, extra: &[(&str, &str)]) -> std::process::Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_colloquy"));
    command
        .args(["ask", "hello"])
        .current_dir(dir.path())
        .env_clear()
        .env("OPENAI_BASE_URL", fake.base_url())
        .env("OPENAI_MODEL", "fake-model")
        .env("RUST_LOG", "error");
    for (name, value) in extra {
        command.env(name, value);
    }
    command.output().await.unwrap()
}

#[tokio::test]
async fn ask_starts_over_when_the_stream_breaks_off_and_says_why_when_it_keeps_breaking() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("A first try that breaks off").drop_after(3))
        .push(Behaviour::text("The whole second answer."));
    let output = ask_against(&fake, &[]).await;
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        stdout.ends_with("\nThe whole second answer.\n"),
        "the second answer, whole, on a line of its own: {stdout:?}"
    );
    assert_eq!(fake.request_count(), 2);

    let failing = FakeUpstream::start().await;
    failing.set_default(Behaviour::text("Never quite there").drop_after(1));
    let output = ask_against(&failing, &[("COLLOQUY_LLM_MAX_RETRIES", "1")]).await;
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("colloquy: ") && stderr.contains("broke mid-stream"),
        "says why: {stderr}"
    );
    assert_eq!(failing.request_count(), 2, "one try and one retry");
}
