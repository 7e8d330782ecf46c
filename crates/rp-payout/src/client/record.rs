//! Every change to a recorded payout: a compare-and-set on its version ([`Client::change`]),
//! and the rules for what the platform reports: a status is adopted only after the identity
//! check (`identity.rs`), applied by [`PayoutState::on_status`], and what needs a person is
//! marked in [`PayoutRecord::attention`].

use rp_model::{PaymentId, PaymentStatus, ResponseCode};

use super::{Client, StatusReport};
use crate::Error;
use crate::identity::{self, Reported};
use crate::store::{EventSource, PayoutEvent, PayoutRecord, PayoutState, StatusChange, Updated};

/// How many times a compare-and-set on a record is retried after a conflict.
const MAX_CAS_TRIES: u32 = 8;

/// Where a change comes from, for its event: the source and, for a callback or status
/// response, the raw signed body.
#[derive(Debug, Clone)]
pub(crate) struct Origin {
    pub(crate) source: EventSource,
    pub(crate) raw: Option<String>,
    pub(crate) note: Option<String>,
}

impl Origin {
    pub(crate) fn new(source: EventSource) -> Self {
        Origin {
            source,
            raw: None,
            note: None,
        }
    }

    pub(crate) fn with_raw(source: EventSource, raw: Option<String>) -> Self {
        Origin {
            source,
            raw,
            note: None,
        }
    }

    /// With a note for the event (e.g. what a call is about to do).
    pub(crate) fn noted(mut self, note: String) -> Self {
        self.note = Some(note);
        self
    }
}

/// A reported status, with what came with it, to apply to a record ([`Client::apply_status`]).
#[derive(Debug, Clone)]
pub(crate) struct StatusUpdate {
    /// The payment status.
    pub(crate) status: PaymentStatus,
    /// The request the status is about (`operation.request_id`), when known.
    pub(crate) request_id: Option<String>,
    /// The code that came with it.
    pub(crate) code: Option<ResponseCode>,
    /// The message that came with it.
    pub(crate) message: Option<String>,
    /// Whether it came in a callback (which may be late or redelivered) rather than a status
    /// response (the platform's view now).
    pub(crate) from_callback: bool,
}

impl StatusUpdate {
    /// Whether this status is of an older request than the record follows, and must not undo
    /// what came after it:
    /// - an `error` of the request the record is resending (the record is `Created` again
    ///   with that request's ID): the resend is on its way;
    /// - with callbacks, an `error` of a request other than the recorded one (both known):
    ///   the payout was resent since.
    fn is_of_an_earlier_request(&self, current: &PayoutRecord) -> bool {
        if self.status != PaymentStatus::Error || self.request_id.is_none() {
            return false;
        }
        let same_request = self.request_id == current.request_id;
        (current.state == PayoutState::Created && same_request)
            || (self.from_callback && current.request_id.is_some() && !same_request)
    }

    /// Whether it is the platform's view of a newer request than a recorded `error`: a status
    /// response naming another request than the one that errored (a resend the record did not
    /// see accepted, e.g. its answer was lost).
    fn is_of_a_newer_request(&self, current: &PayoutRecord) -> bool {
        !self.from_callback
            && current.state == PayoutState::Status(PaymentStatus::Error)
            && self.request_id.is_some()
            && current.request_id.is_some()
            && self.request_id != current.request_id
    }
}

impl Client {
    /// The attempt log: counts a payout request in the record **before** it is sent, with its
    /// event. A payout whose record counts no attempt was never sent, whatever happened to the
    /// process; one that counts attempts may have been.
    ///
    /// It is also the fence of the claim: the lease is renewed in the same write, and when
    /// another call has taken the payout over (its claim replaced this one's, after the lease
    /// ran out) nothing is written and [`Error::InFlight`] says so: this call sends nothing
    /// more.
    pub(super) async fn log_attempt(
        &self,
        payment_id: &PaymentId,
        known: Option<PayoutRecord>,
    ) -> Result<PayoutRecord, Error> {
        // The event's note names the attempt (see `event_for`).
        let origin = Origin::new(EventSource::Call);
        let lease_until = self.lease_clock().await + self.config.in_flight_window();
        let token = self.owner.token();
        let (record, ours) = self
            .change_from(payment_id, known, &origin, |current| {
                if current
                    .claimed_by
                    .as_deref()
                    .is_some_and(|owner| owner != token)
                {
                    return (None, false);
                }
                let mut next = current.clone();
                next.attempts = current.attempts.saturating_add(1);
                next.claimed_by = Some(token.to_owned());
                next.lease_until = Some(lease_until);
                (Some(next), true)
            })
            .await?;
        if ours {
            Ok(record)
        } else {
            tracing::warn!(by = ?record.claimed_by, "another call took the payout over; this one sends nothing more");
            Err(self.in_flight_error(&record))
        }
    }

