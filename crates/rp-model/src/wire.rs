//! JSON shapes of the Gate API (serde), as lenient as the platform needs.
//!
//! These types describe what travels on the wire; they do not validate business rules (a
//! callback carries whatever the platform sent, a simulator must be able to read a bad request
//! to reject it properly). Build outgoing payouts with [`Payout::builder`](crate::Payout::builder),
//! which cannot produce an invalid request.
//!
//! Every object keeps the members this crate does not model in an `extra` map, so reading and
//! writing a message again loses nothing. Codes may arrive as strings or numbers, integer IDs as
//! numbers or digit strings; statuses and operators this crate does not know are kept. PHP writes
//! an empty object as `[]`: nested objects also accept `[]` and `null` as "absent".

use std::fmt;

use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};

use crate::lenient::{lenient_opt_u64, lenient_u64};
use crate::{
    GateTime, OperationId, OperationStatus, Operator, PaymentStatus, RequestStatus, ResponseCode,
};

/// `POST` path of the operator list ([`OperatorListRequest`]).
pub const OPERATORS_PATH: &str = "/v2/info/mobile/payout/list";
/// `POST` path of the mobile payout ([`PayoutRequest`]).
pub const PAYOUT_PATH: &str = "/v2/payment/mobile/payout";
/// `POST` path of the payment status ([`StatusRequest`]).
pub const STATUS_PATH: &str = "/v2/payment/status";

/// Members of a JSON object that this crate does not model, kept in document order.
pub type Extra = Map<String, Value>;

/// A nested object that PHP may write as `[]` (its empty array) or `null`: both read as absent.
fn lenient_object<'de, D, T>(deserializer: D) -> Result<Option<T>, D::Error>
where
    D: Deserializer<'de>,
    T: DeserializeOwned,
{
    match Value::deserialize(deserializer)? {
        Value::Null => Ok(None),
        Value::Array(items) if items.is_empty() => Ok(None),
        other => T::deserialize(other).map(Some).map_err(D::Error::custom),
    }
}

/// The `general` object of every Gate request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct General {
    /// Your project ID.
    #[serde(with = "lenient_u64")]
    pub project_id: u64,
    /// The payment ID (absent in the operator-list request).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The request signature (set by `rp-sign`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// A per-request callback URL, if the project allows one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merchant_callback_url: Option<String>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

impl General {
    /// `general` with a project ID and an optional payment ID.
    pub fn new(project_id: u64, payment_id: Option<String>) -> General {
        General {
            project_id,
            payment_id,
            signature: None,
            merchant_callback_url: None,
            extra: Extra::new(),
        }
    }
}

/// The customer being paid (`customer`). `Debug` shows the ID only; personal data is redacted.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct Customer {
    /// The merchant's customer ID.
    pub id: String,
    /// The customer's IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ip_address: Option<String>,
    /// First name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_name: Option<String>,
    /// Last name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_name: Option<String>,
    /// Email address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// Where a payout goes (`account` of a payout request). `Debug` masks the number.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct PayoutAccount {
    /// The phone number, 11 digits with country code 7 (`77011234567`).
    pub number: String,
    /// The operator ID, when the merchant names it.
    ///
    /// The field name is taken from the platform's mobile-money payout of the same API family
    /// (`account.service_provider`); the KZ page that would confirm it is not public.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_provider: Option<Operator>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `payment` of a payout request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PaymentAmount {
    /// The amount in minor units (1 000,00 ₸ → `100000`).
    pub amount: u64,
    /// The ISO 4217 alphabetic code (`KZT`).
    pub currency: String,
    /// A description of the payment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v2/payment/mobile/payout`: pay out to a mobile phone balance.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PayoutRequest {
    /// Project, payment ID, signature.
    pub general: General,
    /// The customer.
    pub customer: Customer,
    /// The phone number (and operator).
    pub account: PayoutAccount,
    /// Amount and currency.
    pub payment: PaymentAmount,
    /// Optional parameters the API allows (e.g. `callback`, `interface_type`).
    #[serde(flatten)]
    pub extra: Extra,
}

/// `POST /v2/info/mobile/payout/list`: the operators available to the project.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OperatorListRequest {
    /// Project and signature.
    pub general: General,
}

/// `POST /v2/payment/status`: the status of a payment by its ID.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct StatusRequest {
    /// Project, payment ID and signature.
    pub general: General,
}

/// An item of `errors[]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorItem {
    /// The platform code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ResponseCode>,
    /// The platform message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The request field the error is about, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub field: Option<String>,
    /// More detail: usually text, but the platform has sent arrays here too, so any JSON value.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<Value>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// The synchronous answer to a request: whether it was *registered*, not its result.
///
/// `{"status":"success","request_id":"…","project_id":1234,"payment_id":"…"}` when accepted;
/// `{"status":"error","code":"3041","message":"…","errors":[…]}` when not.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct GateResponse {
    /// `success` (accepted for processing) or `error`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RequestStatus>,
    /// The platform's request ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The project.
    #[serde(
        default,
        with = "lenient_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<u64>,
    /// The payment ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_id: Option<String>,
    /// The error code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ResponseCode>,
    /// The error message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Error details.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

impl GateResponse {
    /// The most specific code in the response: `code`, else the first `errors[].code`.
    pub fn first_code(&self) -> Option<&ResponseCode> {
        self.code
            .as_ref()
            .or_else(|| self.errors.iter().find_map(|e| e.code.as_ref()))
    }

    /// The message that goes with [`GateResponse::first_code`].
    pub fn first_message(&self) -> Option<&str> {
        if self.code.is_some()
            && let Some(message) = &self.message
        {
            return Some(message);
        }
        self.errors
            .iter()
            .find_map(|e| e.message.as_deref())
            .or(self.message.as_deref())
    }
}

