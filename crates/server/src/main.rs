use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use colloquy::{ask, logging, token, Application, Config};

/// Most of what the server allocates lives for one delta or one turn; with
/// mimalloc a turn at full speed costs about 17 % less CPU than with glibc's
/// malloc, at the same memory per idle subscriber (`docs/BENCHMARKS.md`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// colloquy: a chat backend that streams replies over Server-Sent Events and keeps every message.
#[derive(Debug, Parser)]
#[command(name = "colloquy", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve the HTTP API and the web page (the default).
    Serve {
        /// Listen address; overrides COLLOQUY_ADDR.
        #[arg(long)]
        addr: Option<SocketAddr>,
    },
    /// Send one prompt to the configured model and stream the reply to stdout.
    Ask {
        /// The prompt; several words are joined with spaces.
        #[arg(required = true)]
        prompt: Vec<String>,
    },
    /// Apply the database migrations and exit.
    Migrate,
    /// Make, list and revoke the API keys of COLLOQUY_AUTH=keys, in DATABASE_URL's database.
    Keys {
        #[command(subcommand)]
        command: colloquy::keys::KeysCommand,
    },
    /// Print a JWT naming PRINCIPAL, signed with COLLOQUY_JWT_SECRET (with
    /// COLLOQUY_JWT_ISSUER and COLLOQUY_JWT_AUDIENCE when set), for scripts and tests.
    Token {
        /// The principal the token names (its `sub`).
        #[arg(long)]
        principal: String,
        /// How long the token is good for: 90s, 30m, 1h, 7d…
        #[arg(long, default_value = "1h", value_parser = humantime::parse_duration)]
        ttl: Duration,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    // A missing .env is normal; a broken one is worth saying.
    if let Err(error) = dotenvy::dotenv() {
        if !error.not_found() {
            eprintln!("colloquy: ignoring .env: {error}");
        }
    }
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(error) => {
            eprintln!("colloquy: configuration error: {error:#}");
            return ExitCode::from(2);
        }
    };
    logging::init(config.log_format);
    match run(cli.command.unwrap_or(Command::Serve { addr: None }), config).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            tracing::error!("{error:#}");
            eprintln!("colloquy: {error:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command, mut config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve { addr } => {
            if let Some(addr) = addr {
                config.addr = addr;
            }
            let app = Application::build(&config).await?;
            tracing::info!(addr = %config.addr, port = app.port(), "colloquy is serving: open http://{}:{}/", config.addr.ip(), app.port());
            app.run_until_stopped().await?;
            tracing::info!("stopped");
        }
        Command::Ask { prompt } => {
            let mut stdout = std::io::stdout();
            ask::ask(&config, &prompt.join(" "), &mut stdout).await?;
        }
        Command::Migrate => {
            let applied =
                colloquy::application::migrate_store(config.database_url.expose()).await?;
            // A PostgreSQL URL may hold a password: the log shows it without.
            let database = colloquy_diesel::printable_database_url(config.database_url.expose());
            if applied.is_empty() {
                tracing::info!(database, "the database is up to date");
            } else {
                tracing::info!(database, ?applied, "migrations applied");
            }
        }
        Command::Keys { command } => {
            colloquy::keys::run(
                config.database_url.expose(),
                command,
                &mut std::io::stdout(),
            )
            .await?;
        }
        Command::Token { principal, ttl } => {
            let token = token::token(&config, &principal, ttl)?;
            // Alone on stdout, so `TOKEN=$(colloquy token …)` just works.
            writeln!(std::io::stdout().lock(), "{token}")?;
        }
    }
    Ok(())
}