    /// Now, on the store's clock when it has one ([`PayoutStore::now`](crate::PayoutStore::now)),
    /// else on the client's: the clock of leases.
    pub(crate) async fn lease_clock(&self) -> std::time::SystemTime {
        match self.store.now().await {
            Ok(Some(now)) => now,
            Ok(None) => self.clock.now(),
            Err(error) => {
                tracing::warn!(%error, "the store cannot tell the time; using this machine's clock");
                self.clock.now()
            }
        }
    }

    /// Records that the platform accepted the payout request (`request_id`, when it gave one).
    /// A callback that got there first is at least as advanced and is kept.
    pub(super) async fn record_accepted(
        &self,
        payment_id: &PaymentId,
        known: Option<PayoutRecord>,
        request_id: Option<String>,
    ) -> Result<PayoutRecord, Error> {
        let origin = Origin::new(EventSource::Answer);
        Ok(self
            .change_from(payment_id, known, &origin, |current| {
                let newer_request = request_id.is_some() && current.request_id != request_id;
                let advance = match &current.state {
                    PayoutState::Created | PayoutState::Unknown | PayoutState::NotRegistered => {
                        true
                    }
                    // An `error` reported for an earlier request: this resend was accepted.
                    PayoutState::Status(PaymentStatus::Error) => newer_request,
                    // A callback got there first: it is at least as advanced.
                    _ => false,
                };
                let fill_request = current.request_id.is_none() && request_id.is_some();
                if !advance && !fill_request && current.maybe_sent {
                    return (None, ());
                }
                let mut next = current.clone();
                next.maybe_sent = true;
                if advance {
                    next.state = PayoutState::Accepted;
                }
                if request_id.is_some() {
                    next.request_id.clone_from(&request_id);
                }
                (Some(next), ())
            })
            .await?
            .0)
    }

    /// Applies the status of a payment the platform has, after checking it is this payout
    /// (invariant 10): amount and currency (`payment.sum`, required), phone number and
    /// customer (when reported). A payment that differs marks the record
    /// [`PayoutState::PaymentIdTaken`] (with what differs in `last_message` and
    /// [`PayoutRecord::attention`]) and is [`Error::PaymentIdConflict`]. An unsigned report is
    /// [`Error::UnsignedStatus`] unless the config accepts it.
    pub(crate) async fn apply_found(
        &self,
        payment_id: &PaymentId,
        report: StatusReport,
    ) -> Result<(PayoutRecord, StatusChange, PayoutState), Error> {
        let report = self.trusted(report)?;
        let origin = Origin::with_raw(EventSource::Status, Some(report.body.0.clone()));
        let record =
            self.store.get(payment_id).await?.ok_or_else(|| {
                Error::store(format!("update payout {payment_id}"), "not recorded")
            })?;
        if let Some(difference) =
            identity::difference(&record.request, Reported::from_status(&report.raw))
        {
            tracing::warn!(%difference, "the platform's payment under this payment ID is not this payout; not adopting it");
            self.change_from(payment_id, Some(record), &origin, |current| {
                if current.state == PayoutState::PaymentIdTaken {
                    return (None, ());
                }
                let mut next = current.clone();
                next.state = PayoutState::PaymentIdTaken;
                next.last_code = None;
                next.last_message = Some(difference.clone());
                next.attention = Some(format!(
                    "the platform holds another payment under this payment ID: {difference}"
                ));
                (Some(next), ())
            })
            .await?;
            return Err(Error::PaymentIdConflict {
                payment_id: payment_id.clone(),
                platform: Some(difference),
                same_details: false,
            });
        }
        let reported = StatusUpdate {
            status: report.status.clone(),
            request_id: report.request_id().map(str::to_owned),
            code: report.last_code.clone(),
            message: report.last_message.clone(),
            from_callback: false,
        };
        self.apply_status(payment_id, record, &reported, &origin)
            .await
    }

