//! Starting, inspecting and stopping a simulator; the serve loop (header read timeout,
//! connection cap) and the connections that a handler can drop.

use std::collections::{BTreeMap, HashMap};
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::Service as _;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use rp_model::{Currency, ProjectId};
use rp_sign::{SecretKey, Signer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, watch};
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{
    DEFAULT_AMOUNT_LIMIT, DEFAULT_BODY_LIMIT, DEFAULT_LISTEN, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_PROCESSING_DELAY, DEFAULT_READ_TIMEOUT, DEFAULT_SLOW_DELAY, PLATFORM_STATUS_LAG, Rate,
    check_callback_url,
};
use crate::limits::{LimitUsage, ProjectLimits, Windows};
use crate::state::{CallbackRecord, RequestRecord, SimPayment, State};
use crate::{Error, Outcome, Project, TimeScale, gate, lifecycle, limits};

/// A project as the running simulator uses it.
pub(crate) struct ProjectEntry {
    pub(crate) signer: Signer,
    pub(crate) callback_url: Option<String>,
}

/// Everything the request handlers and background tasks share.
pub(crate) struct Shared {
    pub(crate) projects: HashMap<u64, ProjectEntry>,
    pub(crate) project_ids: Vec<u64>,
    pub(crate) default_callback_url: Option<String>,
    pub(crate) amount_limit: u64,
    /// The project limits, applied to every project (each counted on its own).
    pub(crate) limits: ProjectLimits,
    /// The rolling windows of the running limits (real time).
    pub(crate) limit_windows: Windows,
    /// Conversion rates to KZT by currency code.
    pub(crate) rates: BTreeMap<String, Rate>,
    pub(crate) processing_delay: Duration,
    pub(crate) slow_delay: Duration,
    pub(crate) time_scale: TimeScale,
    pub(crate) seed: u64,
    pub(crate) client: reqwest::Client,
    /// The status lag in microseconds (changeable at run time through `/_sim/config`).
    status_lag_micros: AtomicU64,
    /// Whether 3061 is the unsigned HTTP 404 envelope instead of a signed HTTP 200 body.
    not_found_404: AtomicBool,
    pub(crate) body_limit: usize,
    pub(crate) body_read_timeout: Duration,
    pub(crate) header_read_timeout: Duration,
    pub(crate) max_connections: usize,
    state: Mutex<State>,
    tasks: Mutex<JoinSet<()>>,
    shutdown: watch::Receiver<bool>,
    runtime: tokio::runtime::Handle,
}

impl Shared {
    /// The state, even if a panicking thread poisoned the lock (the state stays usable).
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs a background task (processing, callback delivery) that stops at shutdown.
    pub(crate) fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        let mut tasks = self.tasks.lock().unwrap_or_else(PoisonError::into_inner);
        // Reap finished tasks so a long-running simulator does not accumulate them.
        while tasks.try_join_next().is_some() {}
        tasks.spawn_on(task, &self.runtime);
    }

    /// Stops every background task (used by reset and shutdown).
    pub(crate) fn abort_tasks(&self) {
        self.tasks
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .abort_all();
    }

    /// How long after recording a payment the status endpoint still answers 3061 for it.
    pub(crate) fn status_lag(&self) -> Duration {
        Duration::from_micros(self.status_lag_micros.load(Ordering::Relaxed))
    }

    pub(crate) fn set_status_lag(&self, lag: Duration) {
        let micros = u64::try_from(lag.as_micros()).unwrap_or(u64::MAX);
        self.status_lag_micros.store(micros, Ordering::Relaxed);
    }

    /// Whether 3061 is answered as the unsigned HTTP 404 envelope.
    pub(crate) fn not_found_404(&self) -> bool {
        self.not_found_404.load(Ordering::Relaxed)
    }

    pub(crate) fn set_not_found_404(&self, on: bool) {
        self.not_found_404.store(on, Ordering::Relaxed);
    }

    /// What project `project_id` uses of the running limits now.
    pub(crate) fn limit_usage(&self, project_id: u64) -> LimitUsage {
        limits::usage(
            &self.state(),
            project_id,
            std::time::Instant::now(),
            self.limit_windows,
        )
    }

    /// Sleeps for `duration`; `false` if the simulator is shutting down first.
    pub(crate) async fn sleep(&self, duration: Duration) -> bool {
        let mut shutdown = self.shutdown.clone();
        tokio::select! {
            () = tokio::time::sleep(duration) => true,
            _ = shutdown.wait_for(|stopping| *stopping) => false,
        }
    }
}

