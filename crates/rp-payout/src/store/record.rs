//! [`PayoutRecord`] and [`PayoutState`]: where a payout stands, and the state rules
//! ([`PayoutState::on_status`], [`StatusChange`]).

use std::fmt;
use std::time::SystemTime;

use rp_model::{PaymentId, PaymentStatus, ResponseCode, wire};
use serde::{Deserialize, Serialize};

/// Where a payout stands, as this client knows it.
///
/// Serialised (for a ledger) in a stable, tagged form, never through `Display`:
/// `{"kind":"status","value":"success"}`, `{"kind":"rejected","value":{"code":"2004","message":"…"}}`,
/// `{"kind":"accepted"}`. [`PayoutState::label`] is the short name for queries and lists.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "value", rename_all = "snake_case")]
#[non_exhaustive]
pub enum PayoutState {
    /// Recorded; a call is sending it. Within
    /// [`Config::in_flight_window`](crate::Config::in_flight_window) of its last change it is
    /// left alone; after that its sender stopped (e.g. crashed), and reconcile or submitting it
    /// again resolves it through the status endpoint.
    Created,
    /// The platform accepted the request for processing; no status reported yet.
    Accepted,
    /// The request may have reached the platform but the outcome is unknown; reconcile
    /// resolves it through the status endpoint.
    Unknown,
    /// The platform does not have this payout (it was never sent, or the status endpoint answered
    /// 3061). Submitting the same payout again sends it under the same payment ID.
    NotRegistered,
    /// The platform refused the request synchronously with a code; it was not registered.
    Rejected {
        /// The platform code.
        code: ResponseCode,
        /// The platform message.
        message: String,
    },
    /// The last payment status the platform reported (callback or status request).
    Status(PaymentStatus),
    /// The platform holds a *different* payout (another amount or currency) under this payment
    /// ID: this payout is not registered, is never sent under this ID, and callbacks and
    /// statuses for the ID (the other payout's) are not applied to it. `last_message` says
    /// what differs. Settled.
    PaymentIdTaken,
}

impl PayoutState {
    /// The short name of the state, for queries, counts and lists: `created`, `accepted`,
    /// `unknown`, `not_registered`, `rejected`, `payment_id_taken`, or the payment status as
    /// the platform spells it (`success`, `partially paid out`, `decline`, …).
    pub fn label(&self) -> &str {
        match self {
            Self::Created => "created",
            Self::Accepted => "accepted",
            Self::Unknown => "unknown",
            Self::NotRegistered => "not_registered",
            Self::Rejected { .. } => "rejected",
            Self::Status(status) => status.as_str(),
            Self::PaymentIdTaken => "payment_id_taken",
        }
    }

    /// Whether nothing more is expected: refused, or a final status other than `error`
    /// (`error` may be resent with the same payment ID). A settled `success` can still be
    /// followed by `reversed`.
    pub fn is_settled(&self) -> bool {
        match self {
            Self::Rejected { .. } | Self::PaymentIdTaken => true,
            Self::Status(status) => status.is_final() && *status != PaymentStatus::Error,
            _ => false,
        }
    }

    /// Whether the platform definitively refused the payout, so it pays nothing and stops
    /// counting against the project's limits: a synchronous refusal, a `decline`, or a
    /// payment ID held by another payout. (A later status that contradicts a synchronous
    /// refusal is applied, and the payout counts again.)
    pub fn releases_limits(&self) -> bool {
        matches!(
            self,
            Self::Rejected { .. } | Self::PaymentIdTaken | Self::Status(PaymentStatus::Decline)
        )
    }

    /// Whether submitting the same payout again sends it again (under the same payment ID).
    pub fn is_resendable(&self) -> bool {
        matches!(
            self,
            Self::NotRegistered | Self::Status(PaymentStatus::Error)
        )
    }

