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
    let env = [("RP_LEDGER", ledger.as_str()), ("RP_PROJECT_ID", "1234")];
    let added = rp_with(
        &["serve", "add-operator", "anna", "--role", "pay"],
        &env,
        b"",
    );
    assert!(added.status.success(), "{}", stderr(&added));
    let out = stdout(&added);
    assert!(
        out.contains("operator anna (pay) added for project 1234"),
        "{out}"
    );
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
            ("RP_PROJECT_ID", "1234"),
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
    // Another project on the same ledger has operators of its own.
    let other = [("RP_LEDGER", ledger.as_str()), ("RP_PROJECT_ID", "5678")];
    let none = stdout(&rp_with(&["serve", "operators"], &other, b""));
    assert!(none.contains("no operators of project 5678"), "{none}");
    let not_there = rp_with(&["serve", "remove-operator", "anna"], &other, b"");
    assert_eq!(not_there.status.code(), Some(2), "{}", stderr(&not_there));
    let no_project = rp_with(&["serve", "operators"], &env[..1], b"");
    assert_eq!(no_project.status.code(), Some(2));
    assert!(
        stderr(&no_project).contains("no project ID"),
        "{}",
        stderr(&no_project)
    );
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
    let env = [("RP_LEDGER", ledger.as_str()), ("RP_PROJECT_ID", "1234")];
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
    // The name is project 1234's: project 5678 may use it.
    let other = [("RP_LEDGER", ledger.as_str()), ("RP_PROJECT_ID", "5678")];
    let theirs = rp_with(
        &["serve", "add-api-key", "backend", "--role", "pay"],
        &other,
        b"",
    );
    assert!(theirs.status.success(), "{}", stderr(&theirs));
    assert!(stdout(&rp_with(&["serve", "api-keys"], &other, b"")).contains("in use"));
}

/// A ledger of an rp that kept operators and keys for the whole ledger (schema 8): on a
/// ledger with payouts of one project they become that project's at the first command, said
/// on stderr; on a ledger with nothing of it yet, or with another project's data, they are
/// refused, with why and what to do, until `adopt-access` binds them.
#[test]
fn operators_and_keys_of_an_older_ledger_are_adopted() {
    for (case, project_data) in [("own", 1234), ("empty", 0), ("shared", 5678)] {
        let path = crate::fresh_ledger();
        let ledger = format!("sqlite:{}", path.display());
        let env = [("RP_LEDGER", ledger.as_str()), ("RP_PROJECT_ID", "1234")];
        // A new ledger, then its access tables as schema 8 had them.
        assert!(rp_with(&["serve", "api-keys"], &env, b"").status.success());
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TABLE project_sessions; DROP TABLE project_api_keys; DROP TABLE project_operators;
             CREATE TABLE operators (name TEXT NOT NULL PRIMARY KEY, password_hash TEXT NOT NULL,
                 role TEXT NOT NULL, totp_secret TEXT, updated_at INTEGER NOT NULL);
             CREATE TABLE sessions (token_sha256 TEXT NOT NULL PRIMARY KEY,
                 operator TEXT NOT NULL REFERENCES operators (name), csrf TEXT NOT NULL,
                 created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
             CREATE TABLE api_keys (name TEXT NOT NULL PRIMARY KEY,
                 key_sha256 TEXT NOT NULL UNIQUE, role TEXT NOT NULL,
                 created_at INTEGER NOT NULL, revoked_at INTEGER);
             INSERT INTO operators VALUES ('anna', '$argon2id$v=19$h', 'pay', NULL, 5);
             INSERT INTO api_keys VALUES ('backend', 'ab', 'pay', 7, NULL);
             PRAGMA user_version = 8;",
        )
        .unwrap();
        if project_data > 0 {
            // The project's webhook endpoint: data of its own in the ledger.
            conn.execute(
                "INSERT INTO webhook_endpoints (project_id, url, secret, created_at) \
                 VALUES (?1, 'https://example.kz/h', 'whsec_x', 0)",
                [project_data],
            )
            .unwrap();
        }
        drop(conn);
        let listed = rp_with(&["serve", "operators"], &env, b"");
        assert!(listed.status.success(), "{case}: {}", stderr(&listed));
        let told = stderr(&listed);
        if case == "own" {
            assert!(stdout(&listed).starts_with("anna"), "{}", stdout(&listed));
            assert!(
                told.contains("1 operator(s) and 1 API key(s) made before rp kept them per project now belong to project 1234"),
                "{told}"
            );
            continue;
        }
        assert!(
            stdout(&listed).contains("no operators"),
            "{}",
            stdout(&listed)
        );
        let why = if case == "empty" {
            "holds no payout of project 1234 yet"
        } else {
            "holds other projects' data too"
        };
        assert!(
            told.contains("belong to no project and are refused")
                && told.contains(why)
                && told.contains("rp serve adopt-access")
                && told.contains("rp serve remove-unbound-access"),
            "{case}: {told}"
        );
        let adopted = rp_with(&["serve", "adopt-access"], &env, b"");
        assert!(adopted.status.success(), "{}", stderr(&adopted));
        assert!(
            stdout(&adopted).contains("1 operator(s) and 1 API key(s) bound to project 1234"),
            "{}",
            stdout(&adopted)
        );
        let listed = rp_with(&["serve", "api-keys"], &env, b"");
        assert!(
            stdout(&listed).starts_with("backend"),
            "{}",
            stdout(&listed)
        );
        assert!(!stderr(&listed).contains("refused"), "{}", stderr(&listed));
    }
}

