//! `run`: register a file as a batch in the ledger ([`register`]), then pay its rows through
//! a [`Client`] as one of any number of workers ([`run`]), at a bounded concurrency and rate,
//! resumable by running the same file again.
//!
//! The batch is registered whole before a tenge moves: every row with its cells, keyed by the
//! file's SHA-256 ([`BatchId`]), so the same file is never a second batch. Workers claim rows
//! with leases ([`rp_ledger::BatchStore`]); each row's payment ID is the file's (or derived
//! from the batch and the row number), and the client records each payout before sending it,
//! so a row taken over from a worker that died is resolved under the same payment ID, never
//! paid twice. A payment ID recorded for a different payout is caught before anything is
//! sent ([`preflight`]).

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::io::Cursor;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rp_ledger::{BatchStore, ClaimedRow, NewBatch, NewBatchRow, Registered, RowSource};
use rp_model::{PaymentId, ProjectId};
use rp_payout::{Client, Error, Owner, PayoutState};
use tokio::task::JoinSet;

use crate::check::CheckReport;
use crate::error::FileError;
use crate::id::BatchId;
use crate::reader::{BatchReader, Record};

/// How to run a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RunOptions {
    /// Payouts in flight at once (at least 1). Default 8.
    pub concurrency: usize,
    /// New payouts started per second at most; `None`: no limit. Default 20. (A 429 answer's
    /// `Retry-After` is honoured by each payout's own retries.)
    pub rate: Option<u32>,
    /// How long a claim on rows holds without being renewed (renewed every third of it while
    /// the worker makes progress): how long a worker on another machine that died, or one
    /// that stalled, keeps its rows. Default 60 s.
    pub lease: Duration,
}

impl RunOptions {
    /// Payouts in flight at once (at least 1).
    #[must_use]
    pub fn concurrency(mut self, concurrency: usize) -> Self {
        self.concurrency = concurrency.max(1);
        self
    }

    /// New payouts started per second at most (`None`: no limit).
    #[must_use]
    pub fn rate(mut self, rate: Option<u32>) -> Self {
        self.rate = rate;
        self
    }

    /// How long a claim on rows holds without being renewed (between 1 s and a day).
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.lease = lease.clamp(Duration::from_secs(1), rp_ledger::MAX_LEASE);
        self
    }
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 8,
            rate: Some(20),
            lease: Duration::from_secs(60),
        }
    }
}

/// What became of one row in this run.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RowResult {
    /// The payout as recorded after the call: its state label and the state.
    Sent(PayoutState),
    /// The call ended in an error; the payout may or may not exist on the platform
    /// ([`RowFailure::may_have_reached_platform`]).
    Failed(RowFailure),
}

/// Why a row's payout call failed, in words safe to show (phone numbers masked).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowFailure {
    /// A short label: `unknown`, `in_flight`, `over_limit`, `rejected`, `conflict`,
    /// `not_sent`, `record_failed`, `invalid`, `error`.
    pub label: &'static str,
    /// The error's message.
    pub message: String,
    /// Whether the payout may exist on the platform (never pay it under another ID).
    pub may_have_reached_platform: bool,
}

impl RowResult {
    /// The label counted in the progress and the summary: the state's
    /// ([`PayoutState::label`]) or the failure's.
    pub fn label(&self) -> &str {
        match self {
            RowResult::Sent(state) => state.label(),
            RowResult::Failed(failure) => failure.label,
        }
    }
}

/// One row done.
#[derive(Clone, Debug, PartialEq)]
pub struct RowOutcome {
    /// The row number (1-based).
    pub row: u64,
    /// The line it starts on.
    pub line: u64,
    /// Its payment ID (a row read as invalid may have none).
    pub payment_id: Option<PaymentId>,
    /// What became of it.
    pub result: RowResult,
}

/// How a run ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Rows whose payout call this worker finished.
    pub done: u64,
    /// Invalid rows of the batch, never sent.
    pub skipped_invalid: u64,
    /// Valid rows of the pass left undone when the run ended (stopped, or held by another
    /// worker that was still going).
    pub not_started: u64,
    /// True when rows were left undone.
    pub stopped: bool,
    /// Rows by label ([`RowResult::label`]), in the order first seen.
    pub by_label: Vec<(String, u64)>,
}

