//! The assistants' migration on a database that holds history already, on
//! both backends: upgrading keeps every session and message as it was,
//! and reverting it keeps them too. What it takes to hold a database at an
//! older migration, for this and later migrations' tests.

use std::path::PathBuf;
use std::sync::Arc;

use colloquy_diesel::testing::TestDatabase;
use colloquy_diesel::{PostgresRepository, SqliteRepository};
use colloquy_domain::{
    ErrorCode, Message, MessageError, MessageStatus, Session, Speaker, Timestamp, ToolCall, Usage,
};
use colloquy_ports::SessionChanges;
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use tempfile::TempDir;

use crate::support::{
    alice, chain, model, new_assistant, new_session, on_both_backends, Backend, Store, POOL_SIZE,
};

const SQLITE: EmbeddedMigrations = embed_migrations!("../../../migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("../../../migrations/postgres");
const ASSISTANTS: &str = "2026-12-02-000000_assistants";
pub const BRANCHES: &str = "2026-12-03-000000_branches";
pub const CHAINS: &str = "2026-12-04-000000_chains";

/// A database no repository has opened yet, so no migration ran on it.
pub enum Place {
    Sqlite { path: PathBuf, _dir: TempDir },
    Postgres(TestDatabase),
}

impl Place {
    pub async fn new(backend: Backend) -> Self {
        match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().unwrap();
                let path = dir.path().join("old.db");
                Self::Sqlite { path, _dir: dir }
            }
            Backend::Postgres => Self::Postgres(TestDatabase::create().await),
        }
    }

    /// Runs `change` with a migration harness on this database, on the
    /// blocking pool (PostgreSQL's harness blocks on a runtime of its own).
    pub async fn migrations<T: Send + 'static>(
        &self,
        change: impl FnOnce(&mut dyn Harness) -> T + Send + 'static,
    ) -> T {
        match self {
            Self::Sqlite { path, .. } => {
                let path = path.to_str().unwrap().to_owned();
                tokio::task::spawn_blocking(move || {
                    let mut connection = SqliteConnection::establish(&path).unwrap();
                    change(&mut SqliteHarness(&mut connection))
                })
                .await
                .unwrap()
            }
            Self::Postgres(database) => {
                let url = database.url().to_owned();
                tokio::task::spawn_blocking(move || {
                    let mut connection =
                        AsyncConnectionWrapper::<AsyncPgConnection>::establish(&url).unwrap();
                    change(&mut PostgresHarness(&mut connection))
                })
                .await
                .unwrap()
            }
        }
    }

    pub async fn execute(&self, sql: String) {
        match self {
            Self::Sqlite { path, .. } => SqliteConnection::establish(path.to_str().unwrap())
                .unwrap()
                .batch_execute(&sql)
                .unwrap_or_else(|error| panic!("{sql}: {error}")),
            Self::Postgres(database) => database
                .client()
                .await
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|error| panic!("{sql}: {error:?}")),
        }
    }

    /// The repository, which applies what is pending as any server start does.
    pub async fn open(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite { path, .. } => {
                Arc::new(SqliteRepository::connect(path.to_str().unwrap(), POOL_SIZE).unwrap())
            }
            Self::Postgres(database) => Arc::new(
                PostgresRepository::connect(database.url(), POOL_SIZE as usize)
                    .await
                    .unwrap(),
            ),
        }
    }

    /// Applies what is pending, as `colloquy migrate` does, and names it.
    pub async fn migrate(&self) -> Vec<String> {
        match self {
            Self::Sqlite { path, .. } => colloquy_diesel::migrate(path.to_str().unwrap()).unwrap(),
            Self::Postgres(database) => colloquy_diesel::migrate_postgres(database.url())
                .await
                .unwrap(),
        }
    }
}

/// What these tests do with migrations, on either backend's connection.
pub trait Harness {
    /// Runs every migration older than the one named `name`.
    fn run_those_before(&mut self, name: &str);
    /// Reverts the newest migration and names its version.
    fn revert_last(&mut self) -> String;
}

struct SqliteHarness<'c>(&'c mut SqliteConnection);
struct PostgresHarness<'c>(&'c mut AsyncConnectionWrapper<AsyncPgConnection>);

fn run_before<DB: diesel::backend::Backend>(
    harness: &mut impl MigrationHarness<DB>,
    migrations: EmbeddedMigrations,
    name: &str,
) {
    let pending = harness.pending_migrations(migrations).unwrap();
    let older: Vec<_> = pending
        .iter()
        .take_while(|migration| migration.name().to_string() != name)
        .collect();
    assert!(older.len() < pending.len(), "the migration {name} exists");
    for migration in older {
        harness.run_migration(migration.as_ref()).unwrap();
    }
}