    /// Records an unknown outcome and builds its error.
    pub(super) async fn unknown(
        &self,
        payment_id: &PaymentId,
        attempts: u32,
        last: String,
    ) -> Error {
        tracing::warn!(attempts, %last, "payout outcome unknown; it will be reconciled");
        let marked = self
            .change(payment_id, &Origin::new(EventSource::Answer), |current| {
                if current.state != PayoutState::Created && current.maybe_sent {
                    return (None, ());
                }
                let mut next = current.clone();
                next.maybe_sent = true;
                if current.state == PayoutState::Created {
                    next.state = PayoutState::Unknown;
                }
                (Some(next), ())
            })
            .await;
        if let Err(error) = marked {
            tracing::error!(%error, "could not record the unknown outcome; the record stays `created` and reconcile will resolve it");
        }
        Error::OutcomeUnknown {
            payment_id: payment_id.clone(),
            attempts,
            last,
        }
    }

    /// Moves a payout still in `Created` to `state` (a callback may have moved it already).
    pub(super) async fn settle_if_created(
        &self,
        payment_id: &PaymentId,
        state: PayoutState,
        code: Option<ResponseCode>,
        message: Option<String>,
    ) -> Result<PayoutRecord, Error> {
        Ok(self
            .change(payment_id, &Origin::new(EventSource::Call), |current| {
                if current.state != PayoutState::Created {
                    return (None, ());
                }
                let mut next = current.clone();
                next.state = state.clone();
                if code.is_some() {
                    next.last_code.clone_from(&code);
                    next.last_message.clone_from(&message);
                }
                (Some(next), ())
            })
            .await?
            .0)
    }

    /// Applies a reported payment status by the state rules ([`PayoutState::on_status`]) to
    /// the payout, starting from `known`, the record as just read (the compare-and-set
    /// catches a newer one); returns the stored record, the change and the previous state. A reversal, a
    /// contradicting final status and an unknown status after a final one mark the record as
    /// needing attention ([`PayoutRecord::attention`]); the last two leave the state as it is.
    pub(crate) async fn apply_status(
        &self,
        payment_id: &PaymentId,
        known: PayoutRecord,
        reported: &StatusUpdate,
        origin: &Origin,
    ) -> Result<(PayoutRecord, StatusChange, PayoutState), Error> {
        let status = &reported.status;
        let (record, (change, previous)) = self
            .change_from(payment_id, Some(known), origin, |current| {
                let change = if reported.is_of_an_earlier_request(current) {
                    StatusChange::Stale
                } else if reported.is_of_a_newer_request(current) {
                    StatusChange::Apply
                } else {
                    current.state.on_status(status)
                };
                let previous = current.state.clone();
                let attention = attention(&current.state, status, change);
                let mut next = current.clone();
                match change {
                    StatusChange::Apply | StatusChange::Reversal => {
                        next.state = PayoutState::Status(status.clone());
                        // The platform has it: any later refusal of a resend is not final.
                        next.maybe_sent = true;
                        if reported.request_id.is_some() {
                            next.request_id.clone_from(&reported.request_id);
                        }
                        if reported.code.is_some() {
                            next.last_code.clone_from(&reported.code);
                            next.last_message.clone_from(&reported.message);
                        }
                    }
                    StatusChange::Conflict | StatusChange::Unrecognised => {}
                    _ => return (None, (change, previous)),
                }
                if attention.is_some() {
                    next.attention = attention;
                }
                if next == *current {
                    return (None, (change, previous));
                }
                (Some(next), (change, previous))
            })
            .await?;
        Ok((record, change, previous))
    }

