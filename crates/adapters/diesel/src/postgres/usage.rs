//! The [`UsageLedger`] port on PostgreSQL: the `daily_usage` table, one row
//! per principal and UTC day.

use std::sync::Arc;

use async_trait::async_trait;
use colloquy_domain::{Principal, Usage, UtcDay};
use colloquy_ports::{RepoError, UsageLedger};
use diesel::prelude::*;
use diesel::upsert::excluded;
use diesel_async::RunQueryDsl;
use futures::FutureExt as _;

use super::repository::{work, OnLostConnection, PostgresRepository};
use crate::error::Backend;
use crate::rows::{token_counts, UsageRow};
use crate::schema::daily_usage;

#[async_trait]
impl UsageLedger for PostgresRepository {
    async fn add_usage(
        &self,
        principal: &Principal,
        day: UtcDay,
        usage: Usage,
    ) -> Result<(), RepoError> {
        if usage == Usage::default() {
            // Adding nothing changes nothing; spare the round trip.
            return Ok(());
        }
        let row = Arc::new(
            UsageRow::new(principal, day, usage)
                .map_err(|error| error.into_repo_error(Backend::Postgres, "add_usage"))?,
        );
        let work = work(move |connection| {
            let row = Arc::clone(&row);
            async move {
                // One statement reads and writes the row, so two additions
                // at once, from any replicas, cannot both start from the same
                // old sum: the second waits for the first's row lock and
                // adds to what it left.
                diesel::insert_into(daily_usage::table)
                    .values(&*row)
                    .on_conflict((daily_usage::principal, daily_usage::day))
                    .do_update()
                    .set((
                        daily_usage::prompt_tokens
                            .eq(daily_usage::prompt_tokens + excluded(daily_usage::prompt_tokens)),
                        daily_usage::completion_tokens.eq(daily_usage::completion_tokens
                            + excluded(daily_usage::completion_tokens)),
                    ))
                    .execute(connection)
                    .await?;
                Ok(())
            }
            .boxed()
        });
        // Adding again after an addition that took effect would count twice.
        self.run("add_usage", OnLostConnection::Fail, work).await
    }

    async fn usage_on(&self, principal: &Principal, day: UtcDay) -> Result<Usage, RepoError> {
        let principal = principal.as_str().to_owned();
        let day = day.days_since_epoch();
        let work = work(move |connection| {
            let principal = principal.clone();
            async move {
                let spent: Option<(i64, i64)> = daily_usage::table
                    .find((&principal, day))
                    .select((daily_usage::prompt_tokens, daily_usage::completion_tokens))
                    .first(connection)
                    .await
                    .optional()?;
                token_counts(&principal, day, spent)
            }
            .boxed()
        });
        self.run("usage_on", OnLostConnection::Retry, work).await
    }
}
