//! [`ChatService`]: the use cases the shell calls.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use colloquy_domain::{
    Assistant, AssistantId, Message, MessageId, ModelName, Principal, Session, SessionId,
    SystemPrompt, Timestamp, Title, Usage,
};
use colloquy_ports::{
    AssistantStore, BranchMessage, ChatRepository, EventKind, EventLog, Held, LimitError, Limiter,
    Limits, LlmClient, LlmError, Page, ReplyClaim, RepoError, SessionChanges, StartAt, UsageLedger,
};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::history::HistoryCache;
use crate::streams::Subscription;
use crate::summary::{self, Prose, SessionSummary, SummaryCache};
use crate::tokens::TokenCounter;
use crate::usage::Allowance;
use crate::{structured, ChatConfig, ChatError};

/// How long deleting a session waits for its running reply to store and
/// announce its end before deleting anyway.
const DELETE_WAIT: Duration = Duration::from_secs(5);

/// The fields of a new session, as a client sent them (unvalidated).
#[derive(Debug, Clone, Default)]
pub struct NewSession {
    pub title: Option<String>,
    pub system_prompt: Option<String>,
    pub model: Option<String>,
    /// The session's default assistant: it answers when a message names
    /// none. Its model is the session's unless `model` is given too.
    pub assistant_id: Option<AssistantId>,
}

/// A change to a session. `None` leaves a field alone; `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct SessionPatch {
    pub title: Option<Option<String>>,
    pub system_prompt: Option<Option<String>>,
    pub model: Option<String>,
    /// Setting a default assistant also sets the session's model to the
    /// assistant's, unless `model` is given too; clearing it keeps the model.
    pub assistant_id: Option<Option<AssistantId>>,
    /// Switches the active branch: to this message, or the newest message
    /// below it.
    pub head_message_id: Option<MessageId>,
}

/// What a readiness probe finds once the store answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Readiness {
    /// Whether the event log answers. A shared one (Redis) that does not
    /// leaves the service degraded: running replies finish and are stored,
    /// but their events are lost (clients resync) and no new reply starts.
    pub events_reachable: bool,
}

/// What the use cases need from the world: one adapter behind each port.
#[derive(Clone)]
pub struct Dependencies {
    pub repo: Arc<dyn ChatRepository>,
    /// Where assistants are kept (the same database as `repo`).
    pub assistants: Arc<dyn AssistantStore>,
    pub llm: Arc<dyn LlmClient>,
    pub events: Arc<dyn EventLog>,
    /// Counts requests and the replies and streams each principal holds.
    pub limiter: Arc<dyn Limiter>,
    /// What each principal spent upstream, per day.
    pub usage: Arc<dyn UsageLedger>,
}

impl std::fmt::Debug for Dependencies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dependencies")
            .field("limiter", &self.limiter)
            .field("usage", &self.usage)
            .finish_non_exhaustive()
    }
}

/// Who is asking, with what they may use and have used today
/// (`GET /api/v1/me`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub principal: Principal,
    pub limits: Limits,
    pub usage_today: Usage,
}

/// colloquy's use cases, shared by every request (cheap to clone).
#[derive(Clone, Debug)]
pub struct ChatService {
    pub(crate) inner: Arc<Inner>,
}

