//! Group commit of compare-and-sets and of inserts: the writes that arrive while others are
//! being written are written together, in **one statement** (one round trip, one commit),
//! instead of one statement and one commit each. Updates ([`Update`]) and inserts without
//! limits ([`Insert`]) each have their own queue and flushers; so do the reads of a record by
//! its payment ID ([`Read`]), which are read together in one statement the same way.
//!
//! A write is queued; up to [`MAX_FLUSHERS`] flushers per queue run at once, each taking what
//! is queued (up to [`MAX_BATCH`] writes, never two of the same payout) and writing it: the
//! second only once [`BACKLOG`] writes wait, or a write has waited [`WATCH`], so that while
//! one flusher keeps up it writes bigger batches. Alone, a write is written at once, as a
//! batch of one, so a write waits only while a flusher is busy, and then for at most one
//! batch ahead of it. A compare-and-set that does not match
//! comes back with the record that stopped it, read in the same statement (`batched.rs`);
//! an insert that finds its payment ID recorded comes back as such. Each write keeps its
//! semantics: its compare-and-set, its event and its change of usage are in the
//! batch's statement, which is atomic and durable (committed with `synchronous_commit` at
//! least `on`) when the write returns. A batch statement that fails on a live connection (a
//! deadlock with another instance's writes, a value refused) is rolled back whole and written
//! again write by write, so each write reports its own outcome; when the connection is lost,
//! every write of the batch fails (the statement may have committed: writing it again could
//! apply a change twice). Within one ledger, a batch never holds a payout another batch is
//! writing, so this ledger's batches never wait for each other's row locks. A flusher's place
//! and its batch's payouts are given back however it ends (out of work, a panic, its task
//! dropped with its runtime), and a waiting write starts a flusher of its own when none runs.

use std::collections::{HashSet, VecDeque};
use std::sync::{Mutex, PoisonError};

use deadpool_postgres::Client;
use tokio::sync::oneshot;

use rp_payout::PayoutRecord;
use rp_transport::BoxFuture;

use super::batched::{Insert, Inserting, Outcome, Read, Update};
use super::{PostgresLedger, connect::describe, pool_error};

/// Flushers writing at once: each holds one pooled connection while it writes.
pub(super) const MAX_FLUSHERS: usize = 2;

/// Writes in one batch at most.
pub(super) const MAX_BATCH: usize = 64;

/// A kind of write that is queued and written in batches: the compare-and-sets
/// ([`Update`]) and the inserts ([`Insert`]) each have their own [`Queue`] and flushers.
pub(super) trait Job: Sized + Send + Sync + 'static {
    /// What a write of this kind comes to, once committed.
    type Answer: Send + 'static;

    /// The payout it writes: `(project, payment ID)`.
    fn key(&self) -> (i64, &str);

    /// The queue of this kind of write in `ledger`.
    fn queue(ledger: &PostgresLedger) -> &Queue<Self>;

    /// Writes `jobs` (distinct payouts) on `client`: one answer per job, in order, or why
    /// the whole statement failed.
    fn write_batch<'a>(
        client: &'a Client,
        jobs: &'a [Self],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, tokio_postgres::Error>>;

    /// Whether `answer` is a committed change (counted in [`PostgresLedger::stats`]).
    fn wrote(answer: &Self::Answer) -> bool;
}

/// A queued write and where its answer goes.
type Waiting<J> = (J, oneshot::Sender<Result<<J as Job>::Answer, String>>);

/// The writes of one kind waiting to be written, and how many flushers write them.
pub(super) struct Queue<J: Job> {
    state: Mutex<QueueState<J>>,
}

impl<J: Job> Default for Queue<J> {
    fn default() -> Self {
        Queue {
            state: Mutex::new(QueueState {
                pending: VecDeque::new(),
                flushers: 0,
                writing: HashSet::new(),
            }),
        }
    }
}

struct QueueState<J: Job> {
    pending: VecDeque<Waiting<J>>,
    flushers: usize,
    /// The payouts that a flusher is writing: a write of one of them waits for the next
    /// batch, so that the batches of this ledger never wait for each other's row locks.
    writing: HashSet<(i64, String)>,
}

