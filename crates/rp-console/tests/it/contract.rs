//! Contract tests generated from the committed `OpenAPI` document: schemathesis (from PyPI,
//! installed by `cargo xtask ci` into `target/schemathesis`) sends hundreds of generated and
//! mutated requests to every operation of a real `serve` and finds no 5xx, no answer that
//! breaks the document's schemas, no undocumented status or content type.

use std::path::PathBuf;
use std::time::Duration;

use crate::api::{PAY_KEY, with_keys};

/// `RP_SCHEMATHESIS`, or the one `cargo xtask ci` installs.
fn schemathesis() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("RP_SCHEMATHESIS") {
        return Some(PathBuf::from(path));
    }
    let installed = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()?
        .join("schemathesis/bin/schemathesis");
    installed.exists().then_some(installed)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_requests_find_no_server_error_and_no_answer_off_the_schema() {
    let Some(program) = schemathesis() else {
        crate::skip(
            "the API contract tests",
            "no schemathesis (`cargo xtask ci` installs it into target/schemathesis; or set \
             RP_SCHEMATHESIS)",
        );
        return;
    };
    let server = with_keys().await;
    let run = tokio::process::Command::new(&program)
        .arg("run")
        .arg(server.url("/api/v1/openapi.json"))
        .args(["--header", &format!("Authorization: Bearer {PAY_KEY}")])
        .args([
            "--checks",
            "not_a_server_error,response_schema_conformance,status_code_conformance,content_type_conformance",
            "--max-examples",
            "15",
            // Under the key's 20 requests a second, so the operations behind it are reached.
            "--rate-limit",
            "15/s",
            "--workers",
            "1",
            "--seed",
            "20261127",
            "--max-time",
            "60",
        ])
        .env("NO_COLOR", "1")
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(Duration::from_secs(240), run)
        .await
        .expect("schemathesis finishes within 4 minutes")
        .unwrap();
    let out = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{out}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(out.contains("passed"), "{out}");
    server.stop().await;
}
