//! Which request field carries a reply's token limit.
//!
//! No one field works with every server that speaks Chat Completions:
//!
//! - OpenAI deprecated `max_tokens` for `max_completion_tokens`. Its
//!   reasoning models (the o-series, gpt-5) refuse `max_tokens` with a `400`
//!   (`unsupported_parameter`), and every model refuses a request carrying
//!   both (`invalid_parameter_combination`). OpenAI must get
//!   `max_completion_tokens`, alone.
//! - Ollama's OpenAI layer reads `max_tokens` only, and silently ignores
//!   `max_completion_tokens` (ollama/ollama#7125, still open): a reply
//!   would run on, unlimited, to the end of the context.
//! - LM Studio documents `max_tokens` only.
//! - llama.cpp's server reads `max_completion_tokens` only since early 2026
//!   (ggml-org/llama.cpp#19831); older builds ignore it just as silently.
//! - vLLM reads both.
//!
//! So the rule is by host: OpenAI's own API (and Azure OpenAI, which follows
//! it here) gets `max_completion_tokens`; every other server gets
//! `max_tokens`, the field all of them have always read. A gateway that
//! forwards to OpenAI under a host name of its own sets the field explicitly
//! ([`OpenAiConfig::token_limit_field`](crate::OpenAiConfig::token_limit_field)).

use reqwest::Url;

/// The request field that carries [`ChatRequest::max_tokens`](colloquy_ports::ChatRequest::max_tokens).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLimitField {
    /// `max_tokens`: what Ollama, vLLM, llama.cpp and LM Studio read.
    MaxTokens,
    /// `max_completion_tokens`: what OpenAI's own API reads, and all its
    /// reasoning models accept.
    MaxCompletionTokens,
}

impl TokenLimitField {
    /// The field an upstream at `endpoint` reads (see the module docs).
    pub(crate) fn for_endpoint(endpoint: &Url) -> Self {
        match endpoint.host_str() {
            Some(host) if host == "api.openai.com" || host.ends_with(".openai.azure.com") => {
                Self::MaxCompletionTokens
            }
            _ => Self::MaxTokens,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(url: &str) -> TokenLimitField {
        TokenLimitField::for_endpoint(&Url::parse(url).unwrap())
    }

    #[test]
    fn openai_gets_max_completion_tokens_and_everything_else_max_tokens() {
        for openai in [
            "https://api.openai.com/v1/chat/completions",
            "https://API.OpenAI.com/v1/chat/completions",
            "https://my-team.openai.azure.com/openai/v1/chat/completions",
        ] {
            assert_eq!(
                field(openai),
                TokenLimitField::MaxCompletionTokens,
                "{openai}"
            );
        }
        for compatible in [
            "http://localhost:11434/v1/chat/completions",
            "http://127.0.0.1:8000/v1/chat/completions",
            "http://llama.internal:8080/v1/chat/completions",
            "http://192.168.1.20:1234/v1/chat/completions",
            // Look-alike hosts are not OpenAI.
            "https://api.openai.com.example.net/v1/chat/completions",
            "https://notapi.openai.com.evil/v1/chat/completions",
        ] {
            assert_eq!(
                field(compatible),
                TokenLimitField::MaxTokens,
                "{compatible}"
            );
        }
    }
}
