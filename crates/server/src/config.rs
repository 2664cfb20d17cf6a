//! The configuration of the contract, read once from the environment (and a
//! `.env` file, loaded by `main`), into one typed struct.

mod edges;
mod replicas;

use std::fmt;
use std::net::SocketAddr;
use std::str::FromStr;
use std::time::Duration;

use anyhow::{anyhow, bail, Context};
use colloquy_app::{ChatConfig, LlmPolicy, ModelAllowlist, ToolRegistry};
use colloquy_domain::ModelName;
use colloquy_inprocess::LogLimits;
use colloquy_offline::OFFLINE_MODEL;
use colloquy_openai::ApiKey;
use colloquy_ports::Limits;

pub use edges::EdgeConfig;
pub use replicas::ReplicaConfig;

/// Which language model answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LlmChoice {
    /// The built-in offline model.
    Offline,
    /// OpenAI's API, or any server that speaks it.
    OpenAi {
        base_url: String,
        api_key: Option<ApiKey>,
    },
}

/// How requests are authenticated (`COLLOQUY_AUTH`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AuthChoice {
    /// One anonymous principal, for a machine of one's own.
    None,
    /// API keys made with `colloquy keys create`.
    Keys,
    /// Bearer JWTs, checked with the configured key.
    Jwt(JwtSettings),
}

/// What a JWT is checked against.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JwtSettings {
    /// `COLLOQUY_JWT_SECRET` (HS256) or the PEM of `COLLOQUY_JWT_PUBLIC_KEY` (RS256, ES256).
    pub key: JwtKey,
    pub issuer: Option<String>,
    pub audience: Option<String>,
}

/// The key JWTs are verified with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwtKey {
    Secret(Secret),
    PublicKeyPem(String),
}

/// A secret from the environment: its Debug prints `[redacted]`, so no log
/// line or error that formats the configuration shows it.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// `DATABASE_URL`: a SQLite file, or a PostgreSQL URL that may hold a
/// password. Its Debug prints it as a log line may show it (without the
/// password or the options), so formatting the configuration never leaks it.
#[derive(Clone, PartialEq, Eq)]
pub struct DatabaseUrl(String);

impl DatabaseUrl {
    #[must_use]
    pub fn new(url: impl Into<String>) -> Self {
        Self(url.into())
    }

    /// The URL as given, password included: for opening the database only.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for DatabaseUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&colloquy_diesel::printable_database_url(&self.0))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    Text,
    Json,
}

/// Everything `colloquy` reads from its environment.
#[derive(Debug, Clone)]
pub struct Config {
    pub addr: SocketAddr,
    /// The HTTP edges: CORS, the metrics token, connections, slow clients.
    pub edges: EdgeConfig,
    pub database_url: DatabaseUrl,
    pub llm: LlmChoice,
    pub default_model: ModelName,
    pub llm_timeout: Duration,
    pub llm_idle_timeout: Duration,
    pub llm_max_retries: u32,
    pub max_message_chars: usize,
    pub system_prompt: Option<String>,
    pub context_tokens: usize,
    /// The built-in tools `COLLOQUY_TOOLS` names, checked at start-up.
    pub tools: ToolRegistry,
    pub auto_title: bool,
    pub shutdown_grace: Duration,
    pub log_format: LogFormat,
    /// How much of each session's events stays resumable.
    pub event_log: LogLimits,
    pub auth: AuthChoice,
    /// `COLLOQUY_ALLOW_ANONYMOUS`: serve anonymously on a public address.
    pub allow_anonymous: bool,
    /// `COLLOQUY_JWT_SECRET`, also when `COLLOQUY_AUTH` is not `jwt`: `colloquy token` signs with it.
    pub jwt_secret: Option<Secret>,
    pub jwt_issuer: Option<String>,
    pub jwt_audience: Option<String>,
    /// How long a stream token opens a session's event stream.
    pub stream_token_ttl: Duration,
    /// What each principal may use, and which models.
    pub limits: LimitSettings,
    /// Redis for several replicas, and the lease of a reply's slot.
    pub replicas: ReplicaConfig,
}

