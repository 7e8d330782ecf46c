//! The callback router and the serve loop, over real loopback connections.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rp_model::ProjectId;
use rp_sign::SecretKey;

use super::*;
use crate::Config;
use tokio::net::TcpListener;

const TIMEOUT: Duration = Duration::from_millis(200);

/// A callback router with `limits` served by [`serve_with_shutdown`] on 127.0.0.1:0;
/// returns its address and how many callbacks reached the client.
async fn start(
    limits: RequestLimits,
    connections: ConnectionLimits,
) -> (SocketAddr, Arc<AtomicUsize>) {
    let config = Config::new(
        ProjectId::new(1234).unwrap(),
        SecretKey::from("axum-test-key"),
    )
    .with_base_url("http://127.0.0.1:9");
    let client = Arc::new(Client::new(config).unwrap());
    let handled = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&handled);
    let observer: Observer = Arc::new(move |_: &CallbackOutcome| {
        seen.fetch_add(1, Ordering::SeqCst);
    });
    let app = Router::new().nest_service(
        "/callback",
        callback_router_with_limits(client, limits, Some(observer)),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, connections));
    (addr, handled)
}

fn limits() -> RequestLimits {
    RequestLimits::default()
        .with_body_limit(1024)
        .with_body_read_timeout(TIMEOUT)
}

fn connection_limits() -> ConnectionLimits {
    ConnectionLimits::default()
        .with_header_read_timeout(TIMEOUT)
        .with_max_connections(32)
}

fn head(length: usize) -> String {
    format!(
        "POST /callback HTTP/1.1\r\nHost: merchant\r\nContent-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    )
}

/// Sends `request` on a fresh connection (on the blocking pool) and returns the status
/// code, the response text and how long it took.
async fn exchange(addr: SocketAddr, request: Vec<u8>) -> (u16, String, Duration) {
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream.write_all(&request).unwrap();
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let text = String::from_utf8_lossy(&response).into_owned();
        let status = text
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .unwrap_or_else(|| panic!("no status in {text:?}"));
        (status, text, started.elapsed())
    })
    .await
    .unwrap()
}

/// A request with a complete body (an unsigned callback: refused by the client, but handled).
fn complete() -> Vec<u8> {
    let body = br#"{"project_id":1234,"payment":{"id":"p-1","status":"success"}}"#;
    [
        head(body.len())
            .replace("\r\n\r\n", "\r\nConnection: close\r\n\r\n")
            .as_bytes(),
        body,
    ]
    .concat()
}

#[test]
fn the_defaults_are_the_documented_ones() {
    let request = RequestLimits::default();
    assert_eq!(request.body_limit, 65_536);
    assert_eq!(request.body_read_timeout, Duration::from_secs(10));
    assert_eq!(request.max_concurrent_requests, 64);
    let connection = ConnectionLimits::default();
    assert_eq!(connection.header_read_timeout, Duration::from_secs(10));
    assert_eq!(connection.max_connections, 256);
    assert_eq!(connection.write_timeout, Duration::from_secs(10));
    assert_eq!(
        RequestLimits::default()
            .with_max_concurrent_requests(0)
            .max_concurrent_requests,
        1
    );
    assert_eq!(
        ConnectionLimits::default()
            .with_max_connections(0)
            .max_connections,
        1
    );
}

#[tokio::test]
async fn stalled_connections_are_closed_and_a_callback_is_still_served() {
    // Long enough that the normal request is surely served before the stalled ones are cut.
    let header_timeout = Duration::from_millis(500);
    let (addr, handled) = start(
        limits(),
        connection_limits().with_header_read_timeout(header_timeout),
    )
    .await;
    let started = Instant::now();
    let stalled: Vec<TcpStream> = (0..20)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .write_all(b"POST /callback HTTP/1.1\r\nHost: merch")
                .unwrap();
            stream
        })
        .collect();
    let (status, text, took) = exchange(addr, complete()).await;
    assert_ne!(status, 408, "{text}");
    assert!(took < header_timeout, "served after {took:?}");
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    let closed = tokio::task::spawn_blocking(move || {
        for mut stream in stalled {
            stream
                .set_read_timeout(Some(Duration::from_secs(5)))
                .unwrap();
            let mut buffer = [0u8; 256];
            loop {
                match stream.read(&mut buffer) {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(error) => {
                        assert!(
                            !matches!(
                                error.kind(),
                                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                            ),
                            "a stalled connection was never closed"
                        );
                        break;
                    }
                }
            }
        }
        started.elapsed()
    })
    .await
    .unwrap();
    assert!(
        closed >= header_timeout - Duration::from_millis(20),
        "closed after {closed:?}"
    );
    assert!(closed < Duration::from_secs(3), "closed after {closed:?}");
}

