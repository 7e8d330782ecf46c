//! A callback endpoint with axum: the raw body in, the client's decision out.
//!
//! ```text
//! RP_PROJECT_ID=1234 RP_SECRET_KEY=… cargo run -p rp-payout --features axum --example axum_callback
//! ```
//!
//! Point the project's callback URL at `http://<host>:8080/rocketpay/callback`.

use std::sync::Arc;

use axum::Router;
use rp_payout::CallbackOutcome;
use rp_payout::Client;
use rp_payout::axum::callback_router_with_observer;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Arc::new(Client::from_env()?);
    // The router verifies, de-duplicates and records each callback, then answers what the
    // platform expects: 200 `OK` when processed, an error status when it is not trusted.
    let callbacks = callback_router_with_observer(
        client,
        Arc::new(|outcome: &CallbackOutcome| {
            if let CallbackOutcome::Reversed { payment_id, .. } = outcome {
                // Your business reaction: the customer's balance was not credited after all.
                eprintln!("payout {payment_id} was reversed");
            }
        }),
    );
    let app = Router::new().nest("/rocketpay/callback", callbacks);
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