impl RunSummary {
    fn count(&mut self, label: &str) {
        match self.by_label.iter_mut().find(|(l, _)| l == label) {
            Some((_, n)) => *n += 1,
            None => self.by_label.push((label.to_owned(), 1)),
        }
    }

    /// How many rows ended with `label`.
    pub fn get(&self, label: &str) -> u64 {
        self.by_label
            .iter()
            .find(|(l, _)| l == label)
            .map_or(0, |(_, n)| *n)
    }
}

/// Why a run could not go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// The file could not be read.
    #[error(transparent)]
    File(#[from] FileError),
    /// The file is not the one that was checked: its SHA-256 changed.
    #[error(
        "the file changed since it was checked (its SHA-256 is now {now}, was {was}); nothing more is sent from it: run the new file as the new batch it is"
    )]
    Changed {
        /// The identity that was checked.
        was: BatchId,
        /// The identity read now.
        now: BatchId,
    },
    /// The ledger failed.
    #[error("{0}")]
    Store(#[from] Error),
    /// The batch is not in the ledger.
    #[error("batch {0} is not in the ledger: run its file (`rp batch run FILE`) to register it")]
    NotRegistered(BatchId),
    /// The report could not be written.
    #[error("cannot write the report: {0}")]
    Report(std::io::Error),
}

/// A row whose payment ID the ledger holds for a different payout: nothing is sent under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clash {
    /// The line.
    pub line: u64,
    /// The payment ID.
    pub payment_id: PaymentId,
}

impl fmt::Display for Clash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column payment_id: {} is already in the ledger for a different payout (phone, amount, customer or parameters differ); give this row a new payment ID",
            self.line, self.payment_id
        )
    }
}

/// Before a tenge moves: every valid row whose payment ID the ledger already holds for a
/// different payout (compared as the request that would be sent). Reads the file once more,
/// checking it is still batch `batch`.
///
/// # Errors
/// [`RunError`]: the file, a change of the file, the ledger.
pub async fn preflight(
    path: &Path,
    batch: BatchId,
    client: &Client,
) -> Result<Vec<Clash>, RunError> {
    let mut reader = open_same(path, batch)?;
    let mut clashes = Vec::new();
    let project = client.config().project_id;
    while let Some(record) = reader.next_record()? {
        let Record::Valid(row) = record else {
            continue;
        };
        if let Some(existing) = client.record(row.payout.payment_id()).await?
            && existing.request != row.payout.to_request(project)
        {
            clashes.push(Clash {
                line: row.line,
                payment_id: row.payout.payment_id().clone(),
            });
        }
    }
    Ok(clashes)
}

/// Registers batch `batch` (the file at `path`, checked as `report`) in `batches` of
/// `project`, every row with its cells and the hash of the request it pays, in one
/// transaction, unless it is registered already. Reads the file once more; if what it reads
/// is not batch `batch` (the file changed since it was checked), nothing is registered.
/// Memory stays flat.
///
/// # Errors
/// [`RunError`]: the file, a change of the file, the ledger.
pub async fn register(
    path: &Path,
    report: &CheckReport,
    batches: &dyn BatchStore,
    project: ProjectId,
) -> Result<Registered, RunError> {
    let batch = report.batch;
    let reader = open_same(path, batch)?;
    let file_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let new = NewBatch {
        id: batch.to_string(),
        file_name,
        delimiter: reader.delimiter(),
        header: reader.header_encoded(),
        rows: report.rows,
        valid_rows: report.valid_rows,
        totals: report
            .totals
            .iter()
            .map(|money| (money.currency().code().to_owned(), money.minor_units()))
            .collect(),
    };
    let rows: RowSource = Box::new(StoredRows {
        reader,
        batch,
        project,
    });
    Ok(batches.register(new, rows).await?)
}

/// The rows of a file as a ledger registers them.
struct StoredRows {
    reader: BatchReader<std::fs::File>,
    batch: BatchId,
    project: ProjectId,
}