/// An amount with its currency code (`sum`, `sum_initial`, `sum_converted`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sum {
    /// Minor units.
    #[serde(with = "lenient_u64")]
    pub amount: u64,
    /// ISO 4217 alphabetic code, as sent.
    pub currency: String,
}

/// `payment` of a callback or status response.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Payment {
    /// The merchant's payment ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// `payout` for payouts.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The payment status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<PaymentStatus>,
    /// When the status was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<GateTime>,
    /// The payment method (`mobile`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub method: Option<String>,
    /// The amount.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub sum: Option<Sum>,
    /// The description.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// One operation within a payment (`operation` of a callback, `operations[]` of a status).
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Operation {
    /// The platform's operation ID (may have 16+ digits).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<OperationId>,
    /// `payout` for payouts.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// The operation status.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<OperationStatus>,
    /// When the status was set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub date: Option<GateTime>,
    /// When the operation was created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_date: Option<GateTime>,
    /// The request that created it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The amount requested.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub sum_initial: Option<Sum>,
    /// The amount after conversion.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub sum_converted: Option<Sum>,
    /// The result code (`"0"` for success).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ResponseCode>,
    /// The result message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Provider details (`id`, `payment_id`, `auth_code`, …), kept as sent.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub provider: Option<Extra>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `account` of a callback: the phone number and the operator that really holds it. `Debug`
/// masks the number.
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Account {
    /// The phone number as the platform sent it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub number: Option<String>,
    /// The operator (after number portability: the real one).
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub operator: Option<Operator>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// `customer` of a callback or status response. `Debug` shows the ID and the names of the other
/// members (a customised callback may carry the customer's phone or email).
#[derive(Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct CustomerRef {
    /// The merchant's customer ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

/// A callback: the platform's signed notification of a payment's result.
///
/// Read it from **verified** bytes only (see `rp-sign` and `rp-payout`); this type does not
/// check the signature.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct Callback {
    /// The project.
    #[serde(
        default,
        with = "lenient_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<u64>,
    /// The payment and its status.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub payment: Option<Payment>,
    /// The phone number and the operator.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub account: Option<Account>,
    /// The customer.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub customer: Option<CustomerRef>,
    /// The operation this callback reports.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub operation: Option<Operation>,
    /// Errors, on declines.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
    /// The signature (root form).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Other members (including `general` in the callback formats that carry one).
    #[serde(flatten)]
    pub extra: Extra,
}

impl Callback {
    /// `payment.id`.
    pub fn payment_id(&self) -> Option<&str> {
        self.payment.as_ref()?.id.as_deref()
    }

    /// `payment.status`.
    pub fn payment_status(&self) -> Option<&PaymentStatus> {
        self.payment.as_ref()?.status.as_ref()
    }
}

/// The answer to a status request: the payment, its operations, and errors.
///
/// A payment the platform does not know gives `errors: [{"code": "3061", …}]` (or a top-level
/// `code`), see [`StatusResponse::first_code`].
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
pub struct StatusResponse {
    /// The project.
    #[serde(
        default,
        with = "lenient_opt_u64",
        skip_serializing_if = "Option::is_none"
    )]
    pub project_id: Option<u64>,
    /// The payment and its status.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub payment: Option<Payment>,
    /// The phone number and the operator.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub account: Option<Account>,
    /// The customer.
    #[serde(
        default,
        deserialize_with = "lenient_object",
        skip_serializing_if = "Option::is_none"
    )]
    pub customer: Option<CustomerRef>,
    /// Every operation of the payment, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub operations: Vec<Operation>,
    /// Errors.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<ErrorItem>,
    /// `error` on error envelopes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<RequestStatus>,
    /// Error code of an error envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<ResponseCode>,
    /// Error message of an error envelope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// The signature.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature: Option<String>,
    /// Other members.
    #[serde(flatten)]
    pub extra: Extra,
}

impl StatusResponse {
    /// The most specific code: top-level `code`, else the first `errors[].code`.
    pub fn first_code(&self) -> Option<&ResponseCode> {
        self.code
            .as_ref()
            .or_else(|| self.errors.iter().find_map(|e| e.code.as_ref()))
    }

    /// The last operation (the newest), whose code and message explain the current status.
    pub fn last_operation(&self) -> Option<&Operation> {
        self.operations.last()
    }
}

impl fmt::Debug for PayoutAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PayoutAccount")
            .field("number", &crate::mask_phone(&self.number))
            .field("service_provider", &self.service_provider)
            .field("extra", &self.extra)
            .finish()
    }
}

impl fmt::Debug for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Account")
            .field("number", &self.number.as_deref().map(crate::mask_phone))
            .field("operator", &self.operator)
            .field("extra", &self.extra)
            .finish()
    }
}

/// `Some("***")` for a present value: personal data in `Debug` output.
fn redacted<T>(value: Option<&T>) -> Option<&'static str> {
    value.map(|_| "***")
}

impl fmt::Debug for Customer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Customer")
            .field("id", &self.id)
            .field("ip_address", &redacted(self.ip_address.as_ref()))
            .field("first_name", &redacted(self.first_name.as_ref()))
            .field("last_name", &redacted(self.last_name.as_ref()))
            .field("email", &redacted(self.email.as_ref()))
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl fmt::Debug for CustomerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CustomerRef")
            .field("id", &self.id)
            .field("extra", &self.extra.keys().collect::<Vec<_>>())
            .finish()
    }
}
