//! colloquy's built-in offline model.
//!
//! It lets anyone try the whole service — sessions, streaming, history —
//! without an API key or a model server. It does not pretend to think: every
//! reply says plainly that it comes from the offline model and how to connect
//! a real one. Replies are deterministic (the same prompt gives the same
//! words), so tests and demos can rely on them.
//!
//! Asked for a structured answer (a `response_format` with a JSON schema, as
//! titles and summaries are), it answers with JSON that fits the schema,
//! built from the conversation's own words.
//!
//! Each streamed piece counts as one token: a request's `max_tokens` stops
//! the reply after that many, with `finish_reason` `length`, as a real model
//! stops at its token limit. (A structured answer is a single piece.)

mod structured;

use std::time::Duration;

use async_trait::async_trait;
use colloquy_domain::Usage;
use colloquy_ports::{
    ChatChunk, ChatRequest, ChatStream, Completion, LlmClient, LlmError, PromptRole, ResponseFormat,
};
use futures::StreamExt;

/// The model name the offline model's messages carry.
pub const OFFLINE_MODEL: &str = "offline";

/// Streams a short, clearly labelled reply word by word.
#[derive(Debug, Clone)]
pub struct OfflineModel {
    word_delay: Duration,
}

impl OfflineModel {
    /// A pause between words that a person can watch (about 25 words a second).
    pub const HUMAN_PACE: Duration = Duration::from_millis(40);

    /// `word_delay` is the pause before each word; zero streams at full speed.
    #[must_use]
    pub const fn new(word_delay: Duration) -> Self {
        Self { word_delay }
    }

    /// The whole reply to `request`, as the stream will spell it out.
    #[must_use]
    pub fn reply_to(request: &ChatRequest) -> String {
        let asked = request
            .messages
            .iter()
            .rev()
            .find(|message| message.role == PromptRole::User)
            .map_or("", |message| message.content.as_str());
        let mut quoted: String = asked
            .split_whitespace()
            .take(12)
            .collect::<Vec<_>>()
            .join(" ");
        if asked.split_whitespace().count() > 12 {
            quoted.push('…');
        }
        let turn = request
            .messages
            .iter()
            .filter(|m| m.role == PromptRole::User)
            .count();
        format!(
            "[offline model] You said: \"{quoted}\" (message {turn} of this chat). I am colloquy's built-in \
             offline model, so I can only echo you. Set OPENAI_API_KEY to talk to OpenAI, or OPENAI_BASE_URL \
             to use Ollama, vLLM, llama.cpp or LM Studio."
        )
    }
}

impl Default for OfflineModel {
    fn default() -> Self {
        Self::new(Self::HUMAN_PACE)
    }
}

#[async_trait]
impl LlmClient for OfflineModel {
    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        // A structured answer is read by the service, not watched by a
        // person: it comes whole, at once.
        let (reply, delay) = match &request.response_format {
            Some(ResponseFormat::JsonSchema { schema, .. }) => {
                (structured::answer(&request, schema), Duration::ZERO)
            }
            None => (Self::reply_to(&request), self.word_delay),
        };
        // A rough count in the spirit of the real thing: about four characters a token.
        let prompt_chars: usize = request
            .messages
            .iter()
            .map(|m| m.content.chars().count())
            .sum();
        let mut words: Vec<String> = if delay.is_zero() && request.response_format.is_some() {
            vec![reply]
        } else {
            reply.split_inclusive(' ').map(str::to_owned).collect()
        };
        let limit = request.max_tokens.map_or(usize::MAX, |limit| {
            usize::try_from(limit).unwrap_or(usize::MAX)
        });
        let finish_reason = if words.len() > limit {
            words.truncate(limit);
            "length"
        } else {
            "stop"
        };
        let usage = Usage {
            prompt_tokens: (prompt_chars / 4).max(1) as u64,
            completion_tokens: words.len() as u64,
        };
        words.reverse();
        let stream =
            futures::stream::unfold((words, false), move |(mut words, finished)| async move {
                if finished {
                    return None;
                }
                let Some(word) = words.pop() else {
                    let end = Completion {
                        finish_reason: finish_reason.to_owned(),
                        usage: Some(usage),
                    };
                    return Some((Ok(ChatChunk::Finished(end)), (words, true)));
                };
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                Some((Ok(ChatChunk::Delta(word)), (words, false)))
            });
        Ok(stream.boxed())
    }
}

#[cfg(test)]
mod tests {
    use colloquy_ports::PromptMessage;

    use super::*;

    fn request(text: &str) -> ChatRequest {
        ChatRequest::new(
            OFFLINE_MODEL,
            vec![
                PromptMessage::new(PromptRole::System, "be nice"),
                PromptMessage::new(PromptRole::User, text),
            ],
        )
    }

    #[tokio::test]
    async fn streams_a_labelled_deterministic_reply_word_by_word_then_finishes() {
        let model = OfflineModel::new(Duration::ZERO);
        let chunks: Vec<ChatChunk> = model
            .stream_chat(request("hey who are you?"))
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        let (last, words) = chunks.split_last().unwrap();
        let text: String = words
            .iter()
            .map(|chunk| match chunk {
                ChatChunk::Delta(word) => word.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(text, OfflineModel::reply_to(&request("hey who are you?")));
        assert!(text.starts_with("[offline model] You said: \"hey who are you?\""));
        assert!(words.len() > 10, "one chunk per word");
        let ChatChunk::Finished(end) = last else {
            panic!("must finish")
        };
        assert_eq!(end.finish_reason, "stop");
        assert_eq!(end.usage.unwrap().completion_tokens, words.len() as u64);
    }

    #[tokio::test]
    async fn stops_at_the_token_limit_and_finishes_with_length() {
        let model = OfflineModel::new(Duration::ZERO);
        let whole = OfflineModel::reply_to(&request("hi"));
        let mut limited = request("hi");
        limited.max_tokens = Some(5);

        let chunks: Vec<ChatChunk> = model
            .stream_chat(limited)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;

        let (last, words) = chunks.split_last().unwrap();
        let text: String = words
            .iter()
            .map(|chunk| match chunk {
                ChatChunk::Delta(word) => word.as_str(),
                other => panic!("unexpected {other:?}"),
            })
            .collect();
        assert_eq!(words.len(), 5);
        assert_eq!(text, "[offline model] You said: \"hi\" ");
        assert!(whole.starts_with(&text));
        let ChatChunk::Finished(end) = last else {
            panic!("must finish")
        };
        assert_eq!(end.finish_reason, "length");
        assert_eq!(end.usage.unwrap().completion_tokens, 5);

        // A limit the reply fits in changes nothing.
        let mut roomy = request("hi");
        roomy.max_tokens = Some(10_000);
        let chunks: Vec<ChatChunk> = model
            .stream_chat(roomy)
            .await
            .unwrap()
            .map(Result::unwrap)
            .collect()
            .await;
        let Some(ChatChunk::Finished(end)) = chunks.last() else {
            panic!("must finish")
        };
        assert_eq!(end.finish_reason, "stop");
        assert_eq!(chunks.len() - 1, whole.split_inclusive(' ').count());
    }

    #[tokio::test]
    async fn paces_words_when_asked() {
        let model = OfflineModel::new(Duration::from_millis(5));
        let started = std::time::Instant::now();
        let count = model
            .stream_chat(request("hi"))
            .await
            .unwrap()
            .count()
            .await;
        assert!(started.elapsed() >= Duration::from_millis(5 * (count as u64 - 1)));
    }
}
