//! The server's limits: stalled connections are closed after the header read timeout, the
//! connection cap holds, a body over the limit is 413, a slow body is cut off with 408; and
//! none of them is applied.

use std::time::{Duration, Instant};

use std::io::{Read as _, Write as _};
use std::net::TcpStream;

use rp_sim::{PAYOUT_PATH, STATUS_PATH};

use crate::{Env, payout_request};

const TIMEOUT: Duration = Duration::from_millis(200);
/// The header read timeout of the stalled-connection test: long enough that a normal request
/// is surely served before the stalled connections are cut, even on a loaded machine.
const HEADER_TIMEOUT: Duration = Duration::from_millis(500);

async fn env(max_connections: usize) -> Env {
    env_with(max_connections, TIMEOUT).await
}

async fn env_with(max_connections: usize, header_timeout: Duration) -> Env {
    Env::start_with(|b| {
        b.header_read_timeout(header_timeout)
            .body_read_timeout(TIMEOUT)
            .body_limit(1024)
            .max_connections(max_connections)
    })
    .await
}

/// A connection that sent half a request head and then nothing (a blocking socket: reads
/// happen on the blocking pool, so the simulator keeps running on the test's runtime).
fn stalled(env: &Env) -> TcpStream {
    let mut stream = TcpStream::connect(env.sim.addr()).unwrap();
    stream
        .write_all(format!("POST {STATUS_PATH} HTTP/1.1\r\nHost: sim\r\nContent-Ty").as_bytes())
        .unwrap();
    stream
}

/// How long until the server closes `stream` (reads until EOF or an error).
async fn closed_after(mut stream: TcpStream, started: Instant) -> Duration {
    tokio::task::spawn_blocking(move || {
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buffer = [0u8; 1024];
        loop {
            match stream.read(&mut buffer) {
                Ok(0) => break,
                Err(error) => {
                    assert!(
                        !matches!(
                            error.kind(),
                            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                        ),
                        "the stalled connection was never closed"
                    );
                    break;
                }
                Ok(_) => {}
            }
        }
        started.elapsed()
    })
    .await
    .unwrap()
}

/// Writes `head` and `body` on a fresh connection and returns the response's status code and
/// text.
async fn exchange(env: &Env, head: &str, body: &[u8]) -> (u16, String) {
    let addr = env.sim.addr();
    let request = [head.as_bytes(), body].concat();
    let response = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(&request).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        response
    })
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

#[tokio::test]
async fn stalled_connections_are_closed_and_a_normal_request_is_served() {
    let env = env_with(16, HEADER_TIMEOUT).await;
    let started = Instant::now();
    let mut connections = Vec::new();
    for _ in 0..10 {
        connections.push(stalled(&env));
    }
    // Served meanwhile, at once.
    let before = Instant::now();
    assert_eq!(env.payout("meanwhile", "77011234567").await.status, 200);
    assert!(before.elapsed() < HEADER_TIMEOUT, "{:?}", before.elapsed());
    for stream in connections {
        let closed = closed_after(stream, started).await;
        assert!(
            closed >= HEADER_TIMEOUT - Duration::from_millis(20) && closed < Duration::from_secs(3),
            "closed after {closed:?}"
        );
    }
    assert_eq!(env.sim.payments().len(), 1);
}

#[tokio::test]
async fn the_connection_cap_holds_until_stalled_connections_are_cut() {
    let env = env(2).await;
    let first = stalled(&env);
    let second = stalled(&env);
    // Give the server time to accept both.
    tokio::time::sleep(Duration::from_millis(30)).await;
    let started = Instant::now();
    let answer = env.payout("after-the-cut", "77011234567").await;
    assert_eq!(answer.status, 200);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(120),
        "served after {waited:?}, while both connections were taken"
    );
    drop((first, second));
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_not_applied() {
    let env = env(16).await;
    let mut request = payout_request("too-big", "77011234567");
    request["payment"]["description"] = "x".repeat(2000).into();
    let body = env.signer.sign_request_body(&request).unwrap();
    assert!(body.len() > 1024);
    // Declared: refused before the body is read (nothing of it is sent).
    let head = format!(
        "POST {PAYOUT_PATH} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let (status, text) = exchange(&env, &head, b"").await;
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("Request body over 1024 bytes"), "{text}");
    // Not declared (chunked): refused once the limit is passed.
    let head = format!(
        "POST {PAYOUT_PATH} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n",
        body.len()
    );
    let mut chunk = body.clone();
    chunk.extend_from_slice(b"\r\n");
    let (status, text) = exchange(&env, &head, &chunk).await;
    assert_eq!(status, 413, "{text}");
    assert!(env.sim.payments().is_empty(), "nothing may be applied");
    // The same request within the limit is accepted.
    let ok = Env::start().await;
    assert_eq!(ok.post_raw(PAYOUT_PATH, body).await.status, 200);
}

#[tokio::test]
async fn a_slow_body_is_cut_off_with_408_and_not_applied() {
    let env = env(16).await;
    let body = env
        .signer
        .sign_request_body(&payout_request("slow-body", "77011234567"))
        .unwrap();
    let head = format!(
        "POST {PAYOUT_PATH} HTTP/1.1\r\nHost: sim\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    let started = Instant::now();
    // Half the body, then nothing.
    let (status, text) = exchange(&env, &head, &body[..body.len() / 2]).await;
    let took = started.elapsed();
    assert_eq!(status, 408, "{text}");
    assert!(
        took >= TIMEOUT - Duration::from_millis(20) && took < Duration::from_secs(2),
        "answered after {took:?}"
    );
    assert!(env.sim.payments().is_empty(), "nothing may be applied");
    // The whole body in time is accepted.
    let (status, text) = exchange(
        &env,
        &head.replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n"),
        &body,
    )
    .await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(env.sim.payments().len(), 1);
}
