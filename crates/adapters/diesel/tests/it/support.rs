//! A fresh database per test, on either backend, and builders for domain
//! values.
//!
//! Every contract test is an `async fn(Backend)` instantiated once per
//! backend by [`on_both_backends!`], as `module::test_name::sqlite` and
//! `module::test_name::postgres`; a test written but not listed there is an
//! unused function, which the lints refuse.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use colloquy_diesel::testing::{tokio_postgres, TestDatabase};
use colloquy_diesel::{PostgresRepository, SqliteRepository};
use colloquy_domain::{
    Assistant, AssistantName, ErrorCode, Instructions, Message, MessageContent, MessageError,
    MessageId, MessageStatus, ModelName, Principal, Role, Session, SessionId, SystemPrompt,
    Timestamp, Title, ToolCall, Usage,
};
use colloquy_ports::{ApiKeyStore, AssistantStore, ChatRepository, UsageLedger};
use diesel::connection::SimpleConnection as _;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use diesel::SqliteConnection;
use tempfile::TempDir;

pub const POOL_SIZE: u32 = 4;

/// Instantiates each named `async fn(Backend)` as a test per backend:
/// `name::sqlite` and `name::postgres`. `#[multi_thread]` before a name runs
/// it on a runtime of four worker threads instead of one.
macro_rules! on_both_backends {
    ($($(#[$flavor:ident])? $test:ident),+ $(,)?) => {
        $( on_both_backends!(@one $($flavor)? $test); )+
    };
    (@one multi_thread $test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn sqlite() {
                super::$test(crate::support::Backend::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
            async fn postgres() {
                super::$test(crate::support::Backend::Postgres).await;
            }
        }
    };
    (@one $test:ident) => {
        mod $test {
            #[tokio::test]
            async fn sqlite() {
                super::$test(crate::support::Backend::Sqlite).await;
            }

            #[tokio::test]
            async fn postgres() {
                super::$test(crate::support::Backend::Postgres).await;
            }
        }
    };
}
pub(crate) use on_both_backends;

/// Which adapter a test runs against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// Everything the adapters implement, as one object the tests can share.
pub trait Store: ChatRepository + AssistantStore + ApiKeyStore + UsageLedger {}

impl<T: ChatRepository + AssistantStore + ApiKeyStore + UsageLedger> Store for T {}

/// Where a test's database lives; dropping it removes the database.
enum Place {
    Sqlite { path: PathBuf, _dir: TempDir },
    Postgres(TestDatabase),
}

impl Place {
    /// A repository on this database, migrating it first if it is new.
    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Self::Sqlite { path, .. } => Arc::new(
                SqliteRepository::connect(path.to_str().unwrap(), POOL_SIZE).expect("connect"),
            ),
            Self::Postgres(database) => Arc::new(
                PostgresRepository::connect(database.url(), POOL_SIZE as usize)
                    .await
                    .expect("connect"),
            ),
        }
    }
}

/// A fresh, migrated database and a repository on it.
pub struct TestDb {
    pub backend: Backend,
    pub repo: Arc<dyn Store>,
    place: Place,
}

#[derive(QueryableByName)]
struct Integer {
    #[diesel(sql_type = BigInt)]
    value: i64,
}

#[derive(QueryableByName)]
struct NullableText {
    #[diesel(sql_type = Nullable<Text>)]
    value: Option<String>,
}

impl TestDb {
    /// On SQLite a file in a temporary directory, on PostgreSQL a database of
    /// its own; either is removed when the value drops.
    pub async fn new(backend: Backend) -> Self {
        let place = match backend {
            Backend::Sqlite => {
                let dir = tempfile::tempdir().expect("a temporary directory");
                let path = dir.path().join("colloquy.db");
                Place::Sqlite { path, _dir: dir }
            }
            Backend::Postgres => Place::Postgres(TestDatabase::create().await),
        };
        let repo = place.open().await;
        Self {
            backend,
            repo,
            place,
        }
    }

    /// A second repository on the same database, as another server process
    /// or the same one after a restart.
    pub async fn reopen(&self) -> Arc<dyn Store> {
        self.place.open().await
    }

    /// The SQLite file. Panics on PostgreSQL: the caller is a SQLite-only test.
    pub fn path(&self) -> &PathBuf {
        match &self.place {
            Place::Sqlite { path, .. } => path,
            Place::Postgres(_) => panic!("a SQLite-only test ran on PostgreSQL"),
        }
    }

    /// The PostgreSQL database. Panics on SQLite.
    pub fn postgres(&self) -> &TestDatabase {
        match &self.place {
            Place::Postgres(database) => database,
            Place::Sqlite { .. } => panic!("a PostgreSQL-only test ran on SQLite"),
        }
    }

    /// A plain Diesel connection to the SQLite file, outside the repository.
    pub fn sqlite(&self) -> SqliteConnection {
        let mut connection =
            SqliteConnection::establish(self.path().to_str().unwrap()).expect("raw connection");
        connection
            .batch_execute("PRAGMA busy_timeout = 5000;")
            .unwrap();
        connection
    }

    /// A plain connection to the PostgreSQL database, outside the repository.
    pub async fn pg_client(&self) -> tokio_postgres::Client {
        self.postgres().client().await
    }

    /// Runs `sql` (one or more statements) on a connection of its own.
    pub async fn try_execute(&self, sql: &str) -> Result<(), String> {
        match self.backend {
            Backend::Sqlite => self.sqlite().batch_execute(sql).map_err(|e| e.to_string()),
            Backend::Postgres => self
                .pg_client()
                .await
                .batch_execute(sql)
                .await
                .map_err(|error| match error.as_db_error() {
                    Some(db) => db.message().to_owned(),
                    None => error.to_string(),
                }),
        }
    }

    pub async fn execute(&self, sql: &str) {
        if let Err(error) = self.try_execute(sql).await {
            panic!("{sql}: {error}");
        }
    }

    /// The integer a query selects as `value`, with one text parameter `$1`
    /// (SQLite numbers `$1` as its first parameter too).
    pub async fn integer(&self, sql: &str, parameter: &str) -> i64 {
        match self.backend {
            Backend::Sqlite => {
                diesel::sql_query(sql)
                    .bind::<Text, _>(parameter)
                    .get_result::<Integer>(&mut self.sqlite())
                    .unwrap()
                    .value
            }
            Backend::Postgres => self
                .pg_client()
                .await
                .query_one(sql, &[&parameter])
                .await
                .unwrap()
                .get(0),
        }
    }

    /// The text a query selects as `value`, with one text parameter `$1`.
    pub async fn text(&self, sql: &str, parameter: &str) -> Option<String> {
        match self.backend {
            Backend::Sqlite => {
                diesel::sql_query(sql)
                    .bind::<Text, _>(parameter)
                    .get_result::<NullableText>(&mut self.sqlite())
                    .unwrap()
                    .value
            }
            Backend::Postgres => self
                .pg_client()
                .await
                .query_one(sql, &[&parameter])
                .await
                .unwrap()
                .get(0),
        }
    }

    /// `bytes` written as a literal of the backend's binary type.
    pub fn bytes_literal(&self, bytes: &[u8]) -> String {
        let hex: String = bytes.iter().map(|byte| format!("{byte:02x}")).collect();
        match self.backend {
            Backend::Sqlite => format!("X'{hex}'"),
            Backend::Postgres => format!("'\\x{hex}'::bytea"),
        }
    }

    /// Holds the lock every writer of `sessions` needs, from a connection
    /// outside the repository, for `hold`; returns once it has it.
    pub async fn hold_write_lock(&self, hold: Duration) -> tokio::task::JoinHandle<()> {
        let (locked, is_locked) = tokio::sync::oneshot::channel();
        let holder = match self.backend {
            Backend::Sqlite => {
                let mut raw = self.sqlite();
                tokio::task::spawn_blocking(move || {
                    raw.batch_execute("BEGIN IMMEDIATE").unwrap();
                    locked.send(()).unwrap();
                    std::thread::sleep(hold);
                    raw.batch_execute("COMMIT").unwrap();
                })
            }
            Backend::Postgres => {
                let client = self.pg_client().await;
                tokio::spawn(async move {
                    client
                        .batch_execute("BEGIN; LOCK TABLE sessions IN EXCLUSIVE MODE")
                        .await
                        .unwrap();
                    locked.send(()).unwrap();
                    tokio::time::sleep(hold).await;
                    client.batch_execute("COMMIT").await.unwrap();
                })
            }
        };
        is_locked.await.unwrap();
        holder
    }
}

/// The principal every test's sessions belong to, unless the test says otherwise.
pub fn alice() -> Principal {
    Principal::parse("alice").unwrap()
}

/// Another principal, who must find nothing of alice's.
pub fn bob() -> Principal {
    Principal::parse("bob").unwrap()
}

pub fn model() -> ModelName {
    ModelName::parse("test-model").unwrap()
}

/// A session of alice's, not stored yet.
pub fn new_session() -> Session {
    Session::new(
        alice(),
        Some(Title::parse("A title").unwrap()),
        Some(SystemPrompt::parse("Be brief.").unwrap()),
        model(),
    )
}

pub async fn stored_session(repo: &dyn Store) -> Session {
    let session = new_session();
    repo.create_session(&session).await.expect("create_session");
    session
}

/// A stored session with neither title nor system prompt.
pub async fn untitled_session(repo: &dyn Store) -> Session {
    let mut session = new_session();
    session.title = None;
    session.system_prompt = None;
    repo.create_session(&session).await.expect("create_session");
    session
}

pub fn user_message(session: SessionId, text: &str) -> Message {
    Message::user(
        session,
        MessageContent::parse(text.to_owned(), 10_000).unwrap(),
    )
}

pub fn streaming_reply(session: SessionId) -> Message {
    Message::streaming_reply(session, &model())
}

/// A reply with every optional field set, and text a store or JSON could
/// mangle (a NUL has a test of its own: it is stored as U+FFFD).
pub fn finished_reply(session: SessionId) -> Message {
    let mut reply = streaming_reply(session);
    reply.content = "Ünïcödé ✓, a quote \", a backslash \\, emoji 🦀 and\nlines\ttabs".to_owned();
    reply.finish_reason = Some("tool_calls".to_owned());
    reply.usage = Some(Usage {
        prompt_tokens: 1_234,
        completion_tokens: 56,
    });
    reply.tool_calls = vec![
        ToolCall {
            id: "call_1".to_owned(),
            name: "weather".to_owned(),
            // Spacing, key order and number spelling must survive as written.
            arguments: r#"{ "city":"Oslo",  "days": 3.50, "a": [1,2] }"#.to_owned(),
            result: Some(r#"{"temp":-3}"#.to_owned()),
            error: None,
        },
        ToolCall {
            id: "call_2".to_owned(),
            name: "broken".to_owned(),
            arguments: r#"{"unterminated": "#.to_owned(),
            result: None,
            error: Some("arguments are not valid JSON".to_owned()),
        },
    ];
    reply.finish(
        MessageStatus::Failed,
        Some(MessageError {
            code: ErrorCode::UpstreamTimeout,
            message: "the model stopped answering".to_owned(),
        }),
    );
    reply
}

/// An assistant of `owner`'s named `name`, with every field set, not stored yet.
pub fn new_assistant(owner: Principal, name: &str) -> Assistant {
    Assistant::new(
        owner,
        AssistantName::parse(name).unwrap(),
        Some(Instructions::parse("Argue the other side, in \"quotes\" 🦀.").unwrap()),
        model(),
        vec!["calculator".to_owned(), "current_time".to_owned()],
    )
}

/// One of alice's assistants, stored.
pub async fn stored_assistant(repo: &dyn Store, name: &str) -> Assistant {
    let assistant = new_assistant(alice(), name);
    repo.create_assistant(&assistant)
        .await
        .expect("create_assistant");
    assistant
}

/// Every message in one of alice's sessions, read page by page.
pub async fn all_messages(repo: &dyn Store, session: SessionId, page: usize) -> Vec<Message> {
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = repo
            .list_messages(&alice(), session, page, after)
            .await
            .expect("list_messages");
        all.extend(page.items);
        if !page.has_more {
            return all;
        }
        after = all.last().map(|message: &Message| message.id);
    }
}

/// Checks the fields a test did not set on purpose are as built.
pub fn assert_user(message: &Message, text: &str) {
    assert_eq!(message.role, Role::User);
    assert_eq!(message.content, text);
    assert_eq!(message.status, MessageStatus::Complete);
}

pub fn micros_now() -> i64 {
    Timestamp::now().as_micros()
}

/// `messages` made one branch, in their order: each follows the one before
/// it, and the first follows `after` (a root when `None`).
pub fn chain(after: Option<MessageId>, mut messages: Vec<Message>) -> Vec<Message> {
    let mut parent = after;
    for message in &mut messages {
        message.parent_id = parent;
        parent = Some(message.id);
    }
    messages
}

/// A message of `session` that follows `parent`.
pub fn reply_to(parent: &Message, mut message: Message) -> Message {
    message.parent_id = Some(parent.id);
    message
}
