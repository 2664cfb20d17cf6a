//! The one writer of a SQLite file: every write of the repository runs on
//! a thread of its own, and the writes waiting when it is free commit
//! together, in one transaction (group commit).
//!
//! SQLite admits one writer at a time whatever the pool holds, so many
//! sessions writing at once used to queue on the file lock, each paying its
//! own `BEGIN IMMEDIATE`, its own commit (the changed pages appended to the
//! WAL again, a checksum over each) and the pool's wake-ups. Here each
//! write still gets its own savepoint, so one that fails is rolled back
//! alone and tells only its caller; the others commit. A caller hears of
//! its write only once the transaction holding it has committed: an `Ok`
//! still means durable. Reads keep using the pool, beside the writer (WAL).

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use diesel::prelude::*;
use tokio::sync::oneshot;

use super::errors::is_contention;
use super::location::Location;
use super::pool;
use crate::error::StoreError;

/// Most writes one transaction takes: enough to share a commit among many
/// sessions, few enough that the first of them does not wait long for the
/// last.
const MOST_PER_COMMIT: usize = 64;

/// One write: runs inside the shared transaction, and is told afterwards
/// whether that transaction committed.
trait Job: Send {
    /// Runs the write in a savepoint of its own; `false` when it failed
    /// (and was rolled back).
    fn run(&mut self, connection: &mut SqliteConnection) -> bool;
    /// Tells the caller: its result when the transaction committed (or when
    /// its own write failed), the commit's error otherwise.
    fn finish(self: Box<Self>, commit: Result<(), &CommitFailure>);
}

/// Why a shared transaction did not commit, told to each of its writes.
#[derive(Debug)]
struct CommitFailure {
    /// Another process held the file's lock past `busy_timeout`: worth
    /// trying again.
    contention: bool,
    cause: String,
}

impl CommitFailure {
    fn error(&self) -> StoreError {
        let cause = anyhow::anyhow!(
            "the transaction holding this write did not commit: {}",
            self.cause
        );
        if self.contention {
            StoreError::Unavailable(cause)
        } else {
            StoreError::Other(cause)
        }
    }
}

struct Write<T, F> {
    work: Option<F>,
    result: Option<Result<T, StoreError>>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> Job for Write<T, F>
where
    T: Send,
    F: FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, connection: &mut SqliteConnection) -> bool {
        let Some(work) = self.work.take() else {
            return false;
        };
        // Diesel nests a transaction inside another as a savepoint.
        let result = connection.transaction(work);
        let ok = result.is_ok();
        self.result = Some(result);
        ok
    }

    fn finish(self: Box<Self>, commit: Result<(), &CommitFailure>) {
        let outcome = match (self.result, commit) {
            (Some(Err(error)), _) => Err(error),
            (Some(Ok(value)), Ok(())) => Ok(value),
            // The transaction did not begin or commit, or a write before
            // this one panicked.
            (Some(Ok(_)) | None, Err(failure)) => Err(failure.error()),
            (None, Ok(())) => Err(StoreError::Other(anyhow::anyhow!("the write was not run"))),
        };
        // A caller that stopped waiting loses only the answer: the write
        // itself committed or not as for everyone.
        let _ = self.reply.send(outcome);
    }
}

/// Hands writes to the writer thread. Cheap to clone; the thread ends when
/// the last clone is dropped.
#[derive(Clone)]
pub(crate) struct Writer {
    thread: Arc<WriterThread>,
}

struct WriterThread {
    jobs: Option<mpsc::Sender<Box<dyn Job>>>,
    handle: Option<JoinHandle<()>>,
}

impl Drop for WriterThread {
    /// Waits for the thread to answer what is queued and close its
    /// connection, as dropping a pool closes its own: whoever opens the
    /// file next (a migration, a test) finds it unlocked.
    fn drop(&mut self) {
        self.jobs.take();
        if let Some(handle) = self.handle.take() {
            let _ = handle.join();
        }
    }
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Writer")
    }
}

impl Writer {
    /// Opens the writer's own connection to `location` (a file: an
    /// in-memory database lives inside one connection, the pool's) and
    /// starts its thread.
    pub(crate) fn start(location: &Location) -> anyhow::Result<Self> {
        let mut connection = Some(pool::establish(location)?);
        let location = location.clone();
        let (jobs, queue) = mpsc::channel::<Box<dyn Job>>();
        let handle = std::thread::Builder::new()
            .name("sqlite-writer".to_owned())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut batch = vec![first];
                    while batch.len() < MOST_PER_COMMIT {
                        match queue.try_recv() {
                            Ok(job) => batch.push(job),
                            Err(_) => break,
                        }
                    }
                    if connection.is_none() {
                        connection = reopen(&location);
                    }
                    let Some(open) = connection.as_mut() else {
                        let closed = CommitFailure {
                            contention: true,
                            cause: "the SQLite writer cannot open the database".to_owned(),
                        };
                        for job in batch {
                            job.finish(Err(&closed));
                        }
                        continue;
                    };
                    if !commit_together(open, batch) {
                        // Closing the connection rolls back whatever a
                        // panic left open; the next batch opens another.
                        connection = None;
                    }
                }
            })?;
        Ok(Self {
            thread: Arc::new(WriterThread {
                jobs: Some(jobs),
                handle: Some(handle),
            }),
        })
    }

    /// Runs `work` in the next shared transaction and returns its result
    /// once that transaction committed.
    pub(crate) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&mut SqliteConnection) -> Result<T, StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Write {
            work: Some(work),
            result: None,
            reply,
        });
        self.thread
            .jobs
            .as_ref()
            .expect("only a dropped writer has no queue")
            .send(job)
            .map_err(|_| StoreError::Other(anyhow::anyhow!("the SQLite writer has stopped")))?;
        answer.await.unwrap_or_else(|_| {
            Err(StoreError::Other(anyhow::anyhow!(
                "the SQLite writer stopped before answering"
            )))
        })
    }
}

