//! Driving one reply from the first request to the stored final message
//! (a turn of several assistants drives one after the other: see
//! [`crate::turn`]).
//!
//! The driver owns the assistant message while it streams. It asks the model
//! (through [`crate::upstream`], which times and retries every request),
//! relays every delta to the session's event log, writes the text so far to
//! the store at most every `flush_interval` (never per token), and ends with
//! exactly one final event whose message is the one stored.
//!
//! When the model calls tools, the driver runs them (see [`crate::tools`]),
//! records each call in the message and publishes it, sends the results back
//! and asks again: at most [`MAX_TOOL_ROUNDS`] rounds of tool calls, then one
//! last request that offers no tools, so the model has to answer in words.
//! Tools a client defined (through the OpenAI-compatible routes) are the
//! client's to run: the reply ends on their calls ([`ToolUse::Client`]).
//! However many rounds it takes, each assistant answering the user's message
//! writes one assistant message, holding the text of every round and every
//! call in order, and
//! the retries of the contract are counted for the reply, not per round.
//!
//! **Invariant:** a reply always ends. Its turn's [`ReplyGuard`] holds the
//! session's reply slot; however the driver stops (a panic, an abort, a
//! dropped future), the guard stores every reply of the turn still open
//! `failed` (`internal`), publishes each, and frees the slot.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use colloquy_domain::{
    ErrorCode, Message, MessageError, MessageStatus, Principal, ToolCall, Usage,
};
use colloquy_ports::{
    ChatRepository, ChatRequest, Completion, EventKind, EventLog, LlmClient, LlmError,
    PromptMessage, PromptRole, ReplyClaim, RepoError, ToolCallRequest,
};
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use crate::titles::{TitleJob, Titler};
use crate::tools::{reply_to_model, ToolRegistry};
use crate::upstream::{generate, Attempt, RetryBudget, Sink, Stop, StopReason};
use crate::{telemetry, LlmPolicy};

/// Who runs the tools a reply calls.
#[derive(Debug, Clone)]
pub(crate) enum ToolUse {
    /// colloquy does, these (the voice's).
    Run(ToolRegistry),
    /// The client does: tools it defined in a request to the
    /// OpenAI-compatible routes. The reply ends on the calls (finish reason
    /// `tool_calls`), stored with no result; the client sends the results
    /// in its next request.
    Client,
}

/// Rounds of tool calls a reply may make before it must answer in words.
pub const MAX_TOOL_ROUNDS: usize = 4;

/// Tries of a reply's final write when the store is busy (about 1.5 s in all).
const FINAL_STORE_ATTEMPTS: u32 = 5;

/// How the whole reply ended.
enum Outcome {
    Finished(Completion),
    Failed(LlmError),
    Stopped(StopReason),
    /// The model called tools in the last request, which offered none.
    TooManyToolRounds,
}

/// The session's reply slot and the turn's assistant messages, from the
/// moment the slot is claimed: the one being generated (`message`) and those
/// still to come (`pending`, stored `streaming` already). Dropped before the
/// turn is over, it ends every one of them itself: see the module docs.
pub(crate) struct ReplyGuard {
    pub(crate) message: Message,
    pending: VecDeque<Message>,
    claim: Option<Box<dyn ReplyClaim>>,
    /// Whether the messages are in the store (and announced) yet.
    stored: bool,
    repo: Arc<dyn ChatRepository>,
    events: Arc<dyn EventLog>,
    /// The session's owner, whom every write of the message is scoped to.
    owner: Principal,
    /// Another replica's sweeper stored the end of this turn first: what
    /// this guard holds is not what the store does.
    ended_elsewhere: bool,
}

impl ReplyGuard {
    pub(crate) fn new(
        claim: Box<dyn ReplyClaim>,
        message: Message,
        repo: Arc<dyn ChatRepository>,
        events: Arc<dyn EventLog>,
        owner: Principal,
    ) -> Self {
        Self {
            message,
            pending: VecDeque::new(),
            claim: Some(claim),
            stored: false,
            repo,
            events,
            owner,
            ended_elsewhere: false,
        }
    }

    /// Whether the turn's end was stored by someone else (see
    /// [`FinalWrite::EndedElsewhere`]), so its messages as ended here may
    /// differ from the store's.
    pub(crate) fn ended_elsewhere(&self) -> bool {
        self.ended_elsewhere
    }

    /// The turn's messages are stored and announced, oldest first: from now
    /// on their ends are too. The first is generated first.
    pub(crate) fn mark_stored(&mut self, messages: Vec<Message>) {
        let mut messages = VecDeque::from(messages);
        if let Some(first) = messages.pop_front() {
            self.message = first;
        }
        self.pending = messages;
        self.stored = true;
    }

