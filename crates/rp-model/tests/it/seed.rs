//! The seed messages (the KZ mobile payout request and the success and decline payout
//! callbacks from `spec/signature-vectors.json`) read into the wire types and written back
//! without losing or changing anything.

use rp_model::wire::{Callback, PayoutRequest, StatusResponse};
use rp_model::{OperationStatus, Operator, PaymentStatus};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

fn vector(name: &str) -> String {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../spec/signature-vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let all: Value = serde_json::from_str(&text).unwrap();
    let found = all["vectors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"));
    found["payload_text"].as_str().unwrap().to_owned()
}

/// Reads `text` as `T`, writes it back, and checks the JSON is the same value.
fn round_trip<T: DeserializeOwned + Serialize>(text: &str) -> T {
    let typed: T = serde_json::from_str(text).unwrap();
    let original: Value = serde_json::from_str(text).unwrap();
    let written = serde_json::to_value(&typed).unwrap();
    assert_eq!(written, original, "round trip changed the message");
    typed
}

#[test]
fn seed_payout_request_round_trips() {
    let request: PayoutRequest = round_trip(&vector("mc_payout_request"));
    assert_eq!(request.general.project_id, 1234);
    assert_eq!(request.general.payment_id.as_deref(), Some("payment_47"));
    assert_eq!(request.account.number, "71234567890");
    assert_eq!(request.payment.amount, 100_000);
    assert_eq!(request.payment.currency, "KZT");
    assert_eq!(
        request.customer.email.as_deref(),
        Some("johndoe@example.com")
    );
}

#[test]
fn seed_success_callback_round_trips() {
    let callback: Callback = round_trip(&vector("callback_success_payout"));
    assert_eq!(callback.project_id, Some(1234));
    assert_eq!(callback.payment_id(), Some("payment_47"));
    assert_eq!(callback.payment_status(), Some(&PaymentStatus::Success));
    let operation = callback.operation.as_ref().unwrap();
    assert_eq!(operation.id.unwrap().get(), 1_000_000_012_345);
    assert_eq!(operation.status, Some(OperationStatus::Success));
    assert!(operation.code.as_ref().unwrap().is(0));
    assert_eq!(operation.sum_converted.as_ref().unwrap().amount, 100_000);
    assert_eq!(
        operation.date.as_ref().unwrap().unix_seconds().unwrap(),
        1_715_682_093
    );
}

#[test]
fn seed_decline_callback_round_trips() {
    let callback: Callback = round_trip(&vector("callback_decline_payout"));
    assert_eq!(callback.payment_status(), Some(&PaymentStatus::Decline));
    assert_eq!(callback.errors.len(), 1);
    let code = callback.errors[0].code.as_ref().unwrap();
    assert_eq!(code.message(), Some("General decline"));
    assert_eq!(
        callback.errors[0].description.as_ref(),
        Some(&json!("Provider declined the payout"))
    );
}

#[test]
fn unknown_members_statuses_and_operators_are_kept() {
    let text = json!({
        "project_id": "1234",
        "payment": {"id": "p", "status": "awaiting moon", "new_field": [1, 2]},
        "account": {"number": "77011234567", "type": "IZI"},
        "operation": {"id": "5028800010128225", "code": 20206, "status": "partially done"},
        "general": {"project_id": 1234, "signature": "sig"},
        "brand_new": {"x": null}
    })
    .to_string();
    let callback: Callback = serde_json::from_str(&text).unwrap();
    assert_eq!(callback.project_id, Some(1234));
    assert_eq!(
        callback.payment_status(),
        Some(&PaymentStatus::Other("awaiting moon".into()))
    );
    let account = callback.account.as_ref().unwrap();
    assert_eq!(account.operator, Some(Operator::Other("IZI".into())));
    let operation = callback.operation.as_ref().unwrap();
    assert_eq!(operation.id.unwrap().get(), 5_028_800_010_128_225);
    assert_eq!(operation.code.as_ref().unwrap().as_str(), "20206");
    assert_eq!(
        operation.status,
        Some(OperationStatus::Other("partially done".into()))
    );
    assert!(callback.extra.contains_key("general"));
    assert!(callback.extra.contains_key("brand_new"));
    let payment = callback.payment.as_ref().unwrap();
    assert_eq!(payment.extra["new_field"], json!([1, 2]));
}

#[test]
fn status_response_for_an_unknown_payment() {
    let text =
        r#"{"project_id":1234,"errors":[{"code":"3061","message":"Transaction not found"}]}"#;
    let response: StatusResponse = round_trip(text);
    assert!(response.first_code().unwrap().is(3061));
    assert!(response.payment.is_none());
}