fn reopen(location: &Location) -> Option<SqliteConnection> {
    pool::establish(location)
        .inspect_err(
            |error| tracing::error!(%error, "the SQLite writer cannot reopen the database"),
        )
        .ok()
}

/// Runs `batch` in one `BEGIN IMMEDIATE` transaction, each write in its own
/// savepoint, commits, then answers every caller. `false` when a write
/// panicked: the connection is left inside a transaction Diesel lost track
/// of, and must not be used again.
fn commit_together(connection: &mut SqliteConnection, mut batch: Vec<Box<dyn Job>>) -> bool {
    let ran = catch_unwind(AssertUnwindSafe(|| {
        connection.immediate_transaction(|connection| {
            for job in &mut batch {
                job.run(connection);
            }
            Ok::<(), StoreError>(())
        })
    }));
    let (commit, usable) = match ran {
        Ok(Ok(())) => (Ok(()), true),
        Ok(Err(error)) => {
            let contention = match &error {
                StoreError::Diesel(error) | StoreError::NotCommitted(error) => is_contention(error),
                _ => false,
            };
            let cause = format!("{error:?}");
            (Err(CommitFailure { contention, cause }), true)
        }
        Err(_) => {
            let cause = "a write of this transaction panicked".to_owned();
            (
                Err(CommitFailure {
                    contention: false,
                    cause,
                }),
                false,
            )
        }
    };
    for job in batch {
        job.finish(commit.as_ref().copied());
    }
    usable
}

#[cfg(test)]
mod tests {
    use diesel::sql_types::BigInt;
    use diesel::QueryableByName;

    use super::*;

    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }

    fn file_location() -> (tempfile::TempDir, Location) {
        let dir = tempfile::tempdir().unwrap();
        let location = Location::parse(dir.path().join("w.db").to_str().unwrap()).unwrap();
        let mut connection = pool::establish(&location).unwrap();
        diesel::sql_query("CREATE TABLE t (v INTEGER NOT NULL UNIQUE)")
            .execute(&mut connection)
            .unwrap();
        (dir, location)
    }

    fn insert(v: i64) -> impl FnOnce(&mut SqliteConnection) -> Result<(), StoreError> + Send {
        move |connection| {
            diesel::sql_query(format!("INSERT INTO t (v) VALUES ({v})")).execute(connection)?;
            Ok(())
        }
    }

    fn count(location: &Location) -> i64 {
        let mut connection = pool::establish(location).unwrap();
        diesel::sql_query("SELECT COUNT(*) AS n FROM t")
            .get_result::<Count>(&mut connection)
            .unwrap()
            .n
    }

    #[tokio::test]
    async fn writes_at_once_commit_and_a_failing_one_is_rolled_back_alone() {
        let (_dir, location) = file_location();
        let writer = Writer::start(&location).unwrap();
        // 200 writes at once, one of which breaks the unique constraint.
        let results = futures::future::join_all((0..200).map(|i| {
            let writer = writer.clone();
            async move { writer.write(insert(if i == 150 { 7 } else { i })).await }
        }))
        .await;
        let failed: Vec<usize> = results
            .iter()
            .enumerate()
            .filter_map(|(i, result)| result.is_err().then_some(i))
            .collect();
        assert_eq!(failed, vec![150], "only the duplicate fails");
        assert_eq!(count(&location), 199, "every other write is durable");
    }

    #[tokio::test]
    async fn a_write_that_panics_fails_its_transaction_and_the_writer_goes_on() {
        let (_dir, location) = file_location();
        let writer = Writer::start(&location).unwrap();
        let panicking = writer.write(|_connection| -> Result<(), StoreError> {
            panic!("a scripted panic inside a write")
        });
        assert!(panicking.await.is_err());
        writer.write(insert(1)).await.unwrap();
        writer.write(insert(2)).await.unwrap();
        assert_eq!(count(&location), 2);
    }

    #[tokio::test]
    async fn a_value_comes_back_once_committed() {
        let (_dir, location) = file_location();
        let writer = Writer::start(&location).unwrap();
        let seen = writer
            .write(|connection| {
                insert(5)(connection)?;
                Ok(diesel::sql_query("SELECT COUNT(*) AS n FROM t")
                    .get_result::<Count>(connection)?
                    .n)
            })
            .await
            .unwrap();
        assert_eq!(seen, 1);
        assert_eq!(count(&location), 1, "visible to another connection");
    }
}
