//! Project automation, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask codegen`: regenerate the Rust tables in `crates/rp-model/src/generated/`
//!   from the data in `spec/`.
//! - `cargo xtask codegen --check`: fail if those files are stale.
//! - `cargo xtask ci`: the one gate (format, lints, codegen freshness, every test, docs).
//! - `cargo xtask interop`: the vendor's Python and Node SDKs check our signatures.
//! - `cargo xtask bench [FILTER]`: the benchmarks whose figures go into closing notes.
//! - `cargo xtask test-postgres [ARGS]`: rp-ledger's tests (or `-p PACKAGE`'s) with a
//!   throwaway PostgreSQL.
//!
//! The tests step of `ci` (and `test-postgres`) gets PostgreSQL for rp-ledger's PostgreSQL
//! tests: `RP_TEST_POSTGRES_URL` when it is set, else a throwaway cluster (`postgres.rs`)
//! that is stopped afterwards, pass or fail. When none can be had it says so loudly and runs
//! the tests anyway: they fail under `CI=true` and skip loudly elsewhere. The same for
//! the programs some tests run: Debian's Chromium and chromedriver (the console's browser
//! tests) and PHP (the webhook receiver example), installed with apt when missing and running
//! as root, and schemathesis (the API's contract tests) in a venv from PyPI (`tools.rs`).

mod codegen;
mod interop;
mod postgres;
mod tools;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  codegen            regenerate crates/rp-model/src/generated/ from spec/
  codegen --check    fail if the generated files are stale
  ci                 fmt check, clippy -D warnings, codegen check, all tests, docs (warnings denied),
                     interop, packaging, the verify-only consumer
  interop            the vendor SDKs (PyPI ecommpay-sdk, npm ecommpay) check our signatures
  package            cargo package the library crates in dependency order
  verify-only        build examples/verify-only and check its dependency tree; build, test and
                     document examples/payout-default (rp-payout, default features)
  bench [ARGS...]    run the benchmarks (extra ARGS go to criterion, e.g. a name filter)
  test-postgres [ARGS...]
                     rp-ledger's tests (all features) with a throwaway PostgreSQL cluster, or the
                     server of RP_TEST_POSTGRES_URL (extra ARGS go to cargo test, e.g. a filter;
                     `-p PACKAGE` tests that package instead)
";

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let root = workspace_root();
    let result = match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["codegen"] => codegen::run(&root, codegen::Mode::Write),
        ["codegen", "--check"] => codegen::run(&root, codegen::Mode::Check),
        ["ci"] => ci(&root),
        ["interop"] => interop::interop(&root),
        ["verify-only"] => verify_only(&root).and_then(|()| payout_default(&root)),
        ["package"] => CI_STEPS
            .iter()
            .find(|(name, _)| *name == "package")
            .map_or(Ok(()), |(_, action)| run_action(&root, action)),
        ["bench", rest @ ..] => bench(&root, rest),
        ["test-postgres", rest @ ..] => {
            // rp-ledger's tests unless the arguments name the package.
            let named = rest
                .iter()
                .any(|a| *a == "-p" || a.starts_with("--package"));
            let mut args = vec!["test", "--all-features"];
            if !named {
                args.extend(["-p", "rp-ledger"]);
            }
            args.extend(rest.iter().copied());
            cargo_with_postgres(&root, &args)
        }
        ["help" | "--help" | "-h"] => {
            print!("{USAGE}");
            Ok(())
        }
        _ => Err(format!("unknown command `{}`\n\n{USAGE}", args.join(" "))),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("xtask: {message}");
            ExitCode::FAILURE
        }
    }
}

/// The workspace root: the parent of this crate's manifest directory.
pub(crate) fn workspace_root() -> PathBuf {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest.parent().unwrap_or(manifest).to_path_buf()
}

fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// What one step of `cargo xtask ci` runs.
enum Action {
    /// `cargo ARGS` with extra environment variables.
    Cargo(
        &'static [&'static str],
        &'static [(&'static str, &'static str)],
    ),
    /// `cargo xtask codegen --check`, in process.
    CodegenCheck,
    /// `cargo xtask interop`, in process.
    Interop,
    /// `examples/verify-only`: built and run outside the workspace, its dependency tree
    /// checked; and `examples/payout-default`, rp-payout with default features, built with
    /// its docs.
    VerifyOnly,
    /// `cargo doc --no-deps` per crate and feature (see [`DOC_RUNS`]).
    Docs,
    /// Chromium, chromedriver, PHP and schemathesis for the console's browser, webhook and
    /// contract tests (`tools.rs`).
    Tools,
    /// `cargo ARGS` with `RP_TEST_POSTGRES_URL` pointing at a PostgreSQL server (see
    /// [`cargo_with_postgres`]).
    CargoWithPostgres(&'static [&'static str]),
}

