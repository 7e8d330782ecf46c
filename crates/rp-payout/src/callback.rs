//! Callbacks: bytes in, a decision out ([`Client::handle_callback`], [`CallbackOutcome`]).

use rp_model::{PaymentId, PaymentStatus, ProjectId, wire};
use tracing::Instrument;

use crate::Client;
use crate::client::{Origin, StatusUpdate};
use crate::error::mask_phone_numbers;
use crate::identity::{self, Reported};
use crate::store::{EventSource, PayoutState, StatusChange};

/// What a callback did, and what the web handler must answer ([`CallbackOutcome::http_status`],
/// [`CallbackOutcome::body`]).
///
/// Answer `200 OK` for everything processed, including duplicates and ignored stale callbacks,
/// so the platform stops redelivering them. Answer an error status for a callback that cannot
/// be trusted or stored: the platform redelivers it, and [`Client::reconcile`] learns the truth
/// from the status endpoint meanwhile.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum CallbackOutcome {
    /// A new status was recorded.
    Applied {
        /// The payment ID.
        payment_id: PaymentId,
        /// The state before.
        previous: PayoutState,
        /// The new status.
        status: PaymentStatus,
    },
    /// A payout was reversed (or refunded): recorded, and worth an alert. Also when no paid
    /// status was recorded before (its callback was lost): the money came back all the same.
    Reversed {
        /// The payment ID.
        payment_id: PaymentId,
        /// The state before (`success`, `partially paid out`, or e.g. `accepted` when the
        /// paid status was never recorded).
        previous: PayoutState,
        /// The new status (`reversed` or `refunded`).
        status: PaymentStatus,
    },
    /// The status the payout already has: nothing changed.
    Duplicate {
        /// The payment ID.
        payment_id: PaymentId,
        /// The status.
        status: PaymentStatus,
    },
    /// An older status (out of order): a non-final status after a final one, or an `error`
    /// for an earlier request (its `operation.request_id` is not the recorded one) after the
    /// payout was resent. Ignored.
    Stale {
        /// The payment ID.
        payment_id: PaymentId,
        /// The status the callback reported.
        status: PaymentStatus,
        /// The status kept (`processing` for a resent payout with no reported status yet).
        current: PaymentStatus,
    },
    /// A final status contradicting the recorded final status: ignored, investigate.
    Conflict {
        /// The payment ID.
        payment_id: PaymentId,
        /// The status the callback reported.
        status: PaymentStatus,
        /// The final status kept.
        current: PaymentStatus,
    },
    /// A status this client does not know, after a final one (e.g. `partially reversed` after
    /// `success`): it may move money, so it is not dropped. Not applied; the record is marked
    /// as needing attention ([`PayoutRecord::attention`](crate::PayoutRecord::attention)).
    Unrecognised {
        /// The payment ID.
        payment_id: PaymentId,
        /// The status the callback reported.
        status: PaymentStatus,
        /// The final status kept.
        current: PaymentStatus,
    },
    /// Signed and ours, but it describes another payment than the recorded payout (amount,
    /// currency, phone number or customer differ, or `payment.sum` is missing). Never applied;
    /// the record is marked as needing attention, and reconcile asks the status.
    IdentityMismatch {
        /// The payment ID.
        payment_id: PaymentId,
        /// The status it reported.
        status: PaymentStatus,
        /// What differs (phone numbers masked).
        difference: String,
    },
    /// A valid callback for a payment the store does not have (e.g. a payout made in the
    /// Dashboard): acknowledged, nothing recorded.
    Unrecorded {
        /// The payment ID.
        payment_id: PaymentId,
        /// The status it reported.
        status: PaymentStatus,
    },
    /// The signature is missing, malformed or wrong: not trusted.
    InvalidSignature {
        /// Why.
        reason: String,
    },
    /// A key or value holds `;`, the separator of the string to sign: such a body's signature
    /// cannot tell it from a rearranged one (a forgery from a genuine body), so it is not
    /// trusted, before anything is read from it. The payout is reconciled through the status.
    Ambiguous {
        /// Where the `;` is (the path, not the value).
        reason: String,
    },
    /// Signed, but for another project (or for none).
    WrongProject {
        /// Our project.
        expected: ProjectId,
        /// The callback's `project_id`.
        found: Option<u64>,
    },
    /// Not JSON, or without a usable `payment.id` / `payment.status`.
    Malformed {
        /// What is wrong (phone-number-like digit runs masked).
        reason: String,
    },
    /// The store failed; the platform should deliver the callback again.
    StoreFailed {
        /// The payment ID.
        payment_id: PaymentId,
        /// The store error.
        reason: String,
    },
}

impl CallbackOutcome {
    /// The HTTP status to answer: 200 when processed (including duplicates, ignored callbacks
    /// and those marked for attention), 400 malformed or ambiguous, 401 invalid signature, 403
    /// wrong project, 500 store failure.
    pub fn http_status(&self) -> u16 {
        match self {
            Self::Malformed { .. } | Self::Ambiguous { .. } => 400,
            Self::InvalidSignature { .. } => 401,
            Self::WrongProject { .. } => 403,
            Self::StoreFailed { .. } => 500,
            _ => 200,
        }
    }

