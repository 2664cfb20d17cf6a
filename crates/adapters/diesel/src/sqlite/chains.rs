//! Conversation chains on SQLite (see `crate::chains`): filling them inside
//! the writes that make texts final, finding a conversation by its chain,
//! and storing a client's tool results. Every caller already holds the
//! write lock (`BEGIN IMMEDIATE`), so two fills of a session never overlap.

use colloquy_domain::Message;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use crate::chains::{self, WaitingRow, WaitingSessionRow};
use crate::error::StoreError;
use crate::rows::{with_tool_results, MessageRow};
use crate::schema::{messages, sessions};
use crate::statement::cached_query;

/// Stores the chain of every message of `session` that can have one now.
/// Run inside the transaction of the write that made a text final.
pub(super) fn fill(connection: &mut SqliteConnection, session: &str) -> Result<(), StoreError> {
    let waiting: Vec<WaitingRow> = cached_query(chains::WAITING)
        .bind::<Text, _>(session)
        .load(connection)?;
    for (id, chain) in chains::chains_to_store(waiting)? {
        cached_query(chains::SET_CHAIN)
            .bind::<BigInt, _>(chain)
            .bind::<Text, _>(id)
            .execute(connection)?;
    }
    Ok(())
}

/// [`fill`] for every session with a final message waiting: after an older
/// version's rows, or an interruption of every streaming reply. Returns how
/// many sessions it filled. Run inside a write transaction.
pub(super) fn fill_every_session(connection: &mut SqliteConnection) -> Result<usize, StoreError> {
    let sessions: Vec<WaitingSessionRow> =
        cached_query(chains::WAITING_SESSIONS).load(connection)?;
    for session in &sessions {
        fill(connection, &session.session_id)?;
    }
    Ok(sessions.len())
}

/// See [`ChatRepository::find_by_chain`](colloquy_ports::ChatRepository::find_by_chain).
pub(super) fn find(
    connection: &mut SqliteConnection,
    owner: &str,
    chain: i64,
    system_prompt: Option<&str>,
) -> Result<Option<Message>, StoreError> {
    let found = messages::table
        .inner_join(sessions::table)
        .filter(messages::chain.eq(chain))
        .filter(sessions::owner.eq(owner))
        // `IS`: NULL matches NULL, for a session with no system prompt.
        .filter(sessions::system_prompt.is(system_prompt))
        .order(messages::id.desc())
        .select(MessageRow::as_select())
        .first(connection)
        .optional()?;
    found.map(MessageRow::into_domain).transpose()
}

/// See [`ChatRepository::record_tool_results`](colloquy_ports::ChatRepository::record_tool_results).
/// Run inside a write transaction (the repository's writer).
pub(super) fn record_tool_results(
    connection: &mut SqliteConnection,
    owner: &str,
    session: &str,
    message: &str,
    results: &[(String, String)],
) -> Result<Message, StoreError> {
    let owned_session = sessions::table
        .filter(sessions::id.eq(session))
        .filter(sessions::owner.eq(owner))
        .select(sessions::id);
    let target = messages::table
        .find(message)
        .filter(messages::session_id.eq(session))
        .filter(messages::session_id.eq_any(owned_session));
    let stored: Option<String> = target.select(messages::tool_calls).first(connection)?;
    let updated = with_tool_results(stored.as_deref(), results)?;
    diesel::update(target)
        .set(messages::tool_calls.eq(updated))
        .returning(MessageRow::as_returning())
        .get_result(connection)?
        .into_domain()
}
