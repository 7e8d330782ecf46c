//! Adversarial review of schema 8 (webhooks for a change that marks a payout as needing
//! attention): each test here failed when it was written, and says what it found.

use rp_ledger::Ledger;
use rp_model::ProjectId;

/// Replay "sends the attention's change again". Found: replay takes a state-keeping event
/// only while its note is the payout's *current* attention, so once a second mark replaced
/// the first (a callback about another payment, then `partially reversed`), the first
/// needs-attention webhook can no longer be replayed: `POST …/webhooks/replay {version}`
/// answers 404 "no such event" for a version whose delivery the ledger made and lists (and
/// which may have failed for days), and a full replay silently leaves it out.
pub(crate) async fn an_earlier_attention_mark_can_be_replayed(ledger: &Ledger) {
    let project = ProjectId::new(4343).unwrap();
    let hooks = ledger.webhooks(project);
    let endpoint = hooks
        .add_endpoint("https://merchant.example/s2", "whsec_c2VjcmV0LWE=")
        .await
        .unwrap();
    let first = "a signed callback reported `success` for another payment under this payment ID: amount; not applied";
    let second = "the platform reported `partially reversed` after `success`, a status this client does not know; not applied: check the payment in the Dashboard";
    // v1: created -> success; v2: first mark; v3: second mark (each keeps `success`).
    let id = crate::webhooks::recorded_then_marked(
        ledger,
        project,
        "s2-two-marks",
        &[
            (None, None),
            (Some(first), Some(first)),
            (Some(second), Some(second)),
        ],
    )
    .await;
    let made = crate::webhooks::delivered_versions(hooks.as_ref(), &id).await;
    assert_eq!(made, [0, 1, 2, 3], "each mark made its delivery");
    let replayed = hooks.replay(&id, Some(2), Some(endpoint.id)).await.unwrap();
    assert_eq!(
        replayed, 1,
        "the first needs-attention webhook (version 2), delivered once, cannot be replayed \
         once another mark replaced it"
    );
    let all = hooks.replay(&id, None, Some(endpoint.id)).await.unwrap();
    assert_eq!(all, 4, "a full replay leaves the first mark out");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_s2_an_earlier_attention_mark_can_be_replayed_sqlite() {
    let ledger = Ledger::open("sqlite::memory:").await.unwrap();
    an_earlier_attention_mark_can_be_replayed(&ledger).await;
}
