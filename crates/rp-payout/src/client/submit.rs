//! Submitting a payout: record it before the first byte is sent, or, for a payout already
//! recorded, decide what is safe to send ([`Client::payout`], [`Client::resume`]).

use std::time::SystemTime;

use rp_model::{PaymentId, PaymentStatus, Payout};
use tracing::Instrument;

use super::attempts::Start;
use super::{Acceptance, Client, PayoutReceipt, elapsed, receipt};
use crate::Error;
use crate::client::Origin;
use crate::client::record::event_for;
use crate::owner::{Liveness, Owner};
use crate::store::{EventSource, Inserted, PayoutEvent, PayoutRecord, PayoutState, Updated};

/// What recording a payout found ([`Client::payout_reporting`]).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum Recorded {
    /// Recorded by this call, as recorded: it is being sent.
    New(Box<PayoutRecord>),
    /// The same payout was recorded under its payment ID before, as it was found: nothing new
    /// was recorded (it is sent again only if the platform does not have it or it ended in
    /// `error`).
    Existing(Box<PayoutRecord>),
    /// Another payout is recorded under this payment ID: nothing recorded or sent.
    Conflict,
    /// Over the project's limits: nothing recorded or sent.
    OverLimit,
    /// The store holds the payment ID for a different payout to come
    /// ([`crate::Inserted::Held`]): nothing recorded or sent. What holds it.
    Held(String),
}

/// How many times a resubmission re-reads a record that changed under it before it gives up
/// with [`Error::InFlight`].
const MAX_CLAIM_TRIES: u32 = 3;

impl Client {
    /// Pays out, at most once, whatever the network does.
    ///
    /// 1. Records the payout in the store before the first byte is sent. If its payment ID is
    ///    already recorded: with different details, or with the merchant's metadata
    ///    ([`Client::payout_reporting`]) → [`Error::PaymentIdConflict`]; with the same
    ///    details → the recorded state, without sending (unless it is not registered on the
    ///    platform or ended in `error`: then it is resent under the same payment ID, and an
    ///    unknown outcome is first resolved through the status endpoint). A payout in
    ///    [`PayoutState::Created`] is *in flight* (another call is sending it) for
    ///    [`Config::in_flight_window`](crate::Config::in_flight_window): [`Error::InFlight`],
    ///    nothing sent; older, its sender stopped, and it is resolved like an unknown outcome
    ///    (status first).
    /// 2. Sends it, following the retry rules of [`crate::retry`]. A `3041` "payment ID already
    ///    exists" is resolved through the status endpoint: the payment found there is adopted
    ///    ([`Acceptance::FoundByStatus`]) only if a signed status shows it is this payout (amount,
    ///    currency, phone number, customer). Once an attempt may have reached the platform, a
    ///    refused resend never ends the call as a rejection: only the status does.
    ///
    /// # Errors
    ///
    /// - Nothing reached the platform: [`Error::Rejected`] (code and message; not
    ///   registered), [`Error::NotSent`], [`Error::OverLimit`] (over the project's limits:
    ///   not recorded either), [`Error::PaymentIdConflict`] (a different payout is
    ///   recorded, or found on the platform, under this payment ID), [`Error::Sign`], and
    ///   [`Error::Store`] when recording failed before anything was sent.
    /// - The payout may exist on the platform ([`Error::may_have_reached_platform`]): never
    ///   pay it again under a new payment ID. [`Error::OutcomeUnknown`] (recorded; reconcile),
    ///   [`Error::InFlight`] (another call is sending it), [`Error::RecordFailed`] (the store
    ///   failed after the request may have been sent).
    pub async fn payout(&self, payout: &Payout) -> Result<PayoutReceipt, Error> {
        self.payout_as(payout, self.source.clone()).await
    }

    /// [`Client::payout`], with the payout recorded as coming from `source` (e.g.
    /// [`EventSource::Operator`] with the name of the console operator or API key that asked
    /// for it): the first event of its history says who.
    ///
    /// # Errors
    ///
    /// As [`Client::payout`].
    pub async fn payout_as(
        &self,
        payout: &Payout,
        source: EventSource,
    ) -> Result<PayoutReceipt, Error> {
        self.payout_reporting(payout, source, None, None).await
    }

