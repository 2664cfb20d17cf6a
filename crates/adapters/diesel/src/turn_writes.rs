//! The statements a turn writes with on both backends: its messages'
//! inserts, the updates of a streaming reply and its end, and the depth of
//! the parent it is appended under. Each is a constant text
//! ([`cached_query`]), so it stays prepared on its connection: Diesel's
//! own `UPDATE`s and inserts of several rows are prepared again at every
//! run (on SQLite a parse and a plan each, about a fifth of the writer
//! thread's time at 100 streams; on PostgreSQL a round trip of its own
//! before the one that runs it). Parameters are spelled `$n`, which both
//! backends number the same way (see `crate::tree`).

use diesel::pg::Pg;
use diesel::query_builder::{QueryFragment, QueryId};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::sqlite::{Sqlite, SqliteConnection};

use crate::rows::{MessageChanges, MessageRow};
use crate::statement::cached_query;

/// One message row, every column but its chain (filled afterwards by the
/// backend's `chains::fill`), in [`MessageRow`]'s order.
pub(crate) const INSERT_MESSAGE: &str = "\
    INSERT INTO messages (id, session_id, role, content, status, model, finish_reason, \
    prompt_tokens, completion_tokens, error_code, error_message, tool_calls, created_at, \
    completed_at, assistant_id, assistant_name, parent_id, depth) \
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18)";

/// A message's new state ([`MessageChanges`], in its order), when it is of
/// the owner's session (`id`, `session_id`, then `sessions.id` and `owner`)
/// and still streaming, or already ends at this very time (the same write
/// made again after a lost answer). The status is a literal, as a plan
/// that may use the partial index of streaming replies needs it to be.
pub(crate) const UPDATE_MESSAGE: &str = "\
    UPDATE messages SET content = $1, status = $2, finish_reason = $3, prompt_tokens = $4, \
    completion_tokens = $5, error_code = $6, error_message = $7, tool_calls = $8, \
    completed_at = $9 \
    WHERE id = $10 AND session_id = $11 \
    AND session_id IN (SELECT id FROM sessions WHERE id = $12 AND owner = $13) \
    AND (status = 'streaming' OR completed_at = $14)";

/// The depth of one message of a session (`$1`, `$2`: session, message):
/// what an append of a turn reads of its one parent outside the appended
/// messages, as a [`PlacedRow`](crate::tree::PlacedRow).
pub(crate) const DEPTH_OF_ONE: &str = "\
    SELECT id, depth FROM messages WHERE session_id = $1 AND id = $2";

/// A statement with its values bound, ready to run on either backend.
pub(crate) trait BoundWrite:
    QueryFragment<Sqlite> + QueryFragment<Pg> + QueryId + diesel::RunQueryDsl<SqliteConnection> + Send
{
}

impl<T> BoundWrite for T where
    T: QueryFragment<Sqlite>
        + QueryFragment<Pg>
        + QueryId
        + diesel::RunQueryDsl<SqliteConnection>
        + Send
{
}

/// [`INSERT_MESSAGE`] for `row`.
pub(crate) fn insert_message(row: &MessageRow) -> impl BoundWrite + '_ {
    cached_query(INSERT_MESSAGE)
        .bind::<Text, _>(&row.id)
        .bind::<Text, _>(&row.session_id)
        .bind::<Text, _>(&row.role)
        .bind::<Text, _>(&row.content)
        .bind::<Text, _>(&row.status)
        .bind::<Nullable<Text>, _>(&row.model)
        .bind::<Nullable<Text>, _>(&row.finish_reason)
        .bind::<Nullable<BigInt>, _>(row.prompt_tokens)
        .bind::<Nullable<BigInt>, _>(row.completion_tokens)
        .bind::<Nullable<Text>, _>(&row.error_code)
        .bind::<Nullable<Text>, _>(&row.error_message)
        .bind::<Nullable<Text>, _>(&row.tool_calls)
        .bind::<BigInt, _>(row.created_at)
        .bind::<Nullable<BigInt>, _>(row.completed_at)
        .bind::<Nullable<Text>, _>(&row.assistant_id)
        .bind::<Nullable<Text>, _>(&row.assistant_name)
        .bind::<Nullable<Text>, _>(&row.parent_id)
        .bind::<BigInt, _>(row.depth)
}

/// Who and what [`UPDATE_MESSAGE`] writes: message `id` of `owner`'s
/// `session` takes `changes`, if it is still streaming or ended at
/// `completed_at`.
pub(crate) struct StateWrite<'a> {
    pub owner: &'a str,
    pub session: &'a str,
    pub id: &'a str,
    pub changes: &'a MessageChanges,
    pub completed_at: Option<i64>,
}

/// [`UPDATE_MESSAGE`] for `write`; it changes one row or none.
pub(crate) fn update_message<'a>(write: &StateWrite<'a>) -> impl BoundWrite + 'a {
    let changes = write.changes;
    cached_query(UPDATE_MESSAGE)
        .bind::<Text, _>(&changes.content)
        .bind::<Text, _>(&changes.status)
        .bind::<Nullable<Text>, _>(&changes.finish_reason)
        .bind::<Nullable<BigInt>, _>(changes.prompt_tokens)
        .bind::<Nullable<BigInt>, _>(changes.completion_tokens)
        .bind::<Nullable<Text>, _>(&changes.error_code)
        .bind::<Nullable<Text>, _>(&changes.error_message)
        .bind::<Nullable<Text>, _>(&changes.tool_calls)
        .bind::<Nullable<BigInt>, _>(changes.completed_at)
        .bind::<Text, _>(write.id)
        .bind::<Text, _>(write.session)
        .bind::<Text, _>(write.session)
        .bind::<Text, _>(write.owner)
        .bind::<Nullable<BigInt>, _>(write.completed_at)
}