    /// A short, stable name of the outcome (`applied`, `duplicate`, `invalid_signature`, …),
    /// for metrics and logs.
    pub fn label(&self) -> &'static str {
        match self {
            Self::Applied { .. } => "applied",
            Self::Reversed { .. } => "reversed",
            Self::Duplicate { .. } => "duplicate",
            Self::Stale { .. } => "stale",
            Self::Conflict { .. } => "conflict",
            Self::Unrecognised { .. } => "unrecognised",
            Self::IdentityMismatch { .. } => "identity_mismatch",
            Self::Unrecorded { .. } => "unrecorded",
            Self::InvalidSignature { .. } => "invalid_signature",
            Self::Ambiguous { .. } => "ambiguous",
            Self::WrongProject { .. } => "wrong_project",
            Self::Malformed { .. } => "malformed",
            Self::StoreFailed { .. } => "store_failed",
        }
    }

    /// The response body: `OK` when processed, otherwise a short reason (no details).
    pub fn body(&self) -> &'static str {
        match self {
            Self::Malformed { .. } => "malformed callback",
            Self::Ambiguous { .. } => "ambiguous signed body",
            Self::InvalidSignature { .. } => "invalid signature",
            Self::WrongProject { .. } => "wrong project",
            Self::StoreFailed { .. } => "temporary failure",
            _ => "OK",
        }
    }

    /// Whether the callback is acknowledged (HTTP 200).
    pub fn is_acknowledged(&self) -> bool {
        self.http_status() == 200
    }

    /// Whether a person should look at this payout: a reversal, a contradicting final status,
    /// an unknown status after a final one, or a callback describing another payment.
    pub fn needs_attention(&self) -> bool {
        matches!(
            self,
            Self::Reversed { .. }
                | Self::Conflict { .. }
                | Self::Unrecognised { .. }
                | Self::IdentityMismatch { .. }
        )
    }

    /// Whether the payout ended in status `error` (the platform did not process it): submit
    /// it again with [`Client::resume`] or the same payout to [`Client::payout`]; it is resent
    /// under the same payment ID.
    pub fn needs_resend(&self) -> bool {
        matches!(
            self,
            Self::Applied {
                status: PaymentStatus::Error,
                ..
            }
        )
    }

    /// The payment ID, when the callback was trusted enough to read it.
    pub fn payment_id(&self) -> Option<&PaymentId> {
        match self {
            Self::Applied { payment_id, .. }
            | Self::Reversed { payment_id, .. }
            | Self::Duplicate { payment_id, .. }
            | Self::Stale { payment_id, .. }
            | Self::Conflict { payment_id, .. }
            | Self::Unrecognised { payment_id, .. }
            | Self::IdentityMismatch { payment_id, .. }
            | Self::Unrecorded { payment_id, .. }
            | Self::StoreFailed { payment_id, .. } => Some(payment_id),
            _ => None,
        }
    }
}

impl Client {
    /// Handles a callback from the raw bytes of its body: verifies the signature and the
    /// project, parses it, de-duplicates, applies the state rules
    /// ([`PayoutState::on_status`]) and says what to answer. Framework-agnostic: see
    /// `examples/axum_callback.rs`.
    pub async fn handle_callback(&self, raw_body: &[u8]) -> CallbackOutcome {
        let verified = match self.signer.verify_callback(raw_body) {
            Ok(verified) => verified,
            Err(rp_sign::Error::InvalidJson(e)) => {
                return self.refuse(CallbackOutcome::Malformed {
                    reason: format!("not JSON: {e}"),
                });
            }
            Err(rp_sign::Error::NotAnObject { found }) => {
                return self.refuse(CallbackOutcome::Malformed {
                    reason: format!("a JSON {found}, not an object"),
                });
            }
            Err(e @ rp_sign::Error::AmbiguousValue { .. }) => {
                return self.refuse(CallbackOutcome::Ambiguous {
                    reason: e.to_string(),
                });
            }
            Err(e) => {
                return self.refuse(CallbackOutcome::InvalidSignature {
                    reason: e.to_string(),
                });
            }
        };
        // Straight from the verified bytes: no intermediate `Value`. `Callback::signature`
        // receives the root signature (absent when it was `general.signature`).
        let callback: wire::Callback = match verified.deserialize() {
            Ok(callback) => callback,
            Err(e) => {
                let reason = match e {
                    rp_sign::Error::Deserialize(e) => e.to_string(),
                    other => other.to_string(),
                };
                return self.refuse(CallbackOutcome::Malformed {
                    reason: format!("not a callback: {reason}"),
                });
            }
        };
        let expected = self.config.project_id;
        if callback.project_id != Some(expected.get()) {
            return self.refuse(CallbackOutcome::WrongProject {
                expected,
                found: callback.project_id,
            });
        }
        let payment_id = match callback.payment_id().map(PaymentId::new) {
            Some(Ok(id)) => id,
            Some(Err(e)) => {
                return self.refuse(CallbackOutcome::Malformed {
                    reason: format!("payment.id: {e}"),
                });
            }
            None => {
                return self.refuse(CallbackOutcome::Malformed {
                    reason: "payment.id is missing".to_owned(),
                });
            }
        };
        let Some(status) = callback.payment_status().cloned() else {
            return self.refuse(CallbackOutcome::Malformed {
                reason: format!("payment.status is missing (payment {payment_id})"),
            });
        };
        let span =
            tracing::info_span!("rp_payout.callback", payment_id = %payment_id, status = %status);
        async move {
            let origin = Origin::with_raw(
                EventSource::Callback,
                Some(String::from_utf8_lossy(raw_body).into_owned()),
            );
            let outcome = self
                .apply_callback(payment_id, status, &callback, &origin)
                .await;
            match &outcome {
                outcome if outcome.needs_attention() => {
                    tracing::warn!(?outcome, "callback needs attention");
                }
                CallbackOutcome::StoreFailed { reason, .. } => {
                    tracing::error!(%reason, "callback not recorded; the platform will redeliver it");
                }
                _ => tracing::info!(?outcome, "callback handled"),
            }
            outcome
        }
        .instrument(span)
        .await
    }

