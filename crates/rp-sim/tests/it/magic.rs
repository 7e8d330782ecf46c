//! Every magic value: the callbacks a real receiver gets, the status endpoint, the raw HTTP.

use std::time::{Duration, Instant};

use rp_sign::{SecretKey, Signer};
use rp_sim::{DEFAULT_SECRET_KEY, PAYOUT_PATH};
use serde_json::Value;

use crate::{Env, PROCESSING, SLOW, client, payout_request};

fn verify(body: &[u8]) -> Value {
    Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY))
        .verify_callback(body)
        .expect("callback signature")
        .value()
        .expect("callback JSON")
}

/// The magic numbers use prefix 701; the operator then is KCELL.
fn number(digits: &str) -> String {
    format!("7701123{digits}")
}

#[tokio::test]
async fn declines_carry_their_codes() {
    let env = Env::start().await;
    for (digits, code, message) in [
        ("0001", "20000", "General decline"),
        ("0002", "20102", "Incorrect account data entered"),
        ("0003", "20206", "Difficulties on the mobile operator side"),
        ("0004", "504", "Insufficient funds on the balance"),
        ("0005", "3028", "Insufficient funds on merchant balance"),
    ] {
        let id = format!("decline-{digits}");
        assert_eq!(env.payout(&id, &number(digits)).await.status, 200);
        let callbacks = env.rx.wait_for(&id, 1).await;
        let callback = &callbacks[0];
        assert_eq!(callback["payment"]["status"], "decline", "{digits}");
        assert_eq!(callback["operation"]["status"], "decline");
        assert_eq!(callback["operation"]["code"], code);
        assert_eq!(callback["operation"]["message"], message);
        assert_eq!(callback["errors"][0]["code"], code);
        assert_eq!(callback["account"]["type"], "KCELL");
        let status = env.wait_status(&id, "decline").await;
        assert_eq!(status.json["operations"][0]["code"], code);
        assert_eq!(status.json["errors"][0]["code"], code);
    }
    // Exactly one callback each.
    tokio::time::sleep(PROCESSING * 3).await;
    assert_eq!(env.rx.callbacks().len(), 5);
}

#[tokio::test]
async fn default_is_success() {
    let env = Env::start().await;
    assert_eq!(env.payout("plain", "77011234567").await.status, 200);
    let callbacks = env.rx.wait_for("plain", 1).await;
    assert_eq!(callbacks[0]["payment"]["status"], "success");
    assert_eq!(callbacks[0]["operation"]["code"], "0");
    assert_eq!(callbacks[0]["operation"]["message"], "Success");
    assert!(callbacks[0].get("errors").is_none());
    let status = env.wait_status("plain", "success").await;
    assert_eq!(status.json["operations"][0]["status"], "success");
}

#[tokio::test]
async fn error_0006_then_a_resend_succeeds() {
    let env = Env::start().await;
    let id = "magic-0006";
    assert_eq!(env.payout(id, &number("0006")).await.status, 200);
    let callbacks = env.rx.wait_for(id, 1).await;
    assert_eq!(callbacks[0]["payment"]["status"], "error");
    assert_eq!(callbacks[0]["operation"]["code"], "3062");
    assert_eq!(callbacks[0]["errors"][0]["code"], "3062");
    env.wait_status(id, "error").await;
    assert_eq!(env.payout(id, &number("0006")).await.status, 200);
    let callbacks = env.rx.wait_for(id, 2).await;
    assert_eq!(callbacks[1]["payment"]["status"], "success");
    assert_ne!(
        callbacks[0]["operation"]["id"], callbacks[1]["operation"]["id"],
        "a resend is a new operation"
    );
    assert_eq!(env.sim.payments().len(), 1);
}

