//! A turn: the user's message (none in a discussion) and one reply per
//! assistant that answers it, generated one after the other while the
//! session's reply slot stays held.
//!
//! Every message of the turn is stored, `streaming` for the replies, in one
//! transaction before anything is generated, and announced at once: a
//! client (or the `202` of a send) knows the whole turn from the start, a
//! crash never loses an acknowledged message, and start-up recovery (or a
//! replica's sweeper, which interrupts a turn from its first reply on) ends
//! every reply that did not finish. Each reply then gets its own request,
//! built when its turn comes, so it sees the answers before it. A cancel
//! stops the rest of the turn: the reply being generated ends `cancelled`
//! with its text, those after it `cancelled` and empty.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use colloquy_domain::{
    Assistant, AssistantId, Message, MessageContent, MessageId, MessageStatus, ModelName,
    Principal, Role, Session, SessionId,
};
use colloquy_ports::{EventKind, EventLog, Held, ReplyClaim, RepoError, StartAt, ToolSpec};
use tokio::sync::oneshot;

use crate::history::SharedHistory;
use crate::prompt::{build_request, Prompt};
use crate::reply::{shutdown_error, ReplyDriver, ReplyGuard, ToolUse};
use crate::streams::{ReplyEvents, Subscription};
use crate::titles::TitleJob;
use crate::tools::ToolRegistry;
use crate::{ChatError, ChatService};

/// Most assistants one turn may name (`assistant_ids`: 1 to 8).
pub const MAX_ASSISTANTS_PER_TURN: usize = 8;

/// What starting a turn produced: its stored messages, and its events from
/// the first to its last reply's final one.
#[derive(Debug)]
pub struct SendOutcome {
    /// The user's message; `None` for a discussion (`POST …/replies`).
    pub user_message: Option<Message>,
    /// One reply per assistant that answers, in the order they speak
    /// (never empty), each stored `streaming`.
    pub assistant_messages: Vec<Message>,
    /// Starts at this turn's first `message.created` and ends after its
    /// last reply's `message.completed` or `message.failed`.
    pub events: ReplyEvents,
    canceller: TurnCanceller,
}

impl SendOutcome {
    /// The turn's first reply.
    #[must_use]
    pub fn assistant_message(&self) -> &Message {
        &self.assistant_messages[0]
    }

    /// A guard that cancels the turn when dropped (if it is still running):
    /// hold it for as long as the client that asked for cancel-on-disconnect
    /// is connected.
    #[must_use]
    pub fn cancel_on_drop(&self) -> CancelOnDrop {
        CancelOnDrop {
            canceller: self.canceller.clone(),
        }
    }
}

/// Stops one turn, and no other: a later turn of the session is left alone.
#[derive(Debug, Clone)]
struct TurnCanceller {
    events: Arc<dyn EventLog>,
    session: SessionId,
    /// The turn's first reply, which its slot is claimed for.
    turn: MessageId,
}

impl TurnCanceller {
    async fn cancel(self) {
        let _ = self
            .events
            .cancel_reply(self.session, Some(self.turn))
            .await;
    }
}

/// Cancels a turn when dropped. See [`SendOutcome::cancel_on_drop`].
#[derive(Debug)]
pub struct CancelOnDrop {
    canceller: TurnCanceller,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        // Stopping a turn that already ended does nothing.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(self.canceller.clone().cancel());
        }
    }
}

/// Who answers, and so which instructions, model and tools a reply gets.
#[derive(Debug, Clone)]
enum Voice {
    /// The service's own: the session's system prompt and model, every
    /// configured tool.
    Default,
    /// The session's default assistant: the session's system prompt and
    /// model win over the assistant's (the model was the assistant's when
    /// it was made the default, unless the client chose another).
    OfTheSession(Assistant),
    /// Named by the turn (`assistant_ids`): the assistant's own
    /// instructions, model and tools; the session's system prompt only
    /// when the assistant has no instructions.
    Named(Assistant),
    /// A request to the OpenAI-compatible routes: what it asked for.
    Client(ClientVoice),
}

