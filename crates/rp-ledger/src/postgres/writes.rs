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
//! comes back with the record that stopped it, read in the same statement ([`UPDATE_BATCH`]);
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
use std::sync::{LazyLock, Mutex, PoisonError};

use deadpool_postgres::Client;
use tokio::sync::oneshot;
use tokio_postgres::types::ToSql;

use rp_payout::PayoutRecord;
use rp_transport::BoxFuture;

use super::rows::{self, EVENT_COLUMNS, EventRow, MUTABLE_COLUMNS, Mutable, RECORD_COLUMNS};
use super::store::usage_upsert;
use super::{PostgresLedger, connect::describe, pool_error};

/// Flushers writing at once: each holds one pooled connection while it writes.
pub(super) const MAX_FLUSHERS: usize = 2;

/// Writes in one batch at most.
pub(super) const MAX_BATCH: usize = 64;

/// One compare-and-set of a record with its event, as [`UPDATE_BATCH`] binds it.
#[derive(Debug)]
pub(super) struct Update {
    pub(super) project: i64,
    pub(super) payment_id: String,
    pub(super) expected: i64,
    pub(super) hash: String,
    pub(super) counts: bool,
    pub(super) mutable: Mutable,
    pub(super) event: EventRow,
}

/// What a compare-and-set came to, once its statement committed.
#[derive(Debug)]
pub(super) enum Outcome {
    /// It matched: the record and its event are written.
    Changed,
    /// It did not match; nothing was written. The record that stopped it, as it is now.
    Lost(Box<PayoutRecord>),
    /// It did not match, and the statement found no record to return (none is recorded, or
    /// its row could not be read back): the caller reads it.
    Unread,
}

/// The SQL types of the mutable columns, in the order of [`MUTABLE_COLUMNS`].
const MUTABLE_TYPES: [&str; 13] = [
    "text", "text", "boolean", "bigint", "text", "text", "text", "text", "boolean", "text",
    "bigint", "bigint", "bigint",
];

/// The SQL types of the event columns, in the order of [`EVENT_COLUMNS`].
const EVENT_TYPES: [&str; 8] = [
    "bigint", "text", "text", "text", "text", "text", "text", "text",
];

/// The compare-and-sets of one or more records, each with its event (with the new version)
/// and its change of usage: one array parameter per column, `$1` projects, `$2` payment IDs,
/// `$3` expected versions, `$4` request hashes (the request is immutable), `$5` whether each
/// now counts against the limits, then the mutable columns, then the event's columns. The
/// payouts table is joined to itself as `old`, the row the statement's snapshot sees: when
/// the compare-and-set matches, that is the row it replaces (any later change would have
/// moved the version), so `old.counts` says whether counting flipped. The usage changes of
/// the batch are summed per hour before they are added (one upsert may not touch a row
/// twice).
///
/// Returns one row per write: its ordinal (1-based), whether its compare-and-set matched,
/// and, when it did not, the record that stopped it ([`RECORD_COLUMNS`], all `NULL` when
/// there is none), so that a lost compare-and-set needs no second round trip. That record is
/// read `FOR SHARE`: under `READ COMMITTED` a locking read waits for a concurrent writer of
/// the row and returns its newest committed version (not the one of the statement's
/// snapshot), and the lock keeps it the newest until the statement commits: it is the
/// record a read after the statement would find.
static UPDATE_BATCH: LazyLock<String> = LazyLock::new(|| {
    let mut columns = vec![
        ("project_id", "bigint"),
        ("payment_id", "text"),
        ("expected", "bigint"),
        ("hash", "text"),
        ("counts", "boolean"),
    ];
    columns.extend(MUTABLE_COLUMNS.iter().copied().zip(MUTABLE_TYPES));
    let event_names: Vec<String> = EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("e_{c}"))
        .collect();
    columns.extend(event_names.iter().map(String::as_str).zip(EVENT_TYPES));
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{kind}[]", i + 1))
        .collect();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let assignments: Vec<String> = MUTABLE_COLUMNS
        .iter()
        .map(|c| format!("{c} = i.{c}"))
        .collect();
    let event_values: Vec<String> = event_names.iter().map(|c| format!("i.{c}")).collect();
    format!(
        "WITH input AS MATERIALIZED (SELECT * FROM unnest({}) WITH ORDINALITY AS i({}, ord)), \
         changed AS (UPDATE rp_ledger.payouts AS p SET {}, counts = i.counts, \
         version = p.version + 1 \
         FROM input AS i, rp_ledger.payouts AS old \
         WHERE p.project_id = i.project_id AND p.payment_id = i.payment_id \
         AND p.version = i.expected AND p.request_sha256 = i.hash \
         AND old.project_id = p.project_id AND old.payment_id = p.payment_id \
         RETURNING i.ord, p.project_id, p.payment_id, p.version, p.currency, p.usage_hour, \
         p.amount, p.counts, old.counts AS counted), \
         flipped AS (SELECT project_id, currency, usage_hour, \
         sum(CASE WHEN counts THEN amount ELSE -amount END)::bigint AS amount, \
         sum(CASE WHEN counts THEN 1 ELSE -1 END)::bigint AS count FROM changed \
         WHERE counts <> counted GROUP BY project_id, currency, usage_hour), \
         usage AS ({}), \
         events AS (INSERT INTO rp_ledger.payout_events (project_id, payment_id, version, \
         {EVENT_COLUMNS}) SELECT c.project_id, c.payment_id, c.version, {} \
         FROM changed AS c JOIN input AS i ON i.ord = c.ord), \
         lost AS (SELECT i.ord, {} FROM input AS i JOIN rp_ledger.payouts AS p \
         ON p.project_id = i.project_id AND p.payment_id = i.payment_id \
         WHERE NOT EXISTS (SELECT 1 FROM changed AS c WHERE c.ord = i.ord) FOR SHARE OF p) \
         SELECT i.ord, c.ord IS NOT NULL, {} FROM input AS i \
         LEFT JOIN changed AS c ON c.ord = i.ord LEFT JOIN lost AS l ON l.ord = i.ord",
        arrays.join(", "),
        names.join(", "),
        assignments.join(", "),
        usage_upsert("flipped"),
        event_values.join(", "),
        record_columns("p"),
        record_columns("l"),
    )
});

