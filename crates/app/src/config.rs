use std::time::Duration;

use colloquy_domain::ModelName;

/// How the core talks to a model: timeouts and the retry policy of the contract.
#[derive(Debug, Clone)]
pub struct LlmPolicy {
    /// Longest wait for the response headers and the first chunk.
    pub first_chunk_timeout: Duration,
    /// Longest gap between two chunks of a stream.
    pub idle_timeout: Duration,
    /// Retries of a failed upstream request, per reply.
    pub max_retries: u32,
    /// First backoff when the upstream gave no `Retry-After`; doubles each retry.
    pub backoff_base: Duration,
    /// Largest backoff between two attempts.
    pub backoff_max: Duration,
    /// A `Retry-After` longer than this is not waited for: the reply fails now
    /// rather than keep a user staring at nothing.
    pub max_retry_after: Duration,
}

impl Default for LlmPolicy {
    fn default() -> Self {
        // The official OpenAI SDKs back off from 0.5 s to 8 s and honour a
        // Retry-After of up to a minute; those are sane defaults for a relay.
        Self {
            first_chunk_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(30),
            max_retries: 3,
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(8),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

/// Everything the use cases need to know from the configuration.
#[derive(Debug, Clone)]
pub struct ChatConfig {
    /// Longest user message accepted, in characters.
    pub max_message_chars: usize,
    /// Model of sessions created without one.
    pub default_model: ModelName,
    /// System prompt of sessions that set none.
    pub default_system_prompt: String,
    /// How many of the most recent messages a reply may see as context.
    pub history_limit: usize,
    /// How often a streaming reply's text is written to the store, so that a
    /// crash loses at most this much of it.
    pub flush_interval: Duration,
    /// How long a session's latest reply stays resumable after it ended.
    pub event_retention: Duration,
    pub llm: LlmPolicy,
}

/// The system prompt sessions get when neither they nor the operator set one.
pub const DEFAULT_SYSTEM_PROMPT: &str = "You are colloquy, a helpful, honest and concise assistant. \
Answer in the language the user writes in. Use Markdown when it helps: short paragraphs, lists for \
steps, fenced code blocks with a language tag for code. Say so plainly when you do not know something \
rather than guessing. When a tool can give an exact answer (the current time, arithmetic), use it \
instead of estimating.";

impl ChatConfig {
    /// The contract's defaults, with `default_model` as the model of new sessions.
    #[must_use]
    pub fn with_model(default_model: ModelName) -> Self {
        Self {
            max_message_chars: 32_000,
            default_model,
            default_system_prompt: DEFAULT_SYSTEM_PROMPT.to_owned(),
            history_limit: 200,
            flush_interval: Duration::from_secs(1),
            event_retention: Duration::from_secs(600),
            llm: LlmPolicy::default(),
        }
    }
}
