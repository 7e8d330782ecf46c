//! The README's quick start, run as written: the block that starts `rp sim` and `rp listen` in
//! the background, pays out to a magic number and stops them, with only the binary's path and
//! two free ports put in.

use std::process::Command;

/// A port nothing listens on now.
fn free_port() -> String {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
        .to_string()
}

#[test]
fn the_readme_quick_start_runs_as_written() {
    let readme = include_str!("../../../../README.md");
    let block = readme
        .split("```sh\n")
        .skip(1)
        .filter_map(|rest| rest.split("\n```").next())
        .find(|block| block.contains("-- sim --listen"))
        .expect("the README has the quick-start block");
    let script = block
        .replace("cargo run -p rp-cli --", env!("CARGO_BIN_EXE_rp"))
        .replace("8080", &free_port())
        .replace("9000", &free_port());
    let home = crate::fresh_ledger().with_extension("readme-home");
    std::fs::create_dir_all(&home).unwrap();
    let output = Command::new("bash")
        .args(["-c", &script])
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .env_remove("RP_LEDGER")
        .env_remove("RP_BASE_URL")
        .env_remove("RP_PROJECT_ID")
        .output()
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(out.contains("accepted: payout"), "{out}\n{err}");
    assert!(out.contains("decline (final)"), "{out}\n{err}");
    assert!(
        out.contains("exit status 1"),
        "the README promises exit 1: {out}\n{err}"
    );
    assert!(
        !out.contains("77011230001"),
        "the phone number is masked: {out}"
    );
}
