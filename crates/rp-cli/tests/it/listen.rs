//! `rp listen`: a real callback receiver, fed signed and forged callbacks over HTTP.

use std::io::{BufRead as _, BufReader, Read as _, Write as _};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};

use rp_sign::SecretKey;
use serde_json::json;

const KEY: &str = "listen-key";

/// `rp listen` on a free port; returns the child and its address.
fn start_listener(extra: &[&str]) -> (Child, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rp"))
        .args(["listen", "--port", "0"])
        .args(extra)
        .env("RP_SECRET_KEY", KEY)
        .env_remove("RP_PROJECT_ID")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut line = String::new();
    stderr.read_line(&mut line).unwrap();
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no address in {line:?}"))
        .to_owned();
    // Keep reading stderr (warnings), so the receiver never writes to a closed pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    (child, addr)
}

/// POSTs `body` and returns the HTTP status.
fn post(addr: &str, body: &[u8]) -> u16 {
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "POST /rocketpay/callback HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .unwrap();
    stream.write_all(body).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {response:?}"))
}

/// Stops the receiver and returns everything it printed on stdout.
fn stop_and_read(mut child: Child) -> String {
    child.kill().unwrap();
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    let _ = child.wait();
    out
}

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
    let (child, addr) = start_listener(&["--project-id", "1234"]);
    let key = SecretKey::from(KEY);
    let good = rp_sign::testing::sign_callback(&callback(1234, "success"), &key).unwrap();
    assert_eq!(post(&addr, &good), 200);
    let forged =
        rp_sign::testing::sign_callback(&callback(1234, "success"), &SecretKey::from("x")).unwrap();
    assert_eq!(post(&addr, &forged), 401);
    let other = rp_sign::testing::sign_callback(&callback(99, "success"), &key).unwrap();
    assert_eq!(post(&addr, &other), 403);
    assert_eq!(post(&addr, b"{not json"), 400);
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
    let (child, addr) = start_listener(&["--json"]);
    let key = SecretKey::from(KEY);
    let good = rp_sign::testing::sign_callback(&callback(7, "decline"), &key).unwrap();
    assert_eq!(post(&addr, &good), 200);
    let out = stop_and_read(child);
    let line: serde_json::Value = serde_json::from_str(out.lines().next().unwrap()).unwrap();
    assert_eq!(line["valid"], true);
    assert_eq!(line["status"], "decline");
    assert_eq!(line["project_id"], 7);
    assert_eq!(line["phone"], "7701***4567");
}
