//! Adversarial review of `rp` on the ledger: crashes (SIGKILL, not only SIGINT) and two
//! processes on one ledger file. `review_a_rerun_after_sigkill_…` failed on the code it was
//! written against; `review_two_processes_…` is an attack that held up, kept as a guard.

use std::io::{BufRead as _, BufReader};
use std::process::Child;
use std::time::{Duration, Instant};

use crate::gate_cmd::Sim;
use crate::{stderr, stdout};

fn payout_args<'a>(phone: &'a str, payment_id: &'a str) -> Vec<&'a str> {
    vec![
        "payout",
        "--phone",
        phone,
        "--amount",
        "100",
        "--customer-id",
        "c-review",
        "--payment-id",
        payment_id,
    ]
}

/// SIGKILL (the OOM killer, `kill -9`, a power cut, a container stopped hard) leaves the
/// payout `Created`: `Client::abandon` only runs on SIGINT/SIGTERM. The rerun with the same
/// `--payment-id`, which the first line on stderr tells the operator to do, is then refused
/// as "being sent by another command or process right now" for the whole in-flight window
/// (`max_elapsed` 120 s + 2 × (10 s + 30 s) = 200 s with the CLI defaults), and `rp reconcile`
/// leaves it alone just as long, although no process is sending it. Issue 11 promises
/// claims with leases where "a lease held by a process on this machine that no longer exists
/// is taken over at once (a rerun after a crash does not wait)". Nothing is paid twice, but
/// the operator is told something false (another process is sending) and a payout that the
/// platform has is left unresolved; an operator who believes "another process" may look
/// for it, find none, and pay by other means.
#[test]
fn review_a_rerun_after_sigkill_resolves_the_payout_instead_of_reporting_it_in_flight() {
    let sim = Sim::start_with(Duration::from_secs(60));
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let id = "review-kill9";
    let mut child = sim.spawn_in(&ledger, &payout_args("+7 701 123 0023", id));
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    assert!(first.contains("rerun it with --payment-id"), "{first}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while sim.sim().payment(id).is_none() {
        assert!(Instant::now() < deadline, "never sent");
        std::thread::sleep(Duration::from_millis(10));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let rerun = sim.rp_in(&ledger, &payout_args("+7 701 123 0023", id));
    let err = stderr(&rerun);
    assert!(
        !err.contains("being sent by another command or process right now"),
        "the rerun after a SIGKILL blames a process that no longer exists: {err}"
    );
    assert_eq!(rerun.status.code(), Some(0), "{err}");
    assert!(
        stdout(&rerun).contains("the signed status showed the platform has this payout"),
        "{}",
        stdout(&rerun)
    );
    // The held first request is logged only when answered; the payment shows it was taken once,
    // and the rerun sent nothing (no request answered yet for it either).
    assert_eq!(
        sim.sim().payment(id).unwrap().accepted_requests,
        1,
        "paid once"
    );
    assert_eq!(sim.payout_requests(id), 0, "the rerun sent nothing");
}

/// Two `rp payout` with one payment ID at the same moment on one ledger file: exactly one
/// request to pay reaches the platform, and the other command says the payout is in flight
/// (never "refused" or "nothing was paid").
#[test]
fn review_two_processes_with_one_payment_id_send_one_request() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    // Created first, so that both processes open an existing ledger.
    let created = sim.rp_in(&ledger, &["payouts", "list"]);
    assert_eq!(created.status.code(), Some(0), "{}", stderr(&created));
    for round in 0..3 {
        let id = format!("review-twin-{round}");
        let children: Vec<Child> = (0..2)
            .map(|_| sim.spawn_in(&ledger, &payout_args("+7 701 123 0023", &id)))
            .collect();
        let outputs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        assert_eq!(sim.payout_requests(&id), 1, "round {round}: {outputs:#?}");
        for output in &outputs {
            let err = stderr(output);
            assert!(
                output.status.code() == Some(0)
                    || err.contains("being sent by another command or process"),
                "round {round}: {err}"
            );
        }
    }
}
