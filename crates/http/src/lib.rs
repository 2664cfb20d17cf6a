//! colloquy's HTTP shell on actix-web.
//!
//! Routes translate requests into calls of [`ChatService`] and its answers
//! into the wire format of the contract (`wire`), errors into problem+json
//! (`problem`), and a session's events into Server-Sent Events (`sse`) or
//! WebSocket frames (`websocket`, which also takes sends and cancels).
//! `telemetry` gives every request an id, a span and a log line and keeps the
//! Prometheus metrics; `routes/docs` serves the OpenAPI document and Swagger UI.
//! `edges` holds what is decided before a route runs: the origin check
//! (`origin`), CORS (`cors`), the metrics token and the body deadline.
//! Nothing here decides anything about chats: that is the app crate's job.

mod archive;
mod body;
mod caller;
mod cors;
mod edges;
mod openai;
mod origin;
mod problem;
mod routes;
mod sse;
mod telemetry;
mod websocket;
mod wire;

use actix_web::middleware::{ErrorHandlers, NormalizePath, TrailingSlash};
use actix_web::web;
use std::sync::Arc;

use colloquy_app::ChatService;
use colloquy_ports::{Authenticator, StreamTokens};

pub use caller::Caller;
pub use edges::{Edges, MetricsToken};
pub use origin::{AllowedOrigins, Origin, OriginCheck, OriginError};
pub use problem::ApiError;
pub use telemetry::{install_metrics, metrics_upkeep, observe_requests};
pub use websocket::WebSocketSettings;

/// Largest request body accepted, as the contract says.
pub const MAX_BODY_BYTES: usize = 1024 * 1024;

/// Largest import accepted (`POST /api/v1/sessions/import`): a long
/// conversation exported with every branch is far larger than any message,
/// yet still bounded, as it is read whole before anything is stored.
pub const MAX_IMPORT_BYTES: usize = 16 * 1024 * 1024;

/// Registers every route on an actix `App` sharing `service`, each request
/// authenticated by `authenticator` (event streams also by `stream_tokens`),
/// the metrics token and the body deadline as `edges` says.
///
/// ```ignore
/// HttpServer::new(move || App::new().configure(colloquy_http::configure(service.clone(), auth.clone(), tokens.clone(), &edges)))
/// ```
pub fn configure(
    service: ChatService,
    authenticator: Arc<dyn Authenticator>,
    stream_tokens: Arc<dyn StreamTokens>,
    edges: &Edges,
) -> impl FnOnce(&mut web::ServiceConfig) + Clone {
    install_metrics();
    let edges = edges.clone();
    move |config| {
        config
            .app_data(web::Data::new(service))
            .app_data(caller::auth_data(authenticator))
            .app_data(caller::tokens_data(stream_tokens))
            .configure(body::default_body_limit)
            .configure(|config| edges.register(config))
            .configure(routes::register);
    }
}

/// The middleware every colloquy app wraps its routes in, outermost last:
/// `App::new().wrap(error_pages()).wrap(edges.cors()).wrap(cors_refusals())`
/// `.wrap(edges.origin_check()).wrap(from_fn(observe_requests)).wrap(trim_trailing_slash())`,
/// so the request log and metrics see the final (problem+json) answer.
#[must_use]
pub fn error_pages<B: 'static>() -> ErrorHandlers<B> {
    problem::bare_errors_as_problems()
}

/// The CORS layer's own refusals (a preflight asking for a method or header
/// not offered) as problem+json; it wraps `Edges::cors`.
#[must_use]
pub fn cors_refusals<B: 'static>() -> ErrorHandlers<B> {
    cors::refusals_as_problems()
}

/// `/api/v1/sessions/` is the same route as `/api/v1/sessions`.
#[must_use]
pub fn trim_trailing_slash() -> NormalizePath {
    NormalizePath::new(TrailingSlash::Trim)
}
