//! What the serve loop knows of its connections, to let a new one in at the cap without
//! cutting a request: [`Open`] (the connections served, and which is idle), [`Counted`] (a
//! connection's socket: bytes read, and a write timeout) and [`Tracked`] (an answer's body:
//! its connection is busy until the body is written or dropped).
//!
//! A connection is idle when no answer of it is in flight, its last answer is written out,
//! and nothing was read from it since (or since it was accepted): a request already
//! received, even in part, is never cut, nor an answer being written.

use std::collections::HashMap;
use std::future::Future as _;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use hyper::body::{Body as HttpBody, Frame, SizeHint};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, Semaphore};

/// How long a connection asked to make way may take to close before another is asked.
const CLOSING_GRACE: Duration = Duration::from_secs(1);

/// [`Connection::closing_since`] of a connection that accepted to make way.
const GAVE_WAY: u64 = u64::MAX;

/// How long a connection must have been idle to be asked to make way: its client may be
/// writing a request at this very moment (a new connection's first, one round trip after a
/// TLS handshake; a pooled connection's next), and such a request must not meet a closed
/// socket.
const MIN_IDLE: Duration = Duration::from_secs(1);

/// The connections being served (past their `accept`), so that at the cap an idle one can
/// be asked to close, and so that answers close their connections near the cap.
pub(super) struct Open {
    /// Served connections by number.
    connections: Mutex<HashMap<u64, Arc<Connection>>>,
    /// The next connection's number.
    next: AtomicU64,
    /// The places ([`super::ConnectionLimits::max_connections`]) not taken.
    slots: Arc<Semaphore>,
    /// Fewer places than this free: crowded ([`Open::crowded`]).
    headroom: usize,
    /// Told when a connection becomes idle or declines to close: the accept loop, waiting at
    /// the cap, looks again.
    pub(super) changed: Notify,
    /// Where the connections' times count from.
    started: Instant,
}

/// One served connection, as [`Open`] sees it.
pub(super) struct Connection {
    /// Answers in flight (from the request's start until its body is written or dropped).
    in_flight: AtomicUsize,
    /// Bytes read from the socket, ever.
    read: AtomicU64,
    /// [`Connection::read`] when its last answer ended (0 when none yet).
    read_when_idle: AtomicU64,
    /// Whether everything written was flushed to the socket (an answer is written out).
    flushed: AtomicBool,
    /// Whether an answer was ever started: hyper closes a connection that has had none only
    /// when its head read times out, so one asked to make way is dropped instead.
    answered: AtomicBool,
    /// Since when it has been idle, in microseconds from [`Open::started`].
    idle_since: AtomicU64,
    /// When it was asked to make way, in microseconds from [`Open::started`] plus one (0:
    /// not asked, or it declined; [`GAVE_WAY`]: it accepted).
    closing_since: AtomicU64,
    /// Asks the connection to close if it is still idle when it looks.
    pub(super) close: Notify,
}

impl Connection {
    /// Idle: no answer in flight, the last one written out, nothing read since.
    pub(super) fn is_idle(&self) -> bool {
        self.in_flight.load(Ordering::Acquire) == 0
            && self.flushed.load(Ordering::Acquire)
            && self.read.load(Ordering::Acquire) == self.read_when_idle.load(Ordering::Acquire)
    }

    /// Whether it has never started an answer (nothing to flush, nothing received: it can
    /// be dropped when idle).
    pub(super) fn is_fresh(&self) -> bool {
        !self.answered.load(Ordering::Acquire)
    }
}

impl Open {
    /// For `cap` places, all of them `slots`.
    pub(super) fn new(slots: Arc<Semaphore>, cap: usize) -> Open {
        Open {
            connections: Mutex::default(),
            next: AtomicU64::new(0),
            slots,
            headroom: (cap / 8).max(1),
            changed: Notify::new(),
            started: Instant::now(),
        }
    }

    /// Near the cap (fewer than an eighth of the places free; for a cap under 16, none):
    /// each answer closes its connection (`Connection: close`), so that places free up
    /// without closing a connection under a client about to reuse it.
    pub(super) fn crowded(&self) -> bool {
        self.slots.available_permits() < self.headroom
    }

