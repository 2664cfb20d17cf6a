//! Test doubles of the store and the model that keep state, written by hand:
//! the model-based test needs a store that remembers what it was told and
//! fails when told to, and a model that answers each turn as its script says.

use std::collections::{HashMap, HashSet, VecDeque};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};

use async_trait::async_trait;
use colloquy_domain::{
    ConversationChain, ErrorCode, Message, MessageError, MessageId, MessageStatus, Principal, Role,
    Session, SessionId, Timestamp, Title,
};
use colloquy_ports::{
    BranchMessage, ChatChunk, ChatRepository, ChatRequest, ChatStream, Completion, LlmClient,
    LlmError, Page, PromptRole, RepoError, SearchHit, SessionChanges, Siblings, StoredEnd,
};
use futures::Stream;

/// What a [`Answer::Panic`] stream panics with; the test's panic hook keeps
/// these out of the output.
pub const SCRIPTED_PANIC: &str = "a scripted panic inside the model's stream";

/// A test's locks guard plain data: a panic elsewhere leaves it usable.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a store write fails.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// `RepoError::Unavailable`: busy, worth retrying.
    Unavailable,
    /// `RepoError::Unknown`: a bug or a corrupt row, not worth retrying.
    Unknown,
}

impl Fault {
    fn error(self) -> RepoError {
        match self {
            Self::Unavailable => {
                RepoError::Unavailable(anyhow::anyhow!("injected: the store is busy"))
            }
            Self::Unknown => RepoError::Unknown(anyhow::anyhow!("injected: a corrupt row")),
        }
    }
}

/// Which writes an injected fault hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Write {
    /// `update_message`: a reply's progress and its final state.
    Update,
    /// `append_messages`: storing a turn.
    Append,
}

#[derive(Debug, Default)]
struct Store {
    sessions: HashMap<SessionId, Session>,
    /// Each session's messages, oldest first.
    messages: HashMap<SessionId, Vec<Message>>,
    failing_updates: VecDeque<Fault>,
    failing_appends: VecDeque<Fault>,
    /// Whether the latest `update_message` of each message failed.
    last_update_failed: HashMap<MessageId, bool>,
}

impl Store {
    fn message_mut(&mut self, id: MessageId) -> Option<&mut Message> {
        self.messages
            .values_mut()
            .flat_map(|messages| messages.iter_mut())
            .find(|message| message.id == id)
    }

    /// As a real store scopes every query: another's session is not found.
    fn owned_by(&self, owner: &Principal, id: SessionId) -> Result<(), RepoError> {
        match self.sessions.get(&id) {
            Some(session) if session.owner == *owner => Ok(()),
            _ => Err(RepoError::NotFound),
        }
    }

    fn counted(&self, id: SessionId) -> Result<Session, RepoError> {
        let mut session = self.sessions.get(&id).cloned().ok_or(RepoError::NotFound)?;
        session.message_count = self.branch(id, session.head_message_id)?.len() as u64;
        Ok(session)
    }

    /// The branch ending at `leaf` (the head when `None`), oldest first.
    fn branch(&self, id: SessionId, leaf: Option<MessageId>) -> Result<Vec<Message>, RepoError> {
        let session = self.sessions.get(&id).ok_or(RepoError::NotFound)?;
        let messages = self.messages.get(&id).ok_or(RepoError::NotFound)?;
        let Some(mut at) = leaf.or(session.head_message_id) else {
            return Ok(Vec::new());
        };
        let mut branch = Vec::new();
        loop {
            let message = messages
                .iter()
                .find(|m| m.id == at)
                .ok_or(RepoError::NotFound)?;
            branch.push(message.clone());
            match message.parent_id {
                Some(parent) => at = parent,
                None => break,
            }
        }
        branch.reverse();
        Ok(branch)
    }
}

