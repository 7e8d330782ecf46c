//! `rp serve`: the payout desk a merchant runs next to their backend, on the ledger.
//!
//! One process ([`serve`]) runs:
//! - the **callback endpoint** (rp-payout's hardened router): verified callbacks applied to
//!   the ledger, answered as the platform expects;
//! - the **reconciler**: overdue payouts asked about on a schedule, and sent again under the
//!   same payment ID when the platform does not have them;
//! - the **batch worker**: batches registered with `rp batch run` that stopped (a worker was
//!   killed, Ctrl-C) are resumed, under the stricter of the project's limits and the batch's;
//! - the **console** ([`router`]): server-rendered pages (maud templates, a few lines of our
//!   own JavaScript for the live parts, every asset in the binary) for operators who sign in:
//!   payments (filters, counts, pages, live states, CSV export), one payment (its history,
//!   signed bodies, "ask the status now", "send again under the same payment ID"), the single
//!   payout form with its confirmation, batches with their progress and report, limits and
//!   what they use, what needs attention;
//! - `/healthz`, `/readyz` and `/metrics` (Prometheus, with an API key of either role);
//! - on both listeners, TLS of its own when given a certificate and key ([`Tls`]).
//!
//! Operators and sessions live in the ledger ([`rp_ledger::AccessStore`]): several instances
//! on one PostgreSQL ledger share them. Passwords are hashed with argon2id
//! ([`hash_password`]); a session is a random token in an `HttpOnly; Secure;
//! SameSite=Strict` cookie, of which the ledger keeps the SHA-256; every form carries the
//! session's CSRF token; failed logins are limited per name; an operator may have a second
//! factor (TOTP, [`new_totp_secret`]; a code is accepted once); roles are `view` and `pay`;
//! every operator action is written into the payout's history with the operator's name.
//! Answers carry a strict content security policy (no inline script), frame denial, and
//! `no-store` on pages.
//!
//! Layer: above `rp-batch` and `rp-ledger`, below `rp-cli` (which adds the command line:
//! `rp serve`, `rp serve add-operator`).
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use std::sync::Arc;
//! use rp_console::{Desk, Settings, hash_password};
//! use rp_ledger::{Ledger, OperatorAccount, Role};
//! use rp_model::ProjectId;
//! use rp_payout::{Client, Config};
//! use rp_sign::SecretKey;
//!
//! let ledger = Ledger::open("sqlite::memory:").await?;
//! let project = ProjectId::new(1234)?;
//! let client = Client::builder(Config::new(project, SecretKey::from("project-secret")))
//!     .store(ledger.store(project))
//!     .build()?;
//! let desk = Desk::new(Arc::new(client), ledger.clone(), Settings::default());
//! desk.access()
//!     .put_operator(OperatorAccount::new("anna", hash_password("a long passphrase")?, Role::Pay))
//!     .await?;
//!
//! // The console's router (what `serve` mounts, with the callback endpoint beside it).
//! let app: axum::Router = rp_console::router(desk);
//! # let _ = app;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod api;
mod auth;
mod batch_page;
mod desk;
mod metrics;
mod serve;
mod submit;
mod tls;
mod totp;
mod web;
pub mod webhooks;

pub use api::openapi::{document as openapi_document, document_text as openapi_text};
pub use api::{API_KEY_PREFIX, KEY_BURST, KEY_RATE, MAX_WAITERS, api_key_sha256, new_api_key};
pub use auth::{
    LOGIN_COOKIE, LOGIN_WINDOW, MAX_FAILED_LOGINS, MIN_PASSWORD_CHARS, Me, PasswordError,
    SESSION_COOKIE, hash_password, verify_password,
};
pub use desk::{Desk, Settings};
pub use metrics::Metrics;
pub use serve::{
    CALLBACKS_AT_ONCE, DEFAULT_CALLBACK_PATH, SHUTDOWN_GRACE, ServeOptions, callback_router, serve,
};
pub use submit::RECORD_WAIT;
pub use tls::{Tls, TlsError};
pub use totp::{new_totp_secret, totp_uri};
pub use web::router;