#[test]
fn status_response_with_operations() {
    let text = json!({
        "project_id": 1234,
        "payment": {"id": "p1", "type": "payout", "status": "success",
                    "sum": {"amount": 150000, "currency": "KZT"}},
        "operations": [
            {"id": 1, "type": "payout", "status": "decline", "code": "20206"},
            {"id": 2, "type": "payout", "status": "success", "code": "0", "message": "Success"}
        ],
        "signature": "abc"
    })
    .to_string();
    let response: StatusResponse = round_trip(&text);
    assert_eq!(response.operations.len(), 2);
    assert_eq!(
        response.last_operation().unwrap().status,
        Some(OperationStatus::Success)
    );
}

#[test]
fn debug_of_messages_masks_phone_numbers() {
    let request: PayoutRequest = serde_json::from_str(&vector("mc_payout_request")).unwrap();
    let callback: Callback = serde_json::from_str(&vector("callback_success_payout")).unwrap();
    for debug in [format!("{request:?}"), format!("{callback:?}")] {
        assert!(!debug.contains("71234567890"), "{debug}");
        assert!(debug.contains("7123***7890"), "{debug}");
    }
}

#[test]
fn php_empty_objects_and_array_descriptions_are_read() {
    // PHP writes an empty object as `[]`; vector V3 of the spec has an array `description`.
    let text = json!({
        "project_id": 1234,
        "payment": {"id": "p", "status": "decline", "sum": []},
        "account": [],
        "customer": null,
        "operation": {"id": 1, "status": "decline", "provider": [], "sum_initial": []},
        "errors": [{"code": "123", "message": "grand crash",
                    "description": ["description-str", {"description1": 1}]}]
    })
    .to_string();
    let callback: Callback = serde_json::from_str(&text).unwrap();
    assert!(callback.account.is_none() && callback.customer.is_none());
    let payment = callback.payment.as_ref().unwrap();
    assert!(payment.sum.is_none());
    let operation = callback.operation.as_ref().unwrap();
    assert!(operation.provider.is_none() && operation.sum_initial.is_none());
    assert_eq!(
        callback.errors[0].description,
        Some(json!(["description-str", {"description1": 1}]))
    );
    let status: StatusResponse =
        serde_json::from_str(r#"{"project_id":1,"payment":[],"account":null,"operations":[]}"#)
            .unwrap();
    assert!(status.payment.is_none() && status.account.is_none());
}

#[test]
fn debug_redacts_customer_data() {
    let request: PayoutRequest = serde_json::from_str(&vector("mc_payout_request")).unwrap();
    let debug = format!("{request:?}");
    for secret in ["johndoe", "198.51.100.47", "John", "Doe"] {
        assert!(!debug.contains(secret), "{secret} in {debug}");
    }
    let callback: Callback =
        serde_json::from_str(r#"{"customer":{"id":"c-1","phone":"491234567890","email":"a@b.c"}}"#)
            .unwrap();
    let debug = format!("{callback:?}");
    assert!(
        !debug.contains("491234567890") && !debug.contains("a@b.c"),
        "{debug}"
    );
    assert!(debug.contains("c-1") && debug.contains("phone"), "{debug}");
}

/// Two sets of limits together: the stricter where both set one (the larger minimum, the
/// smaller of the others), each alone where only one does; another currency is not comparable.
#[test]
fn the_strictest_of_two_limits() {
    use rp_model::{Currency, LimitKind, Limits};
    let mut ours = Limits::none(Currency::KZT);
    ours.set(LimitKind::MinAmount, Some(10_000));
    ours.set(LimitKind::DailyCount, Some(10));
    ours.set(LimitKind::DailyAmount, Some(500_000));
    let mut theirs = Limits::none(Currency::KZT);
    theirs.set(LimitKind::MinAmount, Some(50_000));
    theirs.set(LimitKind::DailyCount, Some(3));
    theirs.set(LimitKind::MonthlyCount, Some(50));
    let both = ours.strictest(theirs);
    assert_eq!(both.get(LimitKind::MinAmount), Some(50_000));
    assert_eq!(both.get(LimitKind::DailyCount), Some(3));
    assert_eq!(both.get(LimitKind::DailyAmount), Some(500_000));
    assert_eq!(both.get(LimitKind::MonthlyCount), Some(50));
    assert_eq!(both.get(LimitKind::MaxAmount), None);
    assert_eq!(theirs.strictest(ours), both, "the same either way");
    // Amounts in another currency are not comparable; counts always are.
    let mut dollars = Limits::none(Currency::USD);
    dollars.set(LimitKind::MaxAmount, Some(100));
    dollars.set(LimitKind::DailyCount, Some(2));
    let mixed = ours.strictest(dollars);
    assert_eq!(mixed.get(LimitKind::MaxAmount), None);
    assert_eq!(mixed.get(LimitKind::DailyCount), Some(2));
    assert_eq!(mixed.currency, Currency::KZT);
    assert!(dollars.has_amounts() && !Limits::none(Currency::USD).has_amounts());
}
