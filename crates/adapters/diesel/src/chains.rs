//! Each message's conversation chain (`messages.chain`, see
//! [`ConversationChain`]), the same on both backends: which messages are
//! waiting for theirs, how they are computed from their parents', and the
//! lookup that finds a conversation by it.
//!
//! **Invariant:** a message's chain is stored, in the transaction that
//! makes its text final, as soon as its parent has one (a root needs none):
//! a user message when it is appended, a reply when it ends however it
//! ends, and a child stored under a reply that was still streaming when
//! that reply ends. Every write that can make a text final (append, a
//! final update, import, interrupting a turn or every streaming reply)
//! fills its session's chains before it commits, and opening a database
//! fills what an older version stored without them. So a final message
//! whose parent is chained is chained too; only streaming replies, and what
//! was stored under them, wait.
//!
//! Hashing is Rust's (SQLite has no SHA-256), so a fill reads the waiting
//! messages (few: the partial index `messages_unchained` holds only them)
//! and writes each chain back.

use std::collections::HashMap;

use colloquy_domain::{ConversationChain, MessageStatus, Role};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;

use crate::error::StoreError;

/// The sessions with a final message still waiting for its chain: what an
/// older version stored, or what an interruption just made final. Read
/// through the partial index, so it costs the waiting messages only.
pub(crate) const WAITING_SESSIONS: &str =
    "SELECT DISTINCT session_id FROM messages WHERE chain IS NULL AND status <> 'streaming'";

/// The messages of session `$1` still waiting for their chain, parents
/// before children, each with its parent's chain (NULL for a root, or a
/// parent that is waiting too).
pub(crate) const WAITING: &str = concat!(
    "SELECT waiting.id, waiting.parent_id, waiting.role, waiting.content, waiting.status,",
    " parent.chain AS parent_chain",
    " FROM messages AS waiting LEFT JOIN messages AS parent ON parent.id = waiting.parent_id",
    " WHERE waiting.session_id = $1 AND waiting.chain IS NULL",
    " ORDER BY waiting.depth, waiting.id"
);

/// Stores chain `$1` for message `$2`, unless it has one: a fill made twice
/// (by two writers of one session) writes the same value once.
pub(crate) const SET_CHAIN: &str = "UPDATE messages SET chain = $1 WHERE id = $2 AND chain IS NULL";

/// A session id, from [`WAITING_SESSIONS`].
#[derive(Debug, QueryableByName)]
pub(crate) struct WaitingSessionRow {
    #[diesel(sql_type = Text)]
    pub session_id: String,
}

/// A message waiting for its chain, from [`WAITING`].
#[derive(Debug, QueryableByName)]
pub(crate) struct WaitingRow {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub parent_id: Option<String>,
    #[diesel(sql_type = Text)]
    pub role: String,
    #[diesel(sql_type = Text)]
    pub content: String,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Nullable<BigInt>)]
    pub parent_chain: Option<i64>,
}

/// The chains to store for `waiting` (one session's, parents before
/// children, as [`WAITING`] reads them): every final message whose parent
/// is chained, or gets its chain earlier in this same pass. A streaming
/// reply gets none, and so nothing below it does yet.
///
/// # Errors
/// [`StoreError::Corrupt`] for a role or a status no version writes.
pub(crate) fn chains_to_store(waiting: Vec<WaitingRow>) -> Result<Vec<(String, i64)>, StoreError> {
    let mut computed: HashMap<String, ConversationChain> = HashMap::new();
    let mut chains = Vec::new();
    for row in waiting {
        let role = Role::parse(&row.role)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown role {:?}", row.role)))?;
        let status = MessageStatus::parse(&row.status)
            .ok_or_else(|| StoreError::Corrupt(format!("unknown status {:?}", row.status)))?;
        if !status.is_final() {
            continue;
        }
        let parent = match (&row.parent_id, row.parent_chain) {
            (None, _) => None,
            (Some(_), Some(stored)) => Some(ConversationChain::from_stored(stored)),
            (Some(parent), None) => match computed.get(parent) {
                Some(chain) => Some(*chain),
                // Its parent is still streaming: its turn comes when that ends.
                None => continue,
            },
        };
        let chain = ConversationChain::extend(parent, role, &row.content);
        chains.push((row.id.clone(), chain.stored()));
        computed.insert(row.id, chain);
    }
    Ok(chains)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn waiting(id: &str, parent: Option<&str>, role: Role, text: &str, status: &str) -> WaitingRow {
        WaitingRow {
            id: id.to_owned(),
            parent_id: parent.map(str::to_owned),
            role: role.as_str().to_owned(),
            content: text.to_owned(),
            status: status.to_owned(),
            parent_chain: None,
        }
    }

    #[test]
    fn a_branch_is_chained_from_its_root_in_one_pass() {
        let rows = vec![
            waiting("a", None, Role::User, "hi", "complete"),
            waiting("b", Some("a"), Role::Assistant, "hello", "complete"),
        ];
        let chains = chains_to_store(rows).expect("valid rows");
        let expected =
            ConversationChain::of([(Role::User, "hi"), (Role::Assistant, "hello")]).expect("two");
        assert_eq!(chains.len(), 2);
        assert_eq!(chains[1], ("b".to_owned(), expected.stored()));
    }

    #[test]
    fn nothing_below_a_streaming_reply_is_chained_yet() {
        let rows = vec![
            waiting("b", Some("a"), Role::Assistant, "partial", "streaming"),
            waiting("c", Some("b"), Role::Assistant, "second voice", "complete"),
        ];
        assert!(chains_to_store(rows).expect("valid rows").is_empty());
    }

    #[test]
    fn a_stored_parent_chain_is_extended() {
        let parent = ConversationChain::extend(None, Role::User, "q");
        let mut row = waiting("b", Some("a"), Role::Assistant, "answer", "failed");
        row.parent_chain = Some(parent.stored());
        let chains = chains_to_store(vec![row]).expect("valid rows");
        let expected = ConversationChain::extend(Some(parent), Role::Assistant, "answer");
        assert_eq!(chains, vec![("b".to_owned(), expected.stored())]);
    }

    #[test]
    fn an_unknown_role_is_corrupt() {
        let mut row = waiting("a", None, Role::User, "x", "complete");
        row.role = "wizard".to_owned();
        assert!(matches!(
            chains_to_store(vec![row]),
            Err(StoreError::Corrupt(_))
        ));
    }
}