/// An in-memory [`ChatRepository`] whose next writes can be made to fail.
#[derive(Debug, Default)]
pub struct FakeRepo {
    store: Mutex<Store>,
    /// How many times a branch's recent messages were read.
    recent_reads: std::sync::atomic::AtomicUsize,
}

impl FakeRepo {
    /// How many times [`ChatRepository::recent_messages`] was called.
    pub fn recent_reads(&self) -> usize {
        self.recent_reads.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// The next `times` writes of this kind fail with `fault`.
    pub fn fail_next(&self, write: Write, fault: Fault, times: usize) {
        let mut store = lock(&self.store);
        let queue = match write {
            Write::Update => &mut store.failing_updates,
            Write::Append => &mut store.failing_appends,
        };
        queue.extend(std::iter::repeat_n(fault, times));
    }

    /// The fault the next `append_messages` will fail with, if any.
    pub fn next_append_fault(&self) -> Option<Fault> {
        lock(&self.store).failing_appends.front().copied()
    }

    /// A message as stored now.
    pub fn message(&self, id: MessageId) -> Option<Message> {
        lock(&self.store)
            .message_mut(id)
            .map(|message| message.clone())
    }

    /// Whether the latest write of this message's state failed.
    pub fn last_update_failed(&self, id: MessageId) -> bool {
        lock(&self.store)
            .last_update_failed
            .get(&id)
            .copied()
            .unwrap_or(false)
    }
}

/// Every call takes a moment, as a real store's round trip does: whatever
/// else is ready runs meanwhile (a subscriber reading what was just
/// published, say), so an order that only holds when nothing runs in
/// between shows up.
async fn round_trip() {
    tokio::task::yield_now().await;
}

#[async_trait]
impl ChatRepository for FakeRepo {
    async fn create_session(&self, session: &Session) -> Result<(), RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        store.sessions.insert(session.id, session.clone());
        store.messages.insert(session.id, Vec::new());
        Ok(())
    }

    async fn get_session(&self, owner: &Principal, id: SessionId) -> Result<Session, RepoError> {
        round_trip().await;
        let store = lock(&self.store);
        store.owned_by(owner, id)?;
        store.counted(id)
    }

