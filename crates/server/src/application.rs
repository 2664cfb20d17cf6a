//! Wiring: adapters into ports, ports into the service, the service into
//! actix-web. This is the composition root; nothing else names an adapter.

use std::num::NonZeroUsize;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use anyhow::{bail, Context};
use colloquy_app::{ChatConfig, ChatService, Dependencies, ReplySweeper};
use colloquy_auth::{Anonymous, ApiKeys, JwtAuth, SignedStreamTokens};
use colloquy_diesel::{is_postgres_url, PostgresRepository, SqliteRepository};
use colloquy_inprocess::{InProcessEventLog, InProcessLimiter};
use colloquy_offline::OfflineModel;
use colloquy_openai::{OpenAiClient, OpenAiConfig};
use colloquy_ports::{
    ApiKeyStore, AssistantStore, Authenticator, ChatRepository, EventLog, Limiter, LlmClient,
    StreamTokens, UsageLedger,
};
use colloquy_redis::{Redis, RedisConfig, RedisEventLog, RedisLimiter};

use crate::config::{AuthChoice, Config, JwtKey, LlmChoice};

const METRICS_UPKEEP: Duration = Duration::from_secs(10);

/// Connections the kernel queues while every worker holds its
/// `COLLOQUY_MAX_CONNECTIONS` share; Linux caps it at `net.core.somaxconn`
/// (4096 by default).
const LISTEN_BACKLOG: u32 = 2048;

/// A built server, bound to its port, not yet serving.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    /// Written out at shutdown: the last uses of API keys not yet stored.
    api_keys: Option<Arc<ApiKeys>>,
    service: ChatService,
    shutdown_grace: Duration,
    /// With Redis: ends the replies of replicas that died, until dropped.
    _sweeper: Option<AbortOnDrop>,
}

/// A background task that ends with its owner.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

impl Application {
    /// Opens the database (applying migrations), recovers replies a previous
    /// process left streaming, and binds `config.addr` (port 0 picks a free one).
    ///
    /// # Errors
    /// A database that cannot be opened or migrated, an address that cannot be bound.
    pub async fn build(config: &Config) -> anyhow::Result<Self> {
        Self::build_with(config, config.chat_config()).await
    }