#[tokio::test]
async fn no_callback_0010_until_forced() {
    let env = Env::start().await;
    let id = "magic-0010";
    assert_eq!(env.payout(id, &number("0010")).await.status, 200);
    tokio::time::sleep(PROCESSING * 4).await;
    assert!(env.rx.callbacks_for(id).is_empty());
    let status = env.status(id).await;
    assert_eq!(status.json["payment"]["status"], "processing");
    assert_eq!(status.json["operations"][0]["status"], "processing");
    // Forced through /_sim/.
    let forced = crate::send(
        env.client
            .post(env.url(&format!("/_sim/payments/{id}/force")))
            .body(r#"{"status":"decline","code":"20206"}"#),
    )
    .await;
    assert_eq!(forced.status, 200, "{:?}", forced.json);
    assert_eq!(forced.json["status"], "decline");
    env.wait_status(id, "decline").await;
    let status = env.status(id).await;
    assert_eq!(status.json["operations"][0]["code"], "20206");
    // "No callback ever" holds for a forced result too.
    tokio::time::sleep(PROCESSING * 4).await;
    assert!(env.rx.callbacks_for(id).is_empty());
    assert_eq!(env.sim.payment(id).unwrap().callbacks_sent, 0);
}

#[tokio::test]
async fn lost_callback_0016_settles_without_a_callback() {
    let env = Env::start().await;
    let id = "magic-0016";
    assert_eq!(env.payout(id, &number("0016")).await.status, 200);
    env.wait_status(id, "success").await;
    let status = env.status(id).await;
    assert_eq!(status.json["operations"][0]["status"], "success");
    tokio::time::sleep(PROCESSING * 4).await;
    assert!(env.rx.callbacks_for(id).is_empty());
    assert_eq!(env.sim.payment(id).unwrap().callbacks_sent, 0);
}

#[tokio::test]
async fn duplicate_callback_0011() {
    let env = Env::start().await;
    let id = "magic-0011";
    assert_eq!(env.payout(id, &number("0011")).await.status, 200);
    env.rx.wait_for(id, 2).await;
    let bodies: Vec<Vec<u8>> = env
        .rx
        .bodies()
        .into_iter()
        .filter(|b| verify(b)["payment"]["id"] == id)
        .collect();
    assert_eq!(bodies.len(), 2);
    assert_eq!(bodies[0], bodies[1], "the same callback twice");
    assert_eq!(verify(&bodies[0])["payment"]["status"], "success");
    tokio::time::sleep(PROCESSING * 2).await;
    assert_eq!(env.rx.callbacks_for(id).len(), 2);
}

#[tokio::test]
async fn out_of_order_0012() {
    let env = Env::start().await;
    let id = "magic-0012";
    assert_eq!(env.payout(id, &number("0012")).await.status, 200);
    let callbacks = env.rx.wait_for(id, 2).await;
    assert_eq!(callbacks[0]["payment"]["status"], "success");
    assert_eq!(callbacks[1]["payment"]["status"], "processing");
    assert_eq!(callbacks[1]["operation"]["status"], "processing");
    for body in env.rx.bodies() {
        verify(&body);
    }
    // The status endpoint stays final.
    env.wait_status(id, "success").await;
}

#[tokio::test]
async fn bad_signature_0013() {
    let env = Env::start().await;
    let id = "magic-0013";
    assert_eq!(env.payout(id, &number("0013")).await.status, 200);
    env.rx.wait_for(id, 1).await;
    let body = env.rx.bodies().remove(0);
    let error = Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY))
        .verify_callback(&body)
        .unwrap_err();
    assert!(
        matches!(error, rp_sign::Error::InvalidSignature { .. }),
        "{error}"
    );
    // The status endpoint tells the truth, correctly signed.
    let status = env.wait_status(id, "success").await;
    Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY))
        .verify_value(&status.json)
        .unwrap();
    crate::eventually(|| !env.sim.callbacks().is_empty()).await;
    assert!(!env.sim.callbacks()[0].signature_valid);
}

#[tokio::test]
async fn late_callback_0014() {
    // A longer processing delay leaves a wide window between the final status and the
    // callback, so a slow machine does not make the test flaky.
    let processing = PROCESSING * 3;
    let env = Env::start_with(|b| b.processing_delay(processing)).await;
    let id = "magic-0014";
    let started = Instant::now();
    assert_eq!(env.payout(id, &number("0014")).await.status, 200);
    // Final in the status endpoint well before the callback.
    env.wait_status(id, "success").await;
    assert!(env.rx.callbacks_for(id).is_empty(), "callback too early");
    let callbacks = env.rx.wait_for(id, 1).await;
    assert!(
        started.elapsed() >= processing * 10,
        "callback after {:?}",
        started.elapsed()
    );
    assert_eq!(callbacks[0]["payment"]["status"], "success");
}

