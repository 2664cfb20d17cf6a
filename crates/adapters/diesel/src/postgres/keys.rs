//! The [`ApiKeyStore`] port on PostgreSQL: the `api_keys` table.

use std::sync::Arc;

use async_trait::async_trait;
use colloquy_domain::{ApiKeyId, Timestamp};
use colloquy_ports::{ApiKeyRecord, ApiKeyStore, RepoError};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, RunQueryDsl};
use futures::FutureExt as _;

use super::repository::{work, OnLostConnection, PostgresRepository};
use crate::error::StoreError;
use crate::rows::ApiKeyRow;
use crate::schema::api_keys;

#[async_trait]
impl ApiKeyStore for PostgresRepository {
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), RepoError> {
        let row = Arc::new(ApiKeyRow::from_domain(key));
        let work = work(move |connection| {
            let row = Arc::clone(&row);
            async move {
                diesel::insert_into(api_keys::table)
                    .values(&*row)
                    .execute(connection)
                    .await?;
                Ok(())
            }
            .boxed()
        });
        self.run("create_api_key", OnLostConnection::Fail, work)
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, RepoError> {
        let work = work(|connection| {
            async move {
                api_keys::table
                    // UUID v7 text in the "C" collation: id order is creation order.
                    .order(api_keys::id.asc())
                    .select(ApiKeyRow::as_select())
                    .load(connection)
                    .await?
                    .into_iter()
                    .map(ApiKeyRow::into_domain)
                    .collect()
            }
            .boxed()
        });
        self.run("list_api_keys", OnLostConnection::Retry, work)
            .await
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<bool, RepoError> {
        let id = id.to_string();
        let work = work(move |connection| {
            let id = id.clone();
            async move {
                // The first revocation's time stays: revoking again changes nothing.
                let live = api_keys::table
                    .find(id)
                    .filter(api_keys::revoked_at.is_null());
                let revoked = diesel::update(live)
                    .set(api_keys::revoked_at.eq(at.as_micros()))
                    .execute(connection)
                    .await?;
                Ok(revoked == 1)
            }
            .boxed()
        });
        // A second attempt after a first that took effect would answer
        // `false`, as if the key had been revoked before.
        self.run("revoke_api_key", OnLostConnection::Fail, work)
            .await
    }

    async fn find_api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, RepoError> {
        let hash = hash.to_vec();
        let work = work(move |connection| {
            let hash = hash.clone();
            async move {
                api_keys::table
                    .filter(api_keys::key_hash.eq(hash))
                    .select(ApiKeyRow::as_select())
                    .first(connection)
                    .await
                    .optional()?
                    .map(ApiKeyRow::into_domain)
                    .transpose()
            }
            .boxed()
        });
        self.run("find_api_key", OnLostConnection::Retry, work)
            .await
    }

    async fn record_key_use(&self, uses: &[(ApiKeyId, Timestamp)]) -> Result<(), RepoError> {
        if uses.is_empty() {
            return Ok(());
        }
        let uses: Arc<Vec<(String, i64)>> = Arc::new(
            uses.iter()
                .map(|(id, at)| (id.to_string(), at.as_micros()))
                .collect(),
        );
        let work = work(move |connection| {
            let uses = Arc::clone(&uses);
            async move {
                connection
                    .transaction::<_, StoreError, _>(async |connection| {
                        for (id, at) in uses.iter() {
                            // Only ever forwards: a batch that arrives late,
                            // or a clock that stepped back, leaves a later
                            // time in place.
                            let older = api_keys::table.find(id).filter(
                                api_keys::last_used_at
                                    .is_null()
                                    .or(api_keys::last_used_at.lt(*at)),
                            );
                            diesel::update(older)
                                .set(api_keys::last_used_at.eq(*at))
                                .execute(connection)
                                .await?;
                        }
                        Ok(())
                    })
                    .await
            }
            .boxed()
        });
        self.run("record_key_use", OnLostConnection::Retry, work)
            .await
    }
}