    /// How a reported payment status relates to this state (the callback and reconcile rules).
    pub fn on_status(&self, new: &PaymentStatus) -> StatusChange {
        let money_back = matches!(new, PaymentStatus::Reversed | PaymentStatus::Refunded);
        let current = match self {
            Self::Status(current) => current,
            // The status of the other payout that holds this payment ID.
            Self::PaymentIdTaken => return StatusChange::Conflict,
            // A reversal with no paid status recorded (its callback was lost): still an alert.
            _ if money_back => return StatusChange::Reversal,
            _ => return StatusChange::Apply,
        };
        if current == new {
            StatusChange::Duplicate
        } else if money_back && !current.is_final() {
            StatusChange::Reversal
        } else if !current.is_final() {
            StatusChange::Apply
        } else if *current == PaymentStatus::Error {
            // `error` is final for its request; only a final status (of a resend) follows it.
            // A non-final one is a late or redelivered status of the request that errored:
            // applying it would hide the `error` and stop the payout from being resent.
            if new.is_final() {
                StatusChange::Apply
            } else {
                StatusChange::Stale
            }
        } else if current.is_paid()
            && matches!(new, PaymentStatus::Reversed | PaymentStatus::Refunded)
        {
            StatusChange::Reversal
        } else if matches!(new, PaymentStatus::Other(_)) {
            StatusChange::Unrecognised
        } else if !new.is_final() {
            StatusChange::Stale
        } else {
            StatusChange::Conflict
        }
    }
}

impl fmt::Display for PayoutState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Created => f.write_str("created"),
            Self::Accepted => f.write_str("accepted"),
            Self::Unknown => f.write_str("outcome unknown"),
            Self::NotRegistered => f.write_str("not registered"),
            Self::Rejected { code, message } => write!(f, "rejected ({code}: {message})"),
            Self::Status(status) => write!(f, "status {status}"),
            Self::PaymentIdTaken => {
                f.write_str("payment ID taken by a different payout on the platform")
            }
        }
    }
}

/// What a newly reported payment status does to a payout ([`PayoutState::on_status`]).
///
/// | Current | New | Change |
/// | --- | --- | --- |
/// | no status yet, or a non-final status | `reversed`, `refunded` | `Reversal` (applied, needs attention: the paid status was never recorded) |
/// | no status yet, or a non-final status | any other | `Apply` |
/// | `s` | the same `s` | `Duplicate` |
/// | `error` | a final status | `Apply` (a resend's result) |
/// | `error` | a non-final status | `Stale` (a late status of the request that errored) |
/// | paid (`success`, `partially paid out`) | `reversed`, `refunded` | `Reversal` (applied, needs attention) |
/// | final | a status this client does not know (e.g. `partially reversed`) | `Unrecognised` (kept, needs attention) |
/// | final | non-final | `Stale` (ignored: a final status never goes back) |
/// | final | another final | `Conflict` (kept, needs attention) |
/// | payment ID taken by another payout | any | `Conflict` (it is the other payout's status) |
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StatusChange {
    /// Record the new status.
    Apply,
    /// The same status again: nothing to do.
    Duplicate,
    /// A paid payout was reversed: record it and tell someone.
    Reversal,
    /// An older, non-final status after a final one (out of order): ignore.
    Stale,
    /// A final status that contradicts the recorded final one: not applied; the record is
    /// marked as needing attention ([`PayoutRecord::attention`]).
    Conflict,
    /// A status this client does not know, after a final one: it may move money (e.g.
    /// `partially reversed`), so it is never dropped: not applied, and the record is marked as
    /// needing attention ([`PayoutRecord::attention`]).
    Unrecognised,
}

