//! `rp batch run`: the real binary against the real simulator, with a ledger file each.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rp_model::PaymentStatus;

use crate::gate_cmd::Sim;
use crate::{stderr, stdout};

/// Writes `contents` to a fresh file under the target directory.
pub(crate) fn file(name: &str, contents: &str) -> PathBuf {
    crate::scratch_file("rp-cli-batch-run", name, contents)
}

/// A file of `rows` payouts with the simulator's magic endings mixed in: declines (`0001`),
/// a 500 after recording (`0020`), a dropped connection (`0021`), a 429 (`0022`), a lost
/// callback (`0016`); every third row names its own payment ID, the others get derived ones.
fn magic_file(name: &str, rows: u64) -> (PathBuf, Vec<&'static str>) {
    let mut text = String::from("payment_id;phone;amount;customer_id;description\r\n");
    let mut expected = Vec::new();
    for row in 1..=rows {
        let (ending, outcome) = match row % 50 {
            7 | 27 => (1, "decline"),
            13 => (20, "success"),
            19 => (21, "success"),
            23 => (22, "success"),
            31 => (16, "success"),
            _ => (5_000 + row % 4_000, "success"),
        };
        let id = if row % 3 == 0 {
            format!("{name}-{row}")
        } else {
            String::new()
        };
        text.push_str(&format!(
            "{id};8 701 55{:01} {ending:04};{}0,50;c-{row};Выплата {row}\r\n",
            row % 10,
            100 + row
        ));
        expected.push(outcome);
    }
    (file(name, &text), expected)
}

/// The report's rows (`;` separated, as the input) as maps from column name to cell.
fn report_rows(path: &Path) -> Vec<HashMap<String, String>> {
    report_rows_with(path, b';')
}

/// Every row of the report is the simulator's truth: one payment per row, with the row's
/// amount and the report's final status.
fn assert_report_matches_the_simulator(sim: &Sim, report: &Path, expected: &[&str]) {
    let rows = report_rows(report);
    assert_eq!(rows.len(), expected.len(), "one report row per input row");
    for (i, (row, outcome)) in rows.iter().zip(expected).enumerate() {
        assert_eq!(row["row"], (i + 1).to_string(), "input order");
        let id = &row["payment_id"];
        let paid = sim
            .sim()
            .payment(id)
            .unwrap_or_else(|| panic!("row {}: {id} unknown to the simulator", i + 1));
        assert_eq!(row["state"], *outcome, "row {}: {row:?}", i + 1);
        assert_eq!(row["status"], paid.status.as_str(), "row {}", i + 1);
        let amount: u64 = row["amount"].replace(",50", "").parse().unwrap();
        assert_eq!(paid.amount, amount * 100 + 50, "row {}", i + 1);
    }
    assert_eq!(
        sim.sim().payments().len(),
        expected.len(),
        "the simulator holds one payment per row, no more"
    );
}

#[test]
fn a_run_pays_every_row_once_and_its_report_matches_the_simulator() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let (path, expected) = magic_file("mixed", 2_000);
    let report = path.with_extension("report.csv");
    let args = [
        "batch",
        "run",
        path.to_str().unwrap(),
        "--yes",
        "--rate",
        "1000",
        "--concurrency",
        "32",
        "--wait",
        "60",
        "--report",
        report.to_str().unwrap(),
    ];
    let output = sim.rp_in(&ledger, &args);
    let (out, err) = (stdout(&output), stderr(&output));
    // Declines in the file: exit 1, and every row final.
    assert_eq!(output.status.code(), Some(1), "{out}{err}");
    assert!(out.contains("every payout of the batch is final"), "{out}");
    assert!(out.contains("report: "), "{out}");
    assert!(
        !err.contains("7015"),
        "phone numbers are masked on stderr: {err}"
    );
    assert_report_matches_the_simulator(&sim, &report, &expected);
    let requests = sim.sim().requests().len();

    // The same file again: nothing is paid again, and the report is the same.
    let again = sim.rp_in(&ledger, &args);
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert_report_matches_the_simulator(&sim, &report, &expected);
    let payouts_sent = sim
        .sim()
        .requests()
        .iter()
        .skip(requests)
        .filter(|r| r.path == rp_model::wire::PAYOUT_PATH)
        .count();
    assert_eq!(
        payouts_sent, 0,
        "a rerun of a finished batch sends no payout"
    );
}

