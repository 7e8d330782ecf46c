//! The merchant's first steps, without a network: these must hold against the default
//! features of `rp-payout`.

#![allow(clippy::unwrap_used)]

use payout_default::{Next, next_after, on_callback, payout_from_text};
use rp_payout::{Client, Config, Error};

fn client() -> Client {
    let config = Config::from_env_map(|name| match name {
        "RP_PROJECT_ID" => Some("1234".to_owned()),
        "RP_SECRET_KEY" => Some("merchant-test-key".to_owned()),
        "RP_BASE_URL" => Some("http://127.0.0.1:9".to_owned()),
        _ => None,
    })
    .unwrap();
    Client::new(config).unwrap()
}

#[test]
fn a_payout_from_what_people_type() {
    let client = client();
    let payout = payout_from_text(
        client.new_payment_id().unwrap(),
        "8 (701) 123-45-67",
        "1 500 тг",
        "customer-42",
    )
    .unwrap();
    assert_eq!(payout.amount().minor_units(), 150_000);
    assert_eq!(payout.phone().as_str(), "77011234567");
}

#[test]
fn unknown_outcomes_are_reconciled_and_refusals_fixed() {
    let id = rp_model::PaymentId::new("order-9").unwrap();
    let unknown = Error::OutcomeUnknown {
        payment_id: id.clone(),
        attempts: 1,
        last: "timed out".to_owned(),
    };
    assert_eq!(next_after(&unknown), Next::Reconcile);
    let not_sent = Error::NotSent {
        payment_id: id,
        attempts: 1,
        last: "connection refused".to_owned(),
    };
    assert_eq!(next_after(&not_sent), Next::Fix);
}

#[tokio::test]
async fn a_forged_callback_is_refused() {
    let (status, _) = on_callback(&client(), br#"{"project_id":1234,"signature":"x"}"#).await;
    assert_ne!(status, 200);
}
