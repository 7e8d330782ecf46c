//! Second adversarial review of batches in the ledger (commit 08aed5d: request hashes per
//! row, the hashing reader, lease renewal in the worker loop, the report's place checked
//! before sending). Each test here failed on the code it was written against.

use std::path::PathBuf;
use std::time::Duration;

use crate::gate_cmd::Sim;
use crate::{stderr, stdout};

/// Writes `contents` to a fresh file under the target directory.
fn file(name: &str, contents: &str) -> PathBuf {
    crate::scratch_file("rp-cli-review2-batches", name, contents)
}

/// A healthy worker loses the lease on a row it is paying, re-claims that row itself and
/// starts a second call for it under the same payment ID. `Worker::pay` sets `renewed` to
/// now after every `claim`, but `claim` only leases the rows it newly takes: the rows
/// already in flight keep the lease they had. While other rows keep finishing, the queue
/// empties and the worker claims again more often than every lease/3, so `renew_if_due`
/// is never due and the rows in flight are never renewed. Here one row waits 10 s for the
/// Gate's answer (magic `0023`) while 600 others go through at 60/s with `--lease 5`: after
/// 5 s its lease has run out, the worker's next claim (lowest row first) takes it again,
/// and a second `Client::payout` for `slow-1` runs beside the first. Only the client's own
/// in-flight guard stops a second send; the row is counted twice ("sent 602 row(s)" of 601,
/// `in_flight 1`), and a run in which every payout was accepted exits 3 ("unknown outcome").
/// With a second worker on the batch, it is that worker that takes the row over from the
/// healthy one, and exits 3 in the same way.
#[test]
fn review2_a_healthy_worker_keeps_the_lease_on_the_rows_it_is_paying() {
    let sim = Sim::start_with(Duration::from_secs(10));
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let mut text = String::from("payment_id,phone,amount,customer_id\n");
    // Answered after 10 s.
    text.push_str("slow-1,87011230023,100,c-slow\n");
    // Answered at once (no magic ending).
    for row in 1..=600 {
        text.push_str(&format!(
            "fast-{row},8701{row:03}5555,{},c-{row}\n",
            100 + row
        ));
    }
    let path = file("slow.csv", &text);
    let run = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--rate",
            "60",
            "--concurrency",
            "8",
            "--lease",
            "5",
        ],
    );
    let (out, err) = (stdout(&run), stderr(&run));
    assert_eq!(sim.payout_requests("slow-1"), 1, "{err}");
    assert!(
        !err.contains("is being sent by another call"),
        "the worker started a second call for a row it was paying: {err}"
    );
    assert!(out.contains("sent 601 row(s)"), "{out}");
    assert_eq!(run.status.code(), Some(0), "{out}{err}");
}

/// `--report` is "checked before sending" by creating and removing `OUT.csv.partial`
/// beside it, which says nothing of whether OUT itself can be replaced: a directory there
/// (`--report reports` meaning "into that folder") passes the check, every payout is sent,
/// and only then the rename fails ("Is a directory"). The run exits 2, and the complete
/// report, phone numbers included, is left behind as `reports.csv.partial`: `write_report`
/// removes the partial file when writing fails, not when the rename does. The hint it
/// prints (`rp batch show … --report reports`) fails the same way.
#[test]
fn review2_a_report_place_that_cannot_be_written_is_refused_before_sending() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let path = file(
        "report-dir.csv",
        "payment_id,phone,amount,customer_id\nrd-1,87011235555,100,c-1\n",
    );
    let out = path.with_extension("reports");
    std::fs::create_dir_all(&out).unwrap();
    let partial = out.with_extension("csv.partial");
    let _ = std::fs::remove_file(&partial);
    let run = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--report",
            out.to_str().unwrap(),
        ],
    );
    let err = stderr(&run);
    let mut problems = Vec::new();
    if partial.exists() {
        problems.push(format!(
            "a complete report is left behind at {}",
            partial.display()
        ));
    }
    if !sim.sim().payments().is_empty() {
        problems.push(format!(
            "the payouts were sent although the report cannot be written at {} (exit {:?})",
            out.display(),
            run.status.code()
        ));
    }
    let _ = std::fs::remove_file(&partial);
    assert!(problems.is_empty(), "{problems:#?}\n{err}");
}
