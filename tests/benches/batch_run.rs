//! `rp batch run` throughput: a generated file of 100,000 rows checked, registered in an
//! SQLite ledger file (WAL, `synchronous=FULL`) and paid through the real client to the
//! simulator on loopback (64 payouts in flight, no rate limit), as `rp batch run --concurrency
//! 64 --rate 1000` does. The simulator runs as its own process (the `rp-sim` binary), so the
//! peak memory printed (`VmHWM`) is the runner's alone. Prints rows per second (check and
//! registration included) and the time the registration took.
//!
//! Target: at least 3,000 rows/s on 2 cores, at most 100 MB.
//!
//! `cargo xtask bench` builds `rp-sim` and runs it; alone: `cargo build --release -p rp-sim
//! --features cli && cargo bench -p rp-e2e --bench batch_run` (or `RP_BENCH_SIM=PATH` to the
//! binary). Knobs: `RP_BENCH_ROWS` (default 100000), `RP_BENCH_CONCURRENCY` (default 64).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_precision_loss
)]

/// The allocator `rp` runs with (rp-cli's main.rs).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::io::{BufRead as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Instant;

use rp_batch::run::{self, RunOptions};
use rp_batch::{Limits, check_file};
use rp_model::{Currency, ProjectId};
use rp_payout::{Client, Config};
use rp_sign::SecretKey;

const PROJECT: u64 = 1234;
const SECRET: &str = "bench-secret-key";

/// A file of `rows` payouts the simulator pays (numbers ending in 0000), IDs derived.
fn generate(path: &Path, rows: u64) {
    let file = std::fs::File::create(path).unwrap();
    let mut out = std::io::BufWriter::new(file);
    out.write_all("phone;amount;customer_id;description\r\n".as_bytes())
        .unwrap();
    for row in 0..rows {
        writeln!(
            out,
            "8 701 {:03} 0000;\"{} 500,50\";c-{row};Кэшбэк\r",
            row % 1000,
            1 + row % 90
        )
        .unwrap();
    }
    out.flush().unwrap();
}

/// The simulator as a process of its own; answers it and its base URL.
fn start_simulator() -> (Child, String) {
    let binary = std::env::var_os("RP_BENCH_SIM").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/rp-sim"),
        PathBuf::from,
    );
    assert!(
        binary.exists(),
        "no simulator binary at {}: run `cargo build --release -p rp-sim --features cli` (cargo xtask bench does) or set RP_BENCH_SIM",
        binary.display()
    );
    let mut child = Command::new(&binary)
        .args([
            "--listen",
            "127.0.0.1:0",
            "--project-id",
            &PROJECT.to_string(),
        ])
        .args(["--secret-key", SECRET])
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = std::io::BufReader::new(stdout).lines();
    let url = loop {
        let line = lines
            .next()
            .expect("the simulator printed its base URL")
            .unwrap();
        if let Some(url) = line.trim().strip_prefix("base URL:") {
            break url.trim().to_owned();
        }
    };
    // Keep reading its output so that it never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    (child, url)
}

fn main() {
    let rows: u64 = rp_e2e::knob("RP_BENCH_ROWS", 100_000);
    let concurrency: usize = rp_e2e::knob("RP_BENCH_CONCURRENCY", 64);
    let dir = std::env::temp_dir().join(format!("rp-batch-run-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("payouts.csv");
    generate(&path, rows);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (mut simulator, sim_url) = start_simulator();
    runtime.block_on(async {
        let url = format!("sqlite:{}", dir.join("ledger.db").display());
        let ledger = rp_ledger::Ledger::open(&url).await.unwrap();
        let project = ProjectId::new(PROJECT).unwrap();
        let client = Client::builder(
            Config::new(project, SecretKey::from(SECRET)).with_base_url(sim_url.clone()),
        )
        .store(ledger.store(project))
        .build()
        .unwrap();
        let client = Arc::new(client);
        let batches = ledger.batches(project);

        let started = Instant::now();
        let report = check_file(&path, &Limits::none(Currency::KZT), |_| {}).unwrap();
        assert!(report.is_valid());
        run::register(&path, &report, batches.as_ref(), project, Limits::none(Currency::KZT), rp_ledger::OnClash::Refuse).await.unwrap();
        let registered = started.elapsed();
        let stop = AtomicBool::new(false);
        let options = RunOptions::default()
            .concurrency(concurrency)
            .rate(None);
        let summary = run::run(
            report.batch,
            Arc::clone(&client),
            Arc::clone(&batches),
            options,
            &stop,
            |_, _| {},
        )
        .await
        .unwrap();
        let elapsed = started.elapsed();
        assert_eq!(summary.done, rows, "{summary:?}");
        assert_eq!(summary.get("accepted"), rows, "{summary:?}");
        println!(
            "batch run {rows} rows (SQLite ledger, {concurrency} in flight): {:.2} s, {:.0} rows/s (target >= 3000); check and registration: {:.2} s",
            elapsed.as_secs_f64(),
            rows as f64 / elapsed.as_secs_f64(),
            registered.as_secs_f64()
        );
        match rp_e2e::peak_memory_kib() {
            Some(kib) => println!(
                "peak memory (VmHWM) of the runner: {:.1} MiB (target <= 100 MB)",
                kib as f64 / 1024.0
            ),
            None => println!("peak memory: /proc/self/status is not available here"),
        }
    });
    let _ = simulator.kill();
    let _ = simulator.wait();
    let _ = std::fs::remove_dir_all(&dir);
}
