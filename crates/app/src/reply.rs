//! Driving one reply from the first request to the stored final message.
//!
//! The driver owns the assistant message while it streams. It asks the model,
//! relays every delta to the session's channel, writes the text so far to the
//! store at most every `flush_interval` (never per token), retries what the
//! contract says is retryable, and ends with exactly one final event whose
//! message is the one stored.
//!
//! When the model calls tools, the driver runs them (see [`crate::tools`]),
//! records each call in the message and publishes it, sends the results back
//! and asks again: at most [`MAX_TOOL_ROUNDS`] rounds of tool calls, then one
//! last request that offers no tools, so the model has to answer in words.
//! However many rounds it takes, the user's message gets one assistant
//! message, holding the text of every round and every call in order.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use colloquy_domain::{ErrorCode, Message, MessageError, MessageStatus, ToolCall, Usage};
use colloquy_ports::{
    ChatChunk, ChatRepository, ChatRequest, ChatStream, Completion, LlmClient, LlmError,
    PromptMessage, PromptRole, RepoError, ToolCallRequest,
};
use futures::StreamExt;
use tokio::time::{sleep, timeout_at, Instant};

use crate::events::{Channel, EventKind, ReplyControl, StopReason};
use crate::titles::{TitleJob, Titler};
use crate::tools::{reply_to_model, ToolRegistry};
use crate::{telemetry, LlmPolicy};

/// Rounds of tool calls a reply may make before it must answer in words.
pub const MAX_TOOL_ROUNDS: usize = 4;

/// How one attempt at the upstream ended.
pub(crate) enum Attempt {
    Finished(Completion, Vec<ToolCallRequest>),
    Failed(LlmError),
    Stopped(StopReason),
}

/// How the whole reply ended.
enum Outcome {
    Finished(Completion),
    Failed(LlmError),
    Stopped(StopReason),
    /// The model called tools in the last request, which offered none.
    TooManyToolRounds,
}

pub(crate) struct ReplyDriver {
    pub(crate) repo: Arc<dyn ChatRepository>,
    pub(crate) llm: Arc<dyn LlmClient>,
    pub(crate) channel: Arc<Channel>,
    pub(crate) control: Arc<ReplyControl>,
    pub(crate) policy: LlmPolicy,
    pub(crate) flush_interval: Duration,
    pub(crate) tools: ToolRegistry,
    /// Set when the session is to be named once this reply is complete.
    pub(crate) title: Option<TitleJob>,
}

impl ReplyDriver {
    /// Generates the reply into `message` (stored already, as `streaming`)
    /// and stores and publishes its end.
    pub(crate) async fn run(self, mut message: Message, mut request: ChatRequest) {
        let outcome = self.converse(&mut message, &mut request).await;
        match outcome {
            Outcome::Finished(completion) => {
                message.finish_reason = Some(completion.finish_reason);
                message.finish(MessageStatus::Complete, None);
            }
            Outcome::Stopped(StopReason::Cancelled) => {
                message.finish(MessageStatus::Cancelled, None)
            }
            Outcome::Stopped(StopReason::Shutdown) => message.finish(
                MessageStatus::Interrupted,
                Some(MessageError {
                    code: ErrorCode::Interrupted,
                    message: "the server shut down while this reply was being generated".to_owned(),
                }),
            ),
            Outcome::Failed(error) => {
                tracing::warn!(message_id = %message.id, %error, "reply failed");
                message.finish(
                    MessageStatus::Failed,
                    Some(MessageError {
                        code: error.code(),
                        message: error.to_string(),
                    }),
                );
            }
            Outcome::TooManyToolRounds => {
                tracing::warn!(message_id = %message.id, "the model kept calling tools after the last round");
                message.finish_reason = Some("tool_calls".to_owned());
                message.finish(
                    MessageStatus::Failed,
                    Some(MessageError {
                        code: ErrorCode::Internal,
                        message: format!(
                            "the model asked for more tools after {MAX_TOOL_ROUNDS} rounds of tool calls \
                             instead of answering; the calls it made are kept"
                        ),
                    }),
                );
            }
        }
        self.store_final(&message).await;
        tracing::info!(message_id = %message.id, status = message.status.as_str(), chars = message.content.len(), tool_calls = message.tool_calls.len(), "reply ended");
        telemetry::reply_ended(&message);
        let last = if matches!(
            message.status,
            MessageStatus::Complete | MessageStatus::Cancelled
        ) {
            EventKind::MessageCompleted(message.clone())
        } else {
            EventKind::MessageFailed(message.clone())
        };
        self.channel.finish_reply(message.id, last);

        // Named after the reply's final event, in a task of its own: a title
        // never delays a reply.
        if let (Some(job), MessageStatus::Complete) = (self.title, message.status) {
            let titler = Titler {
                repo: self.repo,
                llm: self.llm,
                channel: self.channel,
                policy: self.policy,
            };
            tokio::spawn(titler.name_session(job, message.content));
        }
    }