impl Harness for SqliteHarness<'_> {
    fn run_those_before(&mut self, name: &str) {
        run_before(self.0, SQLITE, name);
    }

    fn revert_last(&mut self) -> String {
        self.0.revert_last_migration(SQLITE).unwrap().to_string()
    }
}

impl Harness for PostgresHarness<'_> {
    fn run_those_before(&mut self, name: &str) {
        run_before(self.0, POSTGRES, name);
    }

    fn revert_last(&mut self) -> String {
        self.0.revert_last_migration(POSTGRES).unwrap().to_string()
    }
}

/// `text` as an SQL string literal.
fn literal(text: &str) -> String {
    format!("'{}'", text.replace('\'', "''"))
}

/// A session of alice's with every column of the old schema set, and its
/// history: a question, a finished reply with usage, tool calls and an
/// error, and a reply still streaming.
fn old_history() -> (Session, Vec<Message>) {
    let mut session = new_session();
    session.created_at = Timestamp::from_micros(1_000);
    session.updated_at = Timestamp::from_micros(2_000);
    session.message_count = 3;
    let mut question = crate::support::user_message(session.id, "It's still there?");
    question.created_at = Timestamp::from_micros(1_100);
    question.completed_at = Some(question.created_at);
    let mut answer = Message::streaming_reply(session.id, &model());
    answer.content = "Yes, it's all here.".to_owned();
    answer.status = MessageStatus::Failed;
    answer.finish_reason = Some("tool_calls".to_owned());
    answer.usage = Some(Usage {
        prompt_tokens: 12,
        completion_tokens: 34,
    });
    answer.error = Some(MessageError {
        code: ErrorCode::UpstreamTimeout,
        message: "the model stopped answering".to_owned(),
    });
    answer.tool_calls = vec![ToolCall {
        id: "call_1".to_owned(),
        name: "calculator".to_owned(),
        arguments: r#"{"expression": "6*7"}"#.to_owned(),
        result: Some(r#"{"value":42}"#.to_owned()),
        error: None,
    }];
    answer.created_at = Timestamp::from_micros(1_200);
    answer.completed_at = Some(Timestamp::from_micros(1_300));
    let mut streaming = Message::streaming_reply(session.id, &model());
    streaming.content = "half an ans".to_owned();
    streaming.created_at = Timestamp::from_micros(1_400);
    (session, vec![question, answer, streaming])
}

/// The statements that store `session` and `messages` with the columns
/// every migration before assistants had.
pub fn insert_sql(session: &Session, messages: &[Message]) -> String {
    let optional = |text: Option<&str>| text.map_or_else(|| "NULL".to_owned(), literal);
    let number = |value: Option<i64>| value.map_or_else(|| "NULL".to_owned(), |n| n.to_string());
    let mut sql = format!(
        "INSERT INTO sessions (id, owner, title, system_prompt, model, created_at, updated_at, \
         message_count) VALUES ('{}', {}, {}, {}, {}, {}, {}, {});",
        session.id,
        literal(session.owner.as_str()),
        optional(session.title.as_ref().map(|title| title.as_str())),
        optional(session.system_prompt.as_ref().map(|prompt| prompt.as_str())),
        literal(session.model.as_str()),
        session.created_at.as_micros(),
        session.updated_at.as_micros(),
        session.message_count,
    );
    for message in messages {
        let tool_calls = (!message.tool_calls.is_empty()).then(|| {
            serde_json::Value::Array(
                message
                    .tool_calls
                    .iter()
                    .map(|call| {
                        serde_json::json!({
                            "id": call.id, "name": call.name, "arguments": call.arguments,
                            "result": call.result, "error": call.error,
                        })
                    })
                    .collect(),
            )
            .to_string()
        });
        let tokens = |pick: fn(&Usage) -> u64| {
            number(
                message
                    .usage
                    .as_ref()
                    .map(|usage| i64::try_from(pick(usage)).unwrap()),
            )
        };
        sql.push_str(&format!(
            "INSERT INTO messages (id, session_id, role, content, status, model, finish_reason, \
             prompt_tokens, completion_tokens, error_code, error_message, tool_calls, \
             created_at, completed_at) VALUES ('{}', '{}', {}, {}, {}, {}, {}, {}, {}, {}, {}, \
             {}, {}, {});",
            message.id,
            message.session_id,
            literal(message.role.as_str()),
            literal(&message.content),
            literal(message.status.as_str()),
            optional(message.model.as_deref()),
            optional(message.finish_reason.as_deref()),
            tokens(|usage| usage.prompt_tokens),
            tokens(|usage| usage.completion_tokens),
            optional(message.error.as_ref().map(|error| error.code.as_str())),
            optional(message.error.as_ref().map(|error| error.message.as_str())),
            optional(tool_calls.as_deref()),
            message.created_at.as_micros(),
            number(message.completed_at.map(Timestamp::as_micros)),
        ));
    }
    sql
}

/// Sessions and messages stored before assistants existed read back whole
/// after the upgrade, with no assistant and no speaker, and take both on.
async fn history_from_before_assistants_survives_the_upgrade(backend: Backend) {
    let place = Place::new(backend).await;
    place
        .migrations(|harness| harness.run_those_before(ASSISTANTS))
        .await;
    let (session, messages) = old_history();
    place.execute(insert_sql(&session, &messages)).await;

    let applied = place.migrate().await;
    assert_eq!(applied, [ASSISTANTS, BRANCHES, CHAINS]);
    let repo = place.open().await;
    // The branches' migration, which follows, makes them one chain.
    let session = Session {
        head_message_id: Some(messages[2].id),
        ..session
    };
    let messages = chain(None, messages);

    assert_eq!(
        repo.get_session(&alice(), session.id).await.unwrap(),
        session
    );
    assert_eq!(
        repo.list_sessions(&alice(), 10, None).await.unwrap().items,
        std::slice::from_ref(&session)
    );
    let history = repo
        .list_messages(&alice(), session.id, 10, None)
        .await
        .unwrap();
    assert_eq!(history.items, messages);

    // The old rows take the new columns.
    let assistant = new_assistant(alice(), "Critic");
    repo.create_assistant(&assistant).await.unwrap();
    let changed = repo
        .update_session(
            &alice(),
            session.id,
            &SessionChanges {
                assistant_id: Some(Some(assistant.id)),
                ..SessionChanges::default()
            },
            Timestamp::from_micros(3_000),
        )
        .await
        .unwrap();
    assert_eq!(changed.assistant_id, Some(assistant.id));
    let ends = repo
        .interrupt_turn(session.id, messages[1].id)
        .await
        .unwrap();
    let changed: Vec<bool> = ends.iter().map(|end| end.changed).collect();
    assert_eq!(changed, [false, true]);
    assert_eq!(ends[1].message.content, "half an ans");
}

/// Reverting the migration forgets assistants and who wrote what, and
/// keeps every session and message; applying it again starts afresh.
async fn the_assistants_migration_reverts_and_reapplies(backend: Backend) {
    let place = Place::new(backend).await;
    let repo = place.open().await;
    let assistant = new_assistant(alice(), "Critic");
    repo.create_assistant(&assistant).await.unwrap();
    let session = Session {
        assistant_id: Some(assistant.id),
        ..new_session()
    };
    repo.create_session(&session).await.unwrap();
    let reply = Message {
        speaker: Some(Speaker {
            id: assistant.id,
            name: "Critic".to_owned(),
        }),
        ..crate::support::finished_reply(session.id)
    };
    repo.append_messages(&alice(), std::slice::from_ref(&reply))
        .await
        .unwrap();
    drop(repo);

    let reverted = place
        .migrations(|harness| {
            [
                harness.revert_last(),
                harness.revert_last(),
                harness.revert_last(),
            ]
        })
        .await;
    assert_eq!(
        reverted,
        ["20261204000000", "20261203000000", "20261202000000"]
    );
    assert_eq!(place.migrate().await, [ASSISTANTS, BRANCHES, CHAINS]);

    let repo = place.open().await;
    assert!(repo
        .list_assistants(&alice(), 10, None)
        .await
        .unwrap()
        .items
        .is_empty());
    let read = repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(read.assistant_id, None);
    assert_eq!(read.message_count, 1);
    assert_eq!(read.head_message_id, Some(reply.id));
    let history = repo
        .list_messages(&alice(), session.id, 10, None)
        .await
        .unwrap();
    assert_eq!(
        history.items,
        [Message {
            speaker: None,
            ..reply
        }]
    );
}

on_both_backends! {
    history_from_before_assistants_survives_the_upgrade,
    the_assistants_migration_reverts_and_reapplies,
}