    async fn list_sessions(
        &self,
        owner: &Principal,
        limit: usize,
        after: Option<SessionId>,
    ) -> Result<Page<Session>, RepoError> {
        round_trip().await;
        let store = lock(&self.store);
        let mut ids: Vec<SessionId> = store.sessions.keys().copied().collect();
        ids.sort_unstable_by(|a, b| b.cmp(a));
        let mut items: Vec<Session> = ids
            .into_iter()
            .filter(|id| after.is_none_or(|after| *id < after))
            .filter(|id| store.owned_by(owner, *id).is_ok())
            .map(|id| store.counted(id))
            .collect::<Result<_, _>>()?;
        let has_more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, has_more })
    }

    async fn update_session(
        &self,
        owner: &Principal,
        id: SessionId,
        changes: &SessionChanges,
        at: Timestamp,
    ) -> Result<Session, RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        store.owned_by(owner, id)?;
        let session = store.sessions.get_mut(&id).ok_or(RepoError::NotFound)?;
        if let Some(title) = &changes.title {
            session.title.clone_from(title);
        }
        if let Some(prompt) = &changes.system_prompt {
            session.system_prompt.clone_from(prompt);
        }
        if let Some(model) = &changes.model {
            session.model = model.clone();
        }
        session.updated_at = at;
        store.counted(id)
    }

    async fn set_title_if_untitled(
        &self,
        owner: &Principal,
        id: SessionId,
        title: &Title,
        at: Timestamp,
    ) -> Result<Option<Session>, RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        store.owned_by(owner, id)?;
        let session = store.sessions.get_mut(&id).ok_or(RepoError::NotFound)?;
        if session.title.is_some() {
            return Ok(None);
        }
        session.title = Some(title.clone());
        session.updated_at = at;
        store.counted(id).map(Some)
    }

    async fn delete_session(&self, owner: &Principal, id: SessionId) -> Result<(), RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        store.owned_by(owner, id)?;
        store.sessions.remove(&id).ok_or(RepoError::NotFound)?;
        store.messages.remove(&id);
        Ok(())
    }

    async fn append_messages(
        &self,
        owner: &Principal,
        messages: &[Message],
    ) -> Result<(), RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        let Some(first) = messages.first() else {
            return Ok(());
        };
        store.owned_by(owner, first.session_id)?;
        if let Some(fault) = store.failing_appends.pop_front() {
            return Err(fault.error());
        }
        let session_id = first.session_id;
        store
            .messages
            .entry(session_id)
            .or_default()
            .extend(messages.iter().cloned());
        if let Some(session) = store.sessions.get_mut(&session_id) {
            session.updated_at = Timestamp::now();
            session.head_message_id = messages.last().map(|m| m.id);
        }
        Ok(())
    }

    async fn update_message(&self, owner: &Principal, message: &Message) -> Result<(), RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        store.owned_by(owner, message.session_id)?;
        // As the real stores: a final state, once stored, stays, but the
        // same write made again still matches.
        match store.message_mut(message.id) {
            None => return Err(RepoError::NotFound),
            Some(stored)
                if stored.status != MessageStatus::Streaming
                    && stored.completed_at != message.completed_at =>
            {
                return Err(RepoError::NotFound);
            }
            Some(_) => {}
        }
        if let Some(fault) = store.failing_updates.pop_front() {
            store.last_update_failed.insert(message.id, true);
            return Err(fault.error());
        }
        store.last_update_failed.insert(message.id, false);
        let stored = store.message_mut(message.id).expect("found above");
        stored.content.clone_from(&message.content);
        stored.status = message.status;
        stored.finish_reason.clone_from(&message.finish_reason);
        stored.usage = message.usage;
        stored.error.clone_from(&message.error);
        stored.tool_calls.clone_from(&message.tool_calls);
        stored.completed_at = message.completed_at;
        Ok(())
    }

    async fn list_messages(
        &self,
        owner: &Principal,
        session: SessionId,
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<Message>, RepoError> {
        round_trip().await;
        let store = lock(&self.store);
        store.owned_by(owner, session)?;
        let messages = store.messages.get(&session).ok_or(RepoError::NotFound)?;
        let mut items: Vec<Message> = messages
            .iter()
            .filter(|message| after.is_none_or(|after| message.id > after))
            .cloned()
            .collect();
        let has_more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, has_more })
    }

    async fn list_branch(
        &self,
        owner: &Principal,
        session: SessionId,
        leaf: Option<MessageId>,
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<BranchMessage>, RepoError> {
        round_trip().await;
        let store = lock(&self.store);
        store.owned_by(owner, session)?;
        let branch = store.branch(session, leaf)?;
        let start = after
            .and_then(|after| branch.iter().position(|m| m.id == after))
            .map_or(0, |at| at + 1);
        let all = store.messages.get(&session).ok_or(RepoError::NotFound)?;
        let mut items: Vec<BranchMessage> = branch[start..]
            .iter()
            .map(|message| {
                let ids: Vec<MessageId> = all
                    .iter()
                    .filter(|m| m.parent_id == message.parent_id)
                    .map(|m| m.id)
                    .collect();
                let index = ids.iter().position(|id| *id == message.id).unwrap_or(0);
                BranchMessage {
                    message: message.clone(),
                    siblings: Siblings { ids, index },
                }
            })
            .collect();
        let has_more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, has_more })
    }

    async fn recent_messages(
        &self,
        owner: &Principal,
        session: SessionId,
        leaf: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, RepoError> {
        round_trip().await;
        self.recent_reads
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let store = lock(&self.store);
        store.owned_by(owner, session)?;
        let branch = store.branch(session, leaf)?;
        Ok(branch[branch.len().saturating_sub(limit)..].to_vec())
    }

    async fn get_message(
        &self,
        owner: &Principal,
        session: SessionId,
        id: MessageId,
    ) -> Result<Message, RepoError> {
        round_trip().await;
        let store = lock(&self.store);
        store.owned_by(owner, session)?;
        store
            .messages
            .get(&session)
            .and_then(|messages| messages.iter().find(|m| m.id == id))
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn switch_branch(
        &self,
        owner: &Principal,
        session: SessionId,
        to: MessageId,
        at: Timestamp,
    ) -> Result<Session, RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        store.owned_by(owner, session)?;
        let messages = store.messages.get(&session).ok_or(RepoError::NotFound)?;
        if !messages.iter().any(|m| m.id == to) {
            return Err(RepoError::NotFound);
        }
        // The newest leaf below `to`: walk down to every descendant.
        let mut below = vec![to];
        let mut leaf = to;
        while let Some(at) = below.pop() {
            let children: Vec<MessageId> = messages
                .iter()
                .filter(|m| m.parent_id == Some(at))
                .map(|m| m.id)
                .collect();
            if children.is_empty() && (leaf == to || at > leaf) {
                leaf = at;
            }
            below.extend(children);
        }
        let stored = store
            .sessions
            .get_mut(&session)
            .ok_or(RepoError::NotFound)?;
        stored.head_message_id = Some(leaf);
        stored.updated_at = at;
        store.counted(session)
    }

    async fn search_messages(
        &self,
        owner: &Principal,
        terms: &[String],
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<SearchHit>, RepoError> {
        round_trip().await;
        let store = lock(&self.store);
        let mut items: Vec<SearchHit> = store
            .sessions
            .values()
            .filter(|session| session.owner == *owner)
            .flat_map(|session| {
                store.messages[&session.id]
                    .iter()
                    .map(move |m| (session, m))
            })
            .filter(|(_, m)| after.is_none_or(|after| m.id < after))
            .filter(|(_, m)| {
                let text = m.content.to_lowercase();
                terms.iter().all(|term| text.contains(&term.to_lowercase()))
            })
            .map(|(session, m)| SearchHit {
                session_id: session.id,
                session_title: session.title.clone(),
                message_id: m.id,
                role: m.role,
                created_at: m.created_at,
                snippet: m.content.clone(),
            })
            .collect();
        items.sort_by_key(|hit| std::cmp::Reverse(hit.message_id));
        let has_more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, has_more })
    }

    async fn find_by_chain(
        &self,
        owner: &Principal,
        chain: ConversationChain,
        system_prompt: Option<String>,
    ) -> Result<Option<Message>, RepoError> {
        round_trip().await;
        let store = lock(&self.store);
        let mut newest: Option<Message> = None;
        for (session_id, messages) in &store.messages {
            let session = &store.sessions[session_id];
            if store.owned_by(owner, *session_id).is_err()
                || session.system_prompt.as_ref().map(|p| p.as_str()) != system_prompt.as_deref()
            {
                continue;
            }
            // The fake walks every branch: the real stores look the chain up.
            for message in messages.iter().filter(|m| m.status.is_final()) {
                let branch = store.branch(*session_id, Some(message.id))?;
                let its_chain =
                    ConversationChain::of(branch.iter().map(|m| (m.role, m.content.as_str())));
                let newer = newest.as_ref().is_none_or(|n| n.id < message.id);
                if its_chain == Some(chain) && newer {
                    newest = Some(message.clone());
                }
            }
        }
        Ok(newest)
    }

    async fn record_tool_results(
        &self,
        owner: &Principal,
        session: SessionId,
        message: MessageId,
        results: &[(String, String)],
    ) -> Result<Message, RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        store.owned_by(owner, session)?;
        let stored = store
            .messages
            .get_mut(&session)
            .and_then(|messages| messages.iter_mut().find(|m| m.id == message))
            .ok_or(RepoError::NotFound)?;
        let mut calls = stored.tool_calls.clone();
        for (id, result) in results {
            let call = calls
                .iter_mut()
                .find(|call| &call.id == id)
                .ok_or(RepoError::NotFound)?;
            call.result.get_or_insert_with(|| result.clone());
        }
        stored.tool_calls = calls;
        Ok(stored.clone())
    }

    async fn import_session(
        &self,
        session: &Session,
        messages: &[Message],
    ) -> Result<(), RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        store.sessions.insert(session.id, session.clone());
        store.messages.insert(session.id, messages.to_vec());
        Ok(())
    }

    async fn interrupt_streaming(&self) -> Result<u64, RepoError> {
        Ok(0)
    }

    async fn interrupt_turn(
        &self,
        session: SessionId,
        first: MessageId,
    ) -> Result<Vec<StoredEnd>, RepoError> {
        round_trip().await;
        let mut store = lock(&self.store);
        let messages = store
            .messages
            .get_mut(&session)
            .ok_or(RepoError::NotFound)?;
        if !messages.iter().any(|m| m.id == first) {
            return Err(RepoError::NotFound);
        }
        let mut ends = Vec::new();
        for stored in messages
            .iter_mut()
            .filter(|m| m.id >= first && m.role == Role::Assistant)
        {
            let changed = stored.status == MessageStatus::Streaming;
            if changed {
                stored.finish(
                    MessageStatus::Interrupted,
                    Some(MessageError {
                        code: ErrorCode::Interrupted,
                        message: "its replica stopped".to_owned(),
                    }),
                );
            }
            ends.push(StoredEnd {
                message: stored.clone(),
                changed,
            });
        }
        Ok(ends)
    }

    async fn streaming_replies(
        &self,
        before: Timestamp,
        most: usize,
    ) -> Result<Vec<(SessionId, MessageId)>, RepoError> {
        round_trip().await;
        let store = lock(&self.store);
        let mut streaming: Vec<&Message> = store
            .messages
            .values()
            .flatten()
            .filter(|m| m.status == MessageStatus::Streaming && m.created_at < before)
            .collect();
        streaming.sort_by_key(|m| m.created_at);
        Ok(streaming
            .into_iter()
            .take(most)
            .map(|m| (m.session_id, m.id))
            .collect())
    }

    async fn ping(&self) -> Result<(), RepoError> {
        Ok(())
    }
}

