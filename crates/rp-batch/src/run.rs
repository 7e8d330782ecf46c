//! `run`: pay every valid row of a file through a [`Client`], at a bounded concurrency and
//! rate, resumable by running the same file again; and the [`write_report`] of a run.
//!
//! A batch keeps no state of its own: **the file is the batch**. Every row's payment ID is
//! the file's (or derived from the file's SHA-256 and the row number), and the client records
//! each payout in its ledger before sending it, so running the same file again finds every
//! row it already paid and sends only what the platform does not have. A payment ID recorded
//! for a different payout is caught before anything is sent ([`preflight`]).

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rp_model::{PaymentId, PaymentStatus};
use rp_payout::{Client, Error, PayoutRecord, PayoutState, PayoutStore};
use tokio::task::JoinSet;

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
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions {
            concurrency: 8,
            rate: Some(20),
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
    /// `not_sent`, `record_failed`, `error`.
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
    /// Its payment ID.
    pub payment_id: PaymentId,
    /// What became of it.
    pub result: RowResult,
}

/// How a run ended.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RunSummary {
    /// Valid rows whose payout call finished.
    pub done: u64,
    /// Invalid rows skipped (run only with `skip_invalid`).
    pub skipped_invalid: u64,
    /// Rows not started because the run was stopped.
    pub not_started: u64,
    /// True when [`run`] was stopped before the end of the file.
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

/// Pays every valid row of the file at `path` (which must still be batch `batch`) through
/// `client`, in file order, with at most `options.concurrency` payouts in flight and at most
/// `options.rate` started a second. Invalid rows are skipped (check the file first: see
/// [`crate::check`]). `on_row` hears of every row as its call ends, with the summary so far.
///
/// `stop` stops the run from taking new rows: the calls in flight finish and are recorded,
/// and the summary says how many rows were not started. Running the same file again resumes
/// it: rows already paid are not paid again.
///
/// # Errors
/// [`RunError`]: the file cannot be read or changed (the payouts already started are first
/// finished and recorded). A payout that fails is not an error of the run: it is the row's
/// [`RowResult::Failed`].
pub async fn run(
    path: &Path,
    batch: BatchId,
    client: Arc<Client>,
    options: RunOptions,
    stop: &AtomicBool,
    mut on_row: impl FnMut(&RowOutcome, &RunSummary),
) -> Result<RunSummary, RunError> {
    let mut reader = open_same(path, batch)?;
    let mut summary = RunSummary::default();
    let mut in_flight: JoinSet<RowOutcome> = JoinSet::new();
    let mut pace = options.rate.filter(|r| *r > 0).map(|rate| {
        let mut interval = tokio::time::interval(Duration::from_secs(1) / rate);
        interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        interval
    });
    let concurrency = options.concurrency.max(1);
    let mut finish = |done: Result<RowOutcome, tokio::task::JoinError>,
                      summary: &mut RunSummary| {
        summary.done += 1;
        match done {
            Ok(outcome) => {
                summary.count(outcome.result.label());
                on_row(&outcome, summary);
            }
            // A payout call panicked (the client does not): its payout stays as recorded,
            // for the next run or reconcile to settle.
            Err(_) => summary.count("error"),
        }
    };
    // A file that stops reading ends the loop, never the calls in flight: they are drained
    // (and recorded) before the error is returned.
    let mut stopped_by = None;
    loop {
        let row = match reader.next_record() {
            Ok(Some(Record::Valid(row))) => row,
            Ok(Some(Record::Invalid(_))) => {
                summary.skipped_invalid += 1;
                continue;
            }
            Ok(None) => break,
            Err(error) => {
                stopped_by = Some(RunError::File(error));
                break;
            }
        };
        if stop.load(Ordering::SeqCst) {
            summary.stopped = true;
            summary.not_started += 1;
            continue;
        }
        while in_flight.len() >= concurrency {
            if let Some(done) = in_flight.join_next().await {
                finish(done, &mut summary);
            }
        }
        if let Some(pace) = pace.as_mut() {
            pace.tick().await;
        }
        let client = Arc::clone(&client);
        in_flight.spawn(async move {
            let result = match client.payout(&row.payout).await {
                Ok(receipt) => RowResult::Sent(receipt.state),
                Err(error) => RowResult::Failed(failure(&error)),
            };
            RowOutcome {
                row: row.row,
                line: row.line,
                payment_id: row.payout.payment_id().clone(),
                result,
            }
        });
    }
    while let Some(done) = in_flight.join_next().await {
        finish(done, &mut summary);
    }
    stopped_by.map_or(Ok(summary), Err)
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

/// Whether a recorded payout is final for a report: settled, or ended in `error`.
pub fn is_final(record: &PayoutRecord) -> bool {
    record.state.is_settled() || record.state == PayoutState::Status(PaymentStatus::Error)
}

/// The columns a report adds after the file's own.
pub const REPORT_COLUMNS: [&str; 8] = [
    "row",
    "payment_id",
    "state",
    "status",
    "code",
    "message",
    "request_id",
    "updated_at",
];

/// How many rows a report holds, by what it says of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportSummary {
    /// Rows written (every non-blank row of the file).
    pub rows: u64,
    /// Invalid rows (state `invalid`).
    pub invalid: u64,
    /// Valid rows the ledger does not hold (state `not_recorded`: not sent).
    pub not_recorded: u64,
    /// Rows whose payout is final ([`is_final`]).
    pub final_rows: u64,
}

