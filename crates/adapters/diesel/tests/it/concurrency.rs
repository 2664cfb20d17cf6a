use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use colloquy_domain::{MessageStatus, SystemPrompt, Timestamp, Title};
use colloquy_ports::SessionChanges;
use diesel::prelude::*;
use diesel::sql_types::{BigInt, Nullable, Text};
use tokio::sync::Notify;

use crate::support::{
    alice, all_messages, chain, on_both_backends, stored_session, streaming_reply,
    untitled_session, user_message, Backend, TestDb,
};

const TASKS: usize = 8;
const ROUNDS: usize = 25;

/// Eight tasks each append exchanges to one shared session and finish their
/// replies, while listing it: no call may fail with SQLITE_BUSY, and the
/// count must add up.
async fn concurrent_writers_and_readers_all_succeed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let shared = stored_session(&*db.repo).await;

    let writers = (0..TASKS).map(|task| {
        let repo = db.repo.clone();
        tokio::spawn(async move {
            // Each task grows a branch of its own: every exchange follows
            // the task's previous one.
            let mut last = None;
            for round in 0..ROUNDS {
                let question = user_message(shared.id, &format!("task {task} round {round}"));
                let exchange = chain(last, vec![question, streaming_reply(shared.id)]);
                let mut reply = exchange[1].clone();
                last = Some(reply.id);
                repo.append_messages(&alice(), &exchange).await?;
                reply.content = format!("answer {task}/{round}");
                reply.finish(MessageStatus::Complete, None);
                repo.update_message(&alice(), &reply).await?;
                repo.list_messages(&alice(), shared.id, 20, None).await?;
            }
            Ok::<_, colloquy_ports::RepoError>(())
        })
    });
    for writer in writers.collect::<Vec<_>>() {
        writer
            .await
            .unwrap()
            .expect("no call fails under contention");
    }

    let expected = TASKS * ROUNDS * 2;
    let session = db.repo.get_session(&alice(), shared.id).await.unwrap();
    assert_eq!(
        session.message_count,
        u64::try_from(ROUNDS * 2).unwrap(),
        "the length of the branch appended last, as long as every other"
    );
    let messages = all_messages(&*db.repo, shared.id, 64).await;
    assert_eq!(messages.len(), expected);
    assert!(
        messages.windows(2).all(|pair| pair[0].id < pair[1].id),
        "oldest first"
    );
    assert_eq!(
        messages.iter().map(|m| m.id).collect::<HashSet<_>>().len(),
        expected
    );
    assert!(messages.iter().all(|m| m.status == MessageStatus::Complete));
}

/// One write to the sessions table, as a trigger logged it: `seq` is the
/// order in which the writes took effect.
#[derive(Debug, QueryableByName)]
struct SessionWrite {
    #[diesel(sql_type = BigInt)]
    seq: i64,
    #[diesel(sql_type = Nullable<Text>)]
    old_title: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    new_title: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    old_prompt: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    new_prompt: Option<String>,
}

/// Makes the database log every UPDATE of a session, inside the writing
/// transaction, so the log's order is the order the writes committed in
/// (SQLite has one writer at a time; on PostgreSQL every write holds the
/// session's row lock from its UPDATE to its commit).
const LOG_SESSION_WRITES_SQLITE: &str = "
    CREATE TABLE session_writes (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        old_title TEXT, new_title TEXT, old_prompt TEXT, new_prompt TEXT
    );
    CREATE TRIGGER log_session_writes AFTER UPDATE ON sessions BEGIN
        INSERT INTO session_writes (old_title, new_title, old_prompt, new_prompt)
        VALUES (OLD.title, NEW.title, OLD.system_prompt, NEW.system_prompt);
    END;";

const LOG_SESSION_WRITES_POSTGRES: &str = "
    CREATE TABLE session_writes (
        seq BIGSERIAL PRIMARY KEY,
        old_title TEXT, new_title TEXT, old_prompt TEXT, new_prompt TEXT
    );
    CREATE FUNCTION log_session_write() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO session_writes (old_title, new_title, old_prompt, new_prompt)
        VALUES (OLD.title, NEW.title, OLD.system_prompt, NEW.system_prompt);
        RETURN NEW;
    END $$;
    CREATE TRIGGER log_session_writes AFTER UPDATE ON sessions
        FOR EACH ROW EXECUTE FUNCTION log_session_write();";

const READ_SESSION_WRITES: &str =
    "SELECT seq, old_title, new_title, old_prompt, new_prompt FROM session_writes ORDER BY seq";

