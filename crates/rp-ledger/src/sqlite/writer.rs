//! The writer thread of an SQLite ledger: the jobs queued to it, and the group commit that
//! writes whatever is queued in one transaction, each write in its own savepoint (see the
//! parent module).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;

use rp_payout::{Error, Inserted, PayoutEvent, PayoutRecord, Updated};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use super::{MAX_GROUP, store};

/// What the writer has done, for [`SqliteLedger::stats`](super::SqliteLedger::stats).
#[derive(Debug, Default)]
pub(super) struct Counters {
    pub(super) commits: AtomicU64,
    pub(super) writes: AtomicU64,
}

/// A reply to a queued job.
pub(super) type Reply<T> = oneshot::Sender<Result<T, Error>>;

/// What the writer thread does.
pub(super) enum Job {
    Write(Write),
    /// A read, for an in-memory ledger.
    Read(Box<dyn FnOnce(&Connection) + Send>),
    /// Work that runs its own transaction (the batches'), after the writes queued before it
    /// are committed.
    Exclusive(Box<dyn FnOnce(&mut Connection) + Send>),
}

/// A write, committed with the others queued beside it.
pub(super) enum Write {
    Insert {
        project: i64,
        record: Box<PayoutRecord>,
        event: Box<PayoutEvent>,
        limits: rp_model::Limits,
        reply: Reply<Inserted>,
    },
    Update {
        project: i64,
        expected: u64,
        record: Box<PayoutRecord>,
        event: Box<PayoutEvent>,
        reply: Reply<Updated>,
    },
    /// Any other write that may share a group (see `SqliteLedger::grouped`).
    Other(Box<dyn OtherWrite>),
}

/// A write of another kind than a payout's, type-erased so that the group holds any.
pub(super) trait OtherWrite: Send {
    /// Runs the write in its savepoint (see [`run`]); its answer waits for the commit.
    fn run(self: Box<Self>, conn: &Connection) -> (Done, Option<String>);
    /// Answers that the write could not be done.
    fn fail(self: Box<Self>, reason: &str);
}

/// A write given as a closure, its result sent to `reply` once its group committed.
pub(super) struct Work<T, F> {
    pub(super) what: String,
    pub(super) work: F,
    pub(super) reply: Reply<T>,
}

impl<T, F> OtherWrite for Work<T, F>
where
    T: Send + 'static,
    F: FnOnce(&Connection) -> Result<T, Error> + Send,
{
    fn run(self: Box<Self>, conn: &Connection) -> (Done, Option<String>) {
        let Work { what, work, reply } = *self;
        let (result, fatal) = in_savepoint(conn, work);
        let answer = move |failure: Option<&str>| {
            let result = match failure {
                None => result,
                Some(reason) => Err(Error::store(&what, reason)),
            };
            drop(reply.send(result));
        };
        (Done::Other(Box::new(answer)), fatal)
    }

    fn fail(self: Box<Self>, reason: &str) {
        drop(self.reply.send(Err(Error::store(&self.what, reason))));
    }
}

/// The writer thread: takes whatever is queued and commits it in one transaction.
pub(super) fn write_loop(mut conn: Connection, queue: &mpsc::Receiver<Job>, counters: &Counters) {
    while let Ok(first) = queue.recv() {
        let mut writes = Vec::new();
        let mut next = Some(first);
        while let Some(job) = next.take() {
            match job {
                Job::Read(read) => read(&conn),
                Job::Write(write) => writes.push(write),
                Job::Exclusive(work) => {
                    if !writes.is_empty() {
                        commit_group(&mut conn, std::mem::take(&mut writes), counters);
                    }
                    work(&mut conn);
                }
            }
            if writes.len() < MAX_GROUP {
                next = queue.try_recv().ok();
            }
        }
        if !writes.is_empty() {
            commit_group(&mut conn, writes, counters);
        }
    }
}

impl Write {
    /// Answers that the write could not be done.
    fn fail(self, reason: &str) {
        let error = || Error::store("start a ledger transaction", reason);
        match self {
            Write::Insert { reply, .. } => drop(reply.send(Err(error()))),
            Write::Update { reply, .. } => drop(reply.send(Err(error()))),
            Write::Other(other) => other.fail(reason),
        }
    }
}

/// A write done inside the group's transaction, answered once the group commits.
pub(super) enum Done {
    Insert(Reply<Inserted>, Result<Inserted, Error>),
    Update(Reply<Updated>, Result<Updated, Error>),
    /// Another write's answer.
    Other(Answer),
}

/// Sends a write's answer, given the reason its group did not commit (if it did not).
type Answer = Box<dyn FnOnce(Option<&str>) + Send>;

