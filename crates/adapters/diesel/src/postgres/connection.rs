//! Reaching the server: the URL, what every connection is set up with, and
//! the pool.

use std::fmt;
use std::str::FromStr as _;
use std::time::Duration;

use anyhow::{bail, Context as _};
use diesel::ConnectionError;
use diesel_async::pooled_connection::deadpool::Pool;
use diesel_async::pooled_connection::{
    AsyncDieselConnectionManager, ManagerConfig, RecyclingMethod,
};
use diesel_async::{AsyncPgConnection, SimpleAsyncConnection as _};
use futures::FutureExt as _;
use tokio_postgres::config::Host;
use tokio_postgres::NoTls;

use super::is_postgres_url;

pub(crate) type PgPool = Pool<AsyncPgConnection>;

/// How long a call waits for a free connection before the store counts as
/// unavailable (as long as SQLite's checkout wait).
const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long opening a connection may take, unless the URL's own
/// `connect_timeout` says otherwise: a host that drops packets would
/// otherwise hold a call for the operating system's TCP timeout.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How long the `SELECT 1` that checks an idle connection may take before
/// the connection is given up for a new one.
const RECYCLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Shown in `pg_stat_activity`, so an operator can tell colloquy's
/// connections from others; a URL's own `application_name` wins.
const APPLICATION_NAME: &str = "colloquy";

/// Set on every pooled connection, unless the URL's `options` set them:
/// a write waits 5 s for another's row lock (SQLite's `busy_timeout`), no
/// statement runs longer than 15 s, and a transaction left open by mistake
/// cannot hold its locks for more than a minute.
const SESSION_DEFAULTS: [(&str, &str); 3] = [
    ("lock_timeout", "5s"),
    ("statement_timeout", "15s"),
    ("idle_in_transaction_session_timeout", "60s"),
];

