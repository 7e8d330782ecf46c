//! A ready-made, hardened callback endpoint for [axum](https://docs.rs/axum) (feature `axum`).
//!
//! The feature uses **axum 0.8** (and hyper 1): the [`Router`] these functions take
//! and return is axum 0.8's, so a merchant's crate must depend on axum 0.8 to mount it.
//!
//! [`callback_router`] answers `POST` on the router's root (mounted with
//! `Router::nest_service` at a path, with or without a trailing slash: `/rocketpay/callback`
//! and `/rocketpay/callback/`) with the decision of
//! [`Client::handle_callback`]: 200 `OK` when processed (or a duplicate), an error status when
//! the callback is not trusted, so the platform delivers it again while the payout is
//! reconciled through the status endpoint. Every other request that reaches the router is
//! logged (a `warn` event with the method and path) and answered 404, or 405 for another
//! method than `POST`: a misconfigured callback URL shows in the logs.
//!
//! The endpoint faces the internet, so it is limited by default ([`RequestLimits`]):
//!
//! | Limit | Default | When it is hit |
//! | --- | --- | --- |
//! | body size | 64 KiB ([`DEFAULT_BODY_LIMIT`]; a callback is a few KiB) | 413, nothing applied |
//! | body read time, from the handler's start | 10 s ([`DEFAULT_BODY_READ_TIMEOUT`]) | 408, nothing applied |
//! | requests handled at once | 64 ([`DEFAULT_MAX_CONCURRENT_REQUESTS`]) | 503 with `Retry-After: 1` (the platform redelivers) |
//!
//! Connection-level limits cannot be set on a router: `axum::serve` has no header read
//! timeout (its hyper connection has no timer, so hyper's own 30 s default is inert) and no
//! cap on connections, so 50 clients that send half a request head hold 50 connections
//! forever. [`serve`] and [`serve_with_shutdown`] add them ([`ConnectionLimits`]): the request
//! head must arrive within 10 s ([`DEFAULT_HEADER_READ_TIMEOUT`], also the idle keep-alive
//! time), a client that takes no part of its answer for 10 s is cut off
//! ([`DEFAULT_WRITE_TIMEOUT`]), and at most 256 connections ([`DEFAULT_MAX_CONNECTIONS`]) are
//! served at once: near the cap answers close their connections, at the cap the connection
//! idle the longest (a second at least) makes way for a new one (a request received, or an
//! answer being written, is never cut), and when none is idle, new ones wait for a place.
//! Mount the router where the project's callback URL points:
//!
//! ```no_run
//! use rp_payout::axum::{ConnectionLimits, callback_router, serve};
//!
//! # async fn run(client: std::sync::Arc<rp_payout::Client>) -> std::io::Result<()> {
//! // `nest_service` answers both `/rocketpay/callback` and `/rocketpay/callback/`; axum 0.8's
//! // `nest` would route the first only, and answer 404 to the second before the router sees it.
//! let app = axum::Router::new().nest_service("/rocketpay/callback", callback_router(client));
//! let listener = tokio::net::TcpListener::bind("0.0.0.0:8080").await?;
//! serve(listener, app, ConnectionLimits::default()).await;
//! # Ok(())
//! # }
//! ```
//!
//! With `axum::serve` instead, the router's own limits still hold, but not the connection
//! limits: put a reverse proxy with header timeouts in front.

use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use tokio::sync::Semaphore;

use crate::{CallbackOutcome, Client};

mod connections;
mod serve;

pub use serve::{
    ConnectionLimits, DEFAULT_HEADER_READ_TIMEOUT, DEFAULT_MAX_CONNECTIONS, DEFAULT_WRITE_TIMEOUT,
    SHUTDOWN_GRACE, serve, serve_with_shutdown, serve_with_shutdown_via,
};

/// The default largest callback body: 64 KiB. The platform's callbacks are a few KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The default time a request's body has to arrive once its handling started: 10 s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default number of requests a router handles at once: 64.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;

/// Called with every callback's outcome after the client has applied it (e.g. to alert on
/// [`CallbackOutcome::Reversed`], or to print it in a demo).
pub type Observer = Arc<dyn Fn(&CallbackOutcome) + Send + Sync>;

/// The request limits of a router: body size, body read time, requests at once. See the
/// [module documentation](self) for the defaults and the answers.
///
/// ```
/// use std::time::Duration;
/// use rp_payout::axum::RequestLimits;
///
/// let limits = RequestLimits::default()
///     .with_body_limit(16 * 1024)
///     .with_body_read_timeout(Duration::from_secs(5))
///     .with_max_concurrent_requests(16);
/// assert_eq!(limits.body_limit, 16 * 1024);
/// assert_eq!(RequestLimits::default().body_limit, 64 * 1024);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestLimits {
    /// The largest body read, in bytes (default [`DEFAULT_BODY_LIMIT`]). A larger one is
    /// answered 413, by its `Content-Length` before reading or once the limit is passed.
    pub body_limit: usize,
    /// How long the whole body may take to arrive (default [`DEFAULT_BODY_READ_TIMEOUT`]);
    /// then 408 and the connection is closed.
    pub body_read_timeout: Duration,
    /// How many requests are handled at once (default [`DEFAULT_MAX_CONCURRENT_REQUESTS`], at
    /// least 1); beyond it, 503 with `Retry-After: 1`.
    pub max_concurrent_requests: usize,
}

impl Default for RequestLimits {
    fn default() -> Self {
        RequestLimits {
            body_limit: DEFAULT_BODY_LIMIT,
            body_read_timeout: DEFAULT_BODY_READ_TIMEOUT,
            max_concurrent_requests: DEFAULT_MAX_CONCURRENT_REQUESTS,
        }
    }
}

