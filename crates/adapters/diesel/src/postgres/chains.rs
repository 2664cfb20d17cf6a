//! Conversation chains on PostgreSQL (see `crate::chains`): filling them
//! inside the writes that make texts final, finding a conversation by its
//! chain, and storing a client's tool results.
//!
//! A fill first locks its session's row, as appends do: two replies of one
//! turn ending at once (the second stored under the first) take turns, so
//! the second's fill sees the first's chain instead of both missing it
//! under READ COMMITTED.

use colloquy_domain::Message;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};

use crate::chains::{self, WaitingRow, WaitingSessionRow};
use crate::error::StoreError;
use crate::rows::{with_tool_results, MessageRow};
use crate::schema::{messages, sessions};
use crate::statement::cached_query;

/// Stores the chain of every message of `session` that can have one now.
/// Run inside the transaction of the write that made a text final.
pub(super) async fn fill(
    connection: &mut AsyncPgConnection,
    session: &str,
) -> Result<(), StoreError> {
    let locked: Option<String> = sessions::table
        .find(session)
        .select(sessions::id)
        .for_update()
        .first(connection)
        .await
        .optional()?;
    if locked.is_none() {
        // Deleted meanwhile: its messages went with it.
        return Ok(());
    }
    let waiting: Vec<WaitingRow> = cached_query(chains::WAITING)
        .bind::<Text, _>(session)
        .load(connection)
        .await?;
    for (id, chain) in chains::chains_to_store(waiting)? {
        cached_query(chains::SET_CHAIN)
            .bind::<BigInt, _>(chain)
            .bind::<Text, _>(id)
            .execute(connection)
            .await?;
    }
    Ok(())
}

/// [`fill`] for every session with a final message waiting: after an older
/// version's rows, or an interruption of every streaming reply. Each
/// session in a transaction of its own. Returns how many it filled.
pub(super) async fn fill_every_session(
    connection: &mut AsyncPgConnection,
) -> Result<usize, StoreError> {
    let sessions: Vec<WaitingSessionRow> = cached_query(chains::WAITING_SESSIONS)
        .load(connection)
        .await?;
    for session in &sessions {
        connection
            .transaction::<_, StoreError, _>(async |connection| {
                fill(connection, &session.session_id).await
            })
            .await?;
    }
    Ok(sessions.len())
}

/// See [`ChatRepository::find_by_chain`](colloquy_ports::ChatRepository::find_by_chain).
pub(super) async fn find(
    connection: &mut AsyncPgConnection,
    owner: &str,
    chain: i64,
    system_prompt: Option<&str>,
) -> Result<Option<Message>, StoreError> {
    let found = messages::table
        .inner_join(sessions::table)
        .filter(messages::chain.eq(chain))
        .filter(sessions::owner.eq(owner))
        // NULL matches NULL, for a session with no system prompt.
        .filter(sessions::system_prompt.is_not_distinct_from(system_prompt))
        .order(messages::id.desc())
        .select(MessageRow::as_select())
        .first(connection)
        .await
        .optional()?;
    found.map(MessageRow::into_domain).transpose()
}

/// See [`ChatRepository::record_tool_results`](colloquy_ports::ChatRepository::record_tool_results).
pub(super) async fn record_tool_results(
    connection: &mut AsyncPgConnection,
    owner: &str,
    session: &str,
    message: &str,
    results: &[(String, String)],
) -> Result<Message, StoreError> {
    connection
        .transaction::<_, StoreError, _>(async |connection| {
            let owned_session = sessions::table
                .filter(sessions::id.eq(session))
                .filter(sessions::owner.eq(owner))
                .select(sessions::id);
            let target = messages::table
                .find(message)
                .filter(messages::session_id.eq(session))
                .filter(messages::session_id.eq_any(owned_session));
            // Locked while the new results are merged in: two clients
            // answering at once both keep theirs.
            let stored: Option<String> = target
                .select(messages::tool_calls)
                .for_update()
                .first(connection)
                .await?;
            let updated = with_tool_results(stored.as_deref(), results)?;
            diesel::update(target)
                .set(messages::tool_calls.eq(updated))
                .returning(MessageRow::as_returning())
                .get_result(connection)
                .await?
                .into_domain()
        })
        .await
}
