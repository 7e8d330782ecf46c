//! Review of the webhook outbox on PostgreSQL: the shared findings of
//! `tests/it/review_webhooks.rs`, and what only several connections to one server show.
//! Each test here failed on the code it was written against.

use std::time::{Duration, SystemTime};

use rp_ledger::{AfterAttempt, DeliveryAttempt};
use rp_model::{Limits, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{EventSource, PayoutEvent, PayoutState};

use super::{Database, server};
use crate::review_webhooks as shared;

const LEASE: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_enabling_another_projects_endpoint_changes_nothing() {
    let Some(admin) = server("review_pg_enabling_another_projects_endpoint_changes_nothing") else {
        return;
    };
    let db = Database::fresh(&admin, "rv_wh_xproj").await;
    let ledger = db.open().await;
    shared::enabling_another_projects_endpoint_changes_nothing(&ledger).await;
    drop(ledger);
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_a_given_up_delivery_is_sent_when_its_endpoint_is_enabled() {
    let Some(admin) = server("review_pg_a_given_up_delivery_is_sent_when_its_endpoint_is_enabled")
    else {
        return;
    };
    let db = Database::fresh(&admin, "rv_wh_gaveup").await;
    let ledger = db.open().await;
    shared::a_given_up_delivery_is_sent_when_its_endpoint_is_enabled(&ledger).await;
    drop(ledger);
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_a_replay_while_a_send_is_in_flight_is_not_lost() {
    let Some(admin) = server("review_pg_a_replay_while_a_send_is_in_flight_is_not_lost") else {
        return;
    };
    let db = Database::fresh(&admin, "rv_wh_replay").await;
    let ledger = db.open().await;
    shared::a_replay_while_a_send_is_in_flight_is_not_lost(&ledger).await;
    drop(ledger);
    db.remove().await;
}

/// Promise: deliveries are due on the server's clock ("Due times and leases are the server's
/// clock (`clock_timestamp()`), shared by every instance"). The trigger sets a new
/// delivery's `next_attempt_at` to `NEW.at`, the event's time from the *instance's* clock
/// (`Client`'s `clock.now()`), while `claim_due` compares with the server's. An instance
/// whose clock is 10 minutes ahead of the database server writes deliveries that no
/// instance sends for 10 minutes (and, being ordered by `next_attempt_at`, they also sort
/// behind everything else).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_a_new_delivery_is_due_on_the_servers_clock() {
    let Some(admin) = server("review_pg_a_new_delivery_is_due_on_the_servers_clock") else {
        return;
    };
    let db = Database::fresh(&admin, "rv_wh_clock").await;
    let ledger = db.open().await;
    let project = ProjectId::new(7401).unwrap();
    let hooks = ledger.webhooks(project);
    hooks
        .add_endpoint("https://merchant.example/clock", "whsec_eA==")
        .await
        .unwrap();
    // This instance's clock runs 10 minutes ahead of the server's.
    let ahead = SystemTime::now() + Duration::from_secs(600);
    shared::recorded_at(&ledger, project, "rv-clock-ahead", ahead).await;
    let due = hooks.claim_due("w", LEASE, 10).await.unwrap();
    assert_eq!(
        due.len(),
        1,
        "a delivery just committed is not due on the server's clock: it waits for the \
         instance's clock skew (10 minutes here)"
    );
    drop(ledger);
    db.remove().await;
}

/// Promise: a state change is committed with its deliveries, and a change is never refused
/// because of webhooks. `remove_endpoint` locks the endpoint row (`FOR UPDATE`) and deletes
/// it; a payout write running at the same time has its trigger read the endpoint (still
/// there in its snapshot), insert a delivery for it, then wait on the foreign key check
/// (`FOR KEY SHARE` on the endpoint row). When the removal commits, the foreign key check
/// finds the row gone and the payout's write fails (`webhook_deliveries_endpoint_id_fkey`):
/// removing an endpoint makes an unrelated payout change (a callback's success, a new payout,
/// or a whole batch of group-committed writes) fail.
///
/// To make the race deterministic the test holds a lock on the endpoint's attempt log, so
/// `remove_endpoint` stops after taking its `FOR UPDATE` lock, exactly where a slow removal
/// would be.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_removing_an_endpoint_never_fails_a_payout_change() {
    let Some(admin) = server("review_pg_removing_an_endpoint_never_fails_a_payout_change") else {
        return;
    };
    let db = Database::fresh(&admin, "rv_wh_remove").await;
    let ledger = db.open().await;
    let project = ProjectId::new(7501).unwrap();
    let hooks = ledger.webhooks(project);
    let endpoint = hooks
        .add_endpoint("https://merchant.example/gone", "whsec_eA==")
        .await
        .unwrap();
    // One attempt in the endpoint's log.
    shared::recorded_at(&ledger, project, "rv-remove-0", SystemTime::now()).await;
    let claimed = hooks.claim_due("w", LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        hooks
            .record_attempt(
                &claimed[0].key,
                "w",
                &DeliveryAttempt::new(SystemTime::now(), Duration::ZERO, Some(500), None),
                &AfterAttempt::RetryIn(Duration::from_secs(3600)),
            )
            .await
            .unwrap()
    );
    // Someone reads the log (FOR UPDATE stands in for any lock that slows the removal).
    let mut holder = db.sql().await;
    let tx = holder.transaction().await.unwrap();
    tx.execute(
        "SELECT 1 FROM rp_ledger.webhook_attempts WHERE endpoint_id = $1 FOR UPDATE",
        &[&endpoint.id],
    )
    .await
    .unwrap();
    // The removal starts: it locks the endpoint, then waits for the log.
    let removing = {
        let hooks = hooks.clone();
        let id = endpoint.id;
        tokio::spawn(async move { hooks.remove_endpoint(id).await })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    // Meanwhile a new payout is recorded: its trigger writes a delivery to the endpoint.
    let inserting = {
        let ledger = db.open().await;
        tokio::spawn(async move {
            let r = record("rv-remove-1", "77011234567", 100, 2);
            let event =
                PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
            ledger.store(project).insert(r, event, Limits::NONE).await
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    tx.commit().await.unwrap();
    assert!(removing.await.unwrap().unwrap());
    let inserted = inserting.await.unwrap();
    assert!(
        inserted.is_ok(),
        "removing a webhook endpoint made a concurrent payout write fail: {inserted:?}"
    );
    drop(ledger);
    db.remove().await;
}
