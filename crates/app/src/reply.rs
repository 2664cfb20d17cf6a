//! Driving one reply from the first request to the stored final message.
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
//! However many rounds it takes, the user's message gets one assistant
//! message, holding the text of every round and every call in order, and
//! the retries of the contract are counted for the reply, not per round.
//!
//! **Invariant:** a reply always ends. Its [`ReplyGuard`] holds the session's
//! reply slot; however the driver stops (a panic, an abort, a dropped
//! future), the guard stores the message `failed` (`internal`), publishes
//! that, and frees the slot.

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

/// The session's reply slot and the reply's message, from the moment the
/// slot is claimed. Dropped before [`ReplyGuard::end`], it ends the reply
/// itself: see the module docs.
pub(crate) struct ReplyGuard {
    pub(crate) message: Message,
    claim: Option<Box<dyn ReplyClaim>>,
    /// Whether the message is in the store (and announced) yet.
    stored: bool,
    repo: Arc<dyn ChatRepository>,
    /// The session's owner, whom every write of the message is scoped to.
    owner: Principal,
}

impl ReplyGuard {
    pub(crate) fn new(
        claim: Box<dyn ReplyClaim>,
        message: Message,
        repo: Arc<dyn ChatRepository>,
        owner: Principal,
    ) -> Self {
        Self {
            message,
            claim: Some(claim),
            stored: false,
            repo,
            owner,
        }
    }

    /// The message is stored and announced: from now on its end is too.
    pub(crate) fn mark_stored(&mut self) {
        self.stored = true;
    }

    /// Frees the slot of a reply that never started.
    pub(crate) async fn release(mut self) {
        if let Some(claim) = self.claim.take() {
            claim.release().await;
        }
    }

    /// Stores the message's final state, then publishes it and frees the
    /// slot. The event tells what the store holds: when the final write
    /// fails, the reply is announced `failed` (`internal`), never `complete`.
    pub(crate) async fn end(mut self) -> Message {
        let Some(claim) = self.claim.take() else {
            return self.message.clone();
        };
        let mut message = std::mem::replace(&mut self.message, placeholder());
        let written = finish_for_good(&self.repo, &self.owner, &mut message).await;
        tracing::info!(message_id = %message.id, status = message.status.as_str(), chars = message.content.len(), tool_calls = message.tool_calls.len(), "reply ended");
        announce_end(claim, &message, written).await;
        message
    }
}

impl Drop for ReplyGuard {
    fn drop(&mut self) {
        let Some(claim) = self.claim.take() else {
            return;
        };
        let mut message = std::mem::replace(&mut self.message, placeholder());
        tracing::error!(message_id = %message.id, "a reply stopped without ending (a panic or an abort); storing it failed");
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            // No runtime left to store or announce anything: dropping the
            // claim frees the slot, and start-up recovery marks the message.
            return;
        };
        if !self.stored {
            runtime.spawn(claim.release());
            return;
        }
        message.finish(
            MessageStatus::Failed,
            Some(MessageError {
                code: ErrorCode::Internal,
                message: "the reply stopped unexpectedly on the server; the text so far is kept"
                    .to_owned(),
            }),
        );
        let repo = Arc::clone(&self.repo);
        let owner = self.owner.clone();
        runtime.spawn(async move {
            let written = finish_for_good(&repo, &owner, &mut message).await;
            announce_end(claim, &message, written).await;
        });
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
    /// first (this replica lost its lease) and announced it: announcing this
    /// end too would contradict the history.
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

/// Announces a reply's end and frees its slot — or only frees the slot
/// when its end was stored, and announced, elsewhere.
async fn announce_end(claim: Box<dyn ReplyClaim>, message: &Message, written: FinalWrite) {
    if written == FinalWrite::EndedElsewhere {
        claim.release().await;
        return;
    }
    telemetry::reply_ended(message);
    if let Err(error) = claim.finish(final_event(message)).await {
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
    pub(crate) tools: ToolRegistry,
    pub(crate) shutdown: CancellationToken,
    /// Set when the session is to be named once this reply is complete.
    pub(crate) title: Option<TitleJob>,
}

impl ReplyDriver {
    /// Generates the reply into the guard's message (stored already, as
    /// `streaming`), then stores and publishes its end.
    pub(crate) async fn run(self, mut guard: ReplyGuard, mut request: ChatRequest) {
        let outcome = self.converse(&mut guard, &mut request).await;
        let message = &mut guard.message;
        match outcome {
            Outcome::Finished(completion) => {
                message.finish_reason = Some(completion.finish_reason);
                message.finish(MessageStatus::Complete, None);
            }
            Outcome::Stopped(StopReason::Cancelled) => {
                message.finish(MessageStatus::Cancelled, None);
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
        let message = guard.end().await;

        // Named after the reply's final event, in a task of its own: a title
        // never delays a reply. A reply whose final write failed ended
        // `failed` and names nothing.
        if let (Some(job), MessageStatus::Complete) = (self.title, message.status) {
            let titler = Titler {
                repo: self.repo,
                owner: self.owner,
                llm: self.llm,
                events: self.events,
                policy: self.policy,
            };
            tokio::spawn(titler.name_session(job, message.content));
        }
    }

    /// Asks the model, runs the tools it calls, and asks again, until it
    /// answers in words or something stops it.
    async fn converse(&self, guard: &mut ReplyGuard, request: &mut ChatRequest) -> Outcome {
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
                let done = self.tools.run(&call).await;
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
