//! Each failure mode lands in the right class: not sent, maybe sent, or answered.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rp_transport::{Delivery, HttpRequest, RetryAfter, Transport, TransportError};

use crate::server::{self, Reply, Server, json};
use crate::{ATTEMPT_TIMEOUT, CONNECT_TIMEOUT, transport};

const PATH: &str = "/v2/payment/mobile/payout";

fn request() -> HttpRequest {
    HttpRequest::new(PATH, r#"{"general":{"project_id":1,"payment_id":"p1"}}"#)
}

#[tokio::test]
async fn success_is_answered_with_status_headers_and_body() {
    let server = Server::start(|_| Reply::Send(json(200, r#"{"status":"success"}"#))).await;
    let result = transport(&server.base_url).post(request()).await;
    assert_eq!(Delivery::of(&result), Delivery::Answered);
    let response = result.unwrap();
    assert_eq!(response.status, 200);
    assert!(response.is_success());
    assert_eq!(response.header("Content-Type"), Some("application/json"));
    assert_eq!(&response.body[..], br#"{"status":"success"}"#);
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn client_and_server_errors_are_answered_responses_with_their_bodies() {
    for (status, body) in [
        (
            400,
            r#"{"status":"error","code":"2003","message":"Invalid JSON string"}"#,
        ),
        (403, r#"{"status":"error","message":"Forbidden"}"#),
        (500, r#"{"status":"error","message":"Internal error"}"#),
        (503, "Service Unavailable"),
    ] {
        let server = Server::start(move |_| Reply::Send(json(status, body))).await;
        let result = transport(&server.base_url).post(request()).await;
        assert_eq!(Delivery::of(&result), Delivery::Answered, "HTTP {status}");
        let response = result.unwrap();
        assert_eq!(response.status, status);
        assert!(!response.is_success());
        assert_eq!(response.body, body.as_bytes(), "HTTP {status}");
    }
}

#[tokio::test]
async fn too_many_requests_carries_retry_after() {
    let server = Server::start(|_| {
        Reply::Send(server::response(
            429,
            &[("Retry-After", "7"), ("Content-Type", "application/json")],
            br#"{"status":"error"}"#,
        ))
    })
    .await;
    let response = transport(&server.base_url).post(request()).await.unwrap();
    assert_eq!(response.status, 429);
    assert_eq!(
        response.retry_after(),
        Some(RetryAfter::Delay(Duration::from_secs(7)))
    );
}

#[tokio::test]
async fn nothing_listening_is_not_sent() {
    let base_url = server::closed_port_url().await;
    let error = transport(&base_url).post(request()).await.unwrap_err();
    assert_eq!(error.delivery(), Delivery::NotSent, "{error}");
    assert!(error.is_connect(), "{error}");
    assert!(!error.is_timeout(), "{error}");
    assert_eq!(error.path(), Some(PATH));
    let text = error.to_string();
    assert!(
        text.contains("was not sent") && text.contains(PATH),
        "{text}"
    );
    assert!(!text.contains("payment_id"), "no body in errors: {text}");
}

#[tokio::test]
async fn unresolvable_host_is_not_sent() {
    // `.invalid` is reserved (RFC 2606) and never resolves.
    let error = transport("http://rp-transport-test.invalid")
        .post(request())
        .await
        .unwrap_err();
    assert_eq!(error.delivery(), Delivery::NotSent, "{error}");
    assert!(error.is_connect(), "{error}");
}

#[tokio::test]
async fn tls_handshake_failure_is_not_sent() {
    // A plain-HTTP server behind an https URL: the TLS handshake fails before the request.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::AsyncWriteExt;
        while let Ok((mut stream, _)) = listener.accept().await {
            let _ = stream
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    let error = transport(&format!("https://{addr}"))
        .post(request())
        .await
        .unwrap_err();
    assert_eq!(error.delivery(), Delivery::NotSent, "{error}");
    assert!(error.is_connect(), "{error}");
}

// Relies on Linux dropping SYNs to a listener whose accept queue is full.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn connect_timeout_is_not_sent() {
    // A listener that never accepts, with its accept queue filled: further SYNs are dropped by
    // the kernel, so connecting hangs until the connect timeout.
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
    let addr = socket.local_addr().unwrap();
    let _listener = socket.listen(1).unwrap();
    let mut fillers = Vec::new();
    let mut queue_full = false;
    for _ in 0..64 {
        let connect = tokio::net::TcpStream::connect(addr);
        match tokio::time::timeout(Duration::from_millis(200), connect).await {
            Ok(stream) => fillers.push(stream.unwrap()),
            Err(_) => {
                queue_full = true;
                break;
            }
        }
    }
    assert!(queue_full, "could not fill the accept queue of {addr}");

    let started = Instant::now();
    let error = transport(&format!("http://{addr}"))
        .post(request())
        .await
        .unwrap_err();
    assert_eq!(error.delivery(), Delivery::NotSent, "{error}");
    assert!(error.is_connect() && error.is_timeout(), "{error}");
    assert!(error.to_string().contains("250 ms"), "{error}");
    assert!(
        started.elapsed() >= CONNECT_TIMEOUT,
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn invalid_path_is_not_sent_and_reaches_no_server() {
    let server = Server::start(|_| Reply::Send(json(200, "{}"))).await;
    let error = transport(&server.base_url)
        .post(HttpRequest::new("v2/no-slash", "{}"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, TransportError::InvalidRequest { .. }),
        "{error:?}"
    );
    assert_eq!(error.delivery(), Delivery::NotSent);
    assert_eq!(server.accepted(), 0);
}

#[tokio::test]
async fn stall_after_the_request_is_maybe_sent_timeout() {
    let server = Server::start(|_| Reply::Stall).await;
    let started = Instant::now();
    let error = transport(&server.base_url)
        .post(request())
        .await
        .unwrap_err();
    let elapsed = started.elapsed();
    assert_eq!(error.delivery(), Delivery::MaybeSent, "{error}");
    assert!(error.is_timeout(), "{error}");
    assert!(!error.is_connect(), "{error}");
    assert!(error.to_string().contains("400 ms"), "{error}");
    assert!(
        elapsed >= ATTEMPT_TIMEOUT && elapsed < Duration::from_secs(3),
        "{elapsed:?}"
    );
    // The server did get the request: exactly why the outcome is unknown.
    assert_eq!(server.requests().len(), 1);
}

#[tokio::test]
async fn body_stalling_after_headers_is_maybe_sent_timeout_with_status() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\"")
            .await;
        std::future::pending::<()>().await;
    });
    let error = transport(&format!("http://{addr}"))
        .post(request())
        .await
        .unwrap_err();
    assert_eq!(error.delivery(), Delivery::MaybeSent, "{error}");
    assert!(error.is_timeout(), "{error}");
    assert_eq!(error.status(), Some(200), "{error}");
}

#[tokio::test]
async fn connection_closed_without_a_response_is_maybe_sent_and_not_retried() {
    let server = Server::start(|_| Reply::SendThenClose(Vec::new())).await;
    let error = transport(&server.base_url)
        .post(request())
        .await
        .unwrap_err();
    assert_eq!(error.delivery(), Delivery::MaybeSent, "{error}");
    assert!(!error.is_timeout() && !error.is_connect(), "{error}");
    assert!(
        matches!(error, TransportError::Interrupted { status: None, .. }),
        "{error:?}"
    );
    // One attempt only: the server saw the request once, on one connection.
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.accepted(), 1);
}

#[tokio::test]
async fn connection_closed_mid_headers_is_maybe_sent() {
    let server =
        Server::start(|_| Reply::SendThenClose(b"HTTP/1.1 200 OK\r\nContent-Le".to_vec())).await;
    let error = transport(&server.base_url)
        .post(request())
        .await
        .unwrap_err();
    assert_eq!(error.delivery(), Delivery::MaybeSent, "{error}");
    assert!(error.to_string().contains("may have been sent"), "{error}");
}

#[tokio::test]
async fn body_cut_off_is_maybe_sent_with_status() {
    let server = Server::start(|_| {
        Reply::SendThenClose(
            b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"status\":\"succ".to_vec(),
        )
    })
    .await;
    let error = transport(&server.base_url)
        .post(request())
        .await
        .unwrap_err();
    assert_eq!(error.delivery(), Delivery::MaybeSent, "{error}");
    assert!(
        matches!(error, TransportError::Interrupted { .. }),
        "{error:?}"
    );
    assert_eq!(error.status(), Some(200));
    assert!(
        error.to_string().contains("after HTTP 200 headers"),
        "{error}"
    );
}

#[tokio::test]
async fn works_as_arc_dyn_transport_across_tasks() {
    let server = Server::start(|_| Reply::Send(json(200, "{}"))).await;
    let transport: Arc<dyn Transport> = Arc::new(transport(&server.base_url));
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let transport = transport.clone();
            tokio::spawn(async move { transport.post(request()).await })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.await.unwrap().unwrap().status, 200);
    }
    assert_eq!(server.requests().len(), 3);
}

#[tokio::test]
async fn no_redirects_are_followed() {
    let server = Server::start(|r| {
        if r.path == PATH {
            Reply::Send(server::response(307, &[("Location", "/elsewhere")], b""))
        } else {
            Reply::Send(json(200, "{}"))
        }
    })
    .await;
    let response = transport(&server.base_url).post(request()).await.unwrap();
    assert_eq!(response.status, 307);
    assert_eq!(response.header("location"), Some("/elsewhere"));
    assert_eq!(
        server.requests().len(),
        1,
        "the redirect must not be followed"
    );
}
