//! Starting, inspecting and stopping a simulator; the listener that can drop a connection.

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::extract::connect_info::Connected;
use axum::serve::{IncomingStream, Listener};
use rp_model::ProjectId;
use rp_sign::{SecretKey, Signer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};

use crate::config::{
    DEFAULT_AMOUNT_LIMIT, DEFAULT_LISTEN, DEFAULT_PROCESSING_DELAY, DEFAULT_SLOW_DELAY,
    check_callback_url,
};
use crate::state::{CallbackRecord, RequestRecord, SimPayment, State};
use crate::{Error, Outcome, Project, TimeScale, gate, lifecycle};

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
    pub(crate) processing_delay: Duration,
    pub(crate) slow_delay: Duration,
    pub(crate) time_scale: TimeScale,
    pub(crate) seed: u64,
    pub(crate) client: reqwest::Client,
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
    /// processing delay, 3 s slow delay, real time, seed 0.
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
    processing_delay: Duration,
    slow_delay: Duration,
    time_scale: TimeScale,
    seed: u64,
}

impl Default for SimulatorBuilder {
    fn default() -> Self {
        SimulatorBuilder {
            listen: DEFAULT_LISTEN,
            projects: Vec::new(),
            callback_url: None,
            amount_limit: DEFAULT_AMOUNT_LIMIT,
            processing_delay: DEFAULT_PROCESSING_DELAY,
            slow_delay: DEFAULT_SLOW_DELAY,
            time_scale: TimeScale::REAL_TIME,
            seed: 0,
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

    /// The largest accepted amount per payout, in minor units (above it: code 3104).
    pub fn amount_limit(mut self, minor_units: u64) -> Self {
        self.amount_limit = minor_units;
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

    /// Binds the listener and starts serving on the current tokio runtime.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a duplicate project ID or a callback URL that is not `http://`,
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
        let shared = Arc::new(Shared {
            projects: entries,
            project_ids,
            default_callback_url: self.callback_url,
            amount_limit: self.amount_limit,
            processing_delay: self.processing_delay,
            slow_delay: self.slow_delay,
            time_scale: self.time_scale,
            seed: self.seed,
            client,
            state: Mutex::new(State::new(self.seed)),
            tasks: Mutex::new(JoinSet::new()),
            shutdown: shutdown.clone(),
            runtime: tokio::runtime::Handle::current(),
        });
        let app = gate::router(Arc::clone(&shared))
            .into_make_service_with_connect_info::<ConnectionHandle>();
        let mut server_shutdown = shutdown;
        let server = tokio::spawn(async move {
            let serve =
                axum::serve(KillableListener(listener), app).with_graceful_shutdown(async move {
                    let _ = server_shutdown.wait_for(|stopping| *stopping).await;
                });
            if let Err(error) = serve.await {
                tracing::error!(%error, "rp-sim server stopped with an error");
            }
        });
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

impl Connected<IncomingStream<'_, KillableListener>> for ConnectionHandle {
    fn connect_info(stream: IncomingStream<'_, KillableListener>) -> Self {
        stream.remote_addr().clone()
    }
}

/// A TCP listener whose connections can be killed from a handler.
pub(crate) struct KillableListener(TcpListener);

impl Listener for KillableListener {
    type Io = KillableStream;
    type Addr = ConnectionHandle;

    async fn accept(&mut self) -> (KillableStream, ConnectionHandle) {
        loop {
            match self.0.accept().await {
                Ok((stream, _)) => {
                    let _ = stream.set_nodelay(true);
                    let kill = Arc::new(AtomicBool::new(false));
                    let handle = ConnectionHandle {
                        kill: Arc::clone(&kill),
                    };
                    return (KillableStream { stream, kill }, handle);
                }
                Err(error) => {
                    tracing::warn!(%error, "rp-sim could not accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            }
        }
    }

    fn local_addr(&self) -> io::Result<ConnectionHandle> {
        self.0.local_addr().map(|_| ConnectionHandle {
            kill: Arc::new(AtomicBool::new(false)),
        })
    }
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