    /// As [`Application::build`], with use-case settings of the caller's own
    /// (tests shorten the retry backoff and the flush interval this way).
    ///
    /// # Errors
    /// As [`Application::build`].
    pub async fn build_with(config: &Config, chat: ChatConfig) -> anyhow::Result<Self> {
        refuse_public_anonymous(config)?;
        let store = open_store(config.database_url.expose()).await?;
        let shared = shared_events(config, &chat).await?;
        let (events, limiter): (Arc<dyn EventLog>, Arc<dyn Limiter>) = match &shared {
            Some(shared) => (shared.log.clone(), shared.limiter.clone()),
            None => (
                Arc::new(InProcessEventLog::new(config.event_log)),
                Arc::new(InProcessLimiter::new(chat.limits)),
            ),
        };
        let dependencies = Dependencies {
            repo: store.clone(),
            assistants: store.clone(),
            llm: language_model(config)?,
            events: Arc::clone(&events),
            limiter,
            usage: store.clone(),
        };
        let service = ChatService::new(dependencies, chat);
        let sweeper = match &shared {
            // Other replicas may be running replies this moment: only those
            // whose lease ran out are this replica's business, and the
            // sweeper finds them (its first pass runs now).
            Some(shared) => {
                let sweeper = ReplySweeper::new(
                    store.clone(),
                    events,
                    shared.log.clone(),
                    config.replicas.lease,
                );
                Some(AbortOnDrop(tokio::spawn(sweeper.run())))
            }
            None => {
                recover_interrupted(&service).await?;
                None
            }
        };

        let stream_tokens = stream_tokens(config, shared.as_ref()).await?;
        let (authenticator, api_keys) = authenticator(config, store)?;
        let edges = http_edges(config);
        let workers = std::thread::available_parallelism().map_or(1, NonZeroUsize::get);
        let app_service = service.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(colloquy_http::error_pages())
                .wrap(edges.cors())
                .wrap(colloquy_http::cors_refusals())
                .wrap(edges.origin_check())
                .wrap(actix_web::middleware::from_fn(
                    colloquy_http::observe_requests,
                ))
                .wrap(colloquy_http::trim_trailing_slash())
                .configure(colloquy_http::configure(
                    app_service.clone(),
                    Arc::clone(&authenticator),
                    Arc::clone(&stream_tokens),
                    &edges,
                ))
        })
        // Set rather than left to actix's default (the same count), so the
        // connection limit below is divided by the number actually started.
        .workers(workers)
        // actix counts `max_connections` per worker, each stopping to accept
        // at its own share: the process-wide COLLOQUY_MAX_CONNECTIONS is
        // divided among the workers, rounded down but at least one each.
        // Further clients wait in the listen backlog.
        .max_connections(connections_per_worker(
            config.edges.max_connections,
            workers,
        ))
        .backlog(LISTEN_BACKLOG)
        // The whole head of a connection's first request must arrive within
        // COLLOQUY_CLIENT_TIMEOUT_SECS, or actix answers `408` and closes it
        // (zero turns it off); bodies get the same deadline in `JsonBody`.
        .client_request_timeout(config.edges.client_timeout)
        // Event streams are many small writes: without TCP_NODELAY, Nagle's
        // algorithm holds each delta until the client ACKs the previous one,
        // which a delayed ACK can put off for 40 ms (actix keeps the OS
        // default unless told).
        .tcp_nodelay(true)
        // actix binds the socket itself, as only then it sets the backlog.
        .bind(config.addr)
        .with_context(|| format!("binding {}", config.addr))?;
        let port = server
            .addrs()
            .first()
            .map(std::net::SocketAddr::port)
            .with_context(|| format!("binding {}: no socket was bound", config.addr))?;
        let server = server
            // Signals are ours to handle: replies get their grace period
            // before the HTTP server is told to stop.
            .disable_signals()
            .shutdown_timeout(5)
            .run();
        Ok(Self {
            port,
            server,
            service,
            shutdown_grace: config.shutdown_grace,
            api_keys,
            _sweeper: sweeper,
        })
    }

    #[must_use]
    pub const fn port(&self) -> u16 {
        self.port
    }

    /// Stops the HTTP server from outside (tests restart a server this way).
    #[must_use]
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    #[must_use]
    pub fn service(&self) -> &ChatService {
        &self.service
    }

    /// Serves until SIGTERM or Ctrl-C, then shuts down cleanly: no new
    /// messages, running replies get `COLLOQUY_SHUTDOWN_GRACE_SECS` to
    /// finish, the rest are stored `interrupted`, then the server stops.
    ///
    /// # Errors
    /// When the HTTP server fails.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let handle = self.server.handle();
        let service = self.service.clone();
        let grace = self.shutdown_grace;
        tokio::spawn(async move {
            wait_for_stop_signal().await;
            tracing::info!("stop signal received: shutting down");
            service.shutdown(grace).await;
            handle.stop(true).await;
        });
        // A scrape folds histogram samples into their buckets; this keeps
        // them from piling up while nobody scrapes.
        let upkeep = tokio::spawn(async {
            let mut every = tokio::time::interval(METRICS_UPKEEP);
            loop {
                every.tick().await;
                colloquy_http::metrics_upkeep();
            }
        });
        let served = self.server.await;
        upkeep.abort();
        if let Some(keys) = &self.api_keys {
            if let Err(error) = keys.flush().await {
                tracing::warn!(%error, "could not store the API keys' last uses");
            }
        }
        served
    }
}

/// Without authentication anyone who reaches the port reads and spends
/// everything: that is only served on a loopback address, unless the
/// operator says otherwise with `COLLOQUY_ALLOW_ANONYMOUS=true`.
///
/// # Errors
/// `COLLOQUY_AUTH=none` on an address other than loopback, without that consent.
pub fn refuse_public_anonymous(config: &Config) -> anyhow::Result<()> {
    if config.auth == AuthChoice::None && !config.addr.ip().is_loopback() && !config.allow_anonymous
    {
        bail!(
            "refusing to serve {} without authentication: anyone who can reach it could read every \
             conversation and spend the model's budget. Set COLLOQUY_AUTH=keys or jwt (see README, \
             \"Securing colloquy\"), listen on 127.0.0.1, or set COLLOQUY_ALLOW_ANONYMOUS=true if a \
             proxy in front authenticates",
            config.addr
        );
    }
    Ok(())
}

/// What the HTTP layer decides before a route runs, from the configuration.
/// Host names other than loopback ones are refused when the server listens
/// on loopback: nobody else can reach it, so such a name can only be a DNS
/// rebinding page's.
fn http_edges(config: &Config) -> colloquy_http::Edges {
    let timeout = config.edges.client_timeout;
    colloquy_http::Edges {
        cors_origins: config.edges.cors_origins.clone(),
        loopback_hosts_only: config.addr.ip().is_loopback(),
        metrics_token: config
            .edges
            .metrics_token
            .as_ref()
            .map(|token| colloquy_http::MetricsToken::new(token.expose())),
        body_timeout: (!timeout.is_zero()).then_some(timeout),
        websocket: colloquy_http::WebSocketSettings {
            ping_interval: config.edges.ws_ping_interval,
        },
    }
}

