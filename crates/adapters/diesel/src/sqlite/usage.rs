//! The [`UsageLedger`] port on SQLite: the `daily_usage` table, one row per
//! principal and UTC day.

use async_trait::async_trait;
use colloquy_domain::{Principal, Usage, UtcDay};
use colloquy_ports::{RepoError, UsageLedger};
use diesel::prelude::*;
use diesel::upsert::excluded;

use super::repository::SqliteRepository;
use crate::error::Backend;
use crate::rows::{token_counts, UsageRow};
use crate::schema::daily_usage;

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
            .map_err(|error| error.into_repo_error(Backend::Sqlite, "add_usage"))?;
        self.write("add_usage", move |connection| {
            // One statement reads and writes the row, so two additions at
            // once cannot both start from the same old sum.
            diesel::insert_into(daily_usage::table)
                .values(&row)
                .on_conflict((daily_usage::principal, daily_usage::day))
                .do_update()
                .set((
                    daily_usage::prompt_tokens
                        .eq(daily_usage::prompt_tokens + excluded(daily_usage::prompt_tokens)),
                    daily_usage::completion_tokens
                        .eq(daily_usage::completion_tokens
                            + excluded(daily_usage::completion_tokens)),
                ))
                .execute(connection)?;
            Ok(())
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
            token_counts(&principal, day, spent)
        })
        .await
    }
}
