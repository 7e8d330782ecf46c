//! The SQLite ledger: one writer thread with group commit, concurrent readers, one
//! [`PayoutStore`] per project.
//!
//! Durability: WAL with `synchronous=FULL` (a commit is fsync'd before the writer answers, so a
//! recorded payout survives a power cut), foreign keys on, a busy timeout for other processes
//! on the same file. Writes never wait for each other's fsync: whatever is queued when the
//! writer starts a transaction is committed together ([`MAX_GROUP`] at most), each write in
//! its own savepoint, so a failed write is rolled back alone and the others commit. Payout
//! writes and the webhook sender's claims and attempts ride in the same groups (one fsync for
//! all of them); the rarer writes that need a transaction to themselves (batches, endpoints,
//! accounts) commit what is queued before them and then run alone.

mod access;
mod batch;
mod delivery;
mod rows;
mod schema;
mod store;
mod webhook;
mod writer;

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::time::{Duration, Instant};

use rp_model::ProjectId;
use rp_payout::Error;
use rusqlite::{Connection, OpenFlags, TransactionBehavior};
use tokio::sync::oneshot;

use crate::{LedgerError, LedgerStats};
use writer::{Counters, Job, Reply, Work, Write, write_loop};

pub use access::SqliteAccess;
pub use batch::SqliteBatches;
pub use schema::SCHEMA_VERSION;
pub use store::SqliteStore;
pub use webhook::SqliteWebhooks;

/// The most writes one transaction commits together.
pub const MAX_GROUP: usize = 256;

/// How long a writer or reader waits for another process's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Read connections kept open for reuse.
const MAX_IDLE_READERS: usize = 8;

/// An open SQLite ledger. Cheap to clone: clones share the writer and the readers.
#[derive(Clone)]
pub struct SqliteLedger {
    shared: Arc<Shared>,
}

