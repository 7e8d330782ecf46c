//! Callbacks as the network delivers them: twice, out of order, with a bad signature, late,
//! never, and a reversal after success.

use rp_e2e::Harness;
use rp_model::PaymentStatus;
use rp_payout::{CallbackOutcome, PayoutState, ReconcileResult};
use rp_sim::Outcome;

/// Pays out to a magic `last4` that makes the simulator send two callbacks; checks the first
/// was applied, and returns the second's outcome and the payout's final state.
async fn applied_then(last4: &str) -> (CallbackOutcome, PayoutState) {
    let h = Harness::start().await;
    let payout = h.payout(last4);
    h.client.payout(&payout).await.unwrap();
    let outcomes = h.wait_outcomes(payout.payment_id(), 2).await;
    assert!(
        matches!(outcomes[0], CallbackOutcome::Applied { .. }),
        "{outcomes:?}"
    );
    let state = h.record(payout.payment_id()).await.state;
    h.shutdown().await;
    (outcomes[1].clone(), state)
}

#[tokio::test]
async fn a_callback_sent_twice_is_applied_once() {
    let (second, state) = applied_then("0011").await;
    assert!(
        matches!(second, CallbackOutcome::Duplicate { .. }),
        "{second:?}"
    );
    assert_eq!(state, PayoutState::Status(PaymentStatus::Success));
}

#[tokio::test]
async fn a_stale_callback_after_the_final_one_does_not_move_the_state_back() {
    let (second, state) = applied_then("0012").await;
    assert!(
        matches!(second, CallbackOutcome::Stale { .. }),
        "{second:?}"
    );
    assert_eq!(state, PayoutState::Status(PaymentStatus::Success));
}

#[tokio::test]
async fn a_badly_signed_callback_is_refused_and_the_payout_reconciled() {
    let h = Harness::start().await;
    let payout = h.payout("0013");
    h.client.payout(&payout).await.unwrap();
    // The endpoint refuses the forged callback (the simulator keeps redelivering it).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.untrusted().is_empty() {
        assert!(std::time::Instant::now() < deadline, "no callback arrived");
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(matches!(
        h.untrusted()[0],
        CallbackOutcome::InvalidSignature { .. }
    ));
    assert_eq!(h.untrusted()[0].http_status(), 401);
    let record = h.record(payout.payment_id()).await;
    assert_eq!(
        record.state,
        PayoutState::Accepted,
        "an untrusted callback changed the state"
    );

    // Reconciliation asks the status endpoint and learns the truth.
    assert_reconciled_to(&h, payout.payment_id(), PaymentStatus::Success).await;
    h.shutdown().await;
}

#[tokio::test]
async fn a_lost_callback_is_resolved_by_reconcile() {
    let h = Harness::start().await;
    let payout = h.payout("0010");
    h.client.payout(&payout).await.unwrap();
    // Still processing on the platform: reconcile leaves it unsettled.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let report = h.client.reconcile().await.unwrap();
    assert!(
        report
            .entries
            .iter()
            .any(|e| &e.payment_id == payout.payment_id())
    );
    assert!(!h.record(payout.payment_id()).await.state.is_settled());

    // The platform settles it (forced in the simulator); with this magic value no callback
    // is ever sent, so only reconcile can learn the result, from the status endpoint.
    h.sim
        .force(
            payout.payment_id().as_str(),
            Outcome::Decline { code: 20206.into() },
        )
        .unwrap();
    assert_reconciled_to(&h, payout.payment_id(), PaymentStatus::Decline).await;
    let record = h.record(payout.payment_id()).await;
    assert_eq!(record.state, PayoutState::Status(PaymentStatus::Decline));
    assert_eq!(
        record.last_code.map(|c| c.as_str().to_owned()).as_deref(),
        Some("20206")
    );
    assert!(
        h.outcomes_for(payout.payment_id()).is_empty(),
        "a callback arrived after all"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_late_callback_after_reconcile_is_a_duplicate() {
    let h = Harness::start().await;
    let payout = h.payout("0014");
    h.client.payout(&payout).await.unwrap();
    // Reconcile once the payment is final on the platform but before the late callback.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let settled = loop {
        assert!(
            std::time::Instant::now() < deadline,
            "reconcile never settled it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        h.client.reconcile().await.unwrap();
        let record = h.record(payout.payment_id()).await;
        if record.state.is_settled() {
            break record;
        }
    };
    assert_eq!(settled.state, PayoutState::Status(PaymentStatus::Success));
    assert!(
        h.outcomes_for(payout.payment_id()).is_empty(),
        "the callback was not late"
    );
    let outcomes = h.wait_outcomes(payout.payment_id(), 1).await;
    assert!(
        matches!(outcomes[0], CallbackOutcome::Duplicate { .. }),
        "{outcomes:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn a_reversal_after_success_is_surfaced() {
    let (second, state) = applied_then("0015").await;
    assert!(
        matches!(second, CallbackOutcome::Reversed { .. }),
        "{second:?}"
    );
    assert_eq!(state, PayoutState::Status(PaymentStatus::Reversed));
}

#[tokio::test]
async fn a_settled_payout_whose_callback_is_lost_is_found_by_reconcile() {
    let h = Harness::start().await;
    let payout = h.payout("0016");
    h.client.payout(&payout).await.unwrap();
    // Wait until the platform has settled it, then reconcile.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while h.sim.payment(payout.payment_id().as_str()).unwrap().status != PaymentStatus::Success {
        assert!(
            std::time::Instant::now() < deadline,
            "the simulator never settled it"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert_eq!(
        h.record(payout.payment_id()).await.state,
        PayoutState::Accepted
    );
    let report = h.client.reconcile().await.unwrap();
    assert_eq!(report.updated(), 1, "{report:?}");
    let record = h.record(payout.payment_id()).await;
    assert_eq!(record.state, PayoutState::Status(PaymentStatus::Success));
    assert!(h.outcomes_for(payout.payment_id()).is_empty());
    h.shutdown().await;
}

/// Runs reconcile and asserts it moved `payment_id` to `status` (learned from the status
/// endpoint).
async fn assert_reconciled_to(
    h: &Harness,
    payment_id: &rp_model::PaymentId,
    status: PaymentStatus,
) {
    let report = h.client.reconcile().await.unwrap();
    let entry = report
        .entries
        .iter()
        .find(|e| &e.payment_id == payment_id)
        .expect("the payout was reconciled");
    assert!(
        matches!(&entry.result, ReconcileResult::Updated { state: PayoutState::Status(s), .. } if *s == status),
        "{entry:?}"
    );
}