impl Iterator for StoredRows {
    type Item = Result<NewBatchRow, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = match self.reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => return None,
            Err(error) => return Some(Err(format!("batch {}: {error}", self.batch))),
        };
        let cells = self.reader.last_cells_encoded();
        Some(Ok(match record {
            Record::Valid(row) => {
                let request = row.payout.to_request(self.project);
                let hash = match rp_ledger::request_sha256(&request) {
                    Ok(hash) => hash,
                    Err(error) => return Some(Err(error.to_string())),
                };
                NewBatchRow {
                    row: row.row,
                    line: row.line,
                    payment_id: Some(row.payout.payment_id().as_str().to_owned()),
                    request_sha256: Some(hash),
                    valid: true,
                    cells,
                    problems: None,
                }
            }
            Record::Invalid(invalid) => {
                let problems: Vec<String> =
                    invalid.errors.iter().map(ToString::to_string).collect();
                NewBatchRow {
                    row: invalid.row,
                    line: invalid.line,
                    payment_id: invalid.payment_id.map(PaymentId::into_string),
                    request_sha256: None,
                    valid: false,
                    cells,
                    problems: Some(problems.join("; ")),
                }
            }
        }))
    }
}

/// Pays the rows of batch `batch` (registered: see [`register`]) through `client`, as one of
/// any number of workers sharing the ledger: it claims rows with a lease
/// ([`BatchStore::claim`]), pays them with at most `options.concurrency` payouts in flight and
/// at most `options.rate` started a second, marks them done, and renews its lease while it
/// holds rows. It ends when no row of the pass is left to anyone: while another worker holds
/// rows it waits, and takes them over when that worker's lease expires (at once when the
/// worker was a process of this host that is gone). When the pass was over before it
/// started, it first starts a new one with the rows whose payout is not settled
/// ([`BatchStore::reopen`]): running the same file again resumes it, and never pays a row
/// twice. `on_row` hears of every row as its call ends, with the summary so far.
///
/// `stop` stops the run from taking new rows: the calls in flight finish and are recorded,
/// the rows claimed but not started are given back, and the summary says how many rows are
/// left.
///
/// # Errors
/// [`RunError`]: the batch is not registered, or the ledger failed (the payouts already
/// started are first finished and recorded). A payout that fails is not an error of the run:
/// it is the row's [`RowResult::Failed`].
pub async fn run(
    batch: BatchId,
    client: Arc<Client>,
    batches: Arc<dyn BatchStore>,
    options: RunOptions,
    stop: &AtomicBool,
    on_row: impl FnMut(&RowOutcome, &RunSummary),
) -> Result<RunSummary, RunError> {
    let id = batch.to_string();
    let Some(progress) = batches.progress(&id).await? else {
        return Err(RunError::NotRegistered(batch));
    };
    batches.reopen(&id).await?;
    let mut reader = stored_reader(&progress.info.batch, batch)?;
    let owner = Owner::new_client().token().to_owned();
    let mut worker = Worker {
        id: &id,
        owner: &owner,
        batches: batches.as_ref(),
        options,
        summary: RunSummary {
            skipped_invalid: progress
                .info
                .batch
                .rows
                .saturating_sub(progress.info.batch.valid_rows),
            ..RunSummary::default()
        },
        finished: Vec::new(),
        renewed: Instant::now(),
        on_row,
    };
    let result = worker.pay(&mut reader, &client, stop).await;
    let released = batches.release(&id, &owner).await;
    let mut summary = worker.summary;
    result?;
    released?;
    if let Some(now) = batches.progress(&id).await? {
        summary.not_started = now.undone;
        summary.stopped = now.undone > 0;
    }
    Ok(summary)
}

/// A reader of the rows as the ledger keeps them, for batch `batch`.
fn stored_reader(new: &NewBatch, batch: BatchId) -> Result<BatchReader<Cursor<Vec<u8>>>, RunError> {
    let mut header = new.header.clone();
    header.push(b'\n');
    Ok(BatchReader::new(Cursor::new(header), batch)?)
}