#[tokio::test]
async fn the_connection_cap_holds_while_every_connection_has_a_request_in_flight() {
    let (addr, handled) = start(limits(), connection_limits().with_max_connections(1)).await;
    // A request whose body never comes: in flight until the body read timeout (408).
    let mut busy = TcpStream::connect(addr).unwrap();
    busy.write_all(format!("{}{{\"pro", head(64)).as_bytes())
        .unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let (status, text, took) = exchange(addr, complete()).await;
    assert_ne!(status, 503, "{text}");
    assert!(
        took >= Duration::from_millis(120),
        "served after {took:?} while the only connection had a request in flight"
    );
    assert_eq!(handled.load(Ordering::SeqCst), 1);
}

/// Sends a complete request on `stream` (kept alive) and reads its whole answer: the status
/// and whether it closes the connection.
fn keep_alive_exchange(stream: &mut TcpStream) -> (u16, bool) {
    let request = String::from_utf8(complete())
        .unwrap()
        .replace("Connection: close\r\n", "");
    stream.write_all(request.as_bytes()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut response = Vec::new();
    let mut buffer = [0u8; 1024];
    loop {
        let read = stream.read(&mut buffer).unwrap();
        assert!(read > 0, "closed before the whole answer");
        response.extend_from_slice(&buffer[..read]);
        let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let header = |name: &str| {
            text[..end]
                .lines()
                .find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_owned()))
        };
        let length: usize = header("content-length:").map_or(0, |n| n.parse().unwrap());
        if response.len() >= end + 4 + length {
            let status = text.split_whitespace().nth(1).unwrap().parse().unwrap();
            return (status, header("connection:").as_deref() == Some("close"));
        }
    }
}

/// Whether the server closed `stream` (within 5 s).
fn closed(stream: &mut TcpStream) -> bool {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    matches!(stream.read(&mut [0u8; 16]), Ok(0))
}

#[tokio::test]
async fn near_the_cap_answers_close_their_connections() {
    // Sixteen places: crowded when fewer than two are free. Idle keep-alive connections
    // would hold their places for a minute.
    let (addr, handled) = start(
        limits(),
        connection_limits()
            .with_max_connections(16)
            .with_header_read_timeout(Duration::from_secs(60)),
    )
    .await;
    tokio::task::spawn_blocking(move || {
        // Up to fourteen of sixteen places taken: kept alive.
        let mut kept: Vec<TcpStream> = (0..14)
            .map(|_| {
                let mut stream = TcpStream::connect(addr).unwrap();
                assert!(!keep_alive_exchange(&mut stream).1, "kept alive");
                stream
            })
            .collect();
        // Fifteen: one place free, so the answer closes its connection...
        let mut crowded = TcpStream::connect(addr).unwrap();
        assert!(keep_alive_exchange(&mut crowded).1, "Connection: close");
        assert!(closed(&mut crowded), "the fifteenth connection is closed");
        // ...and the others still serve (now not crowded).
        assert!(!keep_alive_exchange(&mut kept[0]).1, "kept alive");
    })
    .await
    .unwrap();
    assert_eq!(handled.load(Ordering::SeqCst), 16);
}

#[tokio::test]
async fn at_the_cap_the_connection_idle_the_longest_makes_way() {
    let (addr, handled) = start(
        limits(),
        connection_limits()
            .with_max_connections(2)
            .with_header_read_timeout(Duration::from_secs(60)),
    )
    .await;
    // Both places taken by connections that have sent nothing yet (a client's pool opening
    // ahead, say): for a minute, before this.
    let older = TcpStream::connect(addr).unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    let newer = TcpStream::connect(addr).unwrap();
    tokio::time::sleep(Duration::from_millis(30)).await;
    // A third is served all the same (`exchange` gives up after 5 s).
    let (status, text, _) = exchange(addr, complete()).await;
    assert_ne!(status, 503, "{text}");
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    tokio::task::spawn_blocking(move || {
        // The older one made way; the newer one still serves.
        let (mut older, mut newer) = (older, newer);
        assert!(closed(&mut older), "the older connection is closed");
        assert_ne!(keep_alive_exchange(&mut newer).0, 503);
    })
    .await
    .unwrap();
    assert_eq!(handled.load(Ordering::SeqCst), 2);
}