pub(crate) struct Inner {
    pub(crate) repo: Arc<dyn ChatRepository>,
    pub(crate) assistants: Arc<dyn AssistantStore>,
    pub(crate) llm: Arc<dyn LlmClient>,
    pub(crate) events: Arc<dyn EventLog>,
    pub(crate) limiter: Arc<dyn Limiter>,
    pub(crate) allowance: Allowance,
    pub(crate) config: ChatConfig,
    pub(crate) replies: TaskTracker,
    pub(crate) shutting_down: AtomicBool,
    /// Cancelled when the shutdown's grace period is over: the replies
    /// still running stop and end `interrupted`.
    pub(crate) shutdown: CancellationToken,
    summaries: SummaryCache,
    /// The recent branch of conversations that ran lately, for their next
    /// turn.
    pub(crate) histories: HistoryCache,
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
    pub fn new(dependencies: Dependencies, config: ChatConfig) -> Self {
        let Dependencies {
            repo,
            assistants,
            llm,
            events,
            limiter,
            usage,
        } = dependencies;
        // Parsing an encoding takes a moment: do it now, off the reactor,
        // rather than in the first request that counts tokens.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            let model = config.default_model.as_str().to_owned();
            runtime.spawn_blocking(move || TokenCounter::for_model(&model));
        }
        Self {
            inner: Arc::new(Inner {
                repo,
                assistants,
                llm,
                events,
                limiter,
                allowance: Allowance {
                    ledger: usage,
                    daily_tokens: config.limits.daily_tokens,
                },
                config,
                replies: TaskTracker::new(),
                shutting_down: AtomicBool::new(false),
                shutdown: CancellationToken::new(),
                summaries: SummaryCache::default(),
                histories: HistoryCache::default(),
            }),
        }
    }

    #[must_use]
    pub fn config(&self) -> &ChatConfig {
        &self.inner.config
    }

    pub(crate) fn assistant_store(&self) -> &dyn AssistantStore {
        self.inner.assistants.as_ref()
    }

    /// Marks replies a previous process left `streaming` as `interrupted`.
    /// Run once at start-up, before serving.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn recover_interrupted_replies(&self) -> Result<u64, ChatError> {
        Ok(self.inner.repo.interrupt_streaming().await?)
    }

    /// Whether the store answers, and whether the event log does.
    ///
    /// # Errors
    /// When the store does not: without it nothing can be served.
    pub async fn check_ready(&self) -> Result<Readiness, ChatError> {
        self.inner.repo.ping().await?;
        let events_reachable = match self.inner.events.check().await {
            Ok(()) => true,
            Err(error) => {
                tracing::warn!(%error, "readiness: the event log cannot be reached");
                false
            }
        };
        Ok(Readiness { events_reachable })
    }

    /// # Errors
    /// [`ChatError::Invalid`] for a bad title, system prompt or model.
    pub async fn create_session(
        &self,
        caller: &Principal,
        new: NewSession,
    ) -> Result<Session, ChatError> {
        let title = new.title.as_deref().map(Title::parse).transpose()?;
        let system_prompt = new
            .system_prompt
            .as_deref()
            .map(SystemPrompt::parse)
            .transpose()?;
        let assistant = match new.assistant_id {
            Some(id) => Some(self.get_assistant(caller, id).await?),
            None => None,
        };
        let model = match (new.model.as_deref(), &assistant) {
            (Some(model), _) => self.allowed_model(model)?,
            (None, Some(assistant)) => self.allowed_model(assistant.model.as_str())?,
            (None, None) => self.inner.config.default_model.clone(),
        };
        let mut session = Session::new(caller.clone(), title, system_prompt, model);
        session.assistant_id = assistant.map(|assistant| assistant.id);
        self.inner.repo.create_session(&session).await?;
        Ok(session)
    }

    /// # Errors
    /// When the store fails.
    pub async fn list_sessions(
        &self,
        caller: &Principal,
        limit: usize,
        after: Option<SessionId>,
    ) -> Result<Page<Session>, ChatError> {
        Ok(self.inner.repo.list_sessions(caller, limit, after).await?)
    }

    /// # Errors
    /// [`ChatError::SessionNotFound`].
    pub async fn get_session(
        &self,
        caller: &Principal,
        id: SessionId,
    ) -> Result<Session, ChatError> {
        Ok(self.inner.repo.get_session(caller, id).await?)
    }

    /// Applies `patch` and tells the session's subscribers.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`] or [`ChatError::Invalid`].
    pub async fn update_session(
        &self,
        caller: &Principal,
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
        let mut model = patch
            .model
            .as_deref()
            .map(|model| self.allowed_model(model))
            .transpose()?;
        let assistant: Option<Option<Assistant>> = match patch.assistant_id {
            Some(Some(id)) => Some(Some(self.get_assistant(caller, id).await?)),
            Some(None) => Some(None),
            None => None,
        };
        if let (None, Some(Some(assistant))) = (&model, &assistant) {
            model = Some(self.allowed_model(assistant.model.as_str())?);
        }

        let changes = SessionChanges {
            title,
            system_prompt,
            model,
            assistant_id: assistant.map(|assistant| assistant.map(|assistant| assistant.id)),
        };
        // Only the fields the patch names are written: a title the model
        // is choosing meanwhile, or another patch, is not undone.
        let repo = &self.inner.repo;
        let session = match patch.head_message_id {
            None => {
                repo.update_session(caller, id, &changes, Timestamp::now())
                    .await?
            }
            Some(to) => {
                if changes != SessionChanges::default() {
                    repo.update_session(caller, id, &changes, Timestamp::now())
                        .await?;
                }
                match repo.switch_branch(caller, id, to, Timestamp::now()).await {
                    Err(RepoError::NotFound) => {
                        repo.get_session(caller, id).await?;
                        return Err(ChatError::MessageNotFound);
                    }
                    switched => switched?,
                }
            }
        };
        self.publish(id, EventKind::SessionUpdated(session.clone()))
            .await;
        Ok(session)
    }

    /// `model`, when it is valid and one of `COLLOQUY_MODELS`.
    pub(crate) fn allowed_model(&self, model: &str) -> Result<ModelName, ChatError> {
        let model = ModelName::parse(model)?;
        if self.inner.config.models.allows(&model) {
            Ok(model)
        } else {
            Err(ChatError::ModelNotAllowed(model.as_str().to_owned()))
        }
    }

    /// The models a session may name. With `COLLOQUY_MODELS=*` any model
    /// the upstream serves may be named; the default model is the one
    /// listed then.
    #[must_use]
    pub fn models(&self) -> Vec<ModelName> {
        match &self.inner.config.models {
            crate::ModelAllowlist::Any => vec![self.inner.config.default_model.clone()],
            crate::ModelAllowlist::Only(models) => models.clone(),
        }
    }

    /// Counts one request of `who` (a principal, or `ip:<address>` for an
    /// anonymous client) against the requests-per-minute limit.
    ///
    /// A request is admitted when the counters cannot be reached (Redis is
    /// down): the rate limit guards against floods, and refusing every
    /// request, history reads included, for as long as an outage lasts
    /// would do more harm than a few minutes uncounted. What costs money
    /// stays guarded: a reply's place and the daily budget are still
    /// checked, and refused when they cannot be.
    ///
    /// # Errors
    /// [`ChatError::LimitReached`].
    pub async fn admit_request(&self, who: &str) -> Result<(), ChatError> {
        match self.inner.limiter.count_request(who).await {
            Ok(()) => Ok(()),
            Err(LimitError::Unavailable(error)) => {
                // Debug: the adapter logs the outage itself, once.
                tracing::debug!(%error, "a request is not counted: the limits cannot be reached");
                Ok(())
            }
            Err(refused) => Err(refused.into()),
        }
    }

    /// The caller, its limits and what it spent upstream today.
    ///
    /// # Errors
    /// When the store fails.
    pub async fn account(&self, caller: &Principal) -> Result<Account, ChatError> {
        Ok(Account {
            principal: caller.clone(),
            limits: self.inner.limiter.limits(),
            usage_today: self.inner.allowance.spent_today(caller).await?,
        })
    }

    pub(crate) async fn publish(&self, session: SessionId, kind: EventKind) {
        if let Err(error) = self.inner.events.publish(session, kind).await {
            tracing::warn!(session_id = %session, %error, "could not publish an event");
        }
    }

    /// Deletes a session and its messages, cancelling a reply in progress and
    /// ending its subscribers' streams.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`].
    pub async fn delete_session(&self, caller: &Principal, id: SessionId) -> Result<(), ChatError> {
        self.inner.repo.get_session(caller, id).await?;
        let slot = self.stop_and_hold_slot(id).await?;
        let deleted = self.inner.repo.delete_session(caller, id).await;
        // Subscribers read what is left (a cancelled reply's final event
        // among it), then their streams end.
        if deleted.is_ok() {
            self.inner.events.close_session(id).await?;
            self.inner.summaries.forget(id);
            self.inner.histories.forget(id);
        }
        if let Some(slot) = slot {
            slot.release().await;
        }
        Ok(deleted?)
    }

    /// Stops the session's running reply, waits until it has stored and
    /// published its end, and takes the slot, so no new reply starts while
    /// the session is deleted. `None` when the reply did not end in
    /// [`DELETE_WAIT`]: the session is deleted anyway.
    async fn stop_and_hold_slot(
        &self,
        id: SessionId,
    ) -> Result<Option<Box<dyn ReplyClaim>>, ChatError> {
        let events = &self.inner.events;
        let holder = MessageId::new();
        let deadline = tokio::time::Instant::now() + DELETE_WAIT;
        loop {
            // Subscribed before cancelling, so the reply's end cannot slip by.
            let mut live = Subscription::new(events.subscribe(id, StartAt::Live).await?);
            if let Some(slot) = events.claim_reply(id, holder).await? {
                return Ok(Some(slot));
            }
            events.cancel_reply(id, None).await?;
            let ended = async {
                while let Some(event) = live.next().await {
                    if event.kind.finished_message().is_some() {
                        return;
                    }
                }
            };
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                tracing::warn!(session_id = %id, "the running reply did not end in time; deleting its session anyway");
                return Ok(None);
            }
        }
    }

    /// The branch ending at `leaf` (the active one when `None`), oldest
    /// first, a page after `after`, each message with its siblings.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`]; [`ChatError::MessageNotFound`] when
    /// `leaf` is not one of the session's messages.
    pub async fn history(
        &self,
        caller: &Principal,
        session: SessionId,
        leaf: Option<MessageId>,
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<BranchMessage>, ChatError> {
        match self
            .inner
            .repo
            .list_branch(caller, session, leaf, limit, after)
            .await
        {
            Err(RepoError::NotFound) if leaf.is_some() => {
                // Which one is missing decides the answer.
                self.inner.repo.get_session(caller, session).await?;
                Err(ChatError::MessageNotFound)
            }
            page => Ok(page?),
        }
    }

    /// The session's summary: counts and usage from the store, prose from the
    /// model. Cached until the session or one of its messages changes.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`]; [`ChatError::ModelUnavailable`] or
    /// [`ChatError::ModelFailed`] when the model could not be asked;
    /// [`ChatError::BadModelOutput`] when its answer was not the summary
    /// asked for. Never a summary with some fields missing.
    pub async fn summarize(
        &self,
        caller: &Principal,
        session_id: SessionId,
    ) -> Result<SessionSummary, ChatError> {
        let deadline = self.inner.config.summary_deadline;
        tokio::time::timeout(deadline, self.summarize_once(caller, session_id))
            .await
            .unwrap_or_else(|_| {
                Err(ChatError::ModelUnavailable(LlmError::Timeout {
                    message: format!("no summary within {} s", deadline.as_secs_f64()),
                }))
            })
    }

    async fn summarize_once(
        &self,
        caller: &Principal,
        session_id: SessionId,
    ) -> Result<SessionSummary, ChatError> {
        // Requests for one session's summary take turns: the first that
        // misses the cache asks the model, the others then find its answer.
        let _turn = self.inner.summaries.turn(session_id).await;
        let session = self.inner.repo.get_session(caller, session_id).await?;
        let messages = self.active_branch(caller, session_id).await?;
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
                .as_str()
                .to_owned();
            let context_tokens = config.context_tokens;
            // Counting tokens is CPU work: off the async workers.
            let (session_for_request, messages_for_request) = (session.clone(), messages.clone());
            let request = tokio::task::spawn_blocking(move || {
                summary::request(
                    &session_for_request,
                    &model,
                    &messages_for_request,
                    context_tokens,
                )
            })
            .await
            .map_err(|error| ChatError::Unexpected(anyhow::anyhow!(error)))?;
            // Summaries spend the caller's tokens too.
            self.inner.allowance.check(caller).await?;
            let llm = self
                .inner
                .allowance
                .meter(Arc::clone(&self.inner.llm), caller.clone());
            let answer = structured::complete(llm.as_ref(), &config.llm, &request).await?;
            Prose::parse(&answer).map_err(|problem| {
                tracing::warn!(session_id = %session_id, %problem, "the model's summary was refused");
                ChatError::BadModelOutput(format!("the summary it wrote was refused: {problem}"))
            })?
        };
        let summary = summary::tally(session_id, &messages, prose);
        self.inner.summaries.put(fingerprint, summary.clone());
        Ok(summary)
    }

    /// The session's active branch, oldest first, a page at a time.
    pub(crate) async fn active_branch(
        &self,
        caller: &Principal,
        session: SessionId,
    ) -> Result<Vec<Message>, ChatError> {
        const PAGE: usize = 1_000;
        let mut messages: Vec<Message> = Vec::new();
        loop {
            let after = messages.last().map(|message| message.id);
            let page = self
                .inner
                .repo
                .list_branch(caller, session, None, PAGE, after)
                .await?;
            messages.extend(page.items.into_iter().map(|listed| listed.message));
            if !page.has_more {
                return Ok(messages);
            }
        }
    }

    /// Every message of the session on every branch, oldest first.
    pub(crate) async fn every_message(
        &self,
        caller: &Principal,
        session: SessionId,
    ) -> Result<Vec<Message>, ChatError> {
        const PAGE: usize = 1_000;
        let mut messages: Vec<Message> = Vec::new();
        loop {
            let after = messages.last().map(|message| message.id);
            let page = self
                .inner
                .repo
                .list_messages(caller, session, PAGE, after)
                .await?;
            messages.extend(page.items);
            if !page.has_more {
                return Ok(messages);
            }
        }
    }

    /// Follows a session's events: with `after` (a client's
    /// `Last-Event-ID`), every kept event after it first; without, a reply
    /// still streaming from its start; then live ones.
    ///
    /// The subscription holds one of the caller's open-stream places until
    /// it is dropped.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`]; [`ChatError::LimitReached`] when the
    /// caller holds as many streams open as it may.
    pub async fn subscribe(
        &self,
        caller: &Principal,
        session: SessionId,
        after: Option<u64>,
    ) -> Result<Subscription, ChatError> {
        self.inner.repo.get_session(caller, session).await?;
        let place = self.inner.limiter.acquire(Held::Stream, caller).await?;
        let start = after.map_or(StartAt::Live, StartAt::After);
        Ok(Subscription::new(self.inner.events.subscribe(session, start).await?).holding(place))
    }

    /// Stops the reply in progress, which ends `cancelled` with its text so
    /// far. `false` when nothing was streaming.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`].
    pub async fn cancel_reply(
        &self,
        caller: &Principal,
        session: SessionId,
    ) -> Result<bool, ChatError> {
        self.inner.repo.get_session(caller, session).await?;
        Ok(self.inner.events.cancel_reply(session, None).await?)
    }

    /// Whether [`ChatService::shutdown`] has begun: streams that end now end
    /// because the server stops, not because their session went away.
    #[must_use]
    pub fn is_shutting_down(&self) -> bool {
        self.inner.shutting_down.load(Ordering::Acquire)
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
            tracing::warn!(
                count = self.inner.replies.len(),
                "grace period over: interrupting the replies still running"
            );
            self.inner.shutdown.cancel();
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
        self.inner.events.close_all().await;
    }
}
