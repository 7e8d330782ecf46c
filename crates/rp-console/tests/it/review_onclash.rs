//! Review of 624dd26 (`OnClash::Register`, used by `rp batch run --skip-invalid`): a row
//! registered although its payment ID is held for another payout must never be paid; it must
//! end as a `conflict` row when the worker reaches it.

use std::sync::Arc;
use std::time::Duration;

use rp_batch::run::RowResult;

use crate::Server;
use crate::api_batches::register_unpaid;

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
    let limits = rp_model::Limits::NONE;
    let report = rp_batch::check_file(&file, &limits, |_| {}).unwrap();
    // What preflight shows for B: held-1 is held by batch A.
    let clashes = rp_batch::run::preflight(
        &file,
        report.batch,
        server.desk.client().store().as_ref(),
        server.desk.batches().as_ref(),
        server.desk.client().project_id(),
    )
    .await
    .unwrap();
    assert_eq!(clashes.len(), 1, "{clashes:?}");
    // `rp batch run --skip-invalid`: registered all the same, then paid.
    let registered = rp_batch::run::register(
        &file,
        &report,
        server.desk.batches().as_ref(),
        server.desk.client().project_id(),
        limits,
        rp_ledger::OnClash::Register,
    )
    .await
    .unwrap();
    // (Fixed: a row that another batch's unpaid row holds cannot be skipped, only a recorded
    // payout's can; the registration is refused, and B is not paid at all.)
    let stop = std::sync::atomic::AtomicBool::new(false);
    let mut outcomes = Vec::new();
    if registered == rp_ledger::Registered::New {
        rp_batch::run::run(
            report.batch,
            Arc::clone(server.desk.client()),
            Arc::clone(server.desk.batches()),
            rp_batch::run::RunOptions::default(),
            &stop,
            |outcome, _| outcomes.push(outcome.clone()),
        )
        .await
        .unwrap();
    } else {
        assert!(
            matches!(&registered, rp_ledger::Registered::Clashes(c) if c.len() == 1),
            "{registered:?}"
        );
    }
    let held = outcomes.iter().find(|o| o.row == 1);
    let sent_150 = server
        .sim
        .payments()
        .into_iter()
        .filter(|p| p.amount == 15_000)
        .count();
    // Batch A's turn: its row for held-1 (the ID was A's first) is refused.
    let mut a_outcomes = Vec::new();
    rp_batch::run::run(
        a.parse().unwrap(),
        Arc::clone(server.desk.client()),
        Arc::clone(server.desk.batches()),
        rp_batch::run::RunOptions::default(),
        &stop,
        |outcome, _| a_outcomes.push(outcome.clone()),
    )
    .await
    .unwrap();
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
