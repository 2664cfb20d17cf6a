//! The [`UsageLedger`] port on SQLite: the `daily_usage` table, one row per
//! principal and UTC day.

use async_trait::async_trait;
use colloquy_domain::{Principal, Usage, UtcDay};
use colloquy_ports::{RepoError, UsageLedger};
use diesel::prelude::*;
use diesel::upsert::excluded;

use crate::error::StoreError;
use crate::repository::SqliteRepository;
use crate::schema::daily_usage;

#[derive(Debug, Insertable)]
#[diesel(table_name = daily_usage, check_for_backend(diesel::sqlite::Sqlite))]
struct UsageRow {
    principal: String,
    day: i64,
    prompt_tokens: i64,
    completion_tokens: i64,
}

impl UsageRow {
    fn new(principal: &Principal, day: UtcDay, usage: Usage) -> Result<Self, StoreError> {
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

#[async_trait]
impl UsageLedger for SqliteRepository {
    async fn add_usage(
        &self,
        principal: &Principal,
        day: UtcDay,
        usage: Usage,
    ) -> Result<(), RepoError> {
        if usage == Usage::default() {
            // Adding nothing changes nothing; spare the write lock.
            return Ok(());
        }
        let row = UsageRow::new(principal, day, usage)
            .map_err(|error| error.into_repo_error("add_usage"))?;
        self.run("add_usage", move |connection| {
            // One statement reads and writes the row, so two additions at
            // once cannot both start from the same old sum. The transaction
            // only takes the write lock up front, as every write here does.
            connection.immediate_transaction(|connection| {
                diesel::insert_into(daily_usage::table)
                    .values(&row)
                    .on_conflict((daily_usage::principal, daily_usage::day))
                    .do_update()
                    .set((
                        daily_usage::prompt_tokens
                            .eq(daily_usage::prompt_tokens + excluded(daily_usage::prompt_tokens)),
                        daily_usage::completion_tokens.eq(daily_usage::completion_tokens
                            + excluded(daily_usage::completion_tokens)),
                    ))
                    .execute(connection)?;
                Ok(())
            })
        })
        .await
    }

    async fn usage_on(&self, principal: &Principal, day: UtcDay) -> Result<Usage, RepoError> {
        let principal = principal.as_str().to_owned();
        let day = day.days_since_epoch();
        self.run("usage_on", move |connection| {
            let spent: Option<(i64, i64)> = daily_usage::table
                .find((&principal, day))
                .select((daily_usage::prompt_tokens, daily_usage::completion_tokens))
                .first(connection)
                .optional()?;
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
        })
        .await
    }
}
