//! The load generator's client: one HTTP request per turn, its event stream
//! read as it arrives by a minimal SSE parser.
//!
//! The same code talks to colloquy and to the fake upstream directly; only
//! the request and the way a delta is found in an event differ, so that
//! "colloquy minus direct" measures the relay and nothing else. colloquy's
//! OpenAI-compatible facade is spoken to exactly as the fake is: one Chat
//! Completions client for both.

use std::borrow::Cow;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context as _};
use futures::StreamExt as _;
use reqwest::header::ACCEPT;
use serde::Deserialize;
use serde_json::json;

/// Where the turns go.
#[derive(Debug, Clone)]
pub enum Target {
    /// colloquy: a session per client, `POST …/messages` with
    /// `Accept: text/event-stream`, `message.delta` events.
    Colloquy { base_url: String },
    /// The fake upstream itself: `POST /v1/chat/completions` with
    /// `"stream": true`, OpenAI chunks.
    Direct { base_url: String },
    /// colloquy's OpenAI-compatible facade (`base_url` ends in `/v1`):
    /// the very request and chunks of `Direct`, to another server.
    Facade { base_url: String },
}

impl Target {
    pub const fn label(&self) -> &'static str {
        match self {
            Self::Colloquy { .. } => "colloquy",
            Self::Direct { .. } => "direct",
            Self::Facade { .. } => "facade",
        }
    }

    /// The OpenAI base URL of a Chat Completions target.
    const fn openai_base_url(&self) -> Option<&String> {
        match self {
            Self::Colloquy { .. } => None,
            Self::Direct { base_url } | Self::Facade { base_url } => Some(base_url),
        }
    }
}

/// One finished exchange of a stateless client's conversation: resent,
/// with every one before it, in each later request.
#[derive(Debug, Clone)]
pub struct Exchange {
    pub prompt: String,
    pub reply: String,
}

/// Where the facade says it recorded a turn (its `X-Colloquy-*` headers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recording {
    pub session: String,
    /// `started`, `continued` or `branched`.
    pub how: String,
    /// The reply's message id.
    pub message: String,
}

impl Recording {
    fn of(headers: &reqwest::header::HeaderMap) -> Option<Self> {
        let header = |name: &str| {
            headers
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(str::to_owned)
        };
        Some(Self {
            session: header("x-colloquy-session")?,
            how: header("x-colloquy-recorded").unwrap_or_default(),
            message: header("x-colloquy-message").unwrap_or_default(),
        })
    }
}

/// What one turn looked like from the client.
#[derive(Debug, Default)]
pub struct Turn {
    /// From sending the request to the first delta.
    pub ttft: Option<Duration>,
    /// Between consecutive deltas, in order.
    pub gaps: Vec<Duration>,
    /// From sending the request to the reply's last event.
    pub total: Duration,
    /// The deltas joined.
    pub text: String,
    /// colloquy only: the content of the final `message.completed`.
    pub final_content: Option<String>,
    /// colloquy only: the reply's message id, from its deltas.
    pub reply_id: Option<String>,
    /// When each delta arrived, in order (watchers are compared with it).
    pub delta_times: Vec<Instant>,
    /// The facade only: where it recorded the turn.
    pub recording: Option<Recording>,
}

/// A benchmark client: one connection pool, reused by every turn.
#[derive(Debug, Clone)]
pub struct Client {
    http: reqwest::Client,
}

impl Client {
    pub fn new() -> anyhow::Result<Self> {
        let http = reqwest::Client::builder()
            // Deltas must leave the kernel when they are written.
            .tcp_nodelay(true)
            .pool_max_idle_per_host(usize::MAX)
            .pool_idle_timeout(Duration::from_secs(600))
            .build()?;
        Ok(Self { http })
    }

    pub const fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Creates a colloquy session and returns its id.
    pub async fn create_session(&self, base_url: &str) -> anyhow::Result<String> {
        #[derive(Deserialize)]
        struct Created {
            id: String,
        }
        let response = self
            .http
            .post(format!("{base_url}/api/v1/sessions"))
            .json(&json!({}))
            .send()
            .await
            .context("creating a session")?;
        if response.status() != reqwest::StatusCode::CREATED {
            bail!("creating a session answered {}", response.status());
        }
        Ok(response.json::<Created>().await?.id)
    }

