//! The Rocketpay Gate mobile payout client: pay out **exactly once**, handle signed callbacks,
//! and reconcile through the status endpoint, whatever the network does.
//!
//! A merchant's backend needs three calls:
//!
//! - [`Client::payout`] records the payout in a [`PayoutStore`] **before the first byte is
//!   sent**, signs it, sends it, and follows the retry rules of [`retry`]: a request that may
//!   have reached the platform (timeout, dropped connection, 5xx) is resolved by a status
//!   request and, only if the platform does not have it, resent under the **same** payment
//!   ID. It returns a [`PayoutReceipt`] (accepted), or an [`Error`]: [`Error::Rejected`] with
//!   the platform code (nothing reached the platform), or an error for which
//!   [`Error::may_have_reached_platform`] is true ([`Error::OutcomeUnknown`],
//!   [`Error::InFlight`], [`Error::RecordFailed`]): the payout may exist, so it is never paid
//!   again under a new payment ID; reconcile resolves it. Once an attempt may have reached the
//!   platform, a refused resend never ends the call as a rejection. Submitting the same payout
//!   again never pays twice; a different payout under a used payment ID is refused.
//! - [`Client::handle_callback`] takes the raw body of the platform's callback and returns a
//!   [`CallbackOutcome`]: verified (signature and project; a body with a `;` in a value is
//!   refused as ambiguous), checked to be about *this* payout (amount, currency, phone number,
//!   customer), de-duplicated, applied by the state rules (a final status never goes back; a
//!   reversal, a contradiction or an unknown status after a final one is kept and marked for
//!   attention), with the HTTP status and body the web handler must answer.
//! - [`Client::reconcile_and_resume`] asks the status endpoint about every payout whose result
//!   is overdue and sends those the platform does not have (or that ended in `error`) again,
//!   under the same payment ID. ([`Client::reconcile`] only asks; [`Client::resume`] sends one.)
//!
//! Whatever the platform reports under a payment ID (a status after an unknown outcome or a
//! `3041`, a callback) is adopted only if it is the recorded payout; otherwise it is surfaced
//! ([`PayoutState::PaymentIdTaken`], [`PayoutRecord::attention`]), never applied.
//!
//! With the `axum` feature, `rp_payout::axum::callback_router` is that web handler, ready to
//! mount (with a body limit, read timeouts and a concurrency cap).
//!
//! Also: [`Client::status`] and [`Client::operators`]; [`Config::from_env`] (`RP_PROJECT_ID`,
//! `RP_SECRET_KEY`, `RP_BASE_URL`); an injectable [`Transport`](rp_transport::Transport),
//! [`Clock`] and [`PaymentIdGenerator`] for tests. Logs carry the payment ID, never the secret
//! or a full phone number.
//!
//! # Example
//!
//! ```
//! use std::sync::Arc;
//! use rp_model::{CustomerId, Money, Msisdn, Payout, ProjectId};
//! use rp_payout::{Acceptance, CallbackOutcome, Client, Config, PayoutState};
//! use rp_sign::SecretKey;
//! use rp_transport::ScriptedTransport;
//!
//! # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(async {
//! // In production: `Client::from_env()?` or `Client::new(config)?` (HTTPS to the Gate).
//! // Here a scripted transport plays the Gate (rp-transport's `test-util` feature: add
//! // `rp-transport = { version = "0.1", features = ["test-util"] }` to your dev-dependencies).
//! let gate = ScriptedTransport::new().then_respond(
//!     200,
//!     r#"{"status":"success","request_id":"r-1","project_id":1234,"payment_id":"order-47"}"#,
//! );
//! let config = Config::new(ProjectId::new(1234)?, SecretKey::from("project-secret"));
//! let client = Client::builder(config).transport(Arc::new(gate.clone())).build()?;
//!
//! // 1. Pay out: once, whatever the network does.
//! let payout = Payout::builder()
//!     .payment_id(client.new_payment_id()?) // or your own ID, e.g. from the order
//!     .phone(Msisdn::parse("+7 701 123 45 67")?)
//!     .amount(Money::parse("1 500", rp_model::Currency::KZT)?)
//!     .customer_id(CustomerId::new("customer-123")?)
//!     .build()?;
//! let receipt = client.payout(&payout).await?;
//! assert_eq!(receipt.acceptance, Acceptance::Accepted);
//! assert_eq!(receipt.state, PayoutState::Accepted);
//!
//! // Submitting it again sends nothing.
//! let again = client.payout(&payout).await?;
//! assert_eq!(again.acceptance, Acceptance::AlreadyRecorded);
//! assert_eq!(gate.requests().len(), 1);
//!
//! // 2. The platform's callback arrives (here signed by rp-sign's test helper).
//! let body = rp_sign::testing::sign_callback(
//!     &serde_json::json!({
//!         "project_id": 1234,
//!         "payment": {"id": payout.payment_id().as_str(), "type": "payout", "status": "success",
//!                     "sum": {"amount": 150000, "currency": "KZT"}},
//!         "account": {"number": "77011234567"},
//!         "customer": {"id": "customer-123"},
//!         "operation": {"id": 17, "type": "payout", "status": "success", "code": "0", "message": "Success"}
//!     }),
//!     &SecretKey::from("project-secret"),
//! )?;
//! let outcome = client.handle_callback(&body).await;
//! assert!(matches!(outcome, CallbackOutcome::Applied { .. }));
//! assert_eq!((outcome.http_status(), outcome.body()), (200, "OK"));
//!
//! // The same callback again is a duplicate, still answered 200 OK.
//! let outcome = client.handle_callback(&body).await;
//! assert!(matches!(outcome, CallbackOutcome::Duplicate { .. }));
//! assert_eq!(outcome.http_status(), 200);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

#[cfg(feature = "axum")]
pub mod axum;
mod callback;
mod client;
mod clock;
mod config;
#[cfg(feature = "test-util")]
pub mod conformance;
mod error;
mod failpoint;
mod identity;
mod ids;
mod operators;
mod owner;
mod reconcile;
pub mod retry;
mod store;

pub use callback::CallbackOutcome;
pub use client::{
    Acceptance, Client, ClientBuilder, OPERATORS_PATH, PAYOUT_PATH, PayoutReceipt, Recorded,
    STATUS_PATH, StatusReport,
};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{Config, DEFAULT_BASE_URL, ENV_BASE_URL, ENV_PROJECT_ID, ENV_SECRET_KEY};
pub use error::Error;
pub use ids::{PaymentIdGenerator, RandomPaymentIds, SequentialPaymentIds};
pub use operators::OperatorList;
pub use owner::{Liveness, Owner};
pub use reconcile::{
    RECONCILE_BATCH, ReconcileEntry, ReconcileReport, ReconcileResult, ResendEntry, ResendResult,
};
pub use retry::RetryPolicy;
/// The payout and its payment ID, as [`Client::payout`] takes them (from `rp-model`, re-exported
/// so that they are at hand and linked here).
pub use rp_model::{PaymentId, Payout};
/// The boxed future [`PayoutStore`] methods return: what an implementation of the trait names.
pub use rp_transport::BoxFuture;
pub use store::{
    API_SOURCE_PREFIX, EventSource, Inserted, MAX_PAGE, MemoryStore, OPERATOR_SOURCE_PREFIX,
    PayoutEvent, PayoutOrigin, PayoutQuery, PayoutRecord, PayoutState, PayoutStore, StateCount,
    StatusChange, UnknownOrigin, Updated, usage,
};

/// The workspace README's library example, compiled as a doctest so it cannot go stale.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeExample;
