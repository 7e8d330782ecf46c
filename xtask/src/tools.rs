//! The programs some tests run. Debian's packages: headless Chromium for rp-console's browser
//! tests (`chromium`, `chromium-driver`) and PHP for the README's webhook receiver in PHP
//! (`php-cli`), installed with apt when missing and running as root. And schemathesis (from
//! PyPI, pinned, in a venv under the target directory) for the API's contract tests. What
//! cannot be had is named loudly (those tests then fail under `CI=true` and skip loudly
//! elsewhere).

use std::path::Path;

/// The schemathesis the contract tests run (`target/schemathesis/bin/schemathesis`).
const SCHEMATHESIS: &str = "schemathesis==4.32.5";
use std::process::Command;
use std::time::Instant;

/// The binaries the tests use, and the package of each.
const NEEDED: [(&str, &str); 3] = [
    ("/usr/bin/chromium", "chromium"),
    ("/usr/bin/chromedriver", "chromium-driver"),
    ("/usr/bin/php", "php-cli"),
];

/// Makes sure Chromium, chromedriver and PHP are there (`RP_CHROMIUM` and
/// `RP_CHROMEDRIVER` may name another browser); never fails the run by itself (the tests
/// decide what a missing program means).
pub(crate) fn ensure(root: &Path) -> Result<(), String> {
    schemathesis(root);
    debian_packages()
}

/// schemathesis in `target/schemathesis` unless an earlier run put it there (a marker
/// written last names the version).
fn schemathesis(root: &Path) {
    let dir = crate::interop::target_dir(root).join("schemathesis");
    let marker = dir.join(".installed");
    if std::fs::read_to_string(&marker).is_ok_and(|v| v == SCHEMATHESIS) {
        return;
    }
    let started = Instant::now();
    eprintln!("xtask: installing {SCHEMATHESIS} into {}", dir.display());
    let _ = std::fs::remove_dir_all(&dir);
    let venv = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&dir)
        .status();
    let pip = || {
        Command::new(dir.join("bin").join("pip"))
            .args([
                "install",
                "--quiet",
                "--disable-pip-version-check",
                SCHEMATHESIS,
            ])
            .status()
    };
    match venv.and_then(|venv| if venv.success() { pip() } else { Ok(venv) }) {
        Ok(status) if status.success() => {
            let _ = std::fs::write(&marker, SCHEMATHESIS);
            eprintln!("xtask: schemathesis installed in {:.1?}", started.elapsed());
        }
        outcome => eprintln!(
            "\n!!! xtask: could not install {SCHEMATHESIS} ({outcome:?}): the API's contract tests will fail under CI=true\n"
        ),
    }
}

/// Chromium, chromedriver and PHP from Debian's packages.
fn debian_packages() -> Result<(), String> {
    let overridden =
        std::env::var_os("RP_CHROMIUM").is_some() && std::env::var_os("RP_CHROMEDRIVER").is_some();
    let missing: Vec<&str> = NEEDED
        .iter()
        .filter(|(binary, package)| {
            let browser_elsewhere = overridden && package.starts_with("chromium");
            !(Path::new(binary).exists() || browser_elsewhere)
        })
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names = missing.join(" ");
    if !is_root() {
        eprintln!(
            "\n!!! xtask: {names} missing and this is not root: the tests that run them\n\
             !!! will FAIL under CI=true and be SKIPPED otherwise. Install them: sudo apt-get install {names}\n"
        );
        return Ok(());
    }
    let started = Instant::now();
    eprintln!("xtask: installing {names} with apt-get (browser tests, webhook receiver in PHP)");
    let mut install = vec!["install", "-y", "-qq", "--no-install-recommends"];
    install.extend(&missing);
    for args in [&["update", "-qq"][..], &install[..]] {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .map_err(|e| format!("cannot run apt-get: {e}"))?;
        if !status.success() {
            eprintln!(
                "\n!!! xtask: `apt-get {}` failed ({status}): the tests that need {names} will fail under CI=true\n",
                args.join(" ")
            );
            return Ok(());
        }
    }
    eprintln!("xtask: {names} installed in {:.1?}", started.elapsed());
    Ok(())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}
