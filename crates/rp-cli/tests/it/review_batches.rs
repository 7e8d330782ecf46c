//! Adversarial review of batches in the ledger (commits 35fa1ec, 8b3ce56): `rp batch run`
//! registering a file whole and paying it as one of many workers, `rp batch list/show`, the
//! report from the ledger. Each test here failed on the code it was written against.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::gate_cmd::Sim;
use crate::{stderr, stdout};

/// Writes `contents` to a fresh file under the target directory.
fn file(name: &str, contents: &str) -> PathBuf {
    crate::scratch_file("rp-cli-review-batches", name, contents)
}

/// A payout to a person is reported as paid although it was never sent. A row whose
/// payment ID the ledger holds for a DIFFERENT payout (another file, an `rp payout`, a
/// batch whose derived ID `rpb-<its prefix>-N` a file names explicitly, or a concurrent run
/// that took the ID after preflight) is refused by the client (`conflict`), but
/// `BatchProgress`, `rp batch list/show` and the report look the row up by payment ID alone
/// and show the OTHER payout's state, request ID and operation ID: the row reads `success`.
/// Once that other payout is settled, `reopen` skips the row, and the rerun that README says
/// resumes a batch exits 0 with "success 2": the 5 000 ₸ owed to this row's customer is
/// never paid, and nothing says so.
#[test]
fn review_a_row_whose_payment_id_belongs_to_another_payout_is_never_reported_paid() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    // Another payout holds `dup-1` (to someone else, 100 ₸).
    let other = sim.rp_in(
        &ledger,
        &[
            "payout",
            "--phone",
            "87011239000",
            "--amount",
            "100",
            "--customer-id",
            "other",
            "--payment-id",
            "dup-1",
        ],
    );
    assert!(
        matches!(other.status.code(), Some(0 | 3)),
        "{}",
        stderr(&other)
    );
    let path = file(
        "clash.csv",
        "payment_id,phone,amount,customer_id\n\
         dup-1,87011231111,5000,victim\n\
         ok-2,87011232222,100,c-2\n",
    );
    let report = path.with_extension("report.csv");
    let args = [
        "batch",
        "run",
        path.to_str().unwrap(),
        "--yes",
        "--skip-invalid",
        "--wait",
        "20",
        "--report",
        report.to_str().unwrap(),
    ];
    // Run until every payout is final (the other payout settles), then once more: the
    // rerun is what an operator does to finish a batch.
    let first = sim.rp_in(&ledger, &args);
    assert!(stderr(&first).contains("conflict"), "{}", stderr(&first));
    let deadline = Instant::now() + Duration::from_secs(30);
    while sim
        .sim()
        .payment("dup-1")
        .is_none_or(|p| p.status.as_str() != "success")
    {
        assert!(Instant::now() < deadline, "dup-1 never settled");
        std::thread::sleep(Duration::from_millis(100));
    }
    let again = sim.rp_in(&ledger, &args);
    let last = sim.rp_in(&ledger, &args);

    // The victim's 5 000 ₸ was never sent under any payment ID.
    assert!(
        sim.sim().payments().iter().all(|p| p.amount != 500_000),
        "row 1 was sent"
    );
    let mut reader = csv::Reader::from_path(&report).unwrap();
    let header = reader.headers().unwrap().clone();
    let state = header.iter().position(|c| c == "state").unwrap();
    let request = header.iter().position(|c| c == "request_id").unwrap();
    let row1 = reader.records().next().unwrap().unwrap();
    let other_request = sim.sim().payment("dup-1").unwrap();
    let mut problems = Vec::new();
    if &row1[state] == "success" {
        problems.push(format!(
            "the report says row 1 (never sent) is `success`, with the other payout's \
             request ID {} (platform: {other_request:?})",
            &row1[request]
        ));
    }
    if last.status.code() == Some(0) {
        problems.push(format!(
            "the rerun exits 0 although row 1 was never paid: {}{}",
            stdout(&last),
            stderr(&last)
        ));
    }
    let shown = sim.rp_in(&ledger, &["batch", "list", "--json"]);
    let json: serde_json::Value = serde_json::from_str(&stdout(&shown)).unwrap();
    let batch = &json["batches"][0];
    if batch["success"] == 2 {
        problems.push(format!(
            "`rp batch list` counts row 1 as a success: {batch}"
        ));
    }
    assert!(
        problems.is_empty(),
        "{problems:#?}\n(second run: {})",
        stdout(&again)
    );
}

