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
//! time), and at most 256 connections ([`DEFAULT_MAX_CONNECTIONS`]) are served at once, further
//! ones waiting in the listen backlog. Mount the router where the project's callback URL points:
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
use std::future::Future;
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
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;

use crate::{CallbackOutcome, Client};

/// The default largest callback body: 64 KiB. The platform's callbacks are a few KiB.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The default time a request's body has to arrive once its handling started: 10 s.
pub const DEFAULT_BODY_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default number of requests a router handles at once: 64.
pub const DEFAULT_MAX_CONCURRENT_REQUESTS: usize = 64;

/// The default time a client has to send a request head (and that an idle keep-alive
/// connection stays open): 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default number of connections [`serve`] handles at once: 256.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

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

/// The connection limits of [`serve`]: the header read timeout and the connection cap. See
/// the [module documentation](self) for the defaults.
///
/// ```
/// use std::time::Duration;
/// use rp_payout::axum::ConnectionLimits;
///
/// let limits = ConnectionLimits::default()
///     .with_header_read_timeout(Duration::from_secs(5))
///     .with_max_connections(64);
/// assert_eq!(limits.max_connections, 64);
/// assert_eq!(ConnectionLimits::default().header_read_timeout, Duration::from_secs(10));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionLimits {
    /// How long a client has to send a whole request head; also how long an idle keep-alive
    /// connection is kept (default [`DEFAULT_HEADER_READ_TIMEOUT`]). Then the connection is
    /// closed.
    pub header_read_timeout: Duration,
    /// How many connections are served at once (default [`DEFAULT_MAX_CONNECTIONS`], at
    /// least 1). Further connections are not accepted until one closes: they wait in the
    /// listen backlog.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl ConnectionLimits {
    /// The same limits with another header read timeout.
    #[must_use]
    pub fn with_header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// The same limits with another connection cap (at least 1).
    #[must_use]
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
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

/// Serves `app` on `listener` with `limits`, until the process ends. See
/// [`serve_with_shutdown`].
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits) {
    serve_with_shutdown(listener, app, limits, std::future::pending()).await;
}

/// Serves `app` on `listener` (HTTP/1.1) until `signal` completes, with what `axum::serve`
/// lacks: a header read timeout ([`ConnectionLimits::header_read_timeout`], which also ends
/// idle keep-alive connections) and a connection cap ([`ConnectionLimits::max_connections`]:
/// further connections wait in the listen backlog). Put [`RequestLimits`] on the router for the
/// body (the callback routers have them).
///
/// On `signal` it stops accepting, lets requests in flight finish, closes idle connections,
/// and returns when every connection has ended. Errors accepting a connection (e.g. too many
/// open files) are logged and retried after 50 ms; errors of a single connection are logged
/// at debug level.
pub async fn serve_with_shutdown(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    signal: impl Future<Output = ()> + Send,
) {
    serve_with_shutdown_via(listener, app, limits, signal, |stream| async move {
        Some(stream)
    })
    .await;
}

