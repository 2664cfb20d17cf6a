//! [`PostgresRepository`]: the [`ChatRepository`] port on PostgreSQL.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

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
use diesel::sql_types::{BigInt, Integer, Text};
use diesel_async::pooled_connection::deadpool::{Object, PoolError};
use diesel_async::{AsyncConnection as _, AsyncPgConnection, RunQueryDsl};
use futures::future::BoxFuture;
use futures::FutureExt as _;

use super::chains;
use super::connection::{PgPool, Target};
use super::errors::{connection_lost, statement_never_ran};
use super::search as full_text;
use super::tree as branches;
use super::{migrations, queries};
use crate::error::{Backend, StoreError};
use crate::paging::{into_page, with_lookahead};
use crate::rows::{
    stored_turn, InterruptedChanges, MessageChanges, MessageRow, SessionChangeset, SessionRow,
    StreamingReplyRow, INTERRUPTED_MESSAGE,
};
use crate::schema::{messages, sessions};
use crate::search;
use crate::statement::cached_query;
use crate::turn_writes::{self, StateWrite};

/// The longest a call may take, waiting for a connection included, before
/// it is abandoned as [`RepoError::Unavailable`]: longer than the server's
/// own `statement_timeout` (15 s), so the server ends a slow statement first
/// and this only fires when the server stopped answering altogether.
const CALL_DEADLINE: Duration = Duration::from_secs(20);

/// What a call does when its connection turns out to be lost midway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnLostConnection {
    /// Make the call again on a fresh connection: whether or not the first
    /// attempt took effect, the second leaves the same state and gives the
    /// same answer (a read, or a write that sets values).
    Retry,
    /// Make it again only when the error shows the first attempt took no
    /// effect (the server answered that its statement failed, or its
    /// transaction never reached COMMIT); otherwise report the store
    /// unavailable: the first attempt may have committed just before the
    /// connection went, and a second could then add twice or answer
    /// differently (an insert, an increment, a delete).
    Fail,
}

/// The work of one call: given a connection, the future that does it.
/// Boxed because the future borrows the connection it is given.
pub(crate) type Work<T> = Box<
    dyn for<'c> Fn(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<T, StoreError>> + Send + Sync,
>;

/// Sessions and messages in one PostgreSQL database, reached through a pool
/// of connections; any number of processes may share the database.
///
/// Every query about a session or its messages is scoped by its owner in the
/// SQL itself (the crate's invariants say how).
///
/// Cheap to clone: clones share the pool. Every call runs in a Tokio task of
/// its own, so it must be awaited inside a Tokio runtime, and it runs to its
/// end even if the caller stops awaiting: a write commits whole or not at all.
#[derive(Clone)]
pub struct PostgresRepository {
    pool: PgPool,
    target: Arc<Target>,
}

impl fmt::Debug for PostgresRepository {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let status = self.pool.status();
        f.debug_struct("PostgresRepository")
            .field("database", &self.target.to_string())
            .field("connections", &status.size)
            .field("idle", &status.available)
            .field("max_connections", &status.max_size)
            .finish()
    }
}

impl PostgresRepository {
    /// Connects to the database at `url` (`postgres://user:password@host:port/database`,
    /// or `postgresql://`, with libpq's query parameters such as
    /// `connect_timeout` and `application_name`), applies pending migrations
    /// and makes a pool of at most `pool_size` connections, opened as calls
    /// need them.
    ///
    /// The database must exist; its tables are created by the migrations.
    /// Call this at start-up, before serving.
    ///
    /// # Errors
    /// When `url` is not a PostgreSQL URL, `pool_size` is zero, the server
    /// cannot be reached or refuses the connection, or a migration fails.
    /// No error holds the URL's password.
    pub async fn connect(url: &str, pool_size: usize) -> anyhow::Result<Self> {
        let target = Target::parse(url)?;
        // The pool opens no connection yet, so a bad size is refused first.
        let pool = target.pool(pool_size)?;
        // Migrating on a connection of its own makes an unreachable server
        // or a wrong password fail at once with the server's reason, where
        // the pool would wait out its timeouts.
        let applied = migrations::migrate(&target).await?;
        if !applied.is_empty() {
            tracing::info!(database = %target, migrations = ?applied, "applied PostgreSQL migrations");
        }
        let repository = Self {
            pool,
            target: Arc::new(target),
        };
        let work = work(|connection| chains::fill_every_session(connection).boxed());
        let filled = repository
            .run("fill_chains", OnLostConnection::Retry, work)
            .await?;
        if filled > 0 {
            tracing::info!(database = %repository.target, sessions = filled, "stored the conversation chains of messages stored before");
        }
        Ok(repository)
    }

