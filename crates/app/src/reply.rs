//! Driving one reply from the first request to the stored final message.
//!
//! The driver owns the assistant message while it streams. It asks the model,
//! relays every delta to the session's channel, writes the text so far to the
//! store at most every `flush_interval` (never per token), retries what the
//! contract says is retryable, and ends with exactly one final event whose
//! message is the one stored.

use std::sync::Arc;
use std::time::Duration;

use colloquy_domain::{ErrorCode, Message, MessageError, MessageStatus};
use colloquy_ports::{
    ChatChunk, ChatRepository, ChatRequest, ChatStream, Completion, LlmClient, LlmError,
};
use futures::StreamExt;
use tokio::time::{sleep, timeout_at, Instant};

use crate::events::{Channel, EventKind, ReplyControl, StopReason};
use crate::LlmPolicy;

/// How one attempt at the upstream ended.
enum Attempt {
    Finished(Completion),
    Failed(LlmError),
    Stopped(StopReason),
}

/// How the whole reply ended.
enum Outcome {
    Finished(Completion),
    Failed(LlmError),
    Stopped(StopReason),
}

pub(crate) struct ReplyDriver {
    pub(crate) repo: Arc<dyn ChatRepository>,
    pub(crate) llm: Arc<dyn LlmClient>,
    pub(crate) channel: Arc<Channel>,
    pub(crate) control: Arc<ReplyControl>,
    pub(crate) policy: LlmPolicy,
    pub(crate) flush_interval: Duration,
}

impl ReplyDriver {
    /// Generates the reply into `message` (stored already, as `streaming`)
    /// and stores and publishes its end.
    pub(crate) async fn run(self, mut message: Message, request: ChatRequest) {
        let outcome = self.generate(&mut message, &request).await;
        match outcome {
            Outcome::Finished(completion) => {
                message.finish_reason = Some(completion.finish_reason);
                message.usage = completion.usage;
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
        }
        self.store(&message).await;
        tracing::info!(message_id = %message.id, status = message.status.as_str(), chars = message.content.len(), "reply ended");
        let last = if matches!(
            message.status,
            MessageStatus::Complete | MessageStatus::Cancelled
        ) {
            EventKind::MessageCompleted(message.clone())
        } else {
            EventKind::MessageFailed(message.clone())
        };
        self.channel.finish_reply(message.id, last);
    }

    async fn generate(&self, message: &mut Message, request: &ChatRequest) -> Outcome {
        let mut retries = 0;
        loop {
            let error = match self.attempt(message, request).await {
                Attempt::Finished(completion) => return Outcome::Finished(completion),
                Attempt::Stopped(reason) => return Outcome::Stopped(reason),
                Attempt::Failed(error) => error,
            };
            retries += 1;
            let Some(wait) = self.policy.retry_delay(retries, &error) else {
                return Outcome::Failed(error);
            };
            tracing::info!(message_id = %message.id, %error, retry = retries, wait_ms = wait.as_millis(), "retrying the upstream");
            tokio::select! {
                () = sleep(wait) => {}
                reason = self.control.stopped() => return Outcome::Stopped(reason),
            }
            // The next attempt starts the text over; clients that already
            // showed some of it are told to discard it.
            if !message.content.is_empty() {
                message.content.clear();
                self.channel.publish(EventKind::MessageReset {
                    message_id: message.id,
                });
                self.store(message).await;
            }
        }
    }

    async fn attempt(&self, message: &mut Message, request: &ChatRequest) -> Attempt {
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
                            message.content.push_str(&text);
                            self.channel.publish(EventKind::MessageDelta { message_id: message.id, delta: text });
                            unsaved = true;
                        }
                        ChatChunk::ToolCall(fragment) => {
                            // No tools are offered with this request, so a tool
                            // call is the upstream's mistake: note it and go on
                            // with the text, which is what the user asked for.
                            tracing::warn!(message_id = %message.id, index = fragment.index, "ignoring a tool call no tool was offered for");
                        }
                        ChatChunk::Finished(completion) => return Attempt::Finished(completion),
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
}

fn timed_out(what: &str, limit: Duration) -> LlmError {
    LlmError::Timeout {
        message: format!("{what} within {} s", limit.as_secs_f64()),
    }
}
