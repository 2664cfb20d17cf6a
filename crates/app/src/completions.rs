//! The OpenAI-compatible routes' use case: a Chat Completions request
//! answered as a turn of one of the caller's sessions, so that every
//! exchange is recorded, fans out to the session's watchers and keeps every
//! guarantee of a send.
//!
//! Which session: the one the request names; else the one whose recorded
//! conversation the request repeats (its earlier messages, roles and texts
//! in order, found by their [`ConversationChain`] in one indexed lookup),
//! continued under the message it repeats up to — on a new branch when that
//! is not the session's head; else a new session holding the request's
//! earlier messages. A stateless client resending its whole history every
//! turn so grows one session.
//!
//! What the request adds is either a question (its last message is the
//! user's) or the results of tools the client ran (its last message answers
//! the calls of the reply before): those are stored in that reply, and the
//! new reply carries on from them.

use colloquy_domain::{
    ConversationChain, Message, MessageContent, MessageId, MessageStatus, ModelName, Principal,
    Role, SessionId, Timestamp, ToolCall,
};
use colloquy_ports::{RepoError, ToolSpec};

use crate::turn::{Answerers, ClientVoice, Joins, TurnRequest};
use crate::{ChatError, ChatService, ImportedConversation, ImportedMessage, SendOutcome};

/// A Chat Completions request, as the OpenAI-compatible routes read it.
#[derive(Debug, Clone)]
pub struct CompletionRequest {
    /// The session the request names (`X-Colloquy-Session`, or
    /// `metadata.colloquy_session`); `None` to match or start one.
    pub session: Option<SessionId>,
    /// The request's system (and developer) messages, joined; `None` when
    /// it has none.
    pub system_prompt: Option<String>,
    /// The conversation, oldest first: user and assistant messages, each
    /// tool message folded into the call it answers (its `result`).
    pub messages: Vec<CompletionMessage>,
    /// `None`: the service's default model.
    pub model: Option<String>,
    /// Tools the client defined: offered to the model, run by the client.
    pub tools: Vec<ToolSpec>,
    pub temperature: Option<f32>,
    /// At most the service's own limit of a reply's tokens.
    pub max_tokens: Option<u32>,
}

/// One message of a request's conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompletionMessage {
    pub role: Role,
    pub content: String,
    /// On an assistant message: the tools it called, with the results the
    /// request's tool messages gave them.
    pub tool_calls: Vec<ToolCall>,
}

/// How a request was recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Recorded {
    /// In a new session.
    Started,
    /// After the session's head.
    Continued,
    /// On a new branch of the session, from a message before its head.
    Branched,
}

impl Recorded {
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Started => "started",
            Self::Continued => "continued",
            Self::Branched => "branched",
        }
    }
}

/// A completion under way: the session it is recorded in, and its turn.
#[derive(Debug)]
pub struct CompletionStarted {
    pub session_id: SessionId,
    pub recorded: Recorded,
    /// The model the reply is asked of.
    pub model: ModelName,
    pub outcome: SendOutcome,
}

/// What the request adds to the conversation it repeats.
enum Added {
    Question(MessageContent),
    /// `(call id, result)` for the calls of the reply the request ends on.
    ToolResults(Vec<(String, String)>),
}

/// Where a completion's turn goes.
struct Place {
    session: SessionId,
    joins: Joins,
    recorded: Recorded,
}

