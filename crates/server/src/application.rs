//! Wiring: adapters into ports, ports into the service, the service into
//! actix-web. This is the composition root; nothing else names an adapter.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{App, HttpServer};
use anyhow::{bail, Context};
use colloquy_app::{ChatConfig, ChatService};
use colloquy_auth::Anonymous;
use colloquy_diesel::SqliteRepository;
use colloquy_inprocess::InProcessEventLog;
use colloquy_offline::OfflineModel;
use colloquy_openai::{OpenAiClient, OpenAiConfig};
use colloquy_ports::{Authenticator, ChatRepository, LlmClient};

use crate::config::{Config, LlmChoice};

const METRICS_UPKEEP: Duration = Duration::from_secs(10);

/// A built server, bound to its port, not yet serving.
pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    service: ChatService,
    shutdown_grace: Duration,
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
        let repo = open_repository(&config.database_url)?;
        let events = Arc::new(InProcessEventLog::new(config.event_log));
        let service = ChatService::new(repo, language_model(config)?, events, chat);
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

        let listener =
            TcpListener::bind(config.addr).with_context(|| format!("binding {}", config.addr))?;
        let port = listener.local_addr()?.port();
        let authenticator: Arc<dyn Authenticator> = Arc::new(Anonymous);
        let app_service = service.clone();
        let server = HttpServer::new(move || {
            App::new()
                .wrap(colloquy_http::error_pages())
                .wrap(actix_web::middleware::from_fn(
                    colloquy_http::observe_requests,
                ))
                .wrap(colloquy_http::trim_trailing_slash())
                .configure(colloquy_http::configure(
                    app_service.clone(),
                    Arc::clone(&authenticator),
                ))
        })
        // Event streams are many small writes: without TCP_NODELAY, Nagle's
        // algorithm holds each delta until the client ACKs the previous one,
        // which a delayed ACK can put off for 40 ms (actix keeps the OS
        // default unless told).
        .tcp_nodelay(true)
        .listen(listener)?
        // Signals are ours to handle: replies get their grace period before
        // the HTTP server is told to stop.
        .disable_signals()
        .shutdown_timeout(5)
        .run();
        Ok(Self {
            port,
            server,
            service,
            shutdown_grace: config.shutdown_grace,
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
        served
    }
}

/// Opens the store named by `DATABASE_URL`.
///
/// # Errors
/// An unsupported URL, or a database that cannot be opened or migrated.
pub fn open_repository(url: &str) -> anyhow::Result<Arc<dyn ChatRepository>> {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        bail!("DATABASE_URL names Postgres, but this build of colloquy stores in SQLite only; use a file path or sqlite://PATH");
    }
    // SQLite has one writer at a time; a few connections serve concurrent
    // readers while writes queue on the busy timeout.
    let repo = SqliteRepository::connect(url, 8)
        .with_context(|| format!("opening the database at `{url}`"))?;
    Ok(Arc::new(repo))
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
