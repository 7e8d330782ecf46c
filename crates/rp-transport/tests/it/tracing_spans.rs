//! Each request runs in a span with path, status, duration and outcome, and nothing sensitive.

use rp_transport::{HttpRequest, Transport};

use crate::server::{self, Reply, Server, json};
use crate::{traces, transport};

#[tokio::test]
async fn spans_record_path_status_duration_outcome_and_no_secrets() {
    // Paths unique to this test, to find its lines among the traces of the whole binary.
    const ANSWERED: &str = "/v2/tracing-test/answered";
    const REFUSED: &str = "/v2/tracing-test/refused";
    let server = Server::start(|_| Reply::Send(json(400, r#"{"phone":"77011234567"}"#))).await;
    let body = r#"{"general":{"signature":"SECRET-SIGNATURE"},"account":{"number":"77017654321"}}"#;
    let response = transport(&server.base_url)
        .post(HttpRequest::new(ANSWERED, body))
        .await
        .unwrap();
    assert_eq!(response.status, 400);

    let closed = server::closed_port_url().await;
    transport(&closed)
        .post(HttpRequest::new(REFUSED, body))
        .await
        .unwrap_err();

    let all = traces();
    let line = |path: &str, message: &str| {
        all.lines()
            .find(|l| l.contains(&format!("path={path}")) && l.contains(message))
            .unwrap_or_else(|| panic!("no `{message}` line for {path} in:\n{all}"))
            .to_owned()
    };
    let answered = line(ANSWERED, "gate request answered");
    for field in [
        "rp_transport.post",
        "status=400",
        "duration_ms=",
        "outcome=\"answered\"",
    ] {
        assert!(answered.contains(field), "{field} missing: {answered}");
    }
    let refused = line(REFUSED, "gate request failed");
    for field in ["outcome=\"not_sent\"", "was not sent"] {
        assert!(refused.contains(field), "{field} missing: {refused}");
    }
    for secret in ["SECRET-SIGNATURE", "77017654321", "77011234567"] {
        assert!(!all.contains(secret), "{secret} leaked into traces:\n{all}");
    }
}