    /// Microseconds since [`Open::started`].
    fn now(&self) -> u64 {
        u64::try_from(self.started.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    fn connections(&self) -> MutexGuard<'_, HashMap<u64, Arc<Connection>>> {
        self.connections
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a connection, idle from now; it is taken out when the answer is dropped.
    pub(super) fn register(self: &Arc<Self>) -> Registered {
        let number = self.next.fetch_add(1, Ordering::Relaxed);
        let connection = Arc::new(Connection {
            in_flight: AtomicUsize::new(0),
            read: AtomicU64::new(0),
            read_when_idle: AtomicU64::new(0),
            flushed: AtomicBool::new(true),
            answered: AtomicBool::new(false),
            idle_since: AtomicU64::new(self.now()),
            closing_since: AtomicU64::new(0),
            close: Notify::new(),
        });
        self.connections().insert(number, Arc::clone(&connection));
        Registered {
            open: Arc::clone(self),
            number,
            connection,
        }
    }

    /// Asks the connection idle the longest (at least [`MIN_IDLE`]) to make way, unless one
    /// asked less than [`CLOSING_GRACE`] ago is still closing (one at a time); one asked
    /// before and still closing is not asked again.
    pub(super) fn close_longest_idle(&self) {
        let now = self.now();
        let micros = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        let connections = self.connections();
        let closing = connections.values().any(|c| {
            let since = c.closing_since.load(Ordering::Acquire);
            since != 0 && since != GAVE_WAY && now.saturating_sub(since - 1) < micros(CLOSING_GRACE)
        });
        if closing {
            return;
        }
        let longest = connections
            .values()
            .filter(|c| c.closing_since.load(Ordering::Acquire) == 0 && c.is_idle())
            .min_by_key(|c| c.idle_since.load(Ordering::Acquire))
            .filter(|c| {
                now.saturating_sub(c.idle_since.load(Ordering::Acquire)) >= micros(MIN_IDLE)
            });
        if let Some(connection) = longest {
            connection.closing_since.store(now + 1, Ordering::Release);
            connection.close.notify_one();
            tracing::debug!(
                "at the connection cap: the connection idle the longest is asked to make way"
            );
        }
    }

    /// `connection` accepted to make way and gave its place up: another may be asked at
    /// once (it is not asked again).
    pub(super) fn gave_way(&self, connection: &Connection) {
        connection.closing_since.store(GAVE_WAY, Ordering::Release);
    }

    /// `connection` was asked to make way but is no longer idle: another may be asked.
    pub(super) fn declined(&self, connection: &Connection) {
        connection.closing_since.store(0, Ordering::Release);
        self.changed.notify_waiters();
    }
}

/// A connection in [`Open`], taken out when dropped (its task ended).
pub(super) struct Registered {
    open: Arc<Open>,
    number: u64,
    /// The connection.
    pub(super) connection: Arc<Connection>,
}

impl Drop for Registered {
    fn drop(&mut self) {
        self.open.connections().remove(&self.number);
    }
}

/// An answer in flight: its connection is not idle until this is dropped.
pub(super) struct Busy {
    open: Arc<Open>,
    connection: Arc<Connection>,
}

impl Busy {
    /// A request of `connection` starts.
    pub(super) fn enter(open: &Arc<Open>, connection: &Arc<Connection>) -> Busy {
        connection.in_flight.fetch_add(1, Ordering::AcqRel);
        connection.answered.store(true, Ordering::Release);
        Busy {
            open: Arc::clone(open),
            connection: Arc::clone(connection),
        }
    }

    /// Whether the serve loop is crowded ([`Open::crowded`]).
    pub(super) fn crowded(&self) -> bool {
        self.open.crowded()
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let connection = &self.connection;
        connection
            .read_when_idle
            .store(connection.read.load(Ordering::Acquire), Ordering::Release);
        connection
            .idle_since
            .store(self.open.now(), Ordering::Release);
        if connection.in_flight.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.open.changed.notify_waiters();
        }
    }
}

/// An answer's body holding its [`Busy`]: the connection is busy until the body is written
/// (or dropped), not only until the handler returned.
pub(super) struct Tracked {
    body: Body,
    _busy: Busy,
}

impl Tracked {
    /// `body`, its connection busy meanwhile.
    pub(super) fn body(body: Body, busy: Busy) -> Body {
        Body::new(Tracked { body, _busy: busy })
    }
}

impl HttpBody for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// A connection's socket: counts the bytes read (see [`Connection::is_idle`]), and fails a
/// write that makes no progress for `write_timeout` (a client that does not read its answer
/// would otherwise hold its place for ever).
pub(super) struct Counted<I> {
    io: I,
    connection: Arc<Connection>,
    write_timeout: Duration,
    /// Running while a write makes no progress.
    stalled: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<I> Counted<I> {
    pub(super) fn new(io: I, connection: Arc<Connection>, write_timeout: Duration) -> Self {
        Counted {
            io,
            connection,
            write_timeout,
            stalled: None,
        }
    }

    /// What a write that `progress` answered means, with the write timeout applied.
    fn timed<T>(
        &mut self,
        cx: &mut Context<'_>,
        progress: Poll<io::Result<T>>,
    ) -> Poll<io::Result<T>> {
        if progress.is_ready() {
            self.stalled = None;
            return progress;
        }
        let timeout = self.write_timeout;
        let stalled = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
        ready!(stalled.as_mut().poll(cx));
        Poll::Ready(Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("the client took no part of its answer for {timeout:?}"),
        )))
    }
}

impl<I> Counted<I> {
    /// Bytes written: not flushed until the next flush.
    fn written(&self, progress: &Poll<io::Result<usize>>) {
        if matches!(progress, Poll::Ready(Ok(n)) if *n > 0) {
            self.connection.flushed.store(false, Ordering::Release);
        }
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for Counted<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        ready!(Pin::new(&mut self.io).poll_read(cx, buf))?;
        let read = u64::try_from(buf.filled().len().saturating_sub(before)).unwrap_or(u64::MAX);
        self.connection.read.fetch_add(read, Ordering::AcqRel);
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for Counted<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let progress = Pin::new(&mut self.io).poll_write(cx, buf);
        self.written(&progress);
        self.timed(cx, progress)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let progress = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.written(&progress);
        self.timed(cx, progress)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let progress = Pin::new(&mut self.io).poll_flush(cx);
        if matches!(progress, Poll::Ready(Ok(()))) {
            self.connection.flushed.store(true, Ordering::Release);
        }
        self.timed(cx, progress)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let progress = Pin::new(&mut self.io).poll_shutdown(cx);
        self.timed(cx, progress)
    }
}
