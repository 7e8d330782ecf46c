//! A ready-made callback endpoint for [axum](https://docs.rs/axum) (feature `axum`).
//!
//! [`callback_router`] answers `POST` on the router's root with the decision of
//! [`Client::handle_callback`]: 200 `OK` when processed (or a duplicate), an error status when
//! the callback is not trusted, so the platform delivers it again while the payout is
//! reconciled through the status endpoint. Mount it where the project's callback URL points:
//!
//! ```no_run
//! # async fn run(client: std::sync::Arc<rp_payout::Client>) -> std::io::Result<()> {
//! let app = axum::Router::new().nest("/rocketpay/callback", rp_payout::axum::callback_router(client));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! axum::serve(listener, app).await
//! # }
//! ```

use std::fmt;
use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;

use crate::{CallbackOutcome, Client};

/// Called with every callback's outcome after the client has applied it (e.g. to alert on
/// [`CallbackOutcome::Reversed`], or to print it in a demo).
pub type Observer = Arc<dyn Fn(&CallbackOutcome) + Send + Sync>;

#[derive(Clone)]
struct Endpoint {
    client: Arc<Client>,
    observer: Option<Observer>,
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("client", &self.client)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

/// A router that handles the platform's callbacks on `POST /`.
pub fn callback_router(client: Arc<Client>) -> Router {
    router(Endpoint {
        client,
        observer: None,
    })
}

/// [`callback_router`] that also reports each outcome to `observer`.
pub fn callback_router_with_observer(client: Arc<Client>, observer: Observer) -> Router {
    router(Endpoint {
        client,
        observer: Some(observer),
    })
}

fn router(endpoint: Endpoint) -> Router {
    Router::new().route("/", post(handle)).with_state(endpoint)
}

async fn handle(State(endpoint): State<Endpoint>, body: Bytes) -> (StatusCode, &'static str) {
    let outcome = endpoint.client.handle_callback(&body).await;
    if let Some(observer) = &endpoint.observer {
        observer(&outcome);
    }
    let status =
        StatusCode::from_u16(outcome.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, outcome.body())
}
