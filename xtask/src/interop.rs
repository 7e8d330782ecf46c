//! `cargo xtask interop`: the vendor's own SDKs check our signatures, and we check theirs.
//!
//! Installs the pinned Python SDK (`ecommpay-sdk` from PyPI, in a venv) and Node SDK
//! (`ecommpay` from npm) into `target/interop/` once (kept there for later runs), then:
//!
//! 1. `cargo run -p rp-sim --example interop -- generate`: the simulator goes through every
//!    magic value (Russian and Kazakh descriptions); every callback, signed status response
//!    and request our client signed is written out, with payloads for the SDKs to sign;
//! 2. each SDK's own `Callback` class checks every body, and its signer signs the payloads;
//! 3. `… interop -- check`: every body must be valid in both SDKs except magic `0013`'s, and
//!    where the SDKs agree on a signature, `rp sign` must print it byte for byte and rp-sign
//!    must accept the callback they signed. Disagreements between the SDKs are listed.
//!
//! Without `python3` or `node`/`npm` it fails under `CI=true` and otherwise says loudly that
//! nothing was checked.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::cargo;

/// The pinned SDK versions (change them here; the install directory is named after them).
const PYTHON_SDK: &str = "ecommpay-sdk==1.0.6";
const NODE_SDK: &str = "ecommpay@0.1.7";

const PYTHON_SCRIPT: &str = include_str!("interop/sdk_python.py");
const NODE_SCRIPT: &str = include_str!("interop/sdk_node.js");

pub(crate) fn target_dir(root: &Path) -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| root.join("target"), PathBuf::from)
}

/// Runs `command`, naming it on failure.
fn run(command: &mut Command, what: &str) -> Result<(), String> {
    let status = command
        .status()
        .map_err(|e| format!("{what}: cannot start: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("{what} failed: {status}"))
    }
}

/// Whether `program --version` runs.
fn available(program: &str) -> bool {
    Command::new(program)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

pub(crate) fn interop(root: &Path) -> Result<(), String> {
    let missing: Vec<&str> = ["python3", "node", "npm"]
        .into_iter()
        .filter(|p| !available(p))
        .collect();
    if !missing.is_empty() {
        let message = format!(
            "interop: {} not found, so the vendor SDKs could NOT check our signatures",
            missing.join(", ")
        );
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            return Err(format!("{message} (CI=true: this is a failure)"));
        }
        eprintln!(
            "\n{}\n!!! {message}.\n!!! NOTHING WAS CHECKED. Install them, or run with CI=true to make this fatal.\n{}\n",
            "!".repeat(78),
            "!".repeat(78)
        );
        return Ok(());
    }
    let base = target_dir(root).join("interop");
    let python_dir = base.join(format!("python-{}", PYTHON_SDK.replace("==", "-")));
    let node_dir = base.join(format!("node-{}", NODE_SDK.replace('@', "-")));
    install(&python_dir, &node_dir)?;

    let run_dir = base.join("run");
    if run_dir.exists() {
        std::fs::remove_dir_all(&run_dir)
            .map_err(|e| format!("cannot clear {}: {e}", run_dir.display()))?;
    }
    std::fs::create_dir_all(&run_dir)
        .map_err(|e| format!("cannot create {}: {e}", run_dir.display()))?;
    let python_script = run_dir.join("sdk_python.py");
    let node_script = run_dir.join("sdk_node.js");
    std::fs::write(&python_script, PYTHON_SCRIPT).map_err(|e| e.to_string())?;
    std::fs::write(&node_script, NODE_SCRIPT).map_err(|e| e.to_string())?;

    run(
        cargo()
            .current_dir(root)
            .args(["build", "--quiet", "-p", "rp-cli"]),
        "cargo build -p rp-cli",
    )?;
    let example = |mode: &str| {
        let mut command = cargo();
        command
            .current_dir(root)
            .args([
                "run",
                "--quiet",
                "-p",
                "rp-sim",
                "--example",
                "interop",
                "--",
                mode,
            ])
            .arg(&run_dir);
        command
    };
    run(
        &mut example("generate"),
        "the simulator corpus (rp-sim example `interop generate`)",
    )?;
    run(
        Command::new(python_dir.join("bin").join("python"))
            .arg(&python_script)
            .arg(&run_dir),
        "the Python SDK",
    )?;
    run(
        Command::new("node")
            .arg(&node_script)
            .arg(&run_dir)
            .arg(&node_dir),
        "the Node SDK",
    )?;
    let rp = target_dir(root).join("debug").join("rp");
    run(
        example("check").arg(rp),
        "the comparison (rp-sim example `interop check`)",
    )?;
    eprintln!(
        "interop: passed ({PYTHON_SDK} and {NODE_SDK}; answers in {})",
        run_dir.display()
    );
    Ok(())
}

/// Installs the pinned SDKs unless an earlier run did (a marker file is written last).
fn install(python_dir: &Path, node_dir: &Path) -> Result<(), String> {
    let python_done = python_dir.join(".installed");
    if !python_done.exists() {
        eprintln!(
            "interop: installing {PYTHON_SDK} into {}",
            python_dir.display()
        );
        let _ = std::fs::remove_dir_all(python_dir);
        run(
            Command::new("python3").args(["-m", "venv"]).arg(python_dir),
            "python3 -m venv",
        )?;
        run(
            Command::new(python_dir.join("bin").join("pip")).args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                PYTHON_SDK,
            ]),
            "pip install",
        )?;
        std::fs::write(&python_done, PYTHON_SDK).map_err(|e| e.to_string())?;
    }
    let node_done = node_dir.join(".installed");
    if !node_done.exists() {
        eprintln!("interop: installing {NODE_SDK} into {}", node_dir.display());
        let _ = std::fs::remove_dir_all(node_dir);
        std::fs::create_dir_all(node_dir).map_err(|e| e.to_string())?;
        std::fs::write(node_dir.join("package.json"), "{\"private\":true}\n")
            .map_err(|e| e.to_string())?;
        run(
            Command::new("npm").current_dir(node_dir).args([
                "install",
                "--no-audit",
                "--no-fund",
                "--silent",
                NODE_SDK,
            ]),
            "npm install",
        )?;
        std::fs::write(&node_done, NODE_SDK).map_err(|e| e.to_string())?;
    }
    Ok(())
}
