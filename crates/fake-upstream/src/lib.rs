//! A scriptable fake of OpenAI's Chat Completions API, for tests and
//! benchmarks.
//!
//! [`FakeUpstream::start`] binds `127.0.0.1:0` and serves, on the current
//! tokio runtime, `POST /v1/chat/completions`: streamed (SSE) when the request
//! says `"stream": true`, else one `chat.completion` JSON object. Each request
//! takes the next [`Behaviour`] from a queue ([`FakeUpstream::push`]), or the
//! default one ([`FakeUpstream::set_default`], [`Behaviour::echo`] to begin
//! with) when the queue is empty. Behaviours stream text or tool calls at a
//! chosen pace, answer any status with OpenAI-shaped errors and `Retry-After`
//! headers, and break in every way a real upstream does: dropped connections,
//! streams that end early, corrupt chunks, in-stream errors, stalls.
//!
//! A request's token limit (`max_completion_tokens` or `max_tokens`) is
//! honoured, one token a content chunk: a longer reply stops there and
//! finishes with `length`, as OpenAI's does.
//!
//! Every request is recorded ([`RecordedRequest`]: parsed body, headers,
//! arrival time, connection, outcome) so tests can assert what was sent, how
//! many attempts were made and how long apart.
//!
//! The server speaks HTTP/1.1 itself, on tokio: it writes exactly the bytes a
//! behaviour calls for, a reply with no delay leaves in one write, and it
//! sleeps only when a behaviour asks for a delay.
//!
//! ```
//! use std::time::Duration;
//!
//! use colloquy_fake_upstream::{Behaviour, FakeUpstream, Outcome, ScriptedToolCall};
//!
//! # async fn demo() {
//! let fake = FakeUpstream::start().await;
//! fake.push(Behaviour::status(429).retry_after(2))
//!     .push(Behaviour::text("Hello there, world").pace(Duration::from_millis(5)))
//!     .push(Behaviour::text("Half a rep").drop_after(2))
//!     .push(Behaviour::tool_calls([ScriptedToolCall::new("call_1", "lookup", r#"{"q":"rust"}"#).split(3)]));
//! // Point the client under test at `fake.base_url()` and send requests, then:
//! let requests = fake.requests();
//! assert_eq!(requests[0].header("authorization"), Some("Bearer sk-test"));
//! assert_eq!(requests[1].body["messages"][0]["content"], "Hi");
//! assert!(requests[1].received_at - requests[0].received_at >= Duration::from_secs(2));
//! assert!(fake.wait_until(Duration::from_secs(1), |r| r[2].outcome == Outcome::Served).await);
//! # }
//! ```

mod behaviour;
mod http;
mod record;
mod render;
mod serve;

use std::collections::VecDeque;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use serde_json::Value;
use tokio::net::TcpListener;
use tokio::sync::Notify;
use tokio::task::{AbortHandle, JoinSet};

pub use behaviour::{Behaviour, Reply, ScriptedToolCall, StatusReply};
pub use record::{Outcome, RecordedRequest};

/// A running fake upstream. Dropping it stops the server and closes every
/// connection it holds.
#[derive(Debug)]
pub struct FakeUpstream {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: AbortHandle,
}

