//! The scripts the fake plays, one per request.

use std::time::Duration;

use serde_json::Value;

/// What the fake does with one `POST /v1/chat/completions`.
///
/// Build one with the constructors below and the builder methods of
/// [`Reply`] and [`StatusReply`]; everything converts into a `Behaviour`, so
/// [`FakeUpstream::push`](crate::FakeUpstream::push) takes either.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// A `200` reply: streamed as SSE when the request says `"stream": true`,
    /// else one `chat.completion` JSON object. May carry one scripted fault.
    Reply(Reply),
    /// A canned answer with any status (an OpenAI-shaped error by default).
    Status(StatusReply),
    /// Close the connection as soon as the request is read, without a single
    /// byte of answer: what a crashing or restarting upstream looks like.
    Hangup,
}

impl Behaviour {
    /// A reply whose text is `"Echo: "` followed by the content of the
    /// request's last `user` message, streamed one word per chunk.
    #[must_use]
    pub fn echo() -> Reply {
        Reply::new(Content::Echo)
    }

    /// A reply with the given text, streamed one word per chunk (each chunk a
    /// word and the whitespace after it) unless [`Reply::split`] says otherwise.
    #[must_use]
    pub fn text(text: impl Into<String>) -> Reply {
        Reply::new(Content::Text(text.into()))
    }

    /// A reply streamed exactly as these chunks (empty ones included).
    #[must_use]
    pub fn chunks<I, S>(chunks: I) -> Reply
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        Reply::new(Content::Chunks(
            chunks.into_iter().map(Into::into).collect(),
        ))
    }

    /// A reply whose text is this JSON value, serialized compactly: what a
    /// model answering a `response_format` request sends back. Streamed as one
    /// chunk unless [`Reply::split`] says otherwise.
    #[must_use]
    pub fn json(value: &Value) -> Reply {
        Reply::new(Content::Text(value.to_string())).split(1)
    }

    /// A reply with no text that calls these tools, finishing with
    /// `tool_calls`.
    #[must_use]
    pub fn tool_calls(calls: impl IntoIterator<Item = ScriptedToolCall>) -> Reply {
        let mut reply = Reply::new(Content::Text(String::new()));
        reply.tool_calls = calls.into_iter().collect();
        reply
    }

    /// An answer with this HTTP status and an OpenAI-shaped error body:
    /// `{"error": {"message", "type", "param": null, "code"}}`.
    ///
    /// Defaults by status: `429` has type `requests` and code
    /// `rate_limit_exceeded`; `5xx` has type `server_error`; anything else has
    /// type `invalid_request_error`. The message names the status.
    #[must_use]
    pub fn status(status: u16) -> StatusReply {
        StatusReply::new(status)
    }
}

impl From<Reply> for Behaviour {
    fn from(reply: Reply) -> Self {
        Self::Reply(reply)
    }
}

impl From<StatusReply> for Behaviour {
    fn from(reply: StatusReply) -> Self {
        Self::Status(reply)
    }
}

/// Where a reply's text comes from.
#[derive(Debug, Clone)]
pub(crate) enum Content {
    Echo,
    Text(String),
    Chunks(Vec<String>),
}

/// How a reply's text is cut into chunks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Chunking {
    /// One word and its trailing whitespace per chunk.
    Words,
    /// This many chunks of (nearly) equal length in characters.
    Count(usize),
}

/// What goes wrong in a reply, counted in content chunks (text chunks and
/// tool-call fragments; the `role` chunk rides with the first of them).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Fault {
    DropAfter(usize),
    StallAfter(usize),
    MalformedAfter(usize),
    ErrorAfter(usize, Value),
    EndWithoutFinish,
}

impl Fault {
    /// After how many content chunks this fault strikes, if it is one that
    /// strikes mid-stream.
    pub(crate) const fn after(&self) -> Option<usize> {
        match self {
            Self::DropAfter(k)
            | Self::StallAfter(k)
            | Self::MalformedAfter(k)
            | Self::ErrorAfter(k, _) => Some(*k),
            Self::EndWithoutFinish => None,
        }
    }
}

