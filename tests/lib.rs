//! Support for the end-to-end tests: the real [`rp_payout::Client`] against the real
//! [`rp_sim`] simulator and a real callback endpoint, all on loopback.
//!
//! [`Harness::start`] binds a callback endpoint (the `rp_payout::axum` router), starts the
//! simulator with its callback URL pointing there, and builds a client whose transport talks
//! to the simulator over HTTP. Every wait is short (milliseconds), so the suite stays fast.
//!
//! ```no_run
//! # async fn run() {
//! let h = rp_e2e::Harness::start().await;
//! let payout = h.payout("0001"); // magic ending: a decline with code 20000
//! h.client.payout(&payout).await.unwrap();
//! let state = h.wait_settled(payout.payment_id()).await;
//! # }
//! ```

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rp_model::{Currency, CustomerId, Money, Msisdn, PaymentId, Payout, ProjectId};
use rp_payout::{
    CallbackOutcome, Client, Config, PayoutRecord, PayoutState, PayoutStore, RetryPolicy,
};
use rp_sign::SecretKey;
use rp_sim::{RunningSimulator, Simulator, TimeScale};

/// The project the harness uses.
pub const PROJECT: u64 = 4321;
/// Its (test) secret key.
pub const SECRET: &str = "e2e-secret-key";

/// Timing knobs of a harness, and the store.
#[derive(Debug, Clone)]
pub struct Options {
    /// How long the simulator keeps a payment `processing`.
    pub processing_delay: Duration,
    /// How long the simulator delays the response of magic value `0023`.
    pub slow_delay: Duration,
    /// The client's per-attempt timeout.
    pub attempt_timeout: Duration,
    /// The client's wait before asking the status after an ambiguous outcome.
    pub status_delay: Duration,
    /// How long the simulator answers 3061 to status requests for a payment it has just
    /// recorded (the platform's lag); none by default.
    pub status_lag: Option<Duration>,
    /// Where the client records payouts (default: a `MemoryStore`).
    pub store: Option<Arc<dyn PayoutStore>>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            processing_delay: Duration::from_millis(100),
            slow_delay: Duration::from_millis(1500),
            // Generous, so that a loaded machine never turns an ordinary answer into a timeout;
            // the slow-response test sets its own, shorter than `slow_delay`.
            attempt_timeout: Duration::from_secs(5),
            status_delay: Duration::from_millis(100),
            status_lag: None,
            store: None,
        }
    }
}

/// A running simulator, a client pointed at it, and a callback endpoint feeding the client.
pub struct Harness {
    /// The simulator (inspect what it recorded with `payments()`, `callbacks()`, …).
    pub sim: RunningSimulator,
    /// The client under test.
    pub client: Arc<Client>,
    /// Every callback outcome the endpoint produced, in arrival order.
    outcomes: Arc<Mutex<Vec<CallbackOutcome>>>,
    /// The endpoint's address.
    pub callback_addr: SocketAddr,
    next_id: AtomicU64,
    receiver: tokio::task::JoinHandle<()>,
}

impl Harness {
    /// A harness with the default options.
    pub async fn start() -> Harness {
        Self::start_with(Options::default()).await
    }

    /// A harness with `options`.
    ///
    /// # Panics
    /// If a loopback port cannot be bound or the simulator does not start (test support).
    #[allow(clippy::expect_used)]
    pub async fn start_with(options: Options) -> Harness {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the callback endpoint");
        let callback_addr = listener.local_addr().expect("callback address");
        let project = ProjectId::new(PROJECT).expect("project id");
        let mut builder = Simulator::builder()
            .project(project, SecretKey::from(SECRET))
            .callback_url(format!("http://{callback_addr}/"))
            .processing_delay(options.processing_delay)
            .slow_delay(options.slow_delay)
            .time_scale(TimeScale::per_million(1_000))
            .seed(7);
        if let Some(lag) = options.status_lag {
            builder = builder.status_lag(lag);
        }
        let sim = builder.start().await.expect("start the simulator");
        let retry = RetryPolicy {
            max_attempts: 4,
            max_status_checks: 6,
            max_elapsed: Duration::from_secs(20),
            initial_backoff: Duration::from_millis(50),
            max_backoff: Duration::from_millis(500),
            status_delay: options.status_delay,
        };
        let config = Config::new(project, SecretKey::from(SECRET))
            .with_base_url(sim.base_url())
            .with_timeouts(
                Duration::from_secs(1).min(options.attempt_timeout),
                options.attempt_timeout,
            )
            .with_retry(retry)
            .with_overdue_after(Duration::ZERO);
        let mut builder = Client::builder(config);
        if let Some(store) = options.store {
            builder = builder.store(store);
        }
        let client = Arc::new(builder.build().expect("build the client"));
        let outcomes = Arc::new(Mutex::new(Vec::new()));
        let seen = Arc::clone(&outcomes);
        let router = rp_payout::axum::callback_router_with_observer(
            Arc::clone(&client),
            Arc::new(move |outcome: &CallbackOutcome| {
                if let Ok(mut all) = seen.lock() {
                    all.push(outcome.clone());
                }
            }),
        );
        let receiver = tokio::spawn(async move {
            let _ = axum::serve(listener, router).await;
        });
        Harness {
            sim,
            client,
            outcomes,
            callback_addr,
            next_id: AtomicU64::new(1),
            receiver,
        }
    }

