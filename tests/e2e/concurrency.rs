//! Many payouts at once: none lost, none duplicated.

use std::collections::HashSet;
use std::sync::Arc;

use rp_e2e::Harness;
use rp_model::PaymentStatus;
use rp_payout::PayoutState;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_concurrent_payouts_none_lost_none_duplicated() {
    let h = Arc::new(Harness::start().await);
    let payouts: Vec<_> = (0..1000).map(|_| h.payout("0000")).collect();
    let mut tasks = Vec::new();
    for chunk in payouts.chunks(25) {
        let chunk = chunk.to_vec();
        let h = Arc::clone(&h);
        tasks.push(tokio::spawn(async move {
            for payout in chunk {
                h.client.payout(&payout).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    for payout in &payouts {
        let record = h.wait_settled(payout.payment_id()).await;
        assert_eq!(record.state, PayoutState::Status(PaymentStatus::Success));
    }
    let recorded = h.sim.payments();
    assert_eq!(recorded.len(), 1000);
    let ids: HashSet<_> = recorded.iter().map(|p| p.payment_id.clone()).collect();
    assert_eq!(ids.len(), 1000);
    assert!(recorded.iter().all(|p| p.accepted_requests == 1));
    // Every callback reached the client and was acknowledged; each payout was applied at
    // most once (a status check may settle one first, making its callback a duplicate).
    let outcomes = h.all_outcomes();
    assert!(
        outcomes
            .iter()
            .all(rp_payout::CallbackOutcome::is_acknowledged)
    );
    let mut applied = HashSet::new();
    for outcome in &outcomes {
        if matches!(outcome, rp_payout::CallbackOutcome::Applied { .. }) {
            assert!(
                applied.insert(outcome.payment_id().cloned()),
                "applied twice: {outcome:?}"
            );
        }
    }
    let acknowledged: HashSet<_> = outcomes.iter().filter_map(|o| o.payment_id()).collect();
    assert_eq!(acknowledged.len(), 1000);
}
