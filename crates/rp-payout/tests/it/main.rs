//! Integration tests of rp-payout: the client against a fake Gate on 127.0.0.1:0 (axum) or a
//! scripted transport, with a manual clock so that waits take no real time.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod callbacks;
mod config;
mod gate;
mod history;
mod in_flight;
mod operators;
mod payout;
mod reconcile;
mod review;
mod review_ledger;
mod review_meta;
#[cfg(feature = "axum")]
mod review_serve;
#[cfg(feature = "axum")]
mod review_serve2;
#[cfg(feature = "axum")]
mod review_serve3;
#[cfg(feature = "axum")]
mod serve_support;
mod status;
mod store_failure;
