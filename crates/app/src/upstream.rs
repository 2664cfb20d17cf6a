//! The one way colloquy asks a model: a streamed request, timed and retried
//! as the contract's policy says. Replies, titles, summaries and
//! `colloquy ask` all come through [`generate`]; they differ only in what
//! they do with the text ([`Sink`]) and in what may stop them ([`Stop`]).
//!
//! The retry budget is a [`RetryBudget`] the caller keeps for as long as the
//! contract counts: a reply keeps one across all its rounds of tool calls.

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use colloquy_ports::{
    ChatChunk, ChatRequest, ChatStream, Completion, LlmClient, LlmError, ReplyClaim, ToolCallDelta,
    ToolCallRequest,
};
use futures::StreamExt;
use tokio::time::{sleep, timeout_at, Instant};
use tokio_util::sync::CancellationToken;

use crate::{telemetry, LlmPolicy};

/// Why a running request was asked to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum StopReason {
    /// A client cancelled it (or deleted its session): it ends `cancelled`.
    Cancelled,
    /// The server is shutting down: it ends `interrupted`.
    Shutdown,
}

/// What may stop a request: a client's cancel (through the reply's claim on
/// its session) and the server shutting down. Either may be absent.
#[derive(Clone, Copy)]
pub(crate) struct Stop<'a> {
    pub(crate) claim: Option<&'a dyn ReplyClaim>,
    pub(crate) shutdown: Option<&'a CancellationToken>,
}

impl Stop<'_> {
    /// Nothing stops it but its own end.
    pub(crate) const NEVER: Stop<'static> = Stop {
        claim: None,
        shutdown: None,
    };

    /// Resolves when the request must stop; a cancel wins over a shutdown
    /// that comes at the same moment.
    pub(crate) async fn requested(&self) -> StopReason {
        let cancelled = async {
            match self.claim {
                Some(claim) => claim.cancelled().await,
                None => std::future::pending().await,
            }
        };
        let shutdown = async {
            match self.shutdown {
                Some(token) => token.cancelled().await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            biased;
            () = cancelled => StopReason::Cancelled,
            () = shutdown => StopReason::Shutdown,
        }
    }
}

/// Retries left for one reply (or one title, summary or `ask`).
#[derive(Debug, Default)]
pub(crate) struct RetryBudget {
    used: u32,
}

/// What a caller does with the text of an attempt as it streams.
pub(crate) trait Sink: Send {
    /// The next piece of text. An error fails the attempt (it is retried
    /// like any other failure of that kind).
    fn delta(&mut self, text: String) -> impl Future<Output = Result<(), LlmError>> + Send;

    /// The attempt that gave some text failed and another follows: whatever
    /// it gave is to be discarded.
    fn reset(&mut self) -> impl Future<Output = ()> + Send;

    /// Text has come since the last call and a flush interval has passed.
    fn flush(&mut self) -> impl Future<Output = ()> + Send {
        async {}
    }
}

/// How one request ended.
pub(crate) enum Attempt {
    Finished(Completion, Vec<ToolCallRequest>),
    Failed(LlmError),
    Stopped(StopReason),
}

/// Sends `request` until it finishes, fails for good, or is stopped,
/// spending retries from `budget`.
pub(crate) async fn generate<S: Sink>(
    llm: &dyn LlmClient,
    policy: &LlmPolicy,
    budget: &mut RetryBudget,
    request: &ChatRequest,
    sink: &mut S,
    stop: Stop<'_>,
    flush_interval: Duration,
) -> Attempt {
    loop {
        let mut gave_text = false;
        let attempt = attempt(
            llm,
            policy,
            request,
            sink,
            stop,
            flush_interval,
            &mut gave_text,
        )
        .await;
        telemetry::attempt_ended(&attempt);
        let error = match attempt {
            Attempt::Failed(error) => error,
            ended => return ended,
        };
        budget.used += 1;
        let Some(wait) = policy.retry_delay(budget.used, &error) else {
            return Attempt::Failed(error);
        };
        telemetry::retrying(&error);
        tracing::info!(%error, retry = budget.used, wait_ms = wait.as_millis(), "retrying the upstream");
        tokio::select! {
            () = sleep(wait) => {}
            reason = stop.requested() => return Attempt::Stopped(reason),
        }
        if gave_text {
            sink.reset().await;
        }
    }
}

