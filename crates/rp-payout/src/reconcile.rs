//! Reconciliation: ask the status endpoint about every overdue payout ([`Client::reconcile`]).

use std::time::{Duration, SystemTime};

use rp_model::PaymentId;

use crate::client::Origin;
use crate::store::{EventSource, PayoutRecord, PayoutState, StatusChange};
use crate::{Client, Error, PayoutReceipt};

/// Page size of [`Client::reconcile`]: it asks the store for this many unsettled payouts at a
/// time, and walks every page.
pub const RECONCILE_BATCH: usize = 500;

/// What [`Client::reconcile`] (and [`Client::reconcile_and_resume`]) did.
#[derive(Debug, Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct ReconcileReport {
    /// One entry per overdue payout asked about.
    pub entries: Vec<ReconcileEntry>,
    /// With [`Client::reconcile_and_resume`]: one entry per payout sent again.
    pub resent: Vec<ResendEntry>,
}

/// A payout that [`Client::reconcile_and_resume`] sent again under its payment ID.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ResendEntry {
    /// The payment ID.
    pub payment_id: PaymentId,
    /// What the resend did.
    pub result: ResendResult,
}

/// The result of sending a payout again ([`Client::resume`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResendResult {
    /// The platform has it now (accepted, or found by status).
    Sent(PayoutReceipt),
    /// The resend failed; `may_have_reached_platform` as in
    /// [`Error::may_have_reached_platform`]: when true the payout is recorded as unknown and
    /// reconciled again, never to be paid under a new payment ID.
    Failed {
        /// The error, as text.
        error: String,
        /// Whether the payout may exist on the platform.
        may_have_reached_platform: bool,
    },
}

/// One payout asked about during reconciliation.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ReconcileEntry {
    /// The payment ID.
    pub payment_id: PaymentId,
    /// What happened.
    pub result: ReconcileResult,
}

/// The result for one payout.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ReconcileResult {
    /// The recorded state changed.
    Updated {
        /// Before.
        previous: PayoutState,
        /// After.
        state: PayoutState,
    },
    /// The platform reported nothing new (or something the state rules ignore), or the payout
    /// is in flight (`Created`: a call is sending it; not asked about).
    Unchanged(PayoutState),
    /// The status request failed, or its answer could not be applied (e.g. an unsigned
    /// status response, see [`Config::with_unsigned_status`](crate::Config::with_unsigned_status));
    /// the payout is asked about again next time.
    Failed(String),
}

impl ReconcileReport {
    /// Payouts that are recorded but not registered on the platform, or ended in `error`:
    /// [`Client::resume`] sends them again under the same payment ID.
    pub fn needs_resend(&self) -> Vec<&PaymentId> {
        self.entries
            .iter()
            .filter(|e| match &e.result {
                ReconcileResult::Updated { state, .. } | ReconcileResult::Unchanged(state) => {
                    state.is_resendable()
                }
                ReconcileResult::Failed(_) => false,
            })
            .map(|e| &e.payment_id)
            .collect()
    }

    /// How many payouts changed state.
    pub fn updated(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.result, ReconcileResult::Updated { .. }))
            .count()
    }

    /// How many status requests failed.
    pub fn failed(&self) -> usize {
        self.entries
            .iter()
            .filter(|e| matches!(e.result, ReconcileResult::Failed(_)))
            .count()
    }
}