/// The log, in the order the writes took effect.
async fn session_writes(db: &TestDb) -> Vec<SessionWrite> {
    match db.backend {
        Backend::Sqlite => diesel::sql_query(READ_SESSION_WRITES)
            .load(&mut db.sqlite())
            .unwrap(),
        Backend::Postgres => db
            .pg_client()
            .await
            .query(READ_SESSION_WRITES, &[])
            .await
            .unwrap()
            .iter()
            .map(|row| SessionWrite {
                seq: row.get(0),
                old_title: row.get(1),
                new_title: row.get(2),
                old_prompt: row.get(3),
                new_prompt: row.get(4),
            })
            .collect(),
    }
}

/// Eight tasks keep changing an untitled session's system prompt while,
/// halfway through, the auto-title task titles it: the title must survive
/// every later prompt write, and the title write must not put back an older
/// prompt. This is the race that read-modify-write updates lost.
async fn prompt_updates_and_the_auto_title_do_not_undo_each_other(backend: Backend) {
    let db = TestDb::new(backend).await;
    let session = untitled_session(&*db.repo).await;
    db.execute(match backend {
        Backend::Sqlite => LOG_SESSION_WRITES_SQLITE,
        Backend::Postgres => LOG_SESSION_WRITES_POSTGRES,
    })
    .await;
    let writes = TASKS * ROUNDS;
    let done = Arc::new(AtomicUsize::new(0));
    let halfway = Arc::new(Notify::new());

    let prompt_writers = (0..TASKS).map(|task| {
        let repo = db.repo.clone();
        let (done, halfway) = (done.clone(), halfway.clone());
        tokio::spawn(async move {
            for round in 0..ROUNDS {
                let prompt = SystemPrompt::parse(&format!("task {task} round {round}")).unwrap();
                let changes = SessionChanges {
                    system_prompt: Some(Some(prompt.clone())),
                    ..SessionChanges::default()
                };
                let stored = repo
                    .update_session(&alice(), session.id, &changes, Timestamp::now())
                    .await?;
                assert_eq!(stored.system_prompt, Some(prompt), "returns what it stored");
                if done.fetch_add(1, Ordering::SeqCst) + 1 == writes / 2 {
                    halfway.notify_one();
                }
            }
            Ok::<_, colloquy_ports::RepoError>(())
        })
    });
    let prompt_writers = prompt_writers.collect::<Vec<_>>();
    let auto_title = Title::parse("Generated title").unwrap();
    let titler = {
        let repo = db.repo.clone();
        let auto_title = auto_title.clone();
        tokio::spawn(async move {
            halfway.notified().await;
            repo.set_title_if_untitled(&alice(), session.id, &auto_title, Timestamp::now())
                .await
        })
    };
    for writer in prompt_writers {
        writer.await.unwrap().expect("every prompt write succeeds");
    }
    let titled = titler.await.unwrap().expect("the title write succeeds");
    assert_eq!(
        titled.map(|session| session.title),
        Some(Some(auto_title.clone())),
        "the session had no title, so it takes this one"
    );

    let log = session_writes(&db).await;
    assert_eq!(log.len(), writes + 1, "one row per write");
    let (title_writes, prompt_writes): (Vec<_>, Vec<_>) = log
        .iter()
        .partition(|write| write.old_title.is_none() && write.new_title.is_some());
    let [title_write] = title_writes[..] else {
        panic!("exactly one write sets the title: {title_writes:?}");
    };
    assert_eq!(
        title_write.new_prompt, title_write.old_prompt,
        "the title write leaves the prompt alone"
    );
    assert!(
        prompt_writes
            .iter()
            .filter(|write| write.seq < title_write.seq)
            .count()
            >= writes / 2,
        "the title write comes after half the prompt writes (the rest race it)"
    );
    for write in &prompt_writes {
        assert_eq!(
            write.new_title, write.old_title,
            "a prompt write leaves the title alone: {write:?}"
        );
    }

    let stored = db.repo.get_session(&alice(), session.id).await.unwrap();
    assert_eq!(stored.title, Some(auto_title), "the title survived");
    let last_prompt = prompt_writes.last().unwrap().new_prompt.as_deref();
    assert_eq!(
        stored.system_prompt.as_ref().map(SystemPrompt::as_str),
        last_prompt,
        "the prompt is the last one written"
    );
}

on_both_backends! {
    #[multi_thread] concurrent_writers_and_readers_all_succeed,
    #[multi_thread] prompt_updates_and_the_auto_title_do_not_undo_each_other,
}