    /// A payout of 1 500 ₸ to `+7 701 123 XXXX`, where `last4` picks the simulator's magic
    /// outcome, under a fresh payment ID.
    ///
    /// # Panics
    /// If `last4` is not four digits (test support).
    #[allow(clippy::expect_used)]
    pub fn payout(&self, last4: &str) -> Payout {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        Payout::builder()
            .payment_id(PaymentId::new(format!("e2e-{last4}-{n}")).expect("payment id"))
            .phone(Msisdn::parse(&format!("+7 701 123 {last4}")).expect("magic phone"))
            .amount(Money::parse("1 500", Currency::KZT).expect("amount"))
            .customer_id(CustomerId::new(format!("customer-{n}")).expect("customer id"))
            .build()
            .expect("valid payout")
    }

    /// The client's record of a payout.
    ///
    /// # Panics
    /// If the store fails or has no record (test support).
    #[allow(clippy::expect_used)]
    pub async fn record(&self, payment_id: &PaymentId) -> PayoutRecord {
        self.client
            .record(payment_id)
            .await
            .expect("store")
            .expect("the payout is recorded")
    }

    /// Waits (up to 10 s) until the payout's recorded state satisfies `done`, and returns it.
    ///
    /// # Panics
    /// On timeout, with the last state seen (test support).
    #[allow(clippy::panic)]
    pub async fn wait_for(
        &self,
        payment_id: &PaymentId,
        done: impl Fn(&PayoutState) -> bool,
    ) -> PayoutRecord {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let record = self.record(payment_id).await;
            if done(&record.state) {
                return record;
            }
            if Instant::now() > deadline {
                panic!("payout {payment_id} is still {:?}", record.state);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Waits until the payout is settled (a final status other than `error`, or refused).
    pub async fn wait_settled(&self, payment_id: &PaymentId) -> PayoutRecord {
        self.wait_for(payment_id, PayoutState::is_settled).await
    }

    /// Waits (up to 10 s) until `count` callback outcomes concern `payment_id`, then returns them.
    ///
    /// # Panics
    /// On timeout (test support).
    #[allow(clippy::panic)]
    pub async fn wait_outcomes(
        &self,
        payment_id: &PaymentId,
        count: usize,
    ) -> Vec<CallbackOutcome> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let found = self.outcomes_for(payment_id);
            if found.len() >= count {
                return found;
            }
            if Instant::now() > deadline {
                panic!("payout {payment_id}: {count} callbacks expected, got {found:?}");
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// The callback outcomes that concern `payment_id` so far (untrusted callbacks included:
    /// those name no payment, so all of them are returned by [`Harness::untrusted`]).
    pub fn outcomes_for(&self, payment_id: &PaymentId) -> Vec<CallbackOutcome> {
        self.all_outcomes()
            .into_iter()
            .filter(|o| o.payment_id() == Some(payment_id))
            .collect()
    }

    /// Outcomes of callbacks that were not trusted (bad signature, other project, malformed).
    pub fn untrusted(&self) -> Vec<CallbackOutcome> {
        self.all_outcomes()
            .into_iter()
            .filter(|o| !o.is_acknowledged())
            .collect()
    }

    /// Every callback outcome so far.
    pub fn all_outcomes(&self) -> Vec<CallbackOutcome> {
        self.outcomes
            .lock()
            .map(|all| all.clone())
            .unwrap_or_default()
    }

    /// Stops the simulator and the callback endpoint.
    pub async fn shutdown(self) {
        self.receiver.abort();
        self.sim.shutdown().await;
    }

    /// The benchmarks' run: `payouts` successful payouts through the client with
    /// `concurrency` in flight; the time until every one was settled by its callback (or
    /// first by a status check, which makes the callback a duplicate: payouts are counted,
    /// not outcomes). Each is recorded by the simulator once.
    ///
    /// # Panics
    /// If a payout is refused, or they are not all settled within 2 minutes (benchmark
    /// support).
    #[allow(clippy::expect_used, clippy::panic)]
    pub async fn pay_and_settle(self: &Arc<Self>, payouts: usize, concurrency: usize) -> Duration {
        let all: Vec<Payout> = (0..payouts).map(|_| self.payout("0000")).collect();
        let started = Instant::now();
        let mut tasks = Vec::new();
        for chunk in all.chunks(payouts.div_ceil(concurrency.max(1)).max(1)) {
            let (chunk, h) = (chunk.to_vec(), Arc::clone(self));
            tasks.push(tokio::spawn(async move {
                for payout in chunk {
                    h.client.payout(&payout).await.expect("payout accepted");
                }
            }));
        }
        for task in tasks {
            task.await.expect("a paying task");
        }
        loop {
            let settled = self
                .all_outcomes()
                .iter()
                .filter(|o| o.is_acknowledged())
                .filter_map(CallbackOutcome::payment_id)
                .collect::<std::collections::HashSet<_>>()
                .len();
            if settled >= payouts {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(120),
                "only {settled} settled"
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        let elapsed = started.elapsed();
        assert_eq!(
            self.sim.payments().len(),
            payouts,
            "every payout recorded once"
        );
        elapsed
    }
}

/// A benchmark's knob: the environment variable `name` when it holds a number above zero,
/// else `default`.
pub fn knob<T: std::str::FromStr + PartialOrd + Default>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > T::default())
        .unwrap_or(default)
}

/// Peak resident memory of this process (`VmHWM`), in KiB, where `/proc` tells it (the
/// benchmarks' memory figure).
pub fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
