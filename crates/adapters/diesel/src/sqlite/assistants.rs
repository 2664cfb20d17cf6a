//! The [`AssistantStore`] port on SQLite: the `assistants` table.

use async_trait::async_trait;
use colloquy_domain::{Assistant, AssistantId, Principal, Timestamp};
use colloquy_ports::{AssistantChanges, AssistantStore, Page, RepoError};
use diesel::prelude::*;

use super::queries;
use super::repository::SqliteRepository;
use crate::error::{Backend, StoreError};
use crate::paging::{into_page, with_lookahead};
use crate::rows::{AssistantChangeset, AssistantRow};
use crate::schema::{assistants, sessions};

#[async_trait]
impl AssistantStore for SqliteRepository {
    async fn create_assistant(&self, assistant: &Assistant) -> Result<(), RepoError> {
        let row = AssistantRow::from_domain(assistant)
            .map_err(|error| error.into_repo_error(Backend::Sqlite, "create_assistant"))?;
        self.write("create_assistant", move |connection| {
            diesel::insert_into(assistants::table)
                .values(&row)
                .execute(connection)
                .map_err(StoreError::from_assistant_write)?;
            Ok(())
        })
        .await
    }

    async fn get_assistant(
        &self,
        owner: &Principal,
        id: AssistantId,
    ) -> Result<Assistant, RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        self.run("get_assistant", move |connection| {
            assistants::table
                .find(id)
                .filter(assistants::owner.eq(owner))
                .select(AssistantRow::as_select())
                .first(connection)?
                .into_domain()
        })
        .await
    }

    async fn find_assistants(
        &self,
        owner: &Principal,
        ids: &[AssistantId],
    ) -> Result<Vec<Assistant>, RepoError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let owner = owner.as_str().to_owned();
        let ids: Vec<String> = ids.iter().map(AssistantId::to_string).collect();
        self.run("find_assistants", move |connection| {
            assistants::table
                .filter(assistants::owner.eq(owner))
                .filter(assistants::id.eq_any(ids))
                .select(AssistantRow::as_select())
                .load(connection)?
                .into_iter()
                .map(AssistantRow::into_domain)
                .collect()
        })
        .await
    }

    async fn list_assistants(
        &self,
        owner: &Principal,
        limit: usize,
        after: Option<AssistantId>,
    ) -> Result<Page<Assistant>, RepoError> {
        let query = queries::assistant_page(
            owner.as_str().to_owned(),
            after.map(|id| id.to_string()),
            with_lookahead(limit),
        );
        self.run("list_assistants", move |connection| {
            into_page(query.load(connection)?, limit, AssistantRow::into_domain)
        })
        .await
    }

    async fn update_assistant(
        &self,
        owner: &Principal,
        id: AssistantId,
        changes: &AssistantChanges,
        at: Timestamp,
    ) -> Result<Assistant, RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        let changes = AssistantChangeset::of(changes, at)
            .map_err(|error| error.into_repo_error(Backend::Sqlite, "update_assistant"))?;
        self.write("update_assistant", move |connection| {
            // An unknown id, or another owner's, returns no row:
            // Diesel's NotFound, which StoreError passes on as the port's.
            let owned = assistants::table
                .find(id)
                .filter(assistants::owner.eq(owner));
            diesel::update(owned)
                .set(&changes)
                .returning(AssistantRow::as_returning())
                .get_result(connection)
                .map_err(StoreError::from_assistant_write)?
                .into_domain()
        })
        .await
    }

    async fn delete_assistant(&self, owner: &Principal, id: AssistantId) -> Result<(), RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        self.write("delete_assistant", move |connection| {
            let owned = assistants::table
                .find(&id)
                .filter(assistants::owner.eq(&owner));
            if diesel::delete(owned).execute(connection)? == 0 {
                return Err(StoreError::NotFound);
            }
            // Its owner's sessions fall back to the default voice; their
            // `updated_at` stays, as nobody changed their settings.
            let defaulting = sessions::table
                .filter(sessions::owner.eq(&owner))
                .filter(sessions::assistant_id.eq(&id));
            diesel::update(defaulting)
                .set(sessions::assistant_id.eq(None::<String>))
                .execute(connection)?;
            Ok(())
        })
        .await
    }
}