#[test]
fn a_run_killed_midway_is_resumed_by_the_same_command_and_pays_every_row_once() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let (path, expected) = magic_file("killed", 300);
    let report = path.with_extension("report.csv");
    let mut child = sim.spawn_in(
        &ledger,
        &[
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--rate",
            "100",
        ],
    );
    // Kill it while it is sending (rows are started at 100 a second).
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while sim.sim().payments().len() < 60 {
        assert!(
            std::time::Instant::now() < deadline,
            "the run never got going"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let paid_before = sim.sim().payments().len();
    assert!(paid_before < 300, "killed before the end ({paid_before})");

    let output = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--rate",
            "1000",
            "--wait",
            "60",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(
        output.status.code(),
        Some(1),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
    assert_report_matches_the_simulator(&sim, &report, &expected);
}

#[test]
fn an_invalid_row_stops_the_run_before_a_tenge_moves_unless_skipped() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let path = file(
        "invalid.csv",
        "phone,amount,customer_id\n87011235001,100,c-1\n87011235002,1.5E+3,c-2\n87011235003,300,c-3\n",
    );
    let run = |extra: &[&str]| {
        let mut args = vec!["batch", "run", path.to_str().unwrap()];
        args.extend_from_slice(extra);
        sim.rp_in(&ledger, &args)
    };
    let refused = run(&["--yes"]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(stdout(&refused).contains("line 3, column amount: scientific notation"));
    assert!(
        stderr(&refused).contains("nothing was sent"),
        "{}",
        stderr(&refused)
    );
    assert!(sim.sim().payments().is_empty());

    // Without a terminal and without --yes, no one can confirm: nothing is sent.
    let unconfirmed = run(&["--skip-invalid"]);
    assert_eq!(unconfirmed.status.code(), Some(2));
    assert!(
        stderr(&unconfirmed).contains("pass --yes"),
        "{}",
        stderr(&unconfirmed)
    );
    assert!(sim.sim().payments().is_empty());

    let report = path.with_extension("report.csv");
    let skipped = run(&[
        "--yes",
        "--skip-invalid",
        "--wait",
        "30",
        "--report",
        report.to_str().unwrap(),
    ]);
    assert_eq!(skipped.status.code(), Some(0), "{}", stderr(&skipped));
    assert_eq!(sim.sim().payments().len(), 2);
    let rows = report_rows_with(&report, b',');
    assert_eq!(rows.len(), 3);
    assert_eq!(rows[1]["state"], "invalid");
    assert!(
        rows[1]["message"].contains("scientific notation"),
        "{:?}",
        rows[1]
    );
    assert_eq!(rows[0]["state"], "success");
    assert_eq!(rows[2]["state"], "success");
}

fn report_rows_with(path: &Path, delimiter: u8) -> Vec<HashMap<String, String>> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .from_path(path)
        .unwrap();
    let header: Vec<String> = reader
        .headers()
        .unwrap()
        .iter()
        .map(str::to_owned)
        .collect();
    reader
        .records()
        .map(|r| {
            header
                .iter()
                .cloned()
                .zip(r.unwrap().iter().map(str::to_owned))
                .collect()
        })
        .collect()
}

/// The client stops at the project's limits before the platform has to: with the simulator
/// enforcing the same daily count, rows over it are never sent, and the simulator refuses
/// nothing.
#[test]
fn rows_over_a_limit_are_never_sent_and_the_platform_never_has_to_refuse() {
    let sim = Sim::start_limited(3);
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let mut text = String::from("payment_id,phone,amount,customer_id\n");
    for row in 1..=5 {
        text.push_str(&format!("lim-{row},8701123600{row},1000,c-{row}\n"));
    }
    let path = file("limits.csv", &text);
    let run = |extra: &[&str]| {
        let mut args = vec![
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--daily-count",
            "3",
        ];
        args.extend_from_slice(extra);
        sim.rp_in(&ledger, &args)
    };
    let refused = run(&[]);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(sim.sim().payments().is_empty());
    let skipped = run(&["--skip-invalid"]);
    assert_eq!(skipped.status.code(), Some(1), "{}", stderr(&skipped));
    let out = stdout(&skipped);
    assert!(out.contains("over_limit 2"), "{out}");
    assert_eq!(sim.sim().payments().len(), 3);
    for row in 4..=5 {
        assert_eq!(
            sim.payout_requests(&format!("lim-{row}")),
            0,
            "row {row} was sent"
        );
    }
    assert!(
        sim.sim()
            .payments()
            .iter()
            .all(|p| p.status != PaymentStatus::Decline),
        "the simulator refused nothing"
    );
}

/// The batch's ID as `rp batch list --json` shows it (the only batch of the ledger).
fn only_batch(sim: &Sim, ledger: &str) -> serde_json::Value {
    let listed = sim.rp_in(ledger, &["batch", "list", "--json"]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let json: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let batches = json["batches"].as_array().unwrap();
    assert_eq!(batches.len(), 1, "{json}");
    batches[0].clone()
}

/// Three `rp batch run` processes share one ledger (an SQLite file; a PostgreSQL database
/// when the test server is there) and one file; one is killed with SIGKILL while it holds
/// rows. The other two take its rows over and finish the batch: every row is paid exactly
/// once, checked against the simulator, and the report (written from the ledger alone, the
/// file deleted) is complete.
#[test]
fn three_workers_with_one_killed_pay_every_row_exactly_once() {
    for ledger in crate::ledgers("workers") {
        let sim = Sim::start();
        let (path, expected) = magic_file("workers", 400);
        let args = [
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--rate",
            "60",
            "--concurrency",
            "4",
        ];
        let mut workers: Vec<_> = (0..3).map(|_| sim.spawn_in(&ledger, &args)).collect();
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while sim.sim().payments().len() < 80 {
            assert!(
                std::time::Instant::now() < deadline,
                "{ledger}: the workers never got going"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        let killed = workers.remove(0);
        let killed_pid = killed.id();
        let mut killed = killed;
        killed.kill().unwrap();
        killed.wait().unwrap();
        assert!(
            sim.sim().payments().len() < 400,
            "{ledger}: killed before the end"
        );
        for worker in workers {
            let output = worker.wait_with_output().unwrap();
            let (out, err) = (stdout(&output), stderr(&output));
            // Accepted (0), declines already reported (1), or lost answers still unknown (3).
            assert!(
                matches!(output.status.code(), Some(0 | 1 | 3)),
                "{ledger}: {out}{err}"
            );
            assert!(
                !err.contains(&format!("/{killed_pid}/")),
                "{ledger}: no owner token on stderr: {err}"
            );
        }
        let batch = only_batch(&sim, &ledger);
        assert_eq!(batch["rows"], 400, "{batch}");
        assert_eq!(batch["undone"], 0, "{ledger}: the pass is over: {batch}");
        assert!(
            sim.sim().payments().len() <= 400,
            "{ledger}: no row was paid under a second payment ID"
        );

        // Settle what is left, then the report from the ledger alone.
        let settle = sim.rp_in(&ledger, &[&args[..4], &["--wait", "60"]].concat());
        assert_eq!(settle.status.code(), Some(1), "{}", stderr(&settle));
        std::fs::remove_file(&path).unwrap();
        let report = path.with_extension("report.csv");
        let id = batch["batch_id"].as_str().unwrap();
        let shown = sim.rp_in(
            &ledger,
            &[
                "batch",
                "show",
                &id[..12],
                "--report",
                report.to_str().unwrap(),
            ],
        );
        assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
        assert_report_matches_the_simulator(&sim, &report, &expected);
    }
}

/// `rp batch list` and `rp batch show` describe a batch as the Dashboard does, from the
/// ledger; wrong or unknown IDs are refused with a reason.
#[test]
fn list_and_show_describe_batches_and_refuse_unknown_ids() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let empty = sim.rp_in(&ledger, &["batch", "list"]);
    assert_eq!(empty.status.code(), Some(0), "{}", stderr(&empty));
    assert!(stdout(&empty).contains("no batches"), "{}", stdout(&empty));

    let path = file(
        "listed.csv",
        "phone;amount;customer_id\n87011236001;1 000;c-1\n87011230001;2000,50;c-2\nbad;3;c-3\n",
    );
    let run = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--skip-invalid",
            "--wait",
            "30",
        ],
    );
    // The second row ends in 0001: declined.
    assert_eq!(run.status.code(), Some(1), "{}", stderr(&run));
    let batch = only_batch(&sim, &ledger);
    assert_eq!(
        batch["file_name"],
        path.file_name().unwrap().to_str().unwrap()
    );
    assert_eq!(
        (batch["rows"].as_u64(), batch["valid_rows"].as_u64()),
        (Some(3), Some(2))
    );
    assert_eq!(
        (batch["success"].as_u64(), batch["decline"].as_u64()),
        (Some(1), Some(1))
    );
    assert_eq!(batch["state"], "done");
    assert_eq!(batch["totals"][0]["amount_minor"], 300_050);

    let listed = stdout(&sim.rp_in(&ledger, &["batch", "list"]));
    let id = batch["batch_id"].as_str().unwrap();
    assert!(listed.contains(&id[..20]), "{listed}");
    assert!(
        listed.contains("3\u{a0}000,50\u{a0}₸"),
        "Kazakh formatting: {listed}"
    );
    assert!(listed.contains("done"), "{listed}");

    let shown = sim.rp_in(&ledger, &["batch", "show", &id[..8]]);
    assert_eq!(shown.status.code(), Some(0), "{}", stderr(&shown));
    let text = stdout(&shown);
    assert!(text.contains(id) && text.contains("1 invalid"), "{text}");
    assert!(
        text.contains("decline 1") && text.contains("success 1"),
        "{text}"
    );

    for (wrong, code, needle) in [
        ("xyz", 2, "not a batch ID"),
        ("1234567", 2, "at least its first 8"),
        ("'; DROP TABLE batches; --", 2, "not a batch ID"),
        ("0123456789abcdef", 5, "no batch 0123456789abcdef"),
        (&"f".repeat(64), 5, "no batch"),
    ] {
        let refused = sim.rp_in(&ledger, &["batch", "show", wrong]);
        assert_eq!(
            refused.status.code(),
            Some(code),
            "{wrong}: {}",
            stderr(&refused)
        );
        assert!(
            stderr(&refused).contains(needle),
            "{wrong}: {}",
            stderr(&refused)
        );
    }
    // Another project's ledger view has no batches.
    let other = sim.rp_in(&ledger, &["batch", "list", "--project-id", "77"]);
    assert!(stdout(&other).contains("no batches"), "{}", stdout(&other));
}

/// With `--listen`, the platform's callbacks reach the run itself and settle the batch: the
/// payouts end final with no status request at all. A busy address is refused before anything
/// is registered or sent.
#[test]
fn with_listen_the_callbacks_settle_the_batch_without_status_requests() {
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let sim = Sim::start_built(|builder| builder.callback_url(format!("http://127.0.0.1:{port}/")));
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let mut text = String::from("phone,amount,customer_id\n");
    for row in 1..=30 {
        let ending = if row % 10 == 0 { 1 } else { 6_000 + row };
        text.push_str(&format!("8701123{ending:04},{row}00,c-{row}\n"));
    }
    let path = file("listen.csv", &text);
    let listen = format!("127.0.0.1:{port}");
    let run = |listen: &str| {
        sim.rp_in(
            &ledger,
            &[
                "batch",
                "run",
                path.to_str().unwrap(),
                "--yes",
                "--rate",
                "1000",
                "--listen",
                listen,
                "--wait",
                "60",
            ],
        )
    };

    // The address is taken: refused with a reason, nothing registered or sent.
    let busy = std::net::TcpListener::bind(&listen).unwrap();
    let refused = run(&listen);
    assert_eq!(refused.status.code(), Some(2), "{}", stderr(&refused));
    assert!(
        stderr(&refused).contains("cannot listen there"),
        "{}",
        stderr(&refused)
    );
    assert!(sim.sim().payments().is_empty());
    drop(busy);

    let output = run(&listen);
    let (out, err) = (stdout(&output), stderr(&output));
    assert_eq!(output.status.code(), Some(1), "3 declines: {out}{err}");
    assert!(
        out.contains("every payout of the batch is final"),
        "{out}{err}"
    );
    assert!(
        out.contains("success 27") && out.contains("decline 3"),
        "{out}"
    );
    let status_requests = sim
        .sim()
        .requests()
        .iter()
        .filter(|r| r.path == rp_model::wire::STATUS_PATH)
        .count();
    assert_eq!(status_requests, 0, "the callbacks settled every payout");
}

/// The limits a batch was confirmed with are kept with it: a later run (another worker, or a
/// rerun) without the limit flags still holds the batch to them.
#[test]
fn a_batch_keeps_the_limits_it_was_confirmed_with() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let mut text = String::from("payment_id,phone,amount,customer_id\n");
    for row in 1..=5 {
        text.push_str(&format!("kept-{row},8701123700{row},1000,c-{row}\n"));
    }
    let path = file("kept-limits.csv", &text);
    let first = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--skip-invalid",
            "--daily-count",
            "2",
        ],
    );
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert!(
        stdout(&first).contains("over_limit 3"),
        "{}",
        stdout(&first)
    );
    assert_eq!(sim.sim().payments().len(), 2);

    // Again, without the flag: the batch's own limit still holds.
    let again = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--skip-invalid",
        ],
    );
    assert_eq!(again.status.code(), Some(1), "{}", stderr(&again));
    assert!(
        stderr(&again).contains("registered with stricter limits"),
        "{}",
        stderr(&again)
    );
    assert_eq!(
        sim.sim().payments().len(),
        2,
        "no row paid past the batch's limit"
    );
}