/// The contract's "Limits" table, but for connections and timeouts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LimitSettings {
    pub limits: Limits,
    /// `COLLOQUY_MODELS`.
    pub models: ModelAllowlist,
    /// `COLLOQUY_MAX_REPLY_TOKENS`; `None` when `0`.
    pub max_reply_tokens: Option<u32>,
}

impl LimitSettings {
    fn from_lookup(
        get: &impl Fn(&str) -> Option<String>,
        default_model: &ModelName,
    ) -> anyhow::Result<Self> {
        let models = match get("COLLOQUY_MODELS") {
            None => ModelAllowlist::Only(vec![default_model.clone()]),
            Some(list) if list.trim() == "*" => ModelAllowlist::Any,
            Some(list) => {
                let models = list
                    .split(',')
                    .map(str::trim)
                    .filter(|model| !model.is_empty())
                    .map(|model| {
                        ModelName::parse(model)
                            .map_err(|error| anyhow!("COLLOQUY_MODELS: `{model}`: {error}"))
                    })
                    .collect::<anyhow::Result<Vec<_>>>()?;
                if models.is_empty() {
                    bail!("COLLOQUY_MODELS names no model; list some, or `*` for any");
                }
                ModelAllowlist::Only(models)
            }
        };
        let max_reply_tokens: u32 = number(get, "COLLOQUY_MAX_REPLY_TOKENS", "4096")?;
        Ok(Self {
            limits: Limits {
                requests_per_minute: number(get, "COLLOQUY_RATE_LIMIT_PER_MINUTE", "600")?,
                replies_at_once: number(get, "COLLOQUY_MAX_REPLIES_PER_PRINCIPAL", "4")?,
                streams_at_once: number(get, "COLLOQUY_MAX_STREAMS_PER_PRINCIPAL", "64")?,
                daily_tokens: number(get, "COLLOQUY_DAILY_TOKENS_PER_PRINCIPAL", "0")?,
            },
            models,
            max_reply_tokens: (max_reply_tokens > 0).then_some(max_reply_tokens),
        })
    }
}

pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

impl Config {
    /// Reads the process environment.
    ///
    /// # Errors
    /// A variable that is set but cannot be understood, named in the message.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads variables through `lookup`, so tests need not touch the process environment.
    ///
    /// # Errors
    /// As [`Config::from_env`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        // An empty variable counts as unset, as in most shells' `VAR= cmd`.
        let get = |name: &str| lookup(name).filter(|value| !value.trim().is_empty());
        let parsed = |name: &str, default: &str| -> anyhow::Result<String> {
            Ok(get(name).unwrap_or_else(|| default.to_owned()))
        };

