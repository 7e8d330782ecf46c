//! A callback endpoint with axum: the raw body in, the client's decision out.
//!
//! ```text
//! RP_PROJECT_ID=1234 RP_SECRET_KEY=… cargo run -p rp-payout --example axum_callback
//! ```
//!
//! Point the project's callback URL at `http://<host>:8080/rocketpay/callback`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use rp_payout::{CallbackOutcome, Client};

/// Verifies, de-duplicates and records the callback, then answers what the platform expects:
/// 200 `OK` when processed, an error status (the platform redelivers) when it is not trusted.
async fn callback(State(client): State<Arc<Client>>, body: Bytes) -> (StatusCode, &'static str) {
    let outcome = client.handle_callback(&body).await;
    if let CallbackOutcome::Reversed { payment_id, .. } = &outcome {
        // Your business reaction: the customer's balance was not credited after all.
        eprintln!("payout {payment_id} was reversed");
    }
    let status =
        StatusCode::from_u16(outcome.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, outcome.body())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let client = Arc::new(Client::from_env()?);
    let app = Router::new()
        .route("/rocketpay/callback", post(callback))
        .with_state(client);
    let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
    axum::serve(listener, app).await?;
    Ok(())
}