impl<J: Job> Queue<J> {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState<J>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A flusher's place, given back when it is dropped, whatever ends the flusher: it ran out
/// of work, panicked, or its task was dropped before or while it ran (its runtime shut down).
struct FlusherSlot<J: Job> {
    ledger: PostgresLedger,
    /// The place was given back already (under the lock, by a flusher that ran out of work).
    released: bool,
    kind: std::marker::PhantomData<fn() -> J>,
}

impl<J: Job> Drop for FlusherSlot<J> {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let mut state = J::queue(&self.ledger).lock();
        state.flushers = state.flushers.saturating_sub(1);
        // A panicking flusher fails what waits rather than leave it to a flusher that may
        // panic the same way.
        if state.flushers == 0 && std::thread::panicking() {
            state.pending.clear();
        }
    }
}

/// The payouts of the batch a flusher writes, marked as being written until it is dropped,
/// whatever ends the write (a flusher dropped mid-write leaves no payout blocked).
struct Writing<'a, J: Job> {
    queue: &'a Queue<J>,
    keys: Vec<(i64, String)>,
}

impl<J: Job> Drop for Writing<'_, J> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        for key in &self.keys {
            state.writing.remove(key);
        }
    }
}

/// How many writes wait before a second flusher starts.
const BACKLOG: usize = MAX_BATCH / 4;

/// How often a waiting write checks that some flusher will write it.
const WATCH: std::time::Duration = std::time::Duration::from_millis(250);

impl PostgresLedger {
    /// Writes `update` (with others that arrive meanwhile): what its compare-and-set came
    /// to, once committed; else the reason it failed.
    pub(super) async fn write_update(&self, update: Update) -> Result<Outcome, String> {
        self.write(update).await
    }

    /// Writes `insert` (with others that arrive meanwhile): what it came to, once committed;
    /// else the reason it failed.
    pub(super) async fn write_insert(&self, insert: Insert) -> Result<Inserting, String> {
        self.write(insert).await
    }

    /// Reads the record of `read` (with others that arrive meanwhile): the record, if there
    /// is one; else the reason it could not be read.
    pub(super) async fn read(&self, read: Read) -> Result<Option<PayoutRecord>, String> {
        self.write(read).await?
    }

    /// Queues `job` and waits for its answer.
    async fn write<J: Job>(&self, job: J) -> Result<J::Answer, String> {
        let (sender, mut receiver) = oneshot::channel();
        J::queue(self).lock().pending.push_back((job, sender));
        self.start_flusher::<J>(false);
        loop {
            match tokio::time::timeout(WATCH, &mut receiver).await {
                Ok(answer) => {
                    return answer.unwrap_or_else(|_| {
                        Err("the write was abandoned (the runtime is shutting down?)".to_owned())
                    });
                }
                // The flushers of other runtimes may be gone (a runtime shut down with its
                // tasks): then this one starts a flusher, so that no write waits for ever.
                // A write that waited that long starts another flusher in any case (the
                // running ones may wait for row locks held elsewhere).
                Err(_) => self.start_flusher::<J>(true),
            }
        }
    }

    /// Starts a flusher on this runtime if writes wait and fewer than [`MAX_FLUSHERS`] run:
    /// the first at once; another only when [`BACKLOG`] writes wait or when `waited` (a
    /// write waited [`WATCH`]), so that one flusher writes bigger batches (fewer statements
    /// and commits) while it keeps up.
    fn start_flusher<J: Job>(&self, waited: bool) {
        {
            let mut state = J::queue(self).lock();
            let wanted = state.flushers == 0 || waited || state.pending.len() >= BACKLOG;
            if state.pending.is_empty() || state.flushers >= MAX_FLUSHERS || !wanted {
                return;
            }
            state.flushers += 1;
        }
        // The place is held by the task from the start: dropped unpolled, it gives it back.
        let slot = FlusherSlot::<J> {
            ledger: self.clone(),
            released: false,
            kind: std::marker::PhantomData,
        };
        tokio::spawn(flush(slot));
    }

