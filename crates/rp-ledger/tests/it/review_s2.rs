//! Adversarial review of schema 8 (webhooks for a change that marks a payout as needing
//! attention): each test here failed when it was written, and says what it found.

use std::time::SystemTime;

use rp_ledger::Ledger;
use rp_model::{Limits, PaymentStatus, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{EventSource, PayoutEvent, PayoutState, Updated};

/// Replay "sends the attention's change again". Found: replay takes a state-keeping event
/// only while its note is the payout's *current* attention, so once a second mark replaced
/// the first (a callback about another payment, then `partially reversed`), the first
/// needs-attention webhook can no longer be replayed: `POST …/webhooks/replay {version}`
/// answers 404 "no such event" for a version whose delivery the ledger made and lists (and
/// which may have failed for days), and a full replay silently leaves it out.
pub(crate) async fn an_earlier_attention_mark_can_be_replayed(ledger: &Ledger) {
    let project = ProjectId::new(4343).unwrap();
    let (store, hooks) = (ledger.store(project), ledger.webhooks(project));
    let endpoint = hooks
        .add_endpoint("https://merchant.example/s2", "whsec_c2VjcmV0LWE=")
        .await
        .unwrap();
    let r = record("s2-two-marks", "77011234567", 100, 1);
    let event = PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
    store.insert(r.clone(), event, Limits::NONE).await.unwrap();
    let mut current = store.get(&r.payment_id).await.unwrap().unwrap();
    let success = PayoutState::Status(PaymentStatus::Success);
    let first = "a signed callback reported `success` for another payment under this payment ID: amount; not applied";
    let second = "the platform reported `partially reversed` after `success`, a status this client does not know; not applied: check the payment in the Dashboard";
    // v1: created -> success; v2: first mark; v3: second mark (each keeps `success`).
    for mark in [None, Some(first), Some(second)] {
        let mut next = current.clone();
        next.state = success.clone();
        next.attention = mark.map(str::to_owned);
        let event = PayoutEvent::new(
            SystemTime::now(),
            EventSource::Callback,
            Some(current.state.clone()),
            success.clone(),
        )
        .with_note(mark.map(str::to_owned));
        current = match store.update(current.version, next, event).await.unwrap() {
            Updated::Done(after) => after,
            other => panic!("update not applied: {other:?}"),
        };
    }
    let made: Vec<u64> = hooks
        .deliveries(&r.payment_id)
        .await
        .unwrap()
        .iter()
        .map(|d| d.key.version)
        .collect();
    assert_eq!(made, [0, 1, 2, 3], "each mark made its delivery");
    let replayed = hooks
        .replay(&r.payment_id, Some(2), Some(endpoint.id))
        .await
        .unwrap();
    assert_eq!(
        replayed, 1,
        "the first needs-attention webhook (version 2), delivered once, cannot be replayed \
         once another mark replaced it"
    );
    let all = hooks
        .replay(&r.payment_id, None, Some(endpoint.id))
        .await
        .unwrap();
    assert_eq!(all, 4, "a full replay leaves the first mark out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_s2_an_earlier_attention_mark_can_be_replayed_sqlite() {
    let ledger = Ledger::open("sqlite::memory:").await.unwrap();
    an_earlier_attention_mark_can_be_replayed(&ledger).await;
}
