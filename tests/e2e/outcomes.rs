//! Plain outcomes: success, each decline code, `error` then a resend under the same ID,
//! a synchronous rejection, and the operator list.

use rp_e2e::Harness;
use rp_model::{Money, Operator, PaymentStatus};
use rp_payout::{Acceptance, CallbackOutcome, Error, PayoutState};

#[tokio::test]
async fn success_is_accepted_then_settled_by_a_verified_callback() {
    let h = Harness::start().await;
    let payout = h.payout("0000");
    let receipt = h.client.payout(&payout).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(receipt.attempts, 1);

    let record = h.wait_settled(payout.payment_id()).await;
    assert_eq!(record.state, PayoutState::Status(PaymentStatus::Success));
    let outcomes = h.wait_outcomes(payout.payment_id(), 1).await;
    assert!(
        matches!(outcomes[0], CallbackOutcome::Applied { .. }),
        "{outcomes:?}"
    );

    let sim = h.sim.payment(payout.payment_id().as_str()).unwrap();
    assert_eq!(sim.status, PaymentStatus::Success);
    assert_eq!(sim.accepted_requests, 1);
    assert_eq!(sim.amount, Money::kzt(1500).unwrap().minor_units());
    assert_eq!(sim.phone, payout.phone());
    // The callback the simulator sent was signed and delivered once. The simulator logs a
    // delivery when the answer is back, which can be after the endpoint has handled it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let delivered = loop {
        let delivered: Vec<_> = h
            .sim
            .callbacks()
            .into_iter()
            .filter(|c| c.payment_id == payout.payment_id().as_str())
            .collect();
        if !delivered.is_empty() || std::time::Instant::now() > deadline {
            break delivered;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    };
    assert_eq!(delivered.len(), 1);
    assert!(delivered[0].delivered() && delivered[0].signature_valid);
    h.shutdown().await;
}

#[tokio::test]
async fn every_decline_code_reaches_the_record() {
    let h = Harness::start().await;
    for (last4, code) in [
        ("0001", 20000),
        ("0002", 20102),
        ("0003", 20206),
        ("0004", 504),
        ("0005", 3028),
    ] {
        let payout = h.payout(last4);
        h.client.payout(&payout).await.unwrap();
        let record = h.wait_settled(payout.payment_id()).await;
        assert_eq!(
            record.state,
            PayoutState::Status(PaymentStatus::Decline),
            "{last4}"
        );
        let last_code = record.last_code.as_ref().map(|c| c.as_str().to_owned());
        assert_eq!(last_code, Some(code.to_string()), "{last4}");
        // The status endpoint agrees with the callback.
        let report = h.client.status(payout.payment_id()).await.unwrap();
        assert_eq!(report.status, PaymentStatus::Decline);
        assert!(report.signature_verified);
    }
    assert_eq!(h.sim.payments().len(), 5);
    h.shutdown().await;
}

#[tokio::test]
async fn error_status_is_resent_under_the_same_payment_id() {
    let h = Harness::start().await;
    let payout = h.payout("0006");
    h.client.payout(&payout).await.unwrap();
    let record = h
        .wait_for(payout.payment_id(), |s| {
            *s == PayoutState::Status(PaymentStatus::Error)
        })
        .await;
    assert!(record.state.is_resendable());

    // The payout is resent under the same ID; the simulator re-processes it.
    let receipt = h.client.resume(payout.payment_id()).await.unwrap();
    assert_eq!(&receipt.payment_id, payout.payment_id());
    let record = h.wait_settled(payout.payment_id()).await;
    assert_eq!(record.state, PayoutState::Status(PaymentStatus::Success));

    let payments = h.sim.payments();
    assert_eq!(payments.len(), 1, "one payment, never a second ID");
    assert_eq!(payments[0].accepted_requests, 2);
    assert_eq!(payments[0].status, PaymentStatus::Success);
    h.shutdown().await;
}

#[tokio::test]
async fn a_synchronous_rejection_is_typed_and_recorded() {
    let h = Harness::start().await;
    let payout = h.payout("0000");
    h.client.payout(&payout).await.unwrap();
    // A different payout under a used payment ID is refused before anything is sent.
    let other = rp_model::Payout::builder()
        .payment_id(payout.payment_id().clone())
        .phone(payout.phone())
        .amount(Money::kzt(9).unwrap())
        .customer_id(payout.customer_id().unwrap().clone())
        .build()
        .unwrap();
    let requests_before = h.sim.requests().len();
    let error = h.client.payout(&other).await.unwrap_err();
    assert!(matches!(error, Error::PaymentIdConflict { .. }), "{error}");
    assert_eq!(h.sim.requests().len(), requests_before);

    // An amount over the simulator's limit is refused by the platform with 3104.
    let big = rp_model::Payout::builder()
        .payment_id(h.client.new_payment_id().unwrap())
        .phone(payout.phone())
        .amount(Money::kzt(10_000_000).unwrap())
        .customer_id(payout.customer_id().unwrap().clone())
        .build()
        .unwrap();
    match h.client.payout(&big).await.unwrap_err() {
        Error::Rejected { code, .. } => assert_eq!(code.as_str(), "3104"),
        other => panic!("expected a 3104 rejection, got {other}"),
    }
    let record = h.record(big.payment_id()).await;
    assert!(
        matches!(record.state, PayoutState::Rejected { .. }),
        "{:?}",
        record.state
    );
    h.shutdown().await;
}

#[tokio::test]
async fn the_operator_list_comes_from_the_simulator() {
    let h = Harness::start().await;
    let list = h.client.operators().await.unwrap();
    for operator in Operator::KNOWN {
        assert!(
            list.operators.contains(&operator),
            "{operator} missing from {list:?}"
        );
    }
    h.shutdown().await;
}