/// The report fails, and the run exits 2 ("the file or the input is wrong (nothing sent)")
/// after paying every row, for a file that `rp batch check` calls valid: a row with trailing
/// empty cells (what a spreadsheet exports as `;;` when another row or column was touched).
/// `write_report` pads a short row to the header's width but leaves a long one long, so the
/// report's columns shift on that row (its `row` lands under the header's `state`), and the
/// `csv` writer (not `flexible`) refuses the next row: "found record with 14 fields, but
/// the previous record has 12 fields". A `.partial` file with the first rows (and their
/// phone numbers) is left behind. `rp batch show --report` fails the same way, for good.
#[test]
fn review_a_row_with_trailing_empty_cells_gets_a_report() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let path = file(
        "trailing.csv",
        "phone;amount;customer_id\n87011230000;100;c-1;;\n87011230100;200;c-2\n",
    );
    let check = sim.rp_in(&ledger, &["batch", "check", path.to_str().unwrap()]);
    assert_eq!(check.status.code(), Some(0), "{}", stdout(&check));
    let report = path.with_extension("report.csv");
    let run = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            path.to_str().unwrap(),
            "--yes",
            "--report",
            report.to_str().unwrap(),
        ],
    );
    assert_eq!(sim.sim().payments().len(), 2, "both rows were paid");
    assert!(
        report.exists(),
        "no report; exit {:?}: {}",
        run.status.code(),
        stderr(&run)
    );
    assert_ne!(
        run.status.code(),
        Some(2),
        "exit 2 says nothing was sent, but both rows were paid: {}",
        stderr(&run)
    );
    let text = std::fs::read_to_string(&report).unwrap();
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(b';')
        .from_reader(text.as_bytes());
    let header = reader.headers().unwrap().clone();
    let row_at = header.iter().position(|c| c == "row").unwrap();
    for (i, record) in reader.records().enumerate() {
        let record = record.unwrap();
        assert_eq!(&record[row_at], (i + 1).to_string(), "{text}");
    }
}

