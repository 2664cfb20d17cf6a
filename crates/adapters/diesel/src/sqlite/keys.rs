//! The [`ApiKeyStore`] port on SQLite: the `api_keys` table.

use async_trait::async_trait;
use colloquy_domain::{ApiKeyId, Timestamp};
use colloquy_ports::{ApiKeyRecord, ApiKeyStore, RepoError};
use diesel::prelude::*;

use super::repository::SqliteRepository;
use crate::rows::ApiKeyRow;
use crate::schema::api_keys;

#[async_trait]
impl ApiKeyStore for SqliteRepository {
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), RepoError> {
        let row = ApiKeyRow::from_domain(key);
        self.write("create_api_key", move |connection| {
            diesel::insert_into(api_keys::table)
                .values(&row)
                .execute(connection)?;
            Ok(())
        })
        .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKeyRecord>, RepoError> {
        self.run("list_api_keys", |connection| {
            api_keys::table
                // UUID v7 text: id order is creation order.
                .order(api_keys::id.asc())
                .select(ApiKeyRow::as_select())
                .load(connection)?
                .into_iter()
                .map(ApiKeyRow::into_domain)
                .collect()
        })
        .await
    }

    async fn revoke_api_key(&self, id: ApiKeyId, at: Timestamp) -> Result<bool, RepoError> {
        let id = id.to_string();
        self.write("revoke_api_key", move |connection| {
            // The first revocation's time stays: revoking again changes nothing.
            let live = api_keys::table
                .find(id)
                .filter(api_keys::revoked_at.is_null());
            let revoked = diesel::update(live)
                .set(api_keys::revoked_at.eq(at.as_micros()))
                .execute(connection)?;
            Ok(revoked == 1)
        })
        .await
    }

    async fn find_api_key(&self, hash: &[u8; 32]) -> Result<Option<ApiKeyRecord>, RepoError> {
        let hash = hash.to_vec();
        self.run("find_api_key", move |connection| {
            api_keys::table
                .filter(api_keys::key_hash.eq(hash))
                .select(ApiKeyRow::as_select())
                .first(connection)
                .optional()?
                .map(ApiKeyRow::into_domain)
                .transpose()
        })
        .await
    }

    async fn record_key_use(&self, uses: &[(ApiKeyId, Timestamp)]) -> Result<(), RepoError> {
        if uses.is_empty() {
            return Ok(());
        }
        let uses: Vec<(String, i64)> = uses
            .iter()
            .map(|(id, at)| (id.to_string(), at.as_micros()))
            .collect();
        self.write("record_key_use", move |connection| {
            for (id, at) in uses {
                // Only ever forwards: a batch that arrives late, or a
                // clock that stepped back, leaves a later time in place.
                let older = api_keys::table.find(id).filter(
                    api_keys::last_used_at
                        .is_null()
                        .or(api_keys::last_used_at.lt(at)),
                );
                diesel::update(older)
                    .set(api_keys::last_used_at.eq(at))
                    .execute(connection)?;
            }
            Ok(())
        })
        .await
    }
}
