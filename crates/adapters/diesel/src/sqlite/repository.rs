//! [`SqliteRepository`]: the [`ChatRepository`] port on SQLite.

use std::fmt;

use async_trait::async_trait;
use colloquy_domain::{
    ConversationChain, ErrorCode, Message, MessageId, MessageStatus, Principal, Role, Session,
    SessionId, Timestamp, Title,
};
use colloquy_ports::{
    BranchMessage, ChatRepository, Page, RepoError, SearchHit, SessionChanges, StoredEnd,
};
use diesel::dsl::{exists, sql};
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Text};

use super::chains;
use super::location::Location;
use super::migrations;
use super::pool::{self, ConnectionSettings, SqlitePool};
use super::queries;
use super::search as full_text;
use super::tree as branches;
use super::writer::Writer;
use crate::error::{Backend, StoreError};
use crate::paging::{into_page, with_lookahead};
use crate::rows::{
    stored_turn, InterruptedChanges, MessageChanges, MessageRow, SessionChangeset, SessionRow,
    StreamingReplyRow, INTERRUPTED_MESSAGE,
};
use crate::schema::{messages, sessions};
use crate::statement::cached_query;
use crate::turn_writes::StateWrite;
use crate::{search, tree};

/// Sessions and messages in one SQLite database, reached through a pool of
/// connections.
///
/// Every query about a session or its messages is scoped by its owner in the
/// SQL itself (the crate's invariants say how).
///
/// Cheap to clone: clones share the pool. Every method runs its queries on
/// Tokio's blocking thread pool, so it must be awaited inside a Tokio runtime.
#[derive(Clone)]
pub struct SqliteRepository {
    /// Every read, and every write of an in-memory database.
    pool: SqlitePool,
    /// Every write of a database file (see [`Writer`]).
    writer: Option<Writer>,
    location: Location,
}

impl fmt::Debug for SqliteRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteRepository")
            .field("location", &self.location)
            .field("pool", &self.pool.state())
            .finish()
    }
}

impl SqliteRepository {
    /// Opens the database at `location` with a pool of `pool_size`
    /// connections, creating the file (and its directory) if missing and
    /// applying pending migrations.
    ///
    /// `location` is a path, `sqlite://PATH` (`sqlite:///abs/path.db` for an
    /// absolute one), `sqlite:PATH`, or `:memory:` for a private in-memory
    /// database. An in-memory database lives inside a single connection, so
    /// it gets a pool of one whatever `pool_size` says; it suits tests.
    ///
    /// This blocks while it opens connections and migrates: call it at
    /// start-up, before serving.
    ///
    /// # Errors
    /// When `location` cannot be parsed, `pool_size` is zero, the file cannot
    /// be created or opened, or a migration fails.
    pub fn connect(location: &str, pool_size: u32) -> anyhow::Result<Self> {
        let location = Location::parse(location)?;
        let (pool, applied) = match &location {
            Location::File(_) => {
                // Migrating on a connection of its own first makes a bad path
                // fail at once with SQLite's message; the pool would retry
                // until its checkout timeout.
                let applied = migrations::migrate_location(&location)?;
                (pool::build(&location, pool_size)?, applied)
            }
            Location::Memory => {
                let pool = pool::build(&location, pool_size)?;
                let applied = migrations::run_pending(&mut *pool.get()?)?;
                (pool, applied)
            }
        };
        if !applied.is_empty() {
            tracing::info!(database = %location, migrations = ?applied, "applied SQLite migrations");
        }
        let filled = pool
            .get()?
            .immediate_transaction(chains::fill_every_session)
            .map_err(|error| {
                anyhow::Error::new(error.into_repo_error(Backend::Sqlite, "fill_chains"))
            })?;
        if filled > 0 {
            tracing::info!(database = %location, sessions = filled, "stored the conversation chains of messages stored before");
        }
        let writer = match &location {
            Location::File(_) => Some(Writer::start(&location)?),
            // The database lives inside the pool's one connection.
            Location::Memory => None,
        };
        Ok(Self {
            pool,
            writer,
            location,
        })
    }

    /// Applies the migrations this build knows and the database lacks, and
    /// returns their names, oldest first. [`SqliteRepository::connect`]
    /// already did this, so it finds nothing to do unless another process
    /// rolled the schema back since.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when no connection is free in time,
    /// [`RepoError::Unknown`] when a migration fails.
    pub async fn run_migrations(&self) -> Result<Vec<String>, RepoError> {
        self.run("run_migrations", |connection| {
            migrations::run_pending(connection).map_err(|error| StoreError::Other(error.into()))
        })
        .await
    }

    /// The pragmas a pooled connection runs with, as SQLite reports them:
    /// for start-up logs and for checking a deployment.
    ///
    /// # Errors
    /// As [`ChatRepository::ping`].
    pub async fn connection_settings(&self) -> Result<ConnectionSettings, RepoError> {
        self.run("connection_settings", |connection| {
            Ok(pool::read_settings(connection)?)
        })
        .await
    }

