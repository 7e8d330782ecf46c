//! Domain and wire types for payouts to mobile phone balances in Kazakhstan through the
//! Rocketpay Gate API (the ECommPay platform).
//!
//! This is the crate a merchant's code touches first. It has no I/O, no async and no HTTP:
//!
//! - [`Msisdn`]: a payable Kazakhstan mobile number, parsed from any common written form into
//!   the 11 digits the API wants, masked in `Debug` and `Display`; [`PrefixInfo`] gives an
//!   operator *hint* (numbers are portable).
//! - [`Money`] and [`Currency`]: integer minor units (KZT has 2 digits), exact decimal parsing,
//!   Kazakhstan-style display, checked arithmetic. No floating point anywhere.
//! - [`Operator`]: `ACTIV`, `ALTEL`, `BEELINE`, `KCELL`, `TELE2`, and unknown IDs kept as they came.
//! - Identifiers: [`ProjectId`], [`PaymentId`] (the idempotency key), [`CustomerId`],
//!   [`RequestId`], [`OperationId`] (exact 64-bit integers).
//! - [`PaymentStatus`], [`OperationStatus`], [`RequestStatus`] with `is_final()` and unknown
//!   values kept; [`ResponseCode`] with the platform's 378-code table ([`CodeInfo`],
//!   [`CodeCategory`]); [`GateTime`] for the platform's timestamps.
//! - [`wire`]: serde types for every message (requests, synchronous responses, callbacks,
//!   status responses) that keep unknown members.
//! - [`Payout`]: a payout that is valid by construction, from [`Payout::builder`].
//!
//! # Example
//!
//! ```
//! use rp_model::{wire, Currency, CustomerId, Money, Msisdn, PaymentId, Payout, ProjectId};
//!
//! // A merchant's input, in the forms people write.
//! let phone = Msisdn::parse("8 (701) 123-45-67")?;
//! let amount = Money::parse("1 500,00", Currency::KZT)?;
//!
//! let payout = Payout::builder()
//!     .payment_id(PaymentId::new("payout-2024-000047")?)
//!     .phone(phone)
//!     .amount(amount)
//!     .customer_id(CustomerId::new("customer-123")?)
//!     .build()?;
//! let request: wire::PayoutRequest = payout.to_request(ProjectId::new(1234)?);
//! assert_eq!(request.account.number, "77011234567");
//! assert_eq!(request.payment.amount, 150_000);
//!
//! // A callback, as the platform sends it (verify its signature with rp-sign first).
//! let callback: wire::Callback = serde_json::from_str(r#"{
//!     "project_id": 1234,
//!     "payment": {"id": "payout-2024-000047", "type": "payout", "status": "success"},
//!     "operation": {"id": 5028800010128225, "status": "success", "code": "0"},
//!     "something_new": {"kept": true}
//! }"#).unwrap();
//! assert!(callback.payment_status().unwrap().is_final());
//! assert_eq!(callback.operation.unwrap().id.unwrap().get(), 5_028_800_010_128_225);
//! assert!(callback.extra.contains_key("something_new"));
//! # Ok::<(), rp_model::Error>(())
//! ```

mod code;
mod error;
mod generated;
mod ids;
mod lenient;
mod limits;
mod money;
mod operator;
mod payout;
mod phone;
mod status;
mod time;
pub mod wire;

pub use code::{CodeCategory, CodeInfo, ResponseCode};
pub use error::Error;
pub use ids::{CustomerId, OperationId, PaymentId, ProjectId, RequestId};
pub use limits::{
    Headroom, LimitError, LimitKind, LimitTracker, Limits, Period, Usage, usage_hour,
};
pub use money::{Currency, Money};
pub use operator::{Operator, PrefixInfo};
pub use payout::{Payout, PayoutBuilder};
pub use phone::Msisdn;
pub use status::{OperationStatus, PaymentStatus, RequestStatus};
pub use time::GateTime;

/// Masks a phone-number-like string for logs (`7701***4567`), whatever its form.
///
/// Use it for numbers that did not parse as an [`Msisdn`] (e.g. `account.number` of a callback).
pub fn mask_phone(raw: &str) -> String {
    let digits: String = raw.chars().filter(char::is_ascii_digit).collect();
    phone::mask_digits(&digits)
}
