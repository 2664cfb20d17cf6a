//! [`Edges`]: what the server decides about a request before, or beside,
//! its route: which browser pages may send it, who may scrape the metrics,
//! how long its body may take to arrive, how often a WebSocket is pinged.

use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::http::header::HeaderValue;
use actix_web::middleware::Condition;
use actix_web::web;
use subtle::ConstantTimeEq;

use crate::body::BodyTimeout;
use crate::cors;
use crate::origin::{AllowedOrigins, OriginCheck};
use crate::WebSocketSettings;

/// The edge settings of one server, from its configuration.
///
/// The middleware it makes goes around the routes in this order, innermost
/// first: `error_pages()`, [`Edges::cors`], `cors_refusals()`,
/// [`Edges::origin_check`], then the request log. CORS decorates answers
/// that are already problem+json; the origin check refuses a foreign page
/// before CORS could answer its preflight; the log sees every refusal.
#[derive(Debug, Clone, Default)]
pub struct Edges {
    /// `COLLOQUY_CORS_ORIGINS`: origins beside the server's own whose pages
    /// may call it; `None` sends no CORS headers at all.
    pub cors_origins: Option<AllowedOrigins>,
    /// Refuse requests for host names that are not loopback ones: true when
    /// the server listens on a loopback address (DNS rebinding).
    pub loopback_hosts_only: bool,
    /// `COLLOQUY_METRICS_TOKEN`: `/metrics` asks for it when set.
    pub metrics_token: Option<MetricsToken>,
    /// `COLLOQUY_CLIENT_TIMEOUT_SECS` for bodies; `None` waits for as long
    /// as a client takes.
    pub body_timeout: Option<Duration>,
    /// How often WebSockets are pinged, and so when a silent one is closed.
    pub websocket: WebSocketSettings,
}

impl Edges {
    /// Refuses foreign origins, and foreign host names on loopback, with `403`.
    #[must_use]
    pub fn origin_check(&self) -> OriginCheck {
        OriginCheck::new(self.cors_origins.clone(), self.loopback_hosts_only)
    }

    /// Answers preflights and adds CORS headers for the allowed origins.
    #[must_use]
    pub fn cors(&self) -> Condition<Cors> {
        cors::layer(self.cors_origins.as_ref())
    }

    /// The settings routes read from the app's data.
    pub(crate) fn register(&self, config: &mut web::ServiceConfig) {
        if let Some(token) = &self.metrics_token {
            config.app_data(token.clone());
        }
        if let Some(limit) = self.body_timeout.filter(|limit| !limit.is_zero()) {
            config.app_data(BodyTimeout(limit));
        }
        config.app_data(self.websocket);
    }
}

/// `COLLOQUY_METRICS_TOKEN`: the bearer token `/metrics` asks for, when set.
/// Its Debug prints `[redacted]`, so no log line shows it.
#[derive(Clone)]
pub struct MetricsToken(Arc<str>);

impl MetricsToken {
    #[must_use]
    pub fn new(token: &str) -> Self {
        Self(Arc::from(token))
    }

    /// Whether `Authorization` holds `Bearer <this token>`. The bytes are
    /// compared in constant time, so answer times tell nothing of how much
    /// of a guess was right (its length aside).
    pub(crate) fn admits(&self, authorization: Option<&HeaderValue>) -> bool {
        let Some(credential) = authorization
            .and_then(|value| value.to_str().ok())
            .and_then(|value| value.trim().split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, credential)| credential.trim())
        else {
            return false;
        };
        credential.as_bytes().ct_eq(self.0.as_bytes()).into()
    }
}

impl std::fmt::Debug for MetricsToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MetricsToken([redacted])")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metrics_token_is_a_bearer_credential_matched_exactly() {
        let token = MetricsToken::new("scrape-me");
        let admits = |value: &str| token.admits(Some(&HeaderValue::from_str(value).unwrap()));
        assert!(admits("Bearer scrape-me"));
        assert!(admits("bearer  scrape-me "));
        for refused in [
            "Bearer scrape-m",
            "Bearer scrape-me2",
            "Basic scrape-me",
            "scrape-me",
            "Bearer ",
        ] {
            assert!(!admits(refused), "{refused}");
        }
        assert!(!token.admits(None));
        assert_eq!(format!("{token:?}"), "MetricsToken([redacted])");
    }
}
