//! review4: b0020c1 "A batch keeps the limits it was confirmed with", attacked. Every test
//! here fails on b0020c1.

use std::path::{Path, PathBuf};

use crate::gate_cmd::Sim;
use crate::{stderr, stdout};

/// Writes `contents` to a fresh file under the target directory.
fn file(name: &str, contents: &str) -> PathBuf {
    crate::scratch_file("rp-cli-review4", name, contents)
}

/// A file of `rows` payouts of 1 000 ₸ with their own payment IDs `PREFIX-N`.
fn rows_file(prefix: &str, rows: u64) -> PathBuf {
    let mut text = String::from("payment_id,phone,amount,customer_id\n");
    for row in 1..=rows {
        text.push_str(&format!("{prefix}-{row},8701123700{row},1000,c-{row}\n"));
    }
    file(&format!("{prefix}.csv"), &text)
}

/// `SQL` run on the SQLite ledger file at `path` (as another rp, or the operator, would).
fn edit_ledger(path: &Path, sql: &str) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch(sql).unwrap();
}

/// Runs the batch at `path` once with `--daily-count 2` (2 of its 5 rows paid), then stores
/// `limits` as the batch's registered limits, as a newer rp would have written them, and runs
/// it again without limit flags. Returns the second run.
fn rerun_with_stored_limits(prefix: &str, limits: &str) -> (Sim, std::process::Output) {
    let sim = Sim::start();
    let ledger_path = crate::fresh_ledger();
    let ledger = format!("sqlite:{}", ledger_path.display());
    let path = rows_file(prefix, 5);
    let file = path.to_str().unwrap();
    let first = sim.rp_in(
        &ledger,
        &[
            "batch",
            "run",
            file,
            "--yes",
            "--skip-invalid",
            "--daily-count",
            "2",
        ],
    );
    assert_eq!(first.status.code(), Some(1), "{}", stderr(&first));
    assert_eq!(sim.sim().payments().len(), 2, "{}", stdout(&first));
    edit_ledger(
        &ledger_path,
        &format!("UPDATE batches SET limits = '{limits}';"),
    );
    let again = sim.rp_in(&ledger, &["batch", "run", file, "--yes", "--skip-invalid"]);
    (sim, again)
}

/// A batch registered by a newer rp, with a limit this build does not know (here a
/// hypothetical `hourly_count`) next to one it does (`daily_count` 2): `registered_limits`
/// answers `None` for the whole set, and the run silently applies only its own flags (none),
/// paying the 3 rows the batch's daily count had held back. It should refuse the batch (or at
/// the very least apply the limits it does understand), as the README promises: "every worker
/// applies the stricter of them and its own".
#[test]
fn review4_a_batch_with_a_limit_unknown_to_this_build_is_not_paid_past_its_limits() {
    let (sim, again) = rerun_with_stored_limits(
        "r4-unknown",
        r#"[["currency",398],["daily_count",2],["hourly_count",1]]"#,
    );
    assert_eq!(
        sim.sim().payments().len(),
        2,
        "the batch's daily count of 2 was dropped with the limit this build does not know: {}\n{}",
        stdout(&again),
        stderr(&again)
    );
    assert_ne!(again.status.code(), Some(0), "{}", stderr(&again));
}

/// A batch whose stored limits are in another currency than the worker's (KZT, the only one
/// the flags and `--limits FILE` give): `Limits::strictest` keeps the worker's own limits and
/// drops ALL of the batch's, even its count limits, which do not depend on a currency at all.
/// Nothing is said; the rows the batch's daily count held back are paid.
#[test]
fn review4_a_batch_with_limits_in_another_currency_keeps_its_count_limits() {
    let (sim, again) =
        rerun_with_stored_limits("r4-usd", r#"[["currency",840],["daily_count",2]]"#);
    assert_eq!(
        sim.sim().payments().len(),
        2,
        "the batch's daily count of 2 was dropped because its limits are in USD: {}\n{}",
        stdout(&again),
        stderr(&again)
    );
    assert_ne!(again.status.code(), Some(0), "{}", stderr(&again));
}
