//! `rp listen`: a real callback receiver, fed signed and forged callbacks over HTTP.

use rp_sign::SecretKey;
use serde_json::json;

use crate::listener::{post_callback, spawn_listen, stop_and_read};

const KEY: &str = "listen-key";

fn callback(project: u64, status: &str) -> serde_json::Value {
    json!({
        "project_id": project,
        "payment": {"id": "p-1", "type": "payout", "status": status},
        "account": {"number": "77011234567", "type": "KCELL"},
        "operation": {"id": 1, "status": status, "code": "0", "message": "Success"}
    })
}

#[test]
fn verifies_prints_and_answers() {
    let (child, addr) = spawn_listen(&["--project-id", "1234"], KEY, &[]);
    let key = SecretKey::from(KEY);
    let good = rp_sign::testing::sign_callback(&callback(1234, "success"), &key).unwrap();
    assert_eq!(post_callback(&addr, &good), 200);
    let forged =
        rp_sign::testing::sign_callback(&callback(1234, "success"), &SecretKey::from("x")).unwrap();
    assert_eq!(post_callback(&addr, &forged), 401);
    let other = rp_sign::testing::sign_callback(&callback(99, "success"), &key).unwrap();
    assert_eq!(post_callback(&addr, &other), 403);
    assert_eq!(post_callback(&addr, b"{not json"), 400);
    let out = stop_and_read(child);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("200 callback: payment p-1 is success, code 0 Success, to 7701***4567 (Kcell); signature valid"), "{out}");
    assert!(lines[1].starts_with("401 rejected:"), "{out}");
    assert!(
        lines[2].contains("403 rejected: signed, but for project 99 (expected 1234)"),
        "{out}"
    );
    assert!(lines[3].starts_with("400 rejected:"), "{out}");
    assert!(
        !out.contains("77011234567"),
        "phone numbers are masked: {out}"
    );
}

#[test]
fn json_lines_for_scripts() {
    let (child, addr) = spawn_listen(&["--json"], KEY, &[]);
    let key = SecretKey::from(KEY);
    let good = rp_sign::testing::sign_callback(&callback(7, "decline"), &key).unwrap();
    assert_eq!(post_callback(&addr, &good), 200);
    let out = stop_and_read(child);
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["valid"], true);
    assert_eq!(line["status"], "decline");
    assert_eq!(line["project_id"], 7);
    assert_eq!(line["phone"], "7701***4567");
}