impl FakeUpstream {
    /// Starts a fake on `127.0.0.1` and a free port, on the current tokio
    /// runtime (current-thread or multi-thread).
    ///
    /// # Panics
    /// When no port can be bound, or outside a tokio runtime: a test cannot
    /// go on without its upstream.
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(fake) => fake,
            Err(err) => panic!("the fake upstream could not bind a port on 127.0.0.1: {err}"),
        }
    }

    /// Like [`start`](Self::start), returning the bind error instead.
    ///
    /// # Errors
    /// When no port can be bound on `127.0.0.1`.
    pub async fn try_start() -> io::Result<Self> {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                queue: VecDeque::new(),
                default: Arc::new(Behaviour::echo().into()),
                recording: true,
                requests: Vec::new(),
                received: 0,
            }),
            changed: Notify::new(),
        });
        let accept = tokio::spawn(accept_loop(listener, Arc::clone(&shared))).abort_handle();
        Ok(Self {
            addr,
            shared,
            accept,
        })
    }

    /// The base URL an OpenAI client takes: `http://127.0.0.1:PORT/v1`.
    #[must_use]
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The address the fake listens on.
    #[must_use]
    pub const fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Queues a behaviour for the next chat-completions request that finds
    /// the queue empty of earlier ones. Chains.
    pub fn push(&self, behaviour: impl Into<Behaviour>) -> &Self {
        self.shared
            .lock()
            .queue
            .push_back(Arc::new(behaviour.into()));
        self
    }

    /// What requests get once the queue is empty. [`Behaviour::echo`] until
    /// set.
    pub fn set_default(&self, behaviour: impl Into<Behaviour>) {
        self.shared.lock().default = Arc::new(behaviour.into());
    }

    /// How many queued behaviours no request has taken yet.
    #[must_use]
    pub fn queued(&self) -> usize {
        self.shared.lock().queue.len()
    }

    /// Turns the record of requests on (the default) or off. A benchmark turns
    /// it off so that memory stays flat; counting goes on.
    pub fn set_recording(&self, recording: bool) {
        self.shared.lock().recording = recording;
    }

    /// A copy of the record: every request received (on any path), in order
    /// of arrival.
    #[must_use]
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.shared.lock().requests.clone()
    }

    /// How many requests arrived (on any path), recorded or not.
    #[must_use]
    pub fn request_count(&self) -> u64 {
        self.shared.lock().received
    }

    /// Forgets the recorded requests (the count goes on).
    pub fn clear_requests(&self) {
        self.shared.lock().requests.clear();
    }

    /// Waits until `condition` holds for the recorded requests, checking it
    /// again each time a request arrives or finishes. Returns `false` if it
    /// still does not hold after `timeout`.
    pub async fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&[RecordedRequest]) -> bool,
    ) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            // Registered before the check, so a change between the check and
            // the wait still wakes us.
            let mut changed = std::pin::pin!(self.shared.changed.notified());
            changed.as_mut().enable();
            if condition(&self.shared.lock().requests) {
                return true;
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return false;
            }
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        // The accept task owns the connection tasks: aborting it drops them.
        self.accept.abort();
    }
}

/// What the server tasks and the handle share.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
    /// Woken whenever a request arrives or finishes.
    changed: Notify,
}

#[derive(Debug)]
struct State {
    queue: VecDeque<Arc<Behaviour>>,
    default: Arc<Behaviour>,
    recording: bool,
    requests: Vec<RecordedRequest>,
    received: u64,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panicking test thread must not take every later assertion down
        // with it: the state stays consistent between statements.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Records a request and, for a chat completion, takes its behaviour.
    fn admit(
        &self,
        connection: u64,
        request: http::Request,
        body: Value,
        chat: bool,
    ) -> (u64, Option<Arc<Behaviour>>) {
        let mut state = self.lock();
        let seq = state.received;
        state.received += 1;
        let behaviour = chat.then(|| {
            state
                .queue
                .pop_front()
                .unwrap_or_else(|| Arc::clone(&state.default))
        });
        if state.recording {
            state.requests.push(RecordedRequest {
                seq,
                connection,
                method: request.method,
                path: request.path,
                headers: request.headers,
                body,
                received_at: request.received_at,
                outcome: Outcome::InProgress,
            });
        }
        drop(state);
        self.changed.notify_waiters();
        (seq, behaviour)
    }

    fn finish(&self, seq: u64, outcome: Outcome) {
        let mut state = self.lock();
        if let Some(request) = state.requests.iter_mut().rev().find(|r| r.seq == seq) {
            request.outcome = outcome;
        }
        drop(state);
        self.changed.notify_waiters();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    let mut connections = JoinSet::new();
    let mut next_connection = 0_u64;
    loop {
        while connections.try_join_next().is_some() {}
        match listener.accept().await {
            Ok((stream, _)) => {
                connections.spawn(serve::serve_connection(
                    stream,
                    Arc::clone(&shared),
                    next_connection,
                ));
                next_connection += 1;
            }
            // Out of file descriptors, or a connection reset before it was
            // accepted: wait a little rather than spin.
            Err(_) => tokio::time::sleep(Duration::from_millis(5)).await,
        }
    }
}