/// The entry point: [`Simulator::builder`].
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// A builder with the defaults: `127.0.0.1:0`, project [`crate::DEFAULT_PROJECT_ID`] with
    /// [`crate::DEFAULT_SECRET_KEY`] (unless projects are added), no callback URL, 1 s
    /// processing delay, 3 s slow delay, real time, seed 0, no status lag, 3061 as a signed
    /// HTTP 200 body, a 64 KiB body limit, 10 s header and body read timeouts, at most 256
    /// connections, no project limits.
    pub fn builder() -> SimulatorBuilder {
        SimulatorBuilder::default()
    }
}

/// Configures and starts a simulator.
#[derive(Clone, Debug)]
#[must_use]
pub struct SimulatorBuilder {
    listen: SocketAddr,
    projects: Vec<Project>,
    callback_url: Option<String>,
    amount_limit: u64,
    limits: ProjectLimits,
    rates: BTreeMap<String, Rate>,
    processing_delay: Duration,
    slow_delay: Duration,
    time_scale: TimeScale,
    seed: u64,
    /// `None`: the platform's lag, [`PLATFORM_STATUS_LAG`] × the time scale.
    status_lag: Option<Duration>,
    not_found_404: bool,
    body_limit: usize,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    max_connections: usize,
}

impl Default for SimulatorBuilder {
    fn default() -> Self {
        SimulatorBuilder {
            listen: DEFAULT_LISTEN,
            projects: Vec::new(),
            callback_url: None,
            amount_limit: DEFAULT_AMOUNT_LIMIT,
            limits: ProjectLimits::NONE,
            rates: BTreeMap::new(),
            processing_delay: DEFAULT_PROCESSING_DELAY,
            slow_delay: DEFAULT_SLOW_DELAY,
            time_scale: TimeScale::REAL_TIME,
            seed: 0,
            status_lag: Some(Duration::ZERO),
            not_found_404: false,
            body_limit: DEFAULT_BODY_LIMIT,
            header_read_timeout: DEFAULT_READ_TIMEOUT,
            body_read_timeout: DEFAULT_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }
}

impl SimulatorBuilder {
    /// The address to listen on (default `127.0.0.1:0`: loopback, a free port).
    pub fn listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Accepts a project signed with `key`. May be called several times; without any call the
    /// default test project is served.
    pub fn project(self, id: ProjectId, key: SecretKey) -> Self {
        self.add_project(Project::new(id, key))
    }

    /// Accepts a project, possibly with its own callback URL.
    pub fn add_project(mut self, project: Project) -> Self {
        self.projects.push(project);
        self
    }

    /// Where callbacks go for projects without their own URL. A request's
    /// `general.merchant_callback_url` takes precedence. Plain `http://` only.
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// A conversion rate to KZT for `currency` (`--rate USD=480.50`): a payout in it is
    /// accepted, converted (half up) and reported with both sums. A payout in a currency
    /// without a rate is refused with 3023, as the platform refuses a currency the project
    /// does not have.
    pub fn rate(mut self, currency: Currency, rate: Rate) -> Self {
        self.rates.insert(currency.code().to_owned(), rate);
        self
    }

