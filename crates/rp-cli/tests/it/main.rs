//! Integration tests of the `rp` binary, one module per subcommand group. Each test runs the
//! built binary, against a real simulator on loopback where it needs a Gate.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod batch_cmd;
mod batch_run;
mod crash;
mod demo;
mod gate_cmd;
mod ledger_cmd;
mod listen;
mod listen_limits;
mod listener;
mod readme;
mod review;
mod review2_batches;
mod review4;
mod review_access;
mod review_batches;
mod serve_cmd;
mod sign_cmd;
mod webhooks;

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

/// Runs `rp ARGS` with `key` in `RP_SECRET_KEY` (or none) and `stdin` as input.
pub(crate) fn rp(args: &[&str], key: Option<&str>, stdin: &[u8]) -> Output {
    let mut env = Vec::new();
    if let Some(key) = key {
        env.push(("RP_SECRET_KEY", key));
    }
    rp_with(args, &env, stdin)
}

/// Runs `rp ARGS` with exactly the `RP_*` variables in `env`, and `stdin` as input.
pub(crate) fn rp_with(args: &[&str], env: &[(&str, &str)], stdin: &[u8]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rp"));
    command
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (name, _) in std::env::vars() {
        if name.starts_with("RP_") || name == "RUST_BACKTRACE" {
            command.env_remove(name);
        }
    }
    // Every run gets a ledger of its own unless the test names one (tests run in parallel,
    // and the default ledger is in the user's home).
    if !env.iter().any(|(name, _)| *name == "RP_LEDGER") {
        command.env("RP_LEDGER", format!("sqlite:{}", fresh_ledger().display()));
    }
    command.envs(env.iter().copied());
    let mut child = command.spawn().unwrap();
    // `rp` may exit before reading its input (e.g. without a key): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin);
    child.wait_with_output().unwrap()
}

/// A path for a new ledger file under the target directory.
pub(crate) fn fresh_ledger() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("rp-cli-ledgers");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!(
        "{}-{}.db",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    for suffix in ["", "-wal", "-shm"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
    }
    path
}

pub(crate) fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

pub(crate) fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts exit status `code` and, on stderr, the payment ID line that `rp payout` prints
/// before sending, then exactly one line containing `needle`.
pub(crate) fn assert_fails_after_sending(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    let lines: Vec<&str> = err.lines().collect();
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert_eq!(
        lines.len(),
        2,
        "the ID line and one failure line expected: {err:?}"
    );
    assert!(
        lines[0].starts_with("payout ")
            && lines[0].contains("rerun it with --payment-id")
            && lines[0].contains(", project "),
        "{err:?}"
    );
    assert!(lines[1].contains(needle), "{needle:?} not in {err:?}");
}

/// Asserts exit status `code` and exactly one line on stderr containing `needle`.
pub(crate) fn assert_fails(output: &Output, code: i32, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(code), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected: {err:?}");
    assert!(err.contains(needle), "{needle:?} not in {err:?}");
    assert!(
        !err.contains("panicked") && !err.contains("backtrace"),
        "{err}"
    );
}

/// The ledgers to test on: a fresh SQLite file, and a fresh PostgreSQL database when
/// `RP_TEST_POSTGRES_URL` names a server (loudly skipped without, failing under `CI=true`).
pub(crate) fn ledgers(name: &str) -> Vec<String> {
    let mut ledgers = vec![format!("sqlite:{}", fresh_ledger().display())];
    match std::env::var("RP_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
    {
        Some(admin) => ledgers.push(fresh_postgres(&admin, name)),
        None => {
            let message = "tests on PostgreSQL skipped: RP_TEST_POSTGRES_URL is not set (cargo xtask ci sets it)";
            assert!(std::env::var_os("CI").is_none(), "{message}");
            eprintln!("\n!!! {message}\n");
        }
    }
    ledgers
}

/// A new, empty database on the test server, as a ledger URL.
pub(crate) fn fresh_postgres(admin: &str, name: &str) -> String {
    let database = format!("rp_test_{}_{}", name, std::process::id());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let (client, connection) = tokio_postgres::connect(admin, tokio_postgres::NoTls)
            .await
            .unwrap_or_else(|e| panic!("cannot reach the test PostgreSQL server: {e}"));
        let connection = tokio::spawn(connection);
        client
            .batch_execute(&format!("DROP DATABASE IF EXISTS {database}"))
            .await
            .unwrap();
        client
            .batch_execute(&format!("CREATE DATABASE {database}"))
            .await
            .unwrap();
        drop(client);
        let _ = connection.await;
    });
    let (scheme, rest) = admin.split_once("://").unwrap();
    let end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

/// Writes `contents` to a fresh file `PID-NAME` in the directory `dir` under the target
/// directory (each test module its own), and answers its path.
pub(crate) fn scratch_file(
    dir: &str,
    name: &str,
    contents: impl AsRef<[u8]>,
) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join(dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{}-{name}", std::process::id()));
    std::fs::write(&path, contents).unwrap();
    path
}
