use async_trait::async_trait;
use colloquy_domain::{
    Assistant, AssistantId, AssistantName, ConversationChain, Instructions, Message, MessageId,
    ModelName, Principal, Role, Session, SessionId, SystemPrompt, Timestamp, Title,
};

/// One page of a listing, and whether more follow it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub has_more: bool,
}

/// A change to a session's settings. `None` leaves a field as it is;
/// `Some(None)` clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionChanges {
    pub title: Option<Option<Title>>,
    pub system_prompt: Option<Option<SystemPrompt>>,
    pub model: Option<ModelName>,
    /// The session's default assistant. The store does not check that it
    /// exists: the use case does, before.
    pub assistant_id: Option<Option<AssistantId>>,
}

/// A change to an assistant. `None` leaves a field as it is; `Some(None)`
/// clears an optional one.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AssistantChanges {
    pub name: Option<AssistantName>,
    pub instructions: Option<Option<Instructions>>,
    pub model: Option<ModelName>,
    pub tools: Option<Vec<String>>,
}

/// The messages that share a message's parent (its own included), oldest
/// first, and its place among them: what lets a client show "2 / 3".
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Siblings {
    pub ids: Vec<MessageId>,
    pub index: usize,
}

/// A message of a branch, with its siblings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BranchMessage {
    pub message: Message,
    pub siblings: Siblings,
}

/// One message that matched a search.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SearchHit {
    pub session_id: SessionId,
    pub session_title: Option<Title>,
    pub message_id: MessageId,
    pub role: Role,
    pub created_at: Timestamp,
    /// The matching part of the text, each hit between `«` and `»`.
    pub snippet: String,
}

/// A reply as [`ChatRepository::interrupt_turn`] left it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEnd {
    pub message: Message,
    /// Whether that call stored it `interrupted`; `false` when its final
    /// state was stored before.
    pub changed: bool,
}

/// What can go wrong with storage, in terms the core can act on.
#[derive(Debug, thiserror::Error)]
pub enum RepoError {
    /// The session or message does not exist (or no longer does).
    #[error("not found")]
    NotFound,
    /// A value that must be unique is taken (an assistant's name, among its
    /// owner's assistants). Nothing was written.
    #[error("already taken")]
    Conflict,
    /// The store cannot be reached or is overloaded right now; trying later may work.
    #[error("the store is unavailable: {0:#}")]
    Unavailable(anyhow::Error),
    /// Anything else: a bug or a corrupt database. Logged, never shown to a client.
    #[error(transparent)]
    Unknown(anyhow::Error),
}