/// How the model answers one request of a turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// This many pieces of text, then the end of the reply.
    Text(u8),
    /// This many pieces, then a (retryable) protocol error instead of an end.
    Broken(u8),
    /// A 503 before any chunk.
    Unavailable,
    /// A 400, which is never retried.
    Rejected,
    /// This many pieces, then nothing until the reply is cancelled (or the
    /// idle timeout gives up on it).
    Hang(u8),
    /// This many pieces, then a panic inside the stream's `poll_next`: the
    /// reply's task dies.
    Panic(u8),
}

/// How the model answers one turn: its requests in order (the first, then
/// each retry); requests past the end get two pieces of text and an end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Script {
    pub answers: Vec<Answer>,
    /// Pieces of 300 characters instead of a few: events big enough for the
    /// log's byte limit to matter, and a final message bigger than it.
    pub long_pieces: bool,
}

#[derive(Debug, Default)]
struct Scripts {
    /// Each turn's answers still to give, by the turn's user message.
    turns: HashMap<String, (VecDeque<Answer>, bool)>,
    /// Turns whose current stream is hanging, as scripted.
    hanging: HashSet<String>,
}

/// An [`LlmClient`] that answers each turn (told apart by its user message)
/// as its [`Script`] says.
#[derive(Debug, Default)]
pub struct ScriptedLlm {
    scripts: Arc<Mutex<Scripts>>,
}

