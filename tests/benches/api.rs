//! Payouts through `rp serve`'s JSON API, end to end: an HTTP client → `POST /api/v1/payouts`
//! → `rp serve` (SQLite ledger) → the simulator → its signed callback back to `rp serve` → the
//! webhook of the final status at a receiver; beside the library's own end-to-end throughput
//! on the same SQLite ledger (client → simulator → callback → ledger), in the same run.
//! Reports payouts per second (median of the runs) for both, their ratio (target ≥ 0.7), the
//! p50 and p99 from the API call to the final status's webhook, and the CPU time per payout of
//! each (the API path does more work per payout: its HTTP call, three webhooks; on a machine
//! with few cores that, not the ledger, sets its pace). Each run also pays through the API
//! with no webhook endpoint registered, to show what the webhooks cost.
//!
//! `cargo xtask bench` runs it; alone: `cargo bench -p rp-e2e --bench api`.
//! Knobs: `RP_BENCH_PAYOUTS` (default 1000), `RP_BENCH_RUNS` (default 3),
//! `RP_BENCH_CONCURRENCY` (default 64 API calls in flight).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use rp_console::{Desk, ServeOptions, Settings};
use rp_e2e::{Harness, Options};
use rp_ledger::{ApiKey, Ledger, Role};
use rp_model::ProjectId;
use rp_payout::{Client, Config};
use rp_sign::SecretKey;
use rp_sim::Simulator;
use tokio::runtime::Handle;

/// The allocator `rp serve` runs with (rp-cli's main.rs), for both paths of the run.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEY: &str = "rpk_00000000000000000000000000000000000000000000000000000000000000be";