    /// Compare-and-set with retries: `f` maps the current record to the new one (or `None` to
    /// leave it) and a value to return. The event written with the change says where it came
    /// from (`origin`), the state before and after, and what changed with it: a new code and
    /// message, a new attention note.
    pub(crate) async fn change<T>(
        &self,
        payment_id: &PaymentId,
        origin: &Origin,
        f: impl Fn(&PayoutRecord) -> (Option<PayoutRecord>, T),
    ) -> Result<(PayoutRecord, T), Error> {
        self.change_from(payment_id, None, origin, f).await
    }

    /// [`Client::change`] starting from `known`, the record as this call last wrote or read
    /// it, instead of reading it first: the compare-and-set catches a stale one. A decision
    /// not to write is only ever taken on a record read from the store.
    pub(crate) async fn change_from<T>(
        &self,
        payment_id: &PaymentId,
        known: Option<PayoutRecord>,
        origin: &Origin,
        f: impl Fn(&PayoutRecord) -> (Option<PayoutRecord>, T),
    ) -> Result<(PayoutRecord, T), Error> {
        let read = || async {
            self.store
                .get(payment_id)
                .await?
                .ok_or_else(|| Error::store(format!("update payout {payment_id}"), "not recorded"))
        };
        let mut fresh = known.is_none();
        let mut current = match known {
            Some(known) => known,
            None => read().await?,
        };
        for _ in 0..MAX_CAS_TRIES {
            let (next, value) = f(&current);
            let Some(mut next) = next else {
                if fresh {
                    return Ok((current, value));
                }
                current = read().await?;
                fresh = true;
                continue;
            };
            next.updated_at = self.clock.now();
            if next.state != current.state {
                // Something happened: overdue again only from now, checked as soon as it is.
                next.next_check_at = None;
            }
            let event = event_for(&current, &next, origin);
            match self.store.update(current.version, next, event).await? {
                Updated::Done(stored) => return Ok((stored, value)),
                Updated::Conflict(Some(latest)) => {
                    current = latest;
                    fresh = true;
                }
                Updated::Conflict(None) => {
                    return Err(Error::store(
                        format!("update payout {payment_id}"),
                        "the record disappeared",
                    ));
                }
            }
        }
        Err(Error::store(
            format!("update payout {payment_id}"),
            format!("still conflicting after {MAX_CAS_TRIES} tries"),
        ))
    }
}

/// The event for a change from `current` to `next`.
pub(crate) fn event_for(
    current: &PayoutRecord,
    next: &PayoutRecord,
    origin: &Origin,
) -> PayoutEvent {
    let coded = next.last_code != current.last_code || next.last_message != current.last_message;
    let noted = next.attention != current.attention;
    PayoutEvent::new(
        next.updated_at,
        origin.source.clone(),
        Some(current.state.clone()),
        next.state.clone(),
    )
    .with_code(
        next.last_code.clone().filter(|_| coded),
        next.last_message.clone().filter(|_| coded),
    )
    .with_note(
        origin
            .note
            .clone()
            .or_else(|| {
                (next.attempts != current.attempts)
                    .then(|| format!("attempt {}: sending the payout request", next.attempts))
            })
            .or_else(|| next.attention.clone().filter(|_| noted)),
    )
    .with_raw(origin.raw.clone())
}

/// Why a reported status needs a person, if it does.
fn attention(
    current: &PayoutState,
    status: &PaymentStatus,
    change: StatusChange,
) -> Option<String> {
    match change {
        StatusChange::Reversal => Some(format!(
            "the platform reported `{status}` after `{}`: the money came back; check with the customer",
            current_status(current)
        )),
        StatusChange::Conflict => Some(format!(
            "the platform reported `{status}`, contradicting `{}`; not applied: check the payment in the Dashboard",
            current_status(current)
        )),
        StatusChange::Unrecognised => Some(format!(
            "the platform reported `{status}` after `{}`, a status this client does not know; not applied: check the payment in the Dashboard",
            current_status(current)
        )),
        _ => None,
    }
}

fn current_status(state: &PayoutState) -> String {
    match state {
        PayoutState::Status(status) => status.to_string(),
        other => other.to_string(),
    }
}
