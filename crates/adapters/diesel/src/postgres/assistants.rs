//! The [`AssistantStore`] port on PostgreSQL: the `assistants` table.

use std::sync::Arc;

use async_trait::async_trait;
use colloquy_domain::{Assistant, AssistantId, Principal, Timestamp};
use colloquy_ports::{AssistantChanges, AssistantStore, Page, RepoError};
use diesel::prelude::*;
use diesel_async::{AsyncConnection as _, RunQueryDsl};
use futures::FutureExt as _;

use super::queries;
use super::repository::{work, OnLostConnection, PostgresRepository};
use crate::error::{Backend, StoreError};
use crate::paging::{into_page, with_lookahead};
use crate::rows::{AssistantChangeset, AssistantRow};
use crate::schema::{assistants, sessions};

#[async_trait]
impl AssistantStore for PostgresRepository {
    async fn create_assistant(&self, assistant: &Assistant) -> Result<(), RepoError> {
        let row = Arc::new(
            AssistantRow::from_domain(assistant)
                .map_err(|error| error.into_repo_error(Backend::Postgres, "create_assistant"))?,
        );
        let work = work(move |connection| {
            let row = Arc::clone(&row);
            async move {
                diesel::insert_into(assistants::table)
                    .values(&*row)
                    .execute(connection)
                    .await
                    .map_err(StoreError::from_assistant_write)?;
                Ok(())
            }
            .boxed()
        });
        // A second attempt after a first that took effect would meet its
        // own row and answer with a duplicate key.
        self.run("create_assistant", OnLostConnection::Fail, work)
            .await
    }

    async fn get_assistant(
        &self,
        owner: &Principal,
        id: AssistantId,
    ) -> Result<Assistant, RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        let work = work(move |connection| {
            let (owner, id) = (owner.clone(), id.clone());
            async move {
                assistants::table
                    .find(id)
                    .filter(assistants::owner.eq(owner))
                    .select(AssistantRow::as_select())
                    .first(connection)
                    .await?
                    .into_domain()
            }
            .boxed()
        });
        self.run("get_assistant", OnLostConnection::Retry, work)
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
        let ids: Arc<Vec<String>> = Arc::new(ids.iter().map(AssistantId::to_string).collect());
        let work = work(move |connection| {
            let (owner, ids) = (owner.clone(), Arc::clone(&ids));
            async move {
                // `= ANY($2)`: one parameter however many ids.
                assistants::table
                    .filter(assistants::owner.eq(owner))
                    .filter(assistants::id.eq_any(&*ids))
                    .select(AssistantRow::as_select())
                    .load(connection)
                    .await?
                    .into_iter()
                    .map(AssistantRow::into_domain)
                    .collect()
            }
            .boxed()
        });
        self.run("find_assistants", OnLostConnection::Retry, work)
            .await
    }

    async fn list_assistants(
        &self,
        owner: &Principal,
        limit: usize,
        after: Option<AssistantId>,
    ) -> Result<Page<Assistant>, RepoError> {
        let owner = owner.as_str().to_owned();
        let after = after.map(|id| id.to_string());
        let work = work(move |connection| {
            let query =
                queries::assistant_page(owner.clone(), after.clone(), with_lookahead(limit));
            async move {
                into_page(
                    query.load(connection).await?,
                    limit,
                    AssistantRow::into_domain,
                )
            }
            .boxed()
        });
        self.run("list_assistants", OnLostConnection::Retry, work)
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
        let changes = Arc::new(
            AssistantChangeset::of(changes, at)
                .map_err(|error| error.into_repo_error(Backend::Postgres, "update_assistant"))?,
        );
        let work = work(move |connection| {
            let (owner, id, changes) = (owner.clone(), id.clone(), Arc::clone(&changes));
            async move {
                // An unknown id, or another owner's, returns no row:
                // Diesel's NotFound, which StoreError passes on as the port's.
                let owned = assistants::table
                    .find(id)
                    .filter(assistants::owner.eq(owner));
                diesel::update(owned)
                    .set(&*changes)
                    .returning(AssistantRow::as_returning())
                    .get_result(connection)
                    .await
                    .map_err(StoreError::from_assistant_write)?
                    .into_domain()
            }
            .boxed()
        });
        // It sets values: made again, it leaves the same row and answers
        // the same (a name it took is its own row's, no conflict).
        self.run("update_assistant", OnLostConnection::Retry, work)
            .await
    }

    async fn delete_assistant(&self, owner: &Principal, id: AssistantId) -> Result<(), RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        let work = work(move |connection| {
            let (owner, id) = (owner.clone(), id.clone());
            async move {
                let mut reached_commit = false;
                let outcome = connection
                    .transaction::<_, StoreError, _>(async |connection| {
                        let owned = assistants::table
                            .find(&id)
                            .filter(assistants::owner.eq(&owner));
                        if diesel::delete(owned).execute(connection).await? == 0 {
                            return Err(StoreError::NotFound);
                        }
                        // Its owner's sessions fall back to the default
                        // voice; their `updated_at` stays, as nobody
                        // changed their settings.
                        let defaulting = sessions::table
                            .filter(sessions::owner.eq(&owner))
                            .filter(sessions::assistant_id.eq(&id));
                        diesel::update(defaulting)
                            .set(sessions::assistant_id.eq(None::<String>))
                            .execute(connection)
                            .await?;
                        reached_commit = true;
                        Ok(())
                    })
                    .await;
                match outcome {
                    // No COMMIT was sent, whatever the error says (see
                    // `append_messages`): nothing was deleted.
                    Err(StoreError::Diesel(error)) if !reached_commit => {
                        Err(StoreError::NotCommitted(error))
                    }
                    other => other,
                }
            }
            .boxed()
        });
        // Made again after a first attempt that committed, it would answer
        // NotFound for an assistant this call deleted.
        self.run("delete_assistant", OnLostConnection::Fail, work)
            .await
    }
}
