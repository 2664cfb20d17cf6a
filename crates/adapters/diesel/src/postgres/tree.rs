//! The tree of a session's messages on PostgreSQL: appending under parents,
//! reading a branch, switching branch, importing a whole session. The
//! placing and the recursive SQL are shared with SQLite (`crate::tree`);
//! here are the transactions around them.
//!
//! Every write that reads the tree first locks its session's row (`FOR
//! UPDATE`, owner-scoped): appends, switches and deletes of one session
//! take turns, so what a write read of the tree (a parent's depth, the
//! leaves below a message) is still true when it writes. Reads run in one
//! REPEATABLE READ, READ ONLY transaction, so every query of a page sees
//! the same tree.

use colloquy_domain::{Message, Session, Timestamp};
use colloquy_ports::{BranchMessage, Page};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};

use super::{chains, queries};
use crate::error::StoreError;
use crate::rows::{MessageRow, SessionRow, INSERT_CHUNK};
use crate::schema::{messages, sessions};
use crate::statement::cached_query;
use crate::tree::{self, FamilyRow, PlacedRow, Window};
use crate::turn_writes;

/// The outcome of a write's transaction, with a failure that happened
/// before COMMIT was sent (`reached_commit` is false) reported as
/// [`StoreError::NotCommitted`]: whatever the error says (the failed
/// ROLLBACK's, after a lost connection, replaces the statement's), nothing
/// of the write was stored, so it may be made again.
fn unless_committed<T>(
    outcome: Result<T, StoreError>,
    reached_commit: bool,
) -> Result<T, StoreError> {
    match outcome {
        Err(StoreError::Diesel(error)) if !reached_commit => Err(StoreError::NotCommitted(error)),
        other => other,
    }
}

/// Locks `owner`'s session's row until the transaction ends.
async fn lock_session(
    connection: &mut AsyncPgConnection,
    owner: &str,
    session: &str,
) -> Result<(), StoreError> {
    sessions::table
        .find(session)
        .filter(sessions::owner.eq(owner))
        .select(sessions::id)
        .for_update()
        .first::<String>(connection)
        .await?;
    Ok(())
}

/// See [`ChatRepository::append_messages`](colloquy_ports::ChatRepository::append_messages).
pub(super) async fn append(
    connection: &mut AsyncPgConnection,
    owner: &str,
    session: &str,
    messages: &[Message],
    now: Timestamp,
) -> Result<(), StoreError> {
    let mut reached_commit = false;
    let outcome = connection
        .transaction::<_, StoreError, _>(async |connection| {
            // Locking the session first both checks that the owner has it and
            // makes a concurrent delete wait for these inserts, or them for it.
            lock_session(connection, owner, session).await?;
            let stored = depths(connection, session, tree::outside_parents(messages)).await?;
            let Some(placed) = tree::place(messages, &stored)? else {
                reached_commit = true;
                return Ok(());
            };
            // A row at a time: a turn appends two or three, and a statement
            // of one row stays prepared where Diesel's insert of several
            // is parsed again.
            for row in &placed.rows {
                turn_writes::insert_message(row).execute(connection).await?;
            }
            chains::fill(connection, session).await?;
            cached_query(queries::SET_HEAD)
                .bind::<Nullable<Text>, _>(&placed.head)
                .bind::<BigInt, _>(placed.length)
                .bind::<BigInt, _>(now.as_micros())
                .bind::<Text, _>(session)
                .bind::<Text, _>(owner)
                .execute(connection)
                .await?;
            reached_commit = true;
            Ok(())
        })
        .await;
    unless_committed(outcome, reached_commit)
}

/// See [`ChatRepository::import_session`](colloquy_ports::ChatRepository::import_session).
pub(super) async fn import(
    connection: &mut AsyncPgConnection,
    session: &Session,
    messages: &[Message],
) -> Result<(), StoreError> {
    let (session, rows) = tree::imported(session, messages)?;
    let mut reached_commit = false;
    let outcome = connection
        .transaction::<_, StoreError, _>(async |connection| {
            diesel::insert_into(sessions::table)
                .values(&session)
                .execute(connection)
                .await?;
            insert(connection, &rows).await?;
            chains::fill(connection, &session.id).await?;
            reached_commit = true;
            Ok(())
        })
        .await;
    unless_committed(outcome, reached_commit)
}

async fn insert(connection: &mut AsyncPgConnection, rows: &[MessageRow]) -> Result<(), StoreError> {
    for chunk in rows.chunks(INSERT_CHUNK) {
        diesel::insert_into(messages::table)
            .values(chunk)
            .execute(connection)
            .await?;
    }
    Ok(())
}