/// A `200` reply, streamed or not as the request asks, with its timing and at
/// most one fault (the last fault method called wins).
///
/// A streamed reply sends, in order: the response headers (after
/// [`headers_delay`](Self::headers_delay)); after
/// [`first_chunk_delay`](Self::first_chunk_delay), a chunk with
/// `delta.role = "assistant"` and `delta.content = ""` together with the first
/// content chunk; the other content chunks, each [`pace`](Self::pace) after
/// the previous one (text chunks first, then tool-call fragments); a chunk
/// with `finish_reason` and an empty delta; when the request set
/// `stream_options.include_usage`, a chunk with `choices: []` and the usage;
/// then `data: [DONE]`. With no delay and no pace, the whole response goes
/// out in a single write.
///
/// Usage is deterministic: `prompt_tokens` is the number of characters in the
/// request's message contents divided by 4 (rounded down), and
/// `completion_tokens` is the number of content chunks sent.
///
/// A request's token limit (`max_completion_tokens` or `max_tokens`, the
/// smaller when both are set) counts content chunks too: a reply with more
/// stops after that many, streamed or not, and finishes with `length`
/// whatever its scripted reason, as OpenAI does. A fault set after more
/// chunks than are sent strikes after the last one.
#[derive(Debug, Clone)]
pub struct Reply {
    pub(crate) content: Content,
    pub(crate) chunking: Chunking,
    pub(crate) tool_calls: Vec<ScriptedToolCall>,
    pub(crate) finish_reason: Option<String>,
    pub(crate) headers_delay: Duration,
    pub(crate) first_chunk_delay: Duration,
    pub(crate) pace: Duration,
    pub(crate) fault: Option<Fault>,
    pub(crate) omit_usage: bool,
    pub(crate) omit_done: bool,
}

impl Reply {
    const fn new(content: Content) -> Self {
        Self {
            content,
            chunking: Chunking::Words,
            tool_calls: Vec::new(),
            finish_reason: None,
            headers_delay: Duration::ZERO,
            first_chunk_delay: Duration::ZERO,
            pace: Duration::ZERO,
            fault: None,
            omit_usage: false,
            omit_done: false,
        }
    }

    /// Cuts the text into `chunks` pieces of (nearly) equal length in
    /// characters, or one per character if the text is shorter. A list given
    /// to [`Behaviour::chunks`] is joined and cut again.
    #[must_use]
    pub fn split(mut self, chunks: usize) -> Self {
        if let Content::Chunks(list) = &self.content {
            self.content = Content::Text(list.concat());
        }
        self.chunking = Chunking::Count(chunks.max(1));
        self
    }

    /// Adds a tool call after the text.
    #[must_use]
    pub fn tool_call(mut self, call: ScriptedToolCall) -> Self {
        self.tool_calls.push(call);
        self
    }

    /// The `finish_reason` sent at the end. Defaults to `tool_calls` when the
    /// reply calls tools, else `stop`.
    #[must_use]
    pub fn finish_reason(mut self, reason: impl Into<String>) -> Self {
        self.finish_reason = Some(reason.into());
        self
    }

    /// Waits this long before sending the response headers (or, for a
    /// non-streaming request, the whole answer).
    #[must_use]
    pub const fn headers_delay(mut self, delay: Duration) -> Self {
        self.headers_delay = delay;
        self
    }

    /// Waits this long between the headers and the first chunk.
    #[must_use]
    pub const fn first_chunk_delay(mut self, delay: Duration) -> Self {
        self.first_chunk_delay = delay;
        self
    }

    /// Waits this long before each content chunk after the first.
    #[must_use]
    pub const fn pace(mut self, delay: Duration) -> Self {
        self.pace = delay;
        self
    }

    /// Closes the connection abruptly after `chunks` content chunks (`0`:
    /// right after the headers): no finish chunk, no `[DONE]`, not even the
    /// end of the chunked body. A non-streaming request gets no answer.
    #[must_use]
    pub fn drop_after(mut self, chunks: usize) -> Self {
        self.fault = Some(Fault::DropAfter(chunks));
        self
    }

    /// Sends nothing more after `chunks` content chunks (`0`: right after the
    /// headers) and keeps the connection open until the client closes it. A
    /// non-streaming request gets no answer at all.
    #[must_use]
    pub fn stall_after(mut self, chunks: usize) -> Self {
        self.fault = Some(Fault::StallAfter(chunks));
        self
    }

    /// Sends a `data:` line that is not JSON after `chunks` content chunks,
    /// then goes on with the rest of the reply as if nothing happened, so a
    /// client that skipped the bad line would see a complete reply. A
    /// non-streaming request gets a `200` whose body is not JSON.
    #[must_use]
    pub fn malformed_after(mut self, chunks: usize) -> Self {
        self.fault = Some(Fault::MalformedAfter(chunks));
        self
    }

    /// Sends `data: {"error": {"message": message, "type": "server_error",
    /// "param": null, "code": null}}` after `chunks` content chunks, then ends
    /// the body cleanly without `[DONE]` (as OpenAI does). A non-streaming
    /// request gets that object as a `200` body.
    #[must_use]
    pub fn error_after(self, chunks: usize, message: impl Into<String>) -> Self {
        let error = serde_json::json!({
            "error": {"message": message.into(), "type": "server_error", "param": null, "code": null}
        });
        self.error_object_after(chunks, error)
    }

