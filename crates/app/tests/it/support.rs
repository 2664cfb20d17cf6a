use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use colloquy_app::{
    ChatConfig, ChatService, Dependencies, EventKind, LlmPolicy, NewSession, ReplyEvents,
    SessionEvent, Subscription,
};
use colloquy_domain::{
    Assistant, AssistantId, Message, ModelName, Principal, Session, Timestamp, Usage, UtcDay,
};
use colloquy_inprocess::{InProcessEventLog, InProcessLimiter, LogLimits};
use colloquy_ports::{
    AssistantChanges, AssistantStore, BranchMessage, ChatChunk, ChatRepository, ChatStream,
    Completion, EventLog, LlmClient, LlmError, MockChatRepository, MockLlmClient, Page, RepoError,
    Siblings, UsageLedger,
};
use futures::StreamExt;

use crate::model::fakes::FakeRepo;

pub fn config() -> ChatConfig {
    let mut config = ChatConfig::with_model(ModelName::parse("test-model").unwrap());
    config.max_message_chars = 100;
    config.flush_interval = Duration::from_millis(20);
    config.llm = LlmPolicy {
        first_chunk_timeout: Duration::from_millis(500),
        idle_timeout: Duration::from_millis(200),
        max_retries: 3,
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(40),
        max_retry_after: Duration::from_secs(5),
    };
    // Naming a session is one more model call and one more store write:
    // the tests that are about it turn it on.
    config.auto_title = false;
    config
}

pub fn session() -> Session {
    Session::new(
        Principal::parse("alice").unwrap(),
        None,
        None,
        ModelName::parse("test-model").unwrap(),
    )
}

/// Every version of every message the service wrote, in order.
pub type Writes = Arc<Mutex<Vec<Message>>>;

/// A repository that knows `session`, starts with no history, and records writes.
pub fn repo_with(session: &Session) -> (MockChatRepository, Writes) {
    let writes: Writes = Arc::default();
    let mut repo = MockChatRepository::new();
    let known = session.clone();
    repo.expect_get_session()
        .returning(move |_, _| Ok(known.clone()));
    repo.expect_recent_messages()
        .returning(|_, _, _, _| Ok(Vec::new()));
    let appended = Arc::clone(&writes);
    repo.expect_append_messages().returning(move |_, messages| {
        appended.lock().unwrap().extend(messages.iter().cloned());
        Ok(())
    });
    let updated = Arc::clone(&writes);
    repo.expect_update_message().returning(move |_, message| {
        updated.lock().unwrap().push(message.clone());
        Ok(())
    });
    (repo, writes)
}

pub fn service(repo: MockChatRepository, llm: MockLlmClient) -> ChatService {
    service_with(repo, llm, config())
}

pub fn service_with(
    repo: MockChatRepository,
    llm: MockLlmClient,
    config: ChatConfig,
) -> ChatService {
    service_on(Arc::new(repo), Arc::new(llm), Arc::default(), config)
}

/// A service over these ports, with the in-process event log and limiter.
pub fn service_on(
    repo: Arc<dyn ChatRepository>,
    llm: Arc<dyn LlmClient>,
    usage: Arc<MemoryLedger>,
    config: ChatConfig,
) -> ChatService {
    service_with_events(
        repo,
        llm,
        Arc::new(InProcessEventLog::new(LogLimits::default())),
        usage,
        config,
    )
}

pub fn service_with_events(
    repo: Arc<dyn ChatRepository>,
    llm: Arc<dyn LlmClient>,
    events: Arc<dyn EventLog>,
    usage: Arc<MemoryLedger>,
    config: ChatConfig,
) -> ChatService {
    service_with_assistants(repo, llm, events, Arc::default(), usage, config)
}

pub fn service_with_assistants(
    repo: Arc<dyn ChatRepository>,
    llm: Arc<dyn LlmClient>,
    events: Arc<dyn EventLog>,
    assistants: Arc<MemoryAssistants>,
    usage: Arc<MemoryLedger>,
    config: ChatConfig,
) -> ChatService {
    let dependencies = Dependencies {
        repo,
        assistants,
        llm,
        events,
        limiter: Arc::new(InProcessLimiter::new(config.limits)),
        usage,
    };
    ChatService::new(dependencies, config)
}

