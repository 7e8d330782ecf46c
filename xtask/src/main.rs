//! Project automation, run as `cargo xtask <command>` (an alias in `.cargo/config.toml`).
//!
//! - `cargo xtask codegen`: regenerate the Rust tables in `crates/rp-model/src/generated/`
//!   from the data in `spec/`.
//! - `cargo xtask codegen --check`: fail if those files are stale.
//! - `cargo xtask ci`: the one gate (format, lints, codegen freshness, every test, docs).
//! - `cargo xtask bench [FILTER]`: the benchmarks whose figures go into closing notes.

mod codegen;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

const USAGE: &str = "\
usage: cargo xtask <command>

commands:
  codegen            regenerate crates/rp-model/src/generated/ from spec/
  codegen --check    fail if the generated files are stale
  ci                 fmt check, clippy -D warnings, codegen check, all tests, docs (warnings denied)
  bench [ARGS...]    run the benchmarks (extra ARGS go to criterion, e.g. a name filter)
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
        ["bench", rest @ ..] => bench(&root, rest),
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
    (
        "tests",
        Action::Cargo(&["test", "--workspace", "--all-features"], &[]),
    ),
    (
        "docs",
        Action::Cargo(
            &["doc", "--workspace", "--no-deps", "--all-features"],
            &[("RUSTDOCFLAGS", "-D warnings")],
        ),
    ),
];

fn run_action(root: &Path, action: &Action) -> Result<(), String> {
    match action {
        Action::CodegenCheck => codegen::run(root, codegen::Mode::Check),
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

/// Benchmarks: `(package, bench target)`. `rp-sign/sign` is criterion (signing and verifying
/// against the raw HMAC floor); `rp-e2e/throughput` is payouts per second through the client
/// and the simulator, callbacks included, with peak memory.
const BENCHES: &[(&str, &str)] = &[("rp-sign", "sign"), ("rp-e2e", "throughput")];

fn bench(root: &Path, extra: &[&str]) -> Result<(), String> {
    // `cargo xtask bench -- --measurement-time 3` and `cargo xtask bench --measurement-time 3`
    // mean the same.
    let extra = match extra {
        ["--", rest @ ..] => rest,
        _ => extra,
    };
    for (package, target) in BENCHES {
        eprintln!("\n==> bench {package}/{target}");
        let status = cargo()
            .current_dir(root)
            .args(["bench", "--package", package, "--bench", target, "--"])
            .args(extra)
            .status()
            .map_err(|e| format!("cannot start cargo: {e}"))?;
        if !status.success() {
            return Err(format!("bench {package}/{target} failed: {status}"));
        }
    }
    Ok(())
}
