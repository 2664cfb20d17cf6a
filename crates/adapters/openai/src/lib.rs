//! [`LlmClient`] for OpenAI's Chat Completions API and every server that
//! speaks it (vLLM, llama.cpp, Ollama, LiteLLM…).
//!
//! One call to [`LlmClient::stream_chat`] is one HTTP request: a streamed
//! `POST {base_url}/chat/completions` asking for usage at the end. The call
//! returns once the response headers are in; failures up to then come back
//! as the call's error, later ones as the stream's last item. Retrying is the
//! core's business, so nothing here retries, and reqwest-eventsource's own
//! reconnection is switched off.
//!
//! A request's token limit ([`ChatRequest::max_tokens`]) goes as
//! `max_completion_tokens` to OpenAI's own API and as `max_tokens` to every
//! other server, since neither field is read by all of them
//! ([`TokenLimitField`] says which reads what).
//!
//! A stream counts as finished only when the upstream said how it ended: a
//! `finish_reason` followed by `data: [DONE]`, or, for servers that leave
//! `[DONE]` out, a `finish_reason` and the usage chunk followed by a clean end
//! of the body. Anything less — a dropped connection, a body that just ends,
//! a chunk that is not JSON, an `error` object — is an error, never a reply.
//!
//! Error text reaches clients (a failed reply keeps it), so every error
//! leaves this adapter with URLs and the key taken out (`scrub`).
//!
//! ```no_run
//! use colloquy_openai::{ApiKey, OpenAiClient, OpenAiConfig};
//!
//! let client = OpenAiClient::new(OpenAiConfig {
//!     api_key: Some(ApiKey::new("sk-…")),
//!     ..OpenAiConfig::default()
//! })?;
//! # Ok::<(), colloquy_openai::ConfigError>(())
//! ```

mod decode;
mod errors;
mod pool;
mod scrub;
mod stream;
mod token_limit;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use colloquy_ports::{ChatRequest, ChatStream, LlmClient, LlmError};
use futures::StreamExt as _;
use reqwest::header::{HeaderValue, AUTHORIZATION};
use reqwest::Url;
use reqwest_eventsource::retry::Never;
use reqwest_eventsource::{Event, EventSource};

use crate::pool::ThreadPools;
use crate::scrub::scrub;
use crate::stream::ChunkStream;
use crate::wire::RequestBody;

pub use crate::token_limit::TokenLimitField;

/// OpenAI's own endpoint.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// How an [`OpenAiClient`] reaches its upstream.
#[derive(Debug, Clone)]
pub struct OpenAiConfig {
    /// The API root, version included: requests go to
    /// `{base_url}/chat/completions`. A trailing `/` does not matter.
    pub base_url: String,
    /// Sent as `Authorization: Bearer …` when set; local servers often need
    /// none.
    pub api_key: Option<ApiKey>,
    /// The longest wait for a TCP (and TLS) connection. There is no overall
    /// request timeout: replies stream for minutes, and the core applies its
    /// own first-chunk and idle timeouts.
    pub connect_timeout: Duration,
    /// The request field that carries a reply's token limit. `None` (the
    /// default) picks it from the base URL's host: `max_completion_tokens`
    /// for OpenAI's own API, `max_tokens` for every other server (the
    /// reasons are in [`TokenLimitField`]'s module).
    pub token_limit_field: Option<TokenLimitField>,
}

impl Default for OpenAiConfig {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            api_key: None,
            connect_timeout: Duration::from_secs(10),
            token_limit_field: None,
        }
    }
}

/// An API key. Its `Debug` prints `[redacted]`, so a config can be logged
/// whole.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    #[must_use]
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }

    /// The key itself, for the one place that sends it.
    #[must_use]
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

/// Why an [`OpenAiClient`] could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("the base URL {url:?} is not a valid http or https URL: {reason}")]
    BaseUrl { url: String, reason: String },
    #[error(
        "the API key cannot be sent in an HTTP header: it holds characters a header cannot carry"
    )]
    ApiKey,
    #[error("the HTTP client could not be built")]
    Client(#[source] reqwest::Error),
}