impl ChatService {
    /// Records `request` in one of the caller's sessions (see the module
    /// docs) and generates the reply in a task of its own, as a send does.
    ///
    /// # Errors
    /// [`ChatError::BadConversation`] for a conversation that adds nothing
    /// to answer, [`ChatError::Invalid`] for a question that is blank or too
    /// long, [`ChatError::ModelNotAllowed`], [`ChatError::SessionNotFound`]
    /// for a named session that is not the caller's,
    /// [`ChatError::ReplyInProgress`] when a named session is answering,
    /// [`ChatError::BadImport`] when a new session cannot hold the earlier
    /// messages; otherwise as [`ChatService::send_message`].
    pub async fn complete(
        &self,
        caller: &Principal,
        request: CompletionRequest,
    ) -> Result<CompletionStarted, ChatError> {
        self.refuse_when_shutting_down()?;
        let model = match request.model.as_deref() {
            Some(model) => self.allowed_model(model)?,
            None => self.config().default_model.clone(),
        };
        let (added, repeated) = self.split_added(&request.messages)?;
        let voice = ClientVoice {
            system_prompt: request.system_prompt.clone(),
            model: model.clone(),
            tools: request.tools.clone(),
            temperature: request.temperature,
            max_tokens: request.max_tokens,
        };
        let place = match request.session {
            Some(session) => self.named_place(caller, session, &added).await?,
            None => match self
                .matching_place(caller, &request, repeated, &added)
                .await?
            {
                Some(place) => place,
                None => self.new_place(caller, &request, repeated, &model).await?,
            },
        };
        let named = request.session.is_some();
        match self
            .start_completion(caller, &place, &added, voice.clone())
            .await
        {
            // A stateless client's conversation that is being answered
            // right now (two requests at once with the same history) is
            // recorded on its own rather than refused: only a client that
            // named the session asked for that one.
            Err(ChatError::ReplyInProgress) if !named && place.recorded != Recorded::Started => {
                let place = self.new_place(caller, &request, repeated, &model).await?;
                self.start_completion(caller, &place, &added, voice)
                    .await
                    .map(|outcome| started(&place, model, outcome))
            }
            result => result.map(|outcome| started(&place, model, outcome)),
        }
    }

    /// What the request's last message adds, and how many messages before
    /// it repeat a recorded conversation: all but a question; all of them
    /// when tool results (folded into the reply that asked) come last.
    fn split_added(&self, messages: &[CompletionMessage]) -> Result<(Added, usize), ChatError> {
        let Some(last) = messages.last() else {
            return Err(ChatError::BadConversation(
                "`messages` holds no user message to answer".to_owned(),
            ));
        };
        match last.role {
            Role::User => {
                let question =
                    MessageContent::parse(last.content.clone(), self.config().max_message_chars)?;
                Ok((Added::Question(question), messages.len() - 1))
            }
            Role::Assistant => {
                let results: Vec<(String, String)> = last
                    .tool_calls
                    .iter()
                    .filter_map(|call| Some((call.id.clone(), call.result.clone()?)))
                    .collect();
                if results.is_empty() {
                    return Err(ChatError::BadConversation(
                        "the last message must be the user's, or `tool` messages answering the \
                         tool calls of the assistant message before them"
                            .to_owned(),
                    ));
                }
                Ok((Added::ToolResults(results), messages.len()))
            }
        }
    }

    /// The session the request names, continued after its head.
    async fn named_place(
        &self,
        caller: &Principal,
        session: SessionId,
        added: &Added,
    ) -> Result<Place, ChatError> {
        let stored = self.inner.repo.get_session(caller, session).await?;
        if let Added::ToolResults(results) = added {
            let Some(head) = stored.head_message_id else {
                return Err(no_calls_to_answer());
            };
            self.record_results(caller, session, head, results).await?;
        }
        Ok(Place {
            session,
            joins: Joins::Head,
            recorded: Recorded::Continued,
        })
    }

    /// The caller's recorded conversation that the request's first
    /// `repeated` messages repeat, if there is one.
    async fn matching_place(
        &self,
        caller: &Principal,
        request: &CompletionRequest,
        repeated: usize,
        added: &Added,
    ) -> Result<Option<Place>, ChatError> {
        let chain = ConversationChain::of(
            request.messages[..repeated]
                .iter()
                .map(|message| (message.role, message.content.as_str())),
        );
        let Some(chain) = chain else {
            return Ok(None);
        };
        let repo = &self.inner.repo;
        let found = repo
            .find_by_chain(caller, chain, request.system_prompt.clone())
            .await?;
        let Some(found) = found else {
            return Ok(None);
        };
        if let Added::ToolResults(results) = added {
            match self
                .record_results(caller, found.session_id, found.id, results)
                .await
            {
                Ok(()) => {}
                // Results for calls that reply did not make: the request
                // is not that conversation's next step.
                Err(ChatError::BadConversation(_)) => return Ok(None),
                Err(error) => return Err(error),
            }
        }
        let session = match repo.get_session(caller, found.session_id).await {
            Ok(session) => session,
            // Deleted since the lookup: start afresh.
            Err(RepoError::NotFound) => return Ok(None),
            Err(error) => return Err(error.into()),
        };
        let recorded = if session.head_message_id == Some(found.id) {
            Recorded::Continued
        } else {
            Recorded::Branched
        };
        Ok(Some(Place {
            session: session.id,
            joins: Joins::Under(Some(found.id)),
            recorded,
        }))
    }

