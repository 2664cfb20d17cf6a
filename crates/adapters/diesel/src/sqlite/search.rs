//! Full-text search on SQLite: the FTS5 table `messages_search` (see the
//! `branches` migration), which triggers keep in step with `messages`.
//!
//! Results come newest first in the order rows were stored (their rowid),
//! which is the order FTS5 reads its index in: the query stops after one
//! page of the owner's hits instead of sorting every message that matches,
//! and `snippet()` runs for those rows only. Messages are stored as they
//! are made, so that order is their creation order but for moments when
//! two sessions store at once.

use colloquy_ports::{Page, SearchHit};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};

use crate::error::StoreError;
use crate::paging::{into_page, with_lookahead};
use crate::search::{SearchHitRow, HIT_CLOSES, HIT_OPENS, SNIPPET_WORDS};
use crate::statement::cached_query;

/// `owner`'s (`$6`) messages matching `$4` (an FTS5 query), stored before
/// the row `$5`, newest first, `$7` at most. The snippet is of the one
/// indexed column, its hits between `$1` and `$2`, at most `$3` words, with
/// an ellipsis where it cuts the text. (Parameters are numbered in the
/// order they appear, as SQLite numbers them: see `crate::tree`.)
pub(crate) const SEARCH: &str = "\
    SELECT messages.session_id, sessions.title AS session_title, \
           messages.id AS message_id, messages.role, messages.created_at, \
           snippet(messages_search, 0, $1, $2, '…', $3) AS snippet \
    FROM messages_search \
    JOIN messages ON messages.rowid = messages_search.rowid \
    JOIN sessions ON sessions.id = messages.session_id \
    WHERE messages_search MATCH $4 AND messages_search.rowid < $5 AND sessions.owner = $6 \
    ORDER BY messages_search.rowid DESC \
    LIMIT $7";

/// Where a page that follows the message `$1` starts: before that message's
/// row, or, when it is gone (its session was deleted between two pages),
/// after the row of the newest message older than it. NULL when no message
/// is older: nothing follows.
pub(crate) const CURSOR: &str = "\
    SELECT CASE WHEN id = $1 THEN rowid ELSE rowid + 1 END AS bound \
    FROM messages WHERE id <= $1 ORDER BY id DESC LIMIT 1";

#[derive(QueryableByName)]
struct Bound {
    #[diesel(sql_type = Nullable<BigInt>)]
    bound: Option<i64>,
}

/// An FTS5 query that requires every term as written: each is a string
/// (a "phrase", its `"` doubled), so nothing in it is query syntax, and
/// strings side by side must all match. A term without a letter or digit
/// is a phrase of no words, which FTS5 leaves out.
pub(crate) fn match_expression(terms: &[&str]) -> String {
    terms
        .iter()
        .map(|term| format!("\"{}\"", term.replace('"', "\"\"")))
        .collect::<Vec<_>>()
        .join(" ")
}

/// See [`ChatRepository::search_messages`](colloquy_ports::ChatRepository::search_messages).
pub(super) fn search(
    connection: &mut SqliteConnection,
    owner: &str,
    terms: &[&str],
    limit: usize,
    after: Option<&str>,
) -> Result<Page<SearchHit>, StoreError> {
    connection.transaction(|connection| {
        let bound = match after {
            None => i64::MAX,
            Some(after) => {
                let found = cached_query(CURSOR)
                    .bind::<Text, _>(after)
                    .get_result::<Bound>(connection)
                    .optional()?;
                match found.and_then(|found| found.bound) {
                    Some(bound) => bound,
                    None => {
                        return Ok(Page {
                            items: Vec::new(),
                            has_more: false,
                        })
                    }
                }
            }
        };
        let rows: Vec<SearchHitRow> = cached_query(SEARCH)
            .bind::<Text, _>(HIT_OPENS)
            .bind::<Text, _>(HIT_CLOSES)
            .bind::<BigInt, _>(SNIPPET_WORDS)
            .bind::<Text, _>(match_expression(terms))
            .bind::<BigInt, _>(bound)
            .bind::<Text, _>(owner)
            .bind::<BigInt, _>(with_lookahead(limit))
            .load(connection)?;
        into_page(rows, limit, SearchHitRow::into_domain)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_term_is_a_quoted_string() {
        assert_eq!(
            match_expression(&["café", "NOT", "a\"b", "x*", "(c)"]),
            r#""café" "NOT" "a""b" "x*" "(c)""#
        );
    }
}
