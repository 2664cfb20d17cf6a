//! [`ChatService`]: the use cases the shell calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use colloquy_domain::{
    Message, MessageContent, MessageId, MessageStatus, ModelName, Role, Session, SessionId,
    SystemPrompt, Timestamp, Title,
};
use colloquy_ports::{ChatRepository, ChatRequest, LlmClient, Page};
use tokio_util::task::TaskTracker;

use crate::events::{Channel, EventHub, EventKind, ReplyControl, StopReason, Subscription};
use crate::prompt::build_request;
use crate::reply::ReplyDriver;
use crate::summary::{self, Prose, SessionSummary, SummaryCache};
use crate::titles::TitleJob;
use crate::tokens::TokenCounter;
use crate::{structured, ChatConfig, ChatError};

/// The fields of a new session, as a client sent them (unvalidated).
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub title: Option<String>,
    pub system_prompt: Option<String>,
    pub model: Option<String>,
}

/// A change to a session. `None` leaves a field alone; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct SessionPatch {
    pub title: Option<Option<String>>,
    pub system_prompt: Option<Option<String>>,
    pub model: Option<String>,
}

/// What sending a message produced: both stored messages, and the reply's
/// events from its first one.
#[derive(Debug)]
pub struct SendOutcome {
    pub user_message: Message,
    pub assistant_message: Message,
    /// Starts at this turn's first `message.created`, ends never: the caller
    /// stops at the assistant message's `message.completed` or `message.failed`.
    pub events: Subscription,
    control: Arc<ReplyControl>,
}

impl SendOutcome {
    /// A guard that cancels the reply when dropped (if it is still running):
    /// hold it for as long as the client that asked for cancel-on-disconnect
    /// is connected.
    #[must_use]
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop {
            control: Arc::clone(&self.control),
        }
    }
}

/// Cancels a reply when dropped. See [`SendOutcome::cancel_on_drop`].
#[derive(Debug)]
pub struct CancelOnDrop {
    control: Arc<ReplyControl>,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        // Stopping a reply that already ended does nothing.
        self.control.stop(StopReason::Cancelled);
    }
}

/// colloquy's use cases, shared by every request (cheap to clone).
#[derive(Clone, Debug)]
pub struct ChatService {
    inner: Arc<Inner>,
}

struct Inner {
    repo: Arc<dyn ChatRepository>,
    llm: Arc<dyn LlmClient>,
    hub: EventHub,
    config: ChatConfig,
    replies: TaskTracker,
    shutting_down: AtomicBool,
    summaries: SummaryCache,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatService")
            .field("config", &self.config)
            .field("running_replies", &self.replies.len())
            .finish_non_exhaustive()
    }
}