/// Where sessions and their messages are kept.
///
/// **Invariant:** every method that reads or writes a session or its
/// messages takes the `owner` it acts for, and the query itself is scoped by
/// it: another principal's session is [`RepoError::NotFound`], exactly as an
/// unknown one.
///
/// Every method is one short transaction. Implementations run their blocking
/// work off the async reactor themselves, so callers just `.await`.
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait ChatRepository: Send + Sync {
    /// Stores a new session, owned by `session.owner`.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] or [`RepoError::Unknown`] when the store fails.
    async fn create_session(&self, session: &Session) -> Result<(), RepoError>;

    /// The session with this id, with its current `message_count`.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when there is no such session; otherwise as
    /// [`ChatRepository::create_session`].
    async fn get_session(&self, owner: &Principal, id: SessionId) -> Result<Session, RepoError>;

    /// Up to `limit` sessions, newest first, starting after the session `after`
    /// (which need not exist any more: the cursor is its id's place in the order).
    ///
    /// # Errors
    /// As [`ChatRepository::create_session`].
    async fn list_sessions(
        &self,
        owner: &Principal,
        limit: usize,
        after: Option<SessionId>,
    ) -> Result<Page<Session>, RepoError>;

    /// Writes only the fields `changes` sets, and `updated_at = at`, in one
    /// statement, and returns the session as stored afterwards (with its
    /// current `message_count`). Fields it leaves alone keep whatever a
    /// concurrent writer stored, so updates of different fields never undo
    /// each other.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when there is no such session; otherwise as
    /// [`ChatRepository::create_session`].
    async fn update_session(
        &self,
        owner: &Principal,
        id: SessionId,
        changes: &SessionChanges,
        at: Timestamp,
    ) -> Result<Session, RepoError>;

    /// Sets the session's title (and `updated_at = at`) only if it has none,
    /// in one conditional statement (`... WHERE id = ? AND title IS NULL`), so
    /// a title the user set meanwhile always wins. Returns the session as
    /// stored when the title was set, `None` when the session already had a
    /// title (and nothing was changed).
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when there is no such session; otherwise as
    /// [`ChatRepository::create_session`].
    async fn set_title_if_untitled(
        &self,
        owner: &Principal,
        id: SessionId,
        title: &Title,
        at: Timestamp,
    ) -> Result<Option<Session>, RepoError>;

    /// Deletes a session and all its messages.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when there is no such session; otherwise as
    /// [`ChatRepository::create_session`].
    async fn delete_session(&self, owner: &Principal, id: SessionId) -> Result<(), RepoError>;

    /// Appends messages of one session, in order, in a single transaction,
    /// each under its `parent_id` (which must be a message of the session
    /// stored before, or one earlier in `messages`), and makes the last one
    /// the session's head: its `message_count` becomes the length of that
    /// branch, `updated_at` moves. When this returns `Ok`, the messages are
    /// durable.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when the session does not exist (nothing is
    /// stored then); otherwise as [`ChatRepository::create_session`].
    async fn append_messages(
        &self,
        owner: &Principal,
        messages: &[Message],
    ) -> Result<(), RepoError>;

    /// Replaces a stored message's mutable fields: content, status, finish
    /// reason, usage, error, tool calls and `completed_at` — only while the
    /// stored message is `streaming`. A message whose final state is stored
    /// never changes again, so a reply that a sweeper ended (its replica
    /// lost its lease) cannot overwrite the end that was announced.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when the message (or its session) was
    /// deleted, or its final state is stored already; otherwise as
    /// [`ChatRepository::create_session`].
    async fn update_message(&self, owner: &Principal, message: &Message) -> Result<(), RepoError>;

    /// Up to `limit` messages of a session on every branch, oldest first (by
    /// id), after the message `after`: the whole tree, for an export.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when there is no such session; otherwise as
    /// [`ChatRepository::create_session`].
    async fn list_messages(
        &self,
        owner: &Principal,
        session: SessionId,
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<Message>, RepoError>;

    /// Up to `limit` messages of the branch that ends at `leaf` (the
    /// session's head when `None`), oldest first, after the message `after`
    /// of that branch, each with its siblings: a session's history.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when there is no such session, or `leaf` is
    /// not one of its messages; otherwise as [`ChatRepository::create_session`].
    async fn list_branch(
        &self,
        owner: &Principal,
        session: SessionId,
        leaf: Option<MessageId>,
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<BranchMessage>, RepoError>;

    /// The newest `limit` messages of the branch that ends at `leaf` (the
    /// session's head when `None`), returned oldest first: the history a
    /// reply is built on, without reading a long session whole.
    ///
    /// # Errors
    /// As [`ChatRepository::list_branch`].
    async fn recent_messages(
        &self,
        owner: &Principal,
        session: SessionId,
        leaf: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, RepoError>;

    /// One message of a session.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when the session or the message (in that
    /// session) does not exist; otherwise as [`ChatRepository::create_session`].
    async fn get_message(
        &self,
        owner: &Principal,
        session: SessionId,
        id: MessageId,
    ) -> Result<Message, RepoError>;

    /// Makes the newest leaf below `to` (`to` itself when nothing follows
    /// it) the session's head, with `updated_at = at`, and returns the
    /// session as stored afterwards.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when the session does not exist or `to` is
    /// not one of its messages; otherwise as [`ChatRepository::create_session`].
    async fn switch_branch(
        &self,
        owner: &Principal,
        session: SessionId,
        to: MessageId,
        at: Timestamp,
    ) -> Result<Session, RepoError>;

    /// The owner's messages, on every branch of every session it has, whose
    /// text holds every one of `terms` (full-text: words, not substrings;
    /// case and accents ignored), newest first, after the message `after`.
    /// `terms` are plain words, never query syntax: the store quotes them.
    ///
    /// # Errors
    /// As [`ChatRepository::create_session`].
    async fn search_messages(
        &self,
        owner: &Principal,
        terms: &[String],
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<SearchHit>, RepoError>;

    /// The owner's newest message whose conversation chain (the roles and
    /// texts of its branch from the first message to it, see
    /// [`ConversationChain`]) is `chain`, in a session whose system prompt
    /// is `system_prompt` (`None`: a session with none). One indexed lookup:
    /// its cost does not grow with the number of stored messages.
    ///
    /// Every message has its chain stored once its text is final (a user
    /// message at once, a reply when it ends, however it ends); a reply
    /// still `streaming` is never found.
    ///
    /// # Errors
    /// As [`ChatRepository::create_session`].
    async fn find_by_chain(
        &self,
        owner: &Principal,
        chain: ConversationChain,
        system_prompt: Option<String>,
    ) -> Result<Option<Message>, RepoError>;

    /// Stores the results a client returned for tool calls that a reply
    /// made and colloquy did not run (tools the client defined, through
    /// the OpenAI-compatible routes): each `(call id, result)` sets the
    /// `result` of the message's call with that id, when it has none yet.
    /// The message is otherwise final and stays as it is. Returns the
    /// message as stored afterwards.
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when the session or the message (in that
    /// session) does not exist, or it has no call with one of the ids;
    /// otherwise as [`ChatRepository::create_session`].
    async fn record_tool_results(
        &self,
        owner: &Principal,
        session: SessionId,
        message: MessageId,
        results: &[(String, String)],
    ) -> Result<Message, RepoError>;

    /// Stores a new session (owned by `session.owner`, its head and count as
    /// given) with all its messages, parents before children, in one
    /// transaction: nothing is stored when anything fails.
    ///
    /// # Errors
    /// As [`ChatRepository::create_session`].
    async fn import_session(
        &self,
        session: &Session,
        messages: &[Message],
    ) -> Result<(), RepoError>;

    /// Marks every message still `streaming` as `interrupted` (keeping its
    /// text), and returns how many there were. Run at start-up: no reply
    /// survives the process that generated it.
    ///
    /// # Errors
    /// As [`ChatRepository::create_session`].
    async fn interrupt_streaming(&self) -> Result<u64, RepoError>;

    /// Stores `interrupted` (keeping its text) every assistant message of
    /// the session from `first` on that is still `streaming`: the turn that
    /// `first` began (one message per assistant answering it) lost its
    /// replica, and its lease ran out. One session runs one turn at a time,
    /// so every message from `first` on is that turn's. Not scoped by an
    /// owner, as [`ChatRepository::interrupt_streaming`]: the sweeper acts
    /// for the service, never for a caller. Returns the turn's assistant
    /// messages as stored afterwards, oldest first, each with whether this
    /// call changed it; one whose final state was stored before keeps it
    /// (whoever wrote it first wins).
    ///
    /// # Errors
    /// [`RepoError::NotFound`] when `first` (or its session) was deleted;
    /// otherwise as [`ChatRepository::create_session`].
    async fn interrupt_turn(
        &self,
        session: SessionId,
        first: MessageId,
    ) -> Result<Vec<StoredEnd>, RepoError>;

    /// Up to `most` replies stored `streaming` that were created before
    /// `before`, oldest first, as (session, message): the sweeper looks
    /// among them for replies that no replica runs any more.
    ///
    /// # Errors
    /// As [`ChatRepository::create_session`].
    async fn streaming_replies(
        &self,
        before: Timestamp,
        most: usize,
    ) -> Result<Vec<(SessionId, MessageId)>, RepoError>;

    /// Checks that the store answers, for readiness probes.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when it does not.
    async fn ping(&self) -> Result<(), RepoError>;
}

/// Where assistants are kept.
///
/// **Invariant:** as for [`ChatRepository`], every method takes the owner
/// it acts for and is scoped by it in the query: another principal's
/// assistant is [`RepoError::NotFound`].
#[cfg_attr(feature = "mock", mockall::automock)]
#[async_trait]
pub trait AssistantStore: Send + Sync {
    /// Stores a new assistant, owned by `assistant.owner`.
    ///
    /// # Errors
    /// [`RepoError::Conflict`] when its owner has an assistant of that name
    /// already; [`RepoError::Unavailable`] or [`RepoError::Unknown`] when
    /// the store fails.
    async fn create_assistant(&self, assistant: &Assistant) -> Result<(), RepoError>;

    /// # Errors
    /// [`RepoError::NotFound`] when the owner has no such assistant;
    /// otherwise as [`AssistantStore::create_assistant`].
    async fn get_assistant(
        &self,
        owner: &Principal,
        id: AssistantId,
    ) -> Result<Assistant, RepoError>;

    /// Those of `ids` the owner has, in one query, in any order: an id it
    /// does not have is simply missing from the answer.
    ///
    /// # Errors
    /// As [`AssistantStore::create_assistant`].
    async fn find_assistants(
        &self,
        owner: &Principal,
        ids: &[AssistantId],
    ) -> Result<Vec<Assistant>, RepoError>;

    /// Up to `limit` assistants, newest first, starting after `after`
    /// (which need not exist any more), as sessions are listed.
    ///
    /// # Errors
    /// As [`AssistantStore::create_assistant`].
    async fn list_assistants(
        &self,
        owner: &Principal,
        limit: usize,
        after: Option<AssistantId>,
    ) -> Result<Page<Assistant>, RepoError>;

    /// Writes only the fields `changes` sets, and `updated_at = at`, in one
    /// statement, and returns the assistant as stored afterwards.
    ///
    /// # Errors
    /// [`RepoError::NotFound`]; [`RepoError::Conflict`] for a name the
    /// owner's other assistant has; otherwise as
    /// [`AssistantStore::create_assistant`].
    async fn update_assistant(
        &self,
        owner: &Principal,
        id: AssistantId,
        changes: &AssistantChanges,
        at: Timestamp,
    ) -> Result<Assistant, RepoError>;

    /// Deletes an assistant, and in the same transaction makes the owner's
    /// sessions that had it as their default assistant fall back to the
    /// default voice. The messages it wrote keep its id and name.
    ///
    /// # Errors
    /// [`RepoError::NotFound`]; otherwise as
    /// [`AssistantStore::create_assistant`].
    async fn delete_assistant(&self, owner: &Principal, id: AssistantId) -> Result<(), RepoError>;
}