impl RequestLimits {
    /// The same limits with another body limit, in bytes.
    #[must_use]
    pub fn with_body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// The same limits with another body read timeout.
    #[must_use]
    pub fn with_body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// The same limits with another number of requests handled at once (at least 1).
    #[must_use]
    pub fn with_max_concurrent_requests(mut self, requests: usize) -> Self {
        self.max_concurrent_requests = requests.max(1);
        self
    }
}

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

/// A router that handles the platform's callbacks on `POST /`, with the default
/// [`RequestLimits`].
pub fn callback_router(client: Arc<Client>) -> Router {
    callback_router_with_limits(client, RequestLimits::default(), None)
}

/// [`callback_router`] that also reports each outcome to `observer`.
pub fn callback_router_with_observer(client: Arc<Client>, observer: Observer) -> Router {
    callback_router_with_limits(client, RequestLimits::default(), Some(observer))
}

/// [`callback_router`] with these limits, and an observer if given.
pub fn callback_router_with_limits(
    client: Arc<Client>,
    limits: RequestLimits,
    observer: Option<Observer>,
) -> Router {
    // `POST /`. Mounted with `nest_service`, both `…/callback` and `…/callback/` arrive as `/`;
    // a root reached as `//` (a proxy's join) is the callback too (see `fallback`).
    let router = Router::new()
        .route("/", post(handle).fallback(unmatched))
        .fallback(fallback)
        .with_state(Endpoint { client, observer });
    limit_requests(router, limits)
}

/// What reaches the router but no route: `POST` to a path of slashes only is the callback;
/// anything else is logged (method and path, never the body or the
/// query) and answered 404, or 405 for another method on the callback path.
async fn fallback(
    State(endpoint): State<Endpoint>,
    method: Method,
    uri: Uri,
    body: Bytes,
) -> Response {
    if method == Method::POST && uri.path().trim_matches('/').is_empty() {
        return handle(State(endpoint), body).await.into_response();
    }
    tracing::warn!(%method, path = uri.path(), "callback router: no route for this request; answered 404");
    (StatusCode::NOT_FOUND, "no callback endpoint here").into_response()
}

/// Another method than `POST` on the callback path: logged, answered 405.
async fn unmatched(method: Method, uri: Uri) -> Response {
    tracing::warn!(%method, path = uri.path(), "callback router: only POST is accepted; answered 405");
    let mut response = (
        StatusCode::METHOD_NOT_ALLOWED,
        "callbacks are POST requests",
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// Puts `limits` on any router: each request takes one of
/// [`RequestLimits::max_concurrent_requests`] slots (else 503), and its whole body is read,
/// within [`RequestLimits::body_limit`] (else 413) and [`RequestLimits::body_read_timeout`]
/// (else 408), before a handler sees it. `rp listen` uses it for its own receiver.
pub fn limit_requests<S>(router: Router<S>, limits: RequestLimits) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    let limiter = Arc::new(Limiter {
        limits,
        slots: Arc::new(Semaphore::new(limits.max_concurrent_requests.max(1))),
    });
    router
        .layer(DefaultBodyLimit::max(limits.body_limit))
        .layer(middleware::from_fn_with_state(limiter, enforce))
}

struct Limiter {
    limits: RequestLimits,
    slots: Arc<Semaphore>,
}

/// A refusal by the limits: plain text, and the connection is not reused when the body was
/// not read to its end.
fn refuse(status: StatusCode, message: &'static str, close: bool) -> Response {
    let mut response = (status, message).into_response();
    if close {
        response
            .headers_mut()
            .insert(header::CONNECTION, HeaderValue::from_static("close"));
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
    }
    response
}

async fn enforce(State(limiter): State<Arc<Limiter>>, request: Request, next: Next) -> Response {
    let Ok(_slot) = Arc::clone(&limiter.slots).try_acquire_owned() else {
        tracing::warn!("callback endpoint busy: too many requests at once; answered 503");
        return refuse(
            StatusCode::SERVICE_UNAVAILABLE,
            "too many requests at once; retry later",
            false,
        );
    };
    let limit = limiter.limits.body_limit;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let too_large = || {
        tracing::warn!(limit, "callback body over the limit; answered 413");
        refuse(
            StatusCode::PAYLOAD_TOO_LARGE,
            "request body too large",
            true,
        )
    };
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return too_large();
    }
    let (parts, mut body) = request.into_parts();
    let read = async {
        let mut buffer = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let Ok(frame) = frame else {
                return Err(StatusCode::BAD_REQUEST);
            };
            if let Ok(data) = frame.into_data() {
                if buffer.len().saturating_add(data.len()) > limit {
                    return Err(StatusCode::PAYLOAD_TOO_LARGE);
                }
                buffer.extend_from_slice(&data);
            }
        }
        Ok(buffer)
    };
    match tokio::time::timeout(limiter.limits.body_read_timeout, read).await {
        Ok(Ok(buffer)) => {
            next.run(Request::from_parts(parts, Body::from(buffer)))
                .await
        }
        Ok(Err(StatusCode::PAYLOAD_TOO_LARGE)) => too_large(),
        Ok(Err(_)) => refuse(StatusCode::BAD_REQUEST, "request body broken off", true),
        Err(_) => {
            tracing::warn!("callback body not received in time; answered 408");
            refuse(
                StatusCode::REQUEST_TIMEOUT,
                "request body not received in time",
                true,
            )
        }
    }
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

#[cfg(test)]
mod tests;
