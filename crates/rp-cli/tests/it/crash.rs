//! Crashes, proven: a real `rp` process against the real simulator, aborted at each named
//! point (`RP_FAILPOINT`, feature `failpoints`) and killed with SIGKILL at random moments, then
//! `rp reconcile` on the same ledger: an SQLite file, and a PostgreSQL database when the test
//! server is there (`RP_TEST_POSTGRES_URL`, which `cargo xtask ci` provides). Every payout the platform has is paid exactly once, none
//! is left unsettled, and none is unknown to the ledger. Also: two processes paying the same
//! payment ID at once send one request.

#[cfg(not(feature = "failpoints"))]
#[test]
fn crash_tests_need_the_failpoints_feature() {
    let message = "crash tests skipped: build with `--features failpoints` (cargo xtask ci does, through --all-features)";
    assert!(std::env::var_os("CI").is_none(), "{message}");
    eprintln!("\n*** {message} ***\n");
}

#[cfg(feature = "failpoints")]
mod with_failpoints {
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use serde_json::Value;

    use crate::gate_cmd::{KEY, Sim};
    use crate::{ledgers, stderr, stdout};

    /// `rp ARGS` against `sim` with `ledger`, and `failpoint` armed (if any).
    fn rp(sim: &Sim, ledger: &str, failpoint: Option<&str>, args: &[&str]) -> std::process::Output {
        let mut command = Command::new(env!("CARGO_BIN_EXE_rp"));
        command
            .args(args)
            .env("RP_BASE_URL", sim.url())
            .env("RP_PROJECT_ID", "1234")
            .env("RP_SECRET_KEY", KEY)
            .env("RP_LEDGER", ledger)
            .env_remove("RP_FAILPOINT")
            .stdin(Stdio::null());
        if let Some(point) = failpoint {
            command.env("RP_FAILPOINT", point);
        }
        command.output().unwrap()
    }

    fn payout_args(id: &str) -> Vec<String> {
        [
            "payout",
            "--phone",
            "+7 701 123 45 67",
            "--amount",
            "1 500",
            "--customer-id",
            "c-crash",
            "--payment-id",
            id,
        ]
        .map(str::to_owned)
        .to_vec()
    }

    fn as_strs(args: &[String]) -> Vec<&str> {
        args.iter().map(String::as_str).collect()
    }