/// Each worker's share of `total` connections; `0` sets no limit of ours.
fn connections_per_worker(total: usize, workers: usize) -> usize {
    if total == 0 {
        usize::MAX
    } else {
        (total / workers.max(1)).max(1)
    }
}

/// The authenticator, and with API keys the `ApiKeys` too, whose pending
/// last uses are written at shutdown.
type Authentication = (Arc<dyn Authenticator>, Option<Arc<ApiKeys>>);

/// Who checks a request's credentials, as `COLLOQUY_AUTH` says.
///
/// # Errors
/// A JWT key that cannot be used.
fn authenticator(config: &Config, store: Arc<dyn ApiKeyStore>) -> anyhow::Result<Authentication> {
    Ok(match &config.auth {
        AuthChoice::None => (Arc::new(Anonymous), None),
        AuthChoice::Keys => {
            let keys = Arc::new(ApiKeys::new(store));
            (keys.clone(), Some(keys))
        }
        AuthChoice::Jwt(jwt) => {
            let (issuer, audience) = (jwt.issuer.as_deref(), jwt.audience.as_deref());
            let auth = match &jwt.key {
                JwtKey::Secret(secret) => {
                    JwtAuth::hs256(secret.expose().as_bytes(), issuer, audience)
                }
                JwtKey::PublicKeyPem(pem) => JwtAuth::public_key_pem(pem, issuer, audience),
            }
            .context("COLLOQUY_JWT_SECRET / COLLOQUY_JWT_PUBLIC_KEY")?;
            tracing::info!(
                algorithm = auth.algorithm(),
                "requests are authenticated with JWTs"
            );
            (Arc::new(auth), None)
        }
    })
}

/// Stream tokens: signed with a key derived from `COLLOQUY_JWT_SECRET` when
/// there is one, else with a random key that every replica sharing Redis
/// reads from there, else (one replica) with a random key of this process.
/// Either way any replica accepts any replica's tokens.
///
/// # Errors
/// A `COLLOQUY_STREAM_TOKEN_SECS` under a second; Redis not answering.
async fn stream_tokens(
    config: &Config,
    shared: Option<&SharedEvents>,
) -> anyhow::Result<Arc<dyn StreamTokens>> {
    let ttl = config.stream_token_ttl;
    let tokens = match (&config.jwt_secret, shared) {
        (Some(secret), _) => SignedStreamTokens::derived_from(secret.expose().as_bytes(), ttl),
        (None, Some(shared)) => {
            let secret = shared
                .redis
                .shared_secret("stream-tokens")
                .await
                .context("reading the stream tokens' key from Redis (COLLOQUY_REDIS_URL)")?;
            SignedStreamTokens::derived_from(&secret, ttl)
        }
        (None, None) => SignedStreamTokens::random(ttl),
    }
    .context("COLLOQUY_STREAM_TOKEN_SECS")?;
    Ok(Arc::new(tokens))
}

/// The event log and limiter every replica shares, in Redis.
struct SharedEvents {
    redis: Redis,
    log: Arc<RedisEventLog>,
    limiter: Arc<RedisLimiter>,
}

/// Redis's event log and limiter when `COLLOQUY_REDIS_URL` is set. Redis
/// need not be up yet: calls fail as unavailable until it is.
///
/// # Errors
/// A URL this build cannot use.
async fn shared_events(config: &Config, chat: &ChatConfig) -> anyhow::Result<Option<SharedEvents>> {
    let Some(url) = &config.replicas.redis_url else {
        return Ok(None);
    };
    let redis_config = RedisConfig {
        key_prefix: config.replicas.redis_key_prefix.clone(),
        lease: config.replicas.lease,
        log_limits: config.event_log,
        ..RedisConfig::new(url.expose())
    };
    let redis = Redis::connect(&redis_config)?;
    if let Err(error) = redis.check().await {
        tracing::warn!(%error, "Redis does not answer yet: events and new replies wait for it");
    }
    tracing::info!(
        redis = ?redis_config,
        "events, reply slots and limits are shared through Redis"
    );
    Ok(Some(SharedEvents {
        log: Arc::new(RedisEventLog::new(redis.clone(), &redis_config)),
        limiter: Arc::new(RedisLimiter::new(
            redis.clone(),
            chat.limits,
            config.replicas.lease,
        )),
        redis,
    }))
}