/// [`RECORD_COLUMNS`] of the table or subquery `alias`.
fn record_columns(alias: &str) -> String {
    RECORD_COLUMNS
        .split(", ")
        .map(|c| format!("{alias}.{c}"))
        .collect::<Vec<_>>()
        .join(", ")
}

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

    /// Writes `insert` (with others that arrive meanwhile): whether the record was new and
    /// is now written with its event, once committed; else the reason it failed.
    pub(super) async fn write_insert(&self, insert: Insert) -> Result<bool, String> {
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

impl Job for Update {
    type Answer = Outcome;

    fn key(&self) -> (i64, &str) {
        (self.project, &self.payment_id)
    }

    fn queue(ledger: &PostgresLedger) -> &Queue<Update> {
        &ledger.shared.updates
    }

    fn write_batch<'a>(
        client: &'a Client,
        jobs: &'a [Update],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, tokio_postgres::Error>> {
        Box::pin(update_batch(client, jobs))
    }

    fn wrote(answer: &Outcome) -> bool {
        matches!(answer, Outcome::Changed)
    }
}

/// The writes in one statement ([`UPDATE_BATCH`]): what each compare-and-set came to, in
/// the order of `updates`.
async fn update_batch(
    client: &Client,
    updates: &[Update],
) -> Result<Vec<Outcome>, tokio_postgres::Error> {
    let columns = Columns::of(updates);
    let statement = client.prepare_cached(&UPDATE_BATCH).await?;
    let rows = client.query(&statement, &columns.params()).await?;
    // A write the statement gave no row for is read by its caller (it does not happen).
    let mut outcomes: Vec<Outcome> = updates.iter().map(|_| Outcome::Unread).collect();
    for row in rows {
        let ord: i64 = row.try_get(0)?;
        let Some(slot) = usize::try_from(ord)
            .ok()
            .and_then(|o| o.checked_sub(1))
            .and_then(|i| outcomes.get_mut(i))
        else {
            continue;
        };
        *slot = if row.try_get(1)? {
            Outcome::Changed
        } else if row.try_get::<_, Option<String>>(2)?.is_none() {
            Outcome::Unread
        } else {
            // A row that does not read back as a record: the caller reads it again, and
            // reports what is wrong with it.
            rows::record_at(&row, 2).map_or(Outcome::Unread, |r| Outcome::Lost(Box::new(r)))
        };
    }
    Ok(outcomes)
}

/// The writes of a batch, column by column, as [`UPDATE_BATCH`]'s array parameters.
struct Columns {
    project: Vec<i64>,
    payment_id: Vec<String>,
    expected: Vec<i64>,
    hash: Vec<String>,
    counts: Vec<bool>,
    mutable: MutableColumns,
    event: EventColumns,
}