        let api_key = get("OPENAI_API_KEY").map(ApiKey::new);
        let base_url = get("OPENAI_BASE_URL");
        let llm = match get("COLLOQUY_LLM")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            Some("offline") => LlmChoice::Offline,
            Some("openai") => LlmChoice::OpenAi {
                base_url: base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
                api_key,
            },
            Some(other) => bail!("COLLOQUY_LLM must be `openai` or `offline`, not `{other}`"),
            None if api_key.is_some() || base_url.is_some() => LlmChoice::OpenAi {
                base_url: base_url.unwrap_or_else(|| DEFAULT_BASE_URL.to_owned()),
                api_key,
            },
            None => LlmChoice::Offline,
        };
        let default_model = match (&llm, get("OPENAI_MODEL")) {
            (LlmChoice::Offline, _) => OFFLINE_MODEL.to_owned(),
            (LlmChoice::OpenAi { .. }, Some(model)) => model,
            (LlmChoice::OpenAi { .. }, None) => "gpt-4o-mini".to_owned(),
        };
        let default_model =
            ModelName::parse(&default_model).map_err(|error| anyhow!("OPENAI_MODEL: {error}"))?;

        let tools: Vec<String> = match parsed("COLLOQUY_TOOLS", "current_time,calculator")?.trim() {
            "none" => Vec::new(),
            list => list
                .split(',')
                .map(|tool| tool.trim().to_owned())
                .filter(|tool| !tool.is_empty())
                .collect(),
        };
        let tools =
            ToolRegistry::builtin(&tools).map_err(|error| anyhow!("COLLOQUY_TOOLS: {error}"))?;
        let log_format = match parsed("COLLOQUY_LOG_FORMAT", "text")?
            .to_ascii_lowercase()
            .as_str()
        {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => bail!("COLLOQUY_LOG_FORMAT must be `text` or `json`, not `{other}`"),
        };

        let jwt_secret = get("COLLOQUY_JWT_SECRET").map(Secret);
        let jwt_issuer = get("COLLOQUY_JWT_ISSUER");
        let jwt_audience = get("COLLOQUY_JWT_AUDIENCE");
        let auth = match parsed("COLLOQUY_AUTH", "none")?
            .to_ascii_lowercase()
            .as_str()
        {
            "none" => AuthChoice::None,
            "keys" => AuthChoice::Keys,
            "jwt" => {
                let key = match (&jwt_secret, get("COLLOQUY_JWT_PUBLIC_KEY")) {
                    (Some(secret), None) => JwtKey::Secret(secret.clone()),
                    (None, Some(path)) => JwtKey::PublicKeyPem(
                        std::fs::read_to_string(&path)
                            .with_context(|| format!("COLLOQUY_JWT_PUBLIC_KEY: reading `{path}`"))?,
                    ),
                    (Some(_), Some(_)) => bail!(
                        "COLLOQUY_AUTH=jwt takes COLLOQUY_JWT_SECRET or COLLOQUY_JWT_PUBLIC_KEY, not both"
                    ),
                    (None, None) => bail!(
                        "COLLOQUY_AUTH=jwt needs COLLOQUY_JWT_SECRET (HS256) or COLLOQUY_JWT_PUBLIC_KEY (RS256, ES256)"
                    ),
                };
                AuthChoice::Jwt(JwtSettings {
                    key,
                    issuer: jwt_issuer.clone(),
                    audience: jwt_audience.clone(),
                })
            }
            other => bail!("COLLOQUY_AUTH must be `none`, `keys` or `jwt`, not `{other}`"),
        };
        let limits = LimitSettings::from_lookup(&get, &default_model)?;
        Ok(Self {
            limits,
            auth,
            allow_anonymous: boolean(&get, "COLLOQUY_ALLOW_ANONYMOUS", false)?,
            jwt_secret,
            jwt_issuer,
            jwt_audience,
            stream_token_ttl: seconds(&get, "COLLOQUY_STREAM_TOKEN_SECS", "300")?,
            addr: number(&get, "COLLOQUY_ADDR", "127.0.0.1:8080")?,
            edges: EdgeConfig::read(&get)?,
            replicas: ReplicaConfig::read(&get)?,
            database_url: DatabaseUrl::new(parsed("DATABASE_URL", "colloquy.db")?),
            llm,
            default_model,
            llm_timeout: seconds(&get, "COLLOQUY_LLM_TIMEOUT_SECS", "60")?,
            llm_idle_timeout: seconds(&get, "COLLOQUY_LLM_IDLE_TIMEOUT_SECS", "30")?,
            llm_max_retries: number(&get, "COLLOQUY_LLM_MAX_RETRIES", "3")?,
            max_message_chars: positive(&get, "COLLOQUY_MAX_MESSAGE_CHARS", "32000")?,
            system_prompt: get("COLLOQUY_SYSTEM_PROMPT"),
            context_tokens: positive(&get, "COLLOQUY_CONTEXT_TOKENS", "16000")?,
            tools,
            auto_title: boolean(&get, "COLLOQUY_AUTO_TITLE", true)?,
            shutdown_grace: seconds(&get, "COLLOQUY_SHUTDOWN_GRACE_SECS", "20")?,
            log_format,
            event_log: LogLimits {
                retention: seconds(&get, "COLLOQUY_EVENT_RETENTION_SECS", "600")?,
                max_events: positive(&get, "COLLOQUY_EVENT_LOG_MAX", "10000")?,
                max_bytes: positive(&get, "COLLOQUY_EVENT_LOG_BYTES", "16777216")?,
            },
        })
    }

    /// What the use cases need of this configuration.
    #[must_use]
    pub fn chat_config(&self) -> ChatConfig {
        let mut chat = ChatConfig::with_model(self.default_model.clone());
        chat.max_message_chars = self.max_message_chars;
        chat.context_tokens = self.context_tokens;
        chat.tools = self.tools.clone();
        chat.auto_title = self.auto_title;
        if let Some(prompt) = &self.system_prompt {
            chat.default_system_prompt.clone_from(prompt);
        }
        if self.llm == LlmChoice::Offline {
            chat.reply_model = Some(self.default_model.clone());
        }
        chat.models = self.limits.models.clone();
        chat.max_reply_tokens = self.limits.max_reply_tokens;
        chat.limits = self.limits.limits;
        chat.llm = LlmPolicy {
            first_chunk_timeout: self.llm_timeout,
            idle_timeout: self.llm_idle_timeout,
            max_retries: self.llm_max_retries,
            ..LlmPolicy::default()
        };
        chat
    }
}

