//! The payout lifecycle: [`PayoutRecord`], [`PayoutState`], the [`PayoutStore`] trait and the
//! in-memory [`MemoryStore`].
//!
//! A payout is recorded **before** its first byte is sent (invariant 5), then moves through
//! states as answers, status requests and callbacks arrive. Every change is a compare-and-set on
//! the record's `version`, so a database implementation needs nothing more than a unique key on
//! the payment ID and `UPDATE … WHERE payment_id = ? AND version = ?`.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::SystemTime;

use rp_model::{PaymentId, PaymentStatus, ResponseCode, wire};
use rp_transport::BoxFuture;

use crate::Error;

/// Where a payout stands, as this client knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
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
        }
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
            .finish_non_exhaustive()
    }
}

/// The answer to [`PayoutStore::insert`].
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// The record was stored.
    New(PayoutRecord),
    /// A record with this payment ID already exists (returned, unchanged).
    Existing(PayoutRecord),
}

/// The answer to [`PayoutStore::update`].
#[derive(Debug, Clone, PartialEq)]
pub enum Updated {
    /// Stored; the record as stored (with its new version).
    Done(PayoutRecord),
    /// The version did not match: the current record (`None` if there is none).
    Conflict(Option<PayoutRecord>),
}

/// Where payouts are recorded. Object-safe and async, so a database can implement it.
///
/// Each method is one atomic step per payout; nothing needs a transaction across payouts.
pub trait PayoutStore: Send + Sync + fmt::Debug {
    /// Stores `record` unless its payment ID is already recorded, atomically (a unique key).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn insert(&self, record: PayoutRecord) -> BoxFuture<'_, Result<Inserted, Error>>;

    /// The record for `payment_id`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn get<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Option<PayoutRecord>, Error>>;

    /// Replaces the record with `record.payment_id` if its version is `expected_version`; the
    /// stored record gets version `expected_version + 1` (compare-and-set).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails (a version mismatch is [`Updated::Conflict`]).
    fn update(
        &self,
        expected_version: u64,
        record: PayoutRecord,
    ) -> BoxFuture<'_, Result<Updated, Error>>;

    /// Up to `limit` records that are not settled ([`PayoutState::is_settled`]), in payment-ID
    /// order, starting after `after` (all of them from the start when `None`). Keyset
    /// pagination, so a caller can walk every unsettled payout however many there are; in SQL:
    /// `WHERE NOT settled AND payment_id > $after ORDER BY payment_id LIMIT $limit`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn unsettled(
        &self,
        after: Option<PaymentId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<PayoutRecord>, Error>>;
}

/// An in-memory [`PayoutStore`], for tests and single-process tools. Everything is lost when
/// the process ends: use a database-backed store in production.
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<BTreeMap<PaymentId, PayoutRecord>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record, ordered by payment ID.
    pub fn all(&self) -> Vec<PayoutRecord> {
        self.lock().values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<PaymentId, PayoutRecord>> {
        self.records.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl PayoutStore for MemoryStore {
    fn insert(&self, record: PayoutRecord) -> BoxFuture<'_, Result<Inserted, Error>> {
        let result = {
            let mut records = self.lock();
            match records.get(&record.payment_id) {
                Some(existing) => Inserted::Existing(existing.clone()),
                None => {
                    records.insert(record.payment_id.clone(), record.clone());
                    Inserted::New(record)
                }
            }
        };
        Box::pin(std::future::ready(Ok(result)))
    }

    fn get<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Option<PayoutRecord>, Error>> {
        let found = self.lock().get(payment_id).cloned();
        Box::pin(std::future::ready(Ok(found)))
    }

    fn update(
        &self,
        expected_version: u64,
        mut record: PayoutRecord,
    ) -> BoxFuture<'_, Result<Updated, Error>> {
        let result = {
            let mut records = self.lock();
            match records.get_mut(&record.payment_id) {
                Some(current) if current.version == expected_version => {
                    record.version = expected_version.saturating_add(1);
                    *current = record.clone();
                    Updated::Done(record)
                }
                Some(current) => Updated::Conflict(Some(current.clone())),
                None => Updated::Conflict(None),
            }
        };
        Box::pin(std::future::ready(Ok(result)))
    }

    fn unsettled(
        &self,
        after: Option<PaymentId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<PayoutRecord>, Error>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        let open: Vec<PayoutRecord> = self
            .lock()
            .range((lower, Unbounded))
            .map(|(_, record)| record)
            .filter(|r| !r.state.is_settled())
            .take(limit)
            .cloned()
            .collect();
        Box::pin(std::future::ready(Ok(open)))
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

    fn block_on<T>(future: BoxFuture<'_, T>) -> T {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap()
            .block_on(future)
    }

    #[test]
    fn insert_is_once_per_payment_id() {
        let store = MemoryStore::new();
        assert!(matches!(
            block_on(store.insert(record("a", 1))).unwrap(),
            Inserted::New(_)
        ));
        let mut again = record("a", 2);
        again.state = PayoutState::Accepted;
        match block_on(store.insert(again)).unwrap() {
            Inserted::Existing(existing) => assert_eq!(existing.state, PayoutState::Created),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn update_is_compare_and_set() {
        let store = MemoryStore::new();
        block_on(store.insert(record("a", 1))).unwrap();
        let mut next = record("a", 1);
        next.state = PayoutState::Accepted;
        let Updated::Done(stored) = block_on(store.update(0, next.clone())).unwrap() else {
            panic!("first update must win");
        };
        assert_eq!(stored.version, 1);
        match block_on(store.update(0, next)).unwrap() {
            Updated::Conflict(Some(current)) => assert_eq!(current.version, 1),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            block_on(store.update(0, record("missing", 1))).unwrap(),
            Updated::Conflict(None)
        );
    }

    #[test]
    fn unsettled_lists_open_payouts_page_by_page() {
        let store = MemoryStore::new();
        for (id, at, state) in [
            ("a-new", 30, PayoutState::Created),
            ("b-old", 10, PayoutState::Accepted),
            ("c-paid", 5, PayoutState::Status(PaymentStatus::Success)),
            ("d-error", 20, PayoutState::Status(PaymentStatus::Error)),
            (
                "e-refused",
                1,
                PayoutState::Rejected {
                    code: ResponseCode::new("2004"),
                    message: "x".into(),
                },
            ),
        ] {
            let mut r = record(id, at);
            r.state = state;
            block_on(store.insert(r)).unwrap();
        }
        let ids = |page: Vec<PayoutRecord>| -> Vec<String> {
            page.into_iter()
                .map(|r| r.payment_id.into_string())
                .collect()
        };
        assert_eq!(
            ids(block_on(store.unsettled(None, 10)).unwrap()),
            ["a-new", "b-old", "d-error"]
        );
        let first = ids(block_on(store.unsettled(None, 2)).unwrap());
        assert_eq!(first, ["a-new", "b-old"]);
        let after = PaymentId::new(first[1].as_str()).unwrap();
        assert_eq!(
            ids(block_on(store.unsettled(Some(after), 2)).unwrap()),
            ["d-error"]
        );
        let last = PaymentId::new("d-error").unwrap();
        assert!(block_on(store.unsettled(Some(last), 2)).unwrap().is_empty());
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
}