#[tokio::test]
async fn reversed_0015() {
    let env = Env::start().await;
    let id = "magic-0015";
    assert_eq!(env.payout(id, &number("0015")).await.status, 200);
    let callbacks = env.rx.wait_for(id, 2).await;
    assert_eq!(callbacks[0]["payment"]["status"], "success");
    assert_eq!(callbacks[1]["payment"]["status"], "reversed");
    assert_eq!(callbacks[1]["operation"]["type"], "reversal");
    let status = env.wait_status(id, "reversed").await;
    let kinds: Vec<&str> = status.json["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["type"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["payout", "reversal"]);
}

#[tokio::test]
async fn server_error_after_recording_0020() {
    let env = Env::start().await;
    let id = "magic-0020";
    let answer = env.payout(id, &number("0020")).await;
    assert_eq!(answer.status, 500);
    assert_eq!(
        answer.json,
        serde_json::json!({"status": "error", "message": "Internal server error"})
    );
    assert_eq!(env.sim.payments().len(), 1, "recorded despite the 500");
    // The resend finds it.
    let resend = env.payout(id, &number("0020")).await;
    assert_eq!(resend.status, 409);
    assert_eq!(resend.code(), "3041");
    assert_eq!(env.sim.payments().len(), 1);
    let callbacks = env.rx.wait_for(id, 1).await;
    assert_eq!(callbacks[0]["payment"]["status"], "success");
}

#[tokio::test]
async fn dropped_connection_after_recording_0021() {
    let env = Env::start().await;
    let id = "magic-0021";
    let body = env
        .signer
        .sign_request_body(&payout_request(id, &number("0021")))
        .unwrap();
    let result = client().post(env.url(PAYOUT_PATH)).body(body).send().await;
    let error = result.expect_err("the connection must be dropped without a response");
    assert!(!error.is_timeout() && !error.is_status(), "{error:?}");
    assert_eq!(env.sim.payments().len(), 1, "recorded before the drop");
    let log = env.sim.requests();
    assert_eq!(log.len(), 1);
    assert_eq!(log[0].http_status, None);
    let resend = env.payout(id, &number("0021")).await;
    assert_eq!(resend.code(), "3041");
    assert_eq!(env.sim.payments().len(), 1);
    env.rx.wait_for(id, 1).await;
}

#[tokio::test]
async fn rate_limited_0022_is_not_recorded() {
    let env = Env::start().await;
    let id = "magic-0022";
    let answer = env.payout(id, &number("0022")).await;
    assert_eq!(answer.status, 429);
    assert_eq!(answer.headers["retry-after"], "1");
    assert_eq!(
        answer.json,
        serde_json::json!({"status": "error", "code": "429", "message": "Too many requests"})
    );
    assert!(env.sim.payments().is_empty(), "429 must not record");
    let retry = env.payout(id, &number("0022")).await;
    assert_eq!(retry.status, 200, "{:?}", retry.json);
    assert_eq!(env.sim.payments().len(), 1);
    env.rx.wait_for(id, 1).await;
}

#[tokio::test]
async fn slow_response_0023_is_recorded_first() {
    let env = Env::start().await;
    let id = "magic-0023";
    let body = env
        .signer
        .sign_request_body(&payout_request(id, &number("0023")))
        .unwrap();
    // A client that gives up before the slow delay.
    let result = client()
        .post(env.url(PAYOUT_PATH))
        .timeout(Duration::from_millis(100))
        .body(body)
        .send()
        .await;
    assert!(result.expect_err("must time out").is_timeout());
    assert_eq!(env.sim.payments().len(), 1, "recorded before the delay");
    assert_eq!(env.payout(id, &number("0023")).await.code(), "3041");
    assert_eq!(env.sim.payments().len(), 1);

    // A patient client gets the normal answer after the slow delay.
    let started = Instant::now();
    let answer = env.payout("magic-0023-patient", &number("0023")).await;
    assert!(started.elapsed() >= SLOW, "{:?}", started.elapsed());
    assert_eq!(answer.status, 200);
    assert_eq!(answer.json["status"], "success");
    assert_eq!(env.sim.payments().len(), 2);
}
