//! The variables of the HTTP edges: which other sites' pages may call the
//! server, the metrics token, how many connections and how slow a client
//! are borne, and how often a WebSocket is pinged.

use std::time::Duration;

use anyhow::anyhow;
use colloquy_http::AllowedOrigins;

use super::{number, seconds, Secret};

/// `COLLOQUY_CORS_ORIGINS`, `COLLOQUY_METRICS_TOKEN`,
/// `COLLOQUY_MAX_CONNECTIONS`, `COLLOQUY_CLIENT_TIMEOUT_SECS` and
/// `COLLOQUY_WS_PING_SECS`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EdgeConfig {
    /// Origins beside the server's own whose pages may call it (`*`: any);
    /// `None` answers no preflight and sends no CORS header.
    pub cors_origins: Option<AllowedOrigins>,
    /// When set, `/metrics` needs `Authorization: Bearer` with it.
    pub metrics_token: Option<Secret>,
    /// Connections held at once; `0` sets no limit of ours.
    pub max_connections: usize,
    /// Longest wait for a request's head, and for its body; zero waits for
    /// as long as a client takes.
    pub client_timeout: Duration,
    /// How often WebSockets are pinged; one silent for two of these is closed.
    pub ws_ping_interval: Duration,
}

impl EdgeConfig {
    /// Reads the variables through `get` (which treats empty as unset).
    ///
    /// # Errors
    /// A variable that is set but cannot be understood, named in the message.
    pub(super) fn read(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let cors_origins = get("COLLOQUY_CORS_ORIGINS")
            .map(|raw| AllowedOrigins::parse(&raw))
            .transpose()
            .map_err(|error| {
                anyhow!("COLLOQUY_CORS_ORIGINS: {error}; list origins separated by commas, or `*` for any")
            })?;
        Ok(Self {
            cors_origins,
            metrics_token: get("COLLOQUY_METRICS_TOKEN").map(Secret),
            max_connections: number(get, "COLLOQUY_MAX_CONNECTIONS", "10000")?,
            client_timeout: seconds(get, "COLLOQUY_CLIENT_TIMEOUT_SECS", "10")?,
            ws_ping_interval: ping_interval(get)?,
        })
    }
}

/// `COLLOQUY_WS_PING_SECS`: without pings a dead client's socket would
/// never be found out, so there is no turning them off.
fn ping_interval(get: &impl Fn(&str) -> Option<String>) -> anyhow::Result<Duration> {
    let interval = seconds(get, "COLLOQUY_WS_PING_SECS", "15")?;
    if interval.is_zero() {
        return Err(anyhow!(
            "COLLOQUY_WS_PING_SECS must be more than 0: a WebSocket that is never pinged is never found dead"
        ));
    }
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use colloquy_http::Origin;

    use super::*;

    fn edges(vars: &[(&str, &str)]) -> anyhow::Result<EdgeConfig> {
        let vars: HashMap<&str, &str> = vars.iter().copied().collect();
        EdgeConfig::read(&|name: &str| {
            vars.get(name)
                .map(|value| (*value).to_owned())
                .filter(|value| !value.trim().is_empty())
        })
    }

    #[test]
    fn the_defaults_are_the_contracts() {
        assert_eq!(
            edges(&[]).unwrap(),
            EdgeConfig {
                cors_origins: None,
                metrics_token: None,
                max_connections: 10_000,
                client_timeout: Duration::from_secs(10),
                ws_ping_interval: Duration::from_secs(15),
            }
        );
        assert_eq!(
            edges(&[("COLLOQUY_CORS_ORIGINS", "")])
                .unwrap()
                .cors_origins,
            None
        );
    }

    #[test]
    fn each_variable_is_read() {
        let read = edges(&[
            (
                "COLLOQUY_CORS_ORIGINS",
                "https://app.example, http://localhost:5173",
            ),
            ("COLLOQUY_METRICS_TOKEN", "scrape-secret"),
            ("COLLOQUY_MAX_CONNECTIONS", "0"),
            ("COLLOQUY_CLIENT_TIMEOUT_SECS", "2.5"),
            ("COLLOQUY_WS_PING_SECS", "0.5"),
        ])
        .unwrap();
        assert_eq!(
            read.cors_origins,
            Some(AllowedOrigins::Listed(vec![
                Origin::parse("https://app.example").unwrap(),
                Origin::parse("http://localhost:5173").unwrap(),
            ]))
        );
        assert_eq!(
            read.metrics_token.as_ref().map(Secret::expose),
            Some("scrape-secret")
        );
        assert!(
            !format!("{read:?}").contains("scrape-secret"),
            "the token is never shown"
        );
        assert_eq!(read.max_connections, 0);
        assert_eq!(read.client_timeout, Duration::from_millis(2500));
        assert_eq!(read.ws_ping_interval, Duration::from_millis(500));
        let any = edges(&[("COLLOQUY_CORS_ORIGINS", "*")]).unwrap();
        assert_eq!(any.cors_origins, Some(AllowedOrigins::Any));
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        for (name, bad, says) in [
            (
                "COLLOQUY_CORS_ORIGINS",
                "app.example",
                "`app.example` is not an origin",
            ),
            (
                "COLLOQUY_CORS_ORIGINS",
                "https://app.example/chat",
                "no path",
            ),
            (
                "COLLOQUY_CORS_ORIGINS",
                "*, https://app.example",
                "cannot be combined",
            ),
            ("COLLOQUY_CORS_ORIGINS", "null", "only `*`"),
            ("COLLOQUY_MAX_CONNECTIONS", "-1", "`-1`"),
            ("COLLOQUY_MAX_CONNECTIONS", "many", "`many`"),
            ("COLLOQUY_CLIENT_TIMEOUT_SECS", "-3", "-3"),
            ("COLLOQUY_CLIENT_TIMEOUT_SECS", "soon", "`soon`"),
            ("COLLOQUY_WS_PING_SECS", "0", "more than 0"),
            ("COLLOQUY_WS_PING_SECS", "often", "`often`"),
        ] {
            let error = format!("{:#}", edges(&[(name, bad)]).unwrap_err());
            assert!(
                error.contains(name) && error.contains(says),
                "{name}={bad}: {error}"
            );
        }
    }
}
