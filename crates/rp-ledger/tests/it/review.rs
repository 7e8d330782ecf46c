//! Adversarial review of the SQLite ledger: each test here failed on the code it was written
//! against, and names the promise it holds the ledger to.

use std::sync::{Arc, Barrier};
use std::time::Duration;

use rp_ledger::{Ledger, SqliteLedger};
use rp_model::ProjectId;
use rp_payout::conformance::record;
use rp_payout::{EventSource, Inserted, PayoutEvent, PayoutRecord, PayoutState};

fn project() -> ProjectId {
    ProjectId::new(1234).unwrap()
}

fn url(path: &std::path::Path) -> String {
    format!("sqlite:{}", path.display())
}

fn first_event(r: &PayoutRecord) -> PayoutEvent {
    PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created)
}

/// Group commit promises "a failed write is rolled back alone and the others commit", and
/// "answers only after the commit". SQLite does not always roll back only the failing
/// statement: on `SQLITE_FULL`, `SQLITE_IOERR`, `SQLITE_NOMEM` (and `RAISE(ROLLBACK)`, used here to
/// stand in for them) it may roll back the whole transaction. The writer does not notice:
/// `ROLLBACK TO one_write` fails ("no such savepoint", only logged), the next write's
/// `SAVEPOINT` silently opens a *new* transaction that its `RELEASE` commits on its own, and
/// the final `COMMIT` fails, so every write of the group is answered "failed".
///
/// Result: a payout answered `Error::Store` ("recording failed, nothing was sent") is in the
/// ledger as `Created`. The caller (told nothing was recorded) may pay under a new payment
/// ID; `reconcile_and_resume` later finds the old record, gets 3061 and sends it: paid twice.
/// And the write before the failing one, also answered "failed", was rolled back: correct
/// only by accident.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_write_answered_failed_is_never_in_the_ledger_after_a_transaction_abort() {
    let dir = crate::scratch("review-abort");
    let path = dir.join("ledger.db");
    let ledger = Ledger::open(&url(&path)).await.unwrap();
    let store = ledger.store(project());

    // Stand-in for an error after which SQLite rolls the whole transaction back.
    let outside = rusqlite::Connection::open(&path).unwrap();
    outside
        .execute_batch(
            "CREATE TRIGGER review_abort BEFORE INSERT ON payout_events \
             WHEN NEW.payment_id = 'poison' \
             BEGIN SELECT RAISE(ROLLBACK, 'transaction rolled back by SQLite'); END;",
        )
        .unwrap();
    // Hold the write lock (as another process would) so that the writer blocks on the first
    // write and the next three queue up into one group.
    outside.execute_batch("BEGIN IMMEDIATE").unwrap();

    let spawn_insert = |id: &'static str, at: u64| {
        let store = Arc::clone(&store);
        tokio::spawn(async move {
            let r = record(id, "77011234567", 100, at);
            store
                .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
                .await
        })
    };
    let warmup = spawn_insert("warmup", 0);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = spawn_insert("before", 1);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let poison = spawn_insert("poison", 2);
    tokio::time::sleep(Duration::from_millis(50)).await;
    let after = spawn_insert("after", 3);
    tokio::time::sleep(Duration::from_millis(100)).await;
    outside.execute_batch("COMMIT").unwrap();

    assert!(matches!(warmup.await.unwrap(), Ok(Inserted::New(_))));
    let mut report = Vec::new();
    for (id, task) in [("before", before), ("poison", poison), ("after", after)] {
        let answer = task.await.unwrap();
        let payment_id = rp_model::PaymentId::new(id).unwrap();
        let stored = store.get(&payment_id).await.unwrap();
        let events = store.events(&payment_id).await.unwrap();
        report.push(format!(
            "{id}: answered {}, in the ledger: {}, events: {}",
            match &answer {
                Ok(_) => "ok".to_owned(),
                Err(e) => format!("error ({e})"),
            },
            stored.is_some(),
            events.len()
        ));
        // The contract: an answer of failure means nothing was written; success means the
        // record and its first event are durable.
        match answer {
            Ok(_) => assert!(stored.is_some() && events.len() == 1, "{report:#?}"),
            Err(_) => assert!(stored.is_none() && events.is_empty(), "{report:#?}"),
        }
    }
}

/// "safe with several processes on one file": two `rp` commands started at the same moment on
/// a ledger that does not exist yet (the first run of a batch script, two workers starting)
/// both read `user_version = 0` outside any transaction, both run migration 1, and all but
/// one fail ("table payouts already exists" or a busy error). Nothing is paid twice (the
/// failure comes before sending), but a payout run fails for no reason of its own.
#[test]
fn review_concurrent_first_opens_of_a_new_ledger_all_succeed() {
    for round in 0..5 {
        let dir = crate::scratch(&format!("review-first-open-{round}"));
        let path = dir.join("ledger.db");
        let n = 6;
        let barrier = Arc::new(Barrier::new(n));
        let threads: Vec<_> = (0..n)
            .map(|_| {
                let (barrier, path) = (Arc::clone(&barrier), path.clone());
                std::thread::spawn(move || {
                    barrier.wait();
                    SqliteLedger::open_file(&path)
                        .map(drop)
                        .map_err(|e| e.to_string())
                })
            })
            .collect();
        let failures: Vec<String> = threads
            .into_iter()
            .filter_map(|t| t.join().unwrap().err())
            .collect();
        assert!(
            failures.is_empty(),
            "round {round}: {} of {n} concurrent opens of a new ledger failed: {failures:#?}",
            failures.len()
        );
    }
}

/// "another application's database is refused, never altered" (ARCHITECTURE.md, schema.rs):
/// it is refused, but only after `configure` ran `PRAGMA journal_mode = WAL` on it, which is
/// persistent: the other application's database is left in WAL mode (with `-wal`/`-shm` files
/// beside it), which breaks it on a network file system or for readers without write access
/// to the directory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_another_applications_database_is_not_switched_to_wal() {
    let dir = crate::scratch("review-foreign-wal");
    let path = dir.join("orders.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "PRAGMA application_id = 4242; \
             CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER);",
        )
        .unwrap();
        let mode: String = conn
            .query_row("PRAGMA journal_mode", [], |row| row.get(0))
            .unwrap();
        assert_eq!(mode, "delete");
    }
    let before = std::fs::read(&path).unwrap();
    let error = Ledger::open(&url(&path)).await.unwrap_err();
    assert!(error.to_string().contains("another application"), "{error}");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .unwrap();
    drop(conn);
    assert_eq!(
        mode, "delete",
        "the refused database was switched to journal mode {mode}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "not altered");
}
