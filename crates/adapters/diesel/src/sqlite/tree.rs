//! The tree of a session's messages on SQLite: appending under parents,
//! reading a branch, switching branch, importing a whole session. The
//! placing and the recursive SQL are shared with PostgreSQL (`crate::tree`);
//! here are the transactions around them.
//!
//! Every write holds the database's write lock from its first statement
//! (`BEGIN IMMEDIATE`), so what it reads of the tree (a parent's depth, the
//! leaves below a message) is still true when it writes.

use colloquy_domain::{Message, Session, Timestamp};
use colloquy_ports::{BranchMessage, Page};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use super::repository::session_exists;
use super::{chains, queries};
use crate::error::StoreError;
use crate::rows::{MessageRow, SessionRow, INSERT_CHUNK};
use crate::schema::{messages, sessions};
use crate::statement::cached_query;
use crate::tree::{self, FamilyRow, PlacedRow, Window};
use crate::turn_writes::{self, StateWrite};

/// See [`ChatRepository::append_messages`](colloquy_ports::ChatRepository::append_messages).
/// Run inside a write transaction (the repository's writer).
pub(super) fn append(
    connection: &mut SqliteConnection,
    owner: &str,
    session: &str,
    messages: &[Message],
    now: Timestamp,
) -> Result<(), StoreError> {
    if !session_exists(connection, owner, session)? {
        return Err(StoreError::NotFound);
    }
    let stored = depths(connection, session, tree::outside_parents(messages))?;
    let Some(placed) = tree::place(messages, &stored)? else {
        return Ok(());
    };
    // A row at a time: a turn appends two or three, and a statement of
    // one row stays prepared where Diesel's insert of several does not.
    for row in &placed.rows {
        turn_writes::insert_message(row).execute(connection)?;
    }
    chains::fill(connection, session)?;
    cached_query(queries::SET_HEAD)
        .bind::<Nullable<Text>, _>(&placed.head)
        .bind::<BigInt, _>(placed.length)
        .bind::<BigInt, _>(now.as_micros())
        .bind::<Text, _>(session)
        .bind::<Text, _>(owner)
        .execute(connection)?;
    Ok(())
}

/// Stores a streaming reply's progress or its end (see
/// [`turn_writes::UPDATE_MESSAGE`]); returns how many rows changed (0 or
/// 1). Run inside a write transaction (the repository's writer).
pub(super) fn set_state(
    connection: &mut SqliteConnection,
    write: &StateWrite<'_>,
) -> Result<usize, StoreError> {
    Ok(turn_writes::update_message(write).execute(connection)?)
}

/// See [`ChatRepository::import_session`](colloquy_ports::ChatRepository::import_session).
/// Run inside a write transaction (the repository's writer).
pub(super) fn import(
    connection: &mut SqliteConnection,
    session: &Session,
    messages: &[Message],
) -> Result<(), StoreError> {
    let (session, rows) = tree::imported(session, messages)?;
    diesel::insert_into(sessions::table)
        .values(&session)
        .execute(connection)?;
    insert(connection, &rows)?;
    chains::fill(connection, &session.id)
}

fn insert(connection: &mut SqliteConnection, rows: &[MessageRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        diesel::insert_into(messages::table)
            .values(chunk)
            .execute(connection)?;
    }
    Ok(())
}

/// The depths of those of `ids` that are messages of `session`.
fn depths(
    connection: &mut SqliteConnection,
    session: &str,
    ids: Vec<String>,
) -> Result<Vec<PlacedRow>, StoreError> {
    match ids.as_slice() {
        [] => return Ok(Vec::new()),
        // A turn's append: its one parent, by a statement that stays prepared.
        [id] => {
            return Ok(cached_query(turn_writes::DEPTH_OF_ONE)
                .bind::<Text, _>(session)
                .bind::<Text, _>(id)
                .load(connection)?)
        }
        _ => {}
    }
    Ok(messages::table
        .filter(messages::session_id.eq(session))
        .filter(messages::id.eq_any(ids))
        .select((messages::id, messages::depth))
        .load(connection)?)
}

