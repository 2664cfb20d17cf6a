//! `colloquy token`, run as a script would, its output checked by the verifier
//! a server with the same settings uses.

use std::process::Output;

use colloquy_auth::JwtAuth;
use colloquy_domain::Principal;
use colloquy_ports::Authenticator;

async fn colloquy_token(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    tokio::process::Command::new(env!("CARGO_BIN_EXE_colloquy"))
        .arg("token")
        .args(args)
        .current_dir(dir.path())
        .env_clear()
        .envs(env.iter().copied())
        .env("RUST_LOG", "warn")
        .output()
        .await
        .unwrap()
}

#[tokio::test]
async fn token_prints_a_jwt_the_configured_verifier_accepts() {
    let secret = "a secret shared with the server";
    let output = colloquy_token(
        &["--principal", "alice@example.com", "--ttl", "10m"],
        &[
            ("COLLOQUY_JWT_SECRET", secret),
            ("COLLOQUY_JWT_ISSUER", "https://idp.example"),
            ("COLLOQUY_JWT_AUDIENCE", "colloquy"),
        ],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8(output.stdout).unwrap();
    let token = stdout.strip_suffix('\n').expect("one line");
    assert!(
        !token.contains(char::is_whitespace),
        "alone on stdout: {stdout:?}"
    );
    assert_eq!(token.split('.').count(), 3, "{token}");

    let verifier = JwtAuth::hs256(
        secret.as_bytes(),
        Some("https://idp.example"),
        Some("colloquy"),
    )
    .unwrap();
    assert_eq!(
        verifier.authenticate(Some(token.to_owned())).await.unwrap(),
        Principal::parse("alice@example.com").unwrap()
    );
    // Signed with that secret and no other.
    let other = JwtAuth::hs256(b"another secret", None, None).unwrap();
    assert!(other.verify(token).is_err());
    // Carrying the configured issuer: a server expecting another refuses it.
    let elsewhere = JwtAuth::hs256(secret.as_bytes(), Some("https://other.example"), None).unwrap();
    assert!(elsewhere.verify(token).is_err());
}

#[tokio::test]
async fn token_defaults_to_an_hour_without_issuer_or_audience() {
    let output = colloquy_token(
        &["--principal", "bob"],
        &[("COLLOQUY_JWT_SECRET", "s3cret")],
    )
    .await;
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap();
    let verifier = JwtAuth::hs256(b"s3cret", None, None).unwrap();
    assert_eq!(verifier.verify(token.trim()).unwrap().as_str(), "bob");
    // No `iss`: a server that wants one refuses it.
    let strict = JwtAuth::hs256(b"s3cret", Some("https://idp.example"), None).unwrap();
    assert!(strict.verify(token.trim()).is_err());
}

#[tokio::test]
async fn token_without_a_secret_fails_and_says_why() {
    let output = colloquy_token(&["--principal", "alice"], &[]).await;
    assert!(!output.status.success());
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("COLLOQUY_JWT_SECRET"), "{stderr}");
}

#[tokio::test]
async fn token_refuses_a_bad_principal_or_lifetime() {
    let secret = [("COLLOQUY_JWT_SECRET", "s3cret")];
    for args in [
        ["--principal", " ", "--ttl", "1h"],
        ["--principal", "alice", "--ttl", "0s"],
        ["--principal", "alice", "--ttl", "soon"],
    ] {
        let output = colloquy_token(&args, &secret).await;
        assert!(!output.status.success(), "{args:?}");
        assert!(output.stdout.is_empty(), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}
