//! Callback signing, content, retries, URLs and projects.

use std::time::Duration;

use rp_model::ProjectId;
use rp_model::wire::Callback;
use rp_sign::{SecretKey, Signer, SortVariant};
use rp_sim::{DEFAULT_SECRET_KEY, PAYOUT_PATH, Project, Simulator, TimeScale};
use serde_json::json;

use crate::{Env, PROCESSING, Receiver, client, payout_request, send};

#[tokio::test]
async fn callbacks_are_signed_and_shaped_like_the_platform() {
    let env = Env::start().await;
    assert_eq!(env.payout("signed", "77011234567").await.status, 200);
    env.rx.wait_for("signed", 1).await;
    let body = env.rx.bodies().remove(0);
    let verified = Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY))
        .verify_callback(&body)
        .unwrap();
    assert_eq!(verified.variant(), SortVariant::PhpNatural);
    let callback: Callback = serde_json::from_slice(&body).unwrap();
    assert_eq!(callback.project_id, Some(1234));
    let payment = callback.payment.as_ref().unwrap();
    assert_eq!(payment.id.as_deref(), Some("signed"));
    assert_eq!(payment.kind.as_deref(), Some("payout"));
    assert_eq!(payment.method.as_deref(), Some("mobile"));
    assert_eq!(payment.sum.as_ref().unwrap().amount, 150_000);
    assert_eq!(payment.sum.as_ref().unwrap().currency, "KZT");
    assert_eq!(payment.description.as_deref(), Some("test payout"));
    payment.date.as_ref().unwrap().unix_seconds().unwrap();
    let account = callback.account.as_ref().unwrap();
    assert_eq!(account.number.as_deref(), Some("77011234567"));
    assert_eq!(account.operator, Some(rp_model::Operator::Kcell));
    assert_eq!(callback.customer.unwrap().id.as_deref(), Some("customer-1"));
    let operation = callback.operation.unwrap();
    assert_eq!(operation.kind.as_deref(), Some("payout"));
    assert_eq!(operation.id.unwrap().get().to_string().len(), 16);
    assert!(operation.code.unwrap().is(0));
    assert_eq!(operation.sum_initial.unwrap().amount, 150_000);
    // The request ID of the operation is the one the payout answer gave.
    let payment = env.sim.payment("signed").unwrap();
    assert_eq!(
        operation.request_id.as_deref(),
        Some(payment.operations[0].request_id.as_str())
    );
    // The status response is signed with the same key.
    let status = env.wait_status("signed", "success").await;
    Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY))
        .verify_value(&status.json)
        .unwrap();
    assert_eq!(status.json["account"]["type"], "KCELL");
    assert_eq!(status.json["customer"]["id"], "customer-1");
}

#[tokio::test]
async fn callbacks_are_retried_until_200() {
    let env = Env::start().await;
    env.rx.answer_next(&[500, 500]);
    assert_eq!(env.payout("retried", "77011234567").await.status, 200);
    env.rx.wait_for("retried", 3).await;
    crate::eventually(|| env.sim.callbacks().iter().any(|c| c.delivered())).await;
    let log = env.sim.callbacks();
    let attempts: Vec<(u32, Option<u16>)> =
        log.iter().map(|c| (c.attempt, c.http_status)).collect();
    assert_eq!(attempts, [(1, Some(500)), (2, Some(500)), (3, Some(200))]);
    assert!(
        log.iter()
            .all(|c| c.sequence == 1 && c.payment_id == "retried")
    );
    // The same body each time, and no more attempts after the 200.
    let bodies = env.rx.bodies();
    assert!(bodies.windows(2).all(|w| w[0] == w[1]));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert_eq!(env.rx.bodies().len(), 3);
    assert_eq!(env.sim.payment("retried").unwrap().callbacks_sent, 1);
}

#[tokio::test]
async fn unreachable_receiver_is_retried_and_logged() {
    // Nothing listens there: the other tests only use 127.0.0.1, so no test server can take
    // the port by chance (a freed port on 127.0.0.1 could be reused by a parallel test).
    let env = Env::start_with(|b| {
        b.callback_url("http://127.0.0.2:9/nowhere")
            .time_scale(TimeScale::per_million(10))
    })
    .await;
    assert_eq!(env.payout("nobody", "77011234567").await.status, 200);
    crate::eventually(|| env.sim.callbacks().len() >= 3).await;
    let log = env.sim.callbacks();
    assert!(
        log.iter()
            .all(|c| c.http_status.is_none() && c.error.is_some())
    );
    assert_eq!(log[2].attempt, 3);
}

#[tokio::test]
async fn merchant_callback_url_wins_and_service_provider_is_reported() {
    let other = Receiver::start().await;
    let env = Env::start().await;
    let mut request = payout_request("own-url", "77011234567");
    request["general"]["merchant_callback_url"] = json!(other.url());
    request["account"]["service_provider"] = json!("TELE2");
    assert_eq!(env.post_signed(PAYOUT_PATH, &request).await.status, 200);
    let callbacks = other.wait_for("own-url", 1).await;
    assert_eq!(callbacks[0]["account"]["type"], "TELE2");
    tokio::time::sleep(PROCESSING * 2).await;
    assert!(
        env.rx.callbacks().is_empty(),
        "the project URL must not get it"
    );
}

