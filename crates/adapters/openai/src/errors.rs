//! Translates what can go wrong on the wire into [`LlmError`]s.

use std::error::Error as _;
use std::time::{Duration, SystemTime};

use colloquy_ports::LlmError;
use reqwest::header::HeaderMap;
use reqwest::{Response, StatusCode};
use reqwest_eventsource::Error as SourceError;

use crate::decode::snippet;
use crate::wire::ErrorInfo;

/// An error body longer than this is cut: only its message is of use, and an
/// upstream must not make us buffer an arbitrary amount.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Maps a failure that came before the stream opened, reading the status,
/// headers and body of an error response.
pub(crate) async fn before_open(error: SourceError) -> LlmError {
    match error {
        SourceError::InvalidStatusCode(status, response) => from_status(status, response).await,
        SourceError::InvalidContentType(content_type, response) => LlmError::Protocol {
            message: format!(
                "expected an event stream, got a {} answer with content type {:?}",
                response.status(),
                content_type.to_str().unwrap_or("(not text)"),
            ),
        },
        SourceError::Transport(err) => from_transport(&err, "the request failed"),
        other => LlmError::Protocol {
            message: format!("the upstream's answer could not be read: {other}"),
        },
    }
}

/// Maps a failure after the stream opened.
pub(crate) fn mid_stream(error: &SourceError) -> LlmError {
    match error {
        // Once the stream is open there is no overall timeout on the client,
        // so a transport error here is a broken or reset connection.
        SourceError::Transport(err) => LlmError::Unavailable {
            retry_after: None,
            message: format!("the connection broke mid-stream: {}", chain(err)),
        },
        SourceError::Utf8(err) => LlmError::Protocol {
            message: format!("the stream is not UTF-8: {err}"),
        },
        SourceError::Parser(err) => LlmError::Protocol {
            message: format!("the stream is not a valid event stream: {err}"),
        },
        other => LlmError::Protocol {
            message: format!("the stream failed: {other}"),
        },
    }
}

/// Maps a request that failed without an HTTP answer.
pub(crate) fn from_transport(err: &reqwest::Error, context: &str) -> LlmError {
    let message = format!("{context}: {}", chain(err));
    if err.is_builder() {
        LlmError::Internal { message }
    } else if err.is_timeout() {
        // Only the connect timeout applies here: the upstream did not even
        // accept the connection in time.
        LlmError::Timeout { message }
    } else {
        LlmError::Unavailable {
            retry_after: None,
            message,
        }
    }
}

async fn from_status(status: StatusCode, response: Response) -> LlmError {
    let retry_after = retry_after(response.headers(), SystemTime::now());
    let body = read_capped(response).await;
    let info = ErrorInfo::from_body(&body).unwrap_or_default();
    let message = match info.message.as_deref() {
        Some(message) => message.to_owned(),
        None if body.trim().is_empty() => status.to_string(),
        None => format!("{status}: {}", snippet(body.trim())),
    };
    classify(status.as_u16(), retry_after, message, info.code.as_deref())
}

/// The contract's table of statuses.
fn classify(
    status: u16,
    retry_after: Option<Duration>,
    message: String,
    code: Option<&str>,
) -> LlmError {
    match status {
        // OpenAI answers 429 both for a rate limit and for an exhausted
        // quota; only the first goes away by waiting.
        429 if code == Some("insufficient_quota") => LlmError::Rejected { status, message },
        429 => LlmError::RateLimited {
            retry_after,
            message,
        },
        408 | 409 | 500..=599 => LlmError::Unavailable {
            retry_after,
            message,
        },
        // Redirects are not followed (a POST would turn into a GET): a
        // redirect means a wrong base URL, which no retry fixes.
        300..=499 => LlmError::Rejected { status, message },
        _ => LlmError::Protocol {
            message: format!("unexpected status {status}: {message}"),
        },
    }
}

async fn read_capped(mut response: Response) -> String {
    let mut body = Vec::new();
    // A body that breaks off still tells what it had said so far.
    while let Ok(Some(chunk)) = response.chunk().await {
        let room = MAX_ERROR_BODY - body.len();
        body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        if body.len() == MAX_ERROR_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

/// How long the upstream asked us to wait: OpenAI's `retry-after-ms` first
/// (it is the more precise), else `Retry-After` in seconds or as an HTTP date
/// (a date in the past means now). Values that make no sense are ignored.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    let millis = header("retry-after-ms")
        .and_then(|v| v.parse::<f64>().ok())
        .and_then(|ms| Duration::try_from_secs_f64(ms / 1000.0).ok());
    if millis.is_some() {
        return millis;
    }
    let value = header("retry-after")?;
    match value.parse::<f64>() {
        Ok(seconds) => Duration::try_from_secs_f64(seconds).ok(),
        Err(_) => {
            let date = httpdate::parse_http_date(value).ok()?;
            Some(date.duration_since(now).unwrap_or(Duration::ZERO))
        }
    }
}

/// An error and its causes, as one line: reqwest's own message only says
/// which URL failed, the cause says why.
fn chain(err: &reqwest::Error) -> String {
    let mut message = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

#[cfg(test)]
mod tests {
    use reqwest::header::HeaderValue;

    use super::*;

    type Pairs<'a> = &'a [(&'static str, &'a str)];

    fn headers(pairs: Pairs<'_>) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(
                *name,
                HeaderValue::from_str(value).expect("a valid header value"),
            );
        }
        map
    }

    #[test]
    fn retry_after_reads_milliseconds_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let in_a_minute = httpdate::fmt_http_date(now + Duration::from_secs(60));
        let a_minute_ago = httpdate::fmt_http_date(now - Duration::from_secs(60));
        let cases: [(Pairs<'_>, Option<Duration>); 7] = [
            (&[("retry-after", "3")], Some(Duration::from_secs(3))),
            (&[("retry-after", "0.5")], Some(Duration::from_millis(500))),
            (
                &[("retry-after-ms", "250"), ("retry-after", "3")],
                Some(Duration::from_millis(250)),
            ),
            (
                &[("retry-after", &in_a_minute)],
                Some(Duration::from_secs(60)),
            ),
            (&[("retry-after", &a_minute_ago)], Some(Duration::ZERO)),
            (&[("retry-after", "-4"), ("retry-after-ms", "soon")], None),
            (&[], None),
        ];
        for (pairs, expected) in cases {
            assert_eq!(retry_after(&headers(pairs), now), expected, "{pairs:?}");
        }
    }

    #[test]
    fn statuses_map_to_the_contract_table() {
        let wait = Some(Duration::from_secs(1));
        let kind = |status| classify(status, wait, "m".to_owned(), None);
        assert!(
            matches!(kind(429), LlmError::RateLimited { retry_after, .. } if retry_after == wait)
        );
        for status in [408, 409, 500, 502, 503, 504, 529] {
            assert!(
                matches!(kind(status), LlmError::Unavailable { retry_after, .. } if retry_after == wait)
            );
        }
        for status in [301, 400, 401, 403, 404, 413, 422, 451] {
            assert_eq!(
                kind(status),
                LlmError::Rejected {
                    status,
                    message: "m".to_owned()
                }
            );
        }
        assert!(matches!(kind(204), LlmError::Protocol { .. }));
        assert_eq!(
            classify(429, wait, "m".to_owned(), Some("insufficient_quota")),
            LlmError::Rejected {
                status: 429,
                message: "m".to_owned()
            }
        );
    }
}