impl ScriptedLlm {
    /// The requests of the turn whose user message is `turn` are answered so.
    pub fn script(&self, turn: &str, script: &Script) {
        lock(&self.scripts).turns.insert(
            turn.to_owned(),
            (script.answers.iter().copied().collect(), script.long_pieces),
        );
    }

    /// Whether the turn's reply is waiting on a stream that hangs as scripted.
    pub fn is_hanging(&self, turn: &str) -> bool {
        lock(&self.scripts).hanging.contains(turn)
    }
}

#[async_trait]
impl LlmClient for ScriptedLlm {
    async fn stream_chat(&self, request: ChatRequest) -> Result<ChatStream, LlmError> {
        round_trip().await;
        let turn = request
            .messages
            .iter()
            .rev()
            .find(|message| message.role == PromptRole::User)
            .map(|message| message.content.clone())
            .unwrap_or_default();
        let (answer, long) = {
            let mut scripts = lock(&self.scripts);
            let Some((answers, long)) = scripts.turns.get_mut(&turn) else {
                return Err(LlmError::Internal {
                    message: format!("no script for the turn {turn:?}"),
                });
            };
            (answers.pop_front().unwrap_or(Answer::Text(2)), *long)
        };
        let piece = |index: u8| {
            if long {
                format!("{index}{}", "x".repeat(299))
            } else {
                format!("p{index} ")
            }
        };
        let pieces = |count: u8| -> VecDeque<Item> {
            (0..count)
                .map(|index| Item::Chunk(Ok(ChatChunk::Delta(piece(index)))))
                .collect()
        };
        let items = match answer {
            Answer::Unavailable => {
                return Err(LlmError::Unavailable {
                    retry_after: None,
                    message: "503".into(),
                })
            }
            Answer::Rejected => {
                return Err(LlmError::Rejected {
                    status: 400,
                    message: "bad request".into(),
                })
            }
            Answer::Text(count) => {
                let mut items = pieces(count);
                items.push_back(Item::Chunk(Ok(ChatChunk::Finished(Completion {
                    finish_reason: "stop".into(),
                    usage: None,
                }))));
                items
            }
            Answer::Broken(count) => {
                let mut items = pieces(count);
                items.push_back(Item::Chunk(Err(LlmError::Protocol {
                    message: "the stream was cut".into(),
                })));
                items
            }
            Answer::Hang(count) => {
                let mut items = pieces(count);
                items.push_back(Item::Hang);
                items
            }
            Answer::Panic(count) => {
                let mut items = pieces(count);
                items.push_back(Item::Panic);
                items
            }
        };
        Ok(Box::pin(ScriptedStream {
            items,
            turn,
            scripts: Arc::clone(&self.scripts),
            yielded: false,
            hanging: false,
        }))
    }
}

