//! The serve loop: HTTP/1.1 connections with a header read timeout, a write timeout and a
//! connection cap, which `axum::serve` lacks. Near the cap, answers close their connections;
//! at the cap, an idle connection is closed to let a new one in
//! ([`super::connections`]).

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::{HeaderValue, header::CONNECTION};
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, TryAcquireError, watch};
use tokio::task::JoinSet;

use super::connections::{Busy, Counted, Open, Tracked};

/// The default time a client has to send a request head (and that an idle keep-alive
/// connection stays open): 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default time a client may take no part of its answer before its connection is cut:
/// 10 s.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// How long, after the shutdown signal, the connections still open may finish: then they are
/// dropped.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// How often the accept loop, waiting at the cap, looks again for an idle connection.
const RECHECK: Duration = Duration::from_millis(100);

/// The timeouts are kept within these bounds (hyper adds the header read timeout to the
/// time now: `Duration::MAX` would overflow).
const TIMEOUT_BOUNDS: (Duration, Duration) =
    (Duration::from_millis(1), Duration::from_secs(24 * 3600));

/// The most bytes a connection's socket holds not yet sent (`TCP_NOTSENT_LOWAT`, Linux):
/// the socket is writable again once half of it is sent, so the write timeout sees a slow
/// but steady reader's progress (at the default 10 s, one reading 1 KiB/s is not cut;
/// without it, only once a third of a send buffer of up to 4 MiB has drained).
const NOT_SENT_AT_MOST: u32 = 16 * 1024;

/// The largest connection cap (tokio's semaphore takes at most `usize::MAX >> 3`).
const MAX_CAP: usize = 1_000_000;

/// The default number of connections [`serve`] handles at once: 256.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// The connection limits of [`serve`]: the header read timeout, the write timeout and the
/// connection cap. See the [module documentation](super) for the defaults.
///
/// ```
/// use std::time::Duration;
/// use rp_payout::axum::ConnectionLimits;
///
/// let limits = ConnectionLimits::default()
///     .with_header_read_timeout(Duration::from_secs(5))
///     .with_write_timeout(Duration::from_secs(20))
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
    /// How long a client may take no part of its answer (default [`DEFAULT_WRITE_TIMEOUT`]).
    /// Then the connection is cut: a client that does not read holds no place for ever. Both
    /// timeouts are kept between 1 ms and 24 h.
    pub write_timeout: Duration,
    /// How many connections are served at once (default [`DEFAULT_MAX_CONNECTIONS`], 1 to
    /// 1,000,000). Near the cap, each answer closes its connection; at the cap, a new
    /// connection is let in by closing the one idle the longest (nothing received since its
    /// last answer, or since it connected, for at least a second), and when none is, it
    /// waits for a place.
    pub max_connections: usize,
}

impl Default for ConnectionLimits {
    fn default() -> Self {
        ConnectionLimits {
            header_read_timeout: DEFAULT_HEADER_READ_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
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

    /// The same limits with another write timeout.
    #[must_use]
    pub fn with_write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// The same limits with another connection cap (1 to 1,000,000).
    #[must_use]
    pub fn with_max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.clamp(1, MAX_CAP);
        self
    }
}

/// Serves `app` on `listener` with `limits`, until the process ends. See
/// [`serve_with_shutdown`].
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits) {
    serve_with_shutdown(listener, app, limits, std::future::pending()).await;
}

/// Serves `app` on `listener` (HTTP/1.1) until `signal` completes, with what `axum::serve`
/// lacks: a header read timeout ([`ConnectionLimits::header_read_timeout`], which also ends
/// idle keep-alive connections), a write timeout ([`ConnectionLimits::write_timeout`]) and a
/// connection cap ([`ConnectionLimits::max_connections`]). Near the cap (fewer than an
/// eighth of the places free), each answer closes its connection (`Connection: close`), and
/// at the cap the connection idle the longest (nothing received since its last answer, or
/// since it connected, for at least a second) is closed to let a new one in, as a reverse
/// proxy does: otherwise a client's pool of keep-alive connections, idle after a burst,
/// would hold every place until its idle time ran out, and the next connection would wait
/// that long in the listen backlog. A request received, even in part, is never cut for this, nor an answer being
/// written. Put [`RequestLimits`](super::RequestLimits) on the router for the body (the
/// callback routers have them).
///
/// On `signal` it stops accepting, lets requests in flight finish, closes idle connections,
/// and returns when every connection has ended, or [`SHUTDOWN_GRACE`] after the signal (the
/// connections still open are then dropped). Errors accepting a connection (e.g. too many
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
/// running, and a connection in its `accept` is never the one closed to let another in.
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
    let cap = limits.max_connections.clamp(1, MAX_CAP);
    let slots = Arc::new(Semaphore::new(cap));
    let open = Arc::new(Open::new(Arc::clone(&slots), cap));
    let accept = Arc::new(accept);
    let mut connections = JoinSet::new();
    loop {
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
        let Some(slot) = place(&slots, &open, &mut signal).await else {
            break;
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        #[cfg(any(target_os = "linux", target_os = "android"))]
        let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(NOT_SENT_AT_MOST);
        let app = TowerToHyperService::new(app.clone());
        let mut stopped_connection = stopped.clone();
        let accepting = accept(stream);
        let open = Arc::clone(&open);
        connections.spawn(async move {
            let io = tokio::select! {
                io = accepting => io,
                () = stopping(&mut stopped_connection) => return,
            };
            let Some(io) = io else {
                return;
            };
            serve_connection(io, app, &open, limits, slot, stopped_connection).await;
        });
    }
    drop(listener);
    let _ = stop.send(true);
    let all = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
        tracing::warn!(
            open = connections.len(),
            "connections still open {SHUTDOWN_GRACE:?} after the shutdown signal are dropped"
        );
        connections.abort_all();
        while connections.join_next().await.is_some() {}
    }
}