/// The steps of `cargo xtask ci`, in order: cheap checks first.
const CI_STEPS: &[(&str, Action)] = &[
    (
        "format",
        Action::Cargo(&["fmt", "--all", "--", "--check"], &[]),
    ),
    (
        "clippy",
        Action::Cargo(
            &[
                "clippy",
                "--workspace",
                "--all-targets",
                "--all-features",
                "--",
                "-D",
                "warnings",
            ],
            &[],
        ),
    ),
    ("codegen freshness", Action::CodegenCheck),
    ("test tools (Chromium, PHP, schemathesis)", Action::Tools),
    (
        "tests",
        Action::CargoWithPostgres(&["test", "--workspace", "--all-features"]),
    ),
    ("interop (vendor SDKs)", Action::Interop),
    (
        // Dependency order; `--no-verify`: verifying would compile every dependency again
        // (aws-lc-sys included) in a separate target directory, minutes on 2 cores, and the
        // steps above already build these exact sources. Needs the crates.io index.
        "package",
        Action::Cargo(
            &[
                "package",
                "--no-verify",
                "--allow-dirty",
                "-p",
                "rp-model",
                "-p",
                "rp-sign",
                "-p",
                "rp-transport",
                "-p",
                "rp-payout",
                "-p",
                "rp-sim",
            ],
            &[],
        ),
    ),
    ("verify-only consumer", Action::VerifyOnly),
    ("docs", Action::Docs),
];

/// The `cargo doc --no-deps` runs of the docs step, warnings denied: the whole workspace with
/// every feature, then each library crate with its default features and with each feature on
/// its own (a merchant's crate builds our docs with the features it enables, and an intra-doc
/// link to a feature-gated item breaks the others). Cheap: no dependency is documented.
const DOC_RUNS: &[&[&str]] = &[
    &["--workspace", "--all-features"],
    &["-p", "rp-payout"],
    &[
        "-p",
        "rp-payout",
        "--no-default-features",
        "--features",
        "axum",
    ],
    &[
        "-p",
        "rp-payout",
        "--no-default-features",
        "--features",
        "test-util",
    ],
    &[
        "-p",
        "rp-payout",
        "--no-default-features",
        "--features",
        "failpoints",
    ],
    &["-p", "rp-transport"],
    &["-p", "rp-transport", "--features", "test-util"],
    &["-p", "rp-ledger"],
    &[
        "-p",
        "rp-ledger",
        "--no-default-features",
        "--features",
        "postgres",
    ],
    &["-p", "rp-sim", "--no-default-features"],
];

/// Runs every [`DOC_RUNS`] entry with `RUSTDOCFLAGS=-D warnings`; names the run that failed.
fn docs(root: &Path) -> Result<(), String> {
    for run in DOC_RUNS {
        eprintln!("docs: cargo doc --no-deps {}", run.join(" "));
        let status = cargo()
            .current_dir(root)
            .args(["doc", "--no-deps"])
            .args(*run)
            .env("RUSTDOCFLAGS", "-D warnings")
            .status()
            .map_err(|e| format!("cannot start cargo: {e}"))?;
        if !status.success() {
            return Err(format!(
                "`cargo doc --no-deps {}` exited with {status}",
                run.join(" ")
            ));
        }
    }
    Ok(())
}

fn run_action(root: &Path, action: &Action) -> Result<(), String> {
    match action {
        Action::CodegenCheck => codegen::run(root, codegen::Mode::Check),
        Action::Interop => interop::interop(root),
        Action::VerifyOnly => verify_only(root).and_then(|()| payout_default(root)),
        Action::Docs => docs(root),
        Action::Tools => tools::ensure(root),
        Action::CargoWithPostgres(args) => cargo_with_postgres(root, args),
        Action::Cargo(args, env) => {
            let status = cargo()
                .current_dir(root)
                .args(*args)
                .envs(env.iter().copied())
                .status()
                .map_err(|e| format!("cannot start cargo: {e}"))?;
            if status.success() {
                Ok(())
            } else {
                Err(format!("`cargo {}` exited with {status}", args.join(" ")))
            }
        }
    }
}

