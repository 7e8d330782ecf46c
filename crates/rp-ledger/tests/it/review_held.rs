//! Review of held payment IDs: the same answer from every backend.

use rp_ledger::{BatchStore, Ledger, NewBatchRow, Registered, RowSource};
use rp_model::{Currency, Limits, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{EventSource, Inserted, PayoutEvent, PayoutState, PayoutStore};

use crate::batches::{batch_id, new_batch};

/// A payout whose payment ID an unpaid batch row holds for another payout, and which is also
/// over the limits, is told that the ID is held (as PostgreSQL answers), not that it is over
/// the limits: an operator who raises the limits (or waits a day) and tries again is refused
/// for the other reason. The SQLite ledger checks the limits first and answers `OverLimit`.
pub(crate) async fn held_and_over_limit_is_held(batches: &dyn BatchStore, store: &dyn PayoutStore) {
    let row_payout = record("rh-1", "77012345678", 1500, 0);
    let hash = rp_ledger::request_sha256(&row_payout.request).unwrap();
    let rows: RowSource = Box::new(std::iter::once(Ok(NewBatchRow {
        row: 1,
        line: 2,
        payment_id: Some("rh-1".to_owned()),
        request_sha256: Some(hash),
        valid: true,
        cells: b"77012345678;15,00;c1".to_vec(),
        problems: None,
    })));
    let id = batch_id(0xb7);
    assert_eq!(
        batches
            .register(new_batch(&id, 1, &[]), rows)
            .await
            .unwrap(),
        Registered::New
    );
    // Another payout under the row's ID, over a limit of no payout a day.
    let other = record("rh-1", "77019999999", 1500, 0);
    let event = PayoutEvent::new(
        other.created_at,
        EventSource::Call,
        None,
        PayoutState::Created,
    );
    let mut limits = Limits::none(Currency::KZT);
    limits.daily_count = Some(0);
    let answer = store.insert(other, event, limits).await.unwrap();
    assert_eq!(
        answer,
        Inserted::Held(format!("batch {} (its line 2)", &id[..20])),
        "the same refusal as PostgreSQL's"
    );
}

#[tokio::test]
async fn review_held_sqlite_held_and_over_limit_is_held() {
    let dir = crate::scratch("review_held_over_limit");
    let ledger = Ledger::open(&format!("sqlite:{}", dir.join("l.db").display()))
        .await
        .unwrap();
    let project = ProjectId::new(4401).unwrap();
    held_and_over_limit_is_held(
        ledger.batches(project).as_ref(),
        ledger.store(project).as_ref(),
    )
    .await;
}