/// A place for a new connection: at once when one is free; at the cap, once the connection
/// idle the longest has made way (looked for again whenever a connection becomes idle or
/// declines, and every [`RECHECK`]), or another ended. `None` on `signal`.
async fn place(
    slots: &Arc<Semaphore>,
    open: &Open,
    signal: &mut (impl Future<Output = ()> + Unpin),
) -> Option<tokio::sync::OwnedSemaphorePermit> {
    loop {
        match Arc::clone(slots).try_acquire_owned() {
            Ok(slot) => return Some(slot),
            Err(TryAcquireError::Closed) => return None,
            Err(TryAcquireError::NoPermits) => {}
        }
        let changed = open.changed.notified();
        open.close_longest_idle();
        tokio::select! {
            slot = Arc::clone(slots).acquire_owned() => return slot.ok(),
            () = changed => {}
            () = tokio::time::sleep(RECHECK) => {}
            () = &mut *signal => return None,
        }
    }
}

/// Serves one accepted connection, holding `slot`, until it ends, `stopped` turns true (then
/// gracefully), or it is asked to make way while idle (its place is then given up at once,
/// while it closes).
async fn serve_connection<I>(
    io: I,
    app: TowerToHyperService<Router>,
    open: &Arc<Open>,
    limits: ConnectionLimits,
    slot: tokio::sync::OwnedSemaphorePermit,
    mut stopped: watch::Receiver<bool>,
) where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let bounded = |timeout: Duration| timeout.clamp(TIMEOUT_BOUNDS.0, TIMEOUT_BOUNDS.1);
    let this = open.register();
    let io = Counted::new(
        io,
        Arc::clone(&this.connection),
        bounded(limits.write_timeout),
    );
    let service = {
        let (open, connection) = (Arc::clone(open), Arc::clone(&this.connection));
        hyper::service::service_fn(move |request| {
            let busy = Busy::enter(&open, &connection);
            let call = app.call(request);
            async move {
                let response = call.await?;
                let (mut head, body) = response.into_parts();
                if busy.crowded() {
                    head.headers
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, std::convert::Infallible>(axum::http::Response::from_parts(
                    head,
                    Tracked::body(body, busy),
                ))
            }
        })
    };
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(bounded(limits.header_read_timeout))
        .keep_alive(true);
    let connection = builder.serve_connection(TokioIo::new(io), service);
    let mut connection = std::pin::pin!(connection);
    loop {
        // The connection first: bytes already in its socket are read (and count) before a
        // request to make way is looked at.
        tokio::select! {
            biased;
            result = connection.as_mut() => {
                if let Err(error) = result {
                    tracing::debug!(%error, "connection ended");
                }
                return;
            }
            () = stopping(&mut stopped) => break,
            () = this.connection.close.notified() => {
                if !this.connection.is_idle() {
                    open.declined(&this.connection);
                    continue;
                }
                // Never answered: nothing received, nothing to write, and hyper would keep
                // it until its head read timeout; dropped.
                if this.connection.is_fresh() {
                    return;
                }
                // Its close (a TLS close_notify, say) may take a while: the newcomer need
                // not wait for it.
                drop(slot);
                open.gave_way(&this.connection);
                break;
            }
        }
    }
    // Idle: closed now; else after the request in flight.
    connection.as_mut().graceful_shutdown();
    if let Err(error) = connection.await {
        tracing::debug!(%error, "connection ended");
    }
}

/// Resolves once `stopped` turns true (or its sender is gone).
async fn stopping(stopped: &mut watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}