/// Marks the replies a previous run of this (only) replica left streaming
/// as `interrupted`.
///
/// # Errors
/// The store failing.
async fn recover_interrupted(service: &ChatService) -> anyhow::Result<()> {
    let recovered = service
        .recover_interrupted_replies()
        .await
        .context("marking unfinished replies as interrupted")?;
    if recovered > 0 {
        tracing::warn!(
            count = recovered,
            "replies left streaming by a previous run are now `interrupted`"
        );
    }
    Ok(())
}

/// Everything the database `DATABASE_URL` names serves: the chat history,
/// the assistants, the API keys and the usage ledger, in one store.
pub trait Store: ChatRepository + AssistantStore + ApiKeyStore + UsageLedger {}

impl<T: ChatRepository + AssistantStore + ApiKeyStore + UsageLedger> Store for T {}

/// Connections each process keeps to PostgreSQL at most. A request holds one
/// for a single short statement or transaction, so a few serve hundreds of
/// concurrent requests; several replicas together stay well under the
/// server's default `max_connections` (100).
const POSTGRES_POOL_SIZE: usize = 16;

/// Opens the store named by `DATABASE_URL`: PostgreSQL for `postgres://…`
/// and `postgresql://…`, else a SQLite file. Pending migrations are applied.
///
/// # Errors
/// A database that cannot be reached, opened or migrated.
pub async fn open_store(url: &str) -> anyhow::Result<Arc<dyn Store>> {
    if is_postgres_url(url) {
        let repo = PostgresRepository::connect(url, POSTGRES_POOL_SIZE)
            .await
            .context("opening the PostgreSQL database DATABASE_URL names")?;
        Ok(Arc::new(repo))
    } else {
        Ok(open_sqlite(url)?)
    }
}

/// Opens the store named by `DATABASE_URL`, as its chat repository.
///
/// # Errors
/// As [`open_store`].
pub async fn open_repository(url: &str) -> anyhow::Result<Arc<dyn ChatRepository>> {
    Ok(open_store(url).await?)
}

/// Opens the SQLite database named by `DATABASE_URL`, as the one type that
/// is both the chat repository and the API key store.
///
/// # Errors
/// A PostgreSQL URL (which [`open_store`] opens), or a file that cannot be
/// opened or migrated.
pub fn open_sqlite(url: &str) -> anyhow::Result<Arc<SqliteRepository>> {
    if is_postgres_url(url) {
        bail!("DATABASE_URL names PostgreSQL, not a SQLite file");
    }
    // SQLite has one writer at a time; a few connections serve concurrent
    // readers while writes queue on the busy timeout.
    let repo = SqliteRepository::connect(url, 8)
        .with_context(|| format!("opening the database at `{url}`"))?;
    Ok(Arc::new(repo))
}

/// Applies the migrations the database `DATABASE_URL` names lacks, for
/// `colloquy migrate`, and returns their names, oldest first.
///
/// # Errors
/// A database that cannot be reached, opened or migrated.
pub async fn migrate_store(url: &str) -> anyhow::Result<Vec<String>> {
    if is_postgres_url(url) {
        colloquy_diesel::migrate_postgres(url).await
    } else {
        colloquy_diesel::migrate(url)
    }
}

/// The model `config` asks for.
///
/// # Errors
/// An OpenAI base URL that is not a URL.
pub fn language_model(config: &Config) -> anyhow::Result<Arc<dyn LlmClient>> {
    match &config.llm {
        LlmChoice::Offline => {
            tracing::warn!(
                "no OPENAI_API_KEY or OPENAI_BASE_URL set: replies come from the built-in offline model, which only echoes"
            );
            Ok(Arc::new(OfflineModel::default()))
        }
        LlmChoice::OpenAi { base_url, api_key } => {
            tracing::info!(base_url, model = %config.default_model, "replies come from an OpenAI-compatible API");
            let client = OpenAiClient::new(OpenAiConfig {
                base_url: base_url.clone(),
                api_key: api_key.clone(),
                ..OpenAiConfig::default()
            })
            .context("configuring the OpenAI client")?;
            Ok(Arc::new(client))
        }
    }
}

async fn wait_for_stop_signal() {
    let ctrl_c = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::connections_per_worker;

    #[test]
    fn the_connection_limit_is_shared_among_the_workers() {
        assert_eq!(connections_per_worker(10_000, 2), 5_000);
        assert_eq!(connections_per_worker(10_000, 3), 3_333);
        assert_eq!(
            connections_per_worker(3, 8),
            1,
            "every worker takes at least one"
        );
        assert_eq!(connections_per_worker(0, 4), usize::MAX, "0 sets no limit");
    }
}
