//! A session's messages as a tree, the same on both backends: where a batch
//! of messages goes (each one's depth from its parent), which part of a
//! branch a page is, the recursive queries that walk a branch, and how a
//! page gets its siblings.
//!
//! The queries are written once, in SQL both backends run as it stands:
//! `WITH RECURSIVE`, and parameters spelled `$1`, `$2`, … in the order they
//! first appear (SQLite numbers a named parameter by its first appearance,
//! so `$n` is its n-th bound value there too).
//!
//! **Invariant:** a message's `depth` is its parent's + 1 (0 for a root),
//! written once when it is stored, and its parent is a message of the same
//! session stored before it. So a session's `message_count` (the active
//! branch's length) is its head's depth + 1, and a range of depths is a
//! range of a branch.

use std::collections::{HashMap, HashSet};

use colloquy_domain::{Message, MessageId, Session, SessionId};
use colloquy_ports::{BranchMessage, Siblings};
use diesel::sql_types::{BigInt, Text};
use diesel::{Queryable, QueryableByName};

use crate::error::StoreError;
use crate::rows::{MessageRow, SessionRow};

/// The columns of [`MessageRow`], for the raw queries below.
macro_rules! message_columns {
    () => {
        "messages.id, messages.session_id, messages.role, messages.content, messages.status, \
         messages.model, messages.finish_reason, messages.prompt_tokens, \
         messages.completion_tokens, messages.error_code, messages.error_message, \
         messages.tool_calls, messages.created_at, messages.completed_at, \
         messages.assistant_id, messages.assistant_name, messages.parent_id, messages.depth"
    };
}

/// The messages of the branch that ends at `$1` (a message of session
/// `$2`), walking up at most `$3` messages (the leaf included) and keeping
/// those at depth `$4` or less, oldest first. Each step is a lookup of the
/// primary key, so the cost is the number of steps, whatever the length of
/// the branch or the size of the tree; the walk stops after `$3` steps.
///
/// The steps need not check the session: a parent is always of its
/// child's session (the module's invariant). `CROSS JOIN` keeps the walk
/// (few rows) the outer loop: SQLite, which keeps no statistics unless
/// told to, would otherwise read every message to meet it; PostgreSQL
/// treats it as a plain join.
pub(crate) const WALK_UP: &str = concat!(
    "WITH RECURSIVE branch (id, parent_id, steps) AS (",
    " SELECT id, parent_id, CAST(1 AS BIGINT) FROM messages WHERE id = $1 AND session_id = $2",
    " UNION ALL",
    " SELECT messages.id, messages.parent_id, branch.steps + 1",
    " FROM branch CROSS JOIN messages",
    " WHERE messages.id = branch.parent_id AND branch.steps < $3",
    ") SELECT ",
    message_columns!(),
    " FROM branch CROSS JOIN messages",
    " WHERE messages.id = branch.id AND messages.depth <= $4",
    " ORDER BY messages.depth"
);

/// The messages of session `$1` at depths `$2` to `$3`, by depth. When
/// there is exactly one per depth, they are that part of every branch deep
/// enough (a branch holds one message of each depth, and there is no other):
/// the page of a branch no other runs beside, read as an index range
/// instead of a walk up from its leaf, which would cost the whole distance
/// from the leaf in a long conversation. See [`the_only_ones`].
pub(crate) const BY_DEPTH: &str = concat!(
    "SELECT ",
    message_columns!(),
    " FROM messages WHERE messages.session_id = $1 AND messages.depth >= $2",
    " AND messages.depth <= $3 ORDER BY messages.depth, messages.id"
);

/// `rows` (from [`BY_DEPTH`] for depths `from..=to`) when each is the only
/// message of its depth, so they are the branch's; `None` when another
/// branch runs beside it there, and the branch must be walked.
pub(crate) fn the_only_ones(rows: Vec<MessageRow>, from: i64, to: i64) -> Option<Vec<MessageRow>> {
    let unique = i64::try_from(rows.len()).is_ok_and(|count| count == to - from + 1)
        && rows
            .iter()
            .zip(from..)
            .all(|(row, depth)| row.depth == depth);
    unique.then_some(rows)
}