async fn attempt<S: Sink>(
    llm: &dyn LlmClient,
    policy: &LlmPolicy,
    request: &ChatRequest,
    sink: &mut S,
    stop: Stop<'_>,
    flush_interval: Duration,
    gave_text: &mut bool,
) -> Attempt {
    let first_chunk_deadline = Instant::now() + policy.first_chunk_timeout;
    let started = tokio::select! {
        started = timeout_at(first_chunk_deadline, llm.stream_chat(request.clone())) => started,
        reason = stop.requested() => return Attempt::Stopped(reason),
    };
    let mut stream: ChatStream = match started {
        Err(_) => return Attempt::Failed(timed_out("no response", policy.first_chunk_timeout)),
        Ok(Err(error)) => return Attempt::Failed(error),
        Ok(Ok(stream)) => stream,
    };

    let mut calls = PendingCalls::default();
    // The silence limit moves with every chunk, but its timer is not
    // re-armed per chunk (a timer-wheel insert and removal per token): it
    // fires at the deadline it was set for, and only then is the real
    // deadline checked and the timer moved to it. Likewise the stop signal
    // is one future for the whole attempt, not a new waiter per chunk.
    let mut deadline = first_chunk_deadline;
    // The deadline the timer is set for: never later than `deadline`'s
    // first value after a chunk (the idle limit may be shorter than the
    // first chunk's), so it only ever fires early, never late.
    let mut armed = deadline;
    let silence = tokio::time::sleep_until(armed);
    tokio::pin!(silence);
    let stop_requested = stop.requested();
    tokio::pin!(stop_requested);
    let mut flush = tokio::time::interval(flush_interval);
    flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    flush.reset();
    let mut unsaved = false;
    loop {
        tokio::select! {
            biased;
            reason = &mut stop_requested => return Attempt::Stopped(reason),
            _ = flush.tick(), if unsaved => {
                sink.flush().await;
                unsaved = false;
            }
            item = stream.next() => {
                let chunk = match item {
                    None => return Attempt::Failed(LlmError::Protocol {
                        message: "the stream ended before the reply was finished".to_owned(),
                    }),
                    Some(Err(error)) => return Attempt::Failed(error),
                    Some(Ok(chunk)) => chunk,
                };
                deadline = Instant::now() + policy.idle_timeout;
                if deadline < armed {
                    armed = deadline;
                    silence.as_mut().reset(armed);
                }
                match chunk {
                    ChatChunk::Delta(text) => {
                        if text.is_empty() {
                            continue;
                        }
                        *gave_text = true;
                        if let Err(error) = sink.delta(text).await {
                            return Attempt::Failed(error);
                        }
                        unsaved = true;
                    }
                    ChatChunk::ToolCall(fragment) => calls.add(fragment),
                    ChatChunk::Finished(completion) => return Attempt::Finished(completion, calls.finish()),
                }
            }
            () = &mut silence => {
                if Instant::now() < deadline {
                    // A chunk came since the timer was set: wait out the rest.
                    armed = deadline;
                    silence.as_mut().reset(armed);
                    continue;
                }
                let (what, limit) = if deadline == first_chunk_deadline {
                    ("no first chunk", policy.first_chunk_timeout)
                } else {
                    ("no next chunk", policy.idle_timeout)
                };
                return Attempt::Failed(timed_out(what, limit));
            }
        }
    }
}

/// Tool-call fragments of one attempt, joined by their index.
#[derive(Default)]
struct PendingCalls {
    by_index: BTreeMap<u32, ToolCallRequest>,
}

impl PendingCalls {
    fn add(&mut self, fragment: ToolCallDelta) {
        let call = self
            .by_index
            .entry(fragment.index)
            .or_insert_with(|| ToolCallRequest {
                id: String::new(),
                name: String::new(),
                arguments: String::new(),
            });
        if let Some(id) = fragment.id.filter(|id| !id.is_empty()) {
            call.id = id;
        }
        if let Some(name) = fragment.name.filter(|name| !name.is_empty()) {
            call.name = name;
        }
        call.arguments.push_str(&fragment.arguments);
    }

    /// The calls in index order. A call the upstream sent without an id gets
    /// one, since its result must name the call it answers.
    fn finish(self) -> Vec<ToolCallRequest> {
        self.by_index
            .into_iter()
            .map(|(index, mut call)| {
                if call.id.is_empty() {
                    call.id = format!("call_{index}");
                }
                call
            })
            .collect()
    }
}

fn timed_out(what: &str, limit: Duration) -> LlmError {
    LlmError::Timeout {
        message: format!("{what} within {} s", limit.as_secs_f64()),
    }
}