/// `--skip-invalid` skips a row whose payment ID a recorded payout holds (it is never paid),
/// but not one that another batch's row holds for a different payout without a payout yet:
/// whichever batch ran first would take the ID. That run stops before the confirmation,
/// naming the other batch's line; nothing is registered or sent.
#[test]
fn skip_invalid_does_not_skip_a_row_another_batch_holds() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    // Batch A pays its first row; its second, over the day's count, holds `held-2` unpaid.
    let first = file(
        "holder.csv",
        "payment_id,phone,amount,customer_id\n\
         paid-1,87011237001,1000,c-1\nheld-2,87011237002,1000,c-2\n",
    );
    let a = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            first.to_str().unwrap(),
            "--yes",
            "--skip-invalid",
            "--daily-count",
            "1",
        ],
    );
    assert!(stdout(&a).contains("over_limit 1"), "{}", stdout(&a));
    assert_eq!(sim.sim().payments().len(), 1);

    // `rp payout` on the ledger may not take it for someone else either.
    let payout = |phone: &str| {
        sim.rp_in(
            &ledger,
            &[
                "payout",
                "--phone",
                phone,
                "--amount",
                "1000",
                "--customer-id",
                "c-2",
                "--payment-id",
                "held-2",
            ],
        )
    };
    let other = payout("87011237009");
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("held by batch")
            && stderr(&other).contains("(its line 3)")
            && stderr(&other).contains("nothing was recorded or sent"),
        "{}",
        stderr(&other)
    );
    assert_eq!(sim.sim().payments().len(), 1, "not sent");

    // Batch B: `held-2` for someone else, and a fresh row.
    let second = file(
        "taker.csv",
        "payment_id,phone,amount,customer_id\n\
         held-2,87011237009,5000,c-9\nfresh-3,87011237003,1000,c-3\n",
    );
    let b = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            second.to_str().unwrap(),
            "--yes",
            "--skip-invalid",
        ],
    );
    assert_eq!(b.status.code(), Some(2), "{}", stderr(&b));
    assert!(
        stdout(&b).contains("line 2") && stdout(&b).contains("held-2"),
        "the clash names the row: {}",
        stdout(&b)
    );
    assert!(
        stderr(&b).contains("cannot be skipped") && stderr(&b).contains("nothing was sent"),
        "{}",
        stderr(&b)
    );
    assert_eq!(sim.sim().payments().len(), 1, "nothing of batch B was sent");
    let listed = sim.rp_in(&ledger, &["batch", "list", "--json"]);
    let batches: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    assert_eq!(
        batches["batches"].as_array().map(Vec::len),
        Some(1),
        "batch B was not registered: {batches}"
    );
}