fn ledger_url(name: &str) -> String {
    let dir = std::env::temp_dir().join(format!("rp-bench-api-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    format!("sqlite:{}", dir.join("ledger.db").display())
}

/// The library on the SQLite ledger: `payouts` payouts, `concurrency` in flight, until every
/// one was settled by its callback.
async fn library(payouts: usize, concurrency: usize) -> Duration {
    let ledger = Ledger::open(&ledger_url("library")).await.unwrap();
    let options = Options {
        processing_delay: Duration::ZERO,
        store: Some(ledger.store(ProjectId::new(rp_e2e::PROJECT).unwrap())),
        ..Options::default()
    };
    let h = Arc::new(Harness::start_with(options).await);
    let elapsed = h.pay_and_settle(payouts, concurrency).await;
    Arc::into_inner(h).expect("no other owner").shutdown().await;
    elapsed
}

/// When each payout's final webhook arrived, by payment ID.
type Arrivals = Arc<Mutex<HashMap<String, Instant>>>;

/// A webhook receiver on 127.0.0.1:0 noting when each payout's `success` arrived, served by
/// `merchant` (the merchant's side of the run).
async fn receiver(merchant: &Handle) -> (String, Arrivals) {
    merchant.spawn(serve_receiver()).await.unwrap()
}

async fn serve_receiver() -> (String, Arrivals) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hooks", listener.local_addr().unwrap());
    let arrivals: Arrivals = Arc::default();
    let seen = Arc::clone(&arrivals);
    let app = axum::Router::new().route(
        "/hooks",
        axum::routing::post(move |body: Bytes| {
            let seen = Arc::clone(&seen);
            async move {
                let value: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
                let id = value["data"]["payment_id"].as_str();
                if let (true, Some(id)) = (value["type"] == "payout.success", id) {
                    seen.lock()
                        .unwrap()
                        .entry(id.to_owned())
                        .or_insert_with(Instant::now);
                }
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    );
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    (url, arrivals)
}

/// Through the API: the elapsed time until every final webhook arrived, and each payout's
/// latency from its API call to that webhook. Without `webhooks` (no endpoint registered, for
/// comparison): until every payout is final in the ledger, and no latencies. The HTTP client
/// and the webhook receiver run on `merchant`, the runtime of the merchant's side.
async fn api(
    merchant: &Handle,
    payouts: usize,
    concurrency: usize,
    run: usize,
    webhooks: bool,
) -> (Duration, Vec<Duration>) {
    let console = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = console.local_addr().unwrap();
    let project = ProjectId::new(rp_e2e::PROJECT).unwrap();
    let sim = Simulator::builder()
        .project(project, SecretKey::from(rp_e2e::SECRET))
        .callback_url(format!(
            "http://{addr}{}",
            rp_console::DEFAULT_CALLBACK_PATH
        ))
        .processing_delay(Duration::ZERO)
        .start()
        .await
        .unwrap();
    let ledger = Ledger::open(&ledger_url(&format!("api-{run}-{webhooks}")))
        .await
        .unwrap();
    let config = Config::new(project, SecretKey::from(rp_e2e::SECRET))
        .with_base_url(sim.base_url())
        .with_overdue_after(Duration::from_secs(30));
    let client = Client::builder(config)
        .store(ledger.store(project))
        .build()
        .unwrap();
    let mut settings = Settings::default();
    settings.api_key_rate = 100_000;
    let watch = ledger.store(project);
    let desk = Desk::new(Arc::new(client), ledger, settings);
    desk.access()
        .add_api_key(ApiKey::new(
            "bench",
            rp_console::api_key_sha256(KEY),
            Role::Pay,
        ))
        .await
        .unwrap();
    let (url, arrivals) = receiver(merchant).await;
    let secret = rp_console::webhooks::new_secret().unwrap();
    if webhooks {
        desk.webhooks().add_endpoint(&url, &secret).await.unwrap();
    }
    let mut options = ServeOptions::new(console);
    options.reconcile_every = None;
    options.batches_every = None;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(rp_console::serve(desk, options, async {
        let _ = stopped.await;
    }));
    let http = reqwest::Client::new();
    let endpoint = format!("http://{addr}/api/v1/payouts");
    let called: Arc<Mutex<HashMap<String, Instant>>> = Arc::default();
    let started = Instant::now();
    let mut tasks = Vec::new();
    let ids: Vec<String> = (0..payouts).map(|n| format!("bench-{run}-{n}")).collect();
    for chunk in ids.chunks(payouts.div_ceil(concurrency)) {
        let (chunk, http, endpoint, called) = (
            chunk.to_vec(),
            http.clone(),
            endpoint.clone(),
            Arc::clone(&called),
        );
        tasks.push(merchant.spawn(async move {
            for id in chunk {
                let body = serde_json::json!({
                    "payment_id": id, "phone": "+7 701 123 00 00", "amount": "100",
                    "customer": {"id": "c-1"}
                });
                called.lock().unwrap().insert(id.clone(), Instant::now());
                let answer = http
                    .post(&endpoint)
                    .bearer_auth(KEY)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                assert!(answer.status().is_success(), "{}", answer.status());
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let posted = started.elapsed();
    loop {
        let counts = watch.counts().await.unwrap();
        let done = counts
            .by_state
            .iter()
            .find(|(s, _)| s == "success")
            .map_or(0, |(_, n)| *n);
        if done >= payouts as u64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let final_in_ledger = started.elapsed();
    println!("    (every payout final in the ledger after {final_in_ledger:.2?})");
    // With webhooks: until every payout's final one arrived.
    loop {
        let arrived = arrivals.lock().unwrap().len();
        if !webhooks || arrived >= payouts {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "only {arrived} final webhooks"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let elapsed = if webhooks {
        started.elapsed()
    } else {
        final_in_ledger
    };
    println!("    (every API call answered after {posted:.2?})");
    let called = called.lock().unwrap().clone();
    let arrivals = arrivals.lock().unwrap().clone();
    let latencies = called
        .iter()
        .filter_map(|(id, at)| Some(arrivals.get(id)?.duration_since(*at)))
        .collect();
    assert_eq!(sim.payments().len(), payouts, "every payout paid once");
    let mut answers: HashMap<(u32, Option<u16>), usize> = HashMap::new();
    for callback in sim.callbacks() {
        *answers
            .entry((callback.attempt, callback.http_status))
            .or_default() += 1;
    }
    println!("    callbacks (attempt, answer): {answers:?}");
    let _ = stop.send(());
    served.await.unwrap();
    sim.shutdown().await;
    (elapsed, latencies)
}

#[allow(clippy::cast_precision_loss)] // rates and times for people to read, not money
fn main() {
    let payouts = rp_e2e::knob("RP_BENCH_PAYOUTS", 1000);
    let runs = rp_e2e::knob("RP_BENCH_RUNS", 3);
    let concurrency = rp_e2e::knob("RP_BENCH_CONCURRENCY", 64);
    // What rp serve warns of, on stderr: a run that stalls says why.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    // The merchant's side (the HTTP client calling the API, the webhook receiver) on threads
    // of its own, so that their CPU time is told apart: in production it is another machine's.
    let merchant = tokio::runtime::Builder::new_multi_thread()
        .thread_name(MERCHANT_THREADS)
        .enable_all()
        .build()
        .unwrap();
    println!(
        "api: {payouts} payouts per run, {concurrency} in flight, {runs} runs, SQLite ledger \
         (HTTP client -> rp serve API -> simulator -> callback -> webhook, loopback)"
    );
    let mut lib_runs = Measured::new("library");
    let mut api_runs = Measured::new("API");
    let mut bare_runs = Measured::new("API without webhooks");
    let mut merchant_cpu = Vec::new();
    let mut latencies = Vec::new();
    for run in 0..runs {
        let before = cpu_seconds();
        let elapsed = runtime.block_on(library(payouts, concurrency));
        lib_runs.note(run, payouts, before, elapsed);
        let before = cpu_seconds();
        let merchant_before = merchant_cpu_seconds();
        let (elapsed, mut each) =
            runtime.block_on(api(merchant.handle(), payouts, concurrency, run, true));
        api_runs.note(run, payouts, before, elapsed);
        per_payout_of(
            merchant_before,
            merchant_cpu_seconds(),
            payouts,
            &mut merchant_cpu,
        );
        latencies.append(&mut each);
        // The same without a webhook endpoint: what the webhooks cost.
        let before = cpu_seconds();
        let (elapsed, _) =
            runtime.block_on(api(merchant.handle(), payouts, concurrency, run, false));
        bare_runs.note(run, payouts, before, elapsed);
    }
    let (library, api, bare) = (lib_runs.rate(), api_runs.rate(), bare_runs.rate());
    if let (Some(lib_cpu), Some(api_cpu), Some(bare_cpu)) =
        (lib_runs.cpu(), api_runs.cpu(), bare_runs.cpu())
    {
        println!(
            "CPU per payout (every thread of the run: client, server, simulator, receiver): \
             library {lib_cpu:.2} ms, API {api_cpu:.2} ms, API without webhooks {bare_cpu:.2} ms \
             (the machine has {} cores)",
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        );
        if let Some(merchant) = median(&mut merchant_cpu) {
            let own = api_cpu - merchant;
            println!(
                "  of the API's, the merchant's side (HTTP client, webhook receiver) {merchant:.2} \
                 ms; rp serve and the simulator {own:.2} ms: with the merchant's side on other \
                 machines, the library's CPU per payout is {:.2} of the API's",
                lib_cpu / own
            );
        }
    }
    latencies.sort();
    // The q-th quantile by rank: percent of the last index, in whole numbers.
    let at = |percent: usize| latencies[(latencies.len() - 1) * percent / 100];
    println!("api median: {api:.0} payouts/s; library (SQLite) median: {library:.0} payouts/s");
    println!("API / library: {:.2} (target >= 0.7)", api / library);
    println!(
        "API without webhooks: {bare:.0} payouts/s, {:.2} of the library's (what the three \
         webhooks of a payout cost)",
        bare / library
    );
    println!(
        "API call -> final webhook: p50 {:.1?}, p99 {:.1?} ({} payouts)",
        at(50),
        at(99),
        latencies.len()
    );
}

/// The runs of one path: each one's payouts per second and CPU time per payout.
struct Measured {
    name: &'static str,
    rates: Vec<f64>,
    cpu: Vec<f64>,
}

impl Measured {
    fn new(name: &'static str) -> Measured {
        Measured {
            name,
            rates: Vec::new(),
            cpu: Vec::new(),
        }
    }

    /// Notes (and prints) run `run` of `payouts` that took `elapsed`, the process's CPU time
    /// having been `before` when it started.
    #[allow(clippy::cast_precision_loss)]
    fn note(&mut self, run: usize, payouts: usize, before: Option<f64>, elapsed: Duration) {
        let cpu = per_payout(before, payouts, &mut self.cpu);
        let rate = payouts as f64 / elapsed.as_secs_f64();
        println!(
            "  {} run {}: {elapsed:.2?}, {rate:.0} payouts/s{cpu}",
            self.name,
            run + 1
        );
        self.rates.push(rate);
    }

    /// The median payouts per second.
    fn rate(&mut self) -> f64 {
        median(&mut self.rates).unwrap_or(0.0)
    }

    /// The median CPU milliseconds per payout, where it was known.
    fn cpu(&mut self) -> Option<f64> {
        median(&mut self.cpu)
    }
}

fn median(values: &mut [f64]) -> Option<f64> {
    values.sort_by(f64::total_cmp);
    values.get(values.len() / 2).copied()
}

/// The CPU time this process has used (user and system), where Linux's `/proc` tells it: the
/// API path is bound by the machine's cores, the library's by the ledger's one writer.
#[allow(clippy::cast_precision_loss)]
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command's name (in parentheses): utime and stime are 14 and 15,
    // in clock ticks of 1/100 s.
    let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// The name of the merchant runtime's threads.
const MERCHANT_THREADS: &str = "merchant";

/// The CPU time the merchant runtime's threads have used, where Linux's `/proc` tells it.
#[allow(clippy::cast_precision_loss)]
fn merchant_cpu_seconds() -> Option<f64> {
    let mut ticks = 0;
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let Ok(stat) = std::fs::read_to_string(task.ok()?.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        let (name, rest) = stat.split_once('(')?.1.rsplit_once(')')?;
        if name != MERCHANT_THREADS {
            continue;
        }
        let fields: Vec<&str> = rest.split_whitespace().collect();
        ticks += fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    }
    Some(ticks as f64 / 100.0)
}

/// Notes in `all` the CPU milliseconds per payout from `before` to `now`, where both are known.
#[allow(clippy::cast_precision_loss)]
fn per_payout_of(before: Option<f64>, now: Option<f64>, payouts: usize, all: &mut Vec<f64>) {
    if let (Some(before), Some(now)) = (before, now) {
        all.push((now - before) * 1000.0 / payouts as f64);
    }
}

/// ", X ms CPU per payout" since `before`, noted in `all`; empty where it is not known.
fn per_payout(before: Option<f64>, payouts: usize, all: &mut Vec<f64>) -> String {
    let known = all.len();
    per_payout_of(before, cpu_seconds(), payouts, all);
    match all.get(known) {
        Some(ms) => format!(", {ms:.2} ms CPU per payout"),
        None => String::new(),
    }
}