impl Done {
    /// Sends the result, or `failure` when the group did not commit. A receiver that went
    /// away (a dropped call) needs no answer.
    fn answer(self, failure: Option<&str>) {
        let fail = |reason: &str| Error::store("commit to the ledger", reason);
        match (self, failure) {
            (Done::Insert(reply, result), None) => drop(reply.send(result)),
            (Done::Insert(reply, _), Some(reason)) => drop(reply.send(Err(fail(reason)))),
            (Done::Update(reply, result), None) => drop(reply.send(result)),
            (Done::Update(reply, _), Some(reason)) => drop(reply.send(Err(fail(reason)))),
            (Done::Other(answer), failure) => answer(failure),
        }
    }
}

/// Commits a group, counts it, then answers every write in it.
fn commit_group(conn: &mut Connection, writes: Vec<Write>, counters: &Counters) {
    let tx = match conn.transaction_with_behavior(TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        Err(error) => {
            let reason = error.to_string();
            tracing::error!(%reason, "cannot start a ledger transaction");
            for write in writes {
                write.fail(&reason);
            }
            return;
        }
    };
    let mut done = Vec::with_capacity(writes.len());
    let mut pending = writes.into_iter();
    let mut aborted = None;
    for write in pending.by_ref() {
        let (one, fatal) = run(&tx, write);
        done.push(one);
        // SQLite may roll the whole transaction back (disk full, I/O error, out of memory):
        // then nothing of this group is written, and nothing may be answered as written.
        let gone = tx
            .is_autocommit()
            .then(|| "SQLite rolled the transaction back".to_owned());
        if let Some(reason) = fatal.or(gone) {
            aborted = Some(reason);
            break;
        }
    }
    if let Some(reason) = aborted {
        tracing::error!(%reason, "ledger transaction abandoned; nothing of this group was written");
        drop(tx); // rolls back what is left of it
        for one in done {
            one.answer(Some(&reason));
        }
        for write in pending {
            write.fail(&reason);
        }
        return;
    }
    let failure = tx.commit().err().map(|e| e.to_string());
    if let Some(reason) = &failure {
        tracing::error!(%reason, writes = done.len(), "ledger commit failed; nothing of this group was written");
    } else {
        // Counted before anyone hears of it, so a caller never sees its write uncounted.
        counters.commits.fetch_add(1, Ordering::Relaxed);
        let count = u64::try_from(done.len()).unwrap_or(u64::MAX);
        counters.writes.fetch_add(count, Ordering::Relaxed);
    }
    for one in done {
        one.answer(failure.as_deref());
    }
}

/// Runs one write of a group in its savepoint; also says why the group cannot go on, if the
/// failed write could not be rolled back alone.
fn run(tx: &Connection, write: Write) -> (Done, Option<String>) {
    match write {
        Write::Insert {
            project,
            record,
            event,
            limits,
            reply,
        } => {
            let (result, fatal) =
                in_savepoint(tx, |c| store::insert(c, project, &record, &event, limits));
            (Done::Insert(reply, result), fatal)
        }
        Write::Update {
            project,
            expected,
            record,
            event,
            reply,
        } => {
            let (result, fatal) =
                in_savepoint(tx, |c| store::update(c, project, expected, &record, &event));
            (Done::Update(reply, result), fatal)
        }
        Write::Other(other) => other.run(tx),
    }
}

/// Runs one write in a savepoint: rolled back alone when it fails, so the rest of the group
/// still commits. The second value says why the group must be abandoned: the failed write
/// could not be rolled back alone (its effects may be in the transaction).
fn in_savepoint<T>(
    conn: &Connection,
    write: impl FnOnce(&Connection) -> Result<T, Error>,
) -> (Result<T, Error>, Option<String>) {
    let failed = |e: rusqlite::Error| Error::store("write to the ledger", e);
    if let Err(error) = conn.execute_batch("SAVEPOINT one_write") {
        let reason = error.to_string();
        return (Err(failed(error)), Some(reason));
    }
    // A write that panics (a bug) fails alone, rolled back like any failed write: the writer
    // thread, which every write of the process goes through, goes on.
    let written = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| write(conn)))
        .unwrap_or_else(|_| {
            Err(Error::store(
                "write to the ledger",
                "the write failed unexpectedly (a bug); nothing of it was kept",
            ))
        });
    match written {
        Ok(value) => match conn.execute_batch("RELEASE one_write") {
            Ok(()) => (Ok(value), None),
            Err(error) => {
                let reason = error.to_string();
                (Err(failed(error)), Some(reason))
            }
        },
        Err(error) => match conn.execute_batch("ROLLBACK TO one_write; RELEASE one_write") {
            Ok(()) => (Err(error), None),
            Err(rollback) => {
                let reason = format!("a failed write could not be rolled back alone ({rollback})");
                (Err(error), Some(reason))
            }
        },
    }
}