    /// The largest amount in KZT minor units (after conversion for another currency); above
    /// it: code 3104. This is the simulator-wide per-operation limit, always on (default
    /// [`DEFAULT_AMOUNT_LIMIT`], 500 000,00 ₸). The project's own, optional maximum is
    /// [`SimulatorBuilder::limit_max_amount`]; a payout must fit both.
    pub fn amount_limit(mut self, minor_units: u64) -> Self {
        self.amount_limit = minor_units;
        self
    }

    /// Every project limit at once (replacing the ones set before); see [`ProjectLimits`].
    /// They apply to every project, each counted on its own. Default: none.
    pub fn limits(mut self, limits: ProjectLimits) -> Self {
        self.limits = limits;
        self
    }

    /// The project's minimum per payout, in tiyn (after conversion for another currency);
    /// below it: code 3358 "Operation amount is less than limit".
    pub fn limit_min_amount(mut self, minor_units: u64) -> Self {
        self.limits.min_amount = Some(minor_units);
        self
    }

    /// The project's maximum per payout, in tiyn (after conversion); above it: code 3104
    /// "Payment Constraint Invalid Payout Amount" (the platform's other spelling, 2642, is
    /// not used). Checked besides [`SimulatorBuilder::amount_limit`].
    pub fn limit_max_amount(mut self, minor_units: u64) -> Self {
        self.limits.max_amount = Some(minor_units);
        self
    }

    /// The most paid out per project in the last 24 hours (scaled by the time scale), in
    /// tiyn; a payout that would go over it: code 3109.
    pub fn limit_daily_amount(mut self, minor_units: u64) -> Self {
        self.limits.daily_amount = Some(minor_units);
        self
    }

    /// The most paid out per project in the last 7 days (scaled), in tiyn; over it: 3108.
    pub fn limit_weekly_amount(mut self, minor_units: u64) -> Self {
        self.limits.weekly_amount = Some(minor_units);
        self
    }

    /// The most paid out per project in the last 31 days (scaled), in tiyn; over it: 3106.
    pub fn limit_monthly_amount(mut self, minor_units: u64) -> Self {
        self.limits.monthly_amount = Some(minor_units);
        self
    }

    /// The most payouts per project in the last 24 hours (scaled); one more: code 3112.
    pub fn limit_daily_count(mut self, payouts: u64) -> Self {
        self.limits.daily_count = Some(payouts);
        self
    }

    /// The most payouts per project in the last 7 days (scaled); one more: code 3111.
    pub fn limit_weekly_count(mut self, payouts: u64) -> Self {
        self.limits.weekly_count = Some(payouts);
        self
    }

    /// The most payouts per project in the last 31 days (scaled); one more: code 3110.
    pub fn limit_monthly_count(mut self, payouts: u64) -> Self {
        self.limits.monthly_count = Some(payouts);
        self
    }

    /// The time from acceptance to the final status (not scaled by the time scale).
    pub fn processing_delay(mut self, delay: Duration) -> Self {
        self.processing_delay = delay;
        self
    }

    /// How long the response to a magic `0023` payout is held back (not scaled).
    pub fn slow_delay(mut self, delay: Duration) -> Self {
        self.slow_delay = delay;
        self
    }

    /// The factor applied to callback retry intervals and `callback.delay`.
    pub fn time_scale(mut self, scale: TimeScale) -> Self {
        self.time_scale = scale;
        self
    }

    /// The seed of the request and operation IDs (same seed and request order, same IDs).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The status lag, in real time (not scaled): for this long after a payment is first
    /// recorded, `POST /v2/payment/status` answers 3061 "Transaction not found" for it, while a
    /// resend of the payout still gets 3041. Default in the library: none (zero); see
    /// [`SimulatorBuilder::platform_status_lag`] for the platform's.
    pub fn status_lag(mut self, lag: Duration) -> Self {
        self.status_lag = Some(lag);
        self
    }

    /// The platform's status lag: [`PLATFORM_STATUS_LAG`] (10 s) × the time scale. This is
    /// what `rp sim` and `rp-sim` use unless `--status-lag-ms` is given.
    pub fn platform_status_lag(mut self) -> Self {
        self.status_lag = None;
        self
    }

