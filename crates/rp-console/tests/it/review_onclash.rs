//! Review of 624dd26 (`OnClash::Register`, used by `rp batch run --skip-invalid`): a row
//! registered although its payment ID is held for another payout must never be paid; it must
//! end as a `conflict` row when the worker reaches it.

use std::sync::Arc;
use std::time::Duration;

use rp_batch::run::RowResult;

use crate::Server;
use crate::api_batches::register_unpaid;

/// `rp batch run --skip-invalid` of `file` on `server`'s ledger, as far as registration: the
/// check, what preflight shows, and the registration with `OnClash::Register`.
pub(crate) async fn skip_invalid_register(
    server: &Server,
    file: &std::path::Path,
) -> (
    rp_batch::CheckReport,
    Vec<rp_batch::run::Clash>,
    rp_ledger::Registered,
) {
    let limits = rp_model::Limits::NONE;
    let report = rp_batch::check_file(file, &limits, |_| {}).unwrap();
    let clashes = rp_batch::run::preflight(
        file,
        report.batch,
        server.desk.client().store().as_ref(),
        server.desk.batches().as_ref(),
        server.desk.client().project_id(),
    )
    .await
    .unwrap();
    let registered = rp_batch::run::register(
        file,
        &report,
        server.desk.batches().as_ref(),
        server.desk.client().project_id(),
        limits,
        rp_ledger::OnClash::Register,
    )
    .await
    .unwrap();
    (report, clashes, registered)
}

/// Pays batch `batch` on `server` (one pass): each row's outcome.
pub(crate) async fn pay(
    server: &Server,
    batch: rp_batch::BatchId,
) -> Vec<rp_batch::run::RowOutcome> {
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut outcomes = Vec::new();
    rp_batch::run::run(
        batch,
        Arc::clone(server.desk.client()),
        Arc::clone(server.desk.batches()),
        rp_batch::run::RunOptions::default(),
        &stop,
        |outcome, _| outcomes.push(outcome.clone()),
    )
    .await
    .unwrap();
    outcomes
}

/// Batch A holds `held-1` (100 ₸ to c-1) and is not paid yet (its worker has not reached it).
/// `rp batch run --skip-invalid` of batch B, whose `held-1` is 150 ₸ to someone else,
/// registers B with `OnClash::Register` and pays it at once. The ledger's clash check is
/// skipped, and the client only refuses an ID whose *payout* is recorded: B's clashing row
/// is SENT (150 ₸ under `held-1`), and A's row, the one the ID belonged to, becomes the
/// `conflict` and its 100 ₸ is never paid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_onclash_a_row_registered_over_another_batchs_unpaid_row_is_never_paid() {
    // The worker of `serve` does not pick batches up during the test.
    let server = Server::start_with("sqlite::memory:", None, Duration::from_secs(3600)).await;
    let first = "phone;amount;customer_id;payment_id\n+7 701 510 40 01;100;c-1;held-1\n";
    let a = register_unpaid(&server, "onclash-a.csv", first).await;

    let dir = crate::scratch("review-onclash");
    let file = dir.join("b.csv");
    std::fs::write(
        &file,
        "phone;amount;customer_id;payment_id\n+7 701 510 40 09;150;c-9;held-1\n\
         +7 701 510 40 02;200;c-2;fresh-2\n",
    )
    .unwrap();
    // `rp batch run --skip-invalid`: preflight shows that held-1 is held by batch A;
    // registered all the same, then paid.
    let (report, clashes, registered) = skip_invalid_register(&server, &file).await;
    assert_eq!(clashes.len(), 1, "{clashes:?}");
    // (Fixed: a row that another batch's unpaid row holds cannot be skipped, only a recorded
    // payout's can; the registration is refused, and B is not paid at all.)
    let outcomes = if registered == rp_ledger::Registered::New {
        pay(&server, report.batch).await
    } else {
        assert!(
            matches!(&registered, rp_ledger::Registered::Clashes(c) if c.len() == 1),
            "{registered:?}"
        );
        Vec::new()
    };
    let held = outcomes.iter().find(|o| o.row == 1);
    let sent_150 = server
        .sim
        .payments()
        .into_iter()
        .filter(|p| p.amount == 15_000)
        .count();
    // Batch A's turn: its row for held-1 (the ID was A's first) is refused.
    let a_outcomes = pay(&server, a.parse().unwrap()).await;
    let a_row = a_outcomes
        .iter()
        .find(|o| o.row == 1)
        .map(|o| o.result.clone());
    let b_row_never_paid =
        held.is_none_or(|h| matches!(&h.result, RowResult::Failed(f) if f.label == "conflict"));
    assert!(
        b_row_never_paid && sent_150 == 0,
        "B's row 1 (held-1, registered over batch A's unpaid row with OnClash::Register) was \
         not a conflict: {:?}; payments of 150 sent: {sent_150}; batch A's row 1 (held-1, 100 \
         to c-1, the ID's first holder) then ends: {a_row:?}",
        held.map(|h| h.result.clone())
    );
    server.stop().await;
}

/// A payout recorded through the API with the merchant's metadata, and a row of
/// `rp batch run --skip-invalid` with the same payment ID and the same request: preflight
/// shows the row as a clash (the API refuses the same ID with other metadata, and a row has
/// none), so the operator is told it will not be paid. It must then end as a `conflict` row,
/// not be taken for the API's payout and reported `success` (before, the client compared
/// only the request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_skipped_row_matching_a_payout_with_metadata_is_a_conflict_not_a_success() {
    let server = Server::start_with("sqlite::memory:", None, Duration::from_secs(3600)).await;
    crate::api::add_keys(&server).await;
    let (_, clashes, outcomes) = crate::review_meta::api_payout_then_clashing_batch(&server).await;
    assert_eq!(clashes.len(), 1, "{clashes:?}");
    assert_eq!(clashes[0].row, 1);
    let result = |row: u64| outcomes.iter().find(|o| o.0 == row).map(|o| o.1.clone());
    assert!(
        matches!(result(1), Some(RowResult::Failed(f)) if f.label == "conflict"),
        "row 1 (meta-1, the same request as the API's payout, which carries metadata) was \
         shown as a clash, then ended {:?}",
        result(1)
    );
    assert!(
        matches!(result(2), Some(RowResult::Sent(_))),
        "{:?}",
        result(2)
    );
    // The API's payout is as it was: paid once, its metadata kept.
    let after = server
        .desk
        .client()
        .store()
        .get(&rp_model::PaymentId::new("meta-1").unwrap())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(after.metadata.as_deref(), Some(r#"{"order":7}"#));
    let sent = server
        .sim
        .payments()
        .into_iter()
        .filter(|p| p.payment_id == "meta-1")
        .count();
    assert_eq!(sent, 1);
    server.stop().await;
}