    /// Runs `work` in a write transaction (`BEGIN IMMEDIATE`): on the
    /// writer's thread, where it may share its commit with the writes of
    /// other calls, or, for an in-memory database, with the pool's
    /// connection. `work` runs whole or not at all; when this returns `Ok`,
    /// it is durable.
    pub(crate) async fn write<T, F>(&self, operation: &'static str, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send + 'static,
    {
        match &self.writer {
            Some(writer) => writer
                .write(work)
                .await
                .map_err(|error| error.into_repo_error(Backend::Sqlite, operation)),
            None => {
                self.run(operation, move |connection| {
                    connection.immediate_transaction(work)
                })
                .await
            }
        }
    }

    /// Runs `work` with a pooled connection on the blocking thread pool.
    ///
    /// If the caller stops awaiting, `work` still runs to its end: a write
    /// either commits whole or not at all, never half.
    pub(crate) async fn run<T, F>(&self, operation: &'static str, work: F) -> Result<T, RepoError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.pool.clone();
        let outcome = tokio::task::spawn_blocking(move || {
            let mut connection = pool.get().map_err(|error| {
                StoreError::Unavailable(anyhow::Error::new(error).context("no free connection"))
            })?;
            work(&mut connection)
        })
        .await;
        match outcome {
            Ok(result) => result.map_err(|error| error.into_repo_error(Backend::Sqlite, operation)),
            Err(join_error) => Err(RepoError::Unknown(
                anyhow::Error::new(join_error)
                    .context(format!("SQLite repository: {operation} did not finish")),
            )),
        }
    }
}

/// Whether `owner` has a session with this id, inside the caller's transaction.
pub(super) fn session_exists(
    connection: &mut SqliteConnection,
    owner: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let owned = sessions::table.find(id).filter(sessions::owner.eq(owner));
    Ok(diesel::select(exists(owned)).get_result(connection)?)
}

#[async_trait]
impl ChatRepository for SqliteRepository {
    async fn create_session(&self, session: &Session) -> Result<(), RepoError> {
        let row = SessionRow::new_session(session);
        self.write("create_session", move |connection| {
            diesel::insert_into(sessions::table)
                .values(&row)
                .execute(connection)?;
            Ok(())
        })
        .await
    }

    async fn get_session(&self, owner: &Principal, id: SessionId) -> Result<Session, RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        self.run("get_session", move |connection| {
            sessions::table
                .find(id)
                .filter(sessions::owner.eq(owner))
                .select(SessionRow::as_select())
                .first(connection)?
                .into_domain()
        })
        .await
    }

    async fn list_sessions(
        &self,
        owner: &Principal,
        limit: usize,
        after: Option<SessionId>,
    ) -> Result<Page<Session>, RepoError> {
        let query = queries::session_page(
            owner.as_str().to_owned(),
            after.map(|id| id.to_string()),
            with_lookahead(limit),
        );
        self.run("list_sessions", move |connection| {
            into_page(query.load(connection)?, limit, SessionRow::into_domain)
        })
        .await
    }

