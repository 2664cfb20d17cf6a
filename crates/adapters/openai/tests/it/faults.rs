//! Streams that break after they opened, and what one call costs upstream.

use std::time::Duration;

use colloquy_fake_upstream::{Behaviour, FakeUpstream, Outcome};
use colloquy_ports::{ChatChunk, LlmClient as _, LlmError};
use futures::StreamExt as _;
use serde_json::json;

use crate::{ask, client, drain, open, text_and_end, PATIENCE};

/// How long a test watches for something that must not happen.
const QUIET: Duration = Duration::from_millis(300);

#[tokio::test]
async fn a_connection_dropped_mid_stream_is_unavailable_after_the_text_so_far() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("one two three four").drop_after(2));

    let (deltas, end) = text_and_end(drain(open(&client(&fake), ask("Count")).await).await);

    assert_eq!(deltas, ["one ", "two "]);
    assert!(
        matches!(
            end,
            Err(LlmError::Unavailable {
                retry_after: None,
                ..
            })
        ),
        "{end:?}"
    );
}

#[tokio::test]
async fn a_stream_that_ends_without_finish_reason_or_done_is_a_protocol_error() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("cut short").end_without_finish());

    let (deltas, end) = text_and_end(drain(open(&client(&fake), ask("Hi")).await).await);

    assert_eq!(deltas, ["cut ", "short"]);
    assert!(matches!(end, Err(LlmError::Protocol { .. })), "{end:?}");
}

#[tokio::test]
async fn without_done_a_clean_end_is_accepted_only_after_finish_reason_and_usage() {
    let fake = FakeUpstream::start().await;
    let client = client(&fake);

    fake.push(Behaviour::text("whole reply").omit_done());
    let (_, end) = text_and_end(drain(open(&client, ask("Hi")).await).await);
    assert_eq!(
        end.expect("finish_reason and usage make a whole reply")
            .finish_reason,
        "stop"
    );

    fake.push(Behaviour::text("whole reply?").omit_done().omit_usage());
    let (_, end) = text_and_end(drain(open(&client, ask("Hi")).await).await);
    assert!(matches!(end, Err(LlmError::Protocol { .. })), "{end:?}");
}

#[tokio::test]
async fn a_chunk_that_is_not_json_ends_the_stream_with_a_protocol_error() {
    let fake = FakeUpstream::start().await;
    // The fake goes on with a complete reply after the bad line: the adapter
    // must not skip it.
    fake.push(Behaviour::text("good bad ugly").malformed_after(1));

    let (deltas, end) = text_and_end(drain(open(&client(&fake), ask("Hi")).await).await);

    assert_eq!(deltas, ["good "]);
    assert!(
        matches!(&end, Err(LlmError::Protocol { message }) if message.contains("not valid JSON")),
        "{end:?}"
    );
}

#[tokio::test]
async fn an_error_object_in_the_stream_is_a_protocol_error_or_a_rate_limit() {
    let fake = FakeUpstream::start().await;
    let client = client(&fake);

    fake.push(Behaviour::text("partial answer").error_after(1, "The server had an error"));
    let (deltas, end) = text_and_end(drain(open(&client, ask("Hi")).await).await);
    assert_eq!(deltas, ["partial "]);
    assert!(
        matches!(&end, Err(LlmError::Protocol { message }) if message.contains("The server had an error")),
        "{end:?}"
    );

    fake.push(Behaviour::text("partial answer").error_object_after(
        0,
        json!({"error": {"message": "Rate limit reached", "type": "requests", "code": "rate_limit_exceeded"}}),
    ));
    let (deltas, end) = text_and_end(drain(open(&client, ask("Hi")).await).await);
    assert!(deltas.is_empty());
    assert_eq!(
        end,
        Err(LlmError::RateLimited {
            retry_after: None,
            message: "Rate limit reached".to_owned()
        })
    );
}

#[tokio::test]
async fn a_stall_is_no_next_item_and_dropping_the_stream_closes_the_connection() {
    let fake = FakeUpstream::start().await;
    fake.push(Behaviour::text("first then silence").stall_after(1));

    let mut stream = open(&client(&fake), ask("Hi")).await;

    let first = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the first chunk");
    assert_eq!(first, Some(Ok(ChatChunk::Delta("first ".to_owned()))));
    assert!(
        tokio::time::timeout(QUIET, stream.next()).await.is_err(),
        "a stalled upstream produced an item"
    );
    assert_eq!(fake.requests()[0].outcome, Outcome::InProgress);

    drop(stream);

    let gone = fake.wait_until(PATIENCE, |requests| {
        requests[0].outcome == Outcome::ClientGone
    });
    assert!(gone.await, "the fake never saw the client go away");
}

#[tokio::test]
async fn the_call_returns_once_headers_are_in_and_not_before() {
    let fake = FakeUpstream::start().await;
    let client = client(&fake);

    // Headers, then nothing: the call returns, the stream waits.
    fake.push(Behaviour::text("never sent").stall_after(0));
    let mut stream = open(&client, ask("Hi")).await;
    assert!(tokio::time::timeout(QUIET, stream.next()).await.is_err());
    drop(stream);

    // No headers yet: the call itself waits.
    fake.push(Behaviour::text("late").headers_delay(Duration::from_secs(30)));
    assert!(tokio::time::timeout(QUIET, client.stream_chat(ask("Hi")))
        .await
        .is_err());
}

#[tokio::test]
async fn dropping_the_stream_mid_reply_aborts_the_request() {
    let fake = FakeUpstream::start().await;
    let words = vec!["word "; 100];
    fake.push(Behaviour::chunks(words).pace(Duration::from_millis(10)));

    let mut stream = open(&client(&fake), ask("Talk")).await;
    let first = tokio::time::timeout(PATIENCE, stream.next())
        .await
        .expect("the first chunk");
    assert_eq!(first, Some(Ok(ChatChunk::Delta("word ".to_owned()))));
    drop(stream);

    // The whole reply would take a second; the fake notices the client left
    // at its next write.
    let gone = fake.wait_until(PATIENCE, |requests| {
        requests[0].outcome == Outcome::ClientGone
    });
    assert!(gone.await, "the fake kept streaming to nobody");
}

#[tokio::test]
async fn one_call_is_one_request_even_when_it_fails() {
    let fake = FakeUpstream::start().await;
    let client = client(&fake);
    // After these, the fake's default (an echo) would gladly answer a retry.
    fake.push(Behaviour::status(503))
        .push(Behaviour::Hangup)
        .push(Behaviour::text("a b c").drop_after(1))
        .push(Behaviour::text("a b c").end_without_finish())
        .push(Behaviour::text("a b c").malformed_after(1));

    for _ in 0..5 {
        match client.stream_chat(ask("Hi")).await {
            Ok(stream) => {
                let (_, end) = text_and_end(drain(stream).await);
                assert!(end.is_err(), "{end:?}");
            }
            Err(error) => assert!(error.is_retryable(), "{error:?}"),
        }
    }
    // reqwest-eventsource's default policy would retry after 300 ms.
    tokio::time::sleep(Duration::from_millis(700)).await;

    assert_eq!(fake.request_count(), 5);
    assert_eq!(fake.queued(), 0);
}
