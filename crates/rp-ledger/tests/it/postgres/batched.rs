//! The batched writes of the PostgreSQL ledger (`postgres/writes.rs`): a lost compare-and-set
//! answers the current record read in its own statement, and inserts are written in batches.

use std::sync::Arc;
use std::time::Duration;

use rp_payout::conformance::record;
use rp_payout::{
    EventSource, Inserted, PayoutEvent, PayoutRecord, PayoutState, PayoutStore, Updated,
};

use super::{Database, first_event, project, server};

/// Waits until `count` sessions of the database wait for a lock.
async fn until_waiting(db: &Database, count: i64) {
    let sql = db.sql().await;
    for _ in 0..250 {
        let waiting: i64 = sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting >= count {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{count} sessions never waited for a lock");
}

/// A compare-and-set that waits for another instance's change of the same payout, and loses
/// to it, answers the record that other instance committed (not the one its statement's
/// snapshot saw, whose version is the expected one and would read as a different request).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_compare_and_set_answers_the_record_committed_meanwhile() {
    let Some(admin) = server("a_lost_compare_and_set_answers_the_record_committed_meanwhile")
    else {
        return;
    };
    let db = Database::fresh(&admin, "batched_lost").await;
    let store = db.open().await.store(project(1234));
    let r = record("raced", "77011234567", 100, 1);
    store
        .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
        .await
        .unwrap();
    // Another instance's write, not committed yet.
    let other = db.sql().await;
    other.batch_execute("BEGIN").await.unwrap();
    other
        .batch_execute(
            "UPDATE rp_ledger.payouts SET version = version + 1, last_message = 'theirs' \
             WHERE payment_id = 'raced'",
        )
        .await
        .unwrap();
    let task = {
        let (store, r) = (store.clone(), r.clone());
        tokio::spawn(async move {
            let mut next = r.clone();
            next.state = PayoutState::Accepted;
            let event = PayoutEvent::new(
                r.created_at,
                EventSource::Answer,
                Some(PayoutState::Created),
                PayoutState::Accepted,
            );
            store.update(0, next, event).await
        })
    };
    until_waiting(&db, 1).await;
    other.batch_execute("COMMIT").await.unwrap();
    match task.await.unwrap().unwrap() {
        Updated::Conflict(Some(current)) => {
            assert_eq!(current.version, 1);
            assert_eq!(current.last_message.as_deref(), Some("theirs"));
            assert_eq!(current.state, PayoutState::Created);
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.events(&r.payment_id).await.unwrap().len(), 1);
    db.remove().await;
}

/// Inserts racing through one ledger, each payment ID twice: one `New` and one `Existing`
/// (the record as stored) per payment ID, one event each, and the usage counts each once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_inserts_record_each_payment_id_once() {
    let Some(admin) = server("batched_inserts_record_each_payment_id_once") else {
        return;
    };
    let db = Database::fresh(&admin, "batched_inserts").await;
    let store = db.open().await.store(project(1234));
    let records: Vec<PayoutRecord> = (0..40)
        .map(|i| {
            record(
                &format!("twice-{:02}", i % 20),
                "77011234567",
                100 + i % 20,
                1,
            )
        })
        .collect();
    let mut tasks = Vec::new();
    for r in records {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let answer = store
                .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
                .await
                .unwrap();
            (r, answer)
        }));
    }
    let (mut new, mut existing) = (0, 0);
    for task in tasks {
        match task.await.unwrap() {
            (r, Inserted::New(stored)) => {
                assert_eq!(stored, r);
                new += 1;
            }
            (r, Inserted::Existing(stored)) => {
                assert_eq!(stored, r);
                existing += 1;
            }
            (_, other) => panic!("{other:?}"),
        }
    }
    assert_eq!((new, existing), (20, 20));
    for i in 0..20 {
        let id = record(&format!("twice-{i:02}"), "77011234567", 1, 1).payment_id;
        assert_eq!(store.events(&id).await.unwrap().len(), 1);
    }
    let usage: i64 = db
        .sql()
        .await
        .query_one("SELECT sum(count)::bigint FROM rp_ledger.limit_usage", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(usage, 20);
    db.remove().await;
}

