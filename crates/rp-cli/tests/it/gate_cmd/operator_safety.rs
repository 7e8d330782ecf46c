//! What a tired operator types, and what a script must tell apart (issue 16): every refusal
//! says what was wrong and what to write instead, the destination is named before sending,
//! and the exit status and the `--json` object tell the outcome classes apart.

use std::io::{Read as _, Write as _};
use std::net::TcpListener;

use serde_json::Value;

use super::{KEY, Sim};
use crate::{assert_fails, rp_with, stderr, stdout};

/// `rp payout --phone PHONE --amount AMOUNT` against `sim`, with `extra` arguments.
fn payout(sim: &Sim, phone: &str, amount: &str, extra: &[&str]) -> std::process::Output {
    let mut args = vec![
        "payout",
        "--phone",
        phone,
        "--amount",
        amount,
        "--customer-id",
        "c-tired",
    ];
    args.extend_from_slice(extra);
    sim.rp(&args)
}

/// The one JSON object a failing command prints with `--json`.
fn failure_json(output: &std::process::Output) -> Value {
    let text = stdout(output);
    let value: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{e}: {text:?}"));
    assert_eq!(value["ok"], false, "{value}");
    assert_eq!(
        value["exit_code"].as_i64(),
        output.status.code().map(i64::from),
        "{value}"
    );
    assert!(value["message"].as_str().is_some_and(|m| !m.is_empty()));
    value
}

#[test]
fn amounts_as_a_tired_operator_types_them_are_refused_with_what_to_write() {
    let sim = Sim::start();
    let cases = [
        // Before: clap's "unexpected argument '-5'".
        (
            "-5",
            "amount \"-5\" is negative; write a positive amount in tenge",
        ),
        (
            "\u{2212}3,00",
            "is negative; write a positive amount in tenge",
        ),
        (
            "1e3",
            "exponent notation is not accepted; write the digits out",
        ),
        (
            "1.5E3",
            "exponent notation is not accepted; write the digits out",
        ),
        (
            "1500.000",
            "more digits after the decimal separator than KZT allows (2)",
        ),
        (
            "0.500",
            "more digits after the decimal separator than KZT allows (2)",
        ),
        (
            "1 000,000",
            "more digits after the decimal separator than KZT allows (2)",
        ),
        (
            "1,000",
            "ambiguous (a thousand, or a fraction?); group thousands with spaces",
        ),
        ("15 руб", "unknown currency \"руб\"; write the amount alone"),
    ];
    for (amount, needle) in cases {
        let output = payout(&sim, "87011234567", amount, &[]);
        assert_fails(&output, 2, needle);
        assert!(
            !stderr(&output).contains("tiyn") && !stderr(&output).contains("minor units"),
            "amounts are told in tenge: {}",
            stderr(&output)
        );
    }
    // A negative project ID reaches rp, not clap.
    assert_fails(
        &sim.rp(&["operators", "--project-id", "-1"]),
        2,
        "project ID \"-1\" is not a positive integer; write your project's number",
    );
    assert!(sim.sim().payments().is_empty(), "nothing may be sent");
}

#[test]
fn tenge_and_phone_numbers_as_written_in_kazakhstan_are_paid() {
    let sim = Sim::start();
    let cases = [
        (
            "kz-1",
            "8 (701) 123\u{2013}45\u{2013}67",
            "1 500 тг",
            150_000,
        ),
        (
            "kz-2",
            "+7\u{2011}701\u{2011}123\u{2011}45\u{2011}67",
            "1500тг.",
            150_000,
        ),
        (
            "kz-3",
            "\u{feff}+7 701\u{200b}123 45 67",
            "1500 тенге",
            150_000,
        ),
        (
            "kz-4",
            "8\u{2212}701\u{ff0d}1234567",
            "2 000,50 теңге",
            200_050,
        ),
        ("kz-5", "87011234567\u{2060}", "10 тңг", 1_000),
    ];
    for (id, phone, amount, minor) in cases {
        let output = payout(&sim, phone, amount, &["--payment-id", id]);
        assert_eq!(output.status.code(), Some(0), "{id}: {}", stderr(&output));
        let recorded = sim.sim().payment(id).unwrap();
        assert_eq!(recorded.amount, minor, "{id}");
        assert_eq!(recorded.phone.as_str(), "77011234567", "{id}");
    }
}

