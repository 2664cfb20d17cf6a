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
        if !is_postgres_url(url) {
            bail!("not a PostgreSQL URL: it must start with postgres:// or postgresql://");
        }
        let mut config = tokio_postgres::Config::from_str(url)
            .map_err(|error| anyhow::anyhow!("not a valid PostgreSQL URL: {error}"))?;
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
}