/// The newest leaf (a message without children, greatest id) of the
/// subtree below `$1`, a message of session `$2` (`$1` itself when nothing
/// follows it), with its depth. Walks down through the index of children,
/// the walk the outer loop as in [`WALK_UP`]. Its leaves are the messages
/// of the subtree that no message names as parent.
pub(crate) const NEWEST_LEAF: &str = concat!(
    "WITH RECURSIVE subtree (id, parent_id, depth) AS (",
    " SELECT id, parent_id, depth FROM messages WHERE id = $1 AND session_id = $2",
    " UNION ALL",
    " SELECT messages.id, messages.parent_id, messages.depth FROM subtree CROSS JOIN messages",
    " WHERE messages.session_id = $2 AND messages.parent_id = subtree.id",
    ") SELECT id, depth FROM subtree",
    // A leaf's children are looked up in the index of children, one probe
    // each: looking for them in the walk's own rows would compare every
    // pair of the subtree, quadratic in a long conversation.
    " WHERE NOT EXISTS (SELECT 1 FROM messages AS child",
    " WHERE child.session_id = $2 AND child.parent_id = subtree.id)",
    " ORDER BY id DESC LIMIT 1"
);

/// A message's id and depth.
#[derive(Debug, Queryable, QueryableByName)]
pub(crate) struct PlacedRow {
    #[diesel(sql_type = Text)]
    pub id: String,
    #[diesel(sql_type = BigInt)]
    pub depth: i64,
}

/// A message's id and its parent's: what its siblings are found by.
#[derive(Debug, Queryable)]
pub(crate) struct FamilyRow {
    pub id: String,
    pub parent_id: Option<String>,
}

/// The one session a batch of messages belongs to; `None` for no messages.
pub(crate) fn session_of(messages: &[Message]) -> Result<Option<SessionId>, StoreError> {
    let Some(first) = messages.first() else {
        return Ok(None);
    };
    let session = first.session_id;
    match messages
        .iter()
        .find(|message| message.session_id != session)
    {
        Some(stray) => Err(StoreError::Invalid(format!(
            "messages of two sessions ({session} and {}) in one append",
            stray.session_id
        ))),
        None => Ok(Some(session)),
    }
}

/// The parents a batch names that it does not hold itself, once each: the
/// store must find them among the session's messages.
pub(crate) fn outside_parents(messages: &[Message]) -> Vec<String> {
    let inside: HashSet<MessageId> = messages.iter().map(|message| message.id).collect();
    let mut seen = HashSet::new();
    messages
        .iter()
        .filter_map(|message| message.parent_id)
        .filter(|parent| !inside.contains(parent) && seen.insert(*parent))
        .map(|parent| parent.to_string())
        .collect()
}

/// A batch placed in its tree: its rows, and the branch its last message ends.
#[derive(Debug)]
pub(crate) struct Placed {
    pub rows: Vec<MessageRow>,
    /// The last message: the session's head from now on.
    pub head: String,
    /// The length of the branch it ends (its depth + 1): the session's
    /// `message_count` from now on.
    pub length: i64,
}

/// Places each of `messages` under its parent, which must be among
/// `stored` (the depths of the session's messages that the batch's
/// [`outside_parents`] named, as found in the session) or earlier in the
/// batch. `None` for an empty batch.
///
/// # Errors
/// [`StoreError::Invalid`] for a parent that is neither: a bug of the
/// caller, refused before anything is written.
pub(crate) fn place(
    messages: &[Message],
    stored: &[PlacedRow],
) -> Result<Option<Placed>, StoreError> {
    let mut depths: HashMap<String, i64> = stored
        .iter()
        .map(|row| (row.id.clone(), row.depth))
        .collect();
    let mut rows = Vec::with_capacity(messages.len());
    for message in messages {
        let depth = match message.parent_id {
            None => 0,
            Some(parent) => depths
                .get(&parent.to_string())
                .map(|depth| depth + 1)
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "message {}: its parent {parent} is not a message of session {} \
                         stored before it",
                        message.id, message.session_id
                    ))
                })?,
        };
        let row = MessageRow::from_domain(message, depth)?;
        depths.insert(row.id.clone(), depth);
        rows.push(row);
    }
    let Some(last) = rows.last() else {
        return Ok(None);
    };
    let (head, length) = (last.id.clone(), last.depth + 1);
    Ok(Some(Placed { rows, head, length }))
}

