//! The SQLite ledger at scale: one page of 100 payouts out of `RP_BENCH_LEDGER_PAYOUTS`
//! (default 1,000,000): the newest page, a deep page (keyset after a payout in the middle),
//! by state, by phone, needing attention; and `counts`. Target: ≤ 20 ms a page.
//!
//! `cargo xtask bench` runs it; alone: `cargo bench -p rp-ledger --bench ledger`. The seeded
//! ledger is kept under the target directory and reused while it has the right size.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use rp_ledger::Ledger;
use rp_model::ProjectId;
use rp_payout::conformance::record;
use rp_payout::{EventSource, PayoutEvent, PayoutQuery, PayoutState, PayoutStore};

fn knob(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .filter(|v| *v > 0)
        .unwrap_or(default)
}

async fn seed(store: Arc<dyn PayoutStore>, payouts: usize) {
    let started = Instant::now();
    let chunk = 2000;
    for start in (0..payouts).step_by(chunk) {
        let mut tasks = Vec::with_capacity(chunk);
        for i in start..(start + chunk).min(payouts) {
            let store = Arc::clone(&store);
            tasks.push(tokio::spawn(async move {
                let phone = format!("7701{:07}", i % 5000);
                let mut r = record(
                    &format!("b-{i:08}"),
                    &phone,
                    100 + (i % 900) as u64,
                    (i / 3) as u64,
                );
                if i % 10 == 0 {
                    r.state = PayoutState::Status(rp_model::PaymentStatus::Success);
                }
                if i % 997 == 0 {
                    r.attention = Some("reversed".to_owned());
                }
                let event =
                    PayoutEvent::new(r.created_at, EventSource::Call, None, r.state.clone());
                store
                    .insert(r, event, rp_model::Limits::NONE)
                    .await
                    .unwrap();
            }));
        }
        for task in tasks {
            task.await.unwrap();
        }
    }
    println!("  seeded {payouts} payouts in {:.1?}", started.elapsed());
}

async fn time_query(store: &dyn PayoutStore, name: &str, query: &PayoutQuery) -> Duration {
    let mut samples = Vec::new();
    let mut found = 0;
    for _ in 0..21 {
        let started = Instant::now();
        found = store.list(query).await.unwrap().len();
        samples.push(started.elapsed());
    }
    samples.sort();
    let median = samples[samples.len() / 2];
    println!("  {name:<36} {found:>4} payouts  median {median:>10.2?}");
    median
}

fn main() {
    let payouts = knob("RP_BENCH_LEDGER_PAYOUTS", 1_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dir =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-ledger");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("ledger-{payouts}.db"));
        let ledger = Ledger::open(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        let store = ledger.store(ProjectId::new(1234).unwrap());
        println!("ledger: {payouts} payouts in {}", path.display());
        let have = store.counts().await.unwrap().total;
        if have != payouts as u64 {
            drop(store);
            drop(ledger);
            for suffix in ["", "-wal", "-shm"] {
                let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
            }
            let ledger = Ledger::open(&format!("sqlite:{}", path.display()))
                .await
                .unwrap();
            seed(ledger.store(ProjectId::new(1234).unwrap()), payouts).await;
        }
        let ledger = Ledger::open(&format!("sqlite:{}", path.display()))
            .await
            .unwrap();
        let store = ledger.store(ProjectId::new(1234).unwrap());
        let middle = store
            .get(&rp_model::PaymentId::new(format!("b-{:08}", payouts / 2)).unwrap())
            .await
            .unwrap()
            .unwrap();
        let mut worst = Duration::ZERO;
        for (name, query) in [
            ("newest page", PayoutQuery::new()),
            (
                "deep page (after the middle)",
                PayoutQuery::new().after(&middle),
            ),
            ("by state (success)", PayoutQuery::new().state("success")),
            (
                "by state, deep",
                PayoutQuery::new().state("success").after(&middle),
            ),
            ("by phone", PayoutQuery::new().phone("77010000042")),
            ("needing attention", PayoutQuery::new().attention()),
        ] {
            worst = worst.max(time_query(store.as_ref(), name, &query.limit(100)).await);
        }
        let started = Instant::now();
        let counts = store.counts().await.unwrap();
        println!(
            "  counts ({} states)                    median-free {:>10.2?}",
            counts.by_state.len(),
            started.elapsed()
        );
        println!("ledger page of 100 out of {payouts}: worst median {worst:.2?} (target <= 20 ms)");
    });
}
