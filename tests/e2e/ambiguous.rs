//! The ambiguous cases: the payout may have been recorded although the answer was an error,
//! a dropped connection, or too slow. The client must resolve each through the status
//! endpoint and the simulator must end with exactly one payout, never two.

use std::time::Duration;

use rp_e2e::{Harness, Options};
use rp_model::PaymentStatus;
use rp_payout::{Acceptance, PayoutState};

/// Pays out to `last4`, waits for the final state, and checks the simulator has exactly one
/// payment for it, accepted once.
async fn exactly_once(h: &Harness, last4: &str) -> rp_payout::PayoutReceipt {
    let payout = h.payout(last4);
    let receipt = h.client.payout(&payout).await.unwrap();
    let record = h.wait_settled(payout.payment_id()).await;
    assert_eq!(
        record.state,
        PayoutState::Status(PaymentStatus::Success),
        "{last4}"
    );
    let payment = h.sim.payment(payout.payment_id().as_str()).unwrap();
    assert_eq!(
        payment.accepted_requests, 1,
        "{last4}: the payout was accepted twice"
    );
    let recorded = h
        .sim
        .payments()
        .into_iter()
        .filter(|p| p.phone == payout.phone())
        .count();
    assert_eq!(
        recorded, 1,
        "{last4}: the simulator recorded {recorded} payouts"
    );
    receipt
}

#[tokio::test]
async fn a_5xx_after_commit_is_found_by_status_not_paid_twice() {
    let h = Harness::start().await;
    let receipt = exactly_once(&h, "0020").await;
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    h.shutdown().await;
}

#[tokio::test]
async fn a_dropped_connection_after_commit_is_found_by_status() {
    let h = Harness::start().await;
    let receipt = exactly_once(&h, "0021").await;
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    h.shutdown().await;
}

#[tokio::test]
async fn a_response_slower_than_the_timeout_is_found_by_status() {
    let h = Harness::start_with(Options {
        slow_delay: Duration::from_millis(1500),
        attempt_timeout: Duration::from_millis(500),
        ..Options::default()
    })
    .await;
    let receipt = exactly_once(&h, "0023").await;
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    h.shutdown().await;
}

#[tokio::test]
async fn a_429_is_retried_after_retry_after() {
    let h = Harness::start().await;
    let receipt = exactly_once(&h, "0022").await;
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(receipt.attempts, 2);
    let payout_requests = h
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path == rp_sim::PAYOUT_PATH)
        .map(|r| r.http_status)
        .collect::<Vec<_>>();
    assert_eq!(payout_requests, vec![Some(429), Some(200)]);
    h.shutdown().await;
}

#[tokio::test]
async fn resubmitting_after_an_ambiguous_outcome_sends_nothing_new() {
    let h = Harness::start().await;
    let payout = h.payout("0020");
    h.client.payout(&payout).await.unwrap();
    h.wait_settled(payout.payment_id()).await;
    let requests_before = h.sim.requests().len();
    let again = h.client.payout(&payout).await.unwrap();
    assert_eq!(again.acceptance, Acceptance::AlreadyRecorded);
    assert_eq!(h.sim.requests().len(), requests_before);
    assert_eq!(h.sim.payments().len(), 1);
    h.shutdown().await;
}

#[tokio::test]
async fn a_fresh_process_retrying_an_accepted_payment_id_does_not_pay_twice() {
    // The first process sent the payout and forgot about it (crashed, or a CLI run); a second
    // process with an empty store sends the same payout under the same payment ID. The platform
    // answers 3041, and the client must learn from the status endpoint that it is already paid
    // rather than report "rejected, not registered".
    let h = Harness::start().await;
    let payout = h.payout("0000");
    h.client.payout(&payout).await.unwrap();
    h.wait_settled(payout.payment_id()).await;

    let config = rp_payout::Config::new(
        rp_model::ProjectId::new(rp_e2e::PROJECT).unwrap(),
        rp_sign::SecretKey::from(rp_e2e::SECRET),
    )
    .with_base_url(h.sim.base_url());
    let fresh = rp_payout::Client::new(config).unwrap();
    let receipt = fresh.payout(&payout).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(receipt.state, PayoutState::Status(PaymentStatus::Success));
    let payments = h.sim.payments();
    assert_eq!(payments.len(), 1);
    assert_eq!(payments[0].accepted_requests, 1);
    h.shutdown().await;
}
