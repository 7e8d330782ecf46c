//! [`Desk`]: what every part of `rp serve` shares: the client (and through it the ledger's
//! payouts), the batches, the operators and sessions, the settings, the metrics, and the
//! payouts the console is sending.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rp_ledger::{AccessStore, BatchStore, Ledger};
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
    /// The name shown in the title bar (e.g. the project's name). Default `rp`.
    pub title: String,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            secure_cookies: true,
            session_ttl: Duration::from_secs(8 * 3600),
            title: "rp".to_owned(),
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
    settings: Settings,
    logins: LoginGuard,
    metrics: Metrics,
    sending: Mutex<JoinSet<()>>,
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
        Desk {
            inner: Arc::new(Inner {
                access: ledger.access(),
                batches: ledger.batches(project),
                client,
                ledger,
                settings,
                logins: LoginGuard::default(),
                metrics: Metrics::default(),
                sending: Mutex::new(JoinSet::new()),
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

    /// Operators and sessions.
    pub fn access(&self) -> &Arc<dyn AccessStore> {
        &self.inner.access
    }

    /// The project's batches.
    pub fn batches(&self) -> &Arc<dyn BatchStore> {
        &self.inner.batches
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

    /// Runs `work` (a payout the console started) in the background; [`Desk::finish_sending`]
    /// waits for it at shutdown, so that its outcome is recorded before the process exits.
    pub(crate) fn send_in_background(&self, work: impl Future<Output = ()> + Send + 'static) {
        let mut sending = self
            .inner
            .sending
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Reap what has finished, so the set does not grow for the life of the process.
        while sending.try_join_next().is_some() {}
        sending.spawn(work);
    }

    /// Waits for every payout the console started to finish (graceful shutdown), at most
    /// `limit`; answers how many were still running when the time ran out (their payouts stay
    /// recorded, claimed, and are resolved by reconcile).
    pub async fn finish_sending(&self, limit: Duration) -> usize {
        let mut sending = std::mem::take(
            &mut *self
                .inner
                .sending
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        let all = async { while sending.join_next().await.is_some() {} };
        if tokio::time::timeout(limit, all).await.is_err() {
            return sending.len();
        }
        0
    }
}