/// What a request to the OpenAI-compatible routes asks of its reply,
/// within the service's limits.
#[derive(Debug, Clone)]
pub(crate) struct ClientVoice {
    /// The request's system message; `None` leaves the session's own (and
    /// none at all when the session has none: nothing is added).
    pub(crate) system_prompt: Option<String>,
    pub(crate) model: ModelName,
    /// Tools the client defined and runs itself.
    pub(crate) tools: Vec<ToolSpec>,
    pub(crate) temperature: Option<f32>,
    /// At most the service's own limit.
    pub(crate) max_tokens: Option<u32>,
}

/// Who answers a turn.
#[derive(Debug, Clone)]
pub(crate) enum Answerers {
    /// The session's own voice.
    Session,
    /// These assistants, in order.
    Named(Vec<Assistant>),
    /// The client of an OpenAI-compatible request.
    Client(ClientVoice),
}

impl Voice {
    fn assistant(&self) -> Option<&Assistant> {
        match self {
            Self::Default | Self::Client(_) => None,
            Self::OfTheSession(assistant) | Self::Named(assistant) => Some(assistant),
        }
    }

    fn model<'a>(&'a self, session: &'a Session) -> &'a ModelName {
        match self {
            Self::Default | Self::OfTheSession(_) => &session.model,
            Self::Named(assistant) => &assistant.model,
            Self::Client(client) => &client.model,
        }
    }

    fn system_prompt<'a>(&'a self, session: &'a Session, default: &'a str) -> &'a str {
        let session_prompt = session.system_prompt.as_ref().map(|p| p.as_str());
        let instructions = self
            .assistant()
            .and_then(|assistant| assistant.instructions.as_ref())
            .map(|i| i.as_str());
        let chosen = match self {
            Self::Default => session_prompt,
            Self::OfTheSession(_) => session_prompt.or(instructions),
            Self::Named(_) => instructions.or(session_prompt),
            // A gateway adds nothing the client did not send.
            Self::Client(client) => {
                return client
                    .system_prompt
                    .as_deref()
                    .or(session_prompt)
                    .unwrap_or("")
            }
        };
        chosen.unwrap_or(default)
    }

    /// The tools the reply is offered, and who runs them.
    fn tools(&self, configured: &ToolRegistry) -> (Vec<ToolSpec>, ToolUse) {
        let registry = match self {
            Self::Client(client) => return (client.tools.clone(), ToolUse::Client),
            Self::Default => configured.clone(),
            Self::OfTheSession(assistant) | Self::Named(assistant) => {
                configured.only(&assistant.tools)
            }
        };
        (registry.specs(), ToolUse::Run(registry))
    }
}

/// Where a turn joins the session's tree of messages.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Joins {
    /// After the newest message of the active branch: a send, a discussion.
    Head,
    /// Under this message, or as a new root with `None`: a regenerated
    /// reply (under its question) or an edited question (under the
    /// message it followed).
    Under(Option<MessageId>),
}

/// What a turn is asked to be.
pub(crate) struct TurnRequest {
    pub(crate) session_id: SessionId,
    /// The new question; `None` for a regenerated reply or a discussion.
    pub(crate) user_message: Option<Message>,
    pub(crate) answerers: Answerers,
    pub(crate) joins: Joins,
}

/// A turn as it was stored: the session, the history before it, who
/// answers, and its messages.
struct StoredTurn {
    session: Session,
    /// The branch before the turn, oldest first; its turns may be left out
    /// of a request when the context budget is short.
    history: SharedHistory,
    /// What every reply of the turn hears whatever the budget, before the
    /// turn's own messages: a turn with no new question (a regenerated
    /// reply, a discussion) answers the branch's last question, which
    /// goes with the answers that followed it.
    answering: Vec<Message>,
    voices: Vec<Voice>,
    replies: Vec<Message>,
}

