//! The `/_sim/` endpoints and the same Rust API.

use std::time::Duration;

use rp_model::PaymentStatus;
use rp_sim::{Error, Outcome};
use serde_json::Value;

use crate::{Env, send};

async fn get(env: &Env, path: &str) -> crate::Answer {
    send(env.client.get(env.url(path))).await
}

#[tokio::test]
async fn inspection_endpoints_match_the_rust_api() {
    let env = Env::start().await;
    assert_eq!(env.payout("inspect-1", "77011234567").await.status, 200);
    assert_eq!(env.payout("inspect-2", "77011230001").await.status, 200);
    env.rx.wait_for("inspect-1", 1).await;
    env.rx.wait_for("inspect-2", 1).await;
    crate::eventually(|| env.sim.callbacks().len() == 2).await;

    let payments = get(&env, "/_sim/payments").await;
    assert_eq!(payments.status, 200);
    let list = payments.json.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!(list[0]["payment_id"], "inspect-1");
    assert_eq!(list[0]["status"], "success");
    assert_eq!(
        list[0]["phone"], "77011234567",
        "full number for a test tool"
    );
    assert_eq!(list[0]["operator"], "KCELL");
    assert_eq!(list[0]["callbacks_sent"], 1);
    assert_eq!(list[1]["status"], "decline");
    assert_eq!(list[1]["magic"], "decline20000");
    assert_eq!(
        serde_json::to_value(env.sim.payments()).unwrap(),
        payments.json
    );

    let one = get(&env, "/_sim/payments/inspect-2").await;
    assert_eq!(one.json["operations"][0]["code"], "20000");
    assert_eq!(
        env.sim.payment("inspect-2").unwrap().status,
        PaymentStatus::Decline
    );
    let missing = get(&env, "/_sim/payments/nope").await;
    assert_eq!(missing.status, 404);
    assert!(env.sim.payment("nope").is_none());

    let requests = get(&env, "/_sim/requests").await;
    assert_eq!(requests.json.as_array().unwrap().len(), 2);
    assert_eq!(requests.json[0]["http_status"], 200);
    assert_eq!(requests.json[0]["path"], "/v2/payment/mobile/payout");

    let callbacks = get(&env, "/_sim/callbacks").await;
    let callbacks = callbacks.json.as_array().unwrap();
    assert_eq!(callbacks.len(), 2);
    assert!(
        callbacks
            .iter()
            .all(|c| c["http_status"] == 200 && c["attempt"] == 1)
    );

    let config = get(&env, "/_sim/config").await;
    assert_eq!(config.json["project_ids"], serde_json::json!([1234]));
    assert_eq!(
        config.json["magic"].as_array().unwrap().len(),
        rp_sim::Magic::ALL.len()
    );
    assert!(!config.json.to_string().contains("sim-secret-key"));
}

#[tokio::test]
async fn force_through_the_rust_api_and_its_errors() {
    // A plain number that would stay processing for a minute: forcing settles it now and
    // sends its callback.
    let env = Env::start_with(|b| b.processing_delay(Duration::from_secs(60))).await;
    assert_eq!(env.payout("forced", "77011234567").await.status, 200);
    let payment = env.sim.force("forced", Outcome::Success).unwrap();
    assert_eq!(payment.status, PaymentStatus::Success);
    let callbacks = env.rx.wait_for("forced", 1).await;
    assert_eq!(callbacks[0]["payment"]["status"], "success");
    // Only a processing payment can be forced.
    let again = env.sim.force("forced", Outcome::Success).unwrap_err();
    assert!(matches!(again, Error::NotProcessing { .. }), "{again}");
    assert!(again.to_string().contains("success"), "{again}");
    let unknown = env.sim.force("unknown", Outcome::Success).unwrap_err();
    assert!(matches!(unknown, Error::UnknownPayment { .. }));
    // Over HTTP: 409, 404, 400.
    let conflict = send(
        env.client
            .post(env.url("/_sim/payments/forced/force"))
            .body(r#"{"status":"success"}"#),
    )
    .await;
    assert_eq!(conflict.status, 409);
    let not_found = send(
        env.client
            .post(env.url("/_sim/payments/unknown/force"))
            .body(r#"{"status":"success"}"#),
    )
    .await;
    assert_eq!(not_found.status, 404);
    let bad = send(
        env.client
            .post(env.url("/_sim/payments/forced/force"))
            .body(r#"{"status":"maybe"}"#),
    )
    .await;
    assert_eq!(bad.status, 400);
}

#[tokio::test]
async fn forcing_wins_over_the_processing_timer() {
    let processing = Duration::from_millis(300);
    let env = Env::start_with(|b| b.processing_delay(processing)).await;
    assert_eq!(env.payout("race", "77011234567").await.status, 200);
    env.sim
        .force(
            "race",
            Outcome::Decline {
                code: rp_model::ResponseCode::new("20000"),
            },
        )
        .unwrap();
    tokio::time::sleep(processing * 2).await;
    // The timer found the payment already final: one callback, the forced one.
    let callbacks = env.rx.callbacks_for("race");
    assert_eq!(callbacks.len(), 1);
    assert_eq!(callbacks[0]["payment"]["status"], "decline");
    assert_eq!(
        env.sim.payment("race").unwrap().status,
        PaymentStatus::Decline
    );
}

#[tokio::test]
async fn reset_forgets_everything() {
    let env = Env::start().await;
    assert_eq!(env.payout("before-reset", "77011230010").await.status, 200);
    let reset = send(env.client.post(env.url("/_sim/reset"))).await;
    assert_eq!(reset.json["status"], "ok");
    assert!(env.sim.payments().is_empty());
    assert!(env.sim.requests().is_empty());
    assert_eq!(env.status("before-reset").await.code(), "3061");
    // The ID can be used again.
    assert_eq!(env.payout("before-reset", "77011234567").await.status, 200);
    env.sim.reset();
    assert!(env.sim.payments().is_empty());
    let unknown: Value = get(&env, "/nothing-here").await.json;
    assert_eq!(unknown["status"], "error");
}