    /// Sends one message (colloquy: into `session`; a Chat Completions
    /// target: after the `earlier` exchanges) and reads its reply to the end.
    pub async fn turn(
        &self,
        target: &Target,
        session: Option<&str>,
        earlier: &[Exchange],
        prompt: &str,
    ) -> anyhow::Result<Turn> {
        let request = match (target.openai_base_url(), target, session) {
            (Some(base_url), _, _) => self
                .http
                .post(format!("{base_url}/chat/completions"))
                .json(&chat_request(earlier, prompt)),
            (None, Target::Colloquy { base_url }, Some(session)) => self
                .http
                .post(format!("{base_url}/api/v1/sessions/{session}/messages"))
                .json(&json!({ "content": prompt })),
            (None, _, _) => bail!("a colloquy turn needs a session"),
        };
        let started = Instant::now();
        let response = request.header(ACCEPT, "text/event-stream").send().await?;
        if !response.status().is_success() {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            bail!("the send answered {status}: {}", truncate(&body, 200));
        }
        let mut turn = Turn {
            recording: Recording::of(response.headers()),
            ..Turn::default()
        };
        let mut last_delta: Option<Instant> = None;
        let mut parser = SseParser::default();
        let mut body = response.bytes_stream();
        while let Some(bytes) = body.next().await {
            let bytes = bytes.context("reading the event stream")?;
            // Every event in this read arrived now.
            let now = Instant::now();
            parser.feed(&bytes);
            while let Some(event) = parser.next_event() {
                match read_event(target, &event)? {
                    Step::Delta { delta, reply } => {
                        match last_delta {
                            None => turn.ttft = Some(now - started),
                            Some(previous) => turn.gaps.push(now - previous),
                        }
                        last_delta = Some(now);
                        turn.delta_times.push(now);
                        turn.text.push_str(&delta);
                        if turn.reply_id.is_none() {
                            turn.reply_id = reply.map(Cow::into_owned);
                        }
                    }
                    Step::Done(final_content) => {
                        turn.total = now - started;
                        turn.final_content = final_content;
                        return Ok(turn);
                    }
                    Step::Other => {}
                }
            }
        }
        Err(anyhow!("the event stream ended before the reply did"))
    }
}

/// A streamed Chat Completions request: the conversation so far, then
/// `prompt`.
fn chat_request(earlier: &[Exchange], prompt: &str) -> serde_json::Value {
    let mut messages = Vec::with_capacity(earlier.len() * 2 + 1);
    for exchange in earlier {
        messages.push(json!({ "role": "user", "content": exchange.prompt }));
        messages.push(json!({ "role": "assistant", "content": exchange.reply }));
    }
    messages.push(json!({ "role": "user", "content": prompt }));
    json!({
        "model": "fake-model",
        "stream": true,
        "stream_options": { "include_usage": true },
        "messages": messages,
    })
}

fn truncate(text: &str, chars: usize) -> &str {
    text.char_indices()
        .nth(chars)
        .map_or(text, |(end, _)| &text[..end])
}

/// What an event means to a turn.
enum Step<'a> {
    /// The next piece of text, with colloquy's reply id.
    Delta {
        delta: Cow<'a, str>,
        reply: Option<Cow<'a, str>>,
    },
    /// The reply's end, with colloquy's final message content.
    Done(Option<String>),
    Other,
}

/// A `message.delta`'s data.
#[derive(Deserialize)]
pub struct DeltaData<'a> {
    #[serde(borrow)]
    pub message_id: Cow<'a, str>,
    #[serde(borrow)]
    pub delta: Cow<'a, str>,
}

/// The final message of `message.completed` and `message.failed`.
#[derive(Deserialize)]
pub struct FinalMessage {
    pub id: String,
    pub content: String,
    pub status: String,
}

#[derive(Deserialize)]
struct Chunk<'a> {
    #[serde(borrow, default)]
    choices: Option<Vec<Choice<'a>>>,
    /// An error after the stream began (HTTP 200 was already sent).
    #[serde(default)]
    error: Option<serde_json::Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(borrow, default)]
    delta: Option<ChunkDelta<'a>>,
}