    /// A new session holding the request's first `repeated` messages.
    async fn new_place(
        &self,
        caller: &Principal,
        request: &CompletionRequest,
        repeated: usize,
        model: &ModelName,
    ) -> Result<Place, ChatError> {
        let earlier = &request.messages[..repeated];
        let imported = ImportedConversation {
            title: None,
            system_prompt: request.system_prompt.clone(),
            model: Some(model.as_str().to_owned()),
            created_at: None,
            messages: earlier
                .iter()
                .enumerate()
                .map(|(index, message)| imported(index, message, model))
                .collect(),
            head: None,
        };
        let session = self.import_session(caller, imported).await?;
        Ok(Place {
            session: session.id,
            joins: Joins::Head,
            recorded: Recorded::Started,
        })
    }

    async fn record_results(
        &self,
        caller: &Principal,
        session: SessionId,
        message: MessageId,
        results: &[(String, String)],
    ) -> Result<(), ChatError> {
        // A history holding an unanswered call is never kept (see
        // `history`); forgetting the session makes sure of it.
        self.inner.histories.forget(session);
        match self
            .inner
            .repo
            .record_tool_results(caller, session, message, results)
            .await
        {
            Ok(_) => Ok(()),
            Err(RepoError::NotFound) => Err(no_calls_to_answer()),
            Err(error) => Err(error.into()),
        }
    }

    async fn start_completion(
        &self,
        caller: &Principal,
        place: &Place,
        added: &Added,
        voice: ClientVoice,
    ) -> Result<SendOutcome, ChatError> {
        let user_message = match added {
            Added::Question(question) => Some(Message::user(place.session, question.clone())),
            Added::ToolResults(_) => None,
        };
        let request = TurnRequest {
            session_id: place.session,
            user_message,
            answerers: Answerers::Client(voice),
            joins: place.joins,
        };
        self.start_turn(caller, request).await
    }
}

fn started(place: &Place, model: ModelName, outcome: SendOutcome) -> CompletionStarted {
    CompletionStarted {
        session_id: place.session,
        recorded: place.recorded,
        model,
        outcome,
    }
}

fn no_calls_to_answer() -> ChatError {
    ChatError::BadConversation(
        "the `tool` messages answer no tool call of the session's last reply".to_owned(),
    )
}

/// The request's `index`th message, as a new session stores it: each under
/// the one before; a reply complete, by the request's model.
fn imported(index: usize, message: &CompletionMessage, model: &ModelName) -> ImportedMessage {
    let now = Timestamp::now();
    let reply = message.role == Role::Assistant;
    let finish_reason = if message.tool_calls.is_empty() {
        "stop"
    } else {
        "tool_calls"
    };
    let finish_reason = reply.then_some(finish_reason);
    ImportedMessage {
        key: index.to_string(),
        parent: index.checked_sub(1).map(|parent| parent.to_string()),
        message: Message {
            id: MessageId::new(),
            session_id: SessionId::new(),
            parent_id: None,
            role: message.role,
            content: message.content.clone(),
            status: MessageStatus::Complete,
            model: reply.then(|| model.as_str().to_owned()),
            finish_reason: finish_reason.map(str::to_owned),
            usage: None,
            error: None,
            tool_calls: message.tool_calls.clone(),
            speaker: None,
            created_at: now,
            completed_at: Some(now),
        },
        name: None,
    }
}
