//! Submitting one payout from the console or the API: the same payout under its payment ID is
//! the payout as it stands (never a second one), another payout under it is a conflict, a new
//! one is recorded (its limits reserved) and sent in the background, and the answer waits
//! until it is recorded, so that its page or `GET` finds it.

use std::time::Duration;

use rp_model::Payout;
use rp_payout::{Error, EventSource, PayoutRecord};
use tokio::sync::oneshot;

use crate::Desk;

/// How long a submission waits for the payout to be recorded before it answers anyway.
const RECORD_WAIT: Duration = Duration::from_secs(5);

/// What became of a submission.
#[derive(Debug)]
pub(crate) enum Submitted {
    /// The same payout was already recorded under this payment ID: nothing was sent.
    Existing(PayoutRecord),
    /// Recorded now, and being sent in the background (`None`: not yet visible when the wait
    /// ran out; it is recorded or refused shortly).
    New(Option<PayoutRecord>),
}

/// Why a submission recorded nothing.
#[derive(Debug)]
pub(crate) enum NotSubmitted {
    /// Another payout is recorded under this payment ID.
    Conflict,
    /// Refused before it was recorded (over the limits, a conflict found on recording).
    Refused(Error),
    /// The ledger failed.
    Ledger(Error),
}

/// Submits `payout` as `source` (see the module docs).
pub(crate) async fn submit(
    desk: &Desk,
    payout: Payout,
    source: EventSource,
) -> Result<Submitted, NotSubmitted> {
    let store = desk.client().store().clone();
    let project = desk.client().project_id();
    let payment_id = payout.payment_id().clone();
    match store.get(&payment_id).await {
        Ok(Some(existing)) if existing.request == payout.to_request(project) => {
            return Ok(Submitted::Existing(existing));
        }
        Ok(Some(_)) => return Err(NotSubmitted::Conflict),
        Ok(None) => {}
        Err(error) => return Err(NotSubmitted::Ledger(error)),
    }
    let (result_tx, mut result_rx) = oneshot::channel();
    let client = desk.client().clone();
    desk.run_in_background(async move {
        let result = client.payout_as(&payout, source).await;
        if let Err(error) = &result {
            tracing::warn!(payment_id = %payout.payment_id(), %error, "payout did not succeed");
        }
        let _ = result_tx.send(result.map(|_| ()));
    });
    let deadline = tokio::time::Instant::now() + RECORD_WAIT;
    loop {
        let finished = result_rx.try_recv().ok();
        match store.get(&payment_id).await {
            Ok(Some(record)) => return Ok(Submitted::New(Some(record))),
            Ok(None) => {}
            Err(error) => return Err(NotSubmitted::Ledger(error)),
        }
        match finished {
            // Refused before it was recorded: nothing sent.
            Some(Err(error)) => return Err(NotSubmitted::Refused(error)),
            Some(Ok(())) => return Ok(Submitted::New(None)),
            None if tokio::time::Instant::now() >= deadline => return Ok(Submitted::New(None)),
            None => tokio::time::sleep(Duration::from_millis(20)).await,
        }
    }
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