impl ChatService {
    /// Stores the user's message and an empty `streaming` reply by the
    /// session's voice (its default assistant, if it has one), then
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
        caller: &Principal,
        session_id: SessionId,
        content: String,
    ) -> Result<SendOutcome, ChatError> {
        self.send_message_to(caller, session_id, content, None)
            .await
    }

    /// As [`ChatService::send_message`], answered by `assistants` (1 to
    /// [`MAX_ASSISTANTS_PER_TURN`], the caller's, in the order they speak;
    /// one may speak more than once), or with `None` by the session's voice.
    ///
    /// # Errors
    /// As [`ChatService::send_message`], and [`ChatError::BadAssistants`]
    /// for an empty or too long list, [`ChatError::AssistantNotFound`] when
    /// one is not the caller's.
    pub async fn send_message_to(
        &self,
        caller: &Principal,
        session_id: SessionId,
        content: String,
        assistants: Option<Vec<AssistantId>>,
    ) -> Result<SendOutcome, ChatError> {
        self.refuse_when_shutting_down()?;
        let content = MessageContent::parse(content, self.inner.config.max_message_chars)?;
        let answerers = match assistants {
            Some(ids) => Answerers::Named(self.named_assistants(caller, &ids).await?),
            None => Answerers::Session,
        };
        let user_message = Message::user(session_id, content);
        let request = TurnRequest {
            session_id,
            user_message: Some(user_message),
            answerers,
            joins: Joins::Head,
        };
        self.start_turn(caller, request).await
    }

    /// Makes `assistants` speak next with no new message: a discussion.
    /// Same answers as [`ChatService::send_message_to`].
    ///
    /// # Errors
    /// As [`ChatService::send_message_to`].
    pub async fn start_replies(
        &self,
        caller: &Principal,
        session_id: SessionId,
        assistants: Vec<AssistantId>,
    ) -> Result<SendOutcome, ChatError> {
        self.refuse_when_shutting_down()?;
        let named = self.named_assistants(caller, &assistants).await?;
        let request = TurnRequest {
            session_id,
            user_message: None,
            answerers: Answerers::Named(named),
            joins: Joins::Head,
        };
        self.start_turn(caller, request).await
    }

    pub(crate) fn refuse_when_shutting_down(&self) -> Result<(), ChatError> {
        if self.inner.shutting_down.load(Ordering::Acquire) {
            Err(ChatError::ShuttingDown)
        } else {
            Ok(())
        }
    }

    /// The caller's assistants `ids` names, in that order.
    pub(crate) async fn named_assistants(
        &self,
        caller: &Principal,
        ids: &[AssistantId],
    ) -> Result<Vec<Assistant>, ChatError> {
        if ids.is_empty() || ids.len() > MAX_ASSISTANTS_PER_TURN {
            return Err(ChatError::BadAssistants(format!(
                "`assistant_ids` names 1 to {MAX_ASSISTANTS_PER_TURN} assistants, not {}",
                ids.len()
            )));
        }
        let found: HashMap<AssistantId, Assistant> = self
            .assistant_store()
            .find_assistants(caller, ids)
            .await?
            .into_iter()
            .map(|assistant| (assistant.id, assistant))
            .collect();
        ids.iter()
            .map(|id| found.get(id).cloned().ok_or(ChatError::AssistantNotFound))
            .collect()
    }

    /// Claims the session's slot and runs the turn in a task of its own,
    /// returning once it is stored.
    pub(crate) async fn start_turn(
        &self,
        caller: &Principal,
        request: TurnRequest,
    ) -> Result<SendOutcome, ChatError> {
        let session_id = request.session_id;
        self.inner.allowance.check(caller).await?;
        // Held by the turn's task until its last reply has ended.
        let place = self.inner.limiter.acquire(Held::Reply, caller).await?;
        // The slot is claimed before anything is read: the history read
        // then cannot catch a previous turn halfway through finishing. The
        // first reply's id is fixed now for that (it still sorts after the
        // user message, being made after it; the turn's other replies are
        // made after it, so every message of the turn sorts from it on).
        let first_reply = MessageId::new();
        let Some(claim) = self
            .inner
            .events
            .claim_reply(session_id, first_reply)
            .await?
        else {
            // An unknown session has no reply running: this is a real 409.
            return Err(ChatError::ReplyInProgress);
        };
        // From the claim on, the turn runs in a task of its own: a caller
        // that goes away now cannot leave the slot taken or a reply
        // half-made. The caller waits only for the turn to be stored.
        let (started, outcome) = oneshot::channel();
        let service = self.clone();
        let owner = caller.clone();
        self.inner.replies.spawn(async move {
            service.run_turn(owner, claim, request, started).await;
            drop(place);
        });
        outcome.await.unwrap_or_else(|_| {
            Err(ChatError::Unexpected(anyhow::anyhow!(
                "the turn's task ended before the turn was stored"
            )))
        })
    }

    /// Stores the turn, announces it, tells the sender, then drives each
    /// reply to its end. The guard made first ends the turn whatever happens.
    async fn run_turn(
        self,
        owner: Principal,
        claim: Box<dyn ReplyClaim>,
        request: TurnRequest,
        started: oneshot::Sender<Result<SendOutcome, ChatError>>,
    ) {
        let TurnRequest {
            session_id,
            mut user_message,
            answerers,
            joins,
        } = request;
        let first_reply = claim.message_id();
        let placeholder = Message::streaming_reply(session_id, &self.inner.config.default_model);
        let mut guard = ReplyGuard::new(
            claim,
            placeholder,
            Arc::clone(&self.inner.repo),
            Arc::clone(&self.inner.events),
            owner.clone(),
        );
        let stored = self
            .store_turn(
                &owner,
                session_id,
                user_message.as_mut(),
                first_reply,
                answerers,
                joins,
            )
            .await;
        let StoredTurn {
            session,
            history,
            answering,
            voices,
            replies,
        } = match stored {
            Ok(stored) => stored,
            Err(error) => {
                guard.release().await;
                if matches!(error, ChatError::SessionNotFound) {
                    // The claim made a channel for an id that names no
                    // session: drop it now, so made-up ids cost no memory.
                    let _ = self.inner.events.close_session(session_id).await;
                }
                let _ = started.send(Err(error));
                return;
            }
        };
        guard.mark_stored(replies.clone());
        // Only a session's first question names it; an edited one does not.
        let title = user_message
            .as_ref()
            .filter(|_| matches!(joins, Joins::Head))
            .and_then(|question| self.title_job(&session, &history, question));

        match self
            .announce_turn(session_id, user_message.as_ref(), &replies)
            .await
        {
            Ok(events) => {
                let outcome = SendOutcome {
                    user_message: user_message.clone(),
                    assistant_messages: replies.clone(),
                    events,
                    canceller: TurnCanceller {
                        events: Arc::clone(&self.inner.events),
                        session: session_id,
                        turn: first_reply,
                    },
                };
                // A sender that went away leaves the turn running, as the
                // contract says of a client that goes away.
                let _ = started.send(Ok(outcome));
            }
            Err(error) => {
                // The turn is stored; its replies run, and clients that can
                // reach the log will see them. This sender cannot be told more.
                tracing::warn!(session_id = %session_id, %error, "could not follow a turn's events");
                let _ = started.send(Err(error));
            }
        }

        let driver = ReplyDriver {
            repo: Arc::clone(&self.inner.repo),
            owner: owner.clone(),
            llm: self
                .inner
                .allowance
                .meter(Arc::clone(&self.inner.llm), owner),
            events: Arc::clone(&self.inner.events),
            policy: self.inner.config.llm.clone(),
            flush_interval: self.inner.config.flush_interval,
            shutdown: self.inner.shutdown.clone(),
        };
        let mut turn_so_far: Vec<Message> = answering.into_iter().chain(user_message).collect();
        let mut title = title;
        for voice in &voices {
            let Some(request) = self
                .request_for(voice, &session, &history, &turn_so_far)
                .await
            else {
                // Dropping the guard stores the rest `failed` and frees the slot.
                return;
            };
            let (_, tools) = voice.tools(&self.inner.config.tools);
            driver.reply(&mut guard, request, &tools).await;
            let stopped = match guard.message.status {
                MessageStatus::Cancelled => Some((MessageStatus::Cancelled, None)),
                MessageStatus::Interrupted => {
                    Some((MessageStatus::Interrupted, Some(shutdown_error())))
                }
                _ => None,
            };
            let ended = guard.end_current().await;
            // Named after the first reply's final event, in a task of its
            // own. A reply whose final write failed ended `failed` and
            // names nothing.
            if let (Some(job), MessageStatus::Complete) = (title.take(), ended.status) {
                driver.name_session(job, &ended);
            }
            turn_so_far.push(ended);
            if let Some((status, error)) = stopped {
                guard.end_rest(status, error).await;
            }
            if guard.is_over() {
                break;
            }
        }
        self.keep_history(session_id, history, turn_so_far, &guard);
    }

    /// Keeps the branch as this turn left it for the session's next turn,
    /// when every reply ended complete and as stored here; otherwise what
    /// was kept is dropped, and the next turn reads the store.
    fn keep_history(
        &self,
        session_id: SessionId,
        history: SharedHistory,
        turn: Vec<Message>,
        guard: &ReplyGuard,
    ) {
        let histories = &self.inner.histories;
        // The entry this turn read (if it read one) is replaced whatever
        // happens; dropped first, it leaves `history` the only reference.
        histories.forget(session_id);
        let replies_complete = turn
            .iter()
            .filter(|message| message.role == Role::Assistant)
            .all(|message| message.status == MessageStatus::Complete);
        if guard.ended_elsewhere() || !replies_complete {
            return;
        }
        // Taken back rather than copied: the requests built from it are
        // done with it (cloned only if something unexpected still holds it).
        let mut branch = Arc::try_unwrap(history).unwrap_or_else(|shared| shared.as_ref().clone());
        branch.extend(turn);
        histories.keep(session_id, branch, self.inner.config.history_limit);
    }

    /// Reads the session and the branch the turn joins (concurrently: two
    /// short reads cost one round trip's latency, not two), decides who
    /// answers, then stores the turn's messages in one transaction, each
    /// under the one before it: the question under the branch's last
    /// message, the first reply under the question, each next reply under
    /// the one before, so every reply's branch holds what it heard.
    async fn store_turn(
        &self,
        owner: &Principal,
        session_id: SessionId,
        user: Option<&mut Message>,
        first_reply: MessageId,
        answerers: Answerers,
        joins: Joins,
    ) -> Result<StoredTurn, ChatError> {
        let repo = &self.inner.repo;
        let limit = self.inner.config.history_limit;
        let (mut session, history): (Session, SharedHistory) = match joins {
            Joins::Under(None) => (
                repo.get_session(owner, session_id).await?,
                SharedHistory::default(),
            ),
            Joins::Head => {
                // A running conversation's branch is usually kept from its
                // last turn: then only the session is read.
                let session = repo.get_session(owner, session_id).await?;
                let kept = self
                    .inner
                    .histories
                    .get(session_id, session.head_message_id);
                let history = match kept {
                    Some(kept) => kept,
                    None => Arc::new(repo.recent_messages(owner, session_id, None, limit).await?),
                };
                (session, history)
            }
            Joins::Under(Some(leaf)) => {
                let (session, history) = futures::try_join!(
                    repo.get_session(owner, session_id),
                    repo.recent_messages(owner, session_id, Some(leaf), limit),
                )?;
                (session, Arc::new(history))
            }
        };
        let mut parent = match joins {
            // The history read is the branch as it ends now.
            Joins::Head => history
                .last()
                .map(|message| message.id)
                .or(session.head_message_id),
            Joins::Under(parent) => parent,
        };
        let (history, answering) = if user.is_none() {
            let question = history
                .iter()
                .rposition(|message| message.role == Role::User)
                .unwrap_or(history.len());
            (
                Arc::new(history[..question].to_vec()),
                history[question..].to_vec(),
            )
        } else {
            (history, Vec::new())
        };
        let voices = match answerers {
            Answerers::Named(named) => named.into_iter().map(Voice::Named).collect(),
            Answerers::Session => vec![self.session_voice(owner, &session).await?],
            Answerers::Client(client) => vec![Voice::Client(client)],
        };
        if let Some(model) = &self.inner.config.reply_model {
            session.model = model.clone();
        }
        let mut messages: Vec<Message> = Vec::with_capacity(voices.len() + 1);
        if let Some(user) = user {
            user.parent_id = parent;
            parent = Some(user.id);
            messages.push(user.clone());
        }
        let reply_model = self.inner.config.reply_model.as_ref();
        let mut replies: Vec<Message> = Vec::with_capacity(voices.len());
        for (index, voice) in voices.iter().enumerate() {
            let model = reply_model.unwrap_or_else(|| voice.model(&session));
            let speaker = voice.assistant().map(Assistant::speaker);
            let mut reply = Message::streaming_reply_by(session_id, model, speaker);
            if index == 0 {
                reply.id = first_reply;
            }
            reply.parent_id = parent;
            parent = Some(reply.id);
            replies.push(reply);
        }
        messages.extend(replies.iter().cloned());
        repo.append_messages(owner, &messages).await?;
        Ok(StoredTurn {
            session,
            history,
            answering,
            voices,
            replies,
        })
    }

    /// The session's own voice: its default assistant when it has one that
    /// still exists, else the service's.
    async fn session_voice(
        &self,
        owner: &Principal,
        session: &Session,
    ) -> Result<Voice, ChatError> {
        let Some(id) = session.assistant_id else {
            return Ok(Voice::Default);
        };
        match self.assistant_store().get_assistant(owner, id).await {
            Ok(assistant) => Ok(Voice::OfTheSession(assistant)),
            // Deleted after the session read: the default voice answers.
            Err(RepoError::NotFound) => Ok(Voice::Default),
            Err(error) => Err(error.into()),
        }
    }

    /// Publishes `message.created` for every message of the turn, and
    /// follows the turn's events from the first.
    async fn announce_turn(
        &self,
        session_id: SessionId,
        user: Option<&Message>,
        replies: &[Message],
    ) -> Result<ReplyEvents, ChatError> {
        let events = &self.inner.events;
        let mut created = user.into_iter().chain(replies);
        let first = created
            .next()
            .map(|message| EventKind::MessageCreated(message.clone()));
        let first = match first {
            Some(kind) => events.publish(session_id, kind).await,
            None => {
                return Err(ChatError::Unexpected(anyhow::anyhow!(
                    "a turn without messages"
                )))
            }
        };
        for message in created {
            self.publish(session_id, EventKind::MessageCreated(message.clone()))
                .await;
        }
        let first = first?;
        let subscription = events
            .subscribe(session_id, StartAt::After(first - 1))
            .await?;
        let last = replies.last().map_or(replies[0].id, |reply| reply.id);
        Ok(ReplyEvents::new(
            Subscription::new(subscription),
            replies[0].id,
            last,
            session_id,
            Arc::clone(events),
        ))
    }

    /// The request of `voice`'s reply, built off the async workers
    /// (counting tokens is CPU work); `None` when building it failed.
    async fn request_for(
        &self,
        voice: &Voice,
        session: &Session,
        history: &SharedHistory,
        turn_so_far: &[Message],
    ) -> Option<colloquy_ports::ChatRequest> {
        let config = &self.inner.config;
        let model = config
            .reply_model
            .as_ref()
            .unwrap_or_else(|| voice.model(session));
        let prompt = Prompt {
            session_id: session.id,
            model: model.as_str().to_owned(),
            system_prompt: voice
                .system_prompt(session, &config.default_system_prompt)
                .to_owned(),
            speaker: voice.assistant().map(|assistant| assistant.id),
            history: Arc::clone(history),
            turn: turn_so_far.to_vec(),
            context_tokens: config.context_tokens,
            tools: voice.tools(&config.tools).0,
        };
        let (max_tokens, temperature) = match voice {
            Voice::Client(client) => (
                at_most(client.max_tokens, config.max_reply_tokens),
                client.temperature,
            ),
            _ => (config.max_reply_tokens, None),
        };
        match tokio::task::spawn_blocking(move || build_request(&prompt)).await {
            Ok(mut request) => {
                request.max_tokens = max_tokens;
                request.temperature = temperature;
                Some(request)
            }
            Err(error) => {
                tracing::error!(%error, "building a reply's request failed");
                None
            }
        }
    }

    /// What naming the session takes, when this turn is to name it: the
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
}

/// The smaller of two limits, either of which may be absent.
fn at_most(asked: Option<u32>, allowed: Option<u32>) -> Option<u32> {
    match (asked, allowed) {
        (Some(asked), Some(allowed)) => Some(asked.min(allowed)),
        (asked, allowed) => asked.or(allowed),
    }
}