/// Writes the report of batch `batch` (the file at `path`) to `out` as CSV, with the file's
/// delimiter: every row of the file in file order, its cells as they are, then
/// [`REPORT_COLUMNS`] from `store`. An invalid row has state `invalid` and its problems as
/// the message; a valid row the ledger does not hold has state `not_recorded`.
///
/// # Errors
/// [`RunError`]; [`RunError::Report`] when `out` cannot be written.
pub async fn write_report(
    path: &Path,
    batch: BatchId,
    store: &dyn PayoutStore,
    out: impl std::io::Write,
) -> Result<ReportSummary, RunError> {
    let mut reader = open_same(path, batch)?;
    let mut csv = csv::WriterBuilder::new()
        .delimiter(reader.delimiter())
        .from_writer(out);
    let write_error = |e: csv::Error| RunError::Report(std::io::Error::other(e));
    let header = reader.header().clone();
    let names = (0..header.width())
        .map(|i| header.column_at(i).map_or("", crate::Column::name))
        .chain(REPORT_COLUMNS);
    csv.write_record(names).map_err(write_error)?;
    let mut summary = ReportSummary::default();
    while let Some(record) = reader.next_record()? {
        summary.rows += 1;
        let mut cells: Vec<Vec<u8>> = reader.last_cells().map(<[u8]>::to_vec).collect();
        cells.resize(header.width(), Vec::new());
        let extra: [String; 8] = match &record {
            Record::Invalid(invalid) => {
                summary.invalid += 1;
                let problems: Vec<String> =
                    invalid.errors.iter().map(ToString::to_string).collect();
                [
                    invalid.row.to_string(),
                    invalid
                        .payment_id
                        .as_ref()
                        .map(ToString::to_string)
                        .unwrap_or_default(),
                    "invalid".to_owned(),
                    String::new(),
                    String::new(),
                    problems.join("; "),
                    String::new(),
                    String::new(),
                ]
            }
            Record::Valid(row) => {
                let id = row.payout.payment_id();
                match store.get(id).await? {
                    None => {
                        summary.not_recorded += 1;
                        [
                            row.row.to_string(),
                            id.to_string(),
                            "not_recorded".to_owned(),
                            String::new(),
                            String::new(),
                            "not sent: run the file again to send it".to_owned(),
                            String::new(),
                            String::new(),
                        ]
                    }
                    Some(recorded) => {
                        summary.final_rows += u64::from(is_final(&recorded));
                        report_cells(row.row, &recorded)
                    }
                }
            }
        };
        let extra = extra.iter().map(|cell| cell.as_bytes().to_vec());
        csv.write_record(cells.into_iter().chain(extra))
            .map_err(write_error)?;
    }
    csv.flush().map_err(RunError::Report)?;
    Ok(summary)
}

/// The report's cells of a recorded payout.
fn report_cells(row: u64, record: &PayoutRecord) -> [String; 8] {
    let status = match &record.state {
        PayoutState::Status(status) => status.as_str().to_owned(),
        _ => String::new(),
    };
    let updated = record
        .updated_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    [
        row.to_string(),
        record.payment_id.to_string(),
        record.state.label().to_owned(),
        status,
        record
            .last_code
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        record.last_message.clone().unwrap_or_default(),
        record.request_id.clone().unwrap_or_default(),
        rp_model::GateTime::from_unix_seconds(updated)
            .as_str()
            .to_owned(),
    ]
}

/// Where the valid rows of a file stand in the ledger ([`tally`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Rows by state ([`PayoutState::label`]), most first; rows the ledger does not hold count
    /// as `not_recorded`.
    pub by_label: Vec<(String, u64)>,
    /// Rows whose payout is not final yet (not recorded, or not [`is_final`]).
    pub open: u64,
}

/// Where every valid row of the file stands in `store` now.
///
/// # Errors
/// [`RunError`].
pub async fn tally(
    path: &Path,
    batch: BatchId,
    store: &dyn PayoutStore,
) -> Result<Tally, RunError> {
    let mut reader = open_same(path, batch)?;
    let mut counts = RunSummary::default();
    let mut open = 0;
    while let Some(record) = reader.next_record()? {
        if let Record::Valid(row) = record {
            let recorded = store.get(row.payout.payment_id()).await?;
            open += u64::from(!recorded.as_ref().is_some_and(is_final));
            counts.count(
                recorded
                    .as_ref()
                    .map_or("not_recorded", |r| r.state.label()),
            );
        }
    }
    let mut by_label = counts.by_label;
    by_label.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    Ok(Tally { by_label, open })
}