/// One worker's run over a batch.
struct Worker<'a, F> {
    id: &'a str,
    owner: &'a str,
    batches: &'a dyn BatchStore,
    options: RunOptions,
    summary: RunSummary,
    /// Rows whose call ended, not yet marked done in the ledger.
    finished: Vec<u64>,
    /// When the claims were last renewed (at the start: when the run began).
    renewed: Instant,
    on_row: F,
}

/// How long a worker waits before it looks again for rows another worker holds.
const WAIT_FOR_OTHERS: Duration = Duration::from_millis(500);

impl<F: FnMut(&RowOutcome, &RunSummary)> Worker<'_, F> {
    /// Claims and pays rows until none is left to anyone or `stop` is set; the calls in
    /// flight always finish, and the rows whose call ended are marked done.
    async fn pay(
        &mut self,
        reader: &mut BatchReader<Cursor<Vec<u8>>>,
        client: &Arc<Client>,
        stop: &AtomicBool,
    ) -> Result<(), RunError> {
        let mut in_flight: JoinSet<RowOutcome> = JoinSet::new();
        // Which row each call pays, to mark it done even if the call panicked.
        let mut rows: HashMap<tokio::task::Id, u64> = HashMap::new();
        let mut pace = self.options.rate.filter(|r| *r > 0).map(|rate| {
            let mut interval = tokio::time::interval(Duration::from_secs(1) / rate);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            interval
        });
        let concurrency = self.options.concurrency.max(1);
        let mut queue: VecDeque<ClaimedRow> = VecDeque::new();
        let mut failed = None;
        while !stop.load(Ordering::SeqCst) {
            self.renew_if_due().await;
            if queue.is_empty() {
                if let Err(error) = self.flush().await {
                    failed = Some(error);
                    break;
                }
                match self
                    .batches
                    .claim(self.id, self.owner, self.options.lease, concurrency)
                    .await
                {
                    // (`renewed` is not reset: the rows claimed before these need renewing
                    // on time, whatever claims follow.)
                    Ok(rows) => queue.extend(rows),
                    Err(error) => {
                        failed = Some(error.into());
                        break;
                    }
                }
            }
            let Some(claimed) = queue.pop_front() else {
                if let Some(done) = self.next_done(&mut in_flight).await {
                    self.finish(done, &mut rows);
                    continue;
                }
                // Nothing of ours in flight and nothing to claim: the pass is over, unless
                // another worker holds rows (wait, to take them over if it dies).
                match self.batches.progress(self.id).await {
                    Ok(Some(now)) if now.undone > 0 => {
                        tokio::time::sleep(WAIT_FOR_OTHERS).await;
                        continue;
                    }
                    Ok(_) => break,
                    Err(error) => {
                        failed = Some(error.into());
                        break;
                    }
                }
            };
            while in_flight.len() >= concurrency {
                if let Some(done) = self.next_done(&mut in_flight).await {
                    self.finish(done, &mut rows);
                }
            }
            if let Some(pace) = pace.as_mut() {
                pace.tick().await;
            }
            let row = match reader.read_stored(claimed.row, claimed.line, &claimed.cells) {
                Ok(Record::Valid(row)) => row,
                Ok(Record::Invalid(invalid)) => {
                    // Registered valid, read invalid now (a newer rp with stricter rules):
                    // never sent; reported as invalid.
                    let message: Vec<String> =
                        invalid.errors.iter().map(ToString::to_string).collect();
                    self.finished.push(claimed.row);
                    self.count(&RowOutcome {
                        row: claimed.row,
                        line: claimed.line,
                        payment_id: invalid.payment_id,
                        result: RowResult::Failed(RowFailure {
                            label: "invalid",
                            message: message.join("; "),
                            may_have_reached_platform: false,
                        }),
                    });
                    continue;
                }
                Err(error) => {
                    failed = Some(error.into());
                    break;
                }
            };
            let client = Arc::clone(client);
            let number = row.row;
            let task = in_flight.spawn(async move {
                let result = match client.payout(&row.payout).await {
                    Ok(receipt) => RowResult::Sent(receipt.state),
                    Err(error) => RowResult::Failed(failure(&error)),
                };
                RowOutcome {
                    row: row.row,
                    line: row.line,
                    payment_id: Some(row.payout.payment_id().clone()),
                    result,
                }
            });
            rows.insert(task.id(), number);
        }
        while let Some(done) = self.next_done(&mut in_flight).await {
            self.finish(done, &mut rows);
        }
        let flushed = self.flush().await;
        match failed {
            Some(error) => Err(error),
            None => flushed,
        }
    }

    /// The next call to end, renewing the claims while waiting for it.
    ///
    /// The claims are renewed by this loop, never behind its back: a worker that stops making
    /// progress (blocked writing to a terminal no one reads, say) lets its leases expire, and
    /// another worker takes its rows over.
    async fn next_done(
        &mut self,
        in_flight: &mut JoinSet<RowOutcome>,
    ) -> Option<Result<(tokio::task::Id, RowOutcome), tokio::task::JoinError>> {
        loop {
            let due = self.renewed + self.options.lease / 3;
            tokio::select! {
                done = in_flight.join_next_with_id() => return done,
                () = tokio::time::sleep_until(due.into()) => self.renew_if_due().await,
            }
        }
    }

    /// Renews the claims when a third of the lease has passed since they were last renewed.
    async fn renew_if_due(&mut self) {
        if self.renewed.elapsed() < self.options.lease / 3 {
            return;
        }
        self.renewed = Instant::now();
        if let Err(error) = self
            .batches
            .renew(self.id, self.owner, self.options.lease)
            .await
        {
            tracing::warn!(%error, "cannot renew the claims on the batch's rows");
        }
    }

    /// Counts a row whose call ended, to be marked done.
    fn finish(
        &mut self,
        done: Result<(tokio::task::Id, RowOutcome), tokio::task::JoinError>,
        rows: &mut HashMap<tokio::task::Id, u64>,
    ) {
        let task = match &done {
            Ok((task, _)) => *task,
            Err(error) => error.id(),
        };
        if let Some(row) = rows.remove(&task) {
            self.finished.push(row);
        }
        match done {
            Ok((_, outcome)) => self.count(&outcome),
            // A payout call panicked (the client does not): its payout stays as recorded,
            // for the next pass or reconcile to settle.
            Err(_) => {
                self.summary.done += 1;
                self.summary.count("error");
            }
        }
    }

    /// Counts a row's outcome and tells `on_row`.
    fn count(&mut self, outcome: &RowOutcome) {
        self.summary.done += 1;
        self.summary.count(outcome.result.label());
        (self.on_row)(outcome, &self.summary);
    }

    /// Marks the rows whose call ended done in the ledger.
    async fn flush(&mut self) -> Result<(), RunError> {
        if self.finished.is_empty() {
            return Ok(());
        }
        self.batches
            .finish(self.id, self.owner, &self.finished)
            .await?;
        self.finished.clear();
        Ok(())
    }
}

/// Opens `path` and checks it is still batch `batch`.
fn open_same(path: &Path, batch: BatchId) -> Result<BatchReader<std::fs::File>, RunError> {
    let reader = BatchReader::open(path)?;
    if reader.batch_id() != batch {
        return Err(RunError::Changed {
            was: batch,
            now: reader.batch_id(),
        });
    }
    Ok(reader)
}

/// A payout call's error as a row's failure.
fn failure(error: &Error) -> RowFailure {
    let label = match error {
        Error::OutcomeUnknown { .. } => "unknown",
        Error::InFlight { .. } => "in_flight",
        Error::RecordFailed { .. } => "record_failed",
        Error::OverLimit { .. } => "over_limit",
        Error::Rejected { .. } => "rejected",
        Error::PaymentIdConflict { .. } => "conflict",
        Error::NotSent { .. } | Error::Transport { .. } | Error::Store { .. } => "not_sent",
        _ => "error",
    };
    RowFailure {
        label,
        message: error.to_string(),
        may_have_reached_platform: error.may_have_reached_platform(),
    }
}