/// The depths of those of `ids` that are messages of `session`.
async fn depths(
    connection: &mut AsyncPgConnection,
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
                .load(connection)
                .await?)
        }
        _ => {}
    }
    Ok(messages::table
        .filter(messages::session_id.eq(session))
        .filter(messages::id.eq_any(ids))
        .select((messages::id, messages::depth))
        .load(connection)
        .await?)
}

/// The depth of `message`, which must be one of `session`'s.
async fn depth_of(
    connection: &mut AsyncPgConnection,
    session: &str,
    message: &str,
) -> Result<i64, StoreError> {
    Ok(messages::table
        .find(message)
        .filter(messages::session_id.eq(session))
        .select(messages::depth)
        .first(connection)
        .await?)
}

/// The head of `owner`'s session: `Ok(None)` while it is empty, `NotFound`
/// when the owner has no such session.
async fn owned_head(
    connection: &mut AsyncPgConnection,
    owner: &str,
    session: &str,
) -> Result<Option<String>, StoreError> {
    Ok(sessions::table
        .find(session)
        .filter(sessions::owner.eq(owner))
        .select(sessions::head_message_id)
        .first(connection)
        .await?)
}

/// The page as a range of depths, when no other branch runs beside it
/// there (see [`tree::BY_DEPTH`]).
async fn by_depth(
    connection: &mut AsyncPgConnection,
    session: &str,
    window: Window,
) -> Result<Option<Vec<MessageRow>>, StoreError> {
    let rows: Vec<MessageRow> = cached_query(tree::BY_DEPTH)
        .bind::<Text, _>(session)
        .bind::<BigInt, _>(window.shallowest)
        .bind::<BigInt, _>(window.deepest)
        .load(connection)
        .await?;
    Ok(tree::the_only_ones(rows, window.shallowest, window.deepest))
}

async fn walk(
    connection: &mut AsyncPgConnection,
    session: &str,
    leaf: &str,
    window: Window,
) -> Result<Vec<MessageRow>, StoreError> {
    Ok(cached_query(tree::WALK_UP)
        .bind::<Text, _>(leaf)
        .bind::<Text, _>(session)
        .bind::<BigInt, _>(window.steps)
        .bind::<BigInt, _>(window.deepest)
        .load(connection)
        .await?)
}

/// The children of every parent of `rows`, and the session's roots when
/// `rows` holds one: one query for the siblings of a page (two with roots).
/// Unordered, so that the planner looks each parent's children up rather
/// than reading the session in id order ([`tree::with_siblings`] orders
/// them), as on SQLite.
async fn family(
    connection: &mut AsyncPgConnection,
    session: &str,
    rows: &[MessageRow],
) -> Result<Vec<FamilyRow>, StoreError> {
    if rows.is_empty() {
        return Ok(Vec::new());
    }
    let (parents, has_root) = tree::parents_of(rows);
    let mut family: Vec<FamilyRow> = messages::table
        .filter(messages::session_id.eq(session.to_owned()))
        .filter(messages::parent_id.eq_any(parents))
        .select((messages::id, messages::parent_id))
        .load(connection)
        .await?;
    if has_root {
        family.extend(
            messages::table
                .filter(messages::session_id.eq(session.to_owned()))
                .filter(messages::parent_id.is_null())
                .select((messages::id, messages::parent_id))
                .load::<FamilyRow>(connection)
                .await?,
        );
    }
    Ok(family)
}

/// See [`ChatRepository::list_branch`](colloquy_ports::ChatRepository::list_branch).
pub(super) async fn list_branch(
    connection: &mut AsyncPgConnection,
    owner: &str,
    session: &str,
    leaf: Option<&str>,
    limit: usize,
    after: Option<&str>,
) -> Result<Page<BranchMessage>, StoreError> {
    let empty = || Page {
        items: Vec::new(),
        has_more: false,
    };
    connection
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run::<_, StoreError, _>(async |connection| {
            let head = owned_head(connection, owner, session).await?;
            let Some(leaf) = leaf.map(str::to_owned).or(head) else {
                return Ok(empty());
            };
            let leaf_depth = depth_of(connection, session, &leaf).await?;
            let after = match after {
                Some(after) => Some(depth_of(connection, session, after).await?),
                None => None,
            };
            let Some(window) = Window::of(leaf_depth, after, limit) else {
                return Ok(empty());
            };
            let rows = match by_depth(connection, session, window).await? {
                Some(rows) => rows,
                None => walk(connection, session, &leaf, window).await?,
            };
            let family = family(connection, session, &rows).await?;
            Ok(Page {
                items: tree::with_siblings(rows, family)?,
                has_more: window.has_more,
            })
        })
        .await
}