    /// Answer 3061 (unknown payment, or within the status lag) the old way: HTTP 404 with the
    /// unsigned error envelope. Default `false`: HTTP 200 with a signed body carrying
    /// `code` and `errors[]` 3061, as the platform is seen to do.
    pub fn not_found_404(mut self, on: bool) -> Self {
        self.not_found_404 = on;
        self
    }

    /// The largest request body read, in bytes (default 64 KiB). A larger one is answered
    /// 413 and not applied.
    pub fn body_limit(mut self, bytes: usize) -> Self {
        self.body_limit = bytes;
        self
    }

    /// How long a client has to send a request's headers; also how long an idle keep-alive
    /// connection is kept (default 10 s). Then the connection is closed.
    pub fn header_read_timeout(mut self, timeout: Duration) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// How long a client has to send a request's body once its headers arrived (default
    /// 10 s). Then it is answered 408 and the connection is closed; nothing is applied.
    pub fn body_read_timeout(mut self, timeout: Duration) -> Self {
        self.body_read_timeout = timeout;
        self
    }

    /// How many connections are served at once (default 256, at least 1). Further
    /// connections wait in the listen backlog until one closes.
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Binds the listener and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a duplicate project ID, a callback URL that is not `http://` or a
    /// minimum per payout above the maximum,
    /// [`Error::Bind`] if the address cannot be bound, [`Error::HttpClient`] if the callback
    /// client cannot be built.
    pub async fn start(self) -> Result<RunningSimulator, Error> {
        let projects = if self.projects.is_empty() {
            vec![Project::default_test_project()]
        } else {
            self.projects
        };
        let mut entries = HashMap::new();
        let mut project_ids = Vec::new();
        for project in &projects {
            if let Some(url) = &project.callback_url {
                check_callback_url(url)?;
            }
            let entry = ProjectEntry {
                signer: Signer::new(&project.key),
                callback_url: project.callback_url.clone(),
            };
            if entries.insert(project.id.get(), entry).is_some() {
                return Err(Error::Config {
                    problem: format!("project {} is configured twice", project.id),
                });
            }
            project_ids.push(project.id.get());
        }
        if let Some(url) = &self.callback_url {
            check_callback_url(url)?;
        }
        if let (Some(min), Some(max)) = (self.limits.min_amount, self.limits.max_amount)
            && min > max
        {
            return Err(Error::Config {
                problem: format!(
                    "the minimum per payout ({min} tiyn) is above the maximum ({max} tiyn): no payout could pass"
                ),
            });
        }
        let client = reqwest::Client::builder()
            .no_proxy()
            .timeout(Duration::from_secs(10))
            .build()
            .map_err(Error::HttpClient)?;
        let listener = TcpListener::bind(self.listen)
            .await
            .map_err(|source| Error::Bind {
                addr: self.listen,
                source,
            })?;
        let addr = listener.local_addr().map_err(|source| Error::Bind {
            addr: self.listen,
            source,
        })?;
        let (stop, shutdown) = watch::channel(false);
        let status_lag = self
            .status_lag
            .unwrap_or_else(|| self.time_scale.apply(PLATFORM_STATUS_LAG));
        let shared = Arc::new(Shared {
            projects: entries,
            project_ids,
            default_callback_url: self.callback_url,
            amount_limit: self.amount_limit,
            limits: self.limits,
            limit_windows: Windows::scaled(self.time_scale),
            rates: self.rates,
            processing_delay: self.processing_delay,
            slow_delay: self.slow_delay,
            time_scale: self.time_scale,
            seed: self.seed,
            client,
            status_lag_micros: AtomicU64::new(0),
            not_found_404: AtomicBool::new(self.not_found_404),
            body_limit: self.body_limit,
            body_read_timeout: self.body_read_timeout,
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
            state: Mutex::new(State::new(self.seed)),
            tasks: Mutex::new(JoinSet::new()),
            shutdown: shutdown.clone(),
            runtime: tokio::runtime::Handle::current(),
        });
        shared.set_status_lag(status_lag);
        let app = gate::router(Arc::clone(&shared));
        let limits = ConnectionLimits {
            header_read_timeout: self.header_read_timeout,
            max_connections: self.max_connections,
        };
        let server = tokio::spawn(serve(listener, app, limits, shutdown));
        tracing::info!(%addr, "rp-sim listening");
        Ok(RunningSimulator {
            shared,
            addr,
            stop,
            server: Some(server),
        })
    }
}

/// A simulator serving on its address until [`RunningSimulator::shutdown`] (or drop).
///
/// The inspection methods read the same state as the `/_sim/` endpoints.
pub struct RunningSimulator {
    shared: Arc<Shared>,
    addr: SocketAddr,
    stop: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningSimulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningSimulator")
            .field("addr", &self.addr)
            .field("projects", &self.shared.project_ids)
            .finish_non_exhaustive()
    }
}

