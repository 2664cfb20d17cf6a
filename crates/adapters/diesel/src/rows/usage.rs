//! The `daily_usage` row.

use colloquy_domain::{Principal, Usage, UtcDay};
use diesel::prelude::*;

use crate::error::StoreError;
use crate::schema::daily_usage;

#[derive(Debug, Insertable)]
#[diesel(
    table_name = daily_usage,
    check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg)
)]
pub(crate) struct UsageRow {
    pub principal: String,
    pub day: i64,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

impl UsageRow {
    pub(crate) fn new(
        principal: &Principal,
        day: UtcDay,
        usage: Usage,
    ) -> Result<Self, StoreError> {
        let tokens = |count: u64, field: &str| {
            i64::try_from(count).map_err(|_| {
                StoreError::Invalid(format!(
                    "{field} {count} for {principal} does not fit a 64-bit integer"
                ))
            })
        };
        Ok(Self {
            principal: principal.as_str().to_owned(),
            day: day.days_since_epoch(),
            prompt_tokens: tokens(usage.prompt_tokens, "prompt_tokens")?,
            completion_tokens: tokens(usage.completion_tokens, "completion_tokens")?,
        })
    }
}

/// The stored sums of `principal`'s `day` as a [`Usage`]; nothing stored is
/// nothing spent.
pub(crate) fn token_counts(
    principal: &str,
    day: i64,
    spent: Option<(i64, i64)>,
) -> Result<Usage, StoreError> {
    let Some((prompt, completion)) = spent else {
        return Ok(Usage::default());
    };
    let count = |value: i64| {
        u64::try_from(value).map_err(|_| {
            StoreError::Corrupt(format!(
                "daily_usage row ({principal}, {day}): negative token count {value}"
            ))
        })
    };
    Ok(Usage {
        prompt_tokens: count(prompt)?,
        completion_tokens: count(completion)?,
    })
}
