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
