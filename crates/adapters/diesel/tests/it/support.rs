//! A temporary database per test, and builders for domain values.

use std::path::PathBuf;

use colloquy_diesel::SqliteRepository;
use colloquy_domain::{
    ErrorCode, Message, MessageContent, MessageError, MessageStatus, ModelName, Principal, Role,
    Session, SessionId, SystemPrompt, Timestamp, Title, ToolCall, Usage,
};
use colloquy_ports::ChatRepository;
use diesel::connection::SimpleConnection as _;
use diesel::{Connection as _, SqliteConnection};
use tempfile::TempDir;

pub const POOL_SIZE: u32 = 4;

/// A fresh, migrated database file in its own temporary directory, which is
/// removed when the value drops.
pub struct TestDb {
    pub repo: SqliteRepository,
    pub path: PathBuf,
    _dir: TempDir,
}

impl TestDb {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("colloquy.db");
        let repo = SqliteRepository::connect(path.to_str().unwrap(), POOL_SIZE).expect("connect");
        Self {
            repo,
            path,
            _dir: dir,
        }
    }

    /// A second repository on the same file, as after a restart.
    pub fn reopen(&self) -> SqliteRepository {
        SqliteRepository::connect(self.path.to_str().unwrap(), POOL_SIZE).expect("reconnect")
    }

    /// A plain Diesel connection to the file, outside the repository: to look
    /// at what is stored, or to damage it.
    pub fn raw(&self) -> SqliteConnection {
        let mut connection =
            SqliteConnection::establish(self.path.to_str().unwrap()).expect("raw connection");
        connection
            .batch_execute("PRAGMA busy_timeout = 5000;")
            .unwrap();
        connection
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

pub async fn stored_session(repo: &SqliteRepository) -> Session {
    let session = new_session();
    repo.create_session(&session).await.expect("create_session");
    session
}

/// A stored session with neither title nor system prompt.
pub async fn untitled_session(repo: &SqliteRepository) -> Session {
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

/// A reply with every optional field set, and text SQLite or JSON could mangle.
pub fn finished_reply(session: SessionId) -> Message {
    let mut reply = streaming_reply(session);
    reply.content = "Ünïcödé ✓, a quote \", a NUL \0 and\nlines".to_owned();
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

/// Every message in one of alice's sessions, read page by page.
pub async fn all_messages(
    repo: &SqliteRepository,
    session: SessionId,
    page: usize,
) -> Vec<Message> {
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
