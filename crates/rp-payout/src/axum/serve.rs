//! The serve loop: HTTP/1.1 connections with a header read timeout and a connection cap,
//! which `axum::serve` lacks. Near the cap, answers close their connections; at the cap, the
//! connection idle the longest is closed to let a new one in ([`Open`]).

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::http::{HeaderValue, header::CONNECTION};
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore, TryAcquireError, watch};
use tokio::task::JoinSet;

/// The default time a client has to send a request head (and that an idle keep-alive
/// connection stays open): 10 s.
pub const DEFAULT_HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default number of connections [`serve`] handles at once: 256.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

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
    /// least 1). Near the cap, each answer closes its connection; at the cap, a new
    /// connection is let in by closing the one idle the longest (between two requests, or yet
    /// to send its first), and when every one has a request in flight, it waits until the
    /// first of them is answered.
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

/// Serves `app` on `listener` with `limits`, until the process ends. See
/// [`serve_with_shutdown`].
pub async fn serve(listener: TcpListener, app: Router, limits: ConnectionLimits) {
    serve_with_shutdown(listener, app, limits, std::future::pending()).await;
}

/// Serves `app` on `listener` (HTTP/1.1) until `signal` completes, with what `axum::serve`
/// lacks: a header read timeout ([`ConnectionLimits::header_read_timeout`], which also ends
/// idle keep-alive connections) and a connection cap ([`ConnectionLimits::max_connections`]).
/// Near the cap (fewer than an eighth of the places free, at least two), each answer closes
/// its connection (`Connection: close`), and at the cap the connection idle the longest
/// (between two requests, or yet to send its first) is closed to let a new one in, as a
/// reverse proxy does: otherwise a client's pool of keep-alive connections, idle after a
/// burst, would hold every place until its idle time ran out, and the next connection would
/// wait that long in the listen backlog. Put [`RequestLimits`](super::RequestLimits) on the
/// router for the body (the callback routers have them).
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
    let slots = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let open = Arc::new(Open::new(Arc::clone(&slots), limits.max_connections.max(1)));
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
        let slot = match Arc::clone(&slots).try_acquire_owned() {
            Ok(slot) => Some(slot),
            Err(TryAcquireError::Closed) => None,
            Err(TryAcquireError::NoPermits) => {
                // At the cap: the connection idle the longest makes way; when every one has
                // a request in flight, the first to finish does (crowded: it closes).
                if open.close_longest_idle() {
                    tracing::debug!(
                        "at the connection cap: closed the connection idle the longest"
                    );
                }
                tokio::select! {
                    slot = Arc::clone(&slots).acquire_owned() => slot.ok(),
                    () = &mut signal => None,
                }
            }
        };
        let Some(slot) = slot else {
            break;
        };
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let app = TowerToHyperService::new(app.clone());
        let mut stopped_connection = stopped.clone();
        let accepting = accept(stream);
        let open = Arc::clone(&open);
        connections.spawn(async move {
            let _slot = slot;
            let io = tokio::select! {
                io = accepting => io,
                () = stopping(&mut stopped_connection) => return,
            };
            let Some(io) = io else {
                return;
            };
            let this = open.register();
            let service = {
                let (open, this) = (Arc::clone(&open), Arc::clone(&this.connection));
                hyper::service::service_fn(move |request| {
                    let busy = Busy::enter(&open, &this);
                    let call = app.call(request);
                    async move {
                        let mut response = call.await;
                        if busy.open.crowded()
                            && let Ok(response) = &mut response
                        {
                            response
                                .headers_mut()
                                .insert(CONNECTION, HeaderValue::from_static("close"));
                        }
                        drop(busy);
                        response
                    }
                })
            };
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(TokioIo::new(io), service);
            let mut connection = std::pin::pin!(connection);
            let close = this.connection.close.notified();
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "connection ended");
                    }
                }
                () = async { tokio::select! {
                    () = stopping(&mut stopped_connection) => {}
                    () = close => {}
                } } => {
                    // Idle: closed now; else after the request in flight.
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

/// The connections being served (past their `accept`), so that at the cap the one idle the
/// longest can be asked to close.
struct Open {
    /// Served connections by number; one asked to close is taken out.
    connections: Mutex<HashMap<u64, Arc<Connection>>>,
    /// The next connection's number.
    next: AtomicU64,
    /// The places ([`ConnectionLimits::max_connections`]) not taken.
    slots: Arc<Semaphore>,
    /// Fewer places than this free: crowded ([`Open::crowded`]).
    headroom: usize,
    /// Where [`Connection::idle_since`] counts from.
    started: Instant,
}

/// One served connection, as [`Open`] sees it.
#[derive(Default)]
struct Connection {
    /// Requests in the service now; none means idle (between two requests, or yet to send
    /// its first).
    in_flight: AtomicUsize,
    /// Since when it has been idle, in microseconds from [`Open::started`].
    idle_since: AtomicU64,
    /// Asks the connection to close (at once when idle, else after its request in flight).
    close: Notify,
}

impl Open {
    fn new(slots: Arc<Semaphore>, cap: usize) -> Open {
        Open {
            connections: Mutex::default(),
            next: AtomicU64::new(0),
            slots,
            headroom: (cap / 8).max(2),
            started: Instant::now(),
        }
    }

    /// Near the cap (fewer than an eighth of the places free, or a connection waiting for
    /// one): each answer closes its connection (`Connection: close`), so that places free
    /// up without closing a connection under a client about to reuse it.
    fn crowded(&self) -> bool {
        self.slots.available_permits() < self.headroom
    }

    /// Microseconds since [`Open::started`].
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn connections(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a connection, idle from now; it is taken out when the answer is dropped.
    fn register(self: &Arc<Self>) -> Registered {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection::default());
        connection.idle_since.store(self.now(), Ordering::Relaxed);
        self.connections().insert(number, Arc::clone(&connection));
        Registered {
            open: Arc::clone(self),
            number,
            connection,
        }
    }

    /// Asks the connection idle the longest to close, and takes it out; `false` when none
    /// is idle.
    fn close_longest_idle(&self) -> bool {
        let mut connections = self.connections();
        let longest = connections
            .iter()
            .filter(|(_, c)| c.in_flight.load(Ordering::Acquire) == 0)
            .min_by_key(|(_, c)| c.idle_since.load(Ordering::Relaxed))
            .map(|(number, _)| *number);
        let Some(connection) = longest.and_then(|number| connections.remove(&number)) else {
            return false;
        };
        connection.close.notify_one();
        true
    }
}

/// A connection in [`Open`], taken out when dropped (its task ended).
struct Registered {
    open: Arc<Open>,
    number: u64,
    connection: Arc<Connection>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.connections().remove(&self.number);
    }
}

/// A request in the service: its connection is not idle until this is dropped.
struct Busy {
    open: Arc<Open>,
    connection: Arc<Connection>,
}

impl Busy {
    fn enter(open: &Arc<Open>, connection: &Arc<Connection>) -> Busy {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        Busy {
            open: Arc::clone(open),
            connection: Arc::clone(connection),
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.connection
            .idle_since
            .store(self.open.now(), Ordering::Relaxed);
        self.connection.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}
