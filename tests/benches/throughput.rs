//! Throughput: N payouts through the real client to the real simulator on loopback, each one
//! accepted, processed and settled by a verified callback, with the payouts recorded in memory
//! (the reference), in an SQLite ledger file (WAL, `synchronous=FULL`) and, when
//! `RP_TEST_POSTGRES_URL` names a server (`cargo xtask bench` starts one), in a PostgreSQL
//! ledger (`synchronous_commit=on`), in the same run.
//! Reports payouts per second (median of several runs) for each, the ratio to memory, and the
//! process's peak memory.
//!
//! `cargo xtask bench` runs it; alone: `cargo bench -p rp-e2e --bench throughput`.
//! Knobs: `RP_BENCH_PAYOUTS` (default 2000), `RP_BENCH_RUNS` (default 5),
//! `RP_BENCH_CONCURRENCY` (default 64 payouts in flight).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

/// The allocator `rp` runs with (rp-cli's main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::sync::Arc;
use std::time::Duration;

use rp_e2e::{Harness, Options};

/// One run: a fresh simulator and client, `payouts` payouts with `concurrency` in flight;
/// returns the time until every payout was settled by its callback.
async fn run(payouts: usize, concurrency: usize, store: Store) -> Duration {
    let store: Option<Arc<dyn rp_payout::PayoutStore>> = match store {
        Store::Memory => None,
        Store::Sqlite => {
            let dir = std::env::temp_dir().join(format!("rp-bench-{}", std::process::id()));
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).unwrap();
            let ledger =
                rp_ledger::Ledger::open(&format!("sqlite:{}", dir.join("ledger.db").display()))
                    .await
                    .unwrap();
            Some(ledger.store(rp_model::ProjectId::new(rp_e2e::PROJECT).unwrap()))
        }
        Store::Postgres => {
            let url = fresh_postgres().await;
            let ledger = rp_ledger::Ledger::open(&url).await.unwrap();
            Some(ledger.store(rp_model::ProjectId::new(rp_e2e::PROJECT).unwrap()))
        }
    };
    let options = Options {
        processing_delay: Duration::ZERO,
        store,
        ..Options::default()
    };
    let h = Arc::new(Harness::start_with(options).await);
    let elapsed = h.pay_and_settle(payouts, concurrency).await;
    Arc::into_inner(h).expect("no other owner").shutdown().await;
    elapsed
}

/// Where the payouts are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Store {
    Memory,
    Sqlite,
    Postgres,
}

/// A new, empty database on the server of `RP_TEST_POSTGRES_URL`, as a ledger URL.
async fn fresh_postgres() -> String {
    let admin = std::env::var("RP_TEST_POSTGRES_URL").unwrap();
    let database = format!("rp_bench_{}", std::process::id());
    let (client, connection) = tokio_postgres::connect(&admin, tokio_postgres::NoTls)
        .await
        .unwrap();
    let connection = tokio::spawn(connection);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {database} WITH (FORCE)"))
        .await
        .unwrap();
    client
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    drop(client);
    let _ = connection.await;
    let (scheme, rest) = admin.split_once("://").unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

fn main() {
    // `cargo bench` passes `--bench` (and criterion-style filters); nothing to read there.
    let payouts = rp_e2e::knob("RP_BENCH_PAYOUTS", 2000);
    let runs = rp_e2e::knob("RP_BENCH_RUNS", 5);
    let concurrency = rp_e2e::knob("RP_BENCH_CONCURRENCY", 64);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    println!(
        "throughput: {payouts} payouts per run, {concurrency} in flight, {runs} runs \
         (client -> simulator -> signed callback -> client, loopback)"
    );
    let mut medians = Vec::new();
    let postgres = std::env::var("RP_TEST_POSTGRES_URL").is_ok_and(|u| !u.is_empty());
    let stores: &[Store] = if postgres {
        &[Store::Memory, Store::Sqlite, Store::Postgres]
    } else {
        println!(
            "(no PostgreSQL: RP_TEST_POSTGRES_URL is not set; `cargo xtask bench` starts one)"
        );
        &[Store::Memory, Store::Sqlite]
    };
    for &store in stores {
        let mut rates = Vec::new();
        for index in 0..runs {
            let elapsed = runtime.block_on(run(payouts, concurrency, store));
            #[allow(clippy::cast_precision_loss)] // a rate for people to read, not money
            let rate = payouts as f64 / elapsed.as_secs_f64();
            println!(
                "  {store:?} run {}: {elapsed:.2?}, {rate:.0} payouts/s",
                index + 1
            );
            rates.push(rate);
        }
        rates.sort_by(f64::total_cmp);
        let median = rates[rates.len() / 2];
        medians.push(median);
        println!("throughput median, {store:?}: {median:.0} payouts/s");
    }
    println!(
        "SQLite ledger / memory: {:.2} (target >= 0.5, synchronous=FULL)",
        medians[1] / medians[0]
    );
    if let Some(pg) = medians.get(2) {
        println!(
            "PostgreSQL ledger / memory: {:.2} (target >= 0.3, synchronous_commit=on)",
            pg / medians[0]
        );
    }
    match rp_e2e::peak_memory_kib() {
        Some(kib) => println!("peak memory (VmHWM): {:.1} MiB", kib as f64 / 1024.0),
        None => println!("peak memory: not available on this platform"),
    }
}
