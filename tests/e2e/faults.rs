//! The platform behaviours behind the review's money-safety defects, through the real client:
//! the status lag, a resend refused after a maybe-sent first attempt, `partially paid out`,
//! `partially reversed` and `awaiting clarification`. Each payout is paid exactly once and
//! none is lost or recorded as something it is not.

use std::time::Duration;

use rp_e2e::{Harness, Options};
use rp_model::PaymentStatus;
use rp_payout::{CallbackOutcome, PayoutState};

/// A harness whose simulator answers 3061 for 400 ms after recording a payment (the client
/// asks after 100 ms), as the platform does for 10 s and more.
async fn lagging() -> Harness {
    Harness::start_with(Options {
        status_lag: Some(Duration::from_millis(400)),
        ..Options::default()
    })
    .await
}

/// Payout requests the simulator answered for `payment_id` with `code`.
fn answered(h: &Harness, payment_id: &str, code: &str) -> usize {
    h.sim
        .requests()
        .iter()
        .filter(|r| {
            r.path == rp_model::wire::PAYOUT_PATH
                && r.payment_id.as_deref() == Some(payment_id)
                && r.code.as_deref() == Some(code)
        })
        .count()
}

/// Defect 1: 5xx after commit, 3061 from the lagging status, the resend refused with 3028
/// (0024) or a limit code 3109 (0025). It used to be recorded as a final rejection while the
/// first attempt was paid.
#[tokio::test]
async fn a_refused_resend_after_a_lost_answer_is_never_a_rejection() {
    let h = lagging().await;
    for (last4, code) in [("0024", "3028"), ("0025", "3109")] {
        let payout = h.payout(last4);
        let result = h.client.payout(&payout).await;
        if let Err(error) = &result {
            // Out of budget before the status showed it: unknown, never rejected.
            assert!(error.is_outcome_unknown(), "{last4}: {error}");
            h.client.reconcile().await.unwrap();
        }
        let record = h.wait_settled(payout.payment_id()).await;
        assert_eq!(
            record.state,
            PayoutState::Status(PaymentStatus::Success),
            "{last4}"
        );
        let id = payout.payment_id().as_str();
        assert!(
            answered(&h, id, code) >= 1,
            "{last4}: the resend was refused"
        );
        let paid = h.sim.payment(id).unwrap();
        assert_eq!(paid.accepted_requests, 1, "{last4}: paid exactly once");
        assert_eq!(paid.status, PaymentStatus::Success);
    }
    h.shutdown().await;
}

/// The status lag with every ambiguous magic value: a 3061 right after a maybe-sent attempt
/// leads to a resend under the same ID (answered 3041), never to a second payment.
#[tokio::test]
async fn the_status_lag_never_pays_twice() {
    let h = lagging().await;
    for last4 in ["0020", "0021", "0023"] {
        let payout = h.payout(last4);
        let result = h.client.payout(&payout).await;
        if let Err(error) = &result {
            assert!(error.may_have_reached_platform(), "{last4}: {error}");
            h.client.reconcile().await.unwrap();
        }
        let record = h.wait_settled(payout.payment_id()).await;
        assert_eq!(
            record.state,
            PayoutState::Status(PaymentStatus::Success),
            "{last4}"
        );
        let paid = h.sim.payment(payout.payment_id().as_str()).unwrap();
        assert_eq!(paid.accepted_requests, 1, "{last4}: paid exactly once");
    }
    assert_eq!(h.sim.payments().len(), 3);
    h.shutdown().await;
}

#[tokio::test]
async fn partially_paid_out_is_final_and_paid() {
    let h = Harness::start().await;
    let payout = h.payout("0007");
    h.client.payout(&payout).await.unwrap();
    let record = h.wait_settled(payout.payment_id()).await;
    assert_eq!(
        record.state,
        PayoutState::Status(PaymentStatus::PartiallyPaidOut)
    );
    assert!(record.attention.is_none());
    let report = h.client.status(payout.payment_id()).await.unwrap();
    assert_eq!(report.status, PaymentStatus::PartiallyPaidOut);
    assert!(report.signature_verified);
    h.shutdown().await;
}

/// Defect 6: `partially reversed` after `success` used to be dropped as stale with a 200.
#[tokio::test]
async fn partially_reversed_after_success_is_kept_for_attention() {
    let h = Harness::start().await;
    let payout = h.payout("0017");
    h.client.payout(&payout).await.unwrap();
    let outcomes = h.wait_outcomes(payout.payment_id(), 2).await;
    assert!(
        matches!(
            &outcomes[1],
            CallbackOutcome::Unrecognised { status: PaymentStatus::Other(s), current: PaymentStatus::Success, .. }
                if s == "partially reversed"
        ),
        "{outcomes:?}"
    );
    assert!(outcomes[1].is_acknowledged());
    let record = h.record(payout.payment_id()).await;
    assert_eq!(record.state, PayoutState::Status(PaymentStatus::Success));
    assert!(
        record
            .attention
            .as_deref()
            .is_some_and(|a| a.contains("partially reversed")),
        "{record:?}"
    );
    h.shutdown().await;
}

#[tokio::test]
async fn awaiting_clarification_ends_in_decline() {
    let h = Harness::start().await;
    let payout = h.payout("0008");
    h.client.payout(&payout).await.unwrap();
    h.wait_for(payout.payment_id(), |s| {
        *s == PayoutState::Status(PaymentStatus::AwaitingClarification)
    })
    .await;
    let record = h.wait_settled(payout.payment_id()).await;
    assert_eq!(record.state, PayoutState::Status(PaymentStatus::Decline));
    let outcomes = h.wait_outcomes(payout.payment_id(), 2).await;
    assert!(
        outcomes
            .iter()
            .all(|o| matches!(o, CallbackOutcome::Applied { .. })),
        "{outcomes:?}"
    );
    h.shutdown().await;
}
