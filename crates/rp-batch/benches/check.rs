//! `rp batch check` throughput: a generated file of 100,000 rows (then 1,000,000) is checked
//! from disk, as `rp batch check` does it (the SHA-256 pass for the batch's identity, then
//! every row read, built into a `Payout` and counted against limits). Prints rows per second
//! and the process's peak resident memory (`VmHWM`).
//!
//! Targets: at least 500,000 rows/s, and at most 50 MB of peak memory for both sizes (memory
//! does not grow with the rows; every row here has its own `payment_id`, the worst case: 24
//! bytes a row for the duplicate check).
//!
//! `cargo xtask bench` runs it; alone: `cargo bench -p rp-batch --bench check`.
//! Knob: `RP_BENCH_ROWS` (default `100000,1000000`). Extra arguments are ignored.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::cast_possible_truncation,
    clippy::cast_precision_loss
)]

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use rp_batch::{Limits, check_file};
use rp_model::Currency;

/// Peak resident memory of this process (`VmHWM`), in KiB, where `/proc` tells it.
fn peak_memory_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// CPU time of this process so far (user + system), in seconds, where `/proc` tells it: on a
/// shared machine the wall-clock rate depends on what else runs, the per-CPU-second rate less.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // Fields after the command name (which is in brackets and may hold spaces).
    let rest = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / 100.0)
}

/// Writes a file of `rows` payouts in the forms people write, `;`-separated with CRLF.
fn generate(path: &Path, rows: u64) {
    let file = std::fs::File::create(path).unwrap();
    let mut out = std::io::BufWriter::with_capacity(256 * 1024, file);
    out.write_all(
        "\u{feff}payment_id;phone;amount;customer_id;first_name;last_name;description\r\n"
            .as_bytes(),
    )
    .unwrap();
    let prefixes = [
        "701", "702", "705", "707", "747", "771", "775", "777", "778",
    ];
    for row in 0..rows {
        let prefix = prefixes[(row % prefixes.len() as u64) as usize];
        let number = 1_000_000 + row % 9_000_000;
        let phone = match row % 3 {
            0 => format!("+7 {prefix} {number}"),
            1 => format!("8 ({prefix}) {number}"),
            _ => format!("7{prefix}{number}"),
        };
        let amount = match row % 4 {
            0 => format!("{} {:03},50", 1 + row % 90, row % 1000),
            1 => format!("{}.25", 100 + row % 5000),
            2 => format!("₸{}", 500 + row % 20000),
            _ => format!("{} тг", 1000 + row % 3000),
        };
        write!(
            out,
            "batch-{row:08};{phone};\"{amount}\";customer-{};Айгерим;Сапарова;Кэшбэк, май\r\n",
            row % 50_000
        )
        .unwrap();
    }
    out.flush().unwrap();
}

fn main() {
    let sizes: Vec<u64> = std::env::var("RP_BENCH_ROWS")
        .unwrap_or_else(|_| "100000,1000000".to_owned())
        .split(',')
        .filter_map(|n| n.trim().parse().ok())
        .collect();
    let dir: PathBuf = std::env::temp_dir().join(format!("rp-batch-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut limits = Limits::none(Currency::KZT);
    limits.max_amount = Some(100_000_000);
    limits.daily_amount = Some(u64::MAX / 2);
    limits.daily_count = Some(u64::MAX / 2);
    for rows in sizes {
        let path = dir.join(format!("{rows}.csv"));
        generate(&path, rows);
        let bytes = std::fs::metadata(&path).unwrap().len();
        let cpu_before = cpu_seconds();
        let started = Instant::now();
        let mut problems = 0u64;
        let report = check_file(&path, &limits, |_| problems += 1).unwrap();
        let elapsed = started.elapsed();
        assert_eq!(report.rows, rows);
        assert_eq!(problems, 0, "the generated file must be valid");
        assert!(report.is_valid());
        let per_second = rows as f64 / elapsed.as_secs_f64();
        if let (Some(before), Some(after)) = (cpu_before, cpu_seconds()) {
            let cpu = after - before;
            if cpu > 0.0 {
                println!(
                    "check {rows} rows: {cpu:.2} CPU s, {:.0} rows per CPU second",
                    rows as f64 / cpu
                );
            }
        }
        println!(
            "check {rows} rows ({:.1} MB): {:.3} s, {:.0} rows/s (target >= 500000)",
            bytes as f64 / 1e6,
            elapsed.as_secs_f64(),
            per_second
        );
        match peak_memory_kib() {
            Some(kib) => println!(
                "peak memory (VmHWM) after {rows} rows: {:.1} MiB (target <= 50 MB)",
                kib as f64 / 1024.0
            ),
            None => println!("peak memory: /proc/self/status is not available here"),
        }
        let _ = std::fs::remove_file(&path);
    }
    let _ = std::fs::remove_dir_all(&dir);
}
