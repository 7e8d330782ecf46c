//! `rp listen` under abuse: stalled connections are closed after the read timeout while a
//! callback is still served, a body over the limit is 413, a slow body is cut off with 408, and
//! nothing refused is printed as a callback.

use std::io::{Read as _, Write as _};
use std::net::TcpStream;
use std::process::Child;
use std::time::{Duration, Instant};

use rp_sign::{SecretKey, Signer};
use serde_json::json;

use crate::listener::{spawn_listen, stop_and_read};

const KEY: &str = "listen-limits-key";
const TIMEOUT: Duration = Duration::from_millis(200);

/// `rp listen` on a free port with a `read_timeout_ms` read timeout and a 1 KiB body limit.
fn start(read_timeout_ms: u64, extra: &[&str]) -> (Child, String) {
    let timeout = read_timeout_ms.to_string();
    let mut args = vec!["--body-limit", "1024", "--read-timeout-ms", &timeout];
    args.extend_from_slice(extra);
    spawn_listen(&args, KEY, &[])
}

fn head(length: usize) -> String {
    format!(
        "POST /cb HTTP/1.1\r\nHost: merchant\r\nContent-Type: application/json\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )
}

/// Sends `request` and returns the status code, the response and how long it took.
fn exchange(addr: &str, request: &[u8]) -> (u16, String, Duration) {
    let started = Instant::now();
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text, started.elapsed())
}

fn signed_callback(payment_id: &str) -> Vec<u8> {
    Signer::new(&SecretKey::from(KEY))
        .sign_callback_body(&json!({
            "project_id": 1234,
            "payment": {"id": payment_id, "type": "payout", "status": "success"},
            "operation": {"id": 1, "status": "success", "code": "0", "message": "Success"}
        }))
        .unwrap()
}

/// Waits until the server closes `stream`; panics if it stays open for 5 s.
fn wait_closed(mut stream: TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut buffer = [0u8; 256];
    loop {
        match stream.read(&mut buffer) {
            Ok(0) => return,
            Ok(_) => {}
            Err(error) => {
                assert!(
                    !matches!(
                        error.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "a stalled connection was never closed"
                );
                return;
            }
        }
    }
}

#[test]
fn stalled_connections_are_closed_and_a_callback_is_still_served() {
    // Long enough that the callback is surely served before the stalled ones are cut.
    let header_timeout = Duration::from_millis(500);
    let (child, addr) = start(500, &["--max-connections", "64"]);
    let started = Instant::now();
    let stalled: Vec<TcpStream> = (0..50)
        .map(|_| {
            let mut stream = TcpStream::connect(&addr).unwrap();
            stream.write_all(b"POST /cb HTTP/1.1\r\nHost: mer").unwrap();
            stream
        })
        .collect();
    let body = signed_callback("served");
    let mut request = head(body.len()).into_bytes();
    request.extend_from_slice(&body);
    let (status, text, took) = exchange(&addr, &request);
    assert_eq!(status, 200, "{text}");
    assert!(took < header_timeout, "served after {took:?}");
    for stream in stalled {
        wait_closed(stream);
    }
    let closed = started.elapsed();
    assert!(
        closed >= header_timeout - Duration::from_millis(20) && closed < Duration::from_secs(3),
        "closed after {closed:?}"
    );
    let out = stop_and_read(child);
    assert!(out.contains("payment served is success"), "{out}");
    assert_eq!(out.lines().count(), 1, "{out}");
}

#[test]
fn an_oversized_body_is_413_and_a_slow_body_is_408_and_neither_is_printed() {
    let (child, addr) = start(200, &[]);
    // Declared 2 MB: refused before anything of it is read.
    let (status, text, _) = exchange(&addr, head(2 * 1024 * 1024).as_bytes());
    assert_eq!(status, 413, "{text}");
    // Half of a real callback, then nothing.
    let body = signed_callback("slow");
    let mut request = head(body.len()).into_bytes();
    request.extend_from_slice(&body[..body.len() / 2]);
    let (status, text, took) = exchange(&addr, &request);
    assert_eq!(status, 408, "{text}");
    assert!(
        took >= TIMEOUT - Duration::from_millis(20) && took < Duration::from_secs(3),
        "answered after {took:?}"
    );
    let out = stop_and_read(child);
    assert!(out.is_empty(), "nothing may be printed: {out}");
}