    /// Like [`error_after`](Self::error_after) with the whole `data:` object
    /// given, to script e.g. an in-stream rate-limit error.
    #[must_use]
    pub fn error_object_after(mut self, chunks: usize, object: Value) -> Self {
        self.fault = Some(Fault::ErrorAfter(chunks, object));
        self
    }

    /// Sends every content chunk, then ends the body cleanly with no
    /// `finish_reason`, no usage chunk and no `[DONE]`. A non-streaming request
    /// gets a completion whose `finish_reason` is `null`.
    #[must_use]
    pub fn end_without_finish(mut self) -> Self {
        self.fault = Some(Fault::EndWithoutFinish);
        self
    }

    /// Leaves out the usage chunk even when the request asked for it.
    #[must_use]
    pub const fn omit_usage(mut self) -> Self {
        self.omit_usage = true;
        self
    }

    /// Leaves out the final `data: [DONE]`; the body still ends cleanly.
    #[must_use]
    pub const fn omit_done(mut self) -> Self {
        self.omit_done = true;
        self
    }
}

/// A tool call a scripted reply makes.
///
/// It streams as `arguments` cut into [`split`](Self::split) fragments of
/// `delta.tool_calls[{index, ...}]`, `index` being its position among the
/// reply's tool calls: the first fragment carries `id`, `type: "function"`
/// and `function.name`, the others only `index` and `function.arguments`.
#[derive(Debug, Clone)]
pub struct ScriptedToolCall {
    pub(crate) id: String,
    pub(crate) name: String,
    pub(crate) arguments: String,
    pub(crate) fragments: usize,
}

impl ScriptedToolCall {
    /// A call with its arguments (JSON text) in one fragment.
    #[must_use]
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: impl Into<String>,
    ) -> Self {
        Self {
            id: id.into(),
            name: name.into(),
            arguments: arguments.into(),
            fragments: 1,
        }
    }

    /// Cuts the arguments into this many fragments (at most one per
    /// character; always at least one).
    #[must_use]
    pub fn split(mut self, fragments: usize) -> Self {
        self.fragments = fragments.max(1);
        self
    }
}

/// A canned HTTP answer: any status, headers and body, after an optional
/// delay. Keeps the connection open for the next request.
#[derive(Debug, Clone)]
pub struct StatusReply {
    pub(crate) status: u16,
    pub(crate) message: String,
    pub(crate) error_type: String,
    pub(crate) code: Option<String>,
    pub(crate) headers: Vec<(String, String)>,
    /// A raw body and its content type, replacing the error object.
    pub(crate) raw_body: Option<(String, String)>,
    pub(crate) delay: Duration,
}

impl StatusReply {
    fn new(status: u16) -> Self {
        let (error_type, code) = match status {
            429 => ("requests", Some("rate_limit_exceeded")),
            500..=599 => ("server_error", None),
            _ => ("invalid_request_error", None),
        };
        Self {
            status,
            message: format!("fake upstream answered {status}"),
            error_type: error_type.to_owned(),
            code: code.map(str::to_owned),
            headers: Vec::new(),
            raw_body: None,
            delay: Duration::ZERO,
        }
    }

    /// The body's `error.message`.
    #[must_use]
    pub fn message(mut self, message: impl Into<String>) -> Self {
        self.message = message.into();
        self
    }

    /// The body's `error.type`.
    #[must_use]
    pub fn error_type(mut self, error_type: impl Into<String>) -> Self {
        self.error_type = error_type.into();
        self
    }

    /// The body's `error.code`.
    #[must_use]
    pub fn code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    /// Adds a response header, sent exactly as given.
    #[must_use]
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Adds `Retry-After: <seconds>`. For an HTTP date, use
    /// [`header`](Self::header).
    #[must_use]
    pub fn retry_after(self, seconds: u64) -> Self {
        self.header("retry-after", seconds.to_string())
    }

    /// Adds OpenAI's `retry-after-ms: <milliseconds>`.
    #[must_use]
    pub fn retry_after_ms(self, milliseconds: u64) -> Self {
        self.header("retry-after-ms", milliseconds.to_string())
    }

    /// Sends this body with this content type instead of the error object
    /// (an HTML page from a proxy, a `200` that is not an event stream…).
    #[must_use]
    pub fn body(mut self, content_type: impl Into<String>, body: impl Into<String>) -> Self {
        self.raw_body = Some((content_type.into(), body.into()));
        self
    }

    /// Waits this long before answering.
    #[must_use]
    pub const fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}
