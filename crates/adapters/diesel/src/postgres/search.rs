//! Full-text search on PostgreSQL: the generated column
//! `messages.search_vector` and its GIN index `messages_search` (see the
//! `branches` migration), in the text search configuration
//! `colloquy_search` (`simple`, accents folded where `unaccent` exists).
//!
//! A GIN index finds every match of a query, in no order, and a page must
//! be the newest of them; the planner's guess of how many messages match
//! decides between reading them all or reading messages newest first until
//! a page is full, and a wrong guess reads the whole table. So a search
//! asks in two passes, each exact on its own:
//!
//! 1. [`Pass::Newest`]: the newest [`NEWEST_CANDIDATES`] messages (older
//!    than the cursor), read backwards along the primary key, filtered by
//!    the query. When that holds a whole page of the owner's hits, it is
//!    the page: no message outside it is newer. A common word ends here,
//!    whatever the size of the table.
//! 2. [`Pass::All`]: otherwise every match, from the GIN index, sorted. The
//!    words are then rare enough (fewer than a page among the newest
//!    thousand messages) that there are few.
//!
//! Either way only the page's rows get a headline: `ts_headline` reads the
//! whole text of a message.

use std::sync::LazyLock;

use colloquy_ports::{Page, SearchHit};
use diesel::sql_types::{BigInt, Text};
use diesel_async::{AsyncPgConnection, RunQueryDsl};

use crate::error::StoreError;
use crate::paging::{into_page, with_lookahead};
use crate::search::{SearchHitRow, HIT_CLOSES, HIT_OPENS, SNIPPET_WORDS};
use crate::statement::cached_query;

/// How many of the newest messages the first pass looks at: few enough to
/// read in a millisecond, enough that a word in one message out of fifty
/// fills a page there.
const NEWEST_CANDIDATES: i64 = 1_000;

/// Where a pass looks for hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Pass {
    /// The newest [`NEWEST_CANDIDATES`] messages.
    Newest,
    /// Every message, through the GIN index.
    All,
}

/// The statement of `pass`: `owner`'s (`$3`) messages holding every word
/// of `$1`, newest first, `$4` at most, each with a headline made with the
/// options `$2`; among the newest `$5` messages for [`Pass::Newest`]; older
/// than the message of the last parameter (`$5` or `$6`) when `after`.
///
/// `plainto_tsquery` reads `$1` as plain text: it ANDs its words and
/// treats no character as an operator, so nothing a user typed is query
/// syntax.
///
/// Each of the four is written once, on first use, and lives as long as
/// the program: a fixed set of texts, which connections keep prepared
/// (see `crate::statement`).
pub(crate) fn statement(pass: Pass, after: bool) -> &'static str {
    static WRITTEN: LazyLock<[String; 4]> = LazyLock::new(|| {
        [
            write(Pass::Newest, false),
            write(Pass::Newest, true),
            write(Pass::All, false),
            write(Pass::All, true),
        ]
    });
    let index = match (pass, after) {
        (Pass::Newest, false) => 0,
        (Pass::Newest, true) => 1,
        (Pass::All, false) => 2,
        (Pass::All, true) => 3,
    };
    &WRITTEN[index]
}

/// The text of [`statement`]`(pass, after)`.
fn write(pass: Pass, after: bool) -> String {
    let query = "plainto_tsquery('colloquy_search', $1)";
    let candidates = match (pass, after) {
        (Pass::Newest, false) => format!(
            "SELECT id, session_id FROM (\
               SELECT id, session_id, search_vector FROM messages ORDER BY id DESC LIMIT $5\
             ) AS newest WHERE search_vector @@ {query}"
        ),
        (Pass::Newest, true) => format!(
            "SELECT id, session_id FROM (\
               SELECT id, session_id, search_vector FROM messages WHERE id < $6 \
               ORDER BY id DESC LIMIT $5\
             ) AS newest WHERE search_vector @@ {query}"
        ),
        (Pass::All, false) => {
            format!("SELECT id, session_id FROM messages WHERE search_vector @@ {query}")
        }
        (Pass::All, true) => format!(
            "SELECT id, session_id FROM messages WHERE search_vector @@ {query} AND id < $5"
        ),
    };
    // The candidates are computed alone (MATERIALIZED), so the planner
    // cannot trade the chosen way of finding them for another.
    format!(
        "WITH candidates AS MATERIALIZED ({candidates}), \
         page AS (\
           SELECT candidates.id FROM candidates \
           JOIN sessions ON sessions.id = candidates.session_id \
           WHERE sessions.owner = $3 ORDER BY candidates.id DESC LIMIT $4\
         ) \
         SELECT messages.session_id, sessions.title AS session_title, \
                messages.id AS message_id, messages.role, messages.created_at, \
                ts_headline('colloquy_search', messages.content, {query}, $2) AS snippet \
         FROM page JOIN messages ON messages.id = page.id \
         JOIN sessions ON sessions.id = messages.session_id \
         ORDER BY messages.id DESC"
    )
}

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

async fn hits(
    connection: &mut AsyncPgConnection,
    pass: Pass,
    words: &str,
    owner: &str,
    fetch: i64,
    after: Option<&str>,
) -> Result<Vec<SearchHitRow>, StoreError> {
    let query = cached_query(statement(pass, after.is_some()))
        .bind::<Text, _>(words)
        .bind::<Text, _>(headline_options())
        .bind::<Text, _>(owner)
        .bind::<BigInt, _>(fetch);
    // Each statement has its own parameters after the first four.
    Ok(match (pass, after) {
        (Pass::Newest, None) => {
            query
                .bind::<BigInt, _>(NEWEST_CANDIDATES)
                .load(connection)
                .await?
        }
        (Pass::Newest, Some(after)) => {
            query
                .bind::<BigInt, _>(NEWEST_CANDIDATES)
                .bind::<Text, _>(after)
                .load(connection)
                .await?
        }
        (Pass::All, None) => query.load(connection).await?,
        (Pass::All, Some(after)) => query.bind::<Text, _>(after).load(connection).await?,
    })
}

/// See [`ChatRepository::search_messages`](colloquy_ports::ChatRepository::search_messages).
pub(super) async fn search(
    connection: &mut AsyncPgConnection,
    owner: &str,
    terms: &[String],
    limit: usize,
    after: Option<&str>,
) -> Result<Page<SearchHit>, StoreError> {
    let words = terms.join(" ");
    let fetch = with_lookahead(limit);
    let newest = hits(connection, Pass::Newest, &words, owner, fetch, after).await?;
    let rows = if i64::try_from(newest.len()).unwrap_or(i64::MAX) >= fetch {
        newest
    } else {
        hits(connection, Pass::All, &words, owner, fetch, after).await?
    };
    into_page(rows, limit, SearchHitRow::into_domain)
}