/// A client of the Chat Completions API. Cheap to clone: clones share the
/// connection pools (one per thread, see `pool.rs`).
#[derive(Clone)]
pub struct OpenAiClient {
    http: Arc<ThreadPools>,
    endpoint: Url,
    /// `Bearer …`, marked sensitive so that reqwest never prints it.
    authorization: Option<HeaderValue>,
    /// The key, to take out of error text should an upstream echo it.
    secret: Option<Arc<str>>,
    token_limit_field: TokenLimitField,
}

impl fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OpenAiClient")
            .field("endpoint", &self.endpoint.as_str())
            .field(
                "api_key",
                &self.authorization.as_ref().map(|_| "[redacted]"),
            )
            .field("token_limit_field", &self.token_limit_field)
            .finish_non_exhaustive()
    }
}

impl OpenAiClient {
    /// Builds the client and its first connection pool.
    ///
    /// # Errors
    /// A [`ConfigError`] when the base URL is not an http(s) URL, the key
    /// cannot go in a header, or the TLS backend fails to start.
    pub fn new(config: OpenAiConfig) -> Result<Self, ConfigError> {
        let bad_url = |reason: String| ConfigError::BaseUrl {
            url: config.base_url.clone(),
            reason,
        };
        let endpoint = Url::parse(&format!(
            "{}/chat/completions",
            config.base_url.trim_end_matches('/')
        ))
        .map_err(|err| bad_url(err.to_string()))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(bad_url(format!("the scheme is {:?}", endpoint.scheme())));
        }
        let authorization = match &config.api_key {
            Some(key) => {
                let mut value = HeaderValue::from_str(&format!("Bearer {}", key.expose()))
                    .map_err(|_| ConfigError::ApiKey)?;
                value.set_sensitive(true);
                Some(value)
            }
            None => None,
        };
        let http = ThreadPools::new(config.connect_timeout).map_err(ConfigError::Client)?;
        let token_limit_field = config
            .token_limit_field
            .unwrap_or_else(|| TokenLimitField::for_endpoint(&endpoint));
        Ok(Self {
            http: Arc::new(http),
            endpoint,
            authorization,
            secret: config.api_key.as_ref().map(|key| Arc::from(key.expose())),
            token_limit_field,
        })
    }
}

#[async_trait]
impl LlmClient for OpenAiClient {
    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        let body = RequestBody::new(&request, self.token_limit_field)?;
        let mut builder = self.http.get().post(self.endpoint.clone()).json(&body);
        if let Some(authorization) = &self.authorization {
            builder = builder.header(AUTHORIZATION, authorization.clone());
        }
        let mut source = EventSource::new(builder).map_err(|err| LlmError::Internal {
            message: format!("the request could not be prepared: {err}"),
        })?;
        // Its default policy re-sends the request after any error or end of
        // stream: a second paid completion nobody asked for, and a retry
        // the core's policy would not know about.
        source.set_retry_policy(Box::new(Never));
        let error = match source.next().await {
            Some(Ok(Event::Open)) => {
                let secret = self.secret.clone();
                let chunks = ChunkStream::new(source).map(move |item| {
                    item.map_err(|error| error.map_message(|text| scrub(&text, secret.as_deref())))
                });
                return Ok(Box::pin(chunks));
            }
            Some(Ok(Event::Message(_))) => LlmError::Protocol {
                message: "an event arrived before the response was open".to_owned(),
            },
            Some(Err(err)) => errors::before_open(err).await,
            None => LlmError::Protocol {
                message: "the upstream closed before answering".to_owned(),
            },
        };
        let error = error.map_message(|text| scrub(&text, self.secret.as_deref()));
        tracing::debug!(%error, model = %request.model, "the upstream refused the request");
        Err(error)
    }
}
