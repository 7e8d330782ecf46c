//! The ledger from the command line: `rp payout` records there, `rp payouts list|show` read
//! it, `rp reconcile` settles what a lost callback left open, the default ledger is created
//! (and said so) in the user's data directory.

use std::process::Output;

use serde_json::Value;

use crate::gate_cmd::Sim;
use crate::listener::{post_callback, spawn_listen, stop_and_read};
use crate::{assert_fails, fresh_ledger, rp_with, stderr, stdout};

fn json(output: &Output) -> Value {
    assert_eq!(output.status.code(), Some(0), "{}", stderr(output));
    serde_json::from_str(&stdout(output)).unwrap()
}

/// `rp payout` to +7 701 123 45 67 through the ledger `ledger`.
fn pay(sim: &Sim, ledger: &str, amount: &str, customer: &str, payment_id: &str) -> Output {
    sim.rp_in(
        ledger,
        &[
            "payout",
            "--phone",
            "+7 701 123 45 67",
            "--amount",
            amount,
            "--customer-id",
            customer,
            "--payment-id",
            payment_id,
        ],
    )
}

#[test]
fn a_payout_is_recorded_listed_and_shown_with_its_history() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", fresh_ledger().display());
    let paid = pay(&sim, &ledger, "1 500", "c-1", "led-1");
    assert_eq!(paid.status.code(), Some(0), "{}", stderr(&paid));

    let list = json(&sim.rp_in(&ledger, &["payouts", "list", "--json"]));
    let items = list["payouts"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{list}");
    assert_eq!(items[0]["payment_id"], "led-1");
    assert_eq!(items[0]["state"], "accepted");
    assert_eq!(items[0]["amount"], "1500.00", "in tenge, never in tiyn");
    assert_eq!(items[0]["amount_minor"], 150_000);
    assert_eq!(items[0]["phone"], "7701***4567");

    let text = sim.rp_in(&ledger, &["payouts", "list", "--state", "accepted"]);
    assert!(stdout(&text).contains("led-1"), "{}", stdout(&text));
    let none = sim.rp_in(&ledger, &["payouts", "list", "--state", "success"]);
    assert!(
        stdout(&none).contains("no payouts match"),
        "{}",
        stdout(&none)
    );

    let shown = json(&sim.rp_in(&ledger, &["payouts", "show", "led-1", "--json"]));
    let sources: Vec<&str> = shown["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    // Recorded, the attempt logged before it was sent, the answer.
    assert_eq!(sources, ["call", "call", "answer"], "{shown}");
    let text = stdout(&sim.rp_in(&ledger, &["payouts", "show", "led-1"]));
    assert!(
        text.contains("history") && text.contains("created → accepted"),
        "{text}"
    );
    assert!(!text.contains("77011234567"), "{text}");

    // The same payment ID again: resumed from the ledger, nothing sent.
    let again = pay(&sim, &ledger, "1 500", "c-1", "led-1");
    assert_eq!(again.status.code(), Some(0), "{}", stderr(&again));
    assert!(
        stdout(&again).contains("already recorded"),
        "{}",
        stdout(&again)
    );
    // Different details under it: refused, nothing sent.
    let other = pay(&sim, &ledger, "2 000", "c-1", "led-1");
    assert_eq!(other.status.code(), Some(2), "{}", stderr(&other));
    assert!(
        stderr(&other).contains("different payout"),
        "{}",
        stderr(&other)
    );
    assert_eq!(sim.sim().payments().len(), 1);
    let unknown = sim.rp_in(&ledger, &["payouts", "show", "never"]);
    assert_fails(&unknown, 5, "payout never is not in this ledger");
}

/// Magic 0016: the callback is lost (and `rp payout` receives none): `rp reconcile` learns the
/// result from the status endpoint and records it.
#[test]
fn reconcile_records_what_a_lost_callback_left_open() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", fresh_ledger().display());
    let paid = sim.rp_in(
        &ledger,
        &[
            "payout",
            "--phone",
            "+7 701 123 0016",
            "--amount",
            "100",
            "--customer-id",
            "c-2",
            "--payment-id",
            "led-lost",
        ],
    );
    assert_eq!(paid.status.code(), Some(0), "{}", stderr(&paid));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !sim.sim().payment("led-lost").unwrap().status.is_final() {
        assert!(std::time::Instant::now() < deadline);
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let report = sim.rp_in(&ledger, &["reconcile", "--overdue-after", "0"]);
    let out = stdout(&report);
    assert_eq!(report.status.code(), Some(0), "{}", stderr(&report));
    assert!(
        out.contains("1 updated") && out.contains("led-lost  accepted → success"),
        "{out}"
    );
    let shown = json(&sim.rp_in(&ledger, &["payouts", "show", "led-lost", "--json", "--raw"]));
    assert_eq!(shown["state"], "success");
    let last = shown["events"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["source"], "status");
    let raw = last["raw"].as_str().unwrap();
    assert!(
        raw.contains("signature") && !raw.contains("77011230016"),
        "{raw}"
    );
    // Nothing overdue any more.
    let again = sim.rp_in(&ledger, &["reconcile", "--overdue-after", "0", "--json"]);
    let value = json(&again);
    assert!(value["asked"].as_array().unwrap().is_empty(), "{value}");
}

#[test]
fn the_default_ledger_is_created_in_the_data_directory_and_said_so() {
    let home = fresh_ledger().with_extension("home");
    std::fs::create_dir_all(&home).unwrap();
    let home_text = home.display().to_string();
    let env = [
        ("RP_PROJECT_ID", "1234"),
        ("RP_LEDGER", ""),
        ("HOME", home_text.as_str()),
        ("XDG_DATA_HOME", ""),
    ];
    // An empty RP_LEDGER counts as unset.
    let first = rp_with(&["payouts", "list"], &env, b"");
    assert_eq!(first.status.code(), Some(0), "{}", stderr(&first));
    let path = home.join(".local/share/rp/ledger.db");
    assert!(path.exists());
    assert!(
        stderr(&first).contains(&format!("created the ledger sqlite:{}", path.display())),
        "{}",
        stderr(&first)
    );
    let second = rp_with(&["payouts", "list"], &env, b"");
    assert!(stderr(&second).is_empty(), "said once: {}", stderr(&second));
}

#[test]
fn a_bad_ledger_is_one_line_with_exit_2() {
    for (url, needle) in [
        ("mysql://x/y", "unknown scheme `mysql`"),
        ("sqlite:/nonexistent-dir-rp/ledger.db", "does not exist"),
        // Nothing listens on port 1: refused at once, named, the password never shown.
        (
            "postgres://rp:hunter2@127.0.0.1:1/ledger",
            "cannot connect to 127.0.0.1:1",
        ),
    ] {
        let output = rp_with(
            &["payouts", "list"],
            &[("RP_PROJECT_ID", "1234"), ("RP_LEDGER", url)],
            b"",
        );
        assert_fails(&output, 2, needle);
        assert!(!stderr(&output).contains("hunter2"));
    }
    let output = rp_with(
        &["payouts", "list", "--since", "yesterday"],
        &[("RP_PROJECT_ID", "1234")],
        b"",
    );
    assert_fails(&output, 2, "invalid time \"yesterday\"");
}

/// `rp listen --ledger` applies callbacks to the ledger as a payout service would: the matching
/// callback is recorded, one about another payment under the ID is not.
#[test]
fn listen_with_a_ledger_records_callbacks_and_refuses_other_payments() {
    let sim = Sim::start();
    let path = fresh_ledger();
    let ledger = format!("sqlite:{}", path.display());
    let paid = pay(&sim, &ledger, "1 500", "c-9", "led-cb");
    assert_eq!(paid.status.code(), Some(0), "{}", stderr(&paid));

    let (child, addr) = spawn_listen(
        &["--project-id", "1234", "--ledger", &ledger],
        crate::gate_cmd::KEY,
        &[],
    );

    let post = |amount: u64| -> u16 {
        let body = rp_sign::testing::sign_callback(
            &serde_json::json!({
                "project_id": 1234,
                "payment": {"id": "led-cb", "type": "payout", "status": "success",
                            "sum": {"amount": amount, "currency": "KZT"}},
                "account": {"number": "77011234567", "type": "KCELL"},
                "customer": {"id": "c-9"},
                "operation": {"id": 1, "status": "success", "code": "0", "message": "Success"}
            }),
            &rp_sign::SecretKey::from(crate::gate_cmd::KEY),
        )
        .unwrap();
        post_callback(&addr, &body)
    };
    // Another amount under our payment ID: acknowledged, not applied.
    assert_eq!(post(999_900), 200);
    let shown = json(&sim.rp_in(&ledger, &["payouts", "show", "led-cb", "--json"]));
    assert_eq!(shown["state"], "accepted", "{shown}");
    assert!(
        shown["attention"].as_str().unwrap().contains("999900"),
        "{shown}"
    );
    // The real one: recorded.
    assert_eq!(post(150_000), 200);
    let shown = json(&sim.rp_in(&ledger, &["payouts", "show", "led-cb", "--json"]));
    assert_eq!(shown["state"], "success", "{shown}");

    let out = stop_and_read(child);
    assert!(out.contains("ledger: not this payout"), "{out}");
    assert!(out.contains("ledger: recorded accepted → success"), "{out}");
    assert!(!out.contains("77011234567"), "{out}");
}