/// The project's one callback URL in front of two instances, as a load balancer that sends a
/// callback anywhere: each goes to the instance that did **not** create the payout (payment
/// IDs `cross-a-…` are created on A, `cross-b-…` on B). Logs `(payment ID, instance, status)`.
struct Crossing {
    url: String,
    log: std::sync::Arc<std::sync::Mutex<Vec<(String, char, u16)>>>,
}

impl Crossing {
    fn start(a: u16, b: u16) -> Crossing {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!(
            "http://{}/rocketpay/callback",
            listener.local_addr().unwrap()
        );
        let log = std::sync::Arc::default();
        let shared = std::sync::Arc::clone(&log);
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let log = std::sync::Arc::clone(&shared);
                std::thread::spawn(move || {
                    let _ = Crossing::forward(stream, a, b, &log);
                });
            }
        });
        Crossing { url, log }
    }

    /// One request from the simulator, passed on with `Connection: close` to the other
    /// instance; its answer passed back.
    fn forward(
        mut client: TcpStream,
        a: u16,
        b: u16,
        log: &std::sync::Mutex<Vec<(String, char, u16)>>,
    ) -> std::io::Result<()> {
        client.set_read_timeout(Some(Duration::from_secs(10)))?;
        let mut buffer = Vec::new();
        let mut chunk = [0u8; 4096];
        let head_end = loop {
            let n = client.read(&mut chunk)?;
            if n == 0 {
                return Ok(());
            }
            buffer.extend_from_slice(&chunk[..n]);
            if let Some(i) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break i + 4;
            }
        };
        let head = String::from_utf8_lossy(&buffer[..head_end]).into_owned();
        let length: usize = head
            .lines()
            .find_map(|line| {
                let (name, value) = line.split_once(':')?;
                name.eq_ignore_ascii_case("content-length")
                    .then(|| value.trim().parse().ok())?
            })
            .unwrap_or(0);
        while buffer.len() < head_end + length {
            let n = client.read(&mut chunk)?;
            if n == 0 {
                break;
            }
            buffer.extend_from_slice(&chunk[..n]);
        }
        let body = &buffer[head_end..(head_end + length).min(buffer.len())];
        let text = String::from_utf8_lossy(body);
        let start = text.find("cross-").unwrap_or(0);
        let payment_id = text[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned();
        let (to, port) = if payment_id.starts_with("cross-a-") {
            ('B', b)
        } else {
            ('A', a)
        };
        let kept: Vec<&str> = head
            .trim_end()
            .split("\r\n")
            .filter(|line| !line.to_ascii_lowercase().starts_with("connection:"))
            .collect();
        let mut upstream = TcpStream::connect(("127.0.0.1", port))?;
        write!(
            upstream,
            "{}\r\nConnection: close\r\n\r\n",
            kept.join("\r\n")
        )?;
        upstream.write_all(body)?;
        let mut answer = Vec::new();
        upstream.read_to_end(&mut answer)?;
        let status = String::from_utf8_lossy(&answer)
            .split(' ')
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        log.lock().unwrap().push((payment_id, to, status));
        client.write_all(&answer)
    }
}

