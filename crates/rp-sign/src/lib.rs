//! Rocketpay Gate (ECommPay platform) signatures, byte-compatible with the vendor's PHP SDK.
//!
//! Every Gate request, every callback and some responses carry an HMAC-SHA512 signature
//! (standard Base64, 88 characters) over a *string to sign* built from the JSON body: one
//! `path:value` line per scalar leaf, sorted by path, joined with `;`. This crate builds that
//! string exactly as `spec/signature.md` §2 states it, signs requests, and verifies callbacks
//! in constant time. It does no I/O: no files, no environment, no network, nothing async.
//!
//! - [`SecretKey`]: the project's secret; never printed, wiped on drop.
//! - [`Signer`]: the keyed HMAC. [`Signer::sign_request_body`] signs a request into
//!   `general.signature`; [`Signer::verify_callback`] checks a callback from its raw bytes
//!   without building a `serde_json::Value`; [`Signer::verify_value`] checks an already
//!   parsed message (e.g. a signed status response). Both return a [`VerifiedCallback`],
//!   from which the message is read on demand ([`VerifiedCallback::deserialize`],
//!   [`VerifiedCallback::value`]).
//! - [`string_to_sign`] and [`explain`] show what is signed, without the key: the first thing
//!   to look at when the platform answers "invalid signature" (code 3261).
//! - [`testing`]: build signed callbacks in tests.
//!
//! # Example
//!
//! ```
//! use rp_sign::{SecretKey, Signer, SortVariant};
//! use serde_json::json;
//!
//! let signer = Signer::new(&SecretKey::from("secret"));
//!
//! // Sign a request: the signature goes into `general.signature`.
//! let request = json!({
//!     "general": {"project_id": 1234, "payment_id": "payment_47"},
//!     "customer": {"id": "customer_123", "ip_address": "198.51.100.47",
//!                  "first_name": "John", "last_name": "Doe", "email": "johndoe@example.com"},
//!     "account": {"number": "71234567890"},
//!     "payment": {"currency": "KZT", "amount": 100000},
//! });
//! let body: Vec<u8> = signer.sign_request_body(&request)?;
//! let sent: serde_json::Value = serde_json::from_slice(&body).unwrap();
//! assert_eq!(
//!     sent["general"]["signature"],
//!     "UhlYVvTK4npMQEk9gjiehBbD08AInHEQoJltoOYE9sJXH/yybt/HYyzO4t4iQGkyGLsay2T6Cdfv4EsRJxVxPA=="
//! );
//!
//! // Verify a callback from the bytes the platform POSTed (here made by the test helper).
//! let callback = rp_sign::testing::sign_callback(
//!     &json!({"project_id": 1234, "payment": {"id": "payment_47", "status": "success"}}),
//!     &SecretKey::from("secret"),
//! )?;
//! let verified = signer.verify_callback(&callback)?;
//! assert_eq!(verified.variant(), SortVariant::PhpNatural);
//! assert_eq!(verified.value()?["payment"]["status"], "success"); // the signature is removed
//!
//! // Or deserialise a type straight from the verified bytes (here the signature is present).
//! #[derive(serde::Deserialize)]
//! struct Callback { project_id: u64, signature: String }
//! let callback_struct: Callback = verified.deserialize()?;
//! assert_eq!(callback_struct.project_id, 1234);
//! assert_eq!(callback_struct.signature.len(), 88);
//!
//! // A tampered callback is rejected.
//! let tampered = String::from_utf8(callback).unwrap().replace("success", "decline");
//! assert!(matches!(
//!     signer.verify_callback(tampered.as_bytes()),
//!     Err(rp_sign::Error::InvalidSignature { .. })
//! ));
//! # Ok::<(), rp_sign::Error>(())
//! ```
//!
//! # The rules, and the choices made where the vendor SDKs disagree
//!
//! - Paths join keys and 0-based array indices with `:`; a `:` inside a key is written `::`;
//!   a member named `frame_mode` is skipped with its subtree at every depth.
//! - Strings are used as is (UTF-8, unescaped); `true`/`false` are `1`/`0`; `null` and `""`
//!   give an empty value; empty objects and arrays give no line at all.
//! - Numbers are read as PHP reads them: a token with `.`, `e` or `E` is a float, any other
//!   is an integer if it fits in `i64`. Integers keep their exact digits; floats and integers
//!   outside `i64` are rendered by PHP's 14-digit `(string)` rule (`1.5`, `1.0E+20`,
//!   `1.2345678901235E+19`). [`Signer::verify_callback`], [`Signer::sign_json`],
//!   [`Signer::sign_request_json`] and [`explain_json`] read the number tokens of the text
//!   itself, so the JSON integer `-0` signs as `0`, as in every vendor SDK, and the float
//!   `-0.0` as `-0`, as in PHP. An already parsed `serde_json::Value` (signing,
//!   [`Signer::verify_value`], [`string_to_sign`]) cannot tell them apart (`serde_json`
//!   parses `-0` as the float `-0.0`), so there both sign as PHP's float `-0`: sign and
//!   verify from the text when it may hold `-0` (the `rp` command line does). No Gate
//!   message carries either.
//! - **A `signature` member other than the one checked is refused** when verifying
//!   ([`Error::ExtraSignature`]): the vendor SDKs' callback classes delete every `signature`
//!   member at any depth before checking, so such a member's content would not be covered by
//!   the signature. Signing signs a nested `signature` like any other member, as the SDKs'
//!   `sign()` does.
//! - Lines are sorted by path in PHP's natural order (`strnatcmp_ex`: `items:2` before
//!   `items:10`), stable, so ties keep document order.
//! - **PHP bugs are not emulated.** The PHP SDK drops a top-level key `"0"` holding an object
//!   and renumbers top-level integer-like keys next to objects (vectors
//!   `top_level_key_zero_with_object`, `numeric_top_level_keys_renumbered`). Those are bugs
//!   that no Gate message triggers; this crate signs such payloads by the plain rules.
//! - Invalid Unicode (a lone surrogate such as `"\ud800"`) is rejected: `serde_json` refuses
//!   to parse it ([`Error::InvalidJson`]).
//! - The empty secret key is allowed, as on the platform.
//! - **A `;` inside a key or string value is refused**, when signing and when verifying
//!   ([`Error::AmbiguousValue`]). The string to sign joins lines with `;` and escapes
//!   nothing, so the lines of such a message can be regrouped into another message, e.g. a
//!   `description` of `x;payment:status:reversed` becomes a `payment.status`, with the same
//!   signature. (The vendor vector `values_with_separators` is such a payload: its string
//!   is reproduced by [`string_to_sign`], but it is neither signed nor accepted.)
//!   A `:` inside a value is not refused: it can only move a value *below its own path*
//!   (`payment:description:id:x` read as `payment.description.id`), never onto another
//!   member's path, because every line's text starts with its real path and all the rest of
//!   the platform's paths are fixed names without `:`; the members the client acts on
//!   (`project_id`, `payment.id`, `payment.status`, `operation.*`, `payment.sum`,
//!   `account.number`) cannot be reached. A `:` inside a key is escaped as `::`.
//! - Verification takes the root `signature`, or else `general.signature`, and removes only
//!   that member (if `general` is left empty it is dropped from the returned value, as the
//!   vendor's `WooCommerce` plugin does). If the canonical order fails, the byte orders of the
//!   Python SDK and of the Go/Java SDKs are tried when they give a different string; the
//!   result says which [`SortVariant`] matched.

mod canonical;
mod error;
mod explain;
mod float;
mod key;
mod natural;
mod plain;
mod raw;
mod signer;
mod sink;
mod stream;
mod tape;
pub mod testing;
mod write;

pub use canonical::SortVariant;
pub use error::{Error, SignatureLocation, SignatureProblem};
pub use explain::{Explanation, explain, explain_json, string_to_sign};
pub use key::SecretKey;
pub use natural::natural_cmp;
pub use signer::{Signature, SignedRequest, Signer, VerifiedCallback};