impl RunningSimulator {
    /// The bound address (with the real port when port 0 was asked for).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://IP:PORT`, the base URL for a client.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The IDs of the projects served.
    pub fn project_ids(&self) -> Vec<u64> {
        self.shared.project_ids.clone()
    }

    /// Every recorded payment, in the order they were first accepted.
    pub fn payments(&self) -> Vec<SimPayment> {
        self.shared
            .state()
            .payments
            .iter()
            .map(|entry| entry.payment.clone())
            .collect()
    }

    /// The payment with this ID (the first match if several projects used the same ID).
    pub fn payment(&self, payment_id: &str) -> Option<SimPayment> {
        self.shared
            .state()
            .find(payment_id)
            .map(|entry| entry.payment.clone())
    }

    /// Every request received on the Gate endpoints, oldest first.
    pub fn requests(&self) -> Vec<RequestRecord> {
        self.shared.state().requests.clone()
    }

    /// Every callback delivery attempt, oldest first.
    pub fn callbacks(&self) -> Vec<CallbackRecord> {
        self.shared.state().callbacks.clone()
    }

    /// Sets the final outcome of a `processing` payment and sends its callback.
    ///
    /// # Errors
    ///
    /// [`Error::UnknownPayment`], or [`Error::NotProcessing`] if the payment already has a
    /// final status.
    pub fn force(&self, payment_id: &str, outcome: Outcome) -> Result<SimPayment, Error> {
        lifecycle::force(&self.shared, payment_id, outcome)
    }

    /// The project limits enforced (the same for every project).
    pub fn limits(&self) -> ProjectLimits {
        self.shared.limits
    }

    /// What project `project_id`'s payouts use of the running limits now (zero for a
    /// project that is not served); also `GET /_sim/limits`.
    pub fn limit_usage(&self, project_id: u64) -> LimitUsage {
        self.shared.limit_usage(project_id)
    }

    /// The current status lag (real time).
    pub fn status_lag(&self) -> Duration {
        self.shared.status_lag()
    }

    /// Changes the status lag from now on (also `POST /_sim/config {"status_lag_ms": N}`).
    /// It counts from when each payment was first recorded, also for payments recorded before.
    pub fn set_status_lag(&self, lag: Duration) {
        self.shared.set_status_lag(lag);
    }

    /// Switches 3061 between the unsigned HTTP 404 envelope (`true`) and the signed HTTP 200
    /// body (`false`, the default); also `POST /_sim/config {"not_found_404": true}`.
    pub fn set_not_found_404(&self, on: bool) {
        self.shared.set_not_found_404(on);
    }

    /// Forgets every payment, request and callback, and stops pending callbacks.
    pub fn reset(&self) {
        lifecycle::reset(&self.shared);
    }