#[tokio::test]
async fn operator_comes_from_the_prefix() {
    let env = Env::start().await;
    for (number, operator) in [
        ("77051234567", "BEELINE"),
        ("77771234567", "BEELINE"),
        ("77001234567", "ALTEL"),
        ("77071234567", "TELE2"),
        ("77021234567", "KCELL"),
    ] {
        let expected = rp_model::PrefixInfo::lookup(&number[1..4])
            .unwrap()
            .operators[0]
            .id();
        assert_eq!(expected, operator, "prefix table changed for {number}");
        assert_eq!(env.payout(number, number).await.status, 200);
        let callbacks = env.rx.wait_for(number, 1).await;
        assert_eq!(callbacks[0]["account"]["type"], operator, "{number}");
    }
}

#[tokio::test]
async fn force_disable_and_callback_delay_are_honoured() {
    let env = Env::start_with(|b| b.time_scale(TimeScale::per_mille(1))).await;
    let mut disabled = payout_request("disabled", "77011234567");
    disabled["callback"] = json!({"force_disable": 1});
    assert_eq!(env.post_signed(PAYOUT_PATH, &disabled).await.status, 200);
    let mut delayed = payout_request("delayed", "77011234567");
    delayed["callback"] = json!({"delay": 200}); // 200 s × 0.001 = 200 ms
    let started = std::time::Instant::now();
    assert_eq!(env.post_signed(PAYOUT_PATH, &delayed).await.status, 200);
    env.rx.wait_for("delayed", 1).await;
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
    env.wait_status("disabled", "success").await;
    assert!(env.rx.callbacks_for("disabled").is_empty());
}

#[tokio::test]
async fn several_projects_each_with_its_key_and_url() {
    let rx1 = Receiver::start().await;
    let rx2 = Receiver::start().await;
    let key1 = SecretKey::from("key-one");
    let key2 = SecretKey::from("key-two");
    let sim = Simulator::builder()
        .add_project(
            Project::new(ProjectId::new(11).unwrap(), key1.clone()).with_callback_url(rx1.url()),
        )
        .add_project(
            Project::new(ProjectId::new(22).unwrap(), key2.clone()).with_callback_url(rx2.url()),
        )
        .processing_delay(PROCESSING)
        .start()
        .await
        .unwrap();
    assert_eq!(sim.project_ids(), [11, 22]);
    let url = format!("{}{PAYOUT_PATH}", sim.base_url());
    let mut request = payout_request("same-id", "77011234567");
    request["general"]["project_id"] = json!(22);
    // Project 22 with project 11's key: invalid signature.
    let wrong = send(
        client()
            .post(&url)
            .body(Signer::new(&key1).sign_request_body(&request).unwrap()),
    )
    .await;
    assert_eq!(wrong.code(), "3261");
    let ok = send(
        client()
            .post(&url)
            .body(Signer::new(&key2).sign_request_body(&request).unwrap()),
    )
    .await;
    assert_eq!(ok.status, 200);
    // The same payment ID in the other project is another payment.
    request["general"]["project_id"] = json!(11);
    let ok = send(
        client()
            .post(&url)
            .body(Signer::new(&key1).sign_request_body(&request).unwrap()),
    )
    .await;
    assert_eq!(ok.status, 200);
    assert_eq!(sim.payments().len(), 2);
    let body2 = {
        rx2.wait_for("same-id", 1).await;
        rx2.bodies().remove(0)
    };
    Signer::new(&key2).verify_callback(&body2).unwrap();
    assert!(Signer::new(&key1).verify_callback(&body2).is_err());
    rx1.wait_for("same-id", 1).await;
    assert_eq!(rx1.callbacks()[0]["project_id"], 11);
    // The default project is not served when projects are configured.
    let mut default = payout_request("default", "77011234567");
    default["general"]["project_id"] = json!(1234);
    let answer = send(
        client().post(&url).body(
            Signer::new(&SecretKey::from(DEFAULT_SECRET_KEY))
                .sign_request_body(&default)
                .unwrap(),
        ),
    )
    .await;
    assert_eq!(answer.code(), "2442");
    sim.shutdown().await;
}

#[tokio::test]
async fn shutdown_stops_pending_callbacks_and_the_listener() {
    let env = Env::start().await;
    // A late callback (10 × processing delay) is still pending at shutdown.
    assert_eq!(env.payout("pending", "77011230014").await.status, 200);
    let url = env.url(PAYOUT_PATH);
    let started = std::time::Instant::now();
    env.sim.shutdown().await;
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
    tokio::time::sleep(PROCESSING * 12).await;
    assert!(env.rx.callbacks().is_empty());
    let after = client()
        .post(url)
        .timeout(Duration::from_millis(300))
        .body("{}")
        .send()
        .await;
    assert!(
        after.is_err(),
        "the simulator must not answer after shutdown"
    );
}
