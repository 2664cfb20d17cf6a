//! Finding and moving conversations: full-text search over the caller's
//! messages, the export of a session, and the import of one (colloquy's own
//! export, or a conversation of a ChatGPT data export, which the HTTP layer
//! parses into [`ImportedConversation`]).

use std::collections::{HashMap, HashSet};

use colloquy_domain::{
    AssistantId, Message, MessageId, MessageStatus, Principal, Role, Session, SessionId, Speaker,
    SystemPrompt, Timestamp, Title,
};
use colloquy_ports::{Page, SearchHit};

use crate::{ChatError, ChatService};

/// Longest search query, in characters.
pub const MAX_QUERY_CHARS: usize = 256;
/// Most words a search query may hold; every one must match.
pub const MAX_QUERY_TERMS: usize = 16;
/// Most messages one import may hold.
pub const MAX_IMPORTED_MESSAGES: usize = 10_000;
/// Longest text of one imported message, in characters: generous, as
/// replies may be long, but bounded.
pub const MAX_IMPORTED_CHARS: usize = 400_000;

/// A session and its messages, for an export.
#[derive(Debug, Clone)]
pub struct Exported {
    pub session: Session,
    /// Every branch (`every_branch`), or the active one, oldest first.
    pub messages: Vec<Message>,
}

/// A conversation to import, as the HTTP layer read it. Ids are the
/// source's own: they only link messages to their parents, and the import
/// gives everything new ids.
#[derive(Debug, Clone, Default)]
pub struct ImportedConversation {
    pub title: Option<String>,
    pub system_prompt: Option<String>,
    pub model: Option<String>,
    pub created_at: Option<Timestamp>,
    pub messages: Vec<ImportedMessage>,
    /// The source's active branch's last message; the newest leaf when `None`.
    pub head: Option<String>,
}

/// One message to import. `message`'s ids and parent are replaced; its
/// role, text, name, status, model, usage, tool calls and times are kept.
#[derive(Debug, Clone)]
pub struct ImportedMessage {
    pub key: String,
    pub parent: Option<String>,
    pub message: Message,
    /// The name of the assistant that wrote it, if one did.
    pub name: Option<String>,
}

impl ChatService {
    /// The caller's messages holding every word of `query`, on every branch
    /// of every session it has, newest first.
    ///
    /// # Errors
    /// [`ChatError::BadQuery`] for a query with no word, or too long.
    pub async fn search(
        &self,
        caller: &Principal,
        query: &str,
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<SearchHit>, ChatError> {
        let terms = search_terms(query)?;
        Ok(self
            .inner
            .repo
            .search_messages(caller, &terms, limit, after)
            .await?)
    }

    /// The session with every message of every branch (`every_branch`), or
    /// with its active branch only.
    ///
    /// # Errors
    /// [`ChatError::SessionNotFound`].
    pub async fn export(
        &self,
        caller: &Principal,
        session_id: SessionId,
        every_branch: bool,
    ) -> Result<Exported, ChatError> {
        let session = self.inner.repo.get_session(caller, session_id).await?;
        let messages = if every_branch {
            self.every_message(caller, session_id).await?
        } else {
            self.active_branch(caller, session_id).await?
        };
        Ok(Exported { session, messages })
    }

    /// Stores `imported` as a new session of the caller, with new ids, the
    /// same tree, roles, texts, names and times, in one transaction.
    ///
    /// # Errors
    /// [`ChatError::BadImport`] saying what is wrong (nothing is stored then).
    pub async fn import_session(
        &self,
        caller: &Principal,
        imported: ImportedConversation,
    ) -> Result<Session, ChatError> {
        let (session, messages) = self.plan_import(caller, imported)?;
        self.inner.repo.import_session(&session, &messages).await?;
        // The store places the head and counts its branch (`message_count`):
        // the session as stored is the one to answer with.
        Ok(self.inner.repo.get_session(caller, session.id).await?)
    }

    fn plan_import(
        &self,
        caller: &Principal,
        imported: ImportedConversation,
    ) -> Result<(Session, Vec<Message>), ChatError> {
        let bad = |detail: String| ChatError::BadImport(detail);
        if imported.messages.len() > MAX_IMPORTED_MESSAGES {
            return Err(bad(format!(
                "the conversation holds {} messages; at most {MAX_IMPORTED_MESSAGES} can be imported",
                imported.messages.len()
            )));
        }
        let title = imported
            .title
            .as_deref()
            .map(|title| Title::parse(&first_chars(title, Title::MAX_CHARS)))
            .transpose()
            .ok()
            .flatten();
        let system_prompt = imported
            .system_prompt
            .as_deref()
            .map(SystemPrompt::parse)
            .transpose()
            .map_err(|error| bad(format!("the session's {error}")))?;
        // A model this server does not offer cannot be asked again: later
        // replies use the default one.
        let model = imported
            .model
            .as_deref()
            .and_then(|model| self.allowed_model(model).ok())
            .unwrap_or_else(|| self.config().default_model.clone());
        let mut session = Session::new(caller.clone(), title, system_prompt, model);
        if let Some(created) = imported.created_at {
            session.created_at = created;
        }

        let ordered = parents_first(&imported.messages)?;
        let mut new_ids: HashMap<&str, MessageId> = HashMap::with_capacity(ordered.len());
        let mut speakers: HashMap<String, AssistantId> = HashMap::new();
        let mut messages = Vec::with_capacity(ordered.len());
        for item in ordered {
            let mut message = item.message.clone();
            let chars = message.content.chars().count();
            if chars > MAX_IMPORTED_CHARS {
                return Err(bad(format!(
                    "message `{}` is {chars} characters long; at most {MAX_IMPORTED_CHARS} can be imported",
                    first_chars(&item.key, 64)
                )));
            }
            message.id = MessageId::new();
            message.session_id = session.id;
            message.parent_id = item.parent.as_deref().map(|parent| new_ids[parent]);
            message.speaker = match (&item.name, message.role) {
                (Some(name), Role::Assistant) if !name.trim().is_empty() => {
                    let name = first_chars(name.trim(), colloquy_domain::AssistantName::MAX_CHARS);
                    // The writer is not one of the caller's assistants: the
                    // name is kept, as a deleted assistant's is.
                    let id = *speakers.entry(name.clone()).or_default();
                    Some(Speaker { id, name })
                }
                _ => None,
            };
            if message.role == Role::User {
                message.status = MessageStatus::Complete;
                message.model = None;
            } else if message.status == MessageStatus::Streaming {
                message.status = MessageStatus::Interrupted;
            }
            if message.status.is_final() && message.completed_at.is_none() {
                message.completed_at = Some(message.created_at);
            }
            new_ids.insert(&item.key, message.id);
            messages.push(message);
        }
        session.head_message_id = match &imported.head {
            Some(head) => Some(*new_ids.get(head.as_str()).ok_or_else(|| {
                bad(format!(
                    "the current message `{}` is not one of the conversation's messages",
                    first_chars(head, 64)
                ))
            })?),
            None => newest_leaf(&messages),
        };
        if let Some(last) = messages.iter().map(|m| m.created_at).max() {
            session.updated_at = last.max(session.created_at);
        }
        Ok((session, messages))
    }
}

/// The words of a search query: split at white space and at control
/// characters, each one that holds a letter or a digit. Neither store's
/// tokenizer puts a control character in a word, and they cannot reach a
/// store as part of one: SQLite's FTS5 query parser reads a NUL as the end
/// of the query, and PostgreSQL text cannot hold one.
fn search_terms(query: &str) -> Result<Vec<String>, ChatError> {
    let chars = query.chars().count();
    if chars > MAX_QUERY_CHARS {
        return Err(ChatError::BadQuery(format!(
            "`q` is {chars} characters long; at most {MAX_QUERY_CHARS} are allowed"
        )));
    }
    let terms: Vec<String> = query
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|term| term.chars().any(char::is_alphanumeric))
        .map(str::to_owned)
        .collect();
    if terms.is_empty() {
        return Err(ChatError::BadQuery(
            "`q` must hold at least one word to search for".to_owned(),
        ));
    }
    if terms.len() > MAX_QUERY_TERMS {
        return Err(ChatError::BadQuery(format!(
            "`q` holds {} words; at most {MAX_QUERY_TERMS} are allowed",
            terms.len()
        )));
    }
    Ok(terms)
}

