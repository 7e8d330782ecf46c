//! Phase two of a run: one worker claiming rows and paying them.

use std::collections::{HashMap, VecDeque};
use std::io::Cursor;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rp_ledger::{BatchStore, ClaimedRow, NewBatch};
use rp_payout::{Client, Error, Owner};
use tokio::task::JoinSet;

use super::types::{RowFailure, RowOutcome, RowResult, RunError, RunOptions, RunSummary};
use crate::id::BatchId;
use crate::reader::{BatchReader, Record};

/// Pays the rows of batch `batch` (registered: see [`register`](super::register)) through `client`, as one of
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
    let Some(info) = batches.info(&id).await? else {
        return Err(RunError::NotRegistered(batch));
    };
    batches.reopen(&id).await?;
    let mut reader = stored_reader(&info.batch, batch)?;
    let owner = Owner::new_client().token().to_owned();
    let mut worker = Worker {
        id: &id,
        owner: &owner,
        batches: batches.as_ref(),
        options,
        summary: RunSummary {
            skipped_invalid: info.batch.rows.saturating_sub(info.batch.valid_rows),
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

/// A payout call's error as a row's failure.
fn failure(error: &Error) -> RowFailure {
    let label = match error {
        Error::OutcomeUnknown { .. } => "unknown",
        Error::InFlight { .. } => "in_flight",
        Error::RecordFailed { .. } => "record_failed",
        Error::OverLimit { .. } => "over_limit",
        Error::Rejected { .. } => "rejected",
        Error::PaymentIdConflict { .. } | Error::PaymentIdHeld { .. } => "conflict",
        Error::NotSent { .. } | Error::Transport { .. } | Error::Store { .. } => "not_sent",
        _ => "error",
    };
    RowFailure {
        label,
        message: error.to_string(),
        may_have_reached_platform: error.may_have_reached_platform(),
    }
}