    /// The ledger's payouts: payment ID → state label.
    fn ledger_states(sim: &Sim, ledger: &str) -> Vec<(String, String)> {
        let out = rp(
            sim,
            ledger,
            None,
            &["payouts", "list", "--json", "--limit", "1000"],
        );
        assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
        let value: Value = serde_json::from_str(&stdout(&out)).unwrap();
        value["payouts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                (
                    p["payment_id"].as_str().unwrap().to_owned(),
                    p["state"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    /// Runs `rp reconcile --overdue-after 0` until every payout in the ledger is `success`.
    fn reconcile_until_settled(sim: &Sim, ledger: &str) -> Vec<(String, String)> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let out = rp(sim, ledger, None, &["reconcile", "--overdue-after", "0"]);
            assert_eq!(
                out.status.code(),
                Some(0),
                "{}\n{}",
                stdout(&out),
                stderr(&out)
            );
            let states = ledger_states(sim, ledger);
            if states.iter().all(|(_, state)| state == "success") {
                return states;
            }
            assert!(
                Instant::now() < deadline,
                "never settled: {states:?}\n{}",
                stdout(&out)
            );
            std::thread::sleep(Duration::from_millis(150));
        }
    }

    /// Every payment the simulator has is in the ledger, settled, and paid once.
    fn assert_paid_exactly_once(sim: &Sim, states: &[(String, String)]) {
        for payment in sim.sim().payments() {
            assert!(
                states
                    .iter()
                    .any(|(id, state)| *id == payment.payment_id && state == "success"),
                "the platform has {} but the ledger says {states:?}",
                payment.payment_id
            );
            assert_eq!(
                payment.accepted_requests, 1,
                "{} paid once",
                payment.payment_id
            );
        }
        for (id, _) in states {
            assert!(
                sim.sim().payment(id).is_some(),
                "{id} in the ledger, never paid"
            );
        }
    }

    #[test]
    fn a_crash_at_every_named_point_ends_paid_exactly_once() {
        for ledger in ledgers("points") {
            let sim = Sim::start();
            for point in ["payout-recorded", "payout-answered"] {
                let id = format!("crash-{point}");
                let out = rp(&sim, &ledger, Some(point), &as_strs(&payout_args(&id)));
                assert_eq!(
                    out.status.code(),
                    None,
                    "{point}: aborted by the failpoint: {}",
                    stderr(&out)
                );
                assert!(
                    stderr(&out).contains(&format!("failpoint {point}")),
                    "{}",
                    stderr(&out)
                );
            }
            // A payout accepted normally, then reconcile aborted after asking about it.
            let out = rp(
                &sim,
                &ledger,
                None,
                &as_strs(&payout_args("crash-reconcile")),
            );
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let out = rp(
                &sim,
                &ledger,
                Some("reconcile-asked"),
                &["reconcile", "--overdue-after", "0"],
            );
            assert_eq!(
                out.status.code(),
                None,
                "reconcile aborted: {}",
                stderr(&out)
            );

            let states = reconcile_until_settled(&sim, &ledger);
            assert_eq!(states.len(), 3, "{states:?}");
            assert_paid_exactly_once(&sim, &states);
        }
    }

    #[test]
    fn a_crash_after_a_callback_is_verified_loses_nothing() {
        use std::io::Write as _;

        for ledger in ledgers("callback") {
            let sim = Sim::start();
            let out = rp(&sim, &ledger, None, &as_strs(&payout_args("crash-cb")));
            assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
            let (mut listener, addr) = crate::listener::spawn_listen(
                &["--project-id", "1234", "--ledger", &ledger],
                KEY,
                &[("RP_FAILPOINT", "callback-verified")],
            );
            let body = rp_sign::testing::sign_callback(
                &serde_json::json!({
                    "project_id": 1234,
                    "payment": {"id": "crash-cb", "type": "payout", "status": "success",
                                "sum": {"amount": 150_000, "currency": "KZT"}},
                    "account": {"number": "77011234567"},
                    "customer": {"id": "c-crash"},
                    "operation": {"id": 1, "status": "success", "code": "0", "message": "Success"}
                }),
                &rp_sign::SecretKey::from(KEY),
            )
            .unwrap();
            let mut stream = std::net::TcpStream::connect(&addr).unwrap();
            let _ = write!(
                stream,
                "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
            let status = listener.wait().unwrap();
            assert_eq!(status.code(), None, "the listener aborted at the failpoint");
            // Nothing of the callback was recorded; the platform would redeliver it, and reconcile
            // learns the result meanwhile.
            assert_eq!(
                ledger_states(&sim, &ledger),
                [("crash-cb".to_owned(), "accepted".to_owned())]
            );
            let states = reconcile_until_settled(&sim, &ledger);
            assert_paid_exactly_once(&sim, &states);
        }
    }

    /// SIGKILL at random moments of `rp payout`, many times; then reconcile.
    #[test]
    fn sigkill_at_random_moments_ends_paid_exactly_once() {
        for ledger in ledgers("sigkill") {
            let sim = Sim::start();
            // A small deterministic generator: the moments differ, the run is repeatable.
            let mut seed: u64 = 0x5eed_1234_abcd_0001;
            let mut next = || {
                seed = seed
                    .wrapping_mul(6_364_136_223_846_793_005)
                    .wrapping_add(1_442_695_040_888_963_407);
                seed >> 33
            };
            for run in 0..16 {
                let id = format!("kill-{run:02}");
                let mut child = Command::new(env!("CARGO_BIN_EXE_rp"))
                    .args(as_strs(&payout_args(&id)))
                    .env("RP_BASE_URL", sim.url())
                    .env("RP_PROJECT_ID", "1234")
                    .env("RP_SECRET_KEY", KEY)
                    .env("RP_LEDGER", &ledger)
                    .env_remove("RP_FAILPOINT")
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .unwrap();
                std::thread::sleep(Duration::from_millis(next() % 120));
                let _ = Command::new("kill")
                    .args(["-KILL", &child.id().to_string()])
                    .status();
                let _ = child.wait();
            }
            let states = reconcile_until_settled(&sim, &ledger);
            assert_paid_exactly_once(&sim, &states);
            eprintln!(
                "sigkill: {} of 16 payouts reached the ledger, {} the platform; all settled once",
                states.len(),
                sim.sim().payments().len()
            );
        }
    }

    /// Two processes paying the same payment ID at the same moment on one ledger: one request.
    #[test]
    fn two_processes_with_one_payment_id_send_one_request() {
        for ledger in ledgers("twins") {
            let sim = Sim::start();
            // The ledger exists first, so both processes open it, not create it.
            let _ = rp(&sim, &ledger, None, &["payouts", "list"]);
            let spawn = || sim.spawn_in(&ledger, &as_strs(&payout_args("twin")));
            let (a, b) = (spawn(), spawn());
            let (a, b) = (a.wait_with_output().unwrap(), b.wait_with_output().unwrap());
            let codes = [a.status.code(), b.status.code()];
            assert!(
                codes.contains(&Some(0)),
                "one of them paid: {codes:?}\n{}\n{}",
                stderr(&a),
                stderr(&b)
            );
            assert_eq!(
                sim.payout_requests("twin"),
                1,
                "one request to pay\n{}\n{}",
                stderr(&a),
                stderr(&b)
            );
        }
    }
}
