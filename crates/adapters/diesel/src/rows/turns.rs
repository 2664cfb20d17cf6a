//! A turn whose replica died, as `interrupt_turn` stores it and reads it
//! back, the same on both backends.

use std::collections::HashSet;

use colloquy_domain::{ErrorCode, MessageStatus, Timestamp};
use colloquy_ports::StoredEnd;
use diesel::prelude::*;

use super::{MessageRow, INTERRUPTED_MESSAGE};
use crate::error::StoreError;
use crate::schema::messages;

/// What `interrupt_turn` writes over each of the turn's replies still
/// `streaming`; the text stays as last flushed.
#[derive(Debug, AsChangeset)]
#[diesel(table_name = messages)]
pub(crate) struct InterruptedChanges {
    status: &'static str,
    error_code: &'static str,
    error_message: &'static str,
    completed_at: i64,
}

impl InterruptedChanges {
    pub(crate) fn at(now: Timestamp) -> Self {
        Self {
            status: MessageStatus::Interrupted.as_str(),
            error_code: ErrorCode::Interrupted.as_str(),
            error_message: INTERRUPTED_MESSAGE,
            completed_at: now.as_micros(),
        }
    }
}

/// The turn's replies as stored after the update (`rows`, oldest first),
/// each marked with whether the update changed it (its id is among
/// `changed`). The turn is gone when its first reply is not among them.
pub(crate) fn stored_turn(
    rows: Vec<MessageRow>,
    changed: &[String],
    first: &str,
) -> Result<Vec<StoredEnd>, StoreError> {
    if rows.first().is_none_or(|row| row.id != first) {
        return Err(StoreError::NotFound);
    }
    let changed: HashSet<&str> = changed.iter().map(String::as_str).collect();
    rows.into_iter()
        .map(|row| {
            let changed = changed.contains(row.id.as_str());
            Ok(StoredEnd {
                message: row.into_domain()?,
                changed,
            })
        })
        .collect()
}