/// A batch of inserts that fails for one insert's sake (a NUL in its event's note, which
/// PostgreSQL's text refuses) is redone insert by insert: that one fails and is not recorded,
/// the others are recorded once each with their event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_batch_of_inserts_is_redone_insert_by_insert() {
    let Some(admin) = server("a_failed_batch_of_inserts_is_redone_insert_by_insert") else {
        return;
    };
    let db = Database::fresh(&admin, "batched_redo").await;
    let store: Arc<dyn PayoutStore> = db.open().await.store(project(1234));
    // Both flushers wait for the table, so that what is queued meanwhile goes in one batch.
    let locker = db.sql().await;
    locker
        .batch_execute("BEGIN; LOCK TABLE rp_ledger.payouts IN SHARE MODE")
        .await
        .unwrap();
    let insert = |r: PayoutRecord, note: Option<&str>| {
        let store = store.clone();
        let event = first_event(&r).with_note(note.map(str::to_owned));
        tokio::spawn(async move {
            (
                r.clone(),
                store.insert(r, event, rp_model::Limits::NONE).await,
            )
        })
    };
    let mut tasks = Vec::new();
    for i in 0..2 {
        tasks.push(insert(
            record(&format!("first-{i}"), "77011234567", 100, 1),
            None,
        ));
        until_waiting(&db, i + 1).await;
    }
    for i in 0..10 {
        let note = if i == 4 { Some("bad\0byte") } else { None };
        tasks.push(insert(
            record(&format!("redo-{i}"), "77011234567", 100 + i, 1),
            note,
        ));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    locker.batch_execute("COMMIT").await.unwrap();
    for task in tasks {
        let (r, answer) = task.await.unwrap();
        let events = store.events(&r.payment_id).await.unwrap();
        if r.payment_id.as_str() == "redo-4" {
            assert!(answer.is_err(), "{answer:?}");
            assert!(store.get(&r.payment_id).await.unwrap().is_none());
            assert!(events.is_empty());
        } else {
            assert!(matches!(answer, Ok(Inserted::New(_))), "{answer:?}");
            assert_eq!(store.get(&r.payment_id).await.unwrap(), Some(r));
            assert_eq!(events.len(), 1);
        }
    }
    db.remove().await;
}

/// Reads racing through one ledger (read together in batches): each answers its own
/// payout's record, the same payout read many times at once included, and `None` for a
/// payment ID that is not recorded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn batched_reads_answer_each_caller_its_own_record() {
    let Some(admin) = server("batched_reads_answer_each_caller_its_own_record") else {
        return;
    };
    let db = Database::fresh(&admin, "batched_reads").await;
    let store = db.open().await.store(project(1234));
    let records: Vec<PayoutRecord> = (0..30)
        .map(|i| record(&format!("read-{i:02}"), "77011234567", 100 + i, 1))
        .collect();
    for r in &records {
        store
            .insert(r.clone(), first_event(r), rp_model::Limits::NONE)
            .await
            .unwrap();
    }
    let mut tasks = Vec::new();
    for i in 0..120 {
        let store = store.clone();
        // A fourth of the reads are of one payout, a fourth of payouts never recorded.
        let (id, expected) = match i % 4 {
            0 => (records[0].payment_id.clone(), Some(records[0].clone())),
            3 => (
                record(&format!("absent-{i}"), "77011234567", 1, 1).payment_id,
                None,
            ),
            _ => (
                records[i % 30].payment_id.clone(),
                Some(records[i % 30].clone()),
            ),
        };
        tasks.push(tokio::spawn(async move {
            (store.get(&id).await.unwrap(), expected)
        }));
    }
    for task in tasks {
        let (got, expected) = task.await.unwrap();
        assert_eq!(got, expected);
    }
    db.remove().await;
}
