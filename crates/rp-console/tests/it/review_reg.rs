//! Adversarial review of 1b20aee's console side: the file upload route in a router of its
//! own, outside the layer that reads every other body within 64 KiB and 10 s.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_TYPE, COOKIE};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::{PAY, Server, VIEW};

/// Sends `head` (CRLF lines, without the blank line) and `body` on a raw connection, then
/// stops sending but keeps the connection open: what came back within `wait`.
async fn stalled(server: &Server, head: &str, body: &str, wait: Duration) -> String {
    let address = server.base.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&address).await.unwrap();
    let request = format!("{head}\r\nHost: {address}\r\n\r\n{body}");
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(wait, stream.read_to_end(&mut answer)).await;
    String::from_utf8_lossy(&answer).into_owned()
}

/// FINDING (a regression of 1b20aee): a signed-in operator's `POST /batches/upload` that is
/// not `multipart/form-data` (a URL-encoded form, say) has its body read by `require_login`
/// (for its CSRF token) with no time limit: the route left the layer that answers 408 after
/// 10 s, which covered it before. A body that stops arriving holds the connection and its
/// task for ever (any role: the body is read before the handler checks it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_reg_a_form_to_the_upload_route_that_stops_arriving_is_408() {
    let server = Server::start(None).await;
    let victor = server.login(VIEW).await;
    let head = format!(
        "POST /batches/upload HTTP/1.1\r\nCookie: {}\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100",
        victor.cookie
    );
    let answer = stalled(&server, &head, "csrf=", Duration::from_secs(20)).await;
    // (Fixed by refusing at once what is not a file upload, before the body is read: 415.)
    assert!(
        answer.starts_with("HTTP/1.1 408") || answer.starts_with("HTTP/1.1 415"),
        "no answer 20 s after the body stopped: {answer:?}"
    );
    server.stop().await;
}

/// FINDING (the upload's per-piece timeout covers only the file part's chunks): a
/// multipart upload that stops arriving before the file part's data, in the headers of a
/// part or inside a part that is not `file` (skipped, read through with no timeout), is
/// waited for with no end: no 400 "the upload stalled" after 30 s.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_reg_an_upload_stalled_before_its_file_part_is_refused_in_time() {
    let server = Server::start(None).await;
    let anna = server.login(PAY).await;
    let boundary = "rp-review-reg";
    let head = format!(
        "POST /batches/upload?csrf={} HTTP/1.1\r\nCookie: {}\r\n\
         Content-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: 100000",
        anna.csrf, anna.cookie
    );
    // A part that is not the file, whose data stops arriving.
    let body = format!("--{boundary}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nabc");
    let answer = stalled(&server, &head, &body, Duration::from_secs(45)).await;
    assert!(
        answer.starts_with("HTTP/1.1 4"),
        "no answer 45 s after the upload stalled (its limit: 30 s a piece): {answer:?}"
    );
    server.stop().await;
}

/// PINNED (held): the upload route still wants a session, the session's token in the
/// query and the pay role; other routes with a multipart content type get
/// the 64 KiB limit of forms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_reg_the_upload_route_keeps_its_guards() {
    let server = Server::start(None).await;
    let (anna, victor) = (server.login(PAY).await, server.login(VIEW).await);
    let csv = "phone;amount;customer_id\n+7 701 123 45 67;100;c-1\n";
    let up = |cookie: String, csrf: String| {
        let server = &server;
        async move {
            crate::batches::upload(server, &cookie, &csrf, "a.csv", csv)
                .await
                .status()
        }
    };
    assert_eq!(
        up(String::new(), anna.csrf.clone()).await,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        up(anna.cookie.clone(), "nope".into()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        up(victor.cookie.clone(), victor.csrf.clone()).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        up(anna.cookie.clone(), anna.csrf.clone()).await,
        StatusCode::OK
    );
    // A multipart body over 64 KiB to a form route.
    let answer = server
        .http
        .post(server.url(&format!("/payouts?csrf={}", anna.csrf)))
        .header(COOKIE, &anna.cookie)
        .header(CONTENT_TYPE, "multipart/form-data; boundary=x")
        .body(" ".repeat(200 * 1024))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::PAYLOAD_TOO_LARGE);
    server.stop().await;
}