/// As [`serve_with_shutdown`], each accepted connection first passed through `accept` (a
/// TLS handshake, say, which bounds its own time): `None` drops the connection. The
/// connection cap counts a connection from its accept; shutdown cuts an `accept` still
/// running.
pub async fn serve_with_shutdown_via<A, F, I>(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    signal: impl Future<Output = ()> + Send,
    accept: A,
) where
    A: Fn(tokio::net::TcpStream) -> F + Send + Sync + 'static,
    F: Future<Output = Option<I>> + Send + 'static,
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (stop, stopped) = watch::channel(false);
    let mut signal = std::pin::pin!(signal);
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let accept = Arc::new(accept);
    let mut connections = JoinSet::new();
    loop {
        let slot = tokio::select! {
            slot = Arc::clone(&slots).acquire_owned() => match slot {
                Ok(slot) => slot,
                Err(_) => break,
            },
            () = &mut signal => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut signal => break,
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(app.clone());
        let mut stopped_connection = stopped.clone();
        let accepting = accept(stream);
        connections.spawn(async move {
            let _slot = slot;
            let io = tokio::select! {
                io = accepting => io,
                () = stopping(&mut stopped_connection) => return,
            };
            let Some(io) = io else {
                return;
            };
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended");
                    }
                }
                () = stopping(&mut stopped_connection) => {
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    drop(listener);
    let _ = stop.send(true);
    while connections.join_next().await.is_some() {}
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn stopping(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::net::{SocketAddr, TcpStream};
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::Instant;

    use rp_model::ProjectId;
    use rp_sign::SecretKey;

    use super::*;
    use crate::Config;

    const TIMEOUT: Duration = Duration::from_millis(200);

    /// A callback router with `limits` served by [`serve_with_shutdown`] on 127.0.0.1:0;
    /// returns its address and how many callbacks reached the client.
    async fn start(
        limits: RequestLimits,
        connections: ConnectionLimits,
    ) -> (SocketAddr, Arc<AtomicUsize>) {
        let config = Config::new(
            ProjectId::new(1234).unwrap(),
            SecretKey::from("axum-test-key"),
        )
        .with_base_url("http://127.0.0.1:9");
        let client = Arc::new(Client::new(config).unwrap());
        let handled = Arc::new(AtomicUsize::new(0));
        let seen = Arc::clone(&handled);
        let observer: Observer = Arc::new(move |_: &CallbackOutcome| {
            seen.fetch_add(1, Ordering::SeqCst);
        });
        let app = Router::new().nest_service(
            "/callback",
            callback_router_with_limits(client, limits, Some(observer)),
        );
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(serve(listener, app, connections));
        (addr, handled)
    }

    fn limits() -> RequestLimits {
        RequestLimits::default()
            .with_body_limit(1024)
            .with_body_read_timeout(TIMEOUT)
    }

    fn connection_limits() -> ConnectionLimits {
        ConnectionLimits::default()
            .with_header_read_timeout(TIMEOUT)
            .with_max_connections(32)
    }

    fn head(length: usize) -> String {
        format!(
            "POST /callback HTTP/1.1\r\nHost: merchant\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
        )
    }

    /// Sends `request` on a fresh connection (on the blocking pool) and returns the status
    /// code, the response text and how long it took.
    async fn exchange(addr: SocketAddr, request: Vec<u8>) -> (u16, String, Duration) {
        tokio::task::spawn_blocking(move || {
            let started = Instant::now();
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            stream.write_all(&request).unwrap();
            let mut response = Vec::new();
            let _ = stream.read_to_end(&mut response);
            let text = String::from_utf8_lossy(&response).into_owned();
            let status = text
                .split_whitespace()
                .nth(1)
                .and_then(|code| code.parse().ok())
                .unwrap_or_else(|| panic!("no status in {text:?}"));
            (status, text, started.elapsed())
        })
        .await
        .unwrap()
    }

    /// A request with a complete body (an unsigned callback: refused by the client, but handled).
    fn complete() -> Vec<u8> {
        let body = br#"{"project_id":1234,"payment":{"id":"p-1","status":"success"}}"#;
        [
            head(body.len())
                .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
                .as_bytes(),
            body,
        ]
        .concat()
    }

    #[test]
    fn the_defaults_are_the_documented_ones() {
        let request = RequestLimits::default();
        assert_eq!(request.body_limit, 65_536);
        assert_eq!(request.body_read_timeout, Duration::from_secs(10));
        assert_eq!(request.max_concurrent_requests, 64);
        let connection = ConnectionLimits::default();
        assert_eq!(connection.header_read_timeout, Duration::from_secs(10));
        assert_eq!(connection.max_connections, 256);
        assert_eq!(
            RequestLimits::default()
                .with_max_concurrent_requests(0)
                .max_concurrent_requests,
            1
        );
        assert_eq!(
            ConnectionLimits::default()
                .with_max_connections(0)
                .max_connections,
            1
        );
    }

    #[tokio::test]
    async fn stalled_connections_are_closed_and_a_callback_is_still_served() {
        // Long enough that the normal request is surely served before the stalled ones are cut.
        let header_timeout = Duration::from_millis(500);
        let (addr, handled) = start(
            limits(),
            connection_limits().with_header_read_timeout(header_timeout),
        )
        .await;
        let started = Instant::now();
        let stalled: Vec<TcpStream> = (0..20)
            .map(|_| {
                let mut stream = TcpStream::connect(addr).unwrap();
                stream
                    .write_all(b"POST /callback HTTP/1.1\r\nHost: merch")
                    .unwrap();
                stream
            })
            .collect();
        let (status, text, took) = exchange(addr, complete()).await;
        assert_ne!(status, 408, "{text}");
        assert!(took < header_timeout, "served after {took:?}");
        assert_eq!(handled.load(Ordering::SeqCst), 1);
        let closed = tokio::task::spawn_blocking(move || {
            for mut stream in stalled {
                stream
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut buffer = [0u8; 256];
                loop {
                    match stream.read(&mut buffer) {
                        Ok(0) => break,
                        Ok(_) => {}
                        Err(error) => {
                            assert!(
                                !matches!(
                                    error.kind(),
                                    std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                                ),
                                "a stalled connection was never closed"
                            );
                            break;
                        }
                    }
                }
            }
            started.elapsed()
        })
        .await
        .unwrap();
        assert!(
            closed >= header_timeout - Duration::from_millis(20),
            "closed after {closed:?}"
        );
        assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
    }

    #[tokio::test]
    async fn the_connection_cap_holds_until_a_stalled_connection_is_cut() {
        let (addr, handled) = start(limits(), connection_limits().with_max_connections(1)).await;
        let mut stalled = TcpStream::connect(addr).unwrap();
        stalled.write_all(b"POST /callback HTTP/1.1\r\n").unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (status, text, took) = exchange(addr, complete()).await;
        assert_ne!(status, 503, "{text}");
        assert!(
            took >= Duration::from_millis(120),
            "served after {took:?} while the only connection was taken"
        );
        assert_eq!(handled.load(Ordering::SeqCst), 1);
    }

    /// `request` for `method path` with the complete test body, on a closed connection.
    fn request_to(method: &str, path: &str) -> Vec<u8> {
        String::from_utf8(complete())
            .unwrap()
            .replacen("POST /callback ", &format!("{method} {path} "), 1)
            .into_bytes()
    }

    #[tokio::test]
    async fn the_callback_path_with_a_trailing_slash_is_the_callback_and_other_paths_are_404() {
        let (addr, handled) = start(limits(), connection_limits()).await;
        // Both forms of the mount path reach the client (an unsigned body: refused by it, but
        // handled, not 404).
        for path in ["/callback", "/callback/"] {
            let before = handled.load(Ordering::SeqCst);
            let (status, text, _) = exchange(addr, request_to("POST", path)).await;
            assert_ne!(status, 404, "{path}: {text}");
            assert_eq!(handled.load(Ordering::SeqCst), before + 1, "{path}: {text}");
        }
        // Anything else is answered (and logged), never handled.
        let before = handled.load(Ordering::SeqCst);
        let (status, text, _) = exchange(addr, request_to("GET", "/callback")).await;
        assert_eq!(status, 405, "{text}");
        assert!(text.contains("callbacks are POST requests"), "{text}");
        let (status, text, _) = exchange(addr, request_to("POST", "/callback/other")).await;
        assert_eq!(status, 404, "{text}");
        assert!(text.contains("no callback endpoint here"), "{text}");
        assert_eq!(handled.load(Ordering::SeqCst), before);
    }

    #[tokio::test]
    async fn a_body_over_the_limit_is_413_and_not_applied() {
        let (addr, handled) = start(limits(), connection_limits()).await;
        // Declared: refused before anything of it is read.
        let (status, text, _) = exchange(addr, head(2 * 1024 * 1024).into_bytes()).await;
        assert_eq!(status, 413, "{text}");
        // Not declared: refused once the limit is passed.
        let chunked = format!(
            "POST /callback HTTP/1.1\r\nHost: merchant\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n",
            1500,
            "x".repeat(1500)
        );
        let (status, text, _) = exchange(addr, chunked.into_bytes()).await;
        assert_eq!(status, 413, "{text}");
        assert_eq!(handled.load(Ordering::SeqCst), 0, "nothing may be applied");
    }

    #[tokio::test]
    async fn a_slow_body_is_cut_off_with_408_and_not_applied() {
        let (addr, handled) = start(limits(), connection_limits()).await;
        let mut request = head(100).into_bytes();
        request.extend_from_slice(&[b' '; 40]);
        let (status, text, took) = exchange(addr, request).await;
        assert_eq!(status, 408, "{text}");
        assert!(
            took >= TIMEOUT - Duration::from_millis(20) && took < Duration::from_secs(2),
            "{took:?}"
        );
        assert_eq!(handled.load(Ordering::SeqCst), 0, "nothing may be applied");
    }

    #[tokio::test]
    async fn requests_over_the_concurrency_cap_get_503() {
        let (addr, handled) = start(
            limits().with_max_concurrent_requests(1),
            connection_limits(),
        )
        .await;
        // One request holds the only slot while its body trickles in.
        let mut slow = TcpStream::connect(addr).unwrap();
        slow.write_all(head(100).as_bytes()).unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        let (status, text, _) = exchange(addr, complete()).await;
        assert_eq!(status, 503, "{text}");
        assert!(
            text.to_ascii_lowercase().contains("retry-after: 1"),
            "{text}"
        );
        assert_eq!(handled.load(Ordering::SeqCst), 0);
        // Once it is cut off, the slot is free again.
        tokio::time::sleep(TIMEOUT * 2).await;
        let (status, text, _) = exchange(addr, complete()).await;
        assert_ne!(status, 503, "{text}");
        assert_eq!(handled.load(Ordering::SeqCst), 1);
        drop(slow);
    }

    #[tokio::test]
    async fn serve_with_shutdown_returns_when_signalled() {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let server = tokio::spawn(serve_with_shutdown(
            listener,
            Router::new(),
            ConnectionLimits::default(),
            async move {
                let _ = rx.await;
            },
        ));
        tx.send(()).unwrap();
        tokio::time::timeout(Duration::from_secs(2), server)
            .await
            .expect("serve_with_shutdown returns")
            .unwrap();
    }
}