    /// Asks the model, runs the tools it calls, and asks again, until it
    /// answers in words or something stops it.
    async fn converse(&self, message: &mut Message, request: &mut ChatRequest) -> Outcome {
        let mut rounds = 0;
        let mut usage: Option<Usage> = None;
        loop {
            let round_start = message.content.len();
            let (completion, calls) = match self.generate(message, request, round_start).await {
                Attempt::Finished(completion, calls) => (completion, calls),
                Attempt::Failed(error) => return Outcome::Failed(error),
                Attempt::Stopped(reason) => return Outcome::Stopped(reason),
            };
            // Every round is paid for: the reply's usage is their sum.
            if let Some(round) = completion.usage {
                let total = usage.get_or_insert_with(Usage::default);
                total.prompt_tokens += round.prompt_tokens;
                total.completion_tokens += round.completion_tokens;
            }
            message.usage = usage;
            if calls.is_empty() {
                return Outcome::Finished(completion);
            }
            if rounds == MAX_TOOL_ROUNDS {
                for call in calls {
                    self.record(message, not_run(call));
                }
                return Outcome::TooManyToolRounds;
            }
            rounds += 1;
            let text = message.content[round_start..].trim().to_owned();
            let mut turn = PromptMessage::new(PromptRole::Assistant, text);
            turn.tool_calls.clone_from(&calls);
            request.messages.push(turn);
            for call in calls {
                let done = self.tools.run(&call).await;
                let mut result = PromptMessage::new(PromptRole::Tool, reply_to_model(&done));
                result.tool_call_id = Some(call.id);
                request.messages.push(result);
                self.record(message, done);
            }
            self.store(message).await;
            if rounds == MAX_TOOL_ROUNDS {
                // The last request offers no tools: the model answers with
                // what the calls so far have given it.
                request.tools.clear();
            }
        }
    }

    /// Adds a call to the message and tells the session's clients.
    fn record(&self, message: &mut Message, call: ToolCall) {
        tracing::info!(message_id = %message.id, tool = %call.name, ok = call.error.is_none(), "tool call");
        self.channel.publish(EventKind::MessageToolCall {
            message_id: message.id,
            tool_call: call.clone(),
        });
        message.tool_calls.push(call);
    }

    /// One request, retried as the policy allows. The text from
    /// `round_start` on is this round's; earlier rounds' text stays.
    async fn generate(
        &self,
        message: &mut Message,
        request: &ChatRequest,
        round_start: usize,
    ) -> Attempt {
        let mut retries = 0;
        loop {
            let attempt = self.attempt(message, request, round_start).await;
            telemetry::attempt_ended(&attempt);
            let error = match attempt {
                Attempt::Failed(error) => error,
                ended => return ended,
            };
            retries += 1;
            let Some(wait) = self.policy.retry_delay(retries, &error) else {
                return Attempt::Failed(error);
            };
            telemetry::retrying(&error);
            tracing::info!(message_id = %message.id, %error, retry = retries, wait_ms = wait.as_millis(), "retrying the upstream");
            tokio::select! {
                () = sleep(wait) => {}
                reason = self.control.stopped() => return Attempt::Stopped(reason),
            }
            // The next attempt starts this round's text over; clients that
            // already showed some of it are told to discard the message's
            // text, then given back what earlier rounds had written.
            if message.content.len() > round_start {
                message.content.truncate(round_start);
                self.channel.publish(EventKind::MessageReset {
                    message_id: message.id,
                });
                if round_start > 0 {
                    let kept = message.content.clone();
                    self.channel.publish(EventKind::MessageDelta {
                        message_id: message.id,
                        delta: kept,
                    });
                }
                self.store(message).await;
            }
        }
    }