    async fn update_session(
        &self,
        owner: &Principal,
        id: SessionId,
        changes: &SessionChanges,
        at: Timestamp,
    ) -> Result<Session, RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        let changes = SessionChangeset::of(changes, at);
        self.write("update_session", move |connection| {
            // An unknown id, or another owner's, returns no row:
            // Diesel's NotFound, which StoreError passes on as the port's.
            let owned = sessions::table.find(id).filter(sessions::owner.eq(owner));
            diesel::update(owned)
                .set(&changes)
                .returning(SessionRow::as_returning())
                .get_result(connection)?
                .into_domain()
        })
        .await
    }

    async fn set_title_if_untitled(
        &self,
        owner: &Principal,
        id: SessionId,
        title: &Title,
        at: Timestamp,
    ) -> Result<Option<Session>, RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        let changes = SessionChangeset::of(
            &SessionChanges {
                title: Some(Some(title.clone())),
                ..SessionChanges::default()
            },
            at,
        );
        self.write("set_title_if_untitled", move |connection| {
            let untitled = sessions::table
                .find(&id)
                .filter(sessions::owner.eq(&owner))
                .filter(sessions::title.is_null());
            let updated = diesel::update(untitled)
                .set(&changes)
                .returning(SessionRow::as_returning())
                .get_result(connection)
                .optional()?;
            match updated {
                Some(row) => row.into_domain().map(Some),
                // Nothing matched: either a title is there already, or
                // the owner has no such session. The write lock is still
                // held, so the answer is about the same state the UPDATE saw.
                None if session_exists(connection, &owner, &id)? => Ok(None),
                None => Err(StoreError::NotFound),
            }
        })
        .await
    }

    async fn delete_session(&self, owner: &Principal, id: SessionId) -> Result<(), RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        self.write("delete_session", move |connection| {
            // The messages go with it: ON DELETE CASCADE, which works
            // because every connection turns `foreign_keys` on.
            let owned = sessions::table.find(id).filter(sessions::owner.eq(owner));
            let deleted = diesel::delete(owned).execute(connection)?;
            if deleted == 0 {
                return Err(StoreError::NotFound);
            }
            Ok(())
        })
        .await
    }

    async fn append_messages(
        &self,
        owner: &Principal,
        messages: &[Message],
    ) -> Result<(), RepoError> {
        let operation = "append_messages";
        let session = match tree::session_of(messages) {
            Ok(Some(session)) => session.to_string(),
            Ok(None) => return Ok(()),
            Err(error) => return Err(error.into_repo_error(Backend::Sqlite, operation)),
        };
        let owner = owner.as_str().to_owned();
        let messages = messages.to_vec();
        let now = Timestamp::now();
        self.write(operation, move |connection| {
            branches::append(connection, &owner, &session, &messages, now)
        })
        .await
    }

    async fn update_message(&self, owner: &Principal, message: &Message) -> Result<(), RepoError> {
        let owner = owner.as_str().to_owned();
        let id = message.id.to_string();
        let session = message.session_id.to_string();
        let completed_at = message.completed_at.map(Timestamp::as_micros);
        let is_final = message.status.is_final();
        let changes = MessageChanges::of(message)
            .map_err(|error| error.into_repo_error(Backend::Sqlite, "update_message"))?;
        self.write("update_message", move |connection| {
            // The owner is checked in the UPDATE itself: a message of
            // another principal's session matches no row. A final state,
            // once stored, stays (see the port) — but this very write,
            // made again after a lost answer, still matches: its end time
            // is its own.
            let write = StateWrite {
                owner: &owner,
                session: &session,
                id: &id,
                changes: &changes,
                completed_at,
            };
            let updated = branches::set_state(connection, &write)?;
            if updated == 0 {
                return Err(StoreError::NotFound);
            }
            if is_final {
                chains::fill(connection, &session)?;
            }
            Ok(())
        })
        .await
    }

    async fn list_messages(
        &self,
        owner: &Principal,
        session: SessionId,
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<Message>, RepoError> {
        let owner = owner.as_str().to_owned();
        let session = session.to_string();
        let query = queries::message_page(
            session.clone(),
            after.map(|id| id.to_string()),
            with_lookahead(limit),
        );
        self.run("list_messages", move |connection| {
            // One read transaction: the owner's existence check and the
            // page see the same snapshot, so a concurrent delete cannot make
            // an empty page of a session that was there a moment ago, and
            // the page is of a session the owner has.
            connection.transaction(|connection| {
                if !session_exists(connection, &owner, &session)? {
                    return Err(StoreError::NotFound);
                }
                into_page(query.load(connection)?, limit, MessageRow::into_domain)
            })
        })
        .await
    }

    async fn list_branch(
        &self,
        owner: &Principal,
        session: SessionId,
        leaf: Option<MessageId>,
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<BranchMessage>, RepoError> {
        let owner = owner.as_str().to_owned();
        let session = session.to_string();
        let leaf = leaf.map(|id| id.to_string());
        let after = after.map(|id| id.to_string());
        self.run("list_branch", move |connection| {
            branches::list_branch(connection, &owner, &session, leaf, limit, after)
        })
        .await
    }

    async fn recent_messages(
        &self,
        owner: &Principal,
        session: SessionId,
        leaf: Option<MessageId>,
        limit: usize,
    ) -> Result<Vec<Message>, RepoError> {
        let owner = owner.as_str().to_owned();
        let session = session.to_string();
        let leaf = leaf.map(|id| id.to_string());
        self.run("recent_messages", move |connection| {
            branches::recent(connection, &owner, &session, leaf, limit)
        })
        .await
    }

    async fn get_message(
        &self,
        owner: &Principal,
        session: SessionId,
        id: MessageId,
    ) -> Result<Message, RepoError> {
        let (owner, session, id) = (
            owner.as_str().to_owned(),
            session.to_string(),
            id.to_string(),
        );
        self.run("get_message", move |connection| {
            branches::get_message(connection, &owner, &session, &id)
        })
        .await
    }

    async fn switch_branch(
        &self,
        owner: &Principal,
        session: SessionId,
        to: MessageId,
        at: Timestamp,
    ) -> Result<Session, RepoError> {
        let (owner, session, to) = (
            owner.as_str().to_owned(),
            session.to_string(),
            to.to_string(),
        );
        self.write("switch_branch", move |connection| {
            branches::switch_branch(connection, &owner, &session, &to, at)
        })
        .await
    }

    async fn search_messages(
        &self,
        owner: &Principal,
        terms: &[String],
        limit: usize,
        after: Option<MessageId>,
    ) -> Result<Page<SearchHit>, RepoError> {
        let Some(terms) = search::wanted(terms) else {
            return Ok(Page {
                items: Vec::new(),
                has_more: false,
            });
        };
        let terms: Vec<String> = terms.into_iter().map(str::to_owned).collect();
        let owner = owner.as_str().to_owned();
        let after = after.map(|id| id.to_string());
        self.run("search_messages", move |connection| {
            let terms: Vec<&str> = terms.iter().map(String::as_str).collect();
            full_text::search(connection, &owner, &terms, limit, after.as_deref())
        })
        .await
    }

    async fn find_by_chain(
        &self,
        owner: &Principal,
        chain: ConversationChain,
        system_prompt: Option<String>,
    ) -> Result<Option<Message>, RepoError> {
        let owner = owner.as_str().to_owned();
        self.run("find_by_chain", move |connection| {
            chains::find(connection, &owner, chain.stored(), system_prompt.as_deref())
        })
        .await
    }

    async fn record_tool_results(
        &self,
        owner: &Principal,
        session: SessionId,
        message: MessageId,
        results: &[(String, String)],
    ) -> Result<Message, RepoError> {
        let (owner, session, message) = (
            owner.as_str().to_owned(),
            session.to_string(),
            message.to_string(),
        );
        let results = results.to_vec();
        self.write("record_tool_results", move |connection| {
            chains::record_tool_results(connection, &owner, &session, &message, &results)
        })
        .await
    }

    async fn import_session(
        &self,
        session: &Session,
        messages: &[Message],
    ) -> Result<(), RepoError> {
        let (session, messages) = (session.clone(), messages.to_vec());
        self.write("import_session", move |connection| {
            branches::import(connection, &session, &messages)
        })
        .await
    }

    async fn interrupt_streaming(&self) -> Result<u64, RepoError> {
        let now = Timestamp::now().as_micros();
        let interrupted = self
            .write("interrupt_streaming", move |connection| {
                let interrupted = cached_query(queries::INTERRUPT_STREAMING)
                    .bind::<Text, _>(ErrorCode::Interrupted.as_str())
                    .bind::<Text, _>(INTERRUPTED_MESSAGE)
                    .bind::<BigInt, _>(now)
                    .execute(connection)?;
                chains::fill_every_session(connection)?;
                Ok(interrupted)
            })
            .await?;
        Ok(u64::try_from(interrupted).unwrap_or(u64::MAX))
    }

    async fn interrupt_turn(
        &self,
        session: SessionId,
        first: MessageId,
    ) -> Result<Vec<StoredEnd>, RepoError> {
        let changes = InterruptedChanges::at(Timestamp::now());
        let (session, first) = (session.to_string(), first.to_string());
        self.write("interrupt_turn", move |connection| {
            // Only the replies still streaming: one whose final state
            // was stored first (by its own replica) keeps it.
            let streaming = messages::table
                .filter(messages::session_id.eq(&session))
                .filter(messages::id.ge(&first))
                .filter(messages::role.eq(Role::Assistant.as_str()))
                .filter(messages::status.eq(MessageStatus::Streaming.as_str()));
            let changed: Vec<String> = diesel::update(streaming)
                .set(&changes)
                .returning(messages::id)
                .get_results(connection)?;
            let turn = queries::turn_replies(session.clone(), first.clone()).load(connection)?;
            chains::fill(connection, &session)?;
            // An error rolls the update back: a turn that is gone
            // changes nothing.
            stored_turn(turn, &changed, &first)
        })
        .await
    }

    async fn streaming_replies(
        &self,
        before: Timestamp,
        most: usize,
    ) -> Result<Vec<(SessionId, MessageId)>, RepoError> {
        let before = before.as_micros();
        let most = i64::try_from(most).unwrap_or(i64::MAX);
        self.run("streaming_replies", move |connection| {
            let rows: Vec<StreamingReplyRow> = cached_query(queries::STREAMING_REPLIES)
                .bind::<BigInt, _>(before)
                .bind::<BigInt, _>(most)
                .load(connection)?;
            rows.into_iter()
                .map(StreamingReplyRow::into_domain)
                .collect()
        })
        .await
    }

    async fn ping(&self) -> Result<(), RepoError> {
        let answer = self
            .run("ping", |connection| {
                Ok(diesel::select(sql::<BigInt>("1")).get_result::<i64>(connection)?)
            })
            .await;
        match answer {
            Ok(_) => Ok(()),
            Err(RepoError::Unknown(error)) => Err(RepoError::Unavailable(error)),
            Err(other) => Err(other),
        }
    }
}