#[test]
fn ranges_no_payout_operator_serves_are_refused_unless_an_operator_is_named() {
    let sim = Sim::start();
    for prefix in ["760", "762", "763", "764", "785"] {
        let phone = format!("+7 {prefix} 123 45 67");
        assert_fails(
            &payout(&sim, &phone, "100", &[]),
            2,
            &format!("is in the {prefix} range of "),
        );
    }
    assert!(sim.sim().payments().is_empty(), "nothing may be sent");
    // Named explicitly, it is the operator's call: sent (whatever the platform then says).
    let named = payout(
        &sim,
        "+7 760 123 45 67",
        "100",
        &["--operator", "TELE2", "--payment-id", "kulan-named"],
    );
    assert!(!stderr(&named).contains("range of"), "{}", stderr(&named));
    assert!(
        sim.sim()
            .requests()
            .iter()
            .any(|r| r.payment_id.as_deref() == Some("kulan-named")),
        "sent when the operator is named"
    );
}

#[test]
fn a_secret_key_with_whitespace_around_it_is_refused_before_anything_is_sent() {
    let sim = Sim::start();
    let url = sim.url();
    for key in [" cli-test-key", "cli-test-key\n", "cli-test-key\t"] {
        let output = rp_with(
            &["operators", "--base-url", &url, "--project-id", "1234"],
            &[("RP_SECRET_KEY", key)],
            b"",
        );
        assert_fails(
            &output,
            2,
            "the secret key from RP_SECRET_KEY starts or ends with whitespace",
        );
        assert!(
            !stderr(&output).contains("cli-test-key"),
            "no key in errors"
        );
    }
    let file = crate::fresh_ledger().with_extension("key");
    std::fs::write(&file, "cli-test-key \n").unwrap();
    let output = rp_with(
        &[
            "operators",
            "--base-url",
            &url,
            "--project-id",
            "1234",
            "--secret-file",
            file.to_str().unwrap(),
        ],
        &[],
        b"",
    );
    assert_fails(&output, 2, "starts or ends with whitespace");
    assert!(sim.sim().requests().is_empty(), "nothing was sent");
}

#[test]
fn the_base_url_is_a_host_only_and_a_gate_path_is_dropped_with_a_warning() {
    let sim = Sim::start();
    let url = sim.url();
    let with_api_path = format!("{url}/v2/");
    let output = rp_with(
        &[
            "operators",
            "--base-url",
            &with_api_path,
            "--project-id",
            "1234",
        ],
        &[("RP_SECRET_KEY", KEY)],
        b"",
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!(
            "has the API path /v2, which rp adds itself; using {url}"
        )),
        "{}",
        stderr(&output)
    );
    let other_path = format!("{url}/gate");
    assert_fails(
        &rp_with(
            &[
                "operators",
                "--base-url",
                &other_path,
                "--project-id",
                "1234",
            ],
            &[("RP_SECRET_KEY", KEY)],
            b"",
        ),
        2,
        &format!(
            "has a path (/gate); the Gate's base URL is the scheme and host only: write {url}"
        ),
    );
}

/// A server that answers every request with HTTP 404 and a plain body (a web server that is
/// not a Gate); returns its base URL.
fn not_a_gate() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut buffer = [0u8; 4096];
            let _ = stream.read(&mut buffer);
            let _ = stream.write_all(
                b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 9\r\nConnection: close\r\n\r\nnot found",
            );
        }
    });
    url
}

