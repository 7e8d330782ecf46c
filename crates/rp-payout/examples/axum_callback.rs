//! A callback endpoint with axum: the raw body in, the client's decision out.
//!
//! ```text
//! RP_PROJECT_ID=1234 RP_SECRET_KEY=… cargo run -p rp-payout --features axum --example axum_callback
//! ```
//!
//! Point the project's callback URL at `http://<host>:8080/rocketpay/callback`.
//!
//! The router reads at most 64 KiB of body within 10 s and handles 64 requests at once;
//! `serve` gives a client 10 s for its request head and serves at most 256 connections (see
//! `rp_payout::axum` for the defaults and how to change them).

use std::sync::Arc;

use axum::Router;
use rp_payout::CallbackOutcome;
use rp_payout::Client;
use rp_payout::axum::{ConnectionLimits, RequestLimits, callback_router_with_limits, serve};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Arc::new(Client::from_env()?);
    // The router verifies, de-duplicates and records each callback, then answers what the
    // platform expects: 200 `OK` when processed, an error status when it is not trusted.
    let callbacks = callback_router_with_limits(
        client,
        RequestLimits::default(),
        Some(Arc::new(|outcome: &CallbackOutcome| {
            if let CallbackOutcome::Reversed { payment_id, .. } = outcome {
                // Your business reaction: the customer's balance was not credited after all.
                eprintln!("payout {payment_id} was reversed");
            }
        })),
    );
    let app = Router::new().nest_service("/rocketpay/callback", callbacks);
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    // Not `axum::serve`: it has no header read timeout and no connection cap.
    serve(listener, app, ConnectionLimits::default()).await;
    Ok(())
}
