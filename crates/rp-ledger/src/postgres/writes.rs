//! Group commit of compare-and-sets: the updates that arrive while others are being written
//! are written together, in **one statement** (one round trip, one commit), instead of one
//! statement and one commit each.
//!
//! A write is queued; up to [`MAX_FLUSHERS`] flushers run at once, each taking what is queued
//! (up to [`MAX_BATCH`] writes, never two of the same payout) and writing it. Alone, a write
//! is written at once, by the single-row statement ([`UPDATE_WITH_EVENT`]), so a write waits
//! only while the flushers are busy, and then for at most one batch ahead of it. Each write
//! keeps its semantics: its compare-and-set, its event and its change of usage are in the
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

use super::rows::{EVENT_COLUMNS, EventRow, MUTABLE_COLUMNS, Mutable};
use super::store::{UPDATE_WITH_EVENT, usage_upsert};
use super::{PostgresLedger, connect::describe, pool_error};

/// Flushers writing at once: each holds one pooled connection while it writes.
pub(super) const MAX_FLUSHERS: usize = 2;

/// Writes in one batch at most.
pub(super) const MAX_BATCH: usize = 64;

/// One compare-and-set of a record with its event, as [`UPDATE_WITH_EVENT`] binds it.
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

impl Update {
    /// The parameters of [`UPDATE_WITH_EVENT`].
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = self.mutable.params().to_vec();
        params.extend::<[&(dyn ToSql + Sync); 5]>([
            &self.project,
            &self.payment_id,
            &self.expected,
            &self.hash,
            &self.counts,
        ]);
        params.extend(self.event.params());
        params
    }
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

/// [`UPDATE_WITH_EVENT`] for many records: one array parameter per column, `$1` projects,
/// `$2` payment IDs, `$3` expected versions, `$4` request hashes, `$5` whether each counts
/// against the limits, then the mutable columns, then the event's columns. Returns the
/// ordinal (1-based) of each write whose compare-and-set matched. The usage changes of the
/// batch are summed per hour before they are added (one upsert may not touch a row twice).
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
         FROM changed AS c JOIN input AS i ON i.ord = c.ord) \
         SELECT ord FROM changed",
        arrays.join(", "),
        names.join(", "),
        assignments.join(", "),
        usage_upsert("flipped"),
        event_values.join(", "),
    )
});

/// The updates waiting to be written, and how many flushers write.
#[derive(Default)]
pub(super) struct UpdateQueue {
    state: Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    pending: VecDeque<(Update, oneshot::Sender<Result<bool, String>>)>,
    flushers: usize,
    /// The payouts that a flusher is writing: a write of one of them waits for the next
    /// batch, so that the batches of this ledger never wait for each other's row locks.
    writing: HashSet<(i64, String)>,
}

impl UpdateQueue {
    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A flusher's place, given back when it is dropped, whatever ends the flusher: it ran out
/// of work, panicked, or its task was dropped before or while it ran (its runtime shut down).
struct FlusherSlot {
    ledger: PostgresLedger,
    /// The place was given back already (under the lock, by a flusher that ran out of work).
    released: bool,
}

impl Drop for FlusherSlot {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let mut state = self.ledger.shared.updates.lock();
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
struct Writing<'a> {
    queue: &'a UpdateQueue,
    keys: Vec<(i64, String)>,
}

impl Drop for Writing<'_> {
    fn drop(&mut self) {
        let mut state = self.queue.lock();
        for key in &self.keys {
            state.writing.remove(key);
        }
    }
}

/// How often a waiting write checks that some flusher will write it.
const WATCH: std::time::Duration = std::time::Duration::from_millis(250);

impl PostgresLedger {
    /// Writes `update` (with others that arrive meanwhile): whether its compare-and-set
    /// matched, once committed; else the reason it failed.
    pub(super) async fn write_update(&self, update: Update) -> Result<bool, String> {
        let (sender, mut receiver) = oneshot::channel();
        self.shared
            .updates
            .lock()
            .pending
            .push_back((update, sender));
        self.start_flusher();
        loop {
            match tokio::time::timeout(WATCH, &mut receiver).await {
                Ok(answer) => {
                    return answer.unwrap_or_else(|_| {
                        Err("the write was abandoned (the runtime is shutting down?)".to_owned())
                    });
                }
                // The flushers of other runtimes may be gone (a runtime shut down with its
                // tasks): then this one starts a flusher, so that no write waits for ever.
                Err(_) => self.start_flusher(),
            }
        }
    }

    /// Starts a flusher on this runtime if writes wait and fewer than [`MAX_FLUSHERS`] run.
    fn start_flusher(&self) {
        {
            let mut state = self.shared.updates.lock();
            if state.pending.is_empty() || state.flushers >= MAX_FLUSHERS {
                return;
            }
            state.flushers += 1;
        }
        // The place is held by the task from the start: dropped unpolled, it gives it back.
        let slot = FlusherSlot {
            ledger: self.clone(),
            released: false,
        };
        tokio::spawn(flush_updates(slot));
    }