/// `request` for `method path` with the complete test body, on a closed connection.
fn request_to(method: &str, path: &str) -> Vec<u8> {
    String::from_utf8(complete())
        .unwrap()
        .replacen("POST /callback ", &format!("{method} {path} "), 1)
        .into_bytes()
}

#[tokio::test]
async fn the_callback_path_with_a_trailing_slash_is_the_callback_and_other_paths_are_404() {
    let (addr, handled) = start(limits(), connection_limits()).await;
    // Both forms of the mount path reach the client (an unsigned body: refused by it, but
    // handled, not 404).
    for path in ["/callback", "/callback/"] {
        let before = handled.load(Ordering::SeqCst);
        let (status, text, _) = exchange(addr, request_to("POST", path)).await;
        assert_ne!(status, 404, "{path}: {text}");
        assert_eq!(handled.load(Ordering::SeqCst), before + 1, "{path}: {text}");
    }
    // Anything else is answered (and logged), never handled.
    let before = handled.load(Ordering::SeqCst);
    let (status, text, _) = exchange(addr, request_to("GET", "/callback")).await;
    assert_eq!(status, 405, "{text}");
    assert!(text.contains("callbacks are POST requests"), "{text}");
    let (status, text, _) = exchange(addr, request_to("POST", "/callback/other")).await;
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("no callback endpoint here"), "{text}");
    assert_eq!(handled.load(Ordering::SeqCst), before);
}

#[tokio::test]
async fn a_body_over_the_limit_is_413_and_not_applied() {
    let (addr, handled) = start(limits(), connection_limits()).await;
    // Declared: refused before anything of it is read.
    let (status, text, _) = exchange(addr, head(2 * 1024 * 1024).into_bytes()).await;
    assert_eq!(status, 413, "{text}");
    // Not declared: refused once the limit is passed.
    let chunked = format!(
        "POST /callback HTTP/1.1\r\nHost: merchant\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{}\r\n",
        1500,
        "x".repeat(1500)
    );
    let (status, text, _) = exchange(addr, chunked.into_bytes()).await;
    assert_eq!(status, 413, "{text}");
    assert_eq!(handled.load(Ordering::SeqCst), 0, "nothing may be applied");
}

#[tokio::test]
async fn a_slow_body_is_cut_off_with_408_and_not_applied() {
    let (addr, handled) = start(limits(), connection_limits()).await;
    let mut request = head(100).into_bytes();
    request.extend_from_slice(&[b' '; 40]);
    let (status, text, took) = exchange(addr, request).await;
    assert_eq!(status, 408, "{text}");
    assert!(
        took >= TIMEOUT - Duration::from_millis(20) && took < Duration::from_secs(2),
        "{took:?}"
    );
    assert_eq!(handled.load(Ordering::SeqCst), 0, "nothing may be applied");
}

#[tokio::test]
async fn requests_over_the_concurrency_cap_get_503() {
    let (addr, handled) = start(
        limits().with_max_concurrent_requests(1),
        connection_limits(),
    )
    .await;
    // One request holds the only slot while its body trickles in.
    let mut slow = TcpStream::connect(addr).unwrap();
    slow.write_all(head(100).as_bytes()).unwrap();
    tokio::time::sleep(Duration::from_millis(50)).await;
    let (status, text, _) = exchange(addr, complete()).await;
    assert_eq!(status, 503, "{text}");
    assert!(
        text.to_ascii_lowercase().contains("retry-after: 1"),
        "{text}"
    );
    assert_eq!(handled.load(Ordering::SeqCst), 0);
    // Once it is cut off, the slot is free again.
    tokio::time::sleep(TIMEOUT * 2).await;
    let (status, text, _) = exchange(addr, complete()).await;
    assert_ne!(status, 503, "{text}");
    assert_eq!(handled.load(Ordering::SeqCst), 1);
    drop(slow);
}

#[tokio::test]
async fn serve_with_shutdown_returns_when_signalled() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(serve_with_shutdown(
        listener,
        Router::new(),
        ConnectionLimits::default(),
        async move {
            let _ = rx.await;
        },
    ));
    tx.send(()).unwrap();
    tokio::time::timeout(Duration::from_secs(2), server)
        .await
        .expect("serve_with_shutdown returns")
        .unwrap();
}