impl Client {
    /// Asks the status endpoint about every unsettled payout that has not changed for
    /// [`Config::overdue_after`](crate::Config::overdue_after), and applies the answers by the
    /// same rules as callbacks. A payout the platform does not know (3061) that was never
    /// accepted becomes [`PayoutState::NotRegistered`]; see [`ReconcileReport::needs_resend`].
    /// A payment the platform holds under the ID with another amount or currency is not
    /// adopted: the payout becomes [`PayoutState::PaymentIdTaken`]. A payout still in flight
    /// ([`PayoutState::Created`] within [`Config::in_flight_window`](crate::Config::in_flight_window))
    /// is not asked about: it is reported [`ReconcileResult::Unchanged`].
    /// Nothing is ever sent as a payout by this call.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store cannot list the payouts; failures for single payouts are
    /// in the report.
    pub async fn reconcile(&self) -> Result<ReconcileReport, Error> {
        let now = self.clock.now();
        let overdue_after = self.config.overdue_after;
        let mut report = ReconcileReport::default();
        // Every page: payouts that stay unsettled (in flight, waiting for a resend) must never
        // hide the ones behind them.
        let mut after = None;
        loop {
            let lease_now = self.lease_clock().await;
            let page = self.store.unsettled(after.take(), RECONCILE_BATCH).await?;
            let full = page.len() == RECONCILE_BATCH;
            after = page.last().map(|record| record.payment_id.clone());
            for record in page {
                let age = now.duration_since(record.updated_at).unwrap_or_default();
                let later = record.next_check_at.is_some_and(|at| at > now);
                if age < overdue_after || later {
                    continue;
                }
                let payment_id = record.payment_id.clone();
                let result = if self.in_flight(&record, lease_now) {
                    // A call is still sending it; the platform may answer 3061 for a while yet.
                    ReconcileResult::Unchanged(record.state.clone())
                } else if record.state == PayoutState::Created && record.attempts == 0 {
                    // Its sender stopped before sending anything: nothing to ask.
                    self.never_sent(&record).await
                } else {
                    let result = self.reconcile_one(&record).await;
                    // Asked, and nothing moved: ask again later, and later each time.
                    if matches!(
                        result,
                        ReconcileResult::Unchanged(_) | ReconcileResult::Failed(_)
                    ) {
                        self.check_later(&record, now).await;
                    }
                    result
                };
                tracing::info!(payment_id = %payment_id, ?result, "reconciled");
                report.entries.push(ReconcileEntry { payment_id, result });
            }
            if !full || after.is_none() {
                return Ok(report);
            }
        }
    }

    /// [`Client::reconcile`], then [`Client::resume`] for every payout it found not registered
    /// on the platform or ended in `error` ([`ReconcileReport::needs_resend`]): each is sent
    /// again under its **same** payment ID, one after the other (each may wait out the retry
    /// policy), and the results are in [`ReconcileReport::resent`]. Call it periodically.
    ///
    /// # Errors
    ///
    /// As [`Client::reconcile`]; failures of single payouts are in the report.
    pub async fn reconcile_and_resume(&self) -> Result<ReconcileReport, Error> {
        let mut report = self.reconcile().await?;
        let resend: Vec<PaymentId> = report.needs_resend().into_iter().cloned().collect();
        for payment_id in resend {
            let result = match self.resume(&payment_id).await {
                Ok(receipt) => ResendResult::Sent(receipt),
                Err(error) => ResendResult::Failed {
                    may_have_reached_platform: error.may_have_reached_platform(),
                    error: error.to_string(),
                },
            };
            tracing::info!(payment_id = %payment_id, ?result, "resent after reconcile");
            report.resent.push(ResendEntry { payment_id, result });
        }
        Ok(report)
    }

    /// Asks the platform about one payout now, whatever its next check time (an operator's
    /// "ask the status now"), by the rules of [`Client::reconcile`]: a payout in flight is
    /// not asked about ([`ReconcileResult::Unchanged`]), one never sent becomes
    /// [`PayoutState::NotRegistered`], a settled one is asked too (a reversal shows). Nothing
    /// is sent as a payout.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the payout is not recorded or the store fails; a failed status
    /// request is [`ReconcileResult::Failed`].
    pub async fn check_now(&self, payment_id: &PaymentId) -> Result<ReconcileResult, Error> {
        let record = self
            .store
            .get(payment_id)
            .await?
            .ok_or_else(|| Error::store(format!("find payout {payment_id}"), "not recorded"))?;
        let lease_now = self.lease_clock().await;
        let result = if self.in_flight(&record, lease_now) {
            ReconcileResult::Unchanged(record.state.clone())
        } else if record.state == PayoutState::Created && record.attempts == 0 {
            self.never_sent(&record).await
        } else {
            self.reconcile_one(&record).await
        };
        tracing::info!(payment_id = %payment_id, ?result, "status checked on request");
        Ok(result)
    }

    /// Writes `note` into the payout's history from `source` (e.g. which operator asked for
    /// a status check or a resend, before it is done), as a change of nothing but the
    /// record's version: a compare-and-set with its event, like every other change.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] when the payout is not recorded or the store fails.
    pub async fn note(
        &self,
        payment_id: &PaymentId,
        source: EventSource,
        note: impl Into<String>,
    ) -> Result<PayoutRecord, Error> {
        let origin = Origin::new(source).noted(note.into());
        let (record, ()) = self
            .change(payment_id, &origin, |current| (Some(current.clone()), ()))
            .await?;
        Ok(record)
    }

