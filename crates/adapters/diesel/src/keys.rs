//! The [`ApiKeyStore`] port on SQLite: the `api_keys` table.

use async_trait::async_trait;
use colloquy_domain::{ApiKeyId, Principal, Timestamp};
use colloquy_ports::{ApiKeyRecord, ApiKeyStore, RepoError};
use diesel::prelude::*;

use crate::error::StoreError;
use crate::repository::SqliteRepository;
use crate::schema::api_keys;

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(table_name = api_keys, check_for_backend(diesel::sqlite::Sqlite))]
struct ApiKeyRow {
    id: String,
    principal: String,
    label: Option<String>,
    key_hash: Vec<u8>,
    created_at: i64,
    last_used_at: Option<i64>,
    revoked_at: Option<i64>,
}

impl ApiKeyRow {
    fn from_domain(key: &ApiKeyRecord) -> Self {
        Self {
            id: key.id.to_string(),
            principal: key.principal.as_str().to_owned(),
            label: key.label.clone(),
            key_hash: key.hash.to_vec(),
            created_at: key.created_at.as_micros(),
            last_used_at: key.last_used_at.map(Timestamp::as_micros),
            revoked_at: key.revoked_at.map(Timestamp::as_micros),
        }
    }

    fn into_domain(self) -> Result<ApiKeyRecord, StoreError> {
        let corrupt =
            |what: String| StoreError::Corrupt(format!("api_keys row {}: {what}", self.id));
        let id = ApiKeyId::parse(&self.id).map_err(|error| corrupt(error.to_string()))?;
        let principal =
            Principal::parse(&self.principal).map_err(|error| corrupt(error.to_string()))?;
        let hash = <[u8; 32]>::try_from(self.key_hash.as_slice())
            .map_err(|_| corrupt(format!("a key hash of {} bytes", self.key_hash.len())))?;
        Ok(ApiKeyRecord {
            id,
            principal,
            label: self.label,
            hash,
            created_at: Timestamp::from_micros(self.created_at),
            last_used_at: self.last_used_at.map(Timestamp::from_micros),
            revoked_at: self.revoked_at.map(Timestamp::from_micros),
        })
    }
}

#[async_trait]
impl ApiKeyStore for SqliteRepository {
    async fn create_api_key(&self, key: &ApiKeyRecord) -> Result<(), RepoError> {
        let row = ApiKeyRow::from_domain(key);
        self.run("create_api_key", move |connection| {
            connection.immediate_transaction(|connection| {
                diesel::insert_into(api_keys::table)
                    .values(&row)
                    .execute(connection)?;
                Ok(())
            })
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
        self.run("revoke_api_key", move |connection| {
            connection.immediate_transaction(|connection| {
                // The first revocation's time stays: revoking again changes nothing.
                let live = api_keys::table
                    .find(id)
                    .filter(api_keys::revoked_at.is_null());
                let revoked = diesel::update(live)
                    .set(api_keys::revoked_at.eq(at.as_micros()))
                    .execute(connection)?;
                Ok(revoked == 1)
            })
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
        self.run("record_key_use", move |connection| {
            connection.immediate_transaction(|connection| {
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
        })
        .await
    }
}