impl Columns {
    fn of(updates: &[Update]) -> Columns {
        fn column<T>(updates: &[Update], f: impl Fn(&Update) -> T) -> Vec<T> {
            updates.iter().map(f).collect()
        }
        Columns {
            project: column(updates, |u| u.project),
            payment_id: column(updates, |u| u.payment_id.clone()),
            expected: column(updates, |u| u.expected),
            hash: column(updates, |u| u.hash.clone()),
            counts: column(updates, |u| u.counts),
            mutable: MutableColumns::of(updates.iter().map(|u| &u.mutable)),
            event: EventColumns::of(updates.iter().map(|u| &u.event)),
        }
    }

    /// In the order of [`UPDATE_BATCH`]'s parameters.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.project,
            &self.payment_id,
            &self.expected,
            &self.hash,
            &self.counts,
        ];
        params.extend(self.mutable.params());
        params.extend(self.event.params());
        params
    }
}

/// The mutable columns of the records of a batch, in the order of [`MUTABLE_COLUMNS`].
struct MutableColumns {
    state: Vec<String>,
    state_label: Vec<String>,
    settled: Vec<bool>,
    updated_at: Vec<i64>,
    request_id: Vec<Option<String>>,
    last_code: Vec<Option<String>>,
    last_message: Vec<Option<String>>,
    attention: Vec<Option<String>>,
    maybe_sent: Vec<bool>,
    claimed_by: Vec<Option<String>>,
    attempts: Vec<i64>,
    lease_until: Vec<Option<i64>>,
    next_check_at: Vec<Option<i64>>,
}

impl MutableColumns {
    fn of<'a>(rows: impl Iterator<Item = &'a Mutable> + Clone) -> MutableColumns {
        fn column<'a, T>(
            rows: impl Iterator<Item = &'a Mutable>,
            f: impl Fn(&Mutable) -> T,
        ) -> Vec<T> {
            rows.map(f).collect()
        }
        MutableColumns {
            state: column(rows.clone(), |m| m.state.clone()),
            state_label: column(rows.clone(), |m| m.state_label.clone()),
            settled: column(rows.clone(), |m| m.settled),
            updated_at: column(rows.clone(), |m| m.updated_at),
            request_id: column(rows.clone(), |m| m.request_id.clone()),
            last_code: column(rows.clone(), |m| m.last_code.clone()),
            last_message: column(rows.clone(), |m| m.last_message.clone()),
            attention: column(rows.clone(), |m| m.attention.clone()),
            maybe_sent: column(rows.clone(), |m| m.maybe_sent),
            claimed_by: column(rows.clone(), |m| m.claimed_by.clone()),
            attempts: column(rows.clone(), |m| m.attempts),
            lease_until: column(rows.clone(), |m| m.lease_until),
            next_check_at: column(rows, |m| m.next_check_at),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 13] {
        [
            &self.state,
            &self.state_label,
            &self.settled,
            &self.updated_at,
            &self.request_id,
            &self.last_code,
            &self.last_message,
            &self.attention,
            &self.maybe_sent,
            &self.claimed_by,
            &self.attempts,
            &self.lease_until,
            &self.next_check_at,
        ]
    }
}

/// The events of a batch, in the order of [`EVENT_COLUMNS`].
struct EventColumns {
    at: Vec<i64>,
    source: Vec<String>,
    previous: Vec<Option<String>>,
    state: Vec<String>,
    code: Vec<Option<String>>,
    message: Vec<Option<String>>,
    note: Vec<Option<String>>,
    raw: Vec<Option<String>>,
}

impl EventColumns {
    fn of<'a>(rows: impl Iterator<Item = &'a EventRow> + Clone) -> EventColumns {
        fn column<'a, T>(
            rows: impl Iterator<Item = &'a EventRow>,
            f: impl Fn(&EventRow) -> T,
        ) -> Vec<T> {
            rows.map(f).collect()
        }
        EventColumns {
            at: column(rows.clone(), |e| e.at),
            source: column(rows.clone(), |e| e.source.clone()),
            previous: column(rows.clone(), |e| e.previous.clone()),
            state: column(rows.clone(), |e| e.state.clone()),
            code: column(rows.clone(), |e| e.code.clone()),
            message: column(rows.clone(), |e| e.message.clone()),
            note: column(rows.clone(), |e| e.note.clone()),
            raw: column(rows, |e| e.raw.clone()),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.at,
            &self.source,
            &self.previous,
            &self.state,
            &self.code,
            &self.message,
            &self.note,
            &self.raw,
        ]
    }
}