/// The messages ordered so that each comes after its parent, siblings (and
/// roots) oldest first, so new ids sort as the originals did.
fn parents_first(messages: &[ImportedMessage]) -> Result<Vec<&ImportedMessage>, ChatError> {
    let bad = |detail: String| ChatError::BadImport(detail);
    let mut by_key: HashMap<&str, &ImportedMessage> = HashMap::with_capacity(messages.len());
    for message in messages {
        if by_key.insert(message.key.as_str(), message).is_some() {
            return Err(bad(format!(
                "two messages have the id `{}`",
                first_chars(&message.key, 64)
            )));
        }
    }
    let mut children: HashMap<Option<&str>, Vec<&ImportedMessage>> = HashMap::new();
    for message in messages {
        if let Some(parent) = message.parent.as_deref() {
            if !by_key.contains_key(parent) {
                return Err(bad(format!(
                    "message `{}` follows `{}`, which is not in the conversation",
                    first_chars(&message.key, 64),
                    first_chars(parent, 64)
                )));
            }
        }
        children
            .entry(message.parent.as_deref())
            .or_default()
            .push(message);
    }
    for siblings in children.values_mut() {
        siblings.sort_by_key(|message| message.message.created_at);
    }
    // Depth first from the roots, iteratively: a deep chain cannot
    // overflow the stack.
    let mut ordered = Vec::with_capacity(messages.len());
    let mut seen: HashSet<&str> = HashSet::with_capacity(messages.len());
    let mut stack: Vec<&ImportedMessage> = children
        .get(&None)
        .map(|roots| roots.iter().rev().copied().collect())
        .unwrap_or_default();
    while let Some(message) = stack.pop() {
        if !seen.insert(message.key.as_str()) {
            continue;
        }
        ordered.push(message);
        if let Some(below) = children.get(&Some(message.key.as_str())) {
            stack.extend(below.iter().rev().copied());
        }
    }
    if ordered.len() < messages.len() {
        return Err(bad(
            "some messages follow each other in a circle, never reaching the conversation's start"
                .to_owned(),
        ));
    }
    Ok(ordered)
}

/// The newest message nothing follows.
fn newest_leaf(messages: &[Message]) -> Option<MessageId> {
    let parents: HashSet<MessageId> = messages.iter().filter_map(|m| m.parent_id).collect();
    messages
        .iter()
        .filter(|message| !parents.contains(&message.id))
        .max_by_key(|message| (message.created_at, message.id))
        .map(|message| message.id)
}

fn first_chars(text: &str, most: usize) -> String {
    text.chars().take(most).collect()
}