/// The depth of `message`, which must be one of `session`'s.
fn depth_of(
    connection: &mut SqliteConnection,
    session: &str,
    message: &str,
) -> Result<i64, StoreError> {
    Ok(messages::table
        .find(message)
        .filter(messages::session_id.eq(session))
        .select(messages::depth)
        .first(connection)?)
}

/// The head of `owner`'s session: `Ok(None)` while it is empty, `NotFound`
/// when the owner has no such session.
fn owned_head(
    connection: &mut SqliteConnection,
    owner: &str,
    session: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sessions::table
        .find(session)
        .filter(sessions::owner.eq(owner))
        .select(sessions::head_message_id)
        .first(connection)?)
}

/// The page as a range of depths, when no other branch runs beside it
/// there (see [`tree::BY_DEPTH`]).
fn by_depth(
    connection: &mut SqliteConnection,
    session: &str,
    window: Window,
) -> Result<Option<Vec<MessageRow>>, StoreError> {
    let rows: Vec<MessageRow> = cached_query(tree::BY_DEPTH)
        .bind::<Text, _>(session)
        .bind::<BigInt, _>(window.shallowest)
        .bind::<BigInt, _>(window.deepest)
        .load(connection)?;
    Ok(tree::the_only_ones(rows, window.shallowest, window.deepest))
}

fn walk(
    connection: &mut SqliteConnection,
    session: &str,
    leaf: &str,
    window: Window,
) -> Result<Vec<MessageRow>, StoreError> {
    Ok(cached_query(tree::WALK_UP)
        .bind::<Text, _>(leaf)
        .bind::<Text, _>(session)
        .bind::<BigInt, _>(window.steps)
        .bind::<BigInt, _>(window.deepest)
        .load(connection)?)
}

/// The children of every parent of `rows`, and the session's roots when
/// `rows` holds one: one query for the siblings of a page (two with roots).
/// Unordered: an `ORDER BY id` here makes SQLite read the session in id
/// order and filter it, every message of a long conversation, instead of
/// looking each parent's children up ([`tree::with_siblings`] orders them).
fn family(
    connection: &mut SqliteConnection,
    session: &str,
    rows: &[MessageRow],
) -> Result<Vec<FamilyRow>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (parents, has_root) = tree::parents_of(rows);
    let mut family: Vec<FamilyRow> = messages::table
        .filter(messages::session_id.eq(session))
        .filter(messages::parent_id.eq_any(parents))
        .select((messages::id, messages::parent_id))
        .load(connection)?;
    if has_root {
        family.extend(
            messages::table
                .filter(messages::session_id.eq(session))
                .filter(messages::parent_id.is_null())
                .select((messages::id, messages::parent_id))
                .load::<FamilyRow>(connection)?,
        );
    }
    Ok(family)
}

/// See [`ChatRepository::list_branch`](colloquy_ports::ChatRepository::list_branch).
pub(super) fn list_branch(
    connection: &mut SqliteConnection,
    owner: &str,
    session: &str,
    leaf: Option<String>,
    limit: usize,
    after: Option<String>,
) -> Result<Page<BranchMessage>, StoreError> {
    let empty = || Page {
        items: Vec::new(),
        has_more: false,
    };
    // One read transaction: the owner's check, the cursor's place and the
    // walk see the same tree.
    connection.transaction(|connection| {
        let head = owned_head(connection, owner, session)?;
        let Some(leaf) = leaf.or(head) else {
            return Ok(empty());
        };
        let leaf_depth = depth_of(connection, session, &leaf)?;
        let after = after
            .map(|after| depth_of(connection, session, &after))
            .transpose()?;
        let Some(window) = Window::of(leaf_depth, after, limit) else {
            return Ok(empty());
        };
        let rows = match by_depth(connection, session, window)? {
            Some(rows) => rows,
            None => walk(connection, session, &leaf, window)?,
        };
        let family = family(connection, session, &rows)?;
        Ok(Page {
            items: tree::with_siblings(rows, family)?,
            has_more: window.has_more,
        })
    })
}