struct Shared {
    /// The file, or `None` for an in-memory ledger (whose reads go through the writer: an
    /// in-memory database lives in one connection).
    path: Option<PathBuf>,
    /// The name used in messages.
    name: String,
    jobs: mpsc::Sender<Job>,
    readers: Mutex<Vec<Connection>>,
    stats: Arc<Counters>,
    /// Notified when a payout was recorded or changed ([`SqliteLedger::payout_changes`]).
    changes: Arc<tokio::sync::Notify>,
    /// The writer thread, joined when the last handle goes.
    writer: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl Drop for Shared {
    /// The last handle closes the ledger: the writer finishes what is queued, commits it and
    /// closes its connection (checkpointing the WAL) before this returns, so nothing is left
    /// half-closed behind the caller.
    fn drop(&mut self) {
        let (closed, _) = mpsc::channel();
        drop(std::mem::replace(&mut self.jobs, closed));
        let writer = self
            .writer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(writer) = writer
            && writer.join().is_err()
        {
            tracing::error!(ledger = %self.name, "the ledger writer thread panicked");
        }
    }
}

impl fmt::Debug for SqliteLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SqliteLedger")
            .field("ledger", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl SqliteLedger {
    /// Opens (creating and migrating if needed) the ledger file at `path`. Blocking.
    ///
    /// # Errors
    ///
    /// [`LedgerError`]: a missing directory, a read-only file, not a ledger, a newer schema.
    pub fn open_file(path: &Path) -> Result<SqliteLedger, LedgerError> {
        let name = path.display().to_string();
        let directory = path
            .parent()
            .filter(|d| !d.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        if !directory.is_dir() {
            return Err(LedgerError::File {
                path: name,
                reason: format!("its directory {} does not exist", directory.display()),
            });
        }
        if path.is_dir() {
            return Err(LedgerError::File {
                path: name,
                reason: "it is a directory; name a file in it, e.g. sqlite:DIR/ledger.db".into(),
            });
        }
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn =
            Connection::open_with_flags(path, flags).map_err(|e| match e.sqlite_error_code() {
                Some(rusqlite::ErrorCode::CannotOpen | rusqlite::ErrorCode::ReadOnly) => {
                    LedgerError::ReadOnly { path: name.clone() }
                }
                _ => schema::classify(&name, &e, "open the ledger"),
            })?;
        configure(&conn, &name)?;
        // The schema check first: another application's database is refused untouched.
        schema::migrate(&mut conn, &name)?;
        use_wal(&conn, &name)?;
        Ok(Self::start(conn, Some(path.to_path_buf()), name))
    }

    /// Opens a new, empty in-memory ledger (gone when the last clone is dropped).
    ///
    /// # Errors
    ///
    /// [`LedgerError::Backend`] if SQLite cannot create it.
    pub fn open_memory() -> Result<SqliteLedger, LedgerError> {
        let name = "sqlite::memory:".to_owned();
        let mut conn = Connection::open_in_memory()
            .map_err(|e| schema::classify(&name, &e, "open the ledger"))?;
        configure(&conn, &name)?;
        schema::migrate(&mut conn, &name)?;
        Ok(Self::start(conn, None, name))
    }

    fn start(conn: Connection, path: Option<PathBuf>, name: String) -> SqliteLedger {
        let (jobs, queue) = mpsc::channel();
        let stats = Arc::new(Counters::default());
        let counters = Arc::clone(&stats);
        static WRITERS: AtomicU64 = AtomicU64::new(0);
        let n = WRITERS.fetch_add(1, Ordering::Relaxed);
        let spawned = std::thread::Builder::new()
            .name(format!("rp-ledger-writer-{n}"))
            .spawn(move || write_loop(conn, &queue, &counters));
        let writer = match spawned {
            Ok(writer) => Some(writer),
            Err(error) => {
                // Without a writer every write fails with a clear error (the queue is closed).
                tracing::error!(%error, "cannot start the ledger writer thread");
                None
            }
        };
        SqliteLedger {
            shared: Arc::new(Shared {
                path,
                name,
                jobs,
                readers: Mutex::new(Vec::new()),
                stats,
                changes: Arc::default(),
                writer: Mutex::new(writer),
            }),
        }
    }

    /// Notified each time this process recorded or changed a payout in the ledger (the
    /// change, and the webhook deliveries it made, committed): a webhook sender waits on it.
    pub fn payout_changes(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.shared.changes)
    }

    /// Says a payout was recorded or changed (see [`SqliteLedger::payout_changes`]).
    pub(crate) fn payout_changed(&self) {
        self.shared.changes.notify_one();
    }

    /// How much the writer has committed since the ledger was opened.
    pub fn stats(&self) -> LedgerStats {
        LedgerStats {
            commits: self.shared.stats.commits.load(Ordering::Relaxed),
            writes: self.shared.stats.writes.load(Ordering::Relaxed),
        }
    }

    /// The payouts of `project`.
    pub fn store(&self, project: ProjectId) -> SqliteStore {
        SqliteStore::new(self.clone(), project)
    }

    /// The batches of `project`.
    pub fn batches(&self, project: ProjectId) -> SqliteBatches {
        SqliteBatches::new(self.clone(), project)
    }

    /// The webhook endpoints and deliveries of `project`.
    pub fn webhooks(&self, project: ProjectId) -> SqliteWebhooks {
        SqliteWebhooks::new(self.clone(), project)
    }

    /// The console's operators and sessions, and the API's keys, of `project`.
    pub fn access(&self, project: ProjectId) -> SqliteAccess {
        SqliteAccess::new(self.clone(), project)
    }

    /// Queues a job for the writer thread and waits for its answer (a write's: after its commit).
    async fn write<T>(&self, job: impl FnOnce(Reply<T>) -> Job, what: &str) -> Result<T, Error> {
        let (reply, answer) = oneshot::channel();
        self.shared
            .jobs
            .send(job(reply))
            .map_err(|_| Error::store(what, "the ledger writer has stopped"))?;
        answer
            .await
            .map_err(|_| Error::store(what, "the ledger writer stopped before answering"))?
    }

    /// Runs `work` in the writer's next group transaction, in its own savepoint (rolled back
    /// alone when it fails), and answers once the group committed: for short writes that
    /// need no transaction to themselves, so that many share one fsync.
    async fn grouped<T: Send + 'static>(
        &self,
        what: String,
        work: impl FnOnce(&Connection) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let task = what.clone();
        self.write(
            |reply| Job::Write(Write::Other(Box::new(Work { what, work, reply }))),
            &task,
        )
        .await
    }

    /// Runs `work` in its own `BEGIN IMMEDIATE` transaction on the writer's connection,
    /// committed before it answers (rolled back when it fails).
    async fn exclusive<T: Send + 'static>(
        &self,
        what: String,
        work: impl FnOnce(&rusqlite::Transaction<'_>) -> Result<T, Error> + Send + 'static,
    ) -> Result<T, Error> {
        let failed = |what: &str, e: &dyn fmt::Display| Error::store(what, e);
        let task = what.clone();
        let job = |reply: Reply<T>| {
            Job::Exclusive(Box::new(move |conn: &mut Connection| {
                // A panic (a bug) rolls the transaction back (dropped while unwinding) and
                // fails this work alone: the writer thread goes on.
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                    conn.transaction_with_behavior(TransactionBehavior::Immediate)
                        .map_err(|e| failed(&task, &e))
                        .and_then(|tx| {
                            let value = work(&tx)?;
                            tx.commit().map_err(|e| failed(&task, &e))?;
                            Ok(value)
                        })
                }))
                .unwrap_or_else(|_| {
                    Err(failed(&task, &"failed unexpectedly (a bug); rolled back"))
                });
                let _ = reply.send(result);
            }))
        };
        self.write(job, &what).await
    }

    /// Runs a read on a read connection (off the async threads), or through the writer for an
    /// in-memory ledger.
    async fn read<T: Send + 'static>(
        &self,
        what: String,
        read: impl FnOnce(&Connection) -> rusqlite::Result<T> + Send + 'static,
    ) -> Result<T, Error> {
        let failed = |what: &str, e: &dyn fmt::Display| Error::store(what, e);
        if self.shared.path.is_none() {
            let (reply, answer) = oneshot::channel();
            let job = Job::Read(Box::new(move |conn| {
                let _ = reply.send(read(conn));
            }));
            self.shared
                .jobs
                .send(job)
                .map_err(|_| Error::store(&what, "the ledger writer has stopped"))?;
            return answer
                .await
                .map_err(|e| failed(&what, &e))?
                .map_err(|e| failed(&what, &e));
        }
        let shared = Arc::clone(&self.shared);
        let result = tokio::task::spawn_blocking(move || {
            let conn = match shared.take_reader() {
                Ok(conn) => conn,
                Err(e) => return Err(e),
            };
            let result = read(&conn);
            shared.put_reader(conn);
            result
        })
        .await
        .map_err(|e| failed(&what, &e))?;
        result.map_err(|e| failed(&what, &e))
    }
}

