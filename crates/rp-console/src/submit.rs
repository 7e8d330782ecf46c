//! Submitting one payout from the console or the API: the same payout under its payment ID is
//! the payout as it stands (never a second one), another payout under it is a conflict, a new
//! one is recorded (its limits reserved) and sent in the background, and the answer waits
//! until it is recorded, so that its page or `GET` finds it. One the ledger has not recorded
//! within the wait is kept in [`Unrecorded`] until it is recorded or refused, so that the
//! console's confirmation of another payout to the same number names it.

use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

use rp_model::{Money, Msisdn, PaymentId, Payout};
use rp_payout::{Error, EventSource, PayoutRecord, Recorded};
use tokio::sync::oneshot;

use rp_batch::run::Holder;

use crate::Desk;

/// How long a submission waits by default for the ledger to record the payout
/// ([`Settings::record_wait`](crate::Settings::record_wait)): longer than the SQLite ledger
/// waits for another process's lock (10 s), so that its answer is exact: recorded, or refused
/// whole.
pub const RECORD_WAIT: Duration = Duration::from_secs(15);

/// What became of a submission.
#[derive(Debug)]
pub(crate) enum Submitted {
    /// The same payout was already recorded under this payment ID: nothing was sent.
    Existing(PayoutRecord),
    /// Recorded now, and being sent in the background (`None`: the call that recorded it did
    /// not hand the record over; the ledger has it).
    New(Option<PayoutRecord>),
}

/// Why a submission recorded nothing.
#[derive(Debug)]
pub(crate) enum NotSubmitted {
    /// Another payout holds this payment ID.
    Conflict(Holder),
    /// A batch's row not paid yet holds this payment ID for another payout: the ledger
    /// refused to record it ([`Error::PaymentIdHeld`], which names the row).
    Held(Error),
    /// Refused before it was recorded (over the limits, a conflict found on recording).
    Refused(Error),
    /// The ledger failed: nothing was recorded.
    Ledger(Error),
    /// The ledger had not recorded the payout when the wait (this long) ran out: it may still
    /// record it, and then send it. The same submission again tells which.
    NotYetRecorded(Duration),
}

/// What a person is told when `holder` holds `payment_id`: by what, and what to do.
pub(crate) fn held(holder: &Holder, payment_id: &PaymentId) -> String {
    match holder {
        Holder::PayoutWithMetadata => format!(
            "payment ID {payment_id} is recorded for a payout to the same phone, amount and \
             customer with other merchant's metadata (or none); nothing was changed or sent. \
             That payout is this payee's: check it before paying this payee again"
        ),
        _ => format!(
            "payment ID {payment_id} is recorded for a different payout; nothing was changed \
             or sent"
        ),
    }
}