/// One insert of a record with its first event, unless its payment ID is recorded: the
/// columns of the record, then of its event.
#[derive(Debug)]
pub(super) struct Insert {
    pub(super) project: i64,
    pub(super) payment_id: String,
    pub(super) request: String,
    pub(super) hash: String,
    pub(super) phone: String,
    pub(super) amount: i64,
    pub(super) currency: String,
    pub(super) counts: bool,
    pub(super) version: i64,
    pub(super) created_at: i64,
    pub(super) mutable: Mutable,
    pub(super) event: EventRow,
}

/// The inserts of one or more records, each unless its payment ID is recorded (`ON CONFLICT
/// DO NOTHING` on the primary key), each with its first event and its usage, written only if
/// the record was: one array parameter per column, `$1` projects, `$2` payment IDs, `$3`
/// requests, `$4` their hashes, `$5` phones, `$6` amounts, `$7` currencies, `$8` whether each
/// counts against the limits, `$9` versions, `$10` creation times, then the mutable columns,
/// then the event's columns; the hour each counts in is the server's. The usage of the batch
/// is summed per hour before it is added (one upsert may not touch a row twice). Returns the
/// ordinal (1-based) of each write that inserted its record.
static INSERT_BATCH: LazyLock<String> = LazyLock::new(|| {
    let mut columns = vec![
        ("project_id", "bigint"),
        ("payment_id", "text"),
        ("request", "text"),
        ("request_sha256", "text"),
        ("phone", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("counts", "boolean"),
        ("version", "bigint"),
        ("created_at", "bigint"),
    ];
    columns.extend(MUTABLE_COLUMNS.iter().copied().zip(MUTABLE_TYPES));
    let record_names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let event_names: Vec<String> = EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("e_{c}"))
        .collect();
    columns.extend(event_names.iter().map(String::as_str).zip(EVENT_TYPES));
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{kind}[]", i + 1))
        .collect();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let event_values: Vec<String> = event_names.iter().map(|c| format!("i.{c}")).collect();
    format!(
        "WITH input AS MATERIALIZED (SELECT * FROM unnest({}) WITH ORDINALITY AS i({}, ord)), \
         inserted AS (INSERT INTO rp_ledger.payouts ({}, usage_hour) \
         SELECT {}, div(extract(epoch FROM clock_timestamp())::bigint, 3600) FROM input \
         ORDER BY ord ON CONFLICT (project_id, payment_id) DO NOTHING \
         RETURNING project_id, payment_id, currency, usage_hour, amount, counts), \
         usage AS ({}), \
         events AS (INSERT INTO rp_ledger.payout_events (project_id, payment_id, version, \
         {EVENT_COLUMNS}) SELECT i.project_id, i.payment_id, i.version, {} \
         FROM inserted AS n JOIN input AS i \
         ON i.project_id = n.project_id AND i.payment_id = n.payment_id) \
         SELECT i.ord FROM inserted AS n JOIN input AS i \
         ON i.project_id = n.project_id AND i.payment_id = n.payment_id",
        arrays.join(", "),
        names.join(", "),
        record_names.join(", "),
        record_names.join(", "),
        usage_upsert(
            "(SELECT project_id, currency, usage_hour, sum(amount)::bigint AS amount, \
             count(*)::bigint AS count FROM inserted WHERE counts \
             GROUP BY project_id, currency, usage_hour) AS new"
        ),
        event_values.join(", "),
    )
});

impl Job for Insert {
    type Answer = bool;

    fn key(&self) -> (i64, &str) {
        (self.project, &self.payment_id)
    }

    fn queue(ledger: &PostgresLedger) -> &Queue<Insert> {
        &ledger.shared.inserts
    }

    fn write_batch<'a>(
        client: &'a Client,
        jobs: &'a [Insert],
    ) -> BoxFuture<'a, Result<Vec<bool>, tokio_postgres::Error>> {
        Box::pin(insert_batch(client, jobs))
    }

    fn wrote(answer: &bool) -> bool {
        *answer
    }
}

/// The inserts in one statement ([`INSERT_BATCH`]): whether each inserted its record.
async fn insert_batch(
    client: &Client,
    inserts: &[Insert],
) -> Result<Vec<bool>, tokio_postgres::Error> {
    let columns = InsertColumns::of(inserts);
    let statement = client.prepare_cached(&INSERT_BATCH).await?;
    let rows = client.query(&statement, &columns.params()).await?;
    let mut inserted = vec![false; inserts.len()];
    for row in rows {
        let ord: i64 = row.try_get(0)?;
        if let Some(slot) = usize::try_from(ord)
            .ok()
            .and_then(|o| o.checked_sub(1))
            .and_then(|i| inserted.get_mut(i))
        {
            *slot = true;
        }
    }
    Ok(inserted)
}