fn number<T: FromStr>(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
) -> anyhow::Result<T>
where
    T::Err: fmt::Display,
{
    let raw = get(name).unwrap_or_else(|| default.to_owned());
    raw.trim()
        .parse()
        .map_err(|error| anyhow!("{error}"))
        .with_context(|| format!("{name}=`{raw}` is not valid"))
}

fn positive(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
) -> anyhow::Result<usize> {
    let value: usize = number(get, name, default)?;
    if value == 0 {
        bail!("{name} must be at least 1");
    }
    Ok(value)
}

fn seconds(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: &str,
) -> anyhow::Result<Duration> {
    let value: f64 = number(get, name, default)?;
    Duration::try_from_secs_f64(value)
        .map_err(|_| anyhow!("{name} must be a number of seconds, not `{value}`"))
}

fn boolean(
    get: &impl Fn(&str) -> Option<String>,
    name: &str,
    default: bool,
) -> anyhow::Result<bool> {
    match get(name)
        .map(|raw| raw.trim().to_ascii_lowercase())
        .as_deref()
    {
        None => Ok(default),
        Some("1" | "true" | "yes" | "on") => Ok(true),
        Some("0" | "false" | "no" | "off") => Ok(false),
        Some(other) => bail!("{name} must be true or false, not `{other}`"),
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn without_a_key_or_url_it_runs_offline_with_the_contract_defaults() {
        let config = config(&[]).unwrap();
        assert_eq!(config.llm, LlmChoice::Offline);
        assert_eq!(config.default_model.as_str(), "offline");
        assert_eq!(config.addr, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.database_url.expose(), "colloquy.db");
        assert_eq!(config.llm_timeout, Duration::from_secs(60));
        assert_eq!(config.llm_idle_timeout, Duration::from_secs(30));
        assert_eq!(config.llm_max_retries, 3);
        assert_eq!(config.max_message_chars, 32_000);
        assert_eq!(config.tools.names(), ["current_time", "calculator"]);
        assert_eq!(config.context_tokens, 16_000);
        assert!(config.auto_title);
        let chat = config.chat_config();
        assert_eq!((chat.context_tokens, chat.auto_title), (16_000, true));
        assert_eq!(chat.tools.names(), ["current_time", "calculator"]);
        assert_eq!(config.shutdown_grace, Duration::from_secs(20));
        assert_eq!(
            config.chat_config().reply_model.unwrap().as_str(),
            "offline"
        );
        assert_eq!(config.event_log, LogLimits::default());
        assert_eq!(
            (
                config.event_log.retention,
                config.event_log.max_events,
                config.event_log.max_bytes
            ),
            (Duration::from_secs(600), 10_000, 16 * 1024 * 1024)
        );
    }

    #[test]
    fn anonymous_serving_is_refused_on_a_public_address_unless_allowed() {
        let refused = config(&[("COLLOQUY_ADDR", "0.0.0.0:8080")]).unwrap();
        let error = crate::application::refuse_public_anonymous(&refused).unwrap_err();
        assert!(
            format!("{error}").contains("COLLOQUY_ALLOW_ANONYMOUS"),
            "{error}"
        );
        for allowed in [
            config(&[("COLLOQUY_ADDR", "127.0.0.1:8080")]).unwrap(),
            config(&[("COLLOQUY_ADDR", "[::1]:8080")]).unwrap(),
            config(&[
                ("COLLOQUY_ADDR", "0.0.0.0:8080"),
                ("COLLOQUY_ALLOW_ANONYMOUS", "true"),
            ])
            .unwrap(),
            config(&[("COLLOQUY_ADDR", "0.0.0.0:8080"), ("COLLOQUY_AUTH", "keys")]).unwrap(),
        ] {
            crate::application::refuse_public_anonymous(&allowed).unwrap();
        }
    }

    #[test]
    fn jwt_needs_exactly_one_key_and_never_prints_the_secret() {
        let error = config(&[("COLLOQUY_AUTH", "jwt")]).unwrap_err();
        assert!(
            format!("{error:#}").contains("COLLOQUY_JWT_SECRET"),
            "{error:#}"
        );
        let config = config(&[
            ("COLLOQUY_AUTH", "jwt"),
            ("COLLOQUY_JWT_SECRET", "s3cr3t-value-for-tests"),
            ("COLLOQUY_JWT_AUDIENCE", "colloquy"),
        ])
        .unwrap();
        assert!(matches!(config.auth, AuthChoice::Jwt(_)));
        assert!(!format!("{config:?}").contains("s3cr3t-value-for-tests"));
    }

    #[test]
    fn the_event_log_limits_are_read_and_checked() {
        let limits = config(&[
            ("COLLOQUY_EVENT_RETENTION_SECS", "30"),
            ("COLLOQUY_EVENT_LOG_MAX", "50"),
            ("COLLOQUY_EVENT_LOG_BYTES", "65536"),
        ])
        .unwrap()
        .event_log;
        assert_eq!(
            limits,
            LogLimits {
                retention: Duration::from_secs(30),
                max_events: 50,
                max_bytes: 65_536,
            }
        );
        for (name, bad) in [
            ("COLLOQUY_EVENT_LOG_MAX", "0"),
            ("COLLOQUY_EVENT_LOG_BYTES", "lots"),
            ("COLLOQUY_EVENT_RETENTION_SECS", "-1"),
        ] {
            let error = config(&[(name, bad)]).unwrap_err();
            assert!(format!("{error:#}").contains(name), "{error:#}");
        }
    }

    #[test]
    fn a_database_password_never_shows_in_debug() {
        let postgres = config(&[(
            "DATABASE_URL",
            "postgres://colloquy:pa55w0rd@db.internal:6432/chat?sslmode=disable",
        )])
        .unwrap();
        let shown = format!("{postgres:?}");
        assert!(!shown.contains("pa55w0rd"), "{shown}");
        assert!(
            shown.contains("postgres://colloquy@db.internal:6432/chat"),
            "the server is still named: {shown}"
        );
        assert_eq!(
            postgres.database_url.expose(),
            "postgres://colloquy:pa55w0rd@db.internal:6432/chat?sslmode=disable"
        );
        let sqlite = config(&[("DATABASE_URL", "/var/lib/colloquy/chat.db")]).unwrap();
        assert!(format!("{sqlite:?}").contains("/var/lib/colloquy/chat.db"));
    }

    #[test]
    fn a_key_or_a_base_url_selects_openai() {
        let keyed = config(&[("OPENAI_API_KEY", "sk-secret")]).unwrap();
        assert!(
            matches!(&keyed.llm, LlmChoice::OpenAi { base_url, .. } if base_url == DEFAULT_BASE_URL)
        );
        assert_eq!(keyed.default_model.as_str(), "gpt-4o-mini");
        assert!(
            !format!("{keyed:?}").contains("sk-secret"),
            "the key never shows in Debug"
        );

        let local = config(&[
            ("OPENAI_BASE_URL", "http://127.0.0.1:11434/v1"),
            ("OPENAI_MODEL", "llama3.1"),
        ])
        .unwrap();
        assert!(matches!(local.llm, LlmChoice::OpenAi { api_key: None, .. }));
        assert_eq!(local.default_model.as_str(), "llama3.1");
        assert!(local.chat_config().reply_model.is_none());

        let forced = config(&[("OPENAI_API_KEY", "k"), ("COLLOQUY_LLM", "offline")]).unwrap();
        assert_eq!(forced.llm, LlmChoice::Offline);
    }

    #[test]
    fn bad_values_are_named_in_the_error() {
        for (name, value) in [
            ("COLLOQUY_ADDR", "nowhere"),
            ("COLLOQUY_LLM_MAX_RETRIES", "-1"),
            ("COLLOQUY_MAX_MESSAGE_CHARS", "0"),
            ("COLLOQUY_AUTO_TITLE", "perhaps"),
            ("COLLOQUY_LLM", "magic"),
            ("COLLOQUY_LOG_FORMAT", "xml"),
        ] {
            let error = format!("{:#}", config(&[(name, value)]).unwrap_err());
            assert!(error.contains(name), "{error} should name {name}");
        }
        assert!(config(&[("COLLOQUY_TOOLS", "none")])
            .unwrap()
            .tools
            .is_empty());
        let unknown = format!(
            "{:#}",
            config(&[("COLLOQUY_TOOLS", "calculator, weather")]).unwrap_err()
        );
        assert!(
            unknown.contains("COLLOQUY_TOOLS") && unknown.contains("`weather`"),
            "{unknown}"
        );
        let wired = config(&[
            ("COLLOQUY_TOOLS", "calculator"),
            ("COLLOQUY_CONTEXT_TOKENS", "500"),
            ("COLLOQUY_AUTO_TITLE", "false"),
        ])
        .unwrap()
        .chat_config();
        assert_eq!(wired.tools.names(), ["calculator"]);
        assert_eq!((wired.context_tokens, wired.auto_title), (500, false));
    }

    #[test]
    fn limits_default_to_the_contract_and_zero_turns_them_off() {
        let defaults = config(&[]).unwrap().limits;
        assert_eq!(defaults.limits, Limits::default());
        assert_eq!(defaults.max_reply_tokens, Some(4096));
        assert_eq!(
            defaults.models,
            ModelAllowlist::Only(vec![ModelName::parse("offline").unwrap()])
        );
        let keyed = config(&[("OPENAI_API_KEY", "sk-test"), ("OPENAI_MODEL", "gpt-4.1")])
            .unwrap()
            .limits;
        assert_eq!(
            keyed.models,
            ModelAllowlist::Only(vec![ModelName::parse("gpt-4.1").unwrap()])
        );

        let set = config(&[
            ("COLLOQUY_RATE_LIMIT_PER_MINUTE", "0"),
            ("COLLOQUY_MAX_REPLIES_PER_PRINCIPAL", "1"),
            ("COLLOQUY_MAX_STREAMS_PER_PRINCIPAL", "2"),
            ("COLLOQUY_DAILY_TOKENS_PER_PRINCIPAL", "100000"),
            ("COLLOQUY_MAX_REPLY_TOKENS", "0"),
            ("COLLOQUY_MODELS", " gpt-4o-mini, llama3.1 ,"),
        ])
        .unwrap();
        let chat = set.chat_config();
        assert_eq!(
            chat.limits,
            Limits {
                requests_per_minute: 0,
                replies_at_once: 1,
                streams_at_once: 2,
                daily_tokens: 100_000,
            }
        );
        assert_eq!(chat.max_reply_tokens, None);
        assert!(chat.models.allows(&ModelName::parse("llama3.1").unwrap()));
        assert!(!chat.models.allows(&ModelName::parse("gpt-4o").unwrap()));
        assert_eq!(
            config(&[("COLLOQUY_MODELS", "*")]).unwrap().limits.models,
            ModelAllowlist::Any
        );

        for (name, value) in [
            ("COLLOQUY_RATE_LIMIT_PER_MINUTE", "-1"),
            ("COLLOQUY_MAX_REPLIES_PER_PRINCIPAL", "four"),
            ("COLLOQUY_MAX_STREAMS_PER_PRINCIPAL", "1.5"),
            ("COLLOQUY_DAILY_TOKENS_PER_PRINCIPAL", "lots"),
            ("COLLOQUY_MAX_REPLY_TOKENS", "99999999999"),
            ("COLLOQUY_MODELS", " , "),
        ] {
            let error = format!("{:#}", config(&[(name, value)]).unwrap_err());
            assert!(error.contains(name), "{error} should name {name}");
        }
    }
}