    /// Applies the migrations this build knows and the database lacks, and
    /// returns their names, oldest first. [`PostgresRepository::connect`]
    /// already did this, so it finds nothing to do unless another process
    /// rolled the schema back since.
    ///
    /// # Errors
    /// [`RepoError::Unavailable`] when the server cannot be reached,
    /// [`RepoError::Unknown`] when a migration fails.
    pub async fn run_migrations(&self) -> Result<Vec<String>, RepoError> {
        let operation = "run_migrations";
        let connection = self.pool.get().await.map_err(|error| {
            checkout_failed(error).into_repo_error(Backend::Postgres, operation)
        })?;
        // The migration harness needs the connection itself; the pool opens
        // another in its place when it is next asked for one.
        let connection = diesel_async::pooled_connection::deadpool::Object::take(connection);
        migrations::run_pending(connection)
            .await
            .map_err(|error| StoreError::Other(error).into_repo_error(Backend::Postgres, operation))
    }

    /// Runs `work` with a pooled connection, in a task of its own, within
    /// [`CALL_DEADLINE`]. When the connection turns out to be lost, the call
    /// is made once more on a fresh one if `on_lost` allows it; otherwise,
    /// and when the second attempt fails the same way, the store is
    /// unavailable.
    pub(crate) async fn run<T: Send + 'static>(
        &self,
        operation: &'static str,
        on_lost: OnLostConnection,
        work: Work<T>,
    ) -> Result<T, RepoError> {
        let pool = self.pool.clone();
        let call = tokio::spawn(async move { attempt(&pool, operation, on_lost, &*work).await });
        let abort = call.abort_handle();
        let outcome = match tokio::time::timeout(CALL_DEADLINE, call).await {
            Ok(Ok(result)) => result,
            Ok(Err(join_error)) => Err(StoreError::Other(
                anyhow::Error::new(join_error).context("the call did not finish"),
            )),
            Err(_elapsed) => {
                // The server stopped answering: give the connection back
                // rather than let the call hold it until TCP gives up.
                abort.abort();
                Err(StoreError::Unavailable(anyhow::anyhow!(
                    "no answer from the server within {CALL_DEADLINE:?}"
                )))
            }
        };
        outcome.map_err(|error| error.into_repo_error(Backend::Postgres, operation))
    }
}

/// One call, with at most one retry after a lost connection.
async fn attempt<T>(
    pool: &PgPool,
    operation: &'static str,
    on_lost: OnLostConnection,
    work: &(dyn for<'c> Fn(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<T, StoreError>>
          + Send
          + Sync),
) -> Result<T, StoreError> {
    let mut retried = false;
    loop {
        let mut connection = pool.get().await.map_err(checkout_failed)?;
        let (error, took_no_effect) = match work(&mut connection).await {
            Err(StoreError::Diesel(error)) => {
                let never_ran = statement_never_ran(&error);
                (error, never_ran)
            }
            Err(StoreError::NotCommitted(error)) => (error, true),
            other => return other,
        };
        if !connection_lost(&error, &mut connection).await {
            return Err(StoreError::Diesel(error));
        }
        // Out of the pool for good: returned to it, the dead connection
        // would wait there until the next checkout's `SELECT 1` found it
        // out, costing that call a round trip; taken, it is closed now and
        // the pool opens a fresh one in its place when one is next wanted.
        drop(Object::take(connection));
        let safe_to_repeat = on_lost == OnLostConnection::Retry || took_no_effect;
        if safe_to_repeat && !retried {
            tracing::warn!(operation, %error, "lost the connection to PostgreSQL; trying once more on a new one");
            retried = true;
            continue;
        }
        return Err(StoreError::Unavailable(
            anyhow::Error::new(error).context("lost the connection to PostgreSQL"),
        ));
    }
}