/// The rows of an imported session and its messages, parents before
/// children: every parent must be one of `messages` (the session is new),
/// and every message the session's. The head is the session's
/// `head_message_id`, which must be one of them, or the last of them when
/// it names none (as an append makes its last message the head);
/// `message_count` is that branch's length, whatever the session says.
///
/// # Errors
/// [`StoreError::Invalid`] for a message of another session, a parent that
/// does not come before its child, or a head that is not a message.
pub(crate) fn imported(
    session: &Session,
    messages: &[Message],
) -> Result<(SessionRow, Vec<MessageRow>), StoreError> {
    if let Some(stray) = messages
        .iter()
        .find(|message| message.session_id != session.id)
    {
        return Err(StoreError::Invalid(format!(
            "message {} of session {} in the import of session {}",
            stray.id, stray.session_id, session.id
        )));
    }
    let Some(placed) = place(messages, &[])? else {
        if let Some(head) = session.head_message_id {
            return Err(StoreError::Invalid(format!(
                "the imported session {} has no messages, yet names {head} its head",
                session.id
            )));
        }
        return Ok((SessionRow::imported(session, None, 0), Vec::new()));
    };
    let (head, length) = match session.head_message_id {
        None => (placed.head, placed.length),
        Some(head) => {
            let head = head.to_string();
            let depth = placed
                .rows
                .iter()
                .find(|row| row.id == head)
                .map(|row| row.depth)
                .ok_or_else(|| {
                    StoreError::Invalid(format!(
                        "the imported session {} names {head} its head, which is none of its messages",
                        session.id
                    ))
                })?;
            (head, depth + 1)
        }
    };
    Ok((
        SessionRow::imported(session, Some(head), length),
        placed.rows,
    ))
}

/// Which part of a branch a page is: what [`WALK_UP`] is bound with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Window {
    /// The shallowest message of the page.
    pub shallowest: i64,
    /// How many messages to walk up from the leaf.
    pub steps: i64,
    /// The deepest message of the page.
    pub deepest: i64,
    /// Whether the branch goes on below the page.
    pub has_more: bool,
}

impl Window {
    /// The page of up to `limit` messages after depth `after` (none: from
    /// the root) on the branch whose leaf is at `leaf` depth. `None` when
    /// nothing of the branch follows `after`.
    pub(crate) fn of(leaf: i64, after: Option<i64>, limit: usize) -> Option<Self> {
        let floor = after.unwrap_or(-1);
        let steps = leaf - floor;
        if steps <= 0 {
            return None;
        }
        let deepest = floor
            .saturating_add(i64::try_from(limit).unwrap_or(i64::MAX))
            .min(leaf);
        Some(Self {
            shallowest: floor + 1,
            steps,
            deepest,
            has_more: leaf > deepest,
        })
    }

    /// The newest `limit` messages of the branch: a walk of `limit` steps.
    pub(crate) fn newest(limit: usize) -> Self {
        Self {
            shallowest: 0,
            steps: i64::try_from(limit).unwrap_or(i64::MAX),
            deepest: i64::MAX,
            has_more: false,
        }
    }
}

/// The parents whose children a page's siblings are: every parent the page
/// names, once, and whether it holds a root (whose siblings are the
/// session's other roots).
pub(crate) fn parents_of(rows: &[MessageRow]) -> (Vec<String>, bool) {
    let mut seen = HashSet::new();
    let parents = rows
        .iter()
        .filter_map(|row| row.parent_id.clone())
        .filter(|parent| seen.insert(parent.clone()))
        .collect();
    (parents, rows.iter().any(|row| row.parent_id.is_none()))
}

/// A page of a branch with the siblings of each message: `family` holds
/// every child of the parents [`parents_of`] named (and the roots, when it
/// said so), in any order.
pub(crate) fn with_siblings(
    rows: Vec<MessageRow>,
    mut family: Vec<FamilyRow>,
) -> Result<Vec<BranchMessage>, StoreError> {
    // Ids are UUID v7 in one text form: their order is their age.
    family.sort_unstable_by(|a, b| a.id.cmp(&b.id));
    let mut children: HashMap<Option<String>, Vec<String>> = HashMap::new();
    for member in family {
        children
            .entry(member.parent_id)
            .or_default()
            .push(member.id);
    }
    rows.into_iter()
        .map(|row| {
            let ids = children.get(&row.parent_id).map_or(&[][..], Vec::as_slice);
            let index = ids.iter().position(|id| *id == row.id).ok_or_else(|| {
                StoreError::Corrupt(format!(
                    "messages row {}: missing among its siblings",
                    row.id
                ))
            })?;
            let ids = ids
                .iter()
                .map(|id| {
                    MessageId::parse(id)
                        .map_err(|error| StoreError::Corrupt(format!("messages row {id}: {error}")))
                })
                .collect::<Result<_, _>>()?;
            Ok(BranchMessage {
                message: row.into_domain()?,
                siblings: Siblings { ids, index },
            })
        })
        .collect()
}

/// Sessions and branches for the tests of both backends.
#[cfg(test)]
pub(crate) mod fixtures {
    use colloquy_domain::{Message, MessageContent, MessageId, ModelName, Principal, Session};