    /// [`Client::payout_as`], with the merchant's `metadata` recorded with the payout (in the
    /// same write; never sent to the platform; [`PayoutRecord::metadata`]), telling `recorded`
    /// what recording found as soon as it is known (before anything is sent): a server
    /// answering "accepted" (or "already recorded", or "another payout holds this ID") at once
    /// while the payout is sent in the background. Nothing is told when the payout failed
    /// before recording (a signing or store error): the call's own result says why. A payout
    /// recorded under the payment ID with other metadata is another payout
    /// ([`PayoutRecord::is_same_payout`]): [`Error::PaymentIdConflict`], as
    /// [`Client::payout`] (which has none) is for one recorded with metadata.
    ///
    /// # Errors
    ///
    /// As [`Client::payout`].
    pub async fn payout_reporting(
        &self,
        payout: &Payout,
        source: EventSource,
        metadata: Option<String>,
        recorded: Option<tokio::sync::oneshot::Sender<Recorded>>,
    ) -> Result<PayoutReceipt, Error> {
        let tell = |what: Recorded| {
            if let Some(recorded) = recorded {
                let _ = recorded.send(what);
            }
        };
        let payment_id = payout.payment_id().clone();
        let span = tracing::info_span!(
            "rp_payout.payout",
            payment_id = %payment_id,
            phone = %payout.phone(),
            amount = %payout.amount(),
        );
        async move {
            let request = payout.to_request(self.config.project_id);
            let body = self.sign("payout", &request)?;
            let now = self.clock.now();
            let mut record = PayoutRecord::new(payment_id.clone(), request, now);
            record.metadata.clone_from(&metadata);
            record.claimed_by = Some(self.owner.token().to_owned());
            record.lease_until = Some(self.lease_clock().await + self.config.in_flight_window());
            let first_event = PayoutEvent::new(now, source, None, PayoutState::Created);
            match self.store.insert(record, first_event, self.config.limits).await? {
                Inserted::OverLimit(reason) => {
                    tell(Recorded::OverLimit);
                    tracing::warn!(%reason, "payout over the project's limits; not recorded, not sent");
                    Err(Error::OverLimit {
                        payment_id,
                        reason: Box::new(reason),
                    })
                }
                Inserted::Held(holder) => {
                    tell(Recorded::Held(holder.clone()));
                    tracing::warn!(%holder, "payment ID held for a different payout; not recorded, not sent");
                    Err(Error::PaymentIdHeld { payment_id, holder })
                }
                Inserted::New(record) => {
                    tell(Recorded::New(Box::new(record.clone())));
                    crate::failpoint::hit("payout-recorded");
                    tracing::info!("payout recorded; sending");
                    self.drive(record, body, Start::Send { maybe_sent: false })
                        .await
                }
                Inserted::Existing(existing) => {
                    let request = payout.to_request(self.config.project_id);
                    if !existing.is_same_payout(&request, metadata.as_deref()) {
                        tell(Recorded::Conflict);
                        tracing::warn!(
                            "payment ID already recorded with different details or metadata"
                        );
                        return Err(Error::PaymentIdConflict {
                            payment_id,
                            platform: None,
                            same_details: existing.request == request,
                        });
                    }
                    tell(Recorded::Existing(Box::new(existing.clone())));
                    self.resubmit(existing, body).await
                }
            }
        }
        .instrument(span)
        .await
    }

    /// Submits a recorded payout again by its payment ID (e.g. one that reconcile found not
    /// registered): same rules as submitting the same [`Payout`](rp_model::Payout) to [`Client::payout`] again.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store has no such payout (nothing was sent), otherwise as
    /// [`Client::payout`].
    pub async fn resume(&self, payment_id: &PaymentId) -> Result<PayoutReceipt, Error> {
        let span = tracing::info_span!("rp_payout.resume", payment_id = %payment_id);
        async move {
            let record =
                self.store.get(payment_id).await?.ok_or_else(|| {
                    Error::store(format!("find payout {payment_id}"), "not recorded")
                })?;
            let body = self.sign("payout", &record.request)?;
            self.resubmit(record, body).await
        }
        .instrument(span)
        .await
    }

    /// Records that the call sending this payout was abandoned (its future dropped: the
    /// process is shutting down, the user pressed Ctrl-C): a payout still `Created` becomes
    /// [`PayoutState::Unknown`], since its request may have been sent. Submitting it again, or
    /// reconcile, then asks the status at once instead of waiting out
    /// [`Config::in_flight_window`](crate::Config::in_flight_window). A payout that moved on
    /// (accepted, a callback came) is left as it is, and so is one claimed by another process
    /// (its sender is alive and will record its outcome): only the claimant abandons.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] (the payout then stays `Created` and is resolved after the window).
    pub async fn abandon(&self, payment_id: &PaymentId) -> Result<PayoutRecord, Error> {
        let origin = Origin::new(EventSource::Call);
        Ok(self
            .change(payment_id, &origin, |current| {
                let ours = current.claimed_by.as_deref() == Some(self.owner.token());
                if current.state != PayoutState::Created || !ours {
                    return (None, ());
                }
                let mut next = current.clone();
                next.state = PayoutState::Unknown;
                next.maybe_sent = true;
                (Some(next), ())
            })
            .await?
            .0)
    }