/// The inserts of a batch, column by column, as [`INSERT_BATCH`]'s array parameters.
struct InsertColumns {
    project: Vec<i64>,
    payment_id: Vec<String>,
    request: Vec<String>,
    hash: Vec<String>,
    phone: Vec<String>,
    amount: Vec<i64>,
    currency: Vec<String>,
    counts: Vec<bool>,
    version: Vec<i64>,
    created_at: Vec<i64>,
    mutable: MutableColumns,
    event: EventColumns,
}

impl InsertColumns {
    fn of(inserts: &[Insert]) -> InsertColumns {
        fn column<T>(inserts: &[Insert], f: impl Fn(&Insert) -> T) -> Vec<T> {
            inserts.iter().map(f).collect()
        }
        InsertColumns {
            project: column(inserts, |i| i.project),
            payment_id: column(inserts, |i| i.payment_id.clone()),
            request: column(inserts, |i| i.request.clone()),
            hash: column(inserts, |i| i.hash.clone()),
            phone: column(inserts, |i| i.phone.clone()),
            amount: column(inserts, |i| i.amount),
            currency: column(inserts, |i| i.currency.clone()),
            counts: column(inserts, |i| i.counts),
            version: column(inserts, |i| i.version),
            created_at: column(inserts, |i| i.created_at),
            mutable: MutableColumns::of(inserts.iter().map(|i| &i.mutable)),
            event: EventColumns::of(inserts.iter().map(|i| &i.event)),
        }
    }

    /// In the order of [`INSERT_BATCH`]'s parameters.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.project,
            &self.payment_id,
            &self.request,
            &self.hash,
            &self.phone,
            &self.amount,
            &self.currency,
            &self.counts,
            &self.version,
            &self.created_at,
        ];
        params.extend(self.mutable.params());
        params.extend(self.event.params());
        params
    }
}

/// One read of a record by its payment ID ([`PostgresLedger::read`]), batched like the
/// writes: reads that arrive while others are being read are read together, in one
/// statement, on one connection.
#[derive(Debug)]
pub(super) struct Read {
    pub(super) project: i64,
    pub(super) payment_id: String,
}

/// The records of one or more payouts: `$1` projects, `$2` payment IDs. Returns the ordinal
/// (1-based) of each read whose record exists, then the record ([`RECORD_COLUMNS`]).
static READ_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT i.ord, {} FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY \
         AS i(project_id, payment_id, ord) JOIN rp_ledger.payouts AS p \
         ON p.project_id = i.project_id AND p.payment_id = i.payment_id",
        record_columns("p")
    )
});

impl Job for Read {
    /// The record, if there is one, or what is wrong with its row.
    type Answer = Result<Option<PayoutRecord>, String>;

    fn key(&self) -> (i64, &str) {
        (self.project, &self.payment_id)
    }

    fn queue(ledger: &PostgresLedger) -> &Queue<Read> {
        &ledger.shared.reads
    }

    fn write_batch<'a>(
        client: &'a Client,
        jobs: &'a [Read],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, tokio_postgres::Error>> {
        Box::pin(read_batch(client, jobs))
    }

    fn wrote(_: &Self::Answer) -> bool {
        false
    }
}

/// The reads in one statement ([`READ_BATCH`]): each record, in the order of `reads`.
async fn read_batch(
    client: &Client,
    reads: &[Read],
) -> Result<Vec<Result<Option<PayoutRecord>, String>>, tokio_postgres::Error> {
    let projects: Vec<i64> = reads.iter().map(|r| r.project).collect();
    let ids: Vec<&str> = reads.iter().map(|r| r.payment_id.as_str()).collect();
    let statement = client.prepare_cached(&READ_BATCH).await?;
    let rows = client.query(&statement, &[&projects, &ids]).await?;
    let mut records: Vec<Result<Option<PayoutRecord>, String>> =
        reads.iter().map(|_| Ok(None)).collect();
    for row in rows {
        let ord: i64 = row.try_get(0)?;
        if let Some(slot) = usize::try_from(ord)
            .ok()
            .and_then(|o| o.checked_sub(1))
            .and_then(|i| records.get_mut(i))
        {
            *slot = rows::record_at(&row, 1).map(Some);
        }
    }
    Ok(records)
}