/// Assistants in memory, with the store's rules: unique names per owner,
/// everything scoped by owner.
#[derive(Debug, Default)]
pub struct MemoryAssistants {
    assistants: Mutex<Vec<Assistant>>,
}

#[async_trait]
impl AssistantStore for MemoryAssistants {
    async fn create_assistant(&self, assistant: &Assistant) -> Result<(), RepoError> {
        let mut all = self.assistants.lock().unwrap();
        if all
            .iter()
            .any(|a| a.owner == assistant.owner && a.name == assistant.name)
        {
            return Err(RepoError::Conflict);
        }
        all.push(assistant.clone());
        Ok(())
    }

    async fn get_assistant(
        &self,
        owner: &Principal,
        id: AssistantId,
    ) -> Result<Assistant, RepoError> {
        let all = self.assistants.lock().unwrap();
        all.iter()
            .find(|a| a.id == id && &a.owner == owner)
            .cloned()
            .ok_or(RepoError::NotFound)
    }

    async fn find_assistants(
        &self,
        owner: &Principal,
        ids: &[AssistantId],
    ) -> Result<Vec<Assistant>, RepoError> {
        let all = self.assistants.lock().unwrap();
        Ok(all
            .iter()
            .filter(|a| &a.owner == owner && ids.contains(&a.id))
            .cloned()
            .collect())
    }

    async fn list_assistants(
        &self,
        owner: &Principal,
        limit: usize,
        after: Option<AssistantId>,
    ) -> Result<Page<Assistant>, RepoError> {
        let all = self.assistants.lock().unwrap();
        let mut items: Vec<Assistant> = all
            .iter()
            .filter(|a| &a.owner == owner && after.is_none_or(|after| a.id < after))
            .cloned()
            .collect();
        items.sort_by_key(|a| std::cmp::Reverse(a.id));
        let has_more = items.len() > limit;
        items.truncate(limit);
        Ok(Page { items, has_more })
    }

    async fn update_assistant(
        &self,
        owner: &Principal,
        id: AssistantId,
        changes: &AssistantChanges,
        at: Timestamp,
    ) -> Result<Assistant, RepoError> {
        let mut all = self.assistants.lock().unwrap();
        if let Some(name) = &changes.name {
            if all
                .iter()
                .any(|a| &a.owner == owner && &a.name == name && a.id != id)
            {
                return Err(RepoError::Conflict);
            }
        }
        let assistant = all
            .iter_mut()
            .find(|a| a.id == id && &a.owner == owner)
            .ok_or(RepoError::NotFound)?;
        if let Some(name) = &changes.name {
            assistant.name = name.clone();
        }
        if let Some(instructions) = &changes.instructions {
            assistant.instructions.clone_from(instructions);
        }
        if let Some(model) = &changes.model {
            assistant.model = model.clone();
        }
        if let Some(tools) = &changes.tools {
            assistant.tools.clone_from(tools);
        }
        assistant.updated_at = at;
        Ok(assistant.clone())
    }

    async fn delete_assistant(&self, owner: &Principal, id: AssistantId) -> Result<(), RepoError> {
        let mut all = self.assistants.lock().unwrap();
        let before = all.len();
        all.retain(|a| !(a.id == id && &a.owner == owner));
        if all.len() == before {
            Err(RepoError::NotFound)
        } else {
            Ok(())
        }
    }
}

/// A usage ledger in memory.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    spent: Mutex<std::collections::HashMap<(Principal, UtcDay), Usage>>,
}

impl MemoryLedger {
    /// What `principal` spent today.
    pub fn today(&self, principal: &Principal) -> Usage {
        self.spent
            .lock()
            .unwrap()
            .get(&(principal.clone(), UtcDay::today()))
            .copied()
            .unwrap_or_default()
    }
}