    /// Whether a call may still be sending this payout: recorded as `Created`, its claim's
    /// lease not run out at `lease_now` (the store's clock,
    /// [`PayoutRecord::lease_until`]; a record without a lease: changed within
    /// [`Config::in_flight_window`](crate::Config::in_flight_window) on this client's clock),
    /// and its claimant not known to be dead: a claim by a process on this host that no longer
    /// exists is taken over at once (a crash, a kill).
    pub(crate) fn in_flight(&self, record: &PayoutRecord, lease_now: SystemTime) -> bool {
        let held = match record.lease_until {
            Some(until) => until > lease_now,
            None => elapsed(self.clock.now(), record.updated_at) < self.config.in_flight_window(),
        };
        let sender_dead = record
            .claimed_by
            .as_deref()
            .is_some_and(|owner| Owner::liveness_of(owner) == Liveness::Dead);
        record.state == PayoutState::Created && held && !sender_dead
    }

    /// The same payout again: send only what is safe to send. When another call changes the
    /// record between the read and the claim, the decision is taken again on what it wrote.
    async fn resubmit(
        &self,
        mut existing: PayoutRecord,
        body: Vec<u8>,
    ) -> Result<PayoutReceipt, Error> {
        for _ in 0..MAX_CLAIM_TRIES {
            let lease_now = self.lease_clock().await;
            let start = match self.resubmit_start(&existing, lease_now)? {
                Ok(start) => start,
                Err(receipt) => return Ok(receipt),
            };
            // Claim the payout (compare-and-set back to `Created`) so two callers cannot both
            // send.
            let mut claimed = existing.clone();
            claimed.state = PayoutState::Created;
            claimed.updated_at = self.clock.now();
            claimed.claimed_by = Some(self.owner.token().to_owned());
            claimed.lease_until = Some(lease_now + self.config.in_flight_window());
            let event = event_for(&existing, &claimed, &Origin::new(EventSource::Call))
                .with_note(Some("sending again under the same payment ID".to_owned()));
            match self.store.update(existing.version, claimed, event).await? {
                Updated::Done(record) => {
                    tracing::info!(previous = %existing.state, "sending the recorded payout again under the same payment ID");
                    return self.drive(record, body, start).await;
                }
                Updated::Conflict(Some(current)) => existing = current,
                Updated::Conflict(None) => {
                    return Err(Error::store(
                        format!("claim payout {}", existing.payment_id),
                        "the record disappeared",
                    ));
                }
            }
        }
        // Changed under us every time: someone is working on it right now.
        Err(self.in_flight_error(&existing))
    }

    /// Where sending a recorded payout again starts, or the answer without sending
    /// (`Ok(Err(receipt))`), or why not (`Err`).
    fn resubmit_start(
        &self,
        existing: &PayoutRecord,
        lease_now: SystemTime,
    ) -> Result<Result<Start, PayoutReceipt>, Error> {
        Ok(Ok(match &existing.state {
            PayoutState::Rejected { code, message } => {
                return Err(Error::Rejected {
                    what: "payout",
                    payment_id: Some(existing.payment_id.clone()),
                    http_status: None,
                    code: code.clone(),
                    message: message.clone(),
                    field: None,
                });
            }
            PayoutState::PaymentIdTaken => {
                return Err(Error::PaymentIdConflict {
                    payment_id: existing.payment_id.clone(),
                    platform: Some(existing.last_message.clone().unwrap_or_else(|| {
                        "the platform has a different payout under it".to_owned()
                    })),
                    same_details: false,
                });
            }
            // Not on the platform (a signed 3061 once the platform's delay had passed, or never
            // sent), or it ended in `error`: resent under the same ID. If an earlier attempt may
            // have reached the platform, a refusal of the resend is not final. (`error` means
            // the platform had it.)
            PayoutState::NotRegistered => Start::Send {
                maybe_sent: existing.maybe_sent,
            },
            PayoutState::Status(PaymentStatus::Error) => Start::Send { maybe_sent: true },
            PayoutState::Unknown => Start::CheckStatus,
            // Its sender stopped before sending anything (the attempt log is empty): send it.
            PayoutState::Created
                if !self.in_flight(existing, lease_now) && existing.attempts == 0 =>
            {
                tracing::warn!("payout recorded but never sent (the sender stopped); sending it");
                Start::Send {
                    maybe_sent: existing.maybe_sent,
                }
            }
            PayoutState::Created if !self.in_flight(existing, lease_now) => {
                tracing::warn!(
                    since = ?existing.updated_at,
                    "payout recorded and maybe sent, but unresolved (the sender stopped); asking the status first"
                );
                Start::CheckStatus
            }
            PayoutState::Created => {
                tracing::info!("payout in flight (another call is sending it); not sending");
                return Err(self.in_flight_error(existing));
            }
            _ => {
                tracing::info!(state = %existing.state, "payout already recorded; not sending");
                return Ok(Err(receipt(existing, Acceptance::AlreadyRecorded, 0)));
            }
        }))
    }

    pub(crate) fn in_flight_error(&self, record: &PayoutRecord) -> Error {
        Error::InFlight {
            payment_id: record.payment_id.clone(),
            seconds_ago: elapsed(self.clock.now(), record.updated_at).as_secs(),
            window_seconds: self.config.in_flight_window().as_secs(),
        }
    }
}