    /// Stops serving: pending callbacks and processing are abandoned, connections closed.
    pub async fn shutdown(mut self) {
        self.stop_everything();
        let mut tasks = std::mem::take(
            &mut *self
                .shared
                .tasks
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        if let Some(mut server) = self.server.take() {
            // In-flight requests finish (a slow response wakes up at shutdown); idle
            // keep-alive connections are closed by the graceful shutdown.
            if tokio::time::timeout(Duration::from_secs(2), &mut server)
                .await
                .is_err()
            {
                server.abort();
            }
        }
        tracing::info!(addr = %self.addr, "rp-sim stopped");
    }

    fn stop_everything(&self) {
        let _ = self.stop.send(true);
        self.shared.abort_tasks();
    }
}

impl Drop for RunningSimulator {
    fn drop(&mut self) {
        self.stop_everything();
        if let Some(server) = self.server.take() {
            server.abort();
        }
    }
}

/// Lets a request handler drop its connection without answering (magic `0021`).
#[derive(Clone, Debug)]
pub(crate) struct ConnectionHandle {
    kill: Arc<AtomicBool>,
}

impl ConnectionHandle {
    /// From now on the connection fails every read and write, so the server closes it
    /// without writing the response.
    pub(crate) fn drop_connection(&self) {
        self.kill.store(true, Ordering::SeqCst);
    }
}

/// Resolves once `shutdown` turns true (or its sender is gone).
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stopping| *stopping).await;
}

/// The connection-level limits of the serve loop.
#[derive(Clone, Copy, Debug)]
struct ConnectionLimits {
    header_read_timeout: Duration,
    max_connections: usize,
}

/// Serves `app` on `listener` until `shutdown` turns true: HTTP/1.1, a header read timeout
/// (which also ends idle keep-alive connections), at most `max_connections` at once (further
/// ones wait in the backlog), and a [`ConnectionHandle`] in every request's extensions
/// (`ConnectInfo<ConnectionHandle>`) so that a handler can drop its connection. `axum::serve`
/// has neither the timeout nor the cap.
async fn serve(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    mut shutdown: watch::Receiver<bool>,
) {
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let mut connections = JoinSet::new();
    loop {
        let permit = tokio::select! {
            permit = Arc::clone(&permits).acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = stopping(&mut shutdown) => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(error) => {
                    tracing::warn!(%error, "rp-sim could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = stopping(&mut shutdown) => break,
        };
        // Reap finished connections so a long-running simulator does not accumulate them.
        while connections.try_join_next().is_some() {}
        let _ = stream.set_nodelay(true);
        let kill = Arc::new(AtomicBool::new(false));
        let handle = ConnectionHandle {
            kill: Arc::clone(&kill),
        };
        let io = TokioIo::new(KillableStream { stream, kill });
        let service = TowerToHyperService::new(app.clone());
        let mut connection_shutdown = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            let hyper_service =
                hyper::service::service_fn(move |mut request: hyper::Request<Incoming>| {
                    request.extensions_mut().insert(ConnectInfo(handle.clone()));
                    service.call(request)
                });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(limits.header_read_timeout)
                .keep_alive(true);
            let connection = builder.serve_connection(io, hyper_service);
            let mut connection = std::pin::pin!(connection);
            tokio::select! {
                result = connection.as_mut() => {
                    if let Err(error) = result {
                        tracing::debug!(%error, "rp-sim connection ended");
                    }
                }
                () = stopping(&mut connection_shutdown) => {
                    // In-flight requests finish; idle connections close now.
                    connection.as_mut().graceful_shutdown();
                    let _ = connection.await;
                }
            }
        });
    }
    while connections.join_next().await.is_some() {}
}

/// A TCP stream that fails once its connection was killed.
pub(crate) struct KillableStream {
    stream: TcpStream,
    kill: Arc<AtomicBool>,
}

impl KillableStream {
    fn killed(&self) -> bool {
        self.kill.load(Ordering::SeqCst)
    }
}

fn dropped() -> io::Error {
    io::Error::new(
        io::ErrorKind::ConnectionAborted,
        "rp-sim dropped the connection (magic value 0021)",
    )
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if self.killed() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if self.killed() {
            return Poll::Ready(Err(dropped()));
        }
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}
