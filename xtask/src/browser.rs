//! Headless Chromium for rp-console's browser tests: Debian's `chromium` and
//! `chromium-driver`. Installed with apt when missing and running as root; otherwise the
//! missing binaries are named loudly (the browser tests then fail under `CI=true` and skip
//! loudly elsewhere).

use std::path::Path;
use std::process::Command;
use std::time::Instant;

/// The binaries the tests use (unless `RP_CHROMIUM` / `RP_CHROMEDRIVER` name others).
const BINARIES: [&str; 2] = ["/usr/bin/chromium", "/usr/bin/chromedriver"];

/// Makes sure Chromium and chromedriver are there; never fails the run by itself (the tests
/// decide what a missing browser means).
pub(crate) fn ensure() -> Result<(), String> {
    let overridden =
        std::env::var_os("RP_CHROMIUM").is_some() && std::env::var_os("RP_CHROMEDRIVER").is_some();
    if overridden || BINARIES.iter().all(|b| Path::new(b).exists()) {
        return Ok(());
    }
    if !is_root() {
        eprintln!(
            "\n!!! xtask: Chromium or chromedriver is missing and this is not root: the console's browser tests\n\
             !!! will FAIL under CI=true and be SKIPPED otherwise. Install them: sudo apt-get install chromium chromium-driver\n"
        );
        return Ok(());
    }
    let started = Instant::now();
    eprintln!(
        "xtask: installing chromium and chromium-driver with apt-get (the console's browser tests)"
    );
    for args in [
        &["update", "-qq"][..],
        &[
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "chromium",
            "chromium-driver",
        ][..],
    ] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !status.success() {
            eprintln!(
                "\n!!! xtask: `apt-get {}` failed ({status}): the browser tests will fail under CI=true\n",
                args.join(" ")
            );
            return Ok(());
        }
    }
    eprintln!("xtask: chromium installed in {:.1?}", started.elapsed());
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