    /// Backs off: the next check of a payout that nothing changed waits a quarter of its age,
    /// between `overdue_after` (10 s at least) and an hour. A record that changed meanwhile is
    /// left for the next pass.
    async fn check_later(&self, listed: &PayoutRecord, now: SystemTime) {
        let age = now.duration_since(listed.created_at).unwrap_or_default();
        let floor = self.config.overdue_after.max(Duration::from_secs(10));
        let wait = (age / 4).clamp(floor, Duration::from_secs(3600).max(floor));
        let at = now + wait;
        let origin = Origin::new(EventSource::Reconcile).noted(format!(
            "nothing new from the platform; asked again in {} s",
            wait.as_secs()
        ));
        let scheduled = self
            .change(&listed.payment_id, &origin, |current| {
                if current.version != listed.version {
                    return (None, ());
                }
                let mut next = current.clone();
                next.next_check_at = Some(at);
                (Some(next), ())
            })
            .await;
        if let Err(error) = scheduled {
            tracing::warn!(payment_id = %listed.payment_id, %error, "could not schedule the next check; it is asked again next pass");
        }
    }

    /// A payout whose sender stopped before its first attempt (the attempt log is empty) is
    /// not on the platform: [`PayoutState::NotRegistered`], to be sent under its payment ID.
    async fn never_sent(&self, listed: &PayoutRecord) -> ReconcileResult {
        let origin = Origin::new(EventSource::Reconcile)
            .noted("never sent: its sender stopped before the first attempt".to_owned());
        let outcome = self
            .change(&listed.payment_id, &origin, |current| {
                if current.version != listed.version {
                    return (None, ());
                }
                let mut next = current.clone();
                next.state = PayoutState::NotRegistered;
                (Some(next), ())
            })
            .await;
        match outcome {
            Ok((record, ()))
                if record.version != listed.version
                    && record.state == PayoutState::NotRegistered =>
            {
                ReconcileResult::Updated {
                    previous: listed.state.clone(),
                    state: record.state,
                }
            }
            Ok((record, ())) => ReconcileResult::Unchanged(record.state),
            Err(error) => ReconcileResult::Failed(error.to_string()),
        }
    }

    async fn reconcile_one(&self, listed: &PayoutRecord) -> ReconcileResult {
        let payment_id = &listed.payment_id;
        let asked = self.status(payment_id).await;
        crate::failpoint::hit("reconcile-asked");
        match asked {
            Ok(status) => match self.apply_found(payment_id, status).await {
                Ok((record, StatusChange::Apply | StatusChange::Reversal, previous)) => {
                    ReconcileResult::Updated {
                        previous,
                        state: record.state,
                    }
                }
                Ok((record, _, _)) => ReconcileResult::Unchanged(record.state),
                Err(Error::PaymentIdConflict { .. }) => ReconcileResult::Updated {
                    previous: listed.state.clone(),
                    state: PayoutState::PaymentIdTaken,
                },
                Err(error) => ReconcileResult::Failed(error.to_string()),
            },
            Err(Error::NotFound {
                signature_verified: false,
                ..
            }) if !self.config.accept_unsigned_status => ReconcileResult::Failed(format!(
                "the platform answered 3061 (not found) for payment {payment_id} without a signature; not applied (only a signed answer changes a payout)"
            )),
            Err(Error::NotFound { .. }) => {
                let outcome = self
                    .change(
                        payment_id,
                        &Origin::new(EventSource::Reconcile),
                        |current| {
                            let never_accepted = matches!(
                                current.state,
                                PayoutState::Created | PayoutState::Unknown
                            );
                            // Changed since it was listed (e.g. claimed by a call that is sending
                            // it now): this 3061 may predate that; the next pass decides.
                            if !never_accepted || current.version != listed.version {
                                return (None, current.state.clone());
                            }
                            let mut next = current.clone();
                            next.state = PayoutState::NotRegistered;
                            (Some(next), current.state.clone())
                        },
                    )
                    .await;
                match outcome {
                    Ok((record, previous)) if record.state != previous => {
                        ReconcileResult::Updated {
                            previous,
                            state: record.state,
                        }
                    }
                    Ok((record, _))
                        if record.state == PayoutState::NotRegistered
                            || record.version != listed.version =>
                    {
                        ReconcileResult::Unchanged(record.state)
                    }
                    Ok((record, _)) => ReconcileResult::Failed(format!(
                        "the platform does not know payment {payment_id} (3061), but it is recorded as {}; check with support",
                        record.state
                    )),
                    Err(error) => ReconcileResult::Failed(error.to_string()),
                }
            }
            Err(error) => ReconcileResult::Failed(error.to_string()),
        }
    }
}
