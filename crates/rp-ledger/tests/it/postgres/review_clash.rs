//! PINNED (passes; verified right, and at risk in commit cfb92ff): a PostgreSQL ledger of
//! schema version 5 is brought to version 6 on open (the batch rows' index by payment ID),
//! its batches kept and found by `held_elsewhere`, not the asking batch's own, not another
//! project's.

use rp_ledger::POSTGRES_SCHEMA_VERSION;

use super::{Database, project, server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_clash_a_postgres_version_5_ledger_finds_batch_rows_by_payment_after_upgrade() {
    let Some(admin) = server("review_clash_a_postgres_version_5_ledger_finds_batch_rows") else {
        return;
    };
    let db = Database::fresh(&admin, "review_clash_v5").await;
    let id = crate::batches::batch_id(7);
    {
        let ledger = db.open().await;
        ledger
            .batches(project(1234))
            .register(
                crate::batches::new_batch(&id, 2, &[]),
                crate::batches::rows_of(&id, 2, &[]),
            )
            .await
            .unwrap();
    }
    db.sql()
        .await
        .batch_execute(&format!(
            "DROP INDEX rp_ledger.batch_rows_by_payment; {} \
             UPDATE rp_ledger.schema_version SET version = 5;",
            super::UNDO_V9
        ))
        .await
        .unwrap();
    let ledger = db.open().await;
    let wanted = [format!("pid-{}-2", &id[..8])];
    let held = ledger
        .batches(project(1234))
        .held_elsewhere(&crate::batches::batch_id(8), &wanted)
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!((held[0].batch_id.as_str(), held[0].line), (id.as_str(), 3));
    let own = ledger
        .batches(project(1234))
        .held_elsewhere(&id, &wanted)
        .await
        .unwrap();
    assert!(own.is_empty(), "{own:?}");
    let other_project = ledger
        .batches(project(1235))
        .held_elsewhere(&crate::batches::batch_id(8), &wanted)
        .await
        .unwrap();
    assert!(other_project.is_empty(), "{other_project:?}");
    let (version,): (i64,) = {
        let row = db
            .sql()
            .await
            .query_one("SELECT version FROM rp_ledger.schema_version", &[])
            .await
            .unwrap();
        (row.get(0),)
    };
    assert_eq!(version, POSTGRES_SCHEMA_VERSION);
    let index = db
        .sql()
        .await
        .query_opt(
            "SELECT 1 FROM pg_indexes WHERE schemaname = 'rp_ledger' AND indexname = 'batch_rows_by_payment'",
            &[],
        )
        .await
        .unwrap();
    assert!(index.is_some(), "the index is back");
    db.remove().await;
}
