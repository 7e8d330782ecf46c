//! [`serve`]: everything `rp serve` runs, until told to stop: the console and the callback
//! endpoint (on one listener, or the callbacks on their own), the reconciler on a schedule,
//! and the batch worker that resumes stopped batches. Then a graceful shutdown: stop taking
//! work, let what is in flight finish and be recorded, return.

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use rp_batch::BatchId;
use rp_payout::CallbackOutcome;
use rp_payout::axum::{ConnectionLimits, Observer, RequestLimits, callback_router_with_limits};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::Desk;
use crate::tls::Tls;

/// Where the callback endpoint is mounted on the console's listener, unless it has its own.
pub const DEFAULT_CALLBACK_PATH: &str = "/rocketpay/callback";

/// How long shutdown waits for payouts the console started, and for the batch worker's calls
/// in flight, before it returns anyway (they stay recorded and claimed; reconcile resolves
/// them).
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);

/// What [`serve`] runs, and where.
#[derive(Debug)]
#[non_exhaustive]
pub struct ServeOptions {
    /// The console's listener (and the callbacks', when `callbacks` is `None`).
    pub console: TcpListener,
    /// A listener of the callbacks' own (`--callback-listen`), e.g. the only port open to the
    /// internet.
    pub callbacks: Option<TcpListener>,
    /// The callback endpoint's path. Default [`DEFAULT_CALLBACK_PATH`].
    pub callback_path: String,
    /// How often the reconciler asks about overdue payouts (`None`: never). Default 30 s.
    pub reconcile_every: Option<Duration>,
    /// How often the batch worker looks for stopped batches to resume (`None`: never).
    /// Default 10 s.
    pub batches_every: Option<Duration>,
    /// How often the webhook sender looks for due deliveries besides being woken by each
    /// callback (`None`: no sender in this process). Default 1 s.
    pub webhooks_every: Option<Duration>,
    /// How long one webhook delivery may take. Default 10 s.
    pub webhook_timeout: Duration,
    /// TLS on both listeners (`--tls-cert`, `--tls-key`); `None` (the default): plain HTTP.
    pub tls: Option<Tls>,
}

impl ServeOptions {
    /// Everything on `console`, with the defaults.
    pub fn new(console: TcpListener) -> ServeOptions {
        ServeOptions {
            console,
            callbacks: None,
            callback_path: DEFAULT_CALLBACK_PATH.to_owned(),
            reconcile_every: Some(Duration::from_secs(30)),
            batches_every: Some(Duration::from_secs(10)),
            webhooks_every: Some(Duration::from_secs(1)),
            webhook_timeout: Duration::from_secs(10),
            tls: None,
        }
    }
}

/// Callbacks `rp serve` handles at once; beyond, 503 and the platform redelivers (10 s
/// later). Above rp-payout's default: a desk takes the callbacks of bursts of API and batch
/// payouts, each a small body and one ledger write.
pub const CALLBACKS_AT_ONCE: usize = 256;

/// The callback endpoint of `desk`, counting outcomes in its metrics.
pub fn callback_router(desk: &Desk) -> Router {
    let metrics_desk = desk.clone();
    let observer: Observer = Arc::new(move |outcome: &CallbackOutcome| {
        metrics_desk.metrics().callback(outcome.label());
    });
    callback_router_with_limits(
        Arc::clone(desk.client()),
        RequestLimits::default().with_max_concurrent_requests(CALLBACKS_AT_ONCE),
        Some(observer),
    )
}

/// Runs the desk until `shutdown` completes, then shuts down gracefully.
pub async fn serve(desk: Desk, options: ServeOptions, shutdown: impl Future<Output = ()> + Send) {
    let (stop, stopped) = watch::channel(false);
    let mut app = crate::web::router(desk.clone());
    let mut servers = tokio::task::JoinSet::new();
    match options.callbacks {
        Some(listener) => {
            let callbacks =
                Router::new().nest_service(&options.callback_path, callback_router(&desk));
            servers.spawn(listen(
                listener,
                callbacks,
                options.tls.clone(),
                wait_for(stopped.clone()),
            ));
        }
        None => {
            app = app.nest_service(&options.callback_path, callback_router(&desk));
        }
    }
    servers.spawn(listen(
        options.console,
        app,
        options.tls,
        wait_for(stopped.clone()),
    ));
    let batch_stop = desk.stopping();
    let mut work = tokio::task::JoinSet::new();
    if let Some(every) = options.reconcile_every {
        work.spawn(reconciler(desk.clone(), every, stopped.clone()));
    }
    if let Some(every) = options.batches_every {
        work.spawn(batch_worker(
            desk.clone(),
            every,
            Arc::clone(&batch_stop),
            stopped.clone(),
        ));
    }
    if let Some(every) = options.webhooks_every {
        match crate::webhooks::http_client(options.webhook_timeout) {
            Ok(http) => {
                work.spawn(crate::webhooks::sender(
                    desk.clone(),
                    every,
                    http,
                    options.webhook_timeout,
                    stopped.clone(),
                ));
            }
            Err(error) => tracing::error!(%error, "webhooks: not sent by this process"),
        }
    }
    work.spawn(session_sweeper(desk.clone(), stopped.clone()));
    tracing::info!("rp serve: running");
    shutdown.await;
    tracing::info!("rp serve: shutting down: no new work; finishing what is in flight");
    batch_stop.store(true, Ordering::SeqCst);
    let _ = stop.send(true);
    // One grace period for everything: requests in flight, the background loops, the
    // console's payouts and batch runs. A connection that will not end (a client that stopped
    // reading, say) does not hold the exit past it.
    let deadline = tokio::time::Instant::now() + SHUTDOWN_GRACE;
    let drained = async { while servers.join_next().await.is_some() {} };
    if tokio::time::timeout_at(deadline, drained).await.is_err() {
        tracing::warn!("rp serve: connections still open after the grace period; closed");
        servers.abort_all();
    }
    let background = async { while work.join_next().await.is_some() {} };
    if tokio::time::timeout_at(deadline, background).await.is_err() {
        tracing::warn!(
            "rp serve: background work still running after the grace period; reconcile resolves what it held"
        );
    }
    let left = desk
        .finish_background(deadline.saturating_duration_since(tokio::time::Instant::now()))
        .await;
    if left > 0 {
        tracing::warn!(
            left,
            "rp serve: console payouts still in flight at exit; they are recorded and reconcile resolves them"
        );
    }
    tracing::info!("rp serve: stopped");
}