/// Runs `cargo ARGS` with `RP_TEST_POSTGRES_URL` set: kept when the caller set it, else the
/// URL of a throwaway cluster, stopped afterwards whatever the tests did. When no cluster can
/// be started, says why loudly and runs the tests without one (rp-ledger's PostgreSQL tests
/// then fail under `CI=true` and skip loudly elsewhere).
fn cargo_with_postgres(root: &Path, args: &[&str]) -> Result<(), String> {
    let cluster = postgres_for(root);
    let mut command = cargo();
    command.current_dir(root).args(args);
    if let Some(cluster) = &cluster {
        command.env("RP_TEST_POSTGRES_URL", cluster.url());
    }
    let status = command.status();
    drop(cluster);
    let status = status.map_err(|e| format!("cannot start cargo: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("`cargo {}` exited with {status}", args.join(" ")))
    }
}

/// A throwaway PostgreSQL cluster, unless `RP_TEST_POSTGRES_URL` names a server (then
/// `None`, and that server is used); `None` too, loudly, when none can be started.
fn postgres_for(root: &Path) -> Option<postgres::Cluster> {
    let given = std::env::var("RP_TEST_POSTGRES_URL").is_ok_and(|url| !url.trim().is_empty());
    if given {
        eprintln!("xtask: PostgreSQL tests use the server of RP_TEST_POSTGRES_URL");
        None
    } else {
        let started = Instant::now();
        match postgres::Cluster::start(root) {
            Ok(cluster) => {
                eprintln!(
                    "xtask: started a throwaway PostgreSQL at {} in {:.1?}",
                    cluster.url(),
                    started.elapsed()
                );
                Some(cluster)
            }
            Err(why) => {
                eprintln!(
                    "\n!!! xtask: NO PostgreSQL for the tests: {why}\n\
                     !!! rp-ledger's PostgreSQL tests will FAIL under CI=true and be SKIPPED otherwise.\n\
                     !!! Install the server binaries (apt-get install postgresql-15) or set\n\
                     !!! RP_TEST_POSTGRES_URL=postgres://USER:PASSWORD@HOST:PORT/postgres (a server where the tests may create databases).\n"
                );
                None
            }
        }
    }
}

fn ci(root: &Path) -> Result<(), String> {
    let total = Instant::now();
    let count = CI_STEPS.len();
    for (index, (name, action)) in CI_STEPS.iter().enumerate() {
        eprintln!("\n==> ci step {}/{count}: {name}", index + 1);
        let started = Instant::now();
        run_action(root, action)
            .map_err(|e| format!("ci FAILED at step {}/{count} `{name}`: {e}", index + 1))?;
        eprintln!("==> {name} passed in {:.1?}", started.elapsed());
    }
    eprintln!(
        "\n==> ci passed: all {count} steps in {:.1?}",
        total.elapsed()
    );
    Ok(())
}

/// Crates that must not be in the tree of a consumer of rp-sign and rp-model alone.
const HEAVY_CRATES: &[&str] = &[
    "tokio",
    "reqwest",
    "axum",
    "hyper",
    "sqlx",
    "diesel",
    "rusqlite",
    "postgres",
    "tokio-postgres",
    "mysql",
    "redis",
    "sled",
    "mongodb",
    "sea-orm",
];

/// Builds and runs `examples/verify-only` (its own workspace, its own target directory) and
/// checks its dependency tree.
fn verify_only(root: &Path) -> Result<(), String> {
    let dir = root.join("examples").join("verify-only");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| root.join("target"), PathBuf::from)
        .join("verify-only");
    let status = cargo()
        .current_dir(&dir)
        .args(["run", "--quiet"])
        .env("CARGO_TARGET_DIR", &target)
        .env_remove("RP_SECRET_KEY")
        .status()
        .map_err(|e| format!("cannot start cargo: {e}"))?;
    if !status.success() {
        return Err(format!("examples/verify-only failed: {status}"));
    }
    let tree = cargo()
        .current_dir(&dir)
        .args([
            "tree",
            "--prefix",
            "none",
            "-e",
            "normal,build",
            "--format",
            "{p} {f}",
        ])
        .output()
        .map_err(|e| format!("cannot start cargo tree: {e}"))?;
    if !tree.status.success() {
        return Err(format!(
            "cargo tree failed: {}",
            String::from_utf8_lossy(&tree.stderr)
        ));
    }
    let tree = String::from_utf8_lossy(&tree.stdout);
    let mut found: Vec<String> = tree
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .filter(|name| HEAVY_CRATES.contains(name))
        .map(str::to_owned)
        .collect();
    found.dedup();
    if !found.is_empty() {
        return Err(format!(
            "examples/verify-only depends on {}",
            found.join(", ")
        ));
    }
    // serde_json's program-wide features must not be forced on the consumer either.
    let forced: Vec<&str> = tree
        .lines()
        .filter(|line| line.starts_with("serde_json "))
        .flat_map(|line| line.split(&[' ', ','][..]))
        .filter(|f| {
            matches!(
                *f,
                "preserve_order" | "float_roundtrip" | "arbitrary_precision"
            )
        })
        .collect();
    if !forced.is_empty() {
        return Err(format!(
            "examples/verify-only gets serde_json features {forced:?} forced on it"
        ));
    }
    eprintln!(
        "verify-only: {} crates, none async, no HTTP, no database, no serde_json feature forced",
        tree.lines().count()
    );
    Ok(())
}