    /// Writes `updates` (distinct payouts): in one statement, or one by one if that fails.
    /// Each result: whether the compare-and-set matched, or why the write failed.
    async fn run_updates(&self, updates: &[Update]) -> Vec<Result<bool, String>> {
        let client = match self.shared.pool.get().await {
            Ok(client) => client,
            Err(e) => {
                let reason = format!("{}: {}", self.shared.name, pool_error(&e));
                return updates.iter().map(|_| Err(reason.clone())).collect();
            }
        };
        if updates.len() > 1 {
            match update_batch(&client, updates).await {
                Ok(changed) => {
                    let written = changed.iter().filter(|c| **c).count();
                    for _ in 0..written {
                        self.committed();
                    }
                    return changed.into_iter().map(Ok).collect();
                }
                Err(error) => tracing::debug!(
                    error = %describe(&error),
                    writes = updates.len(),
                    "ledger: a batch of updates failed; writing them one by one"
                ),
            }
        }
        let mut results = Vec::with_capacity(updates.len());
        for update in updates {
            let result = update_one(&client, update).await.map_err(|e| describe(&e));
            if result == Ok(true) {
                self.committed();
            }
            results.push(result);
        }
        results
    }
}

/// Writes what is queued, batch by batch, until nothing is; `slot` is the flusher's place.
async fn flush_updates(mut slot: FlusherSlot) {
    let ledger = slot.ledger.clone();
    let queue = &ledger.shared.updates;
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
        let (updates, senders): (Vec<Update>, Vec<_>) = batch.into_iter().unzip();
        let writing = Writing {
            queue,
            keys: updates
                .iter()
                .map(|u| (u.project, u.payment_id.clone()))
                .collect(),
        };
        let results = ledger.run_updates(&updates).await;
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
fn take_batch<T>(
    pending: &mut VecDeque<(Update, T)>,
    writing: &mut HashSet<(i64, String)>,
) -> Vec<(Update, T)> {
    let mut batch: Vec<(Update, T)> = Vec::new();
    let seen = writing;
    let mut kept = VecDeque::new();
    while let Some(item) = pending.pop_front() {
        if batch.len() >= MAX_BATCH {
            kept.push_back(item);
            break;
        }
        let key = (item.0.project, item.0.payment_id.clone());
        if seen.insert(key) {
            batch.push(item);
        } else {
            kept.push_back(item);
        }
    }
    kept.append(pending);
    *pending = kept;
    batch.sort_by(|a, b| (a.0.project, &a.0.payment_id).cmp(&(b.0.project, &b.0.payment_id)));
    batch
}

/// One write by the single-row statement: whether its compare-and-set matched.
async fn update_one(client: &Client, update: &Update) -> Result<bool, tokio_postgres::Error> {
    let statement = client.prepare_cached(&UPDATE_WITH_EVENT).await?;
    Ok(client.execute(&statement, &update.params()).await? > 0)
}

/// The writes in one statement ([`UPDATE_BATCH`]): whether each compare-and-set matched.
async fn update_batch(
    client: &Client,
    updates: &[Update],
) -> Result<Vec<bool>, tokio_postgres::Error> {
    let columns = Columns::of(updates);
    let statement = client.prepare_cached(&UPDATE_BATCH).await?;
    let rows = client.query(&statement, &columns.params()).await?;
    let mut changed = vec![false; updates.len()];
    for row in rows {
        let ord: i64 = row.try_get(0)?;
        if let Some(slot) = usize::try_from(ord)
            .ok()
            .and_then(|o| o.checked_sub(1))
            .and_then(|i| changed.get_mut(i))
        {
            *slot = true;
        }
    }
    Ok(changed)
}

/// The writes of a batch, column by column, as [`UPDATE_BATCH`]'s array parameters.
struct Columns {
    project: Vec<i64>,
    payment_id: Vec<String>,
    expected: Vec<i64>,
    hash: Vec<String>,
    counts: Vec<bool>,
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
    at: Vec<i64>,
    source: Vec<String>,
    previous: Vec<Option<String>>,
    event_state: Vec<String>,
    code: Vec<Option<String>>,
    message: Vec<Option<String>>,
    note: Vec<Option<String>>,
    raw: Vec<Option<String>>,
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
            state: column(updates, |u| u.mutable.state.clone()),
            state_label: column(updates, |u| u.mutable.state_label.clone()),
            settled: column(updates, |u| u.mutable.settled),
            updated_at: column(updates, |u| u.mutable.updated_at),
            request_id: column(updates, |u| u.mutable.request_id.clone()),
            last_code: column(updates, |u| u.mutable.last_code.clone()),
            last_message: column(updates, |u| u.mutable.last_message.clone()),
            attention: column(updates, |u| u.mutable.attention.clone()),
            maybe_sent: column(updates, |u| u.mutable.maybe_sent),
            claimed_by: column(updates, |u| u.mutable.claimed_by.clone()),
            attempts: column(updates, |u| u.mutable.attempts),
            lease_until: column(updates, |u| u.mutable.lease_until),
            next_check_at: column(updates, |u| u.mutable.next_check_at),
            at: column(updates, |u| u.event.at),
            source: column(updates, |u| u.event.source.clone()),
            previous: column(updates, |u| u.event.previous.clone()),
            event_state: column(updates, |u| u.event.state.clone()),
            code: column(updates, |u| u.event.code.clone()),
            message: column(updates, |u| u.event.message.clone()),
            note: column(updates, |u| u.event.note.clone()),
            raw: column(updates, |u| u.event.raw.clone()),
        }
    }

    /// In the order of [`UPDATE_BATCH`]'s parameters.
    fn params(&self) -> [&(dyn ToSql + Sync); 26] {
        [
            &self.project,
            &self.payment_id,
            &self.expected,
            &self.hash,
            &self.counts,
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
            &self.at,
            &self.source,
            &self.previous,
            &self.event_state,
            &self.code,
            &self.message,
            &self.note,
            &self.raw,
        ]
    }
}
