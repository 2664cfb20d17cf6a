//! Full-text search on PostgreSQL: the generated column
//! `messages.search_vector` and its GIN index `messages_search` (see the
//! `branches` migration), in the text search configuration
//! `colloquy_search` (`simple`, accents folded where `unaccent` exists).
//!
//! The index finds every match; the owner's are sorted newest first (by
//! id) and cut to a page, and only the page's rows get a headline:
//! `ts_headline` is costly, so the planner computes it after the limit.

use colloquy_ports::{Page, SearchHit};
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::StoreError;
use crate::paging::{into_page, with_lookahead};
use crate::search::{SearchHitRow, HIT_CLOSES, HIT_OPENS, SNIPPET_WORDS};

/// `owner`'s (`$3`) messages holding every word of `$1`, older than the
/// message `$4` when it is given, newest first, `$5` at most; each with a
/// headline made with the options `$2`.
///
/// `plainto_tsquery` reads `$1` as plain text: it ANDs its words and
/// treats no character as an operator, so nothing a user typed is query
/// syntax.
pub(crate) const SEARCH: &str = "\
    SELECT messages.session_id, sessions.title AS session_title, \
           messages.id AS message_id, messages.role, messages.created_at, \
           ts_headline('colloquy_search', messages.content, \
                       plainto_tsquery('colloquy_search', $1), $2) AS snippet \
    FROM messages \
    JOIN sessions ON sessions.id = messages.session_id \
    WHERE messages.search_vector @@ plainto_tsquery('colloquy_search', $1) \
      AND sessions.owner = $3 \
      AND ($4::text IS NULL OR messages.id < $4) \
    ORDER BY messages.id DESC \
    LIMIT $5";

/// `ts_headline`'s options: the hit markers, and a headline of at most
/// [`SNIPPET_WORDS`] words around the hits. `ShortWord=0` keeps a short
/// word at either end of it, as FTS5's `snippet()` does.
fn headline_options() -> String {
    format!(
        "StartSel=\"{HIT_OPENS}\", StopSel=\"{HIT_CLOSES}\", MaxWords={SNIPPET_WORDS}, \
         MinWords={}, ShortWord=0",
        SNIPPET_WORDS / 2
    )
}

/// See [`ChatRepository::search_messages`](colloquy_ports::ChatRepository::search_messages).
pub(super) async fn search(
    connection: &mut AsyncPgConnection,
    owner: &str,
    terms: &[String],
    limit: usize,
    after: Option<&str>,
) -> Result<Page<SearchHit>, StoreError> {
    let rows: Vec<SearchHitRow> = diesel::sql_query(SEARCH)
        .bind::<Text, _>(terms.join(" "))
        .bind::<Text, _>(headline_options())
        .bind::<Text, _>(owner)
        .bind::<Nullable<Text>, _>(after)
        .bind::<BigInt, _>(with_lookahead(limit))
        .load(connection)
        .await?;
    into_page(rows, limit, SearchHitRow::into_domain)
}