/// A parsed PostgreSQL URL, and how to show it without its password.
#[derive(Clone)]
pub(crate) struct Target {
    config: tokio_postgres::Config,
    shown: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    /// Accepts what libpq accepts as a URL (`postgres://user:password@host:port/db?sslmode=…`,
    /// or `postgresql://`), and fills in colloquy's defaults for what it
    /// leaves out. Nothing of `url` is echoed in an error: it may hold a password.
    pub(crate) fn parse(url: &str) -> anyhow::Result<Self> {
        let mut config = read(url)?;
        if let Some(mode) = tls_mode_asked_for(url) {
            bail!(
                "the PostgreSQL URL of {} asks for TLS (sslmode={mode}), which this build of \
                 colloquy does not support: it would connect without TLS or not at all. Reach the \
                 server over a private network or through a local TLS-terminating proxy \
                 (pgbouncer, stunnel) and drop sslmode, or write sslmode=disable (or prefer) \
                 to connect without TLS on purpose",
                describe(&config)
            );
        }
        if config.get_hosts().is_empty() {
            bail!("the PostgreSQL URL names no host: write postgres://USER@HOST/DATABASE");
        }
        if config.get_application_name().is_none() {
            config.application_name(APPLICATION_NAME);
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let shown = describe(&config);
        Ok(Self { config, shown })
    }

    /// What `url` names, without its password, for a log line; `None` when
    /// it cannot be read. Unlike [`Target::parse`] this accepts a URL that
    /// asks for TLS, so the error that refuses it can say which server.
    pub(crate) fn describe_url(url: &str) -> Option<String> {
        read(url).ok().map(|config| describe(&config))
    }

    /// A connection with the server's own settings, as migrations want it:
    /// a migration may rightly run longer than any statement of a request.
    pub(crate) async fn establish(&self) -> anyhow::Result<AsyncPgConnection> {
        open(&self.config)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {self}"))
    }

    /// A connection as the pool hands it out, with [`SESSION_DEFAULTS`].
    async fn establish_for_pool(&self) -> Result<AsyncPgConnection, ConnectionError> {
        let mut connection = open(&self.config)
            .await
            .map_err(|error| ConnectionError::BadConnection(format!("{error:#}")))?;
        let options = self.config.get_options().unwrap_or_default();
        for (name, value) in SESSION_DEFAULTS {
            if !options.contains(name) {
                connection
                    .batch_execute(&format!("SET {name} = '{value}'"))
                    .await
                    .map_err(ConnectionError::CouldntSetupConfiguration)?;
            }
        }
        Ok(connection)
    }

    /// A pool of at most `size` connections, opened as calls need them.
    pub(crate) fn pool(&self, size: usize) -> anyhow::Result<PgPool> {
        if size == 0 {
            bail!("the PostgreSQL pool size must be at least 1");
        }
        let mut manager_config = ManagerConfig::default();
        manager_config.recycling_method = RecyclingMethod::Verified;
        let target = self.clone();
        manager_config.custom_setup = Box::new(move |_url| {
            let target = target.clone();
            async move { target.establish_for_pool().await }.boxed()
        });
        // The manager hands its URL to `custom_setup`, which has the parsed
        // one already: it gets the form without the password.
        let manager = AsyncDieselConnectionManager::<AsyncPgConnection>::new_with_config(
            self.shown.clone(),
            manager_config,
        );
        Pool::builder(manager)
            .max_size(size)
            .wait_timeout(Some(CHECKOUT_TIMEOUT))
            .create_timeout(Some(
                self.config
                    .get_connect_timeout()
                    .copied()
                    .unwrap_or(CONNECT_TIMEOUT)
                    .saturating_add(CONNECT_TIMEOUT),
            ))
            .recycle_timeout(Some(RECYCLE_TIMEOUT))
            .runtime(deadpool::Runtime::Tokio1)
            .build()
            .with_context(|| format!("cannot make a pool of connections to {self}"))
    }
}

/// The URL as tokio-postgres reads it. Nothing of `url` is echoed in an
/// error: it may hold a password.
fn read(url: &str) -> anyhow::Result<tokio_postgres::Config> {
    if !is_postgres_url(url) {
        bail!("not a PostgreSQL URL: it must start with postgres:// or postgresql://");
    }
    if let Some(mode) = query_parameter(url, "sslmode") {
        if TLS_SSL_MODES.contains(&mode.as_str()) {
            // Read the rest without it, so that the caller can still name
            // the server; `Target::parse` refuses the URL for asking for TLS.
            return tokio_postgres::Config::from_str(&without_query_parameter(url, "sslmode"))
                .map_err(|error| anyhow::anyhow!("not a valid PostgreSQL URL: {error}"));
        }
        if !PLAIN_SSL_MODES.contains(&mode.as_str()) {
            // tokio-postgres would say no more than "invalid value".
            bail!(
                "not a valid PostgreSQL URL: sslmode={mode} is not a mode this build knows; \
                 write sslmode=disable or sslmode=prefer (both connect without TLS here)"
            );
        }
    }
    tokio_postgres::Config::from_str(url)
        .map_err(|error| anyhow::anyhow!("not a valid PostgreSQL URL: {error}"))
}

/// libpq's `sslmode` values that require TLS, or verify the server's
/// certificate: a connection without TLS does not satisfy them.
const TLS_SSL_MODES: [&str; 3] = ["require", "verify-ca", "verify-full"];

/// The `sslmode` values this build connects with: `disable`, and `prefer`,
/// which falls back to a connection without TLS as libpq's does when TLS
/// cannot be had.
const PLAIN_SSL_MODES: [&str; 2] = ["disable", "prefer"];

/// The `sslmode` of `url` when it requires TLS. This build opens
/// connections without TLS (`NoTls`), so tokio-postgres would fail such a
/// URL at connect time with a bare "error performing TLS handshake", or, for
/// `verify-*`, refuse it as an invalid value: it is better refused up front
/// with a reason.
fn tls_mode_asked_for(url: &str) -> Option<String> {
    query_parameter(url, "sslmode").filter(|mode| TLS_SSL_MODES.contains(&mode.as_str()))
}

/// The last value of `name` in the query string of `url`, lower-cased.
/// Values of `sslmode` need no percent-decoding: they are plain words.
fn query_parameter(url: &str, name: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query
        .rsplit('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_ascii_lowercase())
}

/// `url` without any `name=…` in its query string.
fn without_query_parameter(url: &str, name: &str) -> String {
    let Some((base, query)) = url.split_once('?') else {
        return url.to_owned();
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| pair.split_once('=').map_or(*pair, |(key, _)| key) != name)
        .collect();
    if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    }
}

/// Opens one connection. `tokio-postgres` hands back the client and the
/// task that drives the socket; diesel-async runs that task.
async fn open(config: &tokio_postgres::Config) -> anyhow::Result<AsyncPgConnection> {
    let (client, connection) = config.connect(NoTls).await?;
    Ok(AsyncPgConnection::try_from_client_and_connection(client, connection).await?)
}

/// `postgres://user@host:port/database`: what the URL names, without the
/// password or the options, for logs and errors.
fn describe(config: &tokio_postgres::Config) -> String {
    let ports = config.get_ports();
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(index, host)| {
            let port = ports.get(index).or(ports.first()).copied().unwrap_or(5432);
            match host {
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let user = config
        .get_user()
        .map(|user| format!("{user}@"))
        .unwrap_or_default();
    let database = config.get_dbname().unwrap_or_default();
    format!("postgres://{user}{}/{database}", hosts.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::postgres::printable_database_url;

    #[test]
    fn a_url_is_shown_without_its_password() {
        let target = Target::parse("postgresql://colloquy:s3cr3t@db.internal:6432/chat").unwrap();
        assert_eq!(
            target.to_string(),
            "postgres://colloquy@db.internal:6432/chat"
        );
        assert_eq!(format!("{target:?}"), target.to_string());
        let default_port = Target::parse("postgres://root@127.0.0.1/test").unwrap();
        assert_eq!(
            default_port.to_string(),
            "postgres://root@127.0.0.1:5432/test"
        );
    }

    #[test]
    fn colloquys_defaults_fill_only_what_the_url_leaves_out() {
        let defaults = Target::parse("postgres://u@h/d").unwrap();
        assert_eq!(
            defaults.config.get_application_name(),
            Some(APPLICATION_NAME)
        );
        assert_eq!(
            defaults.config.get_connect_timeout(),
            Some(&CONNECT_TIMEOUT)
        );
        let own =
            Target::parse("postgres://u@h/d?application_name=chat-eu&connect_timeout=2").unwrap();
        assert_eq!(own.config.get_application_name(), Some("chat-eu"));
        assert_eq!(
            own.config.get_connect_timeout(),
            Some(&Duration::from_secs(2))
        );
    }

    #[test]
    fn what_is_not_a_postgres_url_is_refused_without_echoing_it() {
        for url in [
            "colloquy.db",
            "mysql://u:hunter2@h/d",
            "postgres://u:hunter2@h:notaport/d",
            "postgres:///d",
        ] {
            let error = Target::parse(url).unwrap_err();
            assert!(
                !format!("{error:#}").contains("hunter2"),
                "{url}: {error:#}"
            );
        }
    }

    #[test]
    fn a_url_that_asks_for_tls_is_refused_with_what_to_do_instead() {
        for mode in ["require", "verify-ca", "verify-full", "REQUIRE"] {
            let url = format!(
                "postgres://colloquy:hunter2@db.internal/chat?connect_timeout=3&sslmode={mode}"
            );
            let error = format!("{:#}", Target::parse(&url).unwrap_err());
            assert!(
                error.contains("asks for TLS")
                    && error.contains("does not support")
                    && error.contains("pgbouncer")
                    && error.contains("sslmode=disable"),
                "{mode}: {error}"
            );
            assert!(
                error.contains("postgres://colloquy@db.internal:5432/chat"),
                "{error}"
            );
            assert!(!error.contains("hunter2"), "{error}");
            assert_eq!(
                printable_database_url(&url),
                "postgres://colloquy@db.internal:5432/chat",
                "a log line can still name the server"
            );
        }
    }

    #[test]
    fn a_url_that_connects_without_tls_on_purpose_is_accepted() {
        for mode in ["disable", "prefer"] {
            Target::parse(&format!("postgres://u@h/d?sslmode={mode}")).unwrap();
        }
        let error = Target::parse("postgres://u:hunter2@h/d?sslmode=sometimes").unwrap_err();
        let error = format!("{error:#}");
        assert!(error.contains("sslmode=disable"), "{error}");
        assert!(!error.contains("hunter2"), "{error}");
    }
}
