//! What the simulator remembers: payments, the request log and the callback log.

use std::collections::HashMap;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rp_model::wire::{self, ErrorItem};
use rp_model::{
    GateTime, Msisdn, OperationId, OperationStatus, Operator, PaymentStatus, ResponseCode,
};
use serde::Serialize;

use crate::rng::SplitMix64;
use crate::{Magic, Rate};

/// A payment as the simulator holds it (`GET /_sim/payments/{id}`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SimPayment {
    /// The project.
    pub project_id: u64,
    /// The merchant's payment ID.
    pub payment_id: String,
    /// The current payment status.
    pub status: PaymentStatus,
    /// The amount in minor units.
    pub amount: u64,
    /// The currency code as requested.
    pub currency: String,
    /// The conversion rate to KZT when the currency is not KZT (operations then report
    /// `sum_converted` in KZT).
    pub rate: Option<Rate>,
    /// The phone number (the full digits when serialised; masked in `Debug`).
    pub phone: Msisdn,
    /// The operator reported in `account.type`.
    pub operator: Operator,
    /// `customer.id`.
    pub customer_id: String,
    /// `payment.description` (empty when none was sent).
    pub description: String,
    /// The magic value of the phone number, if any.
    pub magic: Option<Magic>,
    /// How many payout requests were accepted for this payment ID (a resend after `error`
    /// is the second).
    pub accepted_requests: u32,
    /// Every operation, oldest first.
    pub operations: Vec<SimOperation>,
    /// How many callbacks were queued for delivery (each retried until answered with 200).
    pub callbacks_sent: u32,
    /// When the payment was first recorded.
    pub created_at: GateTime,
}

impl SimPayment {
    /// The newest operation.
    pub fn last_operation(&self) -> Option<&SimOperation> {
        self.operations.last()
    }

    /// `errors[]` as the platform reports them: the code of the last operation when the
    /// payment is declined or in `error`, or `partially paid out` with a declined last part.
    pub fn errors(&self) -> Vec<ErrorItem> {
        let Some(operation) = self.last_operation() else {
            return Vec::new();
        };
        let reported = match self.status {
            PaymentStatus::Decline | PaymentStatus::Error => true,
            PaymentStatus::PartiallyPaidOut => operation.status == OperationStatus::Decline,
            _ => false,
        };
        if !reported {
            return Vec::new();
        }
        vec![ErrorItem {
            code: Some(operation.code.clone()),
            message: Some(operation.message.clone()),
            field: None,
            description: None,
            extra: wire::Extra::new(),
        }]
    }
}

/// One operation of a payment.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SimOperation {
    /// The operation ID (16 digits).
    pub id: OperationId,
    /// `payout`, or `reversal` for the reversals of magic values `0015` and `0017`.
    pub kind: String,
    /// The amount of this operation in minor units (the payment's amount, except for the
    /// split parts of `0007` and the partial reversal of `0017`).
    pub amount: u64,
    /// The operation status.
    pub status: OperationStatus,
    /// The result code (`"0"` on success; `"9999"`-style codes are not used).
    pub code: ResponseCode,
    /// The result message.
    pub message: String,
    /// The request that created it.
    pub request_id: String,
    /// When it was created.
    pub created_date: GateTime,
    /// When its status was last set.
    pub date: GateTime,
}

/// One request the simulator received on a Gate endpoint (`GET /_sim/requests`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct RequestRecord {
    /// When it arrived.
    pub at: GateTime,
    /// The path, e.g. `/v2/payment/mobile/payout`.
    pub path: String,
    /// `general.project_id`, when it could be read.
    pub project_id: Option<u64>,
    /// `general.payment_id`, when it could be read.
    pub payment_id: Option<String>,
    /// The HTTP status answered; `None` when the connection was dropped (magic `0021`).
    pub http_status: Option<u16>,
    /// The platform code of an error answer (`"3041"`, `"429"`, …); `None` on success.
    pub code: Option<String>,
}

/// One callback delivery attempt (`GET /_sim/callbacks`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct CallbackRecord {
    /// When the attempt finished.
    pub at: GateTime,
    /// The project.
    pub project_id: u64,
    /// The payment the callback is about.
    pub payment_id: String,
    /// The payment status the callback reports.
    pub payment_status: PaymentStatus,
    /// The URL it was sent to.
    pub url: String,
    /// Which callback of the payment this is (1 for the first one queued).
    pub sequence: u32,
    /// The attempt number of this delivery (1 is the first try).
    pub attempt: u32,
    /// The HTTP status the receiver answered, if it answered.
    pub http_status: Option<u16>,
    /// The transport error, if the receiver did not answer.
    pub error: Option<String>,
    /// Whether the callback carried a valid signature (`false` only for magic `0013`).
    pub signature_valid: bool,
}