/// A payout as recorded by the client.
///
/// `Debug` masks the phone number.
#[derive(Clone, PartialEq)]
#[non_exhaustive]
pub struct PayoutRecord {
    /// The payment ID (the key).
    pub payment_id: PaymentId,
    /// The unsigned request, exactly as it is (re)sent.
    pub request: wire::PayoutRequest,
    /// Where the payout stands.
    pub state: PayoutState,
    /// Bumped by every change (compare-and-set).
    pub version: u64,
    /// When it was recorded.
    pub created_at: SystemTime,
    /// When it last changed.
    pub updated_at: SystemTime,
    /// The platform's request ID, once known.
    pub request_id: Option<String>,
    /// The last code the platform reported (operation or error code).
    pub last_code: Option<ResponseCode>,
    /// The message that goes with `last_code`.
    pub last_message: Option<String>,
    /// Why a person should look at this payout, if one should: a reversal, a final status that
    /// contradicts the recorded one, a status this client does not know after a final one, or
    /// a callback or status describing another payment under this ID. Set by the client, kept
    /// until a person deals with it; phone numbers in it are masked.
    pub attention: Option<String>,
    /// Whether an attempt of this payout may have reached the platform (an unknown outcome,
    /// an acceptance, a status or callback about it). Sticky: once set, a refusal of a later
    /// resend never ends the payout as rejected (invariant 9).
    pub maybe_sent: bool,
    /// Which process last claimed the payout to send it (`host/pid/start`): while the payout
    /// is `Created`, a claim by a process on this host that no longer exists is taken over at
    /// once, instead of after the in-flight window.
    pub claimed_by: Option<String>,
    /// Payout requests counted before they were sent (the attempt log): 0 means this payout was
    /// never sent, so it can be sent without asking the status first.
    pub attempts: u32,
    /// Until when the claim holds, on the store's clock ([`PayoutStore::now`](crate::PayoutStore::now)):
    /// a `Created` payout is in flight until then, unless its claimant is known to be dead. The
    /// sender renews it before every attempt, and sends nothing more once another took over.
    pub lease_until: Option<SystemTime>,
    /// When reconcile asks about it next: after an answer that changed nothing (or a failed
    /// status request) it waits longer each time (a quarter of the payout's age, between
    /// [`Config::overdue_after`](crate::Config::overdue_after) and an hour). `None`: as soon as it
    /// is overdue.
    pub next_check_at: Option<SystemTime>,
    /// The merchant's own data about the payout (JSON text, e.g. an order number), recorded
    /// with it and never changed; never sent to the platform. Not in `Debug`: it is the
    /// merchant's and may hold anything.
    pub metadata: Option<String>,
}

impl PayoutRecord {
    /// A new record in state [`PayoutState::Created`], version 0.
    pub fn new(payment_id: PaymentId, request: wire::PayoutRequest, now: SystemTime) -> Self {
        Self {
            payment_id,
            request,
            state: PayoutState::Created,
            version: 0,
            created_at: now,
            updated_at: now,
            request_id: None,
            last_code: None,
            last_message: None,
            attention: None,
            maybe_sent: false,
            claimed_by: None,
            attempts: 0,
            lease_until: None,
            next_check_at: None,
            metadata: None,
        }
    }

    /// Whether `request` with the merchant's `metadata` is this payout: the same request and
    /// the same metadata (JSON compared as values: member order aside, numbers by value, so
    /// `1`, `1.0` and `1e0` are one; text that does not read as JSON compared as text). A
    /// payment ID recorded with either different is another payout's.
    pub fn is_same_payout(&self, request: &wire::PayoutRequest, metadata: Option<&str>) -> bool {
        self.request == *request && same_metadata(self.metadata.as_deref(), metadata)
    }
}

/// Whether two metadata texts say the same (see [`PayoutRecord::is_same_payout`]).
fn same_metadata(a: Option<&str>, b: Option<&str>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            a == b
                || matches!(
                    (
                        serde_json::from_str::<serde_json::Value>(a),
                        serde_json::from_str::<serde_json::Value>(b),
                    ),
                    (Ok(a), Ok(b)) if same_json(&a, &b)
                )
        }
        _ => false,
    }
}

/// JSON values compared as JSON means them: objects member order aside (`serde_json` maps),
/// numbers by value (`1`, `1.0`, `1e0` and `-0` against `0` alike), exactly: an integer
/// equals a number written with a fraction or an exponent only when that number is the very
/// same integer (`100000000000000001` is not `1e17`, though their nearest doubles are).
fn same_json(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => same_number(x, y),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same_json(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(key, x)| y.get(key).is_some_and(|y| same_json(x, y)))
        }
        _ => a == b,
    }
}