    /// Whether every message of the turn has ended (or the turn was ended
    /// elsewhere): the slot is free then.
    pub(crate) fn is_over(&self) -> bool {
        self.claim.is_none()
    }

    /// Frees the slot of a turn that never started.
    pub(crate) async fn release(mut self) {
        if let Some(claim) = self.claim.take() {
            claim.release().await;
        }
    }

    /// Stores the current message's final state, then publishes it — and,
    /// when it was the turn's last, frees the slot in the same step. The
    /// next message of the turn becomes the current one. The event tells
    /// what the store holds: when the final write fails, the message is
    /// announced `failed` (`internal`), never `complete`. Returns the
    /// message as it ended.
    pub(crate) async fn end_current(&mut self) -> Message {
        if self.claim.is_none() {
            return self.message.clone();
        }
        let next = self.pending.pop_front();
        let last = next.is_none();
        let mut message = std::mem::replace(&mut self.message, next.unwrap_or_else(placeholder));
        let written = finish_for_good(&self.repo, &self.owner, &mut message).await;
        tracing::info!(message_id = %message.id, status = message.status.as_str(), chars = message.content.len(), tool_calls = message.tool_calls.len(), "reply ended");
        if written == FinalWrite::EndedElsewhere {
            // A sweeper ended the whole turn and announced it: the rest of
            // it is not this replica's to end any more.
            self.ended_elsewhere = true;
            self.pending.clear();
            if let Some(claim) = self.claim.take() {
                claim.release().await;
            }
            return message;
        }
        if last {
            if let Some(claim) = self.claim.take() {
                announce_end(claim, &message).await;
            }
        } else {
            announce_end_of_one(self.events.as_ref(), &message).await;
        }
        message
    }

    /// Ends the current message and every one still to come with `status`
    /// (the turn was cancelled, or the server is shutting down), each
    /// keeping what it has.
    pub(crate) async fn end_rest(&mut self, status: MessageStatus, error: Option<MessageError>) {
        while !self.is_over() {
            if !self.message.status.is_final() {
                self.message.finish(status, error.clone());
            }
            self.end_current().await;
        }
    }
}

impl Drop for ReplyGuard {
    fn drop(&mut self) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        let current = std::mem::replace(&mut self.message, placeholder());
        let mut messages: Vec<Message> = std::iter::once(current)
            .chain(self.pending.drain(..))
            .collect();
        tracing::error!(message_id = %messages[0].id, "a turn stopped without ending (a panic or an abort); storing its replies failed");
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime left to store or announce anything: dropping the
            // claim frees the slot, and start-up recovery marks the messages.
            return;
        };
        if !self.stored {
            runtime.spawn(claim.release());
            return;
        }
        for message in &mut messages {
            message.finish(
                MessageStatus::Failed,
                Some(MessageError {
                    code: ErrorCode::Internal,
                    message:
                        "the reply stopped unexpectedly on the server; the text so far is kept"
                            .to_owned(),
                }),
            );
        }
        let (repo, events, owner) = (
            Arc::clone(&self.repo),
            Arc::clone(&self.events),
            self.owner.clone(),
        );
        runtime.spawn(async move {
            let count = messages.len();
            for (index, mut message) in messages.into_iter().enumerate() {
                if finish_for_good(&repo, &owner, &mut message).await == FinalWrite::EndedElsewhere
                {
                    claim.release().await;
                    return;
                }
                if index + 1 == count {
                    announce_end(claim, &message).await;
                    return;
                }
                announce_end_of_one(events.as_ref(), &message).await;
            }
        });
    }
}

/// Why a reply stopped when the server shut down.
pub(crate) fn shutdown_error() -> MessageError {
    MessageError {
        code: ErrorCode::Interrupted,
        message: "the server shut down while this reply was being generated".to_owned(),
    }
}

/// A stand-in for a message taken out of its guard.
fn placeholder() -> Message {
    Message::streaming_reply(
        colloquy_domain::SessionId::new(),
        &colloquy_domain::ModelName::parse("none").expect("a constant valid model name"),
    )
}

/// The event that ends a reply with `message`.
pub(crate) fn final_event(message: &Message) -> EventKind {
    if matches!(
        message.status,
        MessageStatus::Complete | MessageStatus::Cancelled
    ) {
        EventKind::MessageCompleted(message.clone())
    } else {
        EventKind::MessageFailed(message.clone())
    }
}