/// See [`ChatRepository::recent_messages`](colloquy_ports::ChatRepository::recent_messages).
pub(super) fn recent(
    connection: &mut SqliteConnection,
    owner: &str,
    session: &str,
    leaf: Option<String>,
    limit: usize,
) -> Result<Vec<Message>, StoreError> {
    connection.transaction(|connection| {
        let head = owned_head(connection, owner, session)?;
        let Some(leaf) = leaf.or(head) else {
            return Ok(Vec::new());
        };
        if limit == 0 {
            // Nothing to read, but a leaf that is not the session's is
            // still not found.
            depth_of(connection, session, &leaf)?;
            return Ok(Vec::new());
        }
        let rows = walk(connection, session, &leaf, Window::newest(limit))?;
        if rows.is_empty() {
            return Err(StoreError::NotFound);
        }
        rows.into_iter().map(MessageRow::into_domain).collect()
    })
}

/// See [`ChatRepository::get_message`](colloquy_ports::ChatRepository::get_message).
pub(super) fn get_message(
    connection: &mut SqliteConnection,
    owner: &str,
    session: &str,
    id: &str,
) -> Result<Message, StoreError> {
    let owned_session = sessions::table
        .filter(sessions::id.eq(session))
        .filter(sessions::owner.eq(owner))
        .select(sessions::id);
    messages::table
        .find(id)
        .filter(messages::session_id.eq(session))
        .filter(messages::session_id.eq_any(owned_session))
        .select(MessageRow::as_select())
        .first(connection)?
        .into_domain()
}

/// See [`ChatRepository::switch_branch`](colloquy_ports::ChatRepository::switch_branch).
pub(super) fn switch_branch(
    connection: &mut SqliteConnection,
    owner: &str,
    session: &str,
    to: &str,
    at: Timestamp,
) -> Result<Session, StoreError> {
    connection.transaction(|connection| {
        if !session_exists(connection, owner, session)? {
            return Err(StoreError::NotFound);
        }
        let leaf: PlacedRow = cached_query(tree::NEWEST_LEAF)
            .bind::<Text, _>(to)
            .bind::<Text, _>(session)
            .get_result(connection)?;
        let owned = sessions::table
            .find(session)
            .filter(sessions::owner.eq(owner));
        diesel::update(owned)
            .set((
                sessions::head_message_id.eq(&leaf.id),
                sessions::message_count.eq(leaf.depth + 1),
                sessions::updated_at.eq(at.as_micros()),
            ))
            .returning(SessionRow::as_returning())
            .get_result(connection)?
            .into_domain()
    })
}

#[cfg(test)]
mod tests {
    use diesel::Connection as _;

    use super::super::location::Location;
    use super::super::{migrations, pool, search};
    use super::*;
    use crate::chains::{SET_CHAIN, WAITING};
    use crate::rows::MessageChanges;
    use crate::statement::testing::CacheLog;
    use crate::tree::fixtures::{following, session_with_branch, user_message};

    /// A migrated database in memory holding a session of alice's whose
    /// one branch is `length` messages long, the session, and what the
    /// connection prepared into its cache from the import on.
    fn with_branch(length: usize) -> (SqliteConnection, Session, CacheLog) {
        let mut connection = pool::establish(&Location::Memory).unwrap();
        migrations::run_pending(&mut connection).unwrap();
        let log = CacheLog::default();
        connection.set_instrumentation(log.recorder());
        let (session, branch) = session_with_branch(length);
        import(&mut connection, &session, &branch).unwrap();
        (connection, session, log)
    }