/// The batch's identity (SHA-256) and the rows registered under it come from two different
/// opens of the file (`BatchReader::open`: `BatchId::of_file(path)`, then `File::open(path)`
/// again), and the rows are then read while nothing checks they hash to that identity. A
/// file replaced between the two opens (an editor's save-by-rename, a sync client, an export
/// still being written in place while the rows are read) has rows that no one checked or
/// confirmed registered and paid under the checked file's identity. A FIFO stands in for the
/// file here, to hit the window every time: it serves the checked file (100 ₸) to the first
/// five opens (check, preflight, the hash of the registration) and another (99 999 ₸) to the
/// sixth (the registration's rows). The confirmation said 100 ₸; 99 999 ₸ is paid.
#[test]
#[cfg(target_os = "linux")]
fn review_the_rows_registered_are_the_rows_of_the_file_that_was_checked() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let checked = "phone,amount,customer_id\n87011230000,100,c-1\n";
    let swapped = "phone,amount,customer_id\n87011230000,99999,c-1\n";
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("rp-cli-review-batches");
    std::fs::create_dir_all(&dir).unwrap();
    let fifo = dir.join(format!("{}-swapped.csv", std::process::id()));
    let _ = std::fs::remove_file(&fifo);
    let made = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap();
    assert!(made.success());
    let mut child = sim.spawn_in(
        &ledger,
        &[
            "batch",
            "run",
            fifo.to_str().unwrap(),
            "--yes",
            "--wait",
            "20",
        ],
    );
    let pid = child.id();
    let path = fifo;
    // Serves one content per open of the FIFO, each after the previous reader closed it.
    std::thread::spawn(move || {
        let holds_fifo = || {
            std::fs::read_dir(format!("/proc/{pid}/fd"))
                .map(|fds| {
                    fds.filter_map(Result::ok)
                        .any(|fd| std::fs::read_link(fd.path()).is_ok_and(|t| t == path))
                })
                .unwrap_or(false)
        };
        for open in 1..=6 {
            while holds_fifo() {
                std::thread::sleep(Duration::from_millis(1));
            }
            let Ok(mut writer) = std::fs::OpenOptions::new().write(true).open(&path) else {
                return;
            };
            // The reader's open may return after ours: wait for its descriptor.
            while !holds_fifo() {
                std::thread::sleep(Duration::from_millis(1));
            }
            let text = if open < 6 { checked } else { swapped };
            let _ = std::io::Write::write_all(&mut writer, text.as_bytes());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(60);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "rp batch run never ended");
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    let err = stderr(&output);
    assert!(err.contains("total 100,00"), "the confirmation: {err}");
    let paid: Vec<u64> = sim.sim().payments().iter().map(|p| p.amount).collect();
    assert!(
        paid.iter().all(|amount| *amount == 10_000),
        "confirmed 100,00 ₸, paid {paid:?} (minor units); {err}"
    );
}

/// Every failure of `rp batch run`, `rp batch list` and `rp batch show` is prefixed
/// `rp batch check:`: an operator whose run failed after paying reads that a check failed.
#[test]
fn review_batch_show_failures_name_the_command_that_failed() {
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let output = crate::rp_with(
        &["batch", "show", "deadbeef"],
        &[("RP_LEDGER", &ledger), ("RP_PROJECT_ID", "1234")],
        b"",
    );
    let err = stderr(&output);
    assert_ne!(output.status.code(), Some(0), "{err}");
    assert!(!err.contains("rp batch check"), "{err}");
}

/// A worker that is alive but makes no progress holds its rows for ever, and every other
/// worker waits for it for ever. The lease is renewed by a task of its own (`run`'s
/// `renewer`, every lease/3) whatever the worker loop does, so "alive" means "the process
/// exists", not "it is paying". Here the loop is stuck writing a progress line to stderr
/// (a pipe no one reads any more: `rp batch run … 2>&1 | less`, an ssh session gone quiet, a
/// log shipper that stalled); the same holds for anything that blocks the loop. The second
/// worker pays every other row, then waits for the 16 rows the first one holds, well past
/// the 60 s lease: the batch never ends while the first process lives, and `rp batch list`
/// says `running`.
#[test]
fn review_a_worker_that_stopped_making_progress_does_not_hold_its_rows_for_ever() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let mut text = String::from("phone,amount,customer_id\n");
    for row in 1..=1_000 {
        text.push_str(&format!("8701{row:07},{},c-{row}\n", 100 + row));
    }
    let path = file("stalled.csv", &text);
    // Every row after the first is over the limit: one line on stderr each.
    let args = [
        "batch",
        "run",
        path.to_str().unwrap(),
        "--yes",
        "--skip-invalid",
        "--daily-count",
        "1",
        "--rate",
        "1000",
        // Short, so that the take-over is seen within the test.
        "--lease",
        "5",
    ];
    // Its stderr is a pipe this test never reads: it fills after a few hundred lines.
    let mut stalled = sim.spawn_in(&ledger, &args);
    // Its stdout (the check's lines) is read; its stderr is not.
    let mut out = stalled.stdout.take().unwrap();
    std::thread::spawn(move || std::io::copy(&mut out, &mut std::io::sink()));
    let listed = || -> serde_json::Value {
        let out = sim.rp_in(&ledger, &["batch", "list", "--json"]);
        serde_json::from_str::<serde_json::Value>(&stdout(&out)).unwrap()["batches"][0].clone()
    };
    // Wait until it stops making progress.
    let mut before = serde_json::Value::Null;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        std::thread::sleep(Duration::from_secs(3));
        let now = listed();
        if now["undone"].as_u64().is_some_and(|n| n > 0) && now["undone"] == before["undone"] {
            break;
        }
        assert!(Instant::now() < deadline, "never stalled: {now}");
        before = now;
    }
    assert!(
        stalled.try_wait().unwrap().is_none(),
        "the stalled worker is alive"
    );
    let mut second = sim.spawn_in(&ledger, &args);
    for pipe in [
        Box::new(second.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(second.stderr.take().unwrap()),
    ] {
        let mut pipe = pipe;
        std::thread::spawn(move || std::io::copy(&mut pipe, &mut std::io::sink()));
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let finished = loop {
        if second.try_wait().unwrap().is_some() {
            break true;
        }
        if Instant::now() > deadline {
            break false;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let state = listed();
    let _ = second.kill();
    let _ = second.wait();
    let _ = stalled.kill();
    let _ = stalled.wait();
    assert!(
        finished,
        "the second worker still waits 120 s later (2 leases): the batch is {state}"
    );
}

/// A file name is printed raw by `rp batch list` and `rp batch show`: a name with terminal
/// control sequences (anyone who can drop a file in the operator's upload folder chooses
/// it) rewrites the operator's screen, e.g. clears it or hides the rows above.
#[test]
fn review_batch_list_prints_no_control_characters_from_a_file_name() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let path = file(
        "\u{1b}[2J\u{1b}[Hok.csv",
        "phone,amount,customer_id\n87011230000,100,c-1\n",
    );
    let run = sim.rp_in(&ledger, &["batch", "run", path.to_str().unwrap(), "--yes"]);
    assert!(run.status.code().is_some(), "{}", stderr(&run));
    let listed = sim.rp_in(&ledger, &["batch", "list"]);
    assert_eq!(listed.status.code(), Some(0), "{}", stderr(&listed));
    let out = stdout(&listed);
    assert!(!out.contains('\u{1b}'), "{out:?}");
}
