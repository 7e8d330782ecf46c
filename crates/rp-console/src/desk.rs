//! [`Desk`]: what every part of `rp serve` shares: the client (and through it the ledger's
//! payouts), the batches, the operators and sessions, the settings, the metrics, and the
//! payouts the console is sending.

use std::fmt;
use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rp_batch::run::RunOptions;
use rp_ledger::{AccessStore, BatchStore, Ledger, WebhookStore};
use rp_payout::Client;
use tokio::task::JoinSet;

use crate::auth::LoginGuard;
use crate::metrics::Metrics;

/// How the console behaves.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Settings {
    /// Cookies marked `Secure` (default `true`). Browsers keep `Secure` cookies of
    /// `http://localhost` and `http://127.0.0.1` too, so only a plain-HTTP client that is
    /// not a browser needs this off.
    pub secure_cookies: bool,
    /// How long a session lasts after login. Default 8 hours.
    pub session_ttl: Duration,
    /// Where uploaded batch files wait for their confirmation. Default `rp-uploads` in the
    /// system's temporary directory. With several instances behind a load balancer, an upload
    /// is confirmed on the instance that received it (sticky sessions), or this is a shared
    /// directory.
    pub uploads: PathBuf,
    /// The largest batch file accepted. Default 64 MiB (about 600,000 rows).
    pub max_upload_bytes: usize,
    /// How batches are paid (concurrency, rate, lease).
    pub batch_options: RunOptions,
    /// Requests a second each API key may make (bursts of twice that). Default
    /// [`KEY_RATE`](crate::KEY_RATE).
    pub api_key_rate: u32,
    /// How long a payout submitted from the console or the API waits for the ledger to record
    /// it. Past that the answer says it is not recorded yet and may still be (the API's 503
    /// `not-yet-recorded`); the same request again tells. Default
    /// [`RECORD_WAIT`](crate::RECORD_WAIT).
    pub record_wait: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            secure_cookies: true,
            session_ttl: Duration::from_secs(8 * 3600),
            uploads: std::env::temp_dir().join("rp-uploads"),
            max_upload_bytes: 64 * 1024 * 1024,
            batch_options: RunOptions::default(),
            api_key_rate: crate::api::KEY_RATE,
            record_wait: crate::RECORD_WAIT,
        }
    }
}

/// What the console, the callback endpoint and the background work share. Cheap to clone.
#[derive(Clone)]
pub struct Desk {
    inner: Arc<Inner>,
}

struct Inner {
    client: Arc<Client>,
    ledger: Ledger,
    access: Arc<dyn AccessStore>,
    batches: Arc<dyn BatchStore>,
    webhooks: Arc<dyn WebhookStore>,
    webhook_wakeup: Arc<tokio::sync::Notify>,
    settings: Settings,
    logins: LoginGuard,
    api_limiter: crate::api::KeyLimiter,
    api_waiters: Arc<tokio::sync::Semaphore>,
    metrics: Metrics,
    background: Mutex<JoinSet<()>>,
    stopping: Arc<AtomicBool>,
    unrecorded: crate::submit::Unrecorded,
}

impl fmt::Debug for Desk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Desk")
            .field("project", &self.inner.client.project_id())
            .field("ledger", &self.inner.ledger)
            .finish_non_exhaustive()
    }
}

impl Desk {
    /// A desk for `client`'s project on `ledger` (the client's store must be
    /// `ledger.store(project)`: the console reads what the client records).
    pub fn new(client: Arc<Client>, ledger: Ledger, settings: Settings) -> Desk {
        let project = client.project_id();
        let api_key_rate = settings.api_key_rate;
        Desk {
            inner: Arc::new(Inner {
                access: ledger.access(project),
                batches: ledger.batches(project),
                webhooks: ledger.webhooks(project),
                webhook_wakeup: ledger.payout_changes(),
                client,
                ledger,
                settings,
                logins: LoginGuard::default(),
                api_limiter: crate::api::KeyLimiter::new(api_key_rate),
                api_waiters: Arc::new(tokio::sync::Semaphore::new(crate::api::MAX_WAITERS)),
                metrics: Metrics::default(),
                background: Mutex::new(JoinSet::new()),
                stopping: Arc::new(AtomicBool::new(false)),
                unrecorded: crate::submit::Unrecorded::default(),
            }),
        }
    }

    /// The client: payouts, statuses, callbacks, reconcile.
    pub fn client(&self) -> &Arc<Client> {
        &self.inner.client
    }

    /// The ledger.
    pub fn ledger(&self) -> &Ledger {
        &self.inner.ledger
    }

    /// The project's operators and their sessions, and its API keys.
    pub fn access(&self) -> &Arc<dyn AccessStore> {
        &self.inner.access
    }

    /// The project's batches.
    pub fn batches(&self) -> &Arc<dyn BatchStore> {
        &self.inner.batches
    }

    /// The project's webhook endpoints and deliveries.
    pub fn webhooks(&self) -> &Arc<dyn WebhookStore> {
        &self.inner.webhooks
    }

    /// Tells the webhook sender to look now instead of at its next round. A payout recorded
    /// or changed through the ledger tells it by itself ([`Ledger::payout_changes`]); this is
    /// for what else makes deliveries due (an endpoint enabled, a replay, a delivery done).
    pub fn wake_webhooks(&self) {
        self.inner.webhook_wakeup.notify_one();
    }

    pub(crate) fn webhook_wakeup(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.webhook_wakeup)
    }

    /// The settings.
    pub fn settings(&self) -> &Settings {
        &self.inner.settings
    }

    /// The counters `/metrics` shows.
    pub fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    pub(crate) fn logins(&self) -> &LoginGuard {
        &self.inner.logins
    }

    pub(crate) fn api_limiter(&self) -> &crate::api::KeyLimiter {
        &self.inner.api_limiter
    }

    /// Places for `?wait=` answers ([`crate::api::MAX_WAITERS`]).
    pub(crate) fn api_waiters(&self) -> Arc<tokio::sync::Semaphore> {
        Arc::clone(&self.inner.api_waiters)
    }

    /// Set when the process is shutting down: batch runs stop taking rows.
    pub(crate) fn stopping(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.inner.stopping)
    }

    /// Whether the process is shutting down (see [`Desk::stopping`]).
    pub(crate) fn is_stopping(&self) -> bool {
        self.inner
            .stopping
            .load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Runs `work` (a payout or a batch the console started) in the background;
    /// [`Desk::finish_background`] waits for it at shutdown, so that its outcome is recorded
    /// before the process exits.
    pub(crate) fn run_in_background(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut background = self
            .inner
            .background
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Reap what has finished, so the set does not grow for the life of the process.
        while background.try_join_next().is_some() {}
        background.spawn(work);
    }

    /// The payouts this process submitted that the ledger has not recorded yet.
    pub(crate) fn unrecorded(&self) -> &crate::submit::Unrecorded {
        &self.inner.unrecorded
    }

    /// Graceful shutdown of what the console started: batch runs stop taking rows (their
    /// calls in flight finish, their claimed rows are given back) and every payout and batch
    /// run is awaited, at most `limit`. Answers how many were still running when the time ran
    /// out (their payouts stay recorded and claimed; reconcile resolves them).
    pub async fn finish_background(&self, limit: Duration) -> usize {
        self.inner
            .stopping
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let mut background = std::mem::take(
            &mut *self
                .inner
                .background
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let all = async { while background.join_next().await.is_some() {} };
        if tokio::time::timeout(limit, all).await.is_err() {
            return background.len();
        }
        0
    }
}