/// Submits `payout` as `source` (see the module docs). The answer says what *this* call
/// found when it recorded: `New` only for the call that recorded it (others, at the same
/// moment, get `Existing` or `Conflict`).
pub(crate) async fn submit(
    desk: &Desk,
    payout: Payout,
    source: EventSource,
    metadata: Option<String>,
) -> Result<Submitted, NotSubmitted> {
    let store = desk.client().store().clone();
    let project = desk.client().project_id();
    let payment_id = payout.payment_id().clone();
    let (pending_phone, pending_amount) = (payout.phone(), payout.amount());
    let request = payout.to_request(project);
    // Recorded before: answered from the ledger, no call made.
    match store.get(&payment_id).await {
        Ok(Some(existing)) if existing.is_same_payout(&request, metadata.as_deref()) => {
            return Ok(Submitted::Existing(existing));
        }
        Ok(Some(existing)) => {
            return Err(NotSubmitted::Conflict(if existing.request == request {
                Holder::PayoutWithMetadata
            } else {
                Holder::Payout
            }));
        }
        Ok(None) => {}
        Err(error) => return Err(NotSubmitted::Ledger(error)),
    }
    // Not recorded. A batch's row not paid yet may hold the ID: the ledger then refuses to
    // record it (`Recorded::Held`) unless it is that row's very payout (a row carries no
    // metadata), as the row would then find it paid.
    let (recorded_tx, recorded_rx) = oneshot::channel();
    let (result_tx, result_rx) = oneshot::channel();
    let client = desk.client().clone();
    desk.run_in_background(async move {
        let result = client
            .payout_reporting(&payout, source, metadata, Some(recorded_tx))
            .await;
        if let Err(error) = &result {
            tracing::warn!(payment_id = %payout.payment_id(), %error, "payout did not succeed");
        }
        let _ = result_tx.send(result.map(|_| ()));
    });
    let wait = desk.settings().record_wait;
    let mut recorded_rx = recorded_rx;
    let recorded = match tokio::time::timeout(wait, &mut recorded_rx).await {
        Ok(Ok(recorded)) => recorded,
        // Failed before recording: the call's result says why.
        Ok(Err(_)) => {
            return match result_rx.await {
                Ok(Err(error)) if matches!(error, Error::Store { .. }) => {
                    Err(NotSubmitted::Ledger(error))
                }
                Ok(Err(error)) => Err(NotSubmitted::Refused(error)),
                Ok(Ok(())) => Ok(Submitted::New(None)),
                // The task stopped (a panic) before it recorded anything.
                Err(_) => Err(NotSubmitted::Ledger(Error::store(
                    format!("record payout {payment_id}"),
                    "the task recording it stopped before it did",
                ))),
            };
        }
        // The ledger is slow: recorded or refused later. Never answered as recorded, as the
        // process may stop before it is. Kept in `Unrecorded` until then.
        Err(_) => {
            let noted = desk.unrecorded().note(Pending {
                payment_id: payment_id.clone(),
                phone: pending_phone,
                amount: pending_amount,
                since: SystemTime::now(),
            });
            let watcher = desk.clone();
            desk.run_in_background(async move {
                let _ = recorded_rx.await;
                watcher.unrecorded().forget(noted);
            });
            return Err(NotSubmitted::NotYetRecorded(wait));
        }
    };
    match recorded {
        Recorded::New(record) => Ok(Submitted::New(Some(*record))),
        // Recorded by another call meanwhile, with the same request and metadata.
        Recorded::Existing(existing) => Ok(Submitted::Existing(*existing)),
        Recorded::Conflict => Err(NotSubmitted::Conflict(match result_rx.await {
            Ok(Err(Error::PaymentIdConflict {
                same_details: true, ..
            })) => Holder::PayoutWithMetadata,
            _ => Holder::Payout,
        })),
        // A batch's row holds the ID for another payout: that row, as the ledger has it.
        Recorded::Held(_) => Err(match result_rx.await {
            Ok(Err(error @ Error::PaymentIdHeld { .. })) => NotSubmitted::Held(error),
            Ok(Err(error)) => NotSubmitted::Refused(error),
            _ => NotSubmitted::Conflict(Holder::Payout),
        }),
        // Over the limits (or whatever a newer rp-payout reports): the call's own error.
        _ => match result_rx.await {
            Ok(Err(error)) => Err(NotSubmitted::Refused(error)),
            _ => Ok(Submitted::New(None)),
        },
    }
}

/// A submitted payout the ledger had not recorded when its answer was given.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    /// Its payment ID.
    pub(crate) payment_id: PaymentId,
    /// Whom it pays.
    pub(crate) phone: Msisdn,
    /// How much.
    pub(crate) amount: Money,
    /// When its answer said "not yet recorded".
    pub(crate) since: SystemTime,
}

/// The payouts this process submitted that the ledger has not recorded yet (nor refused):
/// each may still be recorded and sent. One entry per submission, forgotten when that
/// submission is recorded or refused: a payout submitted twice under its payment ID (the "not
/// yet recorded" page offers only that) stays named while either is pending. Another
/// instance's are not here.
#[derive(Debug, Default)]
pub(crate) struct Unrecorded {
    submissions: Mutex<Submissions>,
}

/// The pending submissions, each under the number [`Unrecorded::note`] gave it.
#[derive(Debug, Default)]
struct Submissions {
    last: u64,
    pending: Vec<(u64, Pending)>,
}

impl Unrecorded {
    /// Notes a submission; the number [`Unrecorded::forget`] takes.
    fn note(&self, pending: Pending) -> u64 {
        let mut all = self.lock();
        all.last += 1;
        let number = all.last;
        all.pending.push((number, pending));
        number
    }

    fn forget(&self, number: u64) {
        self.lock().pending.retain(|(n, _)| *n != number);
    }

    /// Those that pay `phone`, oldest first, each payment ID once.
    pub(crate) fn to(&self, phone: Msisdn) -> Vec<Pending> {
        let mut found: Vec<Pending> = Vec::new();
        for (_, pending) in &self.lock().pending {
            if pending.phone == phone && found.iter().all(|p| p.payment_id != pending.payment_id) {
                found.push(pending.clone());
            }
        }
        found
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Submissions> {
        self.submissions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

/// What a person is told when the ledger had not recorded `payment_id` within `wait`.
pub(crate) fn not_yet_recorded(payment_id: &PaymentId, wait: Duration) -> String {
    format!(
        "the ledger has not recorded payout {payment_id} within {} s; it may still record and \
         send it. Send the same payout again (same payment ID and details) to learn whether it \
         is recorded: it is never paid twice",
        wait.as_secs().max(1)
    )
}

/// What a refusal says to a person.
pub(crate) fn refusal(error: &Error) -> String {
    match error {
        Error::OverLimit { reason, .. } => {
            format!("not recorded, not sent: over the project's limits ({reason})")
        }
        Error::PaymentIdConflict { payment_id, .. } => {
            format!(
                "payment ID {payment_id} is already recorded for another payout; nothing was sent"
            )
        }
        other => format!("not sent: {other}"),
    }
}