/// Serves `app` on `listener`, over TLS when `tls` is given, until `signal`.
async fn listen(
    listener: TcpListener,
    app: Router,
    tls: Option<Tls>,
    signal: impl Future<Output = ()> + Send,
) {
    let limits = ConnectionLimits::default();
    match tls {
        Some(tls) => crate::tls::serve_with_shutdown(listener, app, limits, tls, signal).await,
        None => rp_payout::axum::serve_with_shutdown(listener, app, limits, signal).await,
    }
}

/// Completes once `stopped` says so.
async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|stop| *stop).await;
}

/// Sleeps `every`, or returns `false` early when stopping.
async fn pause(every: Duration, stopped: &mut watch::Receiver<bool>) -> bool {
    let slept = tokio::select! {
        () = tokio::time::sleep(every) => true,
        _ = stopped.wait_for(|stop| *stop) => false,
    };
    slept && !*stopped.borrow()
}

/// Asks about overdue payouts and resends (same payment ID) what the platform lacks, every
/// `every`. With several instances on one ledger, each payout is handled by one (claims).
async fn reconciler(desk: Desk, every: Duration, mut stopped: watch::Receiver<bool>) {
    while pause(every, &mut stopped).await {
        match desk.client().reconcile_and_resume().await {
            Ok(report) if !report.entries.is_empty() || !report.resent.is_empty() => {
                tracing::info!(
                    asked = report.entries.len(),
                    updated = report.updated(),
                    failed = report.failed(),
                    resent = report.resent.len(),
                    "reconciled"
                );
            }
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "reconcile failed; trying again next time"),
        }
    }
}

/// Resumes stopped batches (rows left, no worker holding them), one at a time, each under
/// the stricter of the project's limits and those it was confirmed with.
async fn batch_worker(
    desk: Desk,
    every: Duration,
    stop: Arc<AtomicBool>,
    mut stopped: watch::Receiver<bool>,
) {
    while pause(every, &mut stopped).await {
        let stopped = match desk.batches().stopped(100).await {
            Ok(stopped) => stopped,
            Err(error) => {
                tracing::warn!(%error, "batch worker: could not look for stopped batches");
                continue;
            }
        };
        for id in stopped {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let Ok(batch_id) = id.parse::<BatchId>() else {
                continue;
            };
            let info = match desk.batches().info(&id).await {
                Ok(Some(info)) => info,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(batch = %id, %error, "batch worker: could not read the batch");
                    continue;
                }
            };
            let client = match batch_client(&desk, &info.batch) {
                Ok(client) => Arc::new(client),
                Err(reason) => {
                    tracing::warn!(batch = %id, %reason, "batch worker: not resumed (run it with rp batch run)");
                    continue;
                }
            };
            tracing::info!(batch = %id, "batch worker: resuming a stopped batch");
            let result = rp_batch::run::run(
                batch_id,
                client,
                Arc::clone(desk.batches()),
                desk.settings().batch_options,
                &stop,
                |_, _| {},
            )
            .await;
            match result {
                Ok(summary) => tracing::info!(batch = %id, ?summary, "batch worker: pass finished"),
                Err(error) => tracing::warn!(batch = %id, %error, "batch worker: the batch failed"),
            }
        }
    }
}

/// A client for paying `batch`: the desk's, applying the stricter of the project's limits
/// and those the batch was confirmed with; or why this rp cannot pay it (limits it cannot
/// read, amount limits in another currency).
pub(crate) fn batch_client(
    desk: &Desk,
    batch: &rp_ledger::NewBatch,
) -> Result<rp_payout::Client, String> {
    let own = desk.client().config().limits;
    let limits = match rp_batch::run::registered_limits(batch)? {
        Some(registered) if registered.has_amounts() && registered.currency != own.currency => {
            return Err("its amount limits are in another currency than the project's".to_owned());
        }
        Some(registered) => own.strictest(registered),
        None => own,
    };
    Ok(desk.client().with_limits(limits))
}

/// Deletes ended sessions once an hour.
async fn session_sweeper(desk: Desk, mut stopped: watch::Receiver<bool>) {
    while pause(Duration::from_secs(3600), &mut stopped).await {
        if let Err(error) = desk
            .access()
            .purge_sessions(std::time::SystemTime::now())
            .await
        {
            tracing::warn!(%error, "could not delete ended sessions");
        }
    }
}
