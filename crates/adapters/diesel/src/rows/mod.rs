//! Rows as Diesel reads and writes them, and their translation to and from
//! the domain: one set for both backends, since both store the same columns
//! in the same encoding (ids as UUID text, times as microseconds).
//!
//! Reading checks everything the domain would: a row that does not make a
//! valid value is reported as corrupt, never unwrapped.

mod assistants;
mod chat;
mod keys;
mod turns;
mod usage;

pub(crate) use assistants::{AssistantChangeset, AssistantRow};
pub(crate) use chat::{
    with_tool_results, MessageChanges, MessageRow, SessionChangeset, SessionRow, StreamingReplyRow,
};
pub(crate) use keys::ApiKeyRow;
pub(crate) use turns::{stored_turn, InterruptedChanges};
pub(crate) use usage::{token_counts, UsageRow};

/// What `interrupt_streaming` and `interrupt_turn` store as the error of
/// each reply they stop.
pub(crate) const INTERRUPTED_MESSAGE: &str =
    "The server stopped while this reply was being generated; the text received until then is kept.";

/// Rows per INSERT statement when appending: at 16 columns a row, well under
/// the bound parameters a statement may have (32,766 in SQLite, 65,535 in
/// PostgreSQL).
pub(crate) const INSERT_CHUNK: usize = 500;

/// The text as it is stored: every NUL character (U+0000) becomes U+FFFD,
/// the replacement character.
///
/// PostgreSQL's `text` cannot hold U+0000 and refuses the whole statement,
/// yet a user's message or a model's reply may carry one. Both backends
/// store the same replacement, so what is read back never depends on the
/// backend, and a stray NUL costs one character instead of the message.
///
/// Titles, model names and principals cannot hold control characters at
/// all, so only free text goes through here.
pub(crate) fn storable(text: &str) -> String {
    text.replace('\0', "\u{FFFD}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_replaced_and_nothing_else_changes() {
        assert_eq!(storable("plain ✓\n"), "plain ✓\n");
        assert_eq!(storable("a\0b\0"), "a\u{FFFD}b\u{FFFD}");
    }
}