impl CallbackRecord {
    /// Whether this attempt was delivered (answered with HTTP 200).
    pub fn delivered(&self) -> bool {
        self.http_status == Some(200)
    }
}

/// A payment with what only the simulator needs.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub(crate) payment: SimPayment,
    pub(crate) callback_url: Option<String>,
    pub(crate) callback_delay: Duration,
    pub(crate) callbacks_disabled: bool,
    /// When the payment was first recorded (the status lag counts from here).
    pub(crate) recorded_at: Instant,
    /// When a payout request for it was last accepted (the running limits count from here;
    /// a resend after `error` is accepted again).
    pub(crate) accepted_at: Instant,
}

/// The key of a payment: project and payment ID.
pub(crate) type Key = (u64, String);

/// Everything mutable, behind one lock that is never held across an `.await`.
#[derive(Debug)]
pub(crate) struct State {
    pub(crate) payments: Vec<Entry>,
    pub(crate) index: HashMap<Key, usize>,
    pub(crate) requests: Vec<RequestRecord>,
    pub(crate) callbacks: Vec<CallbackRecord>,
    /// Payout requests that reached the magic stage, per payment ID ("first attempt only").
    pub(crate) attempts: HashMap<Key, u32>,
    rng: SplitMix64,
    request_counter: u64,
    operation_base: u64,
    operation_counter: u64,
    seed: u64,
}

impl State {
    pub(crate) fn new(seed: u64) -> State {
        let mut rng = SplitMix64::new(seed);
        // A 16-digit base, like the platform's operation IDs; IDs count up from it.
        let operation_base = 1_000_000_000_000_000 + rng.next_u64() % 8_000_000_000_000_000;
        State {
            payments: Vec::new(),
            index: HashMap::new(),
            requests: Vec::new(),
            callbacks: Vec::new(),
            attempts: HashMap::new(),
            rng,
            request_counter: 0,
            operation_base,
            operation_counter: 0,
            seed,
        }
    }

    /// Forgets everything, and starts the ID sequences again from the seed.
    pub(crate) fn reset(&mut self) {
        *self = State::new(self.seed);
    }

    pub(crate) fn get(&self, key: &Key) -> Option<&Entry> {
        self.index.get(key).and_then(|&i| self.payments.get(i))
    }

    pub(crate) fn get_mut(&mut self, key: &Key) -> Option<&mut Entry> {
        let i = *self.index.get(key)?;
        self.payments.get_mut(i)
    }

    /// The first payment with this ID, in any project.
    pub(crate) fn find(&self, payment_id: &str) -> Option<&Entry> {
        self.payments
            .iter()
            .find(|e| e.payment.payment_id == payment_id)
    }

    pub(crate) fn insert(&mut self, entry: Entry) {
        let key = (entry.payment.project_id, entry.payment.payment_id.clone());
        self.index.insert(key, self.payments.len());
        self.payments.push(entry);
    }

    /// A new request ID: 40 hex digits from the PRNG and a counter, like the platform's.
    pub(crate) fn next_request_id(&mut self) -> String {
        self.request_counter += 1;
        let hex = self.rng.hex(3);
        format!(
            "{}-{:08}",
            hex.get(..40).unwrap_or(&hex),
            self.request_counter
        )
    }

    /// A new operation ID (unique within this simulator run).
    pub(crate) fn next_operation_id(&mut self) -> OperationId {
        self.operation_counter += 1;
        OperationId(self.operation_base + self.operation_counter)
    }
}

/// The current time in the platform's format.
pub(crate) fn now() -> GateTime {
    let seconds = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    GateTime::from_unix_seconds(i64::try_from(seconds).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_per_seed_and_unique() {
        let mut a = State::new(7);
        let mut b = State::new(7);
        let first = a.next_request_id();
        assert_eq!(first, b.next_request_id());
        assert_eq!(first.len(), 49, "{first}");
        assert!(first.ends_with("-00000001"));
        assert_ne!(a.next_request_id(), first);
        let op1 = a.next_operation_id();
        let op2 = a.next_operation_id();
        assert_ne!(op1, op2);
        assert_eq!(op1.get().to_string().len(), 16);
        a.reset();
        assert_eq!(a.next_request_id(), first);
    }
}
