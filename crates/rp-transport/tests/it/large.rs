//! Large bodies both ways, and the response size limit.

use rp_transport::{Delivery, HttpRequest, ReqwestTransport, Transport, TransportError};

use crate::server::{self, Reply, Server};
use crate::transport;

const MIB: usize = 1024 * 1024;

#[tokio::test]
async fn five_mib_response_and_one_mib_request() {
    let server = Server::start(|r| {
        // Answer with 5 MiB and echo how much was received.
        let received = r.body.len().to_string();
        let body = vec![b'x'; 5 * MIB];
        Reply::Send(server::response(200, &[("X-Received", &received)], &body))
    })
    .await;
    let body = vec![b'y'; MIB];
    let response = transport(&server.base_url)
        .post(HttpRequest::new("/v2/big", body.clone()))
        .await
        .unwrap();
    assert_eq!(response.status, 200);
    assert_eq!(response.body.len(), 5 * MIB);
    assert!(response.body.iter().all(|&b| b == b'x'));
    assert_eq!(response.header("x-received"), Some("1048576"));
    assert_eq!(server.requests()[0].body, body);
}

fn limited(base_url: &str) -> ReqwestTransport {
    ReqwestTransport::builder()
        .base_url(base_url)
        .max_response_bytes(1000)
        .build()
        .unwrap()
}

#[tokio::test]
async fn response_over_the_limit_by_content_length_is_rejected() {
    let server = Server::start(|_| Reply::Send(server::response(200, &[], &[b'x'; 1001]))).await;
    let error = limited(&server.base_url)
        .post(HttpRequest::new("/v2/big", "{}"))
        .await
        .unwrap_err();
    assert!(
        matches!(
            error,
            TransportError::ResponseTooLarge {
                status: 200,
                limit: 1000,
                ..
            }
        ),
        "{error:?}"
    );
    assert_eq!(error.delivery(), Delivery::MaybeSent);
}

#[tokio::test]
async fn chunked_response_over_the_limit_is_rejected_and_at_the_limit_accepted() {
    fn chunked(len: usize) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for part in [len / 2, len - len / 2] {
            out.extend_from_slice(format!("{part:x}\r\n").as_bytes());
            out.extend(std::iter::repeat_n(b'x', part));
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\n\r\n");
        out
    }
    let server =
        Server::start(|r| Reply::Send(chunked(if r.path == "/over" { 1001 } else { 1000 }))).await;
    let transport = limited(&server.base_url);
    let ok = transport.post(HttpRequest::new("/at", "{}")).await.unwrap();
    assert_eq!(ok.body.len(), 1000);
    let error = transport
        .post(HttpRequest::new("/over", "{}"))
        .await
        .unwrap_err();
    assert!(
        matches!(error, TransportError::ResponseTooLarge { .. }),
        "{error:?}"
    );
}
