//! A new payout and a batch's registration never miss each other on PostgreSQL: a payout
//! whose payment ID a batch row holds is refused (`Inserted::Held`) even when the batch
//! commits while the payout is being recorded, and a registration sees a payout that was
//! being recorded while it checked. Each side is played step by step with the test's own
//! SQL, holding the ledger's payment-ID lock (`rp_ledger.payment_ids/<project>`) as the
//! other side would; without that lock the other side does not wait, and each test fails.

use std::time::Duration;

use rp_ledger::{Ledger, Registered};
use rp_model::{Currency, Limits};
use rp_payout::conformance::record;
use rp_payout::{Inserted, PayoutRecord};

use super::{Database, first_event, project, server};
use crate::batches::{batch_id, new_batch};
use crate::review_reg::rows;

/// The project of these tests.
const PROJECT: u64 = 91;

/// Long enough for a side that does not wait to have finished.
const SETTLE: Duration = Duration::from_millis(500);

/// The ledger's payment-ID lock of [`PROJECT`], as `lock` (`pg_advisory_xact_lock` or its
/// `_shared` form) takes it for the rest of the transaction.
fn take_lock(lock: &str) -> String {
    format!("SELECT {lock}(hashtextextended('rp_ledger.payment_ids/' || {PROJECT}::text, 0))")
}

/// Inserts `record` into `ledger`'s store of [`PROJECT`] with `limits`.
async fn insert(ledger: &Ledger, record: PayoutRecord, limits: Limits) -> Inserted {
    let event = first_event(&record);
    ledger
        .store(project(PROJECT))
        .insert(record, event, limits)
        .await
        .unwrap()
}

/// What `task` (`what`) answers once `tx` commits: it must still be waiting after
/// [`SETTLE`], and answer within 20 s of the commit.
async fn waits_for_commit<T: std::fmt::Debug>(
    task: tokio::task::JoinHandle<T>,
    tx: tokio_postgres::Transaction<'_>,
    what: &str,
) -> T {
    tokio::time::sleep(SETTLE).await;
    assert!(
        !task.is_finished(),
        "{what} did not wait for the other side's commit: {:?}",
        task.await
    );
    tx.commit().await.unwrap();
    tokio::time::timeout(Duration::from_secs(20), task)
        .await
        .unwrap_or_else(|_| panic!("{what} still waits after the commit"))
        .unwrap()
}

/// A registration commits its rows while new payouts under their payment IDs wait on its
/// lock: each is then refused, naming the row, with limits (one transaction of its own) or
/// without (a group of inserts).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payout_recorded_while_a_batch_commits_is_held() {
    let Some(admin) = server("a_payout_recorded_while_a_batch_commits_is_held") else {
        return;
    };
    let db = Database::fresh(&admin, "held_payout_waits").await;
    let ledger = db.open().await;
    // A template batch, registered: the test's registration copies it under another ID.
    let template = batch_id(0x90);
    let registered = ledger
        .batches(project(PROJECT))
        .register(new_batch(&template, 2, &[]), rows("t", 1, 2, "h", None))
        .await
        .unwrap();
    assert_eq!(registered, Registered::New);
    let mut limits = Limits::none(Currency::KZT);
    limits.daily_count = Some(100);

    for (n, limits) in [(0x91u8, Limits::NONE), (0x92, limits)] {
        let copy = batch_id(n);
        let held = format!("held-{n}");
        // The registration, played: its rows written, then the lock it checks under.
        let mut sql = db.sql().await;
        let tx = sql.transaction().await.unwrap();
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE b ON COMMIT DROP AS SELECT * FROM rp_ledger.batches \
             WHERE batch_id = '{template}'; UPDATE b SET batch_id = '{copy}'; \
             INSERT INTO rp_ledger.batches SELECT * FROM b; \
             CREATE TEMP TABLE r ON COMMIT DROP AS SELECT * FROM rp_ledger.batch_rows \
             WHERE batch_id = '{template}'; \
             UPDATE r SET batch_id = '{copy}', payment_id = '{held}-' || row_no; \
             INSERT INTO rp_ledger.batch_rows SELECT * FROM r; {};",
            take_lock("pg_advisory_xact_lock")
        ))
        .await
        .unwrap();
        let task = {
            let ledger = ledger.clone();
            let payout = record(&format!("{held}-1"), "77012345678", 100, 0);
            tokio::spawn(async move { insert(&ledger, payout, limits).await })
        };
        let answer = waits_for_commit(task, tx, "the payout").await;
        assert_eq!(
            answer,
            Inserted::Held(format!("batch {} (its line 2)", &copy[..20]))
        );
    }
    db.remove().await;
}

/// A payout is being recorded (its transaction holds the lock shared, its row not committed)
/// when a batch with another payout under its payment ID registers: the registration waits
/// for it, then finds the clash and writes nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registration_sees_a_payout_being_recorded() {
    let Some(admin) = server("a_registration_sees_a_payout_being_recorded") else {
        return;
    };
    let db = Database::fresh(&admin, "held_registration_waits").await;
    let ledger = db.open().await;
    // A template payout, recorded: the test's insert copies it under another payment ID.
    let template = record("template", "77012345678", 100, 0);
    assert!(matches!(
        insert(&ledger, template, Limits::NONE).await,
        Inserted::New(_)
    ));
    let mut sql = db.sql().await;
    let tx = sql.transaction().await.unwrap();
    tx.batch_execute(&format!(
        "{}; CREATE TEMP TABLE p ON COMMIT DROP AS SELECT * FROM rp_ledger.payouts \
         WHERE payment_id = 'template'; UPDATE p SET payment_id = 'b-1'; \
         INSERT INTO rp_ledger.payouts SELECT * FROM p;",
        take_lock("pg_advisory_xact_lock_shared")
    ))
    .await
    .unwrap();
    let id = batch_id(0x93);
    let task = {
        let ledger = ledger.clone();
        let id = id.clone();
        tokio::spawn(async move {
            ledger
                .batches(project(PROJECT))
                .register(new_batch(&id, 3, &[]), rows("b", 1, 3, "other", None))
                .await
                .unwrap()
        })
    };
    let answer = waits_for_commit(task, tx, "the registration").await;
    let Registered::Clashes(clashes) = answer else {
        panic!("registered beside the payout under b-1: {answer:?}");
    };
    assert_eq!(
        clashes
            .iter()
            .map(|c| (c.line, c.payment_id.as_str(), c.held_by.is_none()))
            .collect::<Vec<_>>(),
        [(2, "b-1", true)]
    );
    assert_eq!(
        ledger
            .batches(project(PROJECT))
            .progress(&id)
            .await
            .unwrap(),
        None,
        "nothing written"
    );
    db.remove().await;
}

/// A fresh reviewer's: a payout both held and over the limits is told it is held, as on
/// SQLite (`review_held::held_and_over_limit_is_held`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_held_pg_held_and_over_limit_is_held() {
    let Some(admin) = server("review_held_pg_held_and_over_limit_is_held") else {
        return;
    };
    let db = Database::fresh(&admin, "review_held_over_limit").await;
    let ledger = db.open().await;
    crate::review_held::held_and_over_limit_is_held(
        ledger.batches(project(4401)).as_ref(),
        ledger.store(project(4401)).as_ref(),
    )
    .await;
    db.remove().await;
}