impl ChatService {
    #[must_use]
    pub fn new(repo: Arc<dyn ChatRepository>, llm: Arc<dyn LlmClient>, config: ChatConfig) -> Self {
        let hub = EventHub::new(config.event_retention);
        // Parsing an encoding takes a moment: do it now, off the reactor,
        // rather than in the first request that counts tokens.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let model = config.default_model.as_str().to_owned();
            runtime.spawn_blocking(move || TokenCounter::for_model(&model));
        }
        Self {
            inner: Arc::new(Inner {
                repo,
                llm,
                hub,
                config,
                replies: TaskTracker::new(),
                shutting_down: AtomicBool::new(false),
                summaries: SummaryCache::default(),
            }),
        }
    }

    #[must_use]
    pub fn config(&self) -> &ChatConfig {
        &self.inner.config
    }

    /// Marks replies a previous process left `streaming` as `interrupted`.
    /// Run once at start-up, before serving.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn recover_interrupted_replies(&self) -> Result<u64, ChatError> {
        Ok(self.inner.repo.interrupt_streaming().await?)
    }

    /// Whether the store answers.
    ///
    /// # Errors
    /// When it does not.
    pub async fn check_ready(&self) -> Result<(), ChatError> {
        Ok(self.inner.repo.ping().await?)
    }

    /// # Errors
    /// [`ChatError::Invalid`] for a bad title, system prompt or model.
    pub async fn create_session(&self, new: NewSession) -> Result<Session, ChatError> {
        let title = new.title.as_deref().map(Title::parse).transpose()?;
        let system_prompt = new
            .system_prompt
            .as_deref()
            .map(SystemPrompt::parse)
            .transpose()?;
        let model = match new.model.as_deref() {
            Some(model) => ModelName::parse(model)?,
            None => self.inner.config.default_model.clone(),
        };
        let session = Session::new(title, system_prompt, model);
        self.inner.repo.create_session(&session).await?;
        Ok(session)
    }

    /// # Errors
    /// When the store fails.
    pub async fn list_sessions(
        &self,
        limit: usize,
        after: Option<SessionId>,
    ) -> Result<Page<Session>, ChatError> {
        Ok(self.inner.repo.list_sessions(limit, after).await?)
    }

    /// # Errors
    /// [`ChatError::SessionNotFound`].
    pub async fn get_session(&self, id: SessionId) -> Result<Session, ChatError> {
        Ok(self.inner.repo.get_session(id).await?)
    }

    /// Applies `patch` and tells the session's subscribers.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`] or [`ChatError::Invalid`].
    pub async fn update_session(
        &self,
        id: SessionId,
        patch: SessionPatch,
    ) -> Result<Session, ChatError> {
        // Validate everything before touching the store.
        let title = patch
            .title
            .map(|title| title.as_deref().map(Title::parse).transpose())
            .transpose()?;
        let system_prompt = patch
            .system_prompt
            .map(|prompt| prompt.as_deref().map(SystemPrompt::parse).transpose())
            .transpose()?;
        let model = patch.model.as_deref().map(ModelName::parse).transpose()?;

        let mut session = self.inner.repo.get_session(id).await?;
        if let Some(title) = title {
            session.title = title;
        }
        if let Some(system_prompt) = system_prompt {
            session.system_prompt = system_prompt;
        }
        if let Some(model) = model {
            session.model = model;
        }
        session.updated_at = Timestamp::now();
        self.inner.repo.update_session(&session).await?;
        self.inner
            .hub
            .channel(id)
            .publish(EventKind::SessionUpdated(session.clone()));
        Ok(session)
    }

    /// Deletes a session and its messages, cancelling a reply in progress and
    /// ending its subscribers' streams.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`].
    pub async fn delete_session(&self, id: SessionId) -> Result<(), ChatError> {
        if let Some(reply) = self.inner.hub.active_reply(id) {
            reply.stop(StopReason::Cancelled);
        }
        self.inner.repo.delete_session(id).await?;
        self.inner.hub.close_session(id);
        self.inner.summaries.forget(id);
        Ok(())
    }

    /// # Errors
    /// [`ChatError::SessionNotFound`].
    pub async fn list_messages(
        &self,
        session: SessionId,
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<Message>, ChatError> {
        Ok(self.inner.repo.list_messages(session, limit, after).await?)
    }

    /// Stores the user's message and an empty `streaming` reply, then
    /// generates the reply in a task of its own.
    ///
    /// When this returns, the user message is durable.
    ///
    /// # Errors
    /// [`ChatError::Invalid`] (the model and the store are not touched then),
    /// [`ChatError::SessionNotFound`], [`ChatError::ReplyInProgress`],
    /// [`ChatError::ShuttingDown`].
    pub async fn send_message(
        &self,
        session_id: SessionId,
        content: String,
    ) -> Result<SendOutcome, ChatError> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            return Err(ChatError::ShuttingDown);
        }
        let content = MessageContent::parse(content, self.inner.config.max_message_chars)?;
        let user_message = Message::user(session_id, content);
        // The reply's slot is claimed before anything is read: the history
        // read below then cannot catch a previous reply halfway through
        // finishing. The reply's id is fixed now for that (it still sorts
        // after the user message, being made after it).
        let reply_id = MessageId::new();
        let control = ReplyControl::new(reply_id);
        let channel = self.inner.hub.channel(session_id);
        if !channel.try_claim(&control) {
            // An unknown session has no reply running: this is a real 409.
            return Err(ChatError::ReplyInProgress);
        }
        match self.store_turn(session_id, &user_message, reply_id).await {
            Ok((session, assistant_message, history)) => {
                let config = &self.inner.config;
                let request = build_request(
                    &session,
                    &config.default_system_prompt,
                    &history,
                    &user_message,
                    config.context_tokens,
                    config.tools.specs(),
                );
                let title = self.title_job(&session, &history, &user_message);
                let first_id = channel.begin_reply([
                    EventKind::MessageCreated(user_message.clone()),
                    EventKind::MessageCreated(assistant_message.clone()),
                ]);
                let events = self
                    .inner
                    .hub
                    .subscribe(session_id, Some(first_id.saturating_sub(1)));
                self.spawn_reply(
                    channel,
                    Arc::clone(&control),
                    assistant_message.clone(),
                    request,
                    title,
                );
                Ok(SendOutcome {
                    user_message,
                    assistant_message,
                    events,
                    control,
                })
            }
            Err(error) => {
                channel.release_claim(reply_id);
                if matches!(error, ChatError::SessionNotFound) {
                    // The claim made a channel for an id that names no
                    // session; drop it now rather than at the next sweep, so
                    // sends to made-up ids cost no memory.
                    self.inner.hub.close_session(session_id);
                }
                Err(error)
            }
        }
    }

    /// Reads the session and its recent history (concurrently: two short
    /// reads on the blocking pool cost one round trip's latency, not two),
    /// then stores the turn's two messages in one transaction.
    async fn store_turn(
        &self,
        session_id: SessionId,
        user: &Message,
        reply_id: MessageId,
    ) -> Result<(Session, Message, Vec<Message>), ChatError> {
        let repo = &self.inner.repo;
        let (mut session, history) = futures::try_join!(
            repo.get_session(session_id),
            repo.recent_messages(session_id, self.inner.config.history_limit),
        )?;
        if let Some(model) = &self.inner.config.reply_model {
            session.model = model.clone();
        }
        let mut assistant = Message::streaming_reply(session_id, &session.model);
        assistant.id = reply_id;
        repo.append_messages(&[user.clone(), assistant.clone()])
            .await?;
        Ok((session, assistant, history))
    }

    /// What naming the session takes, when this reply is to name it: the
    /// session has no title and no earlier reply completed.
    fn title_job(
        &self,
        session: &Session,
        history: &[Message],
        question: &Message,
    ) -> Option<TitleJob> {
        let answered_before = history.iter().any(|message| {
            message.role == Role::Assistant && message.status == MessageStatus::Complete
        });
        (self.inner.config.auto_title && session.title.is_none() && !answered_before).then(|| {
            TitleJob {
                session_id: session.id,
                model: session.model.as_str().to_owned(),
                question: question.content.clone(),
            }
        })
    }

    fn spawn_reply(
        &self,
        channel: Arc<Channel>,
        control: Arc<ReplyControl>,
        message: Message,
        request: ChatRequest,
        title: Option<TitleJob>,
    ) {
        let driver = ReplyDriver {
            repo: Arc::clone(&self.inner.repo),
            llm: Arc::clone(&self.inner.llm),
            channel,
            control,
            policy: self.inner.config.llm.clone(),
            flush_interval: self.inner.config.flush_interval,
            tools: self.inner.config.tools.clone(),
            title,
        };
        self.inner.replies.spawn(driver.run(message, request));
    }

    /// The session's summary: counts and usage from the store, prose from the
    /// model. Cached until the session or one of its messages changes.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`]; [`ChatError::ModelUnavailable`] or
    /// [`ChatError::ModelFailed`] when the model could not be asked;
    /// [`ChatError::BadModelOutput`] when its answer was not the summary
    /// asked for. Never a summary with some fields missing.
    pub async fn summarize(&self, session_id: SessionId) -> Result<SessionSummary, ChatError> {
        let session = self.inner.repo.get_session(session_id).await?;
        let messages = self.all_messages(session_id).await?;
        let fingerprint = summary::fingerprint(&session, &messages);
        if let Some(cached) = self.inner.summaries.get(session_id, fingerprint) {
            return Ok(cached);
        }
        let prose = if messages.iter().all(|message| message.content.is_empty()) {
            Prose::empty()
        } else {
            let config = &self.inner.config;
            let model = config
                .reply_model
                .as_ref()
                .unwrap_or(&session.model)
                .as_str();
            let request = summary::request(&session, model, &messages, config.context_tokens);
            let answer =
                structured::complete(self.inner.llm.as_ref(), &config.llm, &request).await?;
            Prose::parse(&answer).map_err(|problem| {
                tracing::warn!(session_id = %session_id, %problem, "the model's summary was refused");
                ChatError::BadModelOutput(format!("the summary it wrote was refused: {problem}"))
            })?
        };
        let summary = summary::tally(session_id, &messages, prose);
        self.inner.summaries.put(fingerprint, summary.clone());
        Ok(summary)
    }

    /// Every message of a session, oldest first, a page at a time.
    async fn all_messages(&self, session: SessionId) -> Result<Vec<Message>, ChatError> {
        const PAGE: usize = 1_000;
        let mut messages: Vec<Message> = Vec::new();
        loop {
            let after = messages.last().map(|message| message.id);
            let page = self.inner.repo.list_messages(session, PAGE, after).await?;
            messages.extend(page.items);
            if !page.has_more {
                return Ok(messages);
            }
        }
    }

    /// Follows a session's events (see [`EventHub::subscribe`]).
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`].
    pub async fn subscribe(
        &self,
        session: SessionId,
        after: Option<u64>,
    ) -> Result<Subscription, ChatError> {
        self.inner.repo.get_session(session).await?;
        Ok(self.inner.hub.subscribe(session, after))
    }

    /// Stops the reply in progress, which ends `cancelled` with its text so
    /// far. `false` when nothing was streaming.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`].
    pub async fn cancel_reply(&self, session: SessionId) -> Result<bool, ChatError> {
        self.inner.repo.get_session(session).await?;
        match self.inner.hub.active_reply(session) {
            Some(reply) => {
                reply.stop(StopReason::Cancelled);
                Ok(true)
            }
            None => Ok(false),
        }
    }

    /// How many replies are being generated right now.
    #[must_use]
    pub fn running_replies(&self) -> usize {
        self.inner.replies.len()
    }

    /// Stops taking new messages, lets running replies finish for up to
    /// `grace`, stores the rest as `interrupted`, and ends every event stream.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.shutting_down.store(true, Ordering::Release);
        self.inner.replies.close();
        let running = self.inner.replies.len();
        if running > 0 {
            tracing::info!(
                running,
                grace_secs = grace.as_secs_f64(),
                "waiting for running replies to finish"
            );
        }
        if tokio::time::timeout(grace, self.inner.replies.wait())
            .await
            .is_err()
        {
            let interrupted = self.inner.hub.active_replies();
            tracing::warn!(
                count = interrupted.len(),
                "grace period over: interrupting the replies still running"
            );
            for reply in interrupted {
                reply.stop(StopReason::Shutdown);
            }
            // Interrupting is a store write per reply; give it a moment.
            if tokio::time::timeout(Duration::from_secs(5), self.inner.replies.wait())
                .await
                .is_err()
            {
                tracing::error!(
                    "some replies did not stop in time; start-up will mark them interrupted"
                );
            }
        }
        self.inner.hub.close_all();
    }
}