/// No connection could be had: none became free in time, or a new one could
/// not be opened (the server is down, refuses, or cannot be reached).
fn checkout_failed(error: PoolError) -> StoreError {
    match error {
        PoolError::NoRuntimeSpecified => StoreError::Other(anyhow::Error::new(error)),
        other => StoreError::Unavailable(
            anyhow::Error::new(other).context("no connection to PostgreSQL"),
        ),
    }
}

/// Boxes a call's work; the closure is called once per attempt.
pub(crate) fn work<T, F>(work: F) -> Work<T>
where
    F: for<'c> Fn(&'c mut AsyncPgConnection) -> BoxFuture<'c, Result<T, StoreError>>
        + Send
        + Sync
        + 'static,
{
    Box::new(work)
}

/// Whether `owner` has a session with this id, inside the caller's transaction.
async fn session_exists(
    connection: &mut AsyncPgConnection,
    owner: &str,
    id: &str,
) -> Result<bool, StoreError> {
    let owned = sessions::table.find(id).filter(sessions::owner.eq(owner));
    Ok(diesel::select(exists(owned)).get_result(connection).await?)
}

#[async_trait]
impl ChatRepository for PostgresRepository {
    async fn create_session(&self, session: &Session) -> Result<(), RepoError> {
        let row = Arc::new(SessionRow::new_session(session));
        let work = work(move |connection| {
            let row = Arc::clone(&row);
            async move {
                diesel::insert_into(sessions::table)
                    .values(&*row)
                    .execute(connection)
                    .await?;
                Ok(())
            }
            .boxed()
        });
        self.run("create_session", OnLostConnection::Fail, work)
            .await
    }

