//! What the serve-loop review tests share: a server on 127.0.0.1:0, and blocking clients
//! that read one answer, read an answer slowly, or hold requests in flight.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::Router;
use rp_payout::axum::{ConnectionLimits, serve};
use tokio::net::TcpListener;

/// `app` served with `limits` on 127.0.0.1:0: its address.
pub(crate) async fn start(app: Router, limits: ConnectionLimits) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(serve(listener, app, limits));
    addr
}

/// Sends `request` on `stream` and reads one answer (by its Content-Length, none for HEAD /
/// 204 / 304): its head, lowercased; `None` when the connection ends (EOF, reset or 5 s of
/// silence) before it.
pub(crate) fn one_answer(stream: &mut TcpStream, request: &[u8], bodyless: bool) -> Option<String> {
    stream
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    stream.write_all(request).ok()?;
    let mut response = Vec::new();
    let mut byte = [0u8; 1];
    while !response.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).ok()? == 0 {
            return None;
        }
        response.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&response).to_ascii_lowercase();
    if !bodyless {
        let length: usize = head
            .lines()
            .find_map(|l| l.strip_prefix("content-length:"))
            .map_or(0, |n| n.trim().parse().unwrap());
        let mut body = vec![0u8; length];
        stream.read_exact(&mut body).ok()?;
    }
    Some(head)
}

/// `GET path` on a new connection, read `chunk` bytes at a time with `pause` between reads
/// until the connection ends: how many bytes arrived, and how long it took.
pub(crate) async fn read_slowly(
    addr: SocketAddr,
    path: &'static str,
    chunk: usize,
    pause: Duration,
) -> (usize, Duration) {
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n").as_bytes(),
            )
            .unwrap();
        let mut buffer = vec![0u8; chunk];
        let (mut total, started) = (0usize, Instant::now());
        while let Ok(n @ 1..) = stream.read(&mut buffer) {
            total += n;
            std::thread::sleep(pause);
        }
        (total, started.elapsed())
    })
    .await
    .unwrap()
}

/// `count` connections, each with a `POST /hold` in flight (the app holds it).
pub(crate) fn holding(addr: SocketAddr, count: usize) -> Vec<TcpStream> {
    (0..count)
        .map(|_| {
            let mut stream = TcpStream::connect(addr).unwrap();
            stream
                .write_all(b"POST /hold HTTP/1.1\r\nHost: m\r\nContent-Length: 0\r\n\r\n")
                .unwrap();
            stream
        })
        .collect()
}