    async fn attempt(
        &self,
        message: &mut Message,
        request: &ChatRequest,
        round_start: usize,
    ) -> Attempt {
        let first_chunk_deadline = Instant::now() + self.policy.first_chunk_timeout;
        let started = tokio::select! {
            started = timeout_at(first_chunk_deadline, self.llm.stream_chat(request.clone())) => started,
            reason = self.control.stopped() => return Attempt::Stopped(reason),
        };
        let mut stream: ChatStream = match started {
            Err(_) => {
                return Attempt::Failed(timed_out("no response", self.policy.first_chunk_timeout))
            }
            Ok(Err(error)) => return Attempt::Failed(error),
            Ok(Ok(stream)) => stream,
        };

        let mut calls = PendingCalls::default();
        let mut deadline = first_chunk_deadline;
        let mut flush = tokio::time::interval(self.flush_interval);
        flush.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        flush.reset();
        let mut unsaved = false;
        loop {
            tokio::select! {
                biased;
                reason = self.control.stopped() => return Attempt::Stopped(reason),
                _ = flush.tick(), if unsaved => {
                    self.store(message).await;
                    unsaved = false;
                }
                item = timeout_at(deadline, stream.next()) => {
                    let chunk = match item {
                        Err(_) => {
                            let (what, limit) = if deadline == first_chunk_deadline {
                                ("no first chunk", self.policy.first_chunk_timeout)
                            } else {
                                ("no next chunk", self.policy.idle_timeout)
                            };
                            return Attempt::Failed(timed_out(what, limit));
                        }
                        Ok(None) => return Attempt::Failed(LlmError::Protocol {
                            message: "the stream ended before the reply was finished".to_owned(),
                        }),
                        Ok(Some(Err(error))) => return Attempt::Failed(error),
                        Ok(Some(Ok(chunk))) => chunk,
                    };
                    deadline = Instant::now() + self.policy.idle_timeout;
                    match chunk {
                        ChatChunk::Delta(text) => {
                            if text.is_empty() {
                                continue;
                            }
                            let text = separated(message, round_start, text);
                            message.content.push_str(&text);
                            self.channel.publish(EventKind::MessageDelta { message_id: message.id, delta: text });
                            unsaved = true;
                        }
                        ChatChunk::ToolCall(fragment) => calls.add(fragment),
                        ChatChunk::Finished(completion) => return Attempt::Finished(completion, calls.finish()),
                    }
                }
            }
        }
    }

    /// Stores the message as it is now. A failure is logged, not fatal: the
    /// reply goes on streaming, and the final write (or the start-up recovery
    /// after a crash) brings the store up to date.
    async fn store(&self, message: &Message) {
        if let Err(error) = self.repo.update_message(message).await {
            tracing::warn!(message_id = %message.id, error = %error, "could not store the reply's progress");
        }
    }

    /// Stores the reply's final state. Unlike progress, this write is the
    /// last chance to keep the whole text: a store that is only busy gets a
    /// few more tries before the reply is left to the start-up recovery
    /// (which would keep just the text of the last flush).
    async fn store_final(&self, message: &Message) {
        let mut wait = Duration::from_millis(100);
        for attempt in 1..=FINAL_STORE_ATTEMPTS {
            match self.repo.update_message(message).await {
                Ok(()) => return,
                Err(RepoError::Unavailable(cause)) if attempt < FINAL_STORE_ATTEMPTS => {
                    tracing::warn!(message_id = %message.id, error = %cause, attempt, "the store is busy; retrying the reply's final write");
                    sleep(wait).await;
                    wait *= 2;
                }
                Err(RepoError::NotFound) => {
                    // The session was deleted while the reply ran: nothing to keep.
                    tracing::debug!(message_id = %message.id, "the reply's session is gone");
                    return;
                }
                Err(error) => {
                    tracing::error!(message_id = %message.id, %error, "could not store the reply's final state");
                    return;
                }
            }
        }
    }
}

/// Tries of a reply's final write when the store is busy (about 1.5 s in all).
const FINAL_STORE_ATTEMPTS: u32 = 5;

/// A round's first text after an earlier round's starts a new paragraph,
/// so that "Let me check." and "It is 14." do not run together.
fn separated(message: &Message, round_start: usize, text: String) -> String {
    let first_of_round = message.content.len() == round_start;
    if first_of_round && round_start > 0 && !message.content.ends_with(char::is_whitespace) {
        format!("\n\n{}", text.trim_start())
    } else {
        text
    }
}

/// A call the model made when it could no longer call tools: kept, not run.
fn not_run(call: ToolCallRequest) -> ToolCall {
    ToolCall {
        id: call.id,
        name: call.name,
        arguments: call.arguments,
        result: None,
        error: Some(format!(
            "not run: the reply had already used its {MAX_TOOL_ROUNDS} rounds of tool calls"
        )),
    }
}

/// Tool-call fragments of one attempt, joined by their index.
#[derive(Default)]
struct PendingCalls {
    by_index: BTreeMap<u32, ToolCallRequest>,
}

impl PendingCalls {
    fn add(&mut self, fragment: colloquy_ports::ToolCallDelta) {
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