/// See [`ChatRepository::recent_messages`](colloquy_ports::ChatRepository::recent_messages).
pub(super) async fn recent(
    connection: &mut AsyncPgConnection,
    owner: &str,
    session: &str,
    leaf: Option<&str>,
    limit: usize,
) -> Result<Vec<Message>, StoreError> {
    connection
        .build_transaction()
        .repeatable_read()
        .read_only()
        .run::<_, StoreError, _>(async |connection| {
            let head = owned_head(connection, owner, session).await?;
            let Some(leaf) = leaf.map(str::to_owned).or(head) else {
                return Ok(Vec::new());
            };
            if limit == 0 {
                // Nothing to read, but a leaf that is not the session's is
                // still not found.
                depth_of(connection, session, &leaf).await?;
                return Ok(Vec::new());
            }
            let rows = walk(connection, session, &leaf, Window::newest(limit)).await?;
            if rows.is_empty() {
                return Err(StoreError::NotFound);
            }
            rows.into_iter().map(MessageRow::into_domain).collect()
        })
        .await
}

/// See [`ChatRepository::get_message`](colloquy_ports::ChatRepository::get_message).
pub(super) async fn get_message(
    connection: &mut AsyncPgConnection,
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
        .first(connection)
        .await?
        .into_domain()
}

/// See [`ChatRepository::switch_branch`](colloquy_ports::ChatRepository::switch_branch).
pub(super) async fn switch_branch(
    connection: &mut AsyncPgConnection,
    owner: &str,
    session: &str,
    to: &str,
    at: Timestamp,
) -> Result<Session, StoreError> {
    connection
        .transaction::<_, StoreError, _>(async |connection| {
            lock_session(connection, owner, session).await?;
            let leaf: PlacedRow = cached_query(tree::NEWEST_LEAF)
                .bind::<Text, _>(to)
                .bind::<Text, _>(session)
                .get_result(connection)
                .await?;
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
                .get_result(connection)
                .await?
                .into_domain()
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::super::connection::Target;
    use super::super::search::{self, statement, Pass};
    use super::*;
    use crate::chains::{SET_CHAIN, WAITING};
    use crate::statement::testing::CacheLog;
    use crate::testing::TestDatabase;
    use crate::tree::fixtures::{following, session_with_branch, user_message};

    /// As on SQLite: a turn's statements are sent to the server to be
    /// parsed once per connection, then only run.
    #[tokio::test]
    async fn a_turns_statements_stay_prepared_on_their_connection() {
        let database = TestDatabase::create().await;
        crate::migrate_postgres(database.url()).await.unwrap();
        let mut connection = Target::parse(database.url())
            .unwrap()
            .establish()
            .await
            .unwrap();
        let log = CacheLog::default();
        connection.set_instrumentation(log.recorder());
        let (session, branch) = session_with_branch(200);
        import(&mut connection, &session, &branch).await.unwrap();
        let (owner, id) = (session.owner.as_str(), session.id.to_string());
        let mut head = session.head_message_id;
        for n in 0..3 {
            let recent = recent(&mut connection, owner, &id, None, 50).await.unwrap();
            assert_eq!(recent.len(), 50);
            let page = list_branch(&mut connection, owner, &id, None, 50, None)
                .await
                .unwrap();
            assert_eq!(page.items.len(), 50);
            let next = following(head, user_message(&session, &format!("one more, {n}")));
            head = Some(next.id);
            append(&mut connection, owner, &id, &[next], Timestamp::now())
                .await
                .unwrap();
            let leaf = head.unwrap().to_string();
            switch_branch(&mut connection, owner, &id, &leaf, Timestamp::now())
                .await
                .unwrap();
            // A common word ends after the first pass, a rare one needs both;
            // those older than the leaf: the appends before this one.
            for (word, hits) in [("message", 5), ("more", n)] {
                let found =
                    search::search(&mut connection, owner, &[word.to_owned()], 5, Some(&leaf))
                        .await
                        .unwrap();
                assert_eq!(found.items.len(), hits, "{word}");
            }
        }
        for (sql, name) in [
            (tree::WALK_UP, "tree::WALK_UP"),
            (tree::BY_DEPTH, "tree::BY_DEPTH"),
            (WAITING, "chains::WAITING"),
            (SET_CHAIN, "chains::SET_CHAIN"),
            (tree::NEWEST_LEAF, "tree::NEWEST_LEAF"),
            (turn_writes::INSERT_MESSAGE, "turn_writes::INSERT_MESSAGE"),
            (turn_writes::DEPTH_OF_ONE, "turn_writes::DEPTH_OF_ONE"),
            (queries::SET_HEAD, "queries::SET_HEAD"),
            (statement(Pass::Newest, true), "search, first pass"),
            (statement(Pass::All, true), "search, second pass"),
        ] {
            assert_eq!(log.times_prepared(sql), 1, "{name}");
        }
    }
}