    /// Writes `jobs` (distinct payouts): in one statement, or one by one if that fails.
    /// Each result: what the write came to, or why it failed.
    async fn run_batch<J: Job>(&self, jobs: &[J]) -> Vec<Result<J::Answer, String>> {
        let client = match self.shared.pool.get().await {
            Ok(client) => client,
            Err(e) => {
                let reason = format!("{}: {}", self.shared.name, pool_error(&e));
                return jobs.iter().map(|_| Err(reason.clone())).collect();
            }
        };
        if jobs.len() > 1 {
            match J::write_batch(&client, jobs).await {
                Ok(answers) if answers.len() == jobs.len() => {
                    for answer in &answers {
                        if J::wrote(answer) {
                            self.committed();
                        }
                    }
                    return answers.into_iter().map(Ok).collect();
                }
                Ok(answers) => {
                    // Committed, but not as asked: no write may be redone.
                    let reason = format!(
                        "{}: a batch of {} writes came back with {} answers",
                        self.shared.name,
                        jobs.len(),
                        answers.len()
                    );
                    return jobs.iter().map(|_| Err(reason.clone())).collect();
                }
                Err(error) => tracing::debug!(
                    error = %describe(&error),
                    writes = jobs.len(),
                    "ledger: a batch of writes failed; writing them one by one"
                ),
            }
        }
        let mut results = Vec::with_capacity(jobs.len());
        for job in jobs {
            let result = J::write_batch(&client, std::slice::from_ref(job))
                .await
                .map_err(|e| describe(&e))
                .and_then(|answers| {
                    answers
                        .into_iter()
                        .next()
                        .ok_or_else(|| "the write came back without its answer".to_owned())
                });
            if result.as_ref().is_ok_and(J::wrote) {
                self.committed();
            }
            results.push(result);
        }
        results
    }
}

/// Writes what is queued, batch by batch, until nothing is; `slot` is the flusher's place.
async fn flush<J: Job>(mut slot: FlusherSlot<J>) {
    let ledger = slot.ledger.clone();
    let queue = J::queue(&ledger);
    loop {
        let batch = {
            let mut state = queue.lock();
            let state = &mut *state;
            let batch = take_batch(&mut state.pending, &mut state.writing);
            if batch.is_empty() {
                // Give the place back under the lock: a write queued after this sees it.
                state.flushers = state.flushers.saturating_sub(1);
                slot.released = true;
                return;
            }
            batch
        };
        let (jobs, senders): (Vec<J>, Vec<_>) = batch.into_iter().unzip();
        let writing = Writing {
            queue,
            keys: jobs
                .iter()
                .map(|j| {
                    let (project, payment_id) = j.key();
                    (project, payment_id.to_owned())
                })
                .collect(),
        };
        let results = ledger.run_batch(&jobs).await;
        drop(writing);
        for (sender, result) in senders.into_iter().zip(results) {
            // A caller that stopped waiting: the write is done all the same.
            let _ = sender.send(result);
        }
    }
}

/// Takes up to [`MAX_BATCH`] writes off the front of `pending`, at most one per payout and
/// none of a payout in `writing` (such a write stays queued, in order, for a later batch),
/// sorted by payout so that rows are locked in one order; adds their payouts to `writing`.
fn take_batch<J: Job, T>(
    pending: &mut VecDeque<(J, T)>,
    writing: &mut HashSet<(i64, String)>,
) -> Vec<(J, T)> {
    let mut batch: Vec<(J, T)> = Vec::new();
    let seen = writing;
    let mut kept = VecDeque::new();
    while let Some(item) = pending.pop_front() {
        if batch.len() >= MAX_BATCH {
            kept.push_back(item);
            break;
        }
        let (project, payment_id) = item.0.key();
        if seen.insert((project, payment_id.to_owned())) {
            batch.push(item);
        } else {
            kept.push_back(item);
        }
    }
    kept.append(pending);
    *pending = kept;
    batch.sort_by(|a, b| a.0.key().cmp(&b.0.key()));
    batch
}