    /// Every turn reads its history: the walk must be parsed once per
    /// connection, not once per read.
    #[test]
    fn reading_a_branch_again_reuses_its_prepared_statements() {
        let (mut connection, session, log) = with_branch(200);
        let (owner, id) = (session.owner.as_str(), session.id.to_string());
        for _ in 0..3 {
            assert_eq!(
                recent(&mut connection, owner, &id, None, 50).unwrap().len(),
                50
            );
            let page = list_branch(&mut connection, owner, &id, None, 50, None).unwrap();
            assert_eq!(page.items.len(), 50);
        }
        assert_eq!(
            log.times_prepared(tree::WALK_UP),
            1,
            "recent_messages' walk"
        );
        assert_eq!(log.times_prepared(tree::BY_DEPTH), 1, "list_branch's range");
    }

    #[test]
    fn writes_switches_and_searches_reuse_their_prepared_statements() {
        let (mut connection, session, log) = with_branch(20);
        let (owner, id) = (session.owner.as_str(), session.id.to_string());
        let mut head = session.head_message_id;
        for n in 0..3 {
            // Each a final message, whose chain the append stores (as the
            // import stored those of the branch).
            let next = following(head, user_message(&session, &format!("one more, {n}")));
            head = Some(next.id);
            append(&mut connection, owner, &id, &[next], Timestamp::now()).unwrap();
            let leaf = head.unwrap().to_string();
            switch_branch(&mut connection, owner, &id, &leaf, Timestamp::now()).unwrap();
            let found = search::search(&mut connection, owner, &["message"], 5, Some(&leaf));
            assert_eq!(found.unwrap().items.len(), 5);
        }
        for (statement, name) in [
            (WAITING, "chains::WAITING"),
            (SET_CHAIN, "chains::SET_CHAIN"),
            (turn_writes::INSERT_MESSAGE, "turn_writes::INSERT_MESSAGE"),
            (turn_writes::DEPTH_OF_ONE, "turn_writes::DEPTH_OF_ONE"),
            (queries::SET_HEAD, "queries::SET_HEAD"),
            (tree::NEWEST_LEAF, "tree::NEWEST_LEAF"),
            (search::CURSOR, "search::CURSOR"),
            (search::SEARCH, "search::SEARCH"),
        ] {
            assert_eq!(log.times_prepared(statement), 1, "{name}");
        }
    }

    /// A streaming reply is stored every flush interval, then once more
    /// with its end: each time by the one prepared statement.
    #[test]
    fn storing_a_replys_progress_reuses_its_prepared_statement() {
        let (mut connection, session, log) = with_branch(4);
        let (owner, id) = (session.owner.as_str(), session.id.to_string());
        let mut reply = following(
            session.head_message_id,
            Message::streaming_reply(session.id, &session.model),
        );
        append(
            &mut connection,
            owner,
            &id,
            &[reply.clone()],
            Timestamp::now(),
        )
        .unwrap();
        let reply_id = reply.id.to_string();
        for word in ["Once", " upon", " a time"] {
            reply.content.push_str(word);
            let changes = MessageChanges::of(&reply).unwrap();
            let write = StateWrite {
                owner,
                session: &id,
                id: &reply_id,
                changes: &changes,
                completed_at: None,
            };
            assert_eq!(set_state(&mut connection, &write).unwrap(), 1);
        }
        // Another principal's write matches no row.
        let changes = MessageChanges::of(&reply).unwrap();
        let theirs = StateWrite {
            owner: "mallory",
            session: &id,
            id: &reply_id,
            changes: &changes,
            completed_at: None,
        };
        assert_eq!(set_state(&mut connection, &theirs).unwrap(), 0);
        let stored = recent(&mut connection, owner, &id, None, 1).unwrap();
        assert_eq!(stored[0].content, "Once upon a time");
        assert_eq!(log.times_prepared(turn_writes::UPDATE_MESSAGE), 1);
    }
}
