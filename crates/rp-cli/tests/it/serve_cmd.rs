//! `rp serve` as a process: operators added, listed, removed; a public address refused
//! without `--insecure-bind`; the desk answers its health checks and stops gracefully on
//! SIGTERM. (The console's pages are tested in rp-console against a real `serve`.)

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::gate_cmd::Sim;
use crate::{rp_with, stderr, stdout};

#[test]
fn operators_are_added_listed_and_removed() {
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let env = [("RP_LEDGER", ledger.as_str())];
    let added = rp_with(
        &["serve", "add-operator", "anna", "--role", "pay"],
        &env,
        b"",
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let out = stdout(&added);
    assert!(out.contains("operator anna (pay) added"), "{out}");
    let password = out
        .lines()
        .find_map(|l| l.strip_prefix("password (shown once): "))
        .expect("a made-up password is printed once");
    assert_eq!(password.chars().count(), 20, "{password}");

    // From a file (standard input here), a new role: an update.
    let updated = rp_with(
        &[
            "serve",
            "add-operator",
            "anna",
            "--role",
            "view",
            "--password-file",
            "-",
        ],
        &env,
        b"a much longer passphrase\n",
    );
    assert!(updated.status.success(), "{}", stderr(&updated));
    assert!(stdout(&updated).contains("updated"), "{}", stdout(&updated));
    assert!(!stdout(&updated).contains("shown once"));

    let short = rp_with(
        &["serve", "add-operator", "bob", "--role", "pay"],
        &[
            ("RP_LEDGER", ledger.as_str()),
            ("RP_OPERATOR_PASSWORD", "short"),
        ],
        b"",
    );
    assert_eq!(short.status.code(), Some(2), "{}", stderr(&short));
    assert!(stderr(&short).contains("at least 12"), "{}", stderr(&short));
    let bad_name = rp_with(
        &["serve", "add-operator", "bo b", "--role", "pay"],
        &env,
        b"",
    );
    assert_eq!(bad_name.status.code(), Some(2));
    assert!(
        stderr(&bad_name).contains("operator name"),
        "{}",
        stderr(&bad_name)
    );

    let listed = stdout(&rp_with(&["serve", "operators"], &env, b""));
    assert!(
        listed.starts_with("anna") && listed.contains("view"),
        "{listed}"
    );
    assert!(!listed.contains("argon2"), "no hash shown: {listed}");
    let removed = rp_with(&["serve", "remove-operator", "anna"], &env, b"");
    assert!(removed.status.success(), "{}", stderr(&removed));
    let again = rp_with(&["serve", "remove-operator", "anna"], &env, b"");
    assert_eq!(again.status.code(), Some(2));
    assert!(stdout(&rp_with(&["serve", "operators"], &env, b"")).contains("no operators"));
}

#[test]
fn a_public_address_needs_insecure_bind() {
    let out = rp_with(
        &["serve", "--listen", "0.0.0.0:0", "--project-id", "1234"],
        &[("RP_SECRET_KEY", "k")],
        b"",
    );
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let text = stderr(&out);
    assert!(
        text.contains("not a loopback address") && text.contains("--insecure-bind"),
        "{text}"
    );
    assert!(
        text.contains("--tls-cert") && text.contains("--tls-key"),
        "the refusal names the TLS flags: {text}"
    );
}

/// A self-signed certificate for 127.0.0.1 and localhost made now, written as PEM files in
/// `dir`: the certificate's PEM and the two paths.
fn self_signed(dir: &str) -> (String, std::path::PathBuf, std::path::PathBuf) {
    let made =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .unwrap();
    let pem = made.cert.pem();
    let cert = crate::scratch_file(dir, "cert.pem", &pem);
    let key = crate::scratch_file(dir, "key.pem", made.signing_key.serialize_pem());
    (pem, cert, key)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// With `--tls-cert` and `--tls-key`, `rp serve` takes a non-loopback address and answers
/// HTTPS with that certificate, on the console's listener and the callbacks' own; plain HTTP
/// to those ports gets no answer.
#[test]
fn serve_speaks_tls_with_its_own_certificate_on_a_public_address() {
    let (pem, cert, key) = self_signed("serve-tls");
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let (port, callback_port) = (free_port(), free_port());
    let listen = format!("0.0.0.0:{port}");
    let callback_listen = format!("127.0.0.1:{callback_port}");
    let mut child = sim.spawn_in(
        &ledger,
        &[
            "serve",
            "--listen",
            &listen,
            "--callback-listen",
            &callback_listen,
            "--tls-cert",
            cert.to_str().unwrap(),
            "--tls-key",
            key.to_str().unwrap(),
        ],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let https = reqwest::Client::builder()
        .tls_certs_only([reqwest::Certificate::from_pem(pem.as_bytes()).unwrap()])
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get_https = |url: String| {
        runtime.block_on(async {
            let answer = https.get(&url).send().await?;
            let status = answer.status().as_u16();
            let location = answer
                .headers()
                .get("location")
                .map(|v| v.to_str().unwrap_or_default().to_owned())
                .unwrap_or_default();
            Ok::<_, reqwest::Error>((status, location))
        })
    };
    let console = format!("https://127.0.0.1:{port}");
    wait_until(
        "rp serve answers over HTTPS",
        Duration::from_secs(20),
        || get_https(format!("{console}/healthz")).is_ok(),
    );
    assert_eq!(get_https(format!("{console}/healthz")).unwrap().0, 200);
    let (status, location) = get_https(format!("{console}/payments")).unwrap();
    assert_eq!(status, 303);
    assert!(location.starts_with("/login"), "{location}");
    let by_name = get_https(format!("https://localhost:{port}/healthz")).unwrap();
    assert_eq!(by_name.0, 200);
    // The callback endpoint, on its own listener, over TLS too.
    let callback = get_https(format!(
        "https://127.0.0.1:{callback_port}/rocketpay/callback"
    ))
    .unwrap();
    assert_eq!(callback.0, 405, "the callback endpoint answers over TLS");

    // Plain HTTP to either port is no HTTP answer.
    for addr in [format!("127.0.0.1:{port}"), callback_listen.clone()] {
        let plain = get(&addr, "/healthz").unwrap_or_default();
        assert!(!plain.starts_with("HTTP/"), "{addr}: {plain:?}");
        let refused = runtime.block_on(reqwest::get(format!("http://{addr}/healthz")));
        assert!(refused.is_err(), "{addr}: {refused:?}");
    }
    // A client that does not trust the certificate is refused by its own check.
    let untrusting = reqwest::Client::builder().build().unwrap();
    let untrusted = runtime.block_on(untrusting.get(format!("{console}/healthz")).send());
    assert!(untrusted.is_err(), "{untrusted:?}");

    signal(&child, "TERM");
    let deadline = Instant::now() + Duration::from_secs(40);
    while child.try_wait().unwrap().is_none() {
        assert!(
            Instant::now() < deadline,
            "rp serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let out = stdout(&output);
    assert!(
        out.contains(&format!("console    https://{listen}/")),
        "{out}"
    );
    assert!(
        out.contains(&format!(
            "callbacks  https://{callback_listen}/rocketpay/callback"
        )),
        "{out}"
    );
}

/// A certificate or key that cannot be served is told with its path, and rp serve exits
/// before it listens (nothing printed on stdout, the port still free).
#[test]
fn a_bad_certificate_or_key_is_told_before_anything_listens() {
    let (_, cert, key) = self_signed("serve-tls-bad");
    let (cert, key) = (cert.to_str().unwrap(), key.to_str().unwrap());
    let missing = cert.replace("cert.pem", "missing.pem");
    let port = free_port();
    let listen = format!("0.0.0.0:{port}");
    let cases: [(&str, &str, &[&str]); 4] = [
        (
            &missing,
            key,
            &["cannot read the TLS certificate file", "missing.pem"],
        ),
        (key, key, &["has no certificate", "key.pem"]),
        (cert, cert, &["has no private key", "cert.pem"]),
        (
            cert,
            &missing,
            &["cannot read the TLS key file", "missing.pem"],
        ),
    ];
    for (tls_cert, tls_key, expected) in cases {
        let out = rp_with(
            &[
                "serve",
                "--listen",
                &listen,
                "--project-id",
                "1234",
                "--tls-cert",
                tls_cert,
                "--tls-key",
                tls_key,
            ],
            &[("RP_SECRET_KEY", "k")],
            b"",
        );
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{text}");
        for needle in expected {
            assert!(text.contains(needle), "{needle:?} missing: {text}");
        }
        assert!(stdout(&out).is_empty(), "{}", stdout(&out));
        assert!(
            std::net::TcpListener::bind(("0.0.0.0", port)).is_ok(),
            "nothing listened on {port}"
        );
    }
    let alone = rp_with(
        &["serve", "--project-id", "1234", "--tls-cert", cert],
        &[("RP_SECRET_KEY", "k")],
        b"",
    );
    assert_eq!(alone.status.code(), Some(2));
    assert!(stderr(&alone).contains("--tls-key"), "{}", stderr(&alone));
}

/// `GET path` on `addr` over a plain socket: the status line and the body.
fn get(addr: &str, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(addr).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    Some(answer)
}

#[test]
fn serve_answers_and_stops_gracefully_on_sigterm() {
    let sim = Sim::start();
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addr = format!("127.0.0.1:{port}");
    let mut child = sim.spawn_in(&ledger, &["serve", "--listen", &addr]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let health = loop {
        if let Some(answer) = get(&addr, "/healthz") {
            break answer;
        }
        assert!(
            Instant::now() < deadline,
            "rp serve did not answer on {addr}"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    let login = get(&addr, "/payments").unwrap();
    assert!(
        login.starts_with("HTTP/1.1 303") && login.contains("location: /login"),
        "{login}"
    );
    let callback = get(&addr, "/rocketpay/callback").unwrap();
    assert!(
        callback.starts_with("HTTP/1.1 405"),
        "the callback endpoint is mounted: {callback}"
    );

    let killed = std::process::Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let deadline = Instant::now() + Duration::from_secs(40);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "rp serve did not stop on SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    let output = child.wait_with_output().unwrap();
    assert!(status.success(), "{status}: {}", stderr(&output));
    let out = stdout(&output);
    assert!(out.contains(&format!("console    http://{addr}/")), "{out}");
    assert!(out.contains("no operators yet"), "{out}");
    assert!(
        stderr(&output).contains("rp serve: stopped"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn demo_console_prints_the_way_in_and_logs_json_on_request() {
    use std::io::BufRead as _;
    use std::process::{Command, Stdio};
    let mut child = Command::new(env!("CARGO_BIN_EXE_rp"))
        .args(["demo", "--console", "--listen", "127.0.0.1:0"])
        .env_remove("RP_LOG")
        .env("RP_LOG_FORMAT", "json")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, seen) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if lines.send(line).is_err() {
                return;
            }
        }
    });
    let mut printed = Vec::new();
    let addr = loop {
        let line = seen
            .recv_timeout(Duration::from_secs(20))
            .expect("rp demo --console prints its address");
        printed.push(line.clone());
        if let Some(url) = line.trim().strip_prefix("console     http://") {
            break url.trim_end_matches('/').to_owned();
        }
    };
    let password = loop {
        let line = seen.recv_timeout(Duration::from_secs(5)).unwrap();
        if let Some(password) = line.trim().strip_prefix("password    ") {
            break password.to_owned();
        }
    };
    assert_eq!(password.len(), 20, "{password}");
    let login = get(&addr, "/login").unwrap();
    assert!(login.starts_with("HTTP/1.1 200"), "{login}");
    assert!(login.contains("content-security-policy"), "{login}");
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let logs = stderr(&output);
    let running = logs
        .lines()
        .find(|l| l.contains("rp serve: running"))
        .unwrap_or_else(|| panic!("no start line in {logs}"));
    let parsed: serde_json::Value = serde_json::from_str(running).expect("a JSON log line");
    assert_eq!(parsed["level"], "INFO", "{parsed}");
}

/// Sends SIGKILL or SIGTERM to `child`.
fn signal(child: &std::process::Child, name: &str) {
    let status = std::process::Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Polls `check` every 100 ms until it is true, for `limit` at most.
fn wait_until(what: &str, limit: Duration, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Several instances on one ledger (an SQLite file; a PostgreSQL database when the test server
/// is there): a batch whose `rp batch run` was killed is resumed by an `rp serve`, that
/// instance is killed mid-batch, and the other finishes it. Every row is paid once, every
/// payout settled by the reconcilers.
#[test]
fn two_instances_share_a_batch_and_one_killed_mid_batch_leaves_nothing_undone() {
    for ledger in crate::ledgers("serve_two") {
        let sim = Sim::start();
        let rows: usize = 40;
        let mut text = String::from("phone;amount;customer_id\n");
        for row in 1..=rows {
            // Ending 1001..: no magic value, every payout succeeds.
            text.push_str(&format!(
                "+7701{:07};{};c-{row}\n",
                5_101_000 + row,
                100 + row
            ));
        }
        let file = crate::scratch_file("serve-two", "payouts.csv", &text);
        let file = file.to_str().unwrap();

        // A worker from the command line, killed: the batch is stopped, not paused.
        let mut run = sim.spawn_in(
            &ledger,
            &[
                "batch",
                "run",
                file,
                "--yes",
                "--rate",
                "10",
                "--concurrency",
                "2",
                "--lease",
                "5",
            ],
        );
        wait_until("the run pays", Duration::from_secs(30), || {
            sim.sim().payments().len() >= 5
        });
        run.kill().unwrap();
        run.wait().unwrap();
        let at_kill = sim.sim().payments().len();
        assert!(at_kill < rows, "{ledger}: killed mid-batch");

        let instance = |port: u16| {
            let listen = format!("127.0.0.1:{port}");
            sim.spawn_in(
                &ledger,
                &[
                    "serve",
                    "--listen",
                    &listen,
                    "--batch-rate",
                    "5",
                    "--batch-lease",
                    "2",
                    "--reconcile-every",
                    "1",
                    "--overdue-after",
                    "1",
                ],
            )
        };
        let free_port = || {
            std::net::TcpListener::bind("127.0.0.1:0")
                .unwrap()
                .local_addr()
                .unwrap()
                .port()
        };
        let a = instance(free_port());
        wait_until(
            "instance A resumes the batch",
            Duration::from_secs(30),
            || sim.sim().payments().len() >= at_kill + 5,
        );
        let mut b = instance(free_port());
        signal(&a, "KILL");
        let mut a = a;
        a.wait().unwrap();
        assert!(
            sim.sim().payments().len() < rows,
            "{ledger}: A killed mid-batch"
        );

        // B takes A's rows over once their lease has run out, and settles every payout.
        wait_until("the batch is done", Duration::from_secs(90), || {
            let listed = sim.rp_in(&ledger, &["batch", "list", "--json"]);
            let json: serde_json::Value =
                serde_json::from_str(&stdout(&listed)).unwrap_or_default();
            json["batches"][0]["state"] == "done"
        });
        let payments = sim.sim().payments();
        assert_eq!(
            payments.len(),
            rows,
            "{ledger}: every row paid, under one ID each"
        );
        assert!(
            payments.iter().all(|p| p.status.as_str() == "success"),
            "{ledger}: {payments:?}"
        );
        let listed = sim.rp_in(&ledger, &["batch", "list", "--json"]);
        let json: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
        assert_eq!(json["batches"][0]["success"], rows, "{json}");
        signal(&b, "TERM");
        let status = b.wait().unwrap();
        assert!(status.success(), "{ledger}: B stops cleanly");
        let _ = b.stdout.take();
    }
}

#[test]
fn api_keys_are_shown_once_never_reused_and_revoked() {
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let env = [("RP_LEDGER", ledger.as_str())];
    let added = rp_with(
        &["serve", "add-api-key", "backend", "--role", "pay"],
        &env,
        b"",
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let out = stdout(&added);
    let key = out
        .lines()
        .find_map(|l| l.strip_prefix("key (shown once): "))
        .expect("the key is printed once");
    assert!(key.starts_with("rpk_") && key.len() == 68, "{key}");
    let again = rp_with(
        &["serve", "add-api-key", "backend", "--role", "read"],
        &env,
        b"",
    );
    assert_eq!(again.status.code(), Some(2));
    assert!(
        stderr(&again).contains("never reused"),
        "{}",
        stderr(&again)
    );
    let listed = stdout(&rp_with(&["serve", "api-keys"], &env, b""));
    assert!(
        listed.starts_with("backend") && listed.contains("in use"),
        "{listed}"
    );
    assert!(!listed.contains(key), "the key is never shown again");
    let revoked = rp_with(&["serve", "revoke-api-key", "backend"], &env, b"");
    assert!(revoked.status.success(), "{}", stderr(&revoked));
    assert!(stdout(&rp_with(&["serve", "api-keys"], &env, b"")).contains("revoked"));
    let twice = rp_with(&["serve", "revoke-api-key", "backend"], &env, b"");
    assert_eq!(twice.status.code(), Some(2));
}