/// `POST path` on `addr` with a JSON body and an API key, over a plain socket: the answer.
fn post_json(addr: &str, path: &str, key: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    write!(
        stream,
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

/// A new API key of role `pay` on `ledger`, as `rp serve add-api-key` prints it once.
fn add_pay_key(sim: &Sim, ledger: &str) -> String {
    let added = sim.rp_in(
        ledger,
        &["serve", "add-api-key", "backend", "--role", "pay"],
    );
    assert!(added.status.success(), "{}", stderr(&added));
    stdout(&added)
        .lines()
        .find_map(|line| line.strip_prefix("key (shown once): "))
        .unwrap()
        .to_owned()
}

/// `rp serve` on `ledger` at 127.0.0.1:`port`, without its reconciler and batch worker, once
/// it answers its health check.
fn serve_api(sim: &Sim, ledger: &str, port: u16) -> std::process::Child {
    let listen = format!("127.0.0.1:{port}");
    let child = sim.spawn_in(
        ledger,
        &[
            "serve",
            "--listen",
            &listen,
            "--reconcile-every",
            "0",
            "--no-batch-worker",
        ],
    );
    wait_until("rp serve answers", Duration::from_secs(20), || {
        get(&listen, "/healthz").is_some_and(|a| a.starts_with("HTTP/1.1 200"))
    });
    child
}

/// Two instances on one ledger (an SQLite file; a PostgreSQL database when the test server is
/// there), the callbacks of each one's payouts delivered to the other: every payout is paid
/// once, ends final in the shared ledger, and its callback is recorded once, by the instance
/// that did not send it. The reconcilers are off, so only the callbacks settle the payouts.
#[test]
fn callbacks_of_one_instances_payouts_are_applied_by_the_other() {
    const EACH: usize = 8;
    for ledger in crate::ledgers("serve_cross") {
        let (port_a, port_b) = (free_port(), free_port());
        let crossing = Crossing::start(port_a, port_b);
        let url = crossing.url.clone();
        let sim = Sim::start_built(move |builder| builder.callback_url(url));
        let key = add_pay_key(&sim, &ledger);
        let (mut a, mut b) = (
            serve_api(&sim, &ledger, port_a),
            serve_api(&sim, &ledger, port_b),
        );
        let (addr_a, addr_b) = (format!("127.0.0.1:{port_a}"), format!("127.0.0.1:{port_b}"));

        // Payouts to A and to B, interleaved.
        let mut ids = Vec::new();
        for n in 1..=EACH {
            for (name, addr) in [('a', &addr_a), ('b', &addr_b)] {
                let id = format!("cross-{name}-{n:02}");
                let body = format!(
                    r#"{{"payment_id": "{id}", "phone": "+7 701 {:07}", "amount": "{}", "customer": {{"id": "c-{id}"}}}}"#,
                    5_201_000 + n,
                    100 + n
                );
                let answer = post_json(addr, "/api/v1/payouts", &key, &body);
                assert!(answer.starts_with("HTTP/1.1 202"), "{ledger}: {answer}");
                ids.push(id);
            }
        }
        wait_until("every payout is final", Duration::from_secs(60), || {
            let listed = sim.rp_in(&ledger, &["payouts", "list", "--json", "--limit", "100"]);
            let json: serde_json::Value =
                serde_json::from_str(&stdout(&listed)).unwrap_or_default();
            json["payouts"].as_array().is_some_and(|all| {
                all.len() == ids.len() && all.iter().all(|p| p["state"] == "success")
            })
        });

        // Paid once each, its callback delivered once, to the other instance, answered 200.
        let payments = sim.sim().payments();
        assert_eq!(payments.len(), ids.len(), "{ledger}: {payments:?}");
        let log = crossing.log.lock().unwrap().clone();
        for id in &ids {
            assert_eq!(sim.payout_requests(id), 1, "{ledger}: {id} sent once");
            let delivered: Vec<_> = log.iter().filter(|(p, _, _)| p == id).collect();
            let other = if id.starts_with("cross-a-") { 'B' } else { 'A' };
            assert_eq!(delivered.len(), 1, "{ledger}: {id}: {log:?}");
            assert_eq!(
                (delivered[0].1, delivered[0].2),
                (other, 200),
                "{ledger}: {id}"
            );
            let shown = sim.rp_in(&ledger, &["payouts", "show", id, "--json"]);
            let json: serde_json::Value = serde_json::from_str(&stdout(&shown)).unwrap();
            assert_eq!(json["state"], "success", "{ledger}: {json}");
            let events = json["events"].as_array().unwrap();
            let callbacks = events.iter().filter(|e| e["source"] == "callback").count();
            assert_eq!(
                callbacks, 1,
                "{ledger}: {id}'s callback recorded once: {json}"
            );
            assert_eq!(
                events.iter().filter(|e| e["state"] == "success").count(),
                1,
                "{ledger}: {id} became final once: {json}"
            );
        }
        let callbacks = sim.sim().callbacks();
        assert_eq!(
            callbacks.len(),
            ids.len(),
            "{ledger}: no callback redelivered"
        );

        for child in [&a, &b] {
            signal(child, "TERM");
        }
        for (name, child) in [("A", &mut a), ("B", &mut b)] {
            let status = child.wait().unwrap();
            assert!(status.success(), "{ledger}: {name} stops cleanly");
        }
    }
}

/// A batch row with the very details of a payout made through the API with the merchant's
/// metadata is not that payout: `rp batch run` stops before the confirmation, naming the row,
/// and its last line says that the row's payee may be paid already (not that the payment ID
/// is another payout's, which would invite paying them under a new one).
#[test]
fn a_row_matching_an_api_payout_with_metadata_is_told_to_check_it() {
    let ledger = format!("sqlite:{}", crate::fresh_ledger().display());
    let sim = Sim::start();
    let key = add_pay_key(&sim, &ledger);
    let port = free_port();
    let listen = format!("127.0.0.1:{port}");
    let mut serve = serve_api(&sim, &ledger, port);
    let answer = post_json(
        &listen,
        "/api/v1/payouts",
        &key,
        r#"{"payment_id": "meta-1", "phone": "+7 701 123 70 01", "amount": "1000",
            "customer": {"id": "c-1"}, "metadata": {"order": 7}}"#,
    );
    assert!(answer.starts_with("HTTP/1.1 202"), "{answer}");
    signal(&serve, "TERM");
    assert!(serve.wait().unwrap().success(), "rp serve stops cleanly");

    let file = crate::batch_run::file(
        "meta.csv",
        "payment_id,phone,amount,customer_id\n\
         meta-1,87011237001,1000,c-1\nfresh-2,87011237002,1000,c-2\n",
    );
    let run = sim.rp_in(&ledger, &["batch", "run", file.to_str().unwrap(), "--yes"]);
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert!(
        stdout(&run).contains("line 2") && stdout(&run).contains("rp status meta-1"),
        "the row is named, with what to check: {}",
        stdout(&run)
    );
    let last = stderr(&run);
    assert!(
        last.contains("1 row(s) are a payout the ledger holds with the merchant's metadata")
            && last.contains("may be paid already")
            && !last.contains("different payout"),
        "{last}"
    );
    assert_eq!(
        sim.sim().payments().len(),
        1,
        "only the API's payout was sent"
    );
}
