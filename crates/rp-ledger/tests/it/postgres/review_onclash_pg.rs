//! Review of 102ec53 / 624dd26 on PostgreSQL: the project's registration lock is let go by a
//! registration dropped while it holds it (mid-rows), which leaves nothing behind, and by
//! an `OnClash::Register` registration.

use std::time::Duration;

use rp_ledger::{Ledger, OnClash, Registered, RowSource};

use super::{Database, project, server};
use crate::batches::batch_id;
use crate::review_reg::{rows, sized};

const QUICK: Duration = Duration::from_secs(20);

/// Rows that take `pause` to read after row 1,500: the registration holds the lock meanwhile.
fn slow(prefix: &str, n: u64, pause: Duration) -> RowSource {
    Box::new(rows(prefix, 1, n, "h", None).inspect(move |row| {
        if row.as_ref().is_ok_and(|r| r.row == 1_500) {
            std::thread::sleep(pause);
        }
    }))
}

async fn register_quickly(ledger: &Ledger, id: &str, source: RowSource, n: u64) -> Registered {
    let store = ledger.batches(project(78));
    tokio::time::timeout(QUICK, store.register(sized(id, n), source))
        .await
        .unwrap_or_else(|_| panic!("registration of {id} still waiting after {QUICK:?}"))
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_onclash_pg_dropped_registration_lets_go_and_leaves_nothing() {
    let Some(admin) = server("review_onclash_pg_dropped_registration_lets_go_and_leaves_nothing")
    else {
        return;
    };
    let db = Database::fresh(&admin, "review_onclash_pg_drop").await;
    let (a, b) = (db.open().await, db.open().await);

    // Dropped while it holds the lock, its first chunk inserted.
    let dropped = batch_id(0x70);
    let task = {
        let a = a.clone();
        let dropped = dropped.clone();
        tokio::spawn(async move {
            a.batches(project(78))
                .register(
                    sized(&dropped, 3_000),
                    slow("d", 3_000, Duration::from_secs(3)),
                )
                .await
        })
    };
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());
    // Another handle and the same handle register at once; nothing of the dropped one.
    let after = register_quickly(&b, &batch_id(0x71), rows("e", 1, 100, "h", None), 100).await;
    assert_eq!(after, Registered::New);
    let after = register_quickly(&a, &batch_id(0x72), rows("f", 1, 100, "h", None), 100).await;
    assert_eq!(after, Registered::New);
    assert!(
        a.batches(project(78))
            .info(&dropped)
            .await
            .unwrap()
            .is_none()
    );
    // The dropped batch registers afresh (its key is not held).
    let again = register_quickly(&b, &dropped, rows("d", 1, 3_000, "h", None), 3_000).await;
    assert_eq!(again, Registered::New);

    // OnClash::Register with a clash (with another batch's unpaid rows: refused all the same,
    // since the review of OnClash), and the lock let go.
    let over = tokio::time::timeout(
        QUICK,
        a.batches(project(78)).register_with(
            sized(&batch_id(0x73), 10),
            rows("e", 1, 10, "other", None),
            OnClash::Register,
        ),
    )
    .await
    .unwrap()
    .unwrap();
    assert!(
        matches!(over, Registered::Clashes(ref c) if c.len() == 10),
        "{over:?}"
    );
    let after = register_quickly(&b, &batch_id(0x74), rows("g", 1, 10, "h", None), 10).await;
    assert_eq!(after, Registered::New);
    drop((a, b));
    db.remove().await;
}
