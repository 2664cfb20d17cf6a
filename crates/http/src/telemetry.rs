//! What operators see: a request id and a tracing span per request, one log
//! line per request, and Prometheus metrics.
//!
//! Metrics go through the `metrics` facade, so the app crate records its own
//! (replies, upstream attempts, tokens) without knowing about Prometheus; the
//! recorder installed here renders them all at `GET /metrics`.

use std::sync::OnceLock;
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpResponse;
use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tracing::Instrument;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Latency buckets in seconds: from a cached read to a slow first byte.
const LATENCY_BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

const STREAMS_OPEN: &str = "colloquy_event_streams_open";

/// The process-wide Prometheus recorder, installed on first use. The
/// `metrics` facade has one global recorder, so every server in a process
/// (tests start many) shares it.
fn recorder() -> &'static PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE.get_or_init(|| {
        let builder = PrometheusBuilder::new();
        let builder = match builder.set_buckets(LATENCY_BUCKETS) {
            Ok(with_buckets) => with_buckets,
            Err(error) => {
                tracing::warn!(%error, "latency histograms fall back to summaries");
                PrometheusBuilder::new()
            }
        };
        let recorder = builder.build_recorder();
        let handle = recorder.handle();
        if let Err(error) = metrics::set_global_recorder(recorder) {
            tracing::warn!(%error, "another metrics recorder is installed: /metrics will stay empty");
        }
        describe();
        handle
    })
}

fn describe() {
    describe_counter!(
        "http_requests_total",
        "HTTP requests answered, by method, route pattern and status."
    );
    describe_histogram!(
        "http_request_duration_seconds",
        Unit::Seconds,
        "Time to answer an HTTP request (to the response head, for event streams), by method and route pattern."
    );
    describe_gauge!(
        STREAMS_OPEN,
        "Server-Sent Event streams and WebSockets open now."
    );
    describe_counter!("colloquy_replies_total", "Replies ended, by final status.");
    describe_counter!(
        "colloquy_upstream_attempts_total",
        "Requests made to the language model, by outcome."
    );
    describe_counter!(
        "colloquy_upstream_retries_total",
        "Upstream requests retried, by the error that caused it."
    );
    describe_counter!(
        "colloquy_tokens_total",
        "Tokens the upstream counted, by direction (`in` prompt, `out` completion)."
    );
}

/// Installs the recorder, if no server of this process did yet.
pub fn install_metrics() {
    recorder();
}

/// Folds recent histogram samples into their buckets. `GET /metrics` does
/// this too; call it now and then so samples do not pile up unscraped.
pub fn metrics_upkeep() {
    recorder().run_upkeep();
}

/// The service's metrics in Prometheus's text format (served, behind its
/// token, by `routes/health.rs`).
pub async fn metrics_text() -> HttpResponse {
    let handle = recorder();
    handle.run_upkeep();
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(handle.render())
}

/// Counts one open event stream while it lives.
#[derive(Debug)]
pub(crate) struct StreamOpen(());

impl StreamOpen {
    pub(crate) fn new() -> Self {
        gauge!(STREAMS_OPEN).increment(1.0);
        Self(())
    }
}

impl Drop for StreamOpen {
    fn drop(&mut self) {
        gauge!(STREAMS_OPEN).decrement(1.0);
    }
}

/// The client's request id when it sent a sensible one (so ids can be
/// followed across services), else a new UUID.
fn request_id(headers: &HeaderMap) -> HeaderValue {
    headers
        .get(&REQUEST_ID)
        .filter(|value| {
            let bytes = value.as_bytes();
            (1..=200).contains(&bytes.len()) && bytes.iter().all(|byte| byte.is_ascii_graphic())
        })
        .cloned()
        .unwrap_or_else(|| {
            HeaderValue::from_str(&uuid::Uuid::now_v7().to_string())
                .unwrap_or(HeaderValue::from_static("unknown"))
        })
}

/// Probes and scrapes come every few seconds; a log line each would drown the rest.
fn is_noise(path: &str) -> bool {
    matches!(path, "/healthz" | "/readyz" | "/metrics")
}

/// Middleware: gives the request an id (answered in `X-Request-Id`), runs it
/// in a `request` span carrying that id so every log line of the request
/// has it, then logs and counts the answer by route pattern and status.
///
/// # Errors
/// An error of the inner service, passed on; actix answers it after this
/// middleware, so it is logged and counted here but has no `X-Request-Id`.
/// (`error_pages` turns every error of ours into a response before that.)
pub async fn observe_requests(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = request_id(request.headers());
    let method = request.method().to_string();
    // An error-level span is enabled whatever `RUST_LOG` lets through, so a
    // warning logged under `RUST_LOG=warn` still names its request.
    let span = tracing::error_span!(
        "request",
        request_id = id.to_str().unwrap_or_default(),
        method,
        path = request.path(),
    );
    let started = Instant::now();
    let result = next.call(request).instrument(span.clone()).await;
    let elapsed = started.elapsed();
    let (status, route, path) = match &result {
        Ok(response) => (
            response.status(),
            response
                .request()
                .match_pattern()
                .unwrap_or_else(|| "unmatched".to_owned()),
            response.request().path().to_owned(),
        ),
        Err(error) => (
            error.as_response_error().status_code(),
            "unmatched".to_owned(),
            String::new(),
        ),
    };

    counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status.as_str().to_owned())
        .increment(1);
    histogram!("http_request_duration_seconds", "method" => method, "route" => route.clone())
        .record(elapsed.as_secs_f64());
    if !is_noise(&path) {
        let (status, elapsed_ms) = (status.as_u16(), elapsed.as_secs_f64() * 1000.0);
        span.in_scope(|| {
            if status >= 500 {
                tracing::warn!(status, route, elapsed_ms, "request answered");
            } else {
                tracing::info!(status, route, elapsed_ms, "request answered");
            }
        });
    }
    let mut response = result?;
    response.headers_mut().insert(REQUEST_ID, id);
    Ok(response)
}