    async fn get_session(&self, owner: &Principal, id: SessionId) -> Result<Session, RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        let work = work(move |connection| {
            let (owner, id) = (owner.clone(), id.clone());
            async move {
                sessions::table
                    .find(id)
                    .filter(sessions::owner.eq(owner))
                    .select(SessionRow::as_select())
                    .first(connection)
                    .await?
                    .into_domain()
            }
            .boxed()
        });
        self.run("get_session", OnLostConnection::Retry, work).await
    }

    async fn list_sessions(
        &self,
        owner: &Principal,
        limit: usize,
        after: Option<SessionId>,
    ) -> Result<Page<Session>, RepoError> {
        let owner = owner.as_str().to_owned();
        let after = after.map(|id| id.to_string());
        let work = work(move |connection| {
            let query = queries::session_page(owner.clone(), after.clone(), with_lookahead(limit));
            async move {
                into_page(
                    query.load(connection).await?,
                    limit,
                    SessionRow::into_domain,
                )
            }
            .boxed()
        });
        self.run("list_sessions", OnLostConnection::Retry, work)
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
        let changes = Arc::new(SessionChangeset::of(changes, at));
        let work = work(move |connection| {
            let (owner, id, changes) = (owner.clone(), id.clone(), Arc::clone(&changes));
            async move {
                // An unknown id, or another owner's, returns no row:
                // Diesel's NotFound, which StoreError passes on as the port's.
                let owned = sessions::table.find(id).filter(sessions::owner.eq(owner));
                diesel::update(owned)
                    .set(&*changes)
                    .returning(SessionRow::as_returning())
                    .get_result(connection)
                    .await?
                    .into_domain()
            }
            .boxed()
        });
        self.run("update_session", OnLostConnection::Retry, work)
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
        let changes = Arc::new(SessionChangeset::of(
            &SessionChanges {
                title: Some(Some(title.clone())),
                ..SessionChanges::default()
            },
            at,
        ));
        let work = work(move |connection| {
            let (owner, id, changes) = (owner.clone(), id.clone(), Arc::clone(&changes));
            async move {
                // One conditional statement: under READ COMMITTED, an UPDATE
                // that waited for a concurrent writer checks `title IS NULL`
                // again on the row as that writer left it, so a title set
                // meanwhile always wins. A transaction around it would add
                // nothing: the existence check below, made only when nothing
                // matched, would see a snapshot of its own either way.
                let untitled = sessions::table
                    .find(&id)
                    .filter(sessions::owner.eq(&owner))
                    .filter(sessions::title.is_null());
                let updated = diesel::update(untitled)
                    .set(&*changes)
                    .returning(SessionRow::as_returning())
                    .get_result(connection)
                    .await
                    .optional()?;
                match updated {
                    Some(row) => row.into_domain().map(Some),
                    // Nothing matched: either a title is there already, or
                    // the owner has no such session.
                    None if session_exists(connection, &owner, &id).await? => Ok(None),
                    None => Err(StoreError::NotFound),
                }
            }
            .boxed()
        });
        // A second attempt after a first that took effect would find the
        // title set and answer `None`, hiding that this call set it.
        self.run("set_title_if_untitled", OnLostConnection::Fail, work)
            .await
    }

    async fn delete_session(&self, owner: &Principal, id: SessionId) -> Result<(), RepoError> {
        let owner = owner.as_str().to_owned();
        let id = id.to_string();
        let work = work(move |connection| {
            let (owner, id) = (owner.clone(), id.clone());
            async move {
                // The messages go with it: ON DELETE CASCADE.
                let owned = sessions::table.find(id).filter(sessions::owner.eq(owner));
                let deleted = diesel::delete(owned).execute(connection).await?;
                if deleted == 0 {
                    return Err(StoreError::NotFound);
                }
                Ok(())
            }
            .boxed()
        });
        self.run("delete_session", OnLostConnection::Fail, work)
            .await
    }

    async fn append_messages(
        &self,
        owner: &Principal,
        messages: &[Message],
    ) -> Result<(), RepoError> {
        let operation = "append_messages";
        let session = match crate::tree::session_of(messages) {
            Ok(Some(session)) => session.to_string(),
            Ok(None) => return Ok(()),
            Err(error) => return Err(error.into_repo_error(Backend::Postgres, operation)),
        };
        let messages = Arc::new(messages.to_vec());
        let owner = owner.as_str().to_owned();
        let now = Timestamp::now();
        let work = work(move |connection| {
            let (owner, session, messages) =
                (owner.clone(), session.clone(), Arc::clone(&messages));
            async move { branches::append(connection, &owner, &session, &messages, now).await }
                .boxed()
        });
        self.run(operation, OnLostConnection::Fail, work).await
    }

    async fn update_message(&self, owner: &Principal, message: &Message) -> Result<(), RepoError> {
        let owner = owner.as_str().to_owned();
        let id = message.id.to_string();
        let session = message.session_id.to_string();
        let completed_at = message.completed_at.map(Timestamp::as_micros);
        let is_final = message.status.is_final();
        let changes = Arc::new(
            MessageChanges::of(message)
                .map_err(|error| error.into_repo_error(Backend::Postgres, "update_message"))?,
        );
        let work = work(move |connection| {
            let (owner, id, session, changes) = (
                owner.clone(),
                id.clone(),
                session.clone(),
                Arc::clone(&changes),
            );
            async move {
                // The owner is checked in the UPDATE itself: a message of
                // another principal's session matches no row. A final
                // state, once stored, stays (see the port) — but this very
                // write, made again after a lost answer, still matches: its
                // end time is its own.
                let write = StateWrite {
                    owner: &owner,
                    session: &session,
                    id: &id,
                    changes: &changes,
                    completed_at,
                };
                if !is_final {
                    // A flush of a streaming reply: one statement, no transaction.
                    let updated = turn_writes::update_message(&write)
                        .execute(connection)
                        .await?;
                    return if updated == 0 {
                        Err(StoreError::NotFound)
                    } else {
                        Ok(())
                    };
                }
                connection
                    .transaction::<_, StoreError, _>(async |connection| {
                        let updated = turn_writes::update_message(&write)
                            .execute(connection)
                            .await?;
                        if updated == 0 {
                            return Err(StoreError::NotFound);
                        }
                        chains::fill(connection, &session).await
                    })
                    .await
            }
            .boxed()
        });
        self.run("update_message", OnLostConnection::Retry, work)
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
        let after = after.map(|id| id.to_string());
        let work = work(move |connection| {
            let (owner, session) = (owner.clone(), session.clone());
            let query =
                queries::message_page(session.clone(), after.clone(), with_lookahead(limit));
            async move {
                // One snapshot for the owner's existence check and the page,
                // so a concurrent delete cannot make an empty page of a
                // session that was there a moment ago.
                connection
                    .build_transaction()
                    .repeatable_read()
                    .read_only()
                    .run::<_, StoreError, _>(async |connection| {
                        if !session_exists(connection, &owner, &session).await? {
                            return Err(StoreError::NotFound);
                        }
                        into_page(
                            query.load(connection).await?,
                            limit,
                            MessageRow::into_domain,
                        )
                    })
                    .await
            }
            .boxed()
        });
        self.run("list_messages", OnLostConnection::Retry, work)
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
        let work = work(move |connection| {
            let (owner, session, leaf, after) =
                (owner.clone(), session.clone(), leaf.clone(), after.clone());
            async move {
                branches::list_branch(
                    connection,
                    &owner,
                    &session,
                    leaf.as_deref(),
                    limit,
                    after.as_deref(),
                )
                .await
            }
            .boxed()
        });
        self.run("list_branch", OnLostConnection::Retry, work).await
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
        let work = work(move |connection| {
            let (owner, session, leaf) = (owner.clone(), session.clone(), leaf.clone());
            async move {
                branches::recent(connection, &owner, &session, leaf.as_deref(), limit).await
            }
            .boxed()
        });
        self.run("recent_messages", OnLostConnection::Retry, work)
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
        let work = work(move |connection| {
            let (owner, session, id) = (owner.clone(), session.clone(), id.clone());
            async move { branches::get_message(connection, &owner, &session, &id).await }.boxed()
        });
        self.run("get_message", OnLostConnection::Retry, work).await
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
        let work = work(move |connection| {
            let (owner, session, to) = (owner.clone(), session.clone(), to.clone());
            async move { branches::switch_branch(connection, &owner, &session, &to, at).await }
                .boxed()
        });
        // Setting the head to the newest leaf below `to` again finds the
        // same leaf, or a newer one that came meanwhile: either is right.
        self.run("switch_branch", OnLostConnection::Retry, work)
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
        let terms: Arc<Vec<String>> = Arc::new(terms.into_iter().map(str::to_owned).collect());
        let owner = owner.as_str().to_owned();
        let after = after.map(|id| id.to_string());
        let work = work(move |connection| {
            let (owner, terms, after) = (owner.clone(), Arc::clone(&terms), after.clone());
            async move {
                full_text::search(connection, &owner, &terms, limit, after.as_deref()).await
            }
            .boxed()
        });
        self.run("search_messages", OnLostConnection::Retry, work)
            .await
    }

    async fn find_by_chain(
        &self,
        owner: &Principal,
        chain: ConversationChain,
        system_prompt: Option<String>,
    ) -> Result<Option<Message>, RepoError> {
        let owner = owner.as_str().to_owned();
        let work = work(move |connection| {
            let (owner, system_prompt) = (owner.clone(), system_prompt.clone());
            async move {
                chains::find(connection, &owner, chain.stored(), system_prompt.as_deref()).await
            }
            .boxed()
        });
        self.run("find_by_chain", OnLostConnection::Retry, work)
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
        let results = Arc::new(results.to_vec());
        let work = work(move |connection| {
            let (owner, session, message, results) = (
                owner.clone(),
                session.clone(),
                message.clone(),
                Arc::clone(&results),
            );
            async move {
                chains::record_tool_results(connection, &owner, &session, &message, &results).await
            }
            .boxed()
        });
        // Setting a result that is set already changes nothing: safe to repeat.
        self.run("record_tool_results", OnLostConnection::Retry, work)
            .await
    }

    async fn import_session(
        &self,
        session: &Session,
        messages: &[Message],
    ) -> Result<(), RepoError> {
        let imported = Arc::new((session.clone(), messages.to_vec()));
        let work = work(move |connection| {
            let imported = Arc::clone(&imported);
            async move { branches::import(connection, &imported.0, &imported.1).await }.boxed()
        });
        // A second attempt after a first that committed would fail on the
        // session's id: only a transaction that never reached COMMIT is
        // made again.
        self.run("import_session", OnLostConnection::Fail, work)
            .await
    }

    async fn interrupt_streaming(&self) -> Result<u64, RepoError> {
        let now = Timestamp::now().as_micros();
        let work = work(move |connection| {
            async move {
                let interrupted = cached_query(queries::INTERRUPT_STREAMING)
                    .bind::<Text, _>(ErrorCode::Interrupted.as_str())
                    .bind::<Text, _>(INTERRUPTED_MESSAGE)
                    .bind::<BigInt, _>(now)
                    .execute(connection)
                    .await?;
                chains::fill_every_session(connection).await?;
                Ok(interrupted)
            }
            .boxed()
        });
        // Stopping what is stopped already stops nothing more; only the
        // count could differ, and it is for the log.
        let interrupted = self
            .run("interrupt_streaming", OnLostConnection::Retry, work)
            .await?;
        Ok(u64::try_from(interrupted).unwrap_or(u64::MAX))
    }

    async fn interrupt_turn(
        &self,
        session: SessionId,
        first: MessageId,
    ) -> Result<Vec<StoredEnd>, RepoError> {
        let now = Timestamp::now();
        let (session, first) = (session.to_string(), first.to_string());
        let work = work(move |connection| {
            let (session, first) = (session.clone(), first.clone());
            async move {
                connection
                    .transaction::<_, StoreError, _>(async |connection| {
                        // Under READ COMMITTED, an UPDATE that waited for a
                        // reply's own final write sees its status again and
                        // leaves it: the first final state wins.
                        let streaming = messages::table
                            .filter(messages::session_id.eq(&session))
                            .filter(messages::id.ge(&first))
                            .filter(messages::role.eq(Role::Assistant.as_str()))
                            .filter(messages::status.eq(MessageStatus::Streaming.as_str()));
                        let changed: Vec<String> = diesel::update(streaming)
                            .set(&InterruptedChanges::at(now))
                            .returning(messages::id)
                            .get_results(connection)
                            .await?;
                        let turn = queries::turn_replies(session.clone(), first.clone())
                            .load(connection)
                            .await?;
                        chains::fill(connection, &session).await?;
                        // An error rolls the update back: a turn that is
                        // gone changes nothing.
                        stored_turn(turn, &changed, &first)
                    })
                    .await
            }
            .boxed()
        });
        // A retry after a commit finds the turn interrupted already and
        // says `changed: false` throughout; the sweeper then publishes what
        // is stored all the same (see `app/src/sweep.rs`), so nothing is lost.
        self.run("interrupt_turn", OnLostConnection::Retry, work)
            .await
    }

    async fn streaming_replies(
        &self,
        before: Timestamp,
        most: usize,
    ) -> Result<Vec<(SessionId, MessageId)>, RepoError> {
        let before = before.as_micros();
        let most = i64::try_from(most).unwrap_or(i64::MAX);
        let work = work(move |connection| {
            async move {
                let rows: Vec<StreamingReplyRow> = cached_query(queries::STREAMING_REPLIES)
                    .bind::<BigInt, _>(before)
                    .bind::<BigInt, _>(most)
                    .load(connection)
                    .await?;
                rows.into_iter()
                    .map(StreamingReplyRow::into_domain)
                    .collect()
            }
            .boxed()
        });
        self.run("streaming_replies", OnLostConnection::Retry, work)
            .await
    }

    async fn ping(&self) -> Result<(), RepoError> {
        let work = work(|connection| {
            async move {
                Ok(diesel::select(sql::<Integer>("1"))
                    .get_result::<i32>(connection)
                    .await?)
            }
            .boxed()
        });
        match self.run("ping", OnLostConnection::Retry, work).await {
            Ok(_) => Ok(()),
            Err(RepoError::Unknown(error)) => Err(RepoError::Unavailable(error)),
            Err(other) => Err(other),
        }
    }
}
