//! The `api_keys` row.

use colloquy_domain::{ApiKeyId, Principal, Timestamp};
use colloquy_ports::ApiKeyRecord;
use diesel::prelude::*;

use super::storable;
use crate::error::StoreError;
use crate::schema::api_keys;

#[derive(Debug, Queryable, Selectable, Insertable)]
#[diesel(
    table_name = api_keys,
    check_for_backend(diesel::sqlite::Sqlite, diesel::pg::Pg)
)]
pub(crate) struct ApiKeyRow {
    pub id: String,
    pub principal: String,
    pub label: Option<String>,
    pub key_hash: Vec<u8>,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

impl ApiKeyRow {
    pub(crate) fn from_domain(key: &ApiKeyRecord) -> Self {
        Self {
            id: key.id.to_string(),
            principal: key.principal.as_str().to_owned(),
            label: key.label.as_deref().map(storable),
            key_hash: key.hash.to_vec(),
            created_at: key.created_at.as_micros(),
            last_used_at: key.last_used_at.map(Timestamp::as_micros),
            revoked_at: key.revoked_at.map(Timestamp::as_micros),
        }
    }

    pub(crate) fn into_domain(self) -> Result<ApiKeyRecord, StoreError> {
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
