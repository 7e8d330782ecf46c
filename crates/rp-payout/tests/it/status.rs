//! `Client::status`: signed responses, 3061, invalid signatures.

use rp_model::{PaymentStatus, ResponseCode};
use rp_payout::Error;
use serde_json::json;

use crate::gate::{Gate, Reply, envelope, not_found, pid, status_body, status_reply};

#[tokio::test]
async fn a_signed_status_is_verified_and_read() {
    let gate = Gate::start().await;
    gate.on_status(status_reply("p-1", "decline"));
    let (client, _clock, _store) = gate.client();
    let report = client.status(&pid("p-1")).await.unwrap();
    assert_eq!(report.status, PaymentStatus::Decline);
    assert!(report.signature_verified);
    assert_eq!(report.operations.len(), 1);
    assert_eq!(report.last_code, Some(ResponseCode::new("20000")));
    assert_eq!(report.last_message.as_deref(), Some("General decline"));
    assert_eq!(report.raw.project_id, Some(1234));
    assert_eq!(gate.received()[0].body["general"]["payment_id"], "p-1");
}

#[tokio::test]
async fn an_unsigned_status_is_accepted_but_marked() {
    let gate = Gate::start().await;
    gate.on_status(Reply::Json(200, status_body("p-2", "success")));
    let (client, _clock, _store) = gate.client();
    let report = client.status(&pid("p-2")).await.unwrap();
    assert_eq!(report.status, PaymentStatus::Success);
    assert!(!report.signature_verified);
}

#[tokio::test]
async fn a_bad_signature_is_an_error() {
    let gate = Gate::start().await;
    let mut body = status_body("p-3", "success");
    body["signature"] = json!("AAAA".repeat(22));
    gate.on_status(Reply::Json(200, body));
    let (client, _clock, _store) = gate.client();
    let error = client.status(&pid("p-3")).await.unwrap_err();
    assert!(
        matches!(error, Error::InvalidResponseSignature { .. }),
        "{error}"
    );
}

#[tokio::test]
async fn not_found_in_both_shapes() {
    let gate = Gate::start().await;
    // The contract's 404 envelope, and the third-party shape: HTTP 200, signed, errors[].
    gate.on_status(not_found()).on_status(Reply::Signed(json!({
        "project_id": 1234,
        "errors": [{"code": "3061", "message": "Transaction not found"}]
    })));
    let (client, _clock, _store) = gate.client();
    for _ in 0..2 {
        let error = client.status(&pid("p-none")).await.unwrap_err();
        assert!(matches!(error, Error::NotFound { .. }), "{error}");
        assert_eq!(error.code(), Some(ResponseCode::new("3061")));
    }
}

#[tokio::test]
async fn other_errors_are_rejections_or_unexpected() {
    let gate = Gate::start().await;
    gate.on_status(envelope(403, "2442", "Project ID not found", None))
        .on_status(Reply::Json(502, json!({"oops": true})));
    let (client, _clock, _store) = gate.client();
    let error = client.status(&pid("p-x")).await.unwrap_err();
    assert_eq!(error.code(), Some(ResponseCode::new("2442")), "{error}");
    let error = client.status(&pid("p-x")).await.unwrap_err();
    assert!(
        matches!(
            error,
            Error::UnexpectedResponse {
                http_status: 502,
                ..
            }
        ),
        "{error}"
    );
}