/// Two JSON numbers compared exactly (see [`same_json`]).
fn same_number(x: &serde_json::Number, y: &serde_json::Number) -> bool {
    let integer = |n: &serde_json::Number| {
        n.as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
    };
    // A double that is an integer within 64 bits, as that integer.
    let whole = |f: f64| {
        let in_range = f >= -(2f64.powi(63)) && f < 2f64.powi(64);
        #[allow(clippy::cast_possible_truncation)] // used only when whole and in range: exact
        (in_range && f.fract() == 0.0).then_some(f as i128)
    };
    match (integer(x), integer(y)) {
        (Some(x), Some(y)) => x == y,
        (Some(i), None) => y.as_f64().and_then(whole) == Some(i),
        (None, Some(i)) => x.as_f64().and_then(whole) == Some(i),
        (None, None) => x
            .as_f64()
            .zip(y.as_f64())
            .is_some_and(|(x, y)| x.partial_cmp(&y) == Some(std::cmp::Ordering::Equal)),
    }
}

impl fmt::Debug for PayoutRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayoutRecord")
            .field("payment_id", &self.payment_id)
            .field("phone", &rp_model::mask_phone(&self.request.account.number))
            .field("amount", &self.request.payment.amount)
            .field("currency", &self.request.payment.currency)
            .field("state", &self.state)
            .field("version", &self.version)
            .field("created_at", &self.created_at)
            .field("updated_at", &self.updated_at)
            .field("request_id", &self.request_id)
            .field("last_code", &self.last_code)
            .field("last_message", &self.last_message)
            .field("attention", &self.attention)
            .field("maybe_sent", &self.maybe_sent)
            .field("claimed_by", &self.claimed_by)
            .field("attempts", &self.attempts)
            .field("lease_until", &self.lease_until)
            .field("next_check_at", &self.next_check_at)
            .field("metadata", &self.metadata.is_some())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rp_model::{CustomerId, Money, Msisdn, Payout, ProjectId};
    use std::time::Duration;

    fn record(id: &str, at: u64) -> PayoutRecord {
        let payout = Payout::builder()
            .payment_id(PaymentId::new(id).unwrap())
            .phone(Msisdn::parse("77011234567").unwrap())
            .amount(Money::kzt(100).unwrap())
            .customer_id(CustomerId::new("c").unwrap())
            .build()
            .unwrap();
        PayoutRecord::new(
            payout.payment_id().clone(),
            payout.to_request(ProjectId::new(1).unwrap()),
            SystemTime::UNIX_EPOCH + Duration::from_secs(at),
        )
    }

    #[test]
    fn the_serialised_state_is_tagged_and_stable() {
        let cases = [
            (PayoutState::Created, r#"{"kind":"created"}"#),
            (PayoutState::Unknown, r#"{"kind":"unknown"}"#),
            (PayoutState::NotRegistered, r#"{"kind":"not_registered"}"#),
            (
                PayoutState::PaymentIdTaken,
                r#"{"kind":"payment_id_taken"}"#,
            ),
            (
                PayoutState::Status(PaymentStatus::PartiallyPaidOut),
                r#"{"kind":"status","value":"partially paid out"}"#,
            ),
            (
                PayoutState::Status(PaymentStatus::Other("brand new".into())),
                r#"{"kind":"status","value":"brand new"}"#,
            ),
            (
                PayoutState::Rejected {
                    code: ResponseCode::new("2004"),
                    message: "Required field".into(),
                },
                r#"{"kind":"rejected","value":{"code":"2004","message":"Required field"}}"#,
            ),
        ];
        for (state, text) in cases {
            assert_eq!(serde_json::to_string(&state).unwrap(), text);
            assert_eq!(serde_json::from_str::<PayoutState>(text).unwrap(), state);
        }
        assert_eq!(
            PayoutState::Status(PaymentStatus::Success).label(),
            "success"
        );
        assert_eq!(PayoutState::NotRegistered.label(), "not_registered");
    }

    #[test]
    fn status_rules() {
        use PaymentStatus as P;
        use StatusChange as C;
        let cases = [
            (PayoutState::Created, P::Processing, C::Apply),
            (PayoutState::Accepted, P::Success, C::Apply),
            (PayoutState::Unknown, P::Decline, C::Apply),
            (
                PayoutState::Status(P::Processing),
                P::Processing,
                C::Duplicate,
            ),
            (PayoutState::Status(P::Processing), P::Success, C::Apply),
            (PayoutState::Status(P::Success), P::Success, C::Duplicate),
            (PayoutState::Status(P::Success), P::Processing, C::Stale),
            (PayoutState::Status(P::Decline), P::Processing, C::Stale),
            (PayoutState::Status(P::Success), P::Reversed, C::Reversal),
            (
                PayoutState::Status(P::PartiallyPaidOut),
                P::Refunded,
                C::Reversal,
            ),
            (PayoutState::Status(P::Success), P::Decline, C::Conflict),
            (PayoutState::Status(P::Decline), P::Success, C::Conflict),
            (PayoutState::Status(P::Reversed), P::Success, C::Conflict),
            // A redelivered `processing` of the request that errored must not hide the error.
            (PayoutState::Status(P::Error), P::Processing, C::Stale),
            (PayoutState::Status(P::Error), P::AwaitingRetry, C::Stale),
            (PayoutState::Status(P::Error), P::Success, C::Apply),
            (PayoutState::Status(P::Error), P::Decline, C::Apply),
            // An unknown status after a final one may move money: never dropped as stale.
            (
                PayoutState::Status(P::Success),
                P::Other("partially reversed".into()),
                C::Unrecognised,
            ),
            (
                PayoutState::Status(P::Decline),
                P::Other("something new".into()),
                C::Unrecognised,
            ),
            (
                PayoutState::Status(P::Processing),
                P::Other("something new".into()),
                C::Apply,
            ),
            (
                PayoutState::Status(P::Success),
                P::PartiallyPaidOut,
                C::Conflict,
            ),
            (PayoutState::PaymentIdTaken, P::Success, C::Conflict),
            (PayoutState::PaymentIdTaken, P::Error, C::Conflict),
        ];
        for (state, new, expected) in cases {
            assert_eq!(state.on_status(&new), expected, "{state} + {new}");
        }
    }

    #[test]
    fn debug_masks_the_phone() {
        let shown = format!("{:?}", record("a", 1));
        assert!(!shown.contains("77011234567"), "{shown}");
        assert!(shown.contains("7701***4567"), "{shown}");
    }

    #[test]
    fn settled_and_resendable() {
        assert!(PayoutState::Status(PaymentStatus::Success).is_settled());
        assert!(!PayoutState::Status(PaymentStatus::Error).is_settled());
        assert!(PayoutState::Status(PaymentStatus::Error).is_resendable());
        assert!(PayoutState::NotRegistered.is_resendable());
        assert!(!PayoutState::Unknown.is_settled());
        assert!(!PayoutState::Unknown.is_resendable());
        assert!(PayoutState::PaymentIdTaken.is_settled());
        assert!(!PayoutState::PaymentIdTaken.is_resendable());
    }

    #[test]
    fn the_same_payout_has_the_same_request_and_metadata() {
        let mut kept = record("p-1", 1);
        let request = kept.request.clone();
        assert!(kept.is_same_payout(&request, None));
        assert!(!kept.is_same_payout(&request, Some("{}")));
        kept.metadata = Some(r#"{"order":42,"tags":["a"]}"#.to_owned());
        assert!(!kept.is_same_payout(&request, None));
        assert!(kept.is_same_payout(&request, Some(r#"{"tags": ["a"], "order": 42}"#)));
        assert!(!kept.is_same_payout(&request, Some(r#"{"order":43,"tags":["a"]}"#)));
        let mut other = request.clone();
        other.payment.amount += 1;
        assert!(!kept.is_same_payout(&other, kept.metadata.as_deref()));
        // Numbers by value.
        kept.metadata =
            Some(r#"{"qty":1.0,"cents":1e2,"neg":-0,"big":18446744073709551615}"#.to_owned());
        assert!(kept.is_same_payout(
            &request,
            Some(r#"{"cents":100,"qty":1,"neg":0,"big":18446744073709551615}"#)
        ));
        assert!(!kept.is_same_payout(
            &request,
            Some(r#"{"cents":100,"qty":1,"neg":0,"big":18446744073709551614}"#)
        ));
        assert!(!kept.is_same_payout(
            &request,
            Some(r#"{"cents":100.5,"qty":1,"neg":0,"big":18446744073709551615}"#)
        ));
        // Kept text that does not read as JSON is compared as text.
        kept.metadata = Some("not json".to_owned());
        assert!(kept.is_same_payout(&request, Some("not json")));
        assert!(!kept.is_same_payout(&request, Some("not  json")));
    }
}