    /// A session of alice's, and its one branch of `length` user messages,
    /// oldest first; the session names the last of them its head, as it
    /// will be once they are stored.
    pub(crate) fn session_with_branch(length: usize) -> (Session, Vec<Message>) {
        let mut session = Session::new(
            Principal::parse("alice").unwrap(),
            None,
            None,
            ModelName::parse("m").unwrap(),
        );
        let mut parent = None;
        let branch: Vec<Message> = (0..length)
            .map(|n| {
                let message = following(parent, user_message(&session, &format!("message {n}")));
                parent = Some(message.id);
                message
            })
            .collect();
        session.head_message_id = parent;
        (session, branch)
    }

    /// `message`, stored under `parent`.
    pub(crate) fn following(parent: Option<MessageId>, message: Message) -> Message {
        Message {
            parent_id: parent,
            ..message
        }
    }

    pub(crate) fn user_message(session: &Session, text: &str) -> Message {
        Message::user(
            session.id,
            MessageContent::parse(text.to_owned(), 1_000).unwrap(),
        )
    }
}

#[cfg(test)]
mod tests {
    use colloquy_domain::MessageContent;

    use super::*;

    fn message(session: SessionId, parent: Option<&Message>) -> Message {
        Message {
            parent_id: parent.map(|parent| parent.id),
            ..Message::user(session, MessageContent::parse("hi".to_owned(), 10).unwrap())
        }
    }

    #[test]
    fn a_batch_is_placed_under_parents_stored_before_or_earlier_in_it() {
        let session = SessionId::new();
        let stored = message(session, None);
        let question = message(session, Some(&stored));
        let reply = message(session, Some(&question));
        let sibling = message(session, Some(&stored));
        let batch = [question, reply, sibling];
        assert_eq!(outside_parents(&batch), [stored.id.to_string()]);
        let known = [PlacedRow {
            id: stored.id.to_string(),
            depth: 4,
        }];
        let placed = place(&batch, &known).unwrap().unwrap();
        let depths: Vec<i64> = placed.rows.iter().map(|row| row.depth).collect();
        assert_eq!(depths, [5, 6, 5]);
        assert_eq!(placed.head, batch[2].id.to_string());
        assert_eq!(placed.length, 6, "the last message's branch");
        assert!(place(&[], &[]).unwrap().is_none());
    }

    #[test]
    fn a_parent_not_stored_before_its_child_is_refused() {
        let session = SessionId::new();
        let elsewhere = message(SessionId::new(), None);
        let orphan = message(session, Some(&elsewhere));
        assert!(matches!(
            place(std::slice::from_ref(&orphan), &[]),
            Err(StoreError::Invalid(detail)) if detail.contains("not a message of session")
        ));
        // A parent later in the batch comes too late.
        let parent = message(session, None);
        let child = message(session, Some(&parent));
        assert!(outside_parents(&[child.clone(), parent.clone()]).is_empty());
        assert!(place(&[child, parent], &[]).is_err());
    }

    #[test]
    fn a_range_of_depths_is_the_branch_only_when_each_depth_has_one_message() {
        let session = SessionId::new();
        let row = |depth: i64| {
            let mut row = MessageRow::from_domain(&message(session, None), depth).unwrap();
            row.depth = depth;
            row
        };
        let alone: Vec<MessageRow> = (4..=7).map(row).collect();
        assert_eq!(
            tree_rows(the_only_ones(alone, 4, 7)),
            Some(vec![4, 5, 6, 7])
        );
        // Two replies at depth 5: two branches run side by side there.
        let forked = vec![row(4), row(5), row(5), row(6)];
        assert_eq!(tree_rows(the_only_ones(forked, 4, 6)), None);
        // A depth with no message at all (a branch too short): not the branch.
        assert_eq!(tree_rows(the_only_ones(vec![row(4), row(6)], 4, 6)), None);
    }

    fn tree_rows(rows: Option<Vec<MessageRow>>) -> Option<Vec<i64>> {
        rows.map(|rows| rows.iter().map(|row| row.depth).collect())
    }

    #[test]
    fn a_page_is_a_range_of_depths() {
        // A branch of ten (leaf at depth 9), pages of four.
        let first = Window::of(9, None, 4).unwrap();
        assert_eq!((first.steps, first.deepest, first.has_more), (10, 3, true));
        let second = Window::of(9, Some(3), 4).unwrap();
        assert_eq!(
            (second.steps, second.deepest, second.has_more),
            (6, 7, true)
        );
        let last = Window::of(9, Some(7), 4).unwrap();
        assert_eq!((last.steps, last.deepest, last.has_more), (2, 9, false));
        assert_eq!(
            (first.shallowest, second.shallowest, last.shallowest),
            (0, 4, 8)
        );
        assert_eq!(Window::of(9, Some(9), 4), None, "nothing after the leaf");
        assert_eq!(Window::of(2, Some(5), 4), None, "a cursor below the leaf");
        assert!(Window::of(0, None, 0).unwrap().has_more, "a page of none");
    }
}