/// What became of a reply's final write.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FinalWrite {
    /// The store holds the final state (or, when it refused for good, the
    /// message is now `failed` and announced so).
    Stored,
    /// The message is gone, or another replica's sweeper stored its end
    /// first (this replica lost its lease) and announced it, with the rest
    /// of its turn: announcing this end too would contradict the history.
    EndedElsewhere,
}

/// Writes a reply's final state. Unlike progress, this write is the last
/// chance to keep the whole text: a busy store gets a few more tries. When
/// the store still refuses, the message becomes `failed` (`internal`), so
/// what is announced never claims more than the history holds.
async fn finish_for_good(
    repo: &Arc<dyn ChatRepository>,
    owner: &Principal,
    message: &mut Message,
) -> FinalWrite {
    let mut wait = Duration::from_millis(100);
    for attempt in 1..=FINAL_STORE_ATTEMPTS {
        match repo.update_message(owner, message).await {
            Ok(()) => return FinalWrite::Stored,
            Err(RepoError::NotFound) => {
                tracing::warn!(message_id = %message.id, "the reply's end was stored by someone else, or its session is gone");
                return FinalWrite::EndedElsewhere;
            }
            Err(RepoError::Unavailable(cause)) if attempt < FINAL_STORE_ATTEMPTS => {
                tracing::warn!(message_id = %message.id, error = %cause, attempt, "the store is busy; retrying the reply's final write");
                sleep(wait).await;
                wait *= 2;
            }
            Err(error) => {
                tracing::error!(message_id = %message.id, %error, "could not store the reply's final state");
                break;
            }
        }
    }
    message.finish(
        MessageStatus::Failed,
        Some(MessageError {
            code: ErrorCode::Internal,
            message: "the reply could not be stored; the history keeps the text last saved"
                .to_owned(),
        }),
    );
    FinalWrite::Stored
}

/// Announces the end of a turn's last reply and frees the slot, in one step.
async fn announce_end(claim: Box<dyn ReplyClaim>, message: &Message) {
    telemetry::reply_ended(message);
    if let Err(error) = claim.finish(final_event(message)).await {
        tracing::error!(message_id = %message.id, %error, "could not publish the reply's end");
    }
}

/// Announces the end of a reply that another of its turn follows: the slot
/// stays held for the next.
async fn announce_end_of_one(events: &dyn EventLog, message: &Message) {
    telemetry::reply_ended(message);
    if let Err(error) = events
        .publish(message.session_id, final_event(message))
        .await
    {
        tracing::error!(message_id = %message.id, %error, "could not publish the reply's end");
    }
}

pub(crate) struct ReplyDriver {
    pub(crate) repo: Arc<dyn ChatRepository>,
    /// The session's owner, whom every write of the reply is scoped to.
    pub(crate) owner: Principal,
    pub(crate) llm: Arc<dyn LlmClient>,
    pub(crate) events: Arc<dyn EventLog>,
    pub(crate) policy: LlmPolicy,
    pub(crate) flush_interval: Duration,
    pub(crate) shutdown: CancellationToken,
}