enum Item {
    Chunk(Result<ChatChunk, LlmError>),
    Hang,
    Panic,
}

/// A scripted completion. Before each item it lets the runtime run whatever
/// else is ready, as a network stream would: the reply never publishes more
/// than an event or two before a subscriber that keeps up gets to read.
struct ScriptedStream {
    items: VecDeque<Item>,
    turn: String,
    scripts: Arc<Mutex<Scripts>>,
    yielded: bool,
    hanging: bool,
}

impl Stream for ScriptedStream {
    type Item = Result<ChatChunk, LlmError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if !self.yielded {
            self.yielded = true;
            cx.waker().wake_by_ref();
            return Poll::Pending;
        }
        match self.items.pop_front() {
            Some(Item::Chunk(chunk)) => {
                self.yielded = false;
                Poll::Ready(Some(chunk))
            }
            Some(Item::Hang) => {
                self.items.push_front(Item::Hang);
                if !self.hanging {
                    self.hanging = true;
                    lock(&self.scripts).hanging.insert(self.turn.clone());
                }
                Poll::Pending
            }
            Some(Item::Panic) => std::panic::panic_any(SCRIPTED_PANIC),
            None => Poll::Ready(None),
        }
    }
}

impl Drop for ScriptedStream {
    fn drop(&mut self) {
        if self.hanging {
            lock(&self.scripts).hanging.remove(&self.turn);
        }
    }
}