impl Shared {
    fn take_reader(&self) -> rusqlite::Result<Connection> {
        let idle = self
            .readers
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop();
        if let Some(conn) = idle {
            return Ok(conn);
        }
        let Some(path) = &self.path else {
            return Err(rusqlite::Error::InvalidPath(PathBuf::from(&self.name)));
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = Connection::open_with_flags(path, flags)?;
        conn.busy_timeout(BUSY_TIMEOUT)?;
        conn.pragma_update(None, "query_only", true)?;
        Ok(conn)
    }

    fn put_reader(&self, conn: Connection) {
        let mut idle = self.readers.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE_READERS {
            idle.push(conn);
        }
    }
}

/// `synchronous=FULL`, foreign keys, busy timeout, and temporary data in memory: settings of
/// the connection, not the file.
///
/// Temporary data is mostly the savepoints' journals (each write of a group runs in one, so
/// that it can fail alone): kept in files, every page a write touched was copied to disk
/// first, several times a payout. They are never needed after a crash (the WAL is what
/// recovers), so memory is where they belong. Only the writer's connection is configured so:
/// its sorts are small (a migration's new index aside), while read connections keep SQLite's
/// default, so that a large read (an export) spills its sort to a file instead of growing in
/// memory.
fn configure(conn: &Connection, name: &str) -> Result<(), LedgerError> {
    let fail = |e: rusqlite::Error| schema::classify(name, &e, "configure the ledger");
    conn.busy_timeout(BUSY_TIMEOUT).map_err(fail)?;
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(fail)?;
    conn.pragma_update(None, "temp_store", "MEMORY")
        .map_err(fail)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(fail)?;
    Ok(())
}

/// WAL mode (a setting of the file: only once it is known to be a ledger).
///
/// Switching needs the file to itself, and SQLite answers "busy" at once, without waiting,
/// when the switch could deadlock with another connection's write (another process opening
/// the same new ledger and migrating it): retried until [`BUSY_TIMEOUT`].
fn use_wal(conn: &Connection, name: &str) -> Result<(), LedgerError> {
    let started = Instant::now();
    let mode: String = loop {
        match conn.query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0)) {
            Err(e)
                if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy)
                    && started.elapsed() < BUSY_TIMEOUT =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            result => break result,
        }
    }
    .map_err(|e| schema::classify(name, &e, "configure the ledger"))?;
    if mode.eq_ignore_ascii_case("wal") {
        Ok(())
    } else {
        Err(LedgerError::File {
            path: name.to_owned(),
            reason: format!(
                "SQLite refused WAL mode (journal mode {mode}): is it on a network file system?"
            ),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The savepoints' journals stay in memory: in files, every page a write touched was
    /// written to disk once more (SQLite's default, 0, means files here).
    #[test]
    fn connections_keep_temporary_data_in_memory() {
        let conn = Connection::open_in_memory().unwrap();
        configure(&conn, "test").unwrap();
        let store: i64 = conn
            .query_row("PRAGMA temp_store", [], |row| row.get(0))
            .unwrap();
        assert_eq!(store, 2, "temp_store: 2 is MEMORY");
    }
}