impl ReplyDriver {
    /// Generates the guard's current message (stored already, as
    /// `streaming`) with the tools of its voice, and sets how it ended; the
    /// caller then stores and announces that end ([`ReplyGuard::end_current`]).
    pub(crate) async fn reply(
        &self,
        guard: &mut ReplyGuard,
        mut request: ChatRequest,
        tools: &ToolUse,
    ) {
        let outcome = self.converse(guard, &mut request, tools).await;
        let message = &mut guard.message;
        match outcome {
            Outcome::Finished(completion) => {
                message.finish_reason = Some(completion.finish_reason);
                message.finish(MessageStatus::Complete, None);
            }
            Outcome::Stopped(StopReason::Cancelled) => {
                message.finish(MessageStatus::Cancelled, None);
            }
            Outcome::Stopped(StopReason::Shutdown) => {
                message.finish(MessageStatus::Interrupted, Some(shutdown_error()));
            }
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
    }

    /// Names the session after a complete reply, in a task of its own: a
    /// title never delays a reply.
    pub(crate) fn name_session(&self, job: TitleJob, reply: &Message) {
        let titler = Titler {
            repo: Arc::clone(&self.repo),
            owner: self.owner.clone(),
            llm: Arc::clone(&self.llm),
            events: Arc::clone(&self.events),
            policy: self.policy.clone(),
        };
        tokio::spawn(titler.name_session(job, reply.content.clone()));
    }

    /// Asks the model, runs the tools it calls, and asks again, until it
    /// answers in words or something stops it.
    async fn converse(
        &self,
        guard: &mut ReplyGuard,
        request: &mut ChatRequest,
        tools: &ToolUse,
    ) -> Outcome {
        let mut rounds = 0;
        let mut usage: Option<Usage> = None;
        let mut budget = RetryBudget::default();
        // The claim stays in the guard (a panic here must find it there);
        // the stop signal and the message are borrowed from it side by side.
        let stop = Stop {
            claim: guard.claim.as_deref(),
            shutdown: Some(&self.shutdown),
        };
        loop {
            let mut sink = ReplySink {
                driver: self,
                message: &mut guard.message,
                round_start: 0,
            };
            sink.round_start = sink.message.content.len();
            let round_start = sink.round_start;
            let attempt = generate(
                self.llm.as_ref(),
                &self.policy,
                &mut budget,
                request,
                &mut sink,
                stop,
                self.flush_interval,
            )
            .await;
            let message = &mut guard.message;
            let (completion, calls) = match attempt {
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
            let tools = match tools {
                ToolUse::Run(registry) => registry,
                ToolUse::Client => {
                    for call in calls {
                        self.record(message, for_the_client(call)).await;
                    }
                    return Outcome::Finished(completion);
                }
            };
            if rounds == MAX_TOOL_ROUNDS {
                for call in calls {
                    self.record(message, not_run(call)).await;
                }
                return Outcome::TooManyToolRounds;
            }
            rounds += 1;
            let text = message.content[round_start..].trim().to_owned();
            let mut turn = PromptMessage::new(PromptRole::Assistant, text);
            turn.tool_calls.clone_from(&calls);
            request.messages.push(turn);
            for call in calls {
                let done = tools.run(&call).await;
                let mut result = PromptMessage::new(PromptRole::Tool, reply_to_model(&done));
                result.tool_call_id = Some(call.id);
                request.messages.push(result);
                self.record(message, done).await;
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
    async fn record(&self, message: &mut Message, call: ToolCall) {
        tracing::info!(message_id = %message.id, tool = %call.name, ok = call.error.is_none(), "tool call");
        self.publish(
            message,
            EventKind::MessageToolCall {
                message_id: message.id,
                tool_call: call.clone(),
            },
        )
        .await;
        message.tool_calls.push(call);
    }

    async fn publish(&self, message: &Message, kind: EventKind) {
        if let Err(error) = self.events.publish(message.session_id, kind).await {
            tracing::warn!(message_id = %message.id, %error, "could not publish an event of the reply");
        }
    }

    /// Stores the message as it is now. A failure is logged, not fatal: the
    /// reply goes on streaming, and the final write (or the start-up recovery
    /// after a crash) brings the store up to date.
    async fn store(&self, message: &Message) {
        if let Err(error) = self.repo.update_message(&self.owner, message).await {
            tracing::warn!(message_id = %message.id, error = %error, "could not store the reply's progress");
        }
    }
}

/// Where one round's text goes: into the message, out to the session's
/// clients, and to the store every flush interval.
struct ReplySink<'a> {
    driver: &'a ReplyDriver,
    message: &'a mut Message,
    /// The message's text from here on is this round's; earlier rounds' stays.
    round_start: usize,
}

impl Sink for ReplySink<'_> {
    async fn delta(&mut self, text: String) -> Result<(), LlmError> {
        let text = separated(self.message, self.round_start, text);
        self.message.content.push_str(&text);
        let kind = EventKind::MessageDelta {
            message_id: self.message.id,
            delta: text,
        };
        self.driver.publish(self.message, kind).await;
        Ok(())
    }

    /// The next attempt starts this round's text over; clients that already
    /// showed some of it are told to discard the message's text, then given
    /// back what earlier rounds had written.
    async fn reset(&mut self) {
        self.message.content.truncate(self.round_start);
        let reset = EventKind::MessageReset {
            message_id: self.message.id,
        };
        self.driver.publish(self.message, reset).await;
        if self.round_start > 0 {
            let kept = EventKind::MessageDelta {
                message_id: self.message.id,
                delta: self.message.content.clone(),
            };
            self.driver.publish(self.message, kept).await;
        }
        self.driver.store(self.message).await;
    }

    async fn flush(&mut self) {
        self.driver.store(self.message).await;
    }
}

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

/// A call of a tool the client runs: kept with no result, for the client
/// to answer in its next request.
fn for_the_client(call: ToolCallRequest) -> ToolCall {
    ToolCall {
        id: call.id,
        name: call.name,
        arguments: call.arguments,
        result: None,
        error: None,
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