    async fn apply_callback(
        &self,
        payment_id: PaymentId,
        status: PaymentStatus,
        callback: &wire::Callback,
        origin: &Origin,
    ) -> CallbackOutcome {
        let store_failed = |payment_id: PaymentId, e: crate::Error| CallbackOutcome::StoreFailed {
            payment_id,
            reason: e.to_string(),
        };
        let record = match self.store.get(&payment_id).await {
            Ok(Some(record)) => record,
            Ok(None) => return CallbackOutcome::Unrecorded { payment_id, status },
            Err(e) => return store_failed(payment_id, e),
        };
        // Invariant 10: only a callback about *this* payout is applied.
        if let Some(difference) =
            identity::difference(&record.request, Reported::from_callback(callback))
        {
            let attention = format!(
                "a signed callback reported `{status}` for another payment under this payment ID: {difference}; not applied"
            );
            let marked = self
                .change_from(&payment_id, Some(record), origin, |current| {
                    if current.attention.as_deref() == Some(attention.as_str()) {
                        return (None, ());
                    }
                    let mut next = current.clone();
                    next.attention = Some(attention.clone());
                    (Some(next), ())
                })
                .await;
            return match marked {
                Ok(_) => CallbackOutcome::IdentityMismatch {
                    payment_id,
                    status,
                    difference,
                },
                Err(e) => store_failed(payment_id, e),
            };
        }
        crate::failpoint::hit("callback-verified");
        let operation = callback.operation.as_ref();
        let update = StatusUpdate {
            status: status.clone(),
            request_id: operation.and_then(|op| op.request_id.clone()),
            code: operation
                .and_then(|op| op.code.clone())
                .or_else(|| callback.errors.iter().find_map(|e| e.code.clone())),
            // Platform messages may quote the phone number.
            message: operation
                .and_then(|op| op.message.clone())
                .or_else(|| callback.errors.iter().find_map(|e| e.message.clone()))
                .map(|m| mask_phone_numbers(&m)),
            from_callback: true,
        };
        let (record, change, previous) = match self
            .apply_status(&payment_id, record, &update, origin)
            .await
        {
            Ok(applied) => applied,
            Err(e) => return store_failed(payment_id, e),
        };
        let current = match &record.state {
            PayoutState::Status(current) => current.clone(),
            _ => status.clone(),
        };
        match change {
            StatusChange::Duplicate => CallbackOutcome::Duplicate { payment_id, status },
            StatusChange::Stale => CallbackOutcome::Stale {
                payment_id,
                current: match &record.state {
                    PayoutState::Status(current) => current.clone(),
                    // A resent payout without a reported status yet.
                    _ => PaymentStatus::Processing,
                },
                status,
            },
            StatusChange::Conflict => CallbackOutcome::Conflict {
                payment_id,
                status,
                current,
            },
            StatusChange::Unrecognised => CallbackOutcome::Unrecognised {
                payment_id,
                status,
                current,
            },
            StatusChange::Reversal => CallbackOutcome::Reversed {
                payment_id,
                previous,
                status,
            },
            _ => CallbackOutcome::Applied {
                payment_id,
                previous,
                status,
            },
        }
    }

    fn refuse(&self, outcome: CallbackOutcome) -> CallbackOutcome {
        // Parser messages can echo values of the body (a phone number in `account.number`).
        let outcome = match outcome {
            CallbackOutcome::Malformed { reason } => CallbackOutcome::Malformed {
                reason: mask_phone_numbers(&reason),
            },
            other => other,
        };
        tracing::warn!(
            http_status = outcome.http_status(),
            ?outcome,
            "callback refused; the platform will redeliver it and reconcile will ask the status"
        );
        outcome
    }
}