#[test]
fn exit_codes_and_json_objects_tell_the_outcome_classes_apart() {
    let sim = Sim::start();

    // 2: input error, nothing sent.
    let input = payout(
        &sim,
        "87011234567",
        "1e3",
        &["--json", "--payment-id", "j-2"],
    );
    assert_fails(&input, 2, "exponent notation");
    let value = failure_json(&input);
    assert_eq!(value["outcome"], "input_error");

    // 5: payment unknown.
    let unknown = sim.rp(&["status", "never-paid", "--json"]);
    assert_eq!(unknown.status.code(), Some(5), "{}", stderr(&unknown));
    let value = failure_json(&unknown);
    assert_eq!(value["outcome"], "payment_unknown");
    assert_eq!(value["payment_id"], "never-paid");

    // 6: signature or project problem: a key that is not the project's (3261).
    let wrong_key = rp_with(
        &[
            "payout",
            "--phone",
            "87011234567",
            "--amount",
            "100",
            "--customer-id",
            "c-6",
            "--payment-id",
            "j-6",
            "--json",
        ],
        &[
            ("RP_BASE_URL", &sim.url()),
            ("RP_PROJECT_ID", "1234"),
            ("RP_SECRET_KEY", "not-the-project-key"),
        ],
        b"",
    );
    assert_eq!(wrong_key.status.code(), Some(6), "{}", stderr(&wrong_key));
    assert!(
        stderr(&wrong_key).contains("rp sign --explain"),
        "{}",
        stderr(&wrong_key)
    );
    let value = failure_json(&wrong_key);
    assert_eq!(value["outcome"], "signature_or_project");
    assert_eq!(value["payment_id"], "j-6");

    // 6: a base URL that is not a Gate (HTTP 404 everywhere) is a configuration error.
    let nowhere = not_a_gate();
    for args in [vec!["operators"], vec!["status", "j-404"]] {
        let mut args = args;
        args.extend(["--base-url", &nowhere, "--project-id", "1234", "--json"]);
        let output = rp_with(&args, &[("RP_SECRET_KEY", KEY)], b"");
        assert_eq!(
            output.status.code(),
            Some(6),
            "{args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains("the base URL does not serve the Gate's API"),
            "{}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(&nowhere),
            "names the host: {}",
            stderr(&output)
        );
        assert_eq!(failure_json(&output)["outcome"], "signature_or_project");
    }

    // 4: not sent: nothing listens (a read-only request; safe to run again).
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let closed = format!("http://127.0.0.1:{port}");
    let not_sent = rp_with(
        &[
            "operators",
            "--base-url",
            &closed,
            "--project-id",
            "1234",
            "--json",
        ],
        &[("RP_SECRET_KEY", KEY)],
        b"",
    );
    assert_eq!(not_sent.status.code(), Some(4), "{}", stderr(&not_sent));
    assert!(
        stderr(&not_sent).contains(&closed),
        "names the host: {}",
        stderr(&not_sent)
    );
    assert_eq!(failure_json(&not_sent)["outcome"], "not_sent");
}

#[test]
fn reconcile_names_the_gate_and_project_before_it_sends_anything() {
    let sim = Sim::start();
    let output = sim.rp(&["reconcile"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(&format!("→ NOT production {}, project 1234", sim.url())),
        "{}",
        stderr(&output)
    );
}

#[test]
fn the_exit_codes_are_documented_in_help() {
    let help = stdout(&rp_with(&["--help"], &[], b""));
    for line in [
        "  1  declined:",
        "  2  input error:",
        "  3  outcome unknown:",
        "  4  not sent:",
        "  5  payment unknown:",
        "  6  signature or project problem:",
        "  7  rp demo:",
        "with --json, a failure is also one JSON object on stdout",
    ] {
        assert!(help.contains(line), "{line:?} not in rp --help:\n{help}");
    }
}

/// The key is read once: a secret file that is a pipe (`--secret-file /dev/stdin`, or a
/// shell's `<(pass show rp)`) has nothing left on a second read, and the payout was signed
/// with an empty key (3261) after warning twice that the key was empty.
#[test]
fn a_secret_file_that_is_a_pipe_is_read_once() {
    let sim = Sim::start();
    let url = sim.url();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let output = rp_with(
        &[
            "payout",
            "--base-url",
            &url,
            "--project-id",
            "1234",
            "--secret-file",
            "/dev/stdin",
            "--phone",
            "77011234567",
            "--amount",
            "100",
            "--customer-id",
            "c-pipe",
        ],
        &[("RP_LEDGER", &ledger)],
        format!("{KEY}\n").as_bytes(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("empty"), "{}", stderr(&output));
}

/// A base URL the transport refuses (another scheme, credentials in it) is refused before the
/// ledger is opened: no ledger file is created for a command that cannot send anything.
#[test]
fn a_base_url_the_transport_refuses_creates_no_ledger() {
    for url in ["ftp://gate.example", "https://user:pw@gate.example"] {
        let path = crate::fresh_ledger();
        let ledger = format!("sqlite:{}", path.display());
        for command in [
            &[
                "payout",
                "--phone",
                "87011234567",
                "--amount",
                "1500",
                "--customer-id",
                "c-1",
            ][..],
            &["reconcile"][..],
        ] {
            let mut args = command.to_vec();
            args.extend([
                "--base-url",
                url,
                "--project-id",
                "1234",
                "--ledger",
                &ledger,
            ]);
            let output = rp_with(&args, &[("RP_SECRET_KEY", KEY)], b"");
            assert_eq!(output.status.code(), Some(2), "{url}: {}", stderr(&output));
            assert!(
                !path.exists(),
                "{url}: {} created a ledger before refusing",
                command[0]
            );
        }
    }
}