#[derive(Deserialize)]
struct ChunkDelta<'a> {
    #[serde(borrow, default)]
    content: Option<Cow<'a, str>>,
}

fn read_event<'a>(target: &Target, event: &Event<'a>) -> anyhow::Result<Step<'a>> {
    match target {
        Target::Colloquy { .. } => match event.name {
            "message.delta" => {
                let data: DeltaData<'a> =
                    serde_json::from_str(event.data).context("a message.delta")?;
                Ok(Step::Delta {
                    delta: data.delta,
                    reply: Some(data.message_id),
                })
            }
            "message.completed" => {
                let message: FinalMessage =
                    serde_json::from_str(event.data).context("a message.completed")?;
                if message.status != "complete" {
                    bail!("the reply ended {}", message.status);
                }
                Ok(Step::Done(Some(message.content)))
            }
            "message.failed" => bail!("the reply failed: {}", event.data),
            "message.reset" => bail!("the reply was reset (the relay retried the upstream)"),
            _ => Ok(Step::Other),
        },
        Target::Direct { .. } | Target::Facade { .. } => {
            if event.data.is_empty() {
                return Ok(Step::Other);
            }
            if event.data == "[DONE]" {
                return Ok(Step::Done(None));
            }
            let chunk: Chunk<'a> = serde_json::from_str(event.data).context("an upstream chunk")?;
            if let Some(error) = chunk.error {
                bail!("the stream ended with an error: {error}");
            }
            let content = chunk
                .choices
                .and_then(|choices| choices.into_iter().next())
                .and_then(|choice| choice.delta)
                .and_then(|delta| delta.content)
                .filter(|content| !content.is_empty());
            Ok(content.map_or(Step::Other, |delta| Step::Delta { delta, reply: None }))
        }
    }
}

/// One server-sent event, borrowing the parser's buffer.
#[derive(Debug)]
pub struct Event<'a> {
    pub name: &'a str,
    pub data: &'a str,
}

/// Splits a byte stream into events at blank lines. Enough of the SSE format
/// for both peers: `event:` and single-line `data:` fields, comments skipped.
#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    /// Where the next unread event starts in `buf`.
    start: usize,
}

impl SseParser {
    pub fn feed(&mut self, bytes: &[u8]) {
        // Drop what was read before growing, so the buffer stays one event long.
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        self.buf.extend_from_slice(bytes);
    }

    pub fn next_event(&mut self) -> Option<Event<'_>> {
        loop {
            let rest = &self.buf[self.start..];
            let end = rest.windows(2).position(|w| w == b"\n\n")?;
            let block = &self.buf[self.start..self.start + end];
            self.start += end + 2;
            let Ok(block) = std::str::from_utf8(block) else {
                continue;
            };
            let mut event = Event {
                name: "message",
                data: "",
            };
            for line in block.lines() {
                if let Some(name) = line.strip_prefix("event:") {
                    event.name = name.trim_start();
                } else if let Some(data) = line.strip_prefix("data:") {
                    event.data = data.strip_prefix(' ').unwrap_or(data);
                }
            }
            // A comment-only block (`: keep-alive`) is no event.
            if block.lines().any(|line| !line.starts_with(':')) {
                return Some(event);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_split_across_reads_are_joined_and_comments_skipped() {
        let mut parser = SseParser::default();
        parser.feed(b": keep-alive\n\nid: 1\nevent: message.delta\ndata: {\"de");
        assert!(parser.next_event().is_none());
        parser.feed(b"lta\":\"a\"}\n\ndata: [DONE]\n\n");
        let first = parser
            .next_event()
            .map(|e| (e.name.to_owned(), e.data.to_owned()));
        assert_eq!(
            first,
            Some(("message.delta".to_owned(), "{\"delta\":\"a\"}".to_owned()))
        );
        let second = parser
            .next_event()
            .map(|e| (e.name.to_owned(), e.data.to_owned()));
        assert_eq!(second, Some(("message".to_owned(), "[DONE]".to_owned())));
        assert!(parser.next_event().is_none());
    }
}
