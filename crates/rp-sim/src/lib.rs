//! A local Rocketpay Gate simulator for mobile payouts in Kazakhstan: the demo, end-to-end
//! tests and merchants' own CI run against it, because the platform has no public sandbox for
//! this payment method.
//!
//! It serves the three Gate endpoints a payout client needs, with the platform's request
//! checks and response shapes (the crate README has the full contract; the platform facts are
//! in the repository's `spec/gate-api.md`):
//!
//! - `POST /v2/info/mobile/payout/list`: the operators.
//! - `POST /v2/payment/mobile/payout`: records a payout (`processing`), which becomes
//!   `success`, `decline` or `error` after the processing delay; then a signed callback is
//!   sent (HTTP `POST`) to the callback URL and retried on the platform's schedule until answered with 200.
//! - `POST /v2/payment/status`: the payment, its operations and errors, signed.
//!
//! Requests are checked like the platform does: invalid JSON (2003), a missing field (2004,
//! naming it), an unknown project (2442), an empty or invalid signature (3262, 3261), a
//! duplicate payment ID (3041; a payment in status `error` may be resent), a currency other
//! than KZT (3023), an amount over the limit (3104), a phone number that is not a payable
//! Kazakhstan mobile number (20102), and, when configured, the project's limits
//! ([`ProjectLimits`]: 3358 below the minimum, 3104 above the maximum per payout,
//! 3109/3108/3106 over the amount and 3112/3111/3110 over the count of the last day, week or
//! month, checked atomically with recording the payout); an unknown payment's status gives 3061 (a signed HTTP 200
//! body by default, or the HTTP 404 envelope with [`SimulatorBuilder::not_found_404`]). A
//! resend of an existing payment ID gets 3041 before its other fields are checked. Like the
//! platform, the status endpoint may not know a payment for a while after it was recorded
//! ([`SimulatorBuilder::status_lag`]; `rp sim` applies the platform's 10 s × the time scale).
//!
//! The server reads no body over 64 KiB (413), gives a client 10 s for its headers and 10 s
//! for its body (then closes, or answers 408), and serves at most 256 connections at once;
//! see [`SimulatorBuilder::body_limit`], [`SimulatorBuilder::header_read_timeout`],
//! [`SimulatorBuilder::body_read_timeout`] and [`SimulatorBuilder::max_connections`].
//!
//! **Magic values** (the last four digits of the phone number) trigger every other outcome:
//! declines, `error`, `partially paid out`, `awaiting clarification` then `decline`, no
//! callback, duplicate, out-of-order, badly signed, late, reversed and partially reversed
//! callbacks, HTTP 500 after recording (with a resend refused by 3028 or 3109 instead of 3041),
//! a dropped connection, 429 and a slow response. See
//! [`Magic`] and [`MAGIC_TABLE`].
//!
//! State is open to tests: [`RunningSimulator::payments`], [`RunningSimulator::requests`],
//! [`RunningSimulator::callbacks`], [`RunningSimulator::force`],
//! [`RunningSimulator::limit_usage`], and the same under `/_sim/` over HTTP
//! (`GET /_sim/payments`, `GET /_sim/payments/{id}`, `POST /_sim/payments/{id}/force`,
//! `GET /_sim/requests`, `GET /_sim/callbacks`, `GET /_sim/limits`, `POST /_sim/reset`,
//! `GET /_sim/config`).
//!
//! With the `cli` feature (on by default): `SimArgs` (clap) and `run`, which the `rp-sim`
//! binary and `rp sim` use.
//!
//! # Example
//!
//! ```
//! use std::time::Duration;
//!
//! use rp_model::PaymentStatus;
//! use rp_sign::{SecretKey, Signer};
//! use rp_sim::{DEFAULT_PROJECT_ID, DEFAULT_SECRET_KEY, Simulator};
//! use serde_json::json;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sim = Simulator::builder()
//!     .processing_delay(Duration::from_millis(10))
//!     .start()
//!     .await?;
//!
//! // A signed payout request, as any client sends it.
//! let signer = Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY));
//! let body = signer.sign_request_body(&json!({
//!     "general": {"project_id": DEFAULT_PROJECT_ID, "payment_id": "payout-1"},
//!     "customer": {"id": "customer-1"},
//!     "account": {"number": "77011234567"},
//!     "payment": {"amount": 150_000, "currency": "KZT"},
//! }))?;
//! let response = reqwest::Client::new()
//!     .post(format!("{}/v2/payment/mobile/payout", sim.base_url()))
//!     .body(body)
//!     .send()
//!     .await?;
//! assert_eq!(response.status(), 200);
//! let answer: serde_json::Value = serde_json::from_slice(&response.bytes().await?)?;
//! assert_eq!(answer["status"], "success"); // accepted for processing
//!
//! // Exactly one payout was recorded; it succeeds after the processing delay.
//! assert_eq!(sim.payments().len(), 1);
//! tokio::time::sleep(Duration::from_millis(100)).await;
//! assert_eq!(sim.payment("payout-1").unwrap().status, PaymentStatus::Success);
//! sim.shutdown().await;
//! # Ok(())
//! # }
//! ```

#[cfg(feature = "cli")]
mod cli;
mod config;
mod control;
mod error;
mod gate;
mod lifecycle;
mod limits;
mod magic;
mod rng;
mod server;
mod state;

#[cfg(feature = "cli")]
pub use cli::{SimArgs, run};
pub use config::{
    CLARIFICATION_TIMEOUT, DEFAULT_AMOUNT_LIMIT, DEFAULT_BODY_LIMIT, DEFAULT_LISTEN,
    DEFAULT_MAX_CONNECTIONS, DEFAULT_PROCESSING_DELAY, DEFAULT_PROJECT_ID, DEFAULT_READ_TIMEOUT,
    DEFAULT_SECRET_KEY, DEFAULT_SLOW_DELAY, PLATFORM_STATUS_LAG, Project, Rate, TimeScale,
    parse_rate_arg,
};
pub use error::Error;
pub use gate::{OPERATORS_PATH, PAYOUT_PATH, STATUS_PATH};
pub use lifecycle::{MAX_CALLBACK_ATTEMPTS, Outcome, callback_retry_delay};
pub use limits::{LimitUsage, ProjectLimits};
pub use magic::{MAGIC_TABLE, Magic};
pub use server::{RunningSimulator, Simulator, SimulatorBuilder};
pub use state::{CallbackRecord, RequestRecord, SimOperation, SimPayment};