/// Builds `examples/payout-default` (its own workspace, rp-payout with default features), runs
/// its tests, and documents it and our crates as it enables them (default features), warnings
/// denied: what a merchant's crate does first.
fn payout_default(root: &Path) -> Result<(), String> {
    let dir = root.join("examples").join("payout-default");
    // The workspace's target directory: the dependencies it shares with the tests step are
    // not built again.
    let target =
        std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from);
    let doc = [
        "doc",
        "--quiet",
        "--no-deps",
        "-p",
        "payout-default",
        "-p",
        "rp-payout",
        "-p",
        "rp-transport",
        "-p",
        "rp-model",
        "-p",
        "rp-sign",
    ];
    for args in [&["test", "--quiet"][..], &doc[..]] {
        let status = cargo()
            .current_dir(&dir)
            .args(args)
            .env("CARGO_TARGET_DIR", &target)
            .env("RUSTDOCFLAGS", "-D warnings")
            .env_remove("RP_SECRET_KEY")
            .status()
            .map_err(|e| format!("cannot start cargo: {e}"))?;
        if !status.success() {
            return Err(format!(
                "examples/payout-default: `cargo {}` failed: {status}",
                args.join(" ")
            ));
        }
    }
    eprintln!("payout-default: built, tested and documented against rp-payout's default features");
    Ok(())
}

/// Benchmarks: `(package, bench target)`. `rp-sign/sign` is criterion (signing and verifying
/// against the raw HMAC floor); `rp-e2e/throughput` is payouts per second through the client
/// and the simulator, callbacks included, with peak memory; `rp-batch/check` is
/// `rp batch check` rows per second and peak memory on generated 100,000- and
/// 1,000,000-row files; `rp-e2e/batch_run` is `rp batch run` of a 100,000-row file with an
/// SQLite ledger against the simulator, rows per second and peak memory (these two ignore
/// criterion's arguments).
const BENCHES: &[(&str, &str)] = &[
    ("rp-sign", "sign"),
    ("rp-e2e", "throughput"),
    ("rp-e2e", "api"),
    ("rp-batch", "check"),
    ("rp-e2e", "batch_run"),
];

fn bench(root: &Path, extra: &[&str]) -> Result<(), String> {
    // `cargo xtask bench -- --measurement-time 3` and `cargo xtask bench --measurement-time 3`
    // mean the same.
    let extra = match extra {
        ["--", rest @ ..] => rest,
        _ => extra,
    };
    for (package, target) in BENCHES {
        eprintln!("\n==> bench {package}/{target}");
        // The batch-run bench runs the simulator as a process of its own.
        if *target == "batch_run" {
            let status = cargo()
                .current_dir(root)
                .args(["build", "--release", "-p", "rp-sim", "--features", "cli"])
                .status()
                .map_err(|e| format!("cannot start cargo: {e}"))?;
            if !status.success() {
                return Err(format!("building the simulator failed: {status}"));
            }
        }
        let mut command = cargo();
        command
            .current_dir(root)
            .args(["bench", "--package", package, "--bench", target, "--"])
            .args(extra);
        // The throughput bench runs a PostgreSQL ledger beside memory and SQLite; the
        // cluster lives as long as that bench.
        let cluster = (*target == "throughput")
            .then(|| postgres_for(root))
            .flatten();
        if let Some(cluster) = &cluster {
            command.env("RP_TEST_POSTGRES_URL", cluster.url());
        }
        let status = command
            .status()
            .map_err(|e| format!("cannot start cargo: {e}"))?;
        if !status.success() {
            return Err(format!("bench {package}/{target} failed: {status}"));
        }
    }
    Ok(())
}