#[async_trait]
impl UsageLedger for MemoryLedger {
    async fn add_usage(
        &self,
        principal: &Principal,
        day: UtcDay,
        usage: Usage,
    ) -> Result<(), RepoError> {
        let mut spent = self.spent.lock().unwrap();
        let total = spent.entry((principal.clone(), day)).or_default();
        total.prompt_tokens += usage.prompt_tokens;
        total.completion_tokens += usage.completion_tokens;
        Ok(())
    }

    async fn usage_on(&self, principal: &Principal, day: UtcDay) -> Result<Usage, RepoError> {
        Ok(self
            .spent
            .lock()
            .unwrap()
            .get(&(principal.clone(), day))
            .copied()
            .unwrap_or_default())
    }
}

/// Either kind of event stream a test reads.
pub trait Events: Send {
    fn next_event(&mut self)
        -> impl std::future::Future<Output = Option<Arc<SessionEvent>>> + Send;
}

impl Events for Subscription {
    fn next_event(
        &mut self,
    ) -> impl std::future::Future<Output = Option<Arc<SessionEvent>>> + Send {
        self.next()
    }
}

impl Events for ReplyEvents {
    fn next_event(
        &mut self,
    ) -> impl std::future::Future<Output = Option<Arc<SessionEvent>>> + Send {
        self.next()
    }
}

pub fn text_stream(pieces: &[&str]) -> ChatStream {
    let mut items: Vec<Result<ChatChunk, LlmError>> = pieces
        .iter()
        .map(|piece| Ok(ChatChunk::Delta((*piece).to_owned())))
        .collect();
    items.push(Ok(ChatChunk::Finished(Completion {
        finish_reason: "stop".into(),
        usage: None,
    })));
    futures::stream::iter(items).boxed()
}

/// Pieces of text, then an error instead of an end.
pub fn broken_stream(pieces: &[&str], error: LlmError) -> ChatStream {
    let mut items: Vec<Result<ChatChunk, LlmError>> = pieces
        .iter()
        .map(|piece| Ok(ChatChunk::Delta((*piece).to_owned())))
        .collect();
    items.push(Err(error));
    futures::stream::iter(items).boxed()
}

/// Pieces of text, then nothing, ever.
pub fn endless_stream(pieces: &[&str]) -> ChatStream {
    let items: Vec<Result<ChatChunk, LlmError>> = pieces
        .iter()
        .map(|piece| Ok(ChatChunk::Delta((*piece).to_owned())))
        .collect();
    futures::stream::iter(items)
        .chain(futures::stream::pending())
        .boxed()
}

/// Reads events until the reply's final one; returns them all.
pub async fn until_reply_ends(events: &mut impl Events) -> Vec<EventKind> {
    let mut seen = Vec::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(5), events.next_event())
            .await
            .expect("the reply ends in time")
            .expect("the subscription stays open");
        let done = event.kind.finished_message().is_some();
        seen.push(event.kind.clone());
        if done {
            return seen;
        }
    }
}

pub fn deltas(events: &[EventKind]) -> String {
    events
        .iter()
        .filter_map(|event| match event {
            EventKind::MessageDelta { delta, .. } => Some(delta.as_str()),
            _ => None,
        })
        .collect()
}

pub fn final_message(events: &[EventKind]) -> Message {
    events
        .last()
        .and_then(EventKind::finished_message)
        .cloned()
        .expect("a final event")
}

/// Every request the model was sent, in order.
pub type Requests = Arc<Mutex<Vec<colloquy_ports::ChatRequest>>>;

/// A model that answers its requests with `streams`, in order, and records
/// them; one request more than scripted fails the test.
pub fn scripted(streams: Vec<ChatStream>) -> (MockLlmClient, Requests) {
    let requests: Requests = Arc::default();
    let seen = Arc::clone(&requests);
    let count = streams.len();
    let queue = Mutex::new(std::collections::VecDeque::from(streams));
    let mut llm = MockLlmClient::new();
    llm.expect_stream_chat()
        .times(count)
        .returning(move |request| {
            seen.lock().unwrap().push(request);
            Ok(queue
                .lock()
                .unwrap()
                .pop_front()
                .expect("a scripted answer"))
        });
    (llm, requests)
}

