//! Full-text search, what both backends share: the terms a query keeps, how
//! a snippet is marked and how long it is, and the row a hit is read from.
//! Each backend has its own index and query (`sqlite/search.rs`: FTS5;
//! `postgres/search.rs`: a `tsvector` column with a GIN index), tokenizing
//! the same way: words as written, case and accents folded, no stemming.

use colloquy_domain::{MessageId, Role, SessionId, Timestamp, Title};
use colloquy_ports::SearchHit;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::QueryableByName;

use crate::error::StoreError;

/// What a snippet puts before each hit.
pub(crate) const HIT_OPENS: &str = "«";
/// What a snippet puts after each hit.
pub(crate) const HIT_CLOSES: &str = "»";
/// How many words a snippet holds at most: enough to read a hit in its
/// sentence, short enough for a list of results.
pub(crate) const SNIPPET_WORDS: i64 = 30;

/// The terms worth asking for: the app has split the query into words, so
/// only surrounding whitespace and empty terms go. `None` when none is left:
/// a query without a word finds nothing (rather than everything).
pub(crate) fn wanted(terms: &[String]) -> Option<Vec<&str>> {
    let kept: Vec<&str> = terms
        .iter()
        .map(|term| term.trim())
        .filter(|term| !term.is_empty())
        .collect();
    (!kept.is_empty()).then_some(kept)
}

/// One hit as both backends' queries select it.
#[derive(Debug, QueryableByName)]
pub(crate) struct SearchHitRow {
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    session_title: Option<String>,
    #[diesel(sql_type = Text)]
    message_id: String,
    #[diesel(sql_type = Text)]
    role: String,
    #[diesel(sql_type = BigInt)]
    created_at: i64,
    #[diesel(sql_type = Text)]
    snippet: String,
}

impl SearchHitRow {
    pub(crate) fn into_domain(self) -> Result<SearchHit, StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("search hit {}: {what}", self.message_id));
        Ok(SearchHit {
            session_id: SessionId::parse(&self.session_id)
                .map_err(|error| corrupt(error.to_string()))?,
            session_title: self
                .session_title
                .as_deref()
                .map(Title::parse)
                .transpose()
                .map_err(|error| corrupt(error.to_string()))?,
            message_id: MessageId::parse(&self.message_id)
                .map_err(|error| corrupt(error.to_string()))?,
            role: Role::parse(&self.role)
                .ok_or_else(|| corrupt(format!("unknown role `{}`", self.role)))?,
            created_at: Timestamp::from_micros(self.created_at),
            snippet: self.snippet,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_terms_with_something_in_them_are_asked_for() {
        let terms = |words: &[&str]| words.iter().map(|w| (*w).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            wanted(&terms(&[" café", "", "\t", "Ölçü "])),
            Some(vec!["café", "Ölçü"])
        );
        assert_eq!(wanted(&terms(&["", "  "])), None);
        assert_eq!(wanted(&[]), None);
    }
}
