//! Third review of the serve loop (c02575b), over real loopback connections.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use rp_payout::axum::{ConnectionLimits, serve};
use tokio::net::TcpListener;

use crate::serve_support::{self, read_slowly};

const BODY: usize = 320 << 10;

async fn start(limits: ConnectionLimits) -> SocketAddr {
    let app = Router::new().route("/medium", get(|| async { vec![b'x'; BODY] }));
    serve_support::start(app, limits).await
}

/// A client reading 4 KiB every 125 ms (32 KiB/s) is not cut by the default write timeout.
/// The timeout sees progress when the socket is writable again (`TCP_NOTSENT_LOWAT` of 16 KiB:
/// once 8 KiB are left unsent), but on loopback the client's window reopens a whole segment
/// (64 KiB) at a time, so no byte may move for several seconds: the review's first version,
/// with a 1 s timeout, failed at 128 KiB and still at 16 KiB (on a real link a segment is
/// 1.4 KiB).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_taking_4_kib_every_125_ms_is_not_cut_by_the_default_write_timeout() {
    let addr = start(ConnectionLimits::default()).await;
    let (got, took) = read_slowly(addr, "/medium", 4 << 10, Duration::from_millis(125)).await;
    assert!(
        got > BODY,
        "the answer was cut after {got} of {BODY} bytes ({took:?}), though the client read \
         4 KiB every 125 ms (the default write timeout)"
    );
}

/// `with_max_connections(usize::MAX)` (an "unlimited" cap from a config) panicked the serve
/// task in `Semaphore::new` (tokio's `MAX_PERMITS` is `usize::MAX >> 3`): nothing was served.
/// The cap is now kept within 1 to 1,000,000, as the timeouts are within their bounds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_connection_cap_still_serves() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/small", get(|| async { "small" }));
    let server = tokio::spawn(serve(
        listener,
        app,
        ConnectionLimits::default().with_max_connections(usize::MAX),
    ));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let answer = tokio::task::spawn_blocking(move || {
        let Ok(mut stream) = TcpStream::connect(addr) else {
            return String::from("connection refused");
        };
        stream
            .set_read_timeout(Some(Duration::from_secs(3)))
            .unwrap();
        let _ = stream.write_all(b"GET /small HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n");
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "no answer with a cap of usize::MAX (serve task panicked: {}): {answer:?}",
        server.is_finished()
    );
}

/// Held (passes): at a cap of 2, held by a keep-alive connection just answered and a fresh
/// one (both idle < 1 s), the one idle the longest makes way once idle for 1 s: the newcomer
/// is answered after ~1 s (the accept loop neither hangs nor drops it), and the old
/// connection is really closed (EOF), not left holding a descriptor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_a_cap_of_two_a_fresh_idle_keep_alive_makes_way_after_a_second_and_closes() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = Router::new().route("/small", get(|| async { "small" }));
    tokio::spawn(serve(
        listener,
        app,
        ConnectionLimits::default().with_max_connections(2),
    ));
    let (took, old_closed) = tokio::task::spawn_blocking(move || {
        let mut old = TcpStream::connect(addr).unwrap();
        old.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        old.write_all(b"GET /small HTTP/1.1\r\nHost: m\r\n\r\n")
            .unwrap();
        let mut buffer = [0u8; 4096];
        let n = old.read(&mut buffer).unwrap();
        assert!(buffer[..n].starts_with(b"HTTP/1.1 200"));
        let _filler = TcpStream::connect(addr).unwrap();
        let started = Instant::now();
        let mut new = TcpStream::connect(addr).unwrap();
        new.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        new.write_all(b"GET /small HTTP/1.1\r\nHost: m\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        let _ = new.read_to_string(&mut answer);
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer:?}");
        let took = started.elapsed();
        let old_closed = matches!(old.read(&mut buffer), Ok(0) | Err(_));
        (took, old_closed)
    })
    .await
    .unwrap();
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(3),
        "{took:?}"
    );
    assert!(old_closed);
}
