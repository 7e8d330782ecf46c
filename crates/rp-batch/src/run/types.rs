//! What a run is told and what it tells: options, each row's outcome, the summary, errors.

use std::time::Duration;

use rp_model::PaymentId;
use rp_payout::{Error, PayoutState};

use crate::error::FileError;
use crate::id::BatchId;

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
    /// Rows by label ([`RowResult::label`]), in the order first seen.
    pub by_label: Vec<(String, u64)>,
}

impl RunSummary {
    /// Whether rows of the pass were left undone ([`RunSummary::not_started`]).
    pub fn stopped(&self) -> bool {
        self.not_started > 0
    }

    pub(super) fn count(&mut self, label: &str) {
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
