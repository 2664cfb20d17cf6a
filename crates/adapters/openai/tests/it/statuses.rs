//! Failures before the stream opens: statuses, headers, connections.

use std::time::{Duration, SystemTime};

use colloquy_fake_upstream::{Behaviour, FakeUpstream};
use colloquy_openai::{OpenAiClient, OpenAiConfig};
use colloquy_ports::{LlmError, ToolSpec};

use crate::{ask, client, open_error};

#[tokio::test]
async fn each_status_class_maps_to_its_error_with_the_body_message() {
    let fake = FakeUpstream::start().await;
    let client = client(&fake);
    let expected = |status: u16, message: String| match status {
        429 => LlmError::RateLimited {
            retry_after: None,
            message,
        },
        408 | 409 | 500..=599 => LlmError::Unavailable {
            retry_after: None,
            message,
        },
        _ => LlmError::Rejected { status, message },
    };

    for (attempt, status) in [429, 408, 409, 500, 502, 503, 400, 401, 403, 404, 422, 418]
        .into_iter()
        .enumerate()
    {
        let message = format!("scripted {status}");
        fake.push(Behaviour::status(status).message(message.clone()));

        let error = open_error(&client, ask("Hi")).await;

        assert_eq!(error, expected(status, message), "status {status}");
        assert_eq!(
            fake.request_count(),
            attempt as u64 + 1,
            "status {status} took more than one request"
        );
    }
}

#[tokio::test]
async fn retry_after_is_read_from_seconds_milliseconds_and_dates() {
    let fake = FakeUpstream::start().await;
    let client = client(&fake);

    fake.push(Behaviour::status(429).retry_after(7));
    assert_eq!(
        open_error(&client, ask("Hi")).await.retry_after(),
        Some(Duration::from_secs(7))
    );

    fake.push(Behaviour::status(503).retry_after_ms(1500));
    assert_eq!(
        open_error(&client, ask("Hi")).await.retry_after(),
        Some(Duration::from_millis(1500))
    );

    // OpenAI sends both; the milliseconds are the more precise.
    fake.push(Behaviour::status(429).retry_after(2).retry_after_ms(1250));
    assert_eq!(
        open_error(&client, ask("Hi")).await.retry_after(),
        Some(Duration::from_millis(1250))
    );

    let in_half_a_minute = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    fake.push(Behaviour::status(503).header("Retry-After", in_half_a_minute));
    let wait = open_error(&client, ask("Hi"))
        .await
        .retry_after()
        .expect("a wait from the date");
    // HTTP dates have a one-second resolution.
    assert!(
        wait > Duration::from_secs(28) && wait <= Duration::from_secs(30),
        "{wait:?}"
    );
}

#[tokio::test]
async fn an_exhausted_quota_is_rejected_not_rate_limited() {
    let fake = FakeUpstream::start().await;
    fake.push(
        Behaviour::status(429)
            .error_type("insufficient_quota")
            .code("insufficient_quota")
            .message("You exceeded your current quota"),
    );

    let error = open_error(&client(&fake), ask("Hi")).await;

    assert_eq!(
        error,
        LlmError::Rejected {
            status: 429,
            message: "You exceeded your current quota".to_owned()
        }
    );
}

#[tokio::test]
async fn a_body_that_is_not_an_openai_error_is_quoted() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::status(502).body("text/html", "<html>Bad gateway</html>"));

    let error = open_error(&client(&fake), ask("Hi")).await;

    assert_eq!(
        error,
        LlmError::Unavailable {
            retry_after: None,
            message: "502 Bad Gateway: <html>Bad gateway</html>".to_owned()
        }
    );
}

#[tokio::test]
async fn a_200_that_is_not_an_event_stream_is_a_protocol_error() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::status(200).body("application/json", "{}"));

    let error = open_error(&client(&fake), ask("Hi")).await;

    assert!(
        matches!(&error, LlmError::Protocol { message } if message.contains("application/json")),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_refused_connection_is_unavailable() {
    // A port that was free a moment ago and that nothing listens on now.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let client = OpenAiClient::new(OpenAiConfig {
        base_url: format!("http://127.0.0.1:{port}/v1"),
        ..OpenAiConfig::default()
    })
    .expect("a valid config");

    let error = open_error(&client, ask("Hi")).await;

    assert!(
        matches!(
            error,
            LlmError::Unavailable {
                retry_after: None,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_connection_closed_before_any_answer_is_unavailable() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::Hangup);

    let error = open_error(&client(&fake), ask("Hi")).await;

    assert!(
        matches!(
            error,
            LlmError::Unavailable {
                retry_after: None,
                ..
            }
        ),
        "{error:?}"
    );
}

#[tokio::test]
async fn a_tool_schema_that_is_not_json_fails_before_sending_anything() {
    let fake = FakeUpstream::start().await;
    let mut request = ask("Hi");
    request.tools.push(ToolSpec {
        name: "broken".to_owned(),
        description: String::new(),
        parameters: "{not json".to_owned(),
    });

    let error = open_error(&client(&fake), request).await;

    assert!(
        matches!(&error, LlmError::Internal { message } if message.contains("broken")),
        "{error:?}"
    );
    assert_eq!(fake.request_count(), 0);
}

#[tokio::test]
async fn a_bad_config_is_refused_and_the_key_never_printed() {
    for base_url in ["not a url", "ftp://example.com/v1"] {
        let result = OpenAiClient::new(OpenAiConfig {
            base_url: base_url.to_owned(),
            ..OpenAiConfig::default()
        });
        assert!(result.is_err(), "{base_url} was accepted");
    }

    let config = OpenAiConfig {
        api_key: Some(colloquy_openai::ApiKey::new("sk-very-secret")),
        ..OpenAiConfig::default()
    };
    let client = OpenAiClient::new(config.clone()).expect("a valid config");
    for printed in [format!("{config:?}"), format!("{client:?}")] {
        assert!(!printed.contains("sk-very-secret"), "{printed}");
        assert!(printed.contains("[redacted]"), "{printed}");
    }
}