/// A model turn that calls tools: each `(id, name, arguments)` streamed as
/// fragments of three pieces, then `finish_reason: tool_calls`.
pub fn tool_call_stream(calls: &[(&str, &str, &str)]) -> ChatStream {
    let mut items: Vec<Result<ChatChunk, LlmError>> = Vec::new();
    for (index, (id, name, arguments)) in calls.iter().enumerate() {
        let index = u32::try_from(index).unwrap();
        let chars: Vec<char> = arguments.chars().collect();
        let third = chars.len().div_ceil(3).max(1);
        let mut pieces = chars
            .chunks(third)
            .map(|piece| piece.iter().collect::<String>());
        items.push(Ok(ChatChunk::ToolCall(colloquy_ports::ToolCallDelta {
            index,
            id: Some((*id).to_owned()),
            name: Some((*name).to_owned()),
            arguments: pieces.next().unwrap_or_default(),
        })));
        for piece in pieces {
            items.push(Ok(ChatChunk::ToolCall(colloquy_ports::ToolCallDelta {
                index,
                id: None,
                name: None,
                arguments: piece,
            })));
        }
    }
    items.push(Ok(ChatChunk::Finished(Completion {
        finish_reason: "tool_calls".into(),
        usage: Some(colloquy_domain::Usage {
            prompt_tokens: 10,
            completion_tokens: 5,
        }),
    })));
    futures::stream::iter(items).boxed()
}

/// Text, then a finish with this usage.
pub fn text_stream_with_usage(pieces: &[&str], prompt: u64, completion: u64) -> ChatStream {
    let mut items: Vec<Result<ChatChunk, LlmError>> = pieces
        .iter()
        .map(|piece| Ok(ChatChunk::Delta((*piece).to_owned())))
        .collect();
    items.push(Ok(ChatChunk::Finished(Completion {
        finish_reason: "stop".into(),
        usage: Some(colloquy_domain::Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
        }),
    })));
    futures::stream::iter(items).boxed()
}

/// `messages` as one page of a branch, each an only child.
pub fn branch_page(messages: Vec<Message>) -> Page<BranchMessage> {
    Page {
        items: messages
            .into_iter()
            .map(|message| BranchMessage {
                siblings: Siblings {
                    ids: vec![message.id],
                    index: 0,
                },
                message,
            })
            .collect(),
        has_more: false,
    }
}

/// A session over a store that keeps a tree ([`FakeRepo`]), whose model
/// answers `answers` in order, one text each.
pub struct Conversation {
    pub repo: Arc<FakeRepo>,
    pub service: ChatService,
    pub session: Session,
    pub requests: Requests,
}

pub async fn conversation(answers: &[&str]) -> Conversation {
    let repo = Arc::new(FakeRepo::default());
    let (llm, requests) = scripted(answers.iter().map(|a| text_stream(&[a])).collect());
    let service = service_with_events(
        Arc::clone(&repo) as Arc<dyn ChatRepository>,
        Arc::new(llm),
        Arc::new(InProcessEventLog::new(LogLimits::default())),
        Arc::default(),
        config(),
    );
    let owner = Principal::parse("alice").unwrap();
    let session = service
        .create_session(&owner, NewSession::default())
        .await
        .unwrap();
    Conversation {
        repo,
        service,
        session,
        requests,
    }
}

impl Conversation {
    pub fn owner(&self) -> &Principal {
        &self.session.owner
    }

    /// Sends `text`; the user message and the reply as it ended.
    pub async fn send(&self, text: &str) -> (Message, Message) {
        let mut sent = self
            .service
            .send_message(self.owner(), self.session.id, text.into())
            .await
            .unwrap();
        let reply = ended_messages(&mut sent.events).await.pop().unwrap();
        (sent.user_message.unwrap(), reply)
    }
}

/// The messages a turn's events ended, in order, once the turn is over.
pub async fn ended_messages(events: &mut ReplyEvents) -> Vec<Message> {
    let mut ended = Vec::new();
    while let Some(event) = tokio::time::timeout(Duration::from_secs(5), events.next())
        .await
        .expect("the turn ends in time")
    {
        if let Some(message) = event.kind.finished_message() {
            ended.push(message.clone());
        }
    }
    ended
}
