//! Review 3: the group commit of compare-and-sets (`postgres/writes.rs`) and the cached
//! server clock (`postgres/clock.rs`), attacked.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use rp_model::PaymentStatus;
use rp_payout::conformance::record;
use rp_payout::{EventSource, PayoutEvent, PayoutRecord, PayoutState, PayoutStore, Updated};

use super::{Database, first_event, project, server};

/// `current` with `state` and `note` (kept in `last_message`), and its event (noted `note`).
fn change(current: &PayoutRecord, state: PayoutState, note: &str) -> (PayoutRecord, PayoutEvent) {
    let mut next = current.clone();
    next.state = state.clone();
    next.last_message = Some(note.to_owned());
    let event = PayoutEvent::new(
        current.created_at,
        EventSource::Callback,
        Some(current.state.clone()),
        state,
    )
    .with_note(Some(note.to_owned()));
    (next, event)
}

/// Accepted (counts against the limits) <-> declined (releases them).
fn flipped(state: &PayoutState) -> PayoutState {
    if state.releases_limits() {
        PayoutState::Accepted
    } else {
        PayoutState::Status(PaymentStatus::Decline)
    }
}

async fn insert_all(store: &Arc<dyn PayoutStore>, records: &[PayoutRecord]) {
    for r in records {
        store
            .insert(r.clone(), first_event(r), rp_model::Limits::NONE)
            .await
            .unwrap();
    }
}

/// A session holding the row locks of `ids` (in a transaction) until it is dropped/committed.
async fn lock_rows(db: &Database, ids: &[&str]) -> tokio_postgres::Client {
    let client = db.sql().await;
    client.batch_execute("BEGIN").await.unwrap();
    let ids: Vec<String> = ids.iter().map(|s| (*s).to_owned()).collect();
    let locked = client
        .query(
            "SELECT payment_id FROM rp_ledger.payouts WHERE payment_id = ANY($1) FOR UPDATE",
            &[&ids],
        )
        .await
        .unwrap();
    assert_eq!(locked.len(), ids.len());
    client
}

/// (4) + (1): a storm of concurrent flips (accepted <-> declined) of a few payouts through
/// two instances, each a compare-and-set loop: afterwards every payout's version is the
/// number of `Done` answers it got, it has exactly one event per applied change, and the
/// hourly usage equals the sum over the payouts that count.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review3_a_storm_of_flips_keeps_usage_versions_and_events_exact() {
    let Some(admin) = server("review3_a_storm_of_flips_keeps_usage_versions_and_events_exact")
    else {
        return;
    };
    let db = Database::fresh(&admin, "review3_storm").await;
    let (a, b) = tokio::join!(db.open(), db.open());
    let stores: Vec<Arc<dyn PayoutStore>> = vec![a.store(project(1234)), b.store(project(1234))];
    const PAYOUTS: usize = 8;
    let records: Vec<PayoutRecord> = (0..PAYOUTS)
        .map(|i| record(&format!("storm-{i}"), "77011234567", 100 + 7 * i as u64, 1))
        .collect();
    insert_all(&stores[0], &records).await;
    let done: Arc<Vec<AtomicU64>> = Arc::new((0..PAYOUTS).map(|_| AtomicU64::new(0)).collect());
    let mut tasks = Vec::new();
    for t in 0..32usize {
        let store = stores[t % 2].clone();
        let ids: Vec<_> = records.iter().map(|r| r.payment_id.clone()).collect();
        let done = done.clone();
        tasks.push(tokio::spawn(async move {
            for j in 0..20usize {
                let i = (t + j) % PAYOUTS;
                let mut current = store.get(&ids[i]).await.unwrap().unwrap();
                let mut tries = 0;
                loop {
                    tries += 1;
                    assert!(tries < 500, "no progress");
                    let state = flipped(&current.state);
                    let (next, event) = change(&current, state, &format!("t{t}j{j}"));
                    match store
                        .update(current.version, next.clone(), event)
                        .await
                        .unwrap()
                    {
                        Updated::Done(stored) => {
                            assert_eq!(stored.version, current.version + 1);
                            done[i].fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                        Updated::Conflict(Some(latest)) => {
                            assert!(
                                latest.version > current.version,
                                "a conflict must carry a newer record: {} after {}",
                                latest.version,
                                current.version
                            );
                            current = latest;
                        }
                        Updated::Conflict(None) => panic!("the record disappeared"),
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let sql = db.sql().await;
    for (i, r) in records.iter().enumerate() {
        let stored = stores[1].get(&r.payment_id).await.unwrap().unwrap();
        let n = done[i].load(Ordering::Relaxed);
        assert_eq!(
            stored.version, n,
            "{}: version vs Done answers",
            r.payment_id
        );
        let events = stores[0].events(&r.payment_id).await.unwrap();
        assert_eq!(
            events.len() as u64,
            n + 1,
            "{}: one event per change",
            r.payment_id
        );
        // Each event's state follows the previous one's (none lost, none twice).
        for pair in events.windows(2) {
            assert_eq!(pair[1].previous.as_ref(), Some(&pair[0].state));
        }
        let row = sql
            .query_one(
                "SELECT counts FROM rp_ledger.payouts WHERE payment_id = $1",
                &[&r.payment_id.as_str()],
            )
            .await
            .unwrap();
        let counts: bool = row.get(0);
        assert_eq!(counts, !stored.state.releases_limits());
    }
    let row = sql
        .query_one(
            "SELECT (SELECT coalesce(sum(amount), 0)::bigint FROM rp_ledger.limit_usage), \
             (SELECT coalesce(sum(count), 0)::bigint FROM rp_ledger.limit_usage), \
             (SELECT coalesce(sum(amount), 0)::bigint FROM rp_ledger.payouts WHERE counts), \
             (SELECT count(*) FROM rp_ledger.payouts WHERE counts)",
            &[],
        )
        .await
        .unwrap();
    let (ua, uc, pa, pc): (i64, i64, i64, i64) = (row.get(0), row.get(1), row.get(2), row.get(3));
    assert_eq!((ua, uc), (pa, pc), "limit_usage vs the payouts that count");
    db.remove().await;
}

/// Blocks both flushers of `store` on rows locked by another session, so that the writes
/// queued meanwhile are written together in one batch once `release` commits.
async fn block_flushers(
    db: &Database,
    store: &Arc<dyn PayoutStore>,
) -> (tokio_postgres::Client, Vec<tokio::task::JoinHandle<()>>) {
    let blockers: Vec<PayoutRecord> = (0..2)
        .map(|i| record(&format!("blocker-{i}"), "77011234567", 100, 1))
        .collect();
    insert_all(store, &blockers).await;
    let locker = lock_rows(db, &["blocker-0", "blocker-1"]).await;
    let mut handles = Vec::new();
    for r in blockers {
        let store = store.clone();
        handles.push(tokio::spawn(async move {
            let (next, event) = change(&r, PayoutState::Accepted, "blocker");
            assert!(matches!(
                store.update(0, next, event).await.unwrap(),
                Updated::Done(_)
            ));
        }));
    }
    // Both flushers are now waiting for the locks.
    let sql = db.sql().await;
    for _ in 0..100 {
        let waiting: i64 = sql
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() \
                 AND wait_event_type = 'Lock'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if waiting == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    (locker, handles)
}

/// (2): one batch where every other compare-and-set fails: each caller gets its own outcome,
/// each applied write is its own (its note on its own payout), each conflict carries its own
/// payout's current record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review3_a_batch_with_failing_compare_and_sets_answers_each_caller_its_own() {
    let Some(admin) =
        server("review3_a_batch_with_failing_compare_and_sets_answers_each_caller_its_own")
    else {
        return;
    };
    let db = Database::fresh(&admin, "review3_mapping").await;
    let ledger = db.open().await;
    let store = ledger.store(project(1234));
    // Payout IDs in an order that differs from the queue's (the batch is sorted).
    let records: Vec<PayoutRecord> = (0..20)
        .map(|i| record(&format!("m-{:02}", (i * 7) % 20), "77011234567", 100 + i, 1))
        .collect();
    insert_all(&store, &records).await;
    let (locker, blockers) = block_flushers(&db, &store).await;
    let mut tasks = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let store = store.clone();
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let (next, event) = change(&r, PayoutState::Accepted, r.payment_id.as_str());
            let expected = if i % 2 == 0 { 0 } else { 5 };
            (i, store.update(expected, next, event).await)
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    locker.batch_execute("COMMIT").await.unwrap();
    for b in blockers {
        b.await.unwrap();
    }
    for task in tasks {
        let (i, outcome) = task.await.unwrap();
        let id = records[i].payment_id.as_str();
        match (i % 2, outcome.unwrap()) {
            (0, Updated::Done(stored)) => {
                assert_eq!(stored.version, 1);
                assert_eq!(stored.last_message.as_deref(), Some(id));
            }
            (1, Updated::Conflict(Some(current))) => {
                assert_eq!(current.payment_id.as_str(), id);
                assert_eq!(current.version, 0);
                assert_eq!(current.state, PayoutState::Created);
            }
            (_, other) => panic!("{id}: {other:?}"),
        }
        let back = store.get(&records[i].payment_id).await.unwrap().unwrap();
        let events = store.events(&records[i].payment_id).await.unwrap();
        if i % 2 == 0 {
            assert_eq!(back.last_message.as_deref(), Some(id));
            assert_eq!(events.len(), 2);
            assert_eq!(events[1].note.as_deref(), Some(id));
        } else {
            assert_eq!(back.version, 0);
            assert_eq!(events.len(), 1);
        }
    }
    db.remove().await;
}

/// (3): a batch statement that fails for one write's sake (a NUL in a message, which
/// PostgreSQL's text refuses) is redone write by write: that write fails, the others are
/// applied once each, with one event each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review3_a_failed_batch_is_redone_write_by_write() {
    let Some(admin) = server("review3_a_failed_batch_is_redone_write_by_write") else {
        return;
    };
    let db = Database::fresh(&admin, "review3_redo").await;
    let ledger = db.open().await;
    let store = ledger.store(project(1234));
    let records: Vec<PayoutRecord> = (0..10)
        .map(|i| record(&format!("redo-{i}"), "77011234567", 100 + i, 1))
        .collect();
    insert_all(&store, &records).await;
    let (locker, blockers) = block_flushers(&db, &store).await;
    let mut tasks = Vec::new();
    for (i, r) in records.iter().enumerate() {
        let store = store.clone();
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let note = if i == 4 {
                "bad\0byte".to_owned()
            } else {
                r.payment_id.as_str().to_owned()
            };
            let (next, event) = change(&r, PayoutState::Accepted, &note);
            (i, store.update(0, next, event).await)
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    locker.batch_execute("COMMIT").await.unwrap();
    for b in blockers {
        b.await.unwrap();
    }
    for task in tasks {
        let (i, outcome) = task.await.unwrap();
        let events = store.events(&records[i].payment_id).await.unwrap();
        if i == 4 {
            assert!(outcome.is_err(), "{outcome:?}");
            assert_eq!(events.len(), 1);
        } else {
            assert!(matches!(outcome, Ok(Updated::Done(_))), "{i}: {outcome:?}");
            assert_eq!(events.len(), 2);
        }
    }
    db.remove().await;
}

/// (3): the connection of a batch killed while its statement waits (so nothing of it was
/// committed): no write of it is applied, and none is reported `Done`; the ledger writes on
/// afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review3_a_killed_batch_applies_nothing_and_reports_no_done() {
    let Some(admin) = server("review3_a_killed_batch_applies_nothing_and_reports_no_done") else {
        return;
    };
    let db = Database::fresh(&admin, "review3_killed").await;
    let ledger = db.open().await;
    let store = ledger.store(project(1234));
    let records: Vec<PayoutRecord> = (0..10)
        .map(|i| record(&format!("kill-{i}"), "77011234567", 100 + i, 1))
        .collect();
    insert_all(&store, &records).await;
    // kill-9 stays locked: the batch waits for it.
    let holder = lock_rows(&db, &["kill-9"]).await;
    let (locker, blockers) = block_flushers(&db, &store).await;
    let mut tasks = Vec::new();
    for r in &records {
        let store = store.clone();
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            let (next, event) = change(&r, PayoutState::Accepted, "x");
            store.update(0, next, event).await
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    locker.batch_execute("COMMIT").await.unwrap();
    for b in blockers {
        b.await.unwrap();
    }
    let sql = db.sql().await;
    let mut killed = false;
    for _ in 0..200 {
        let rows = sql
            .query(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
                 WHERE datname = current_database() AND wait_event_type = 'Lock' \
                 AND query LIKE '%unnest%'",
                &[],
            )
            .await
            .unwrap();
        if !rows.is_empty() {
            killed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(killed, "no batch waiting to kill");
    holder.batch_execute("ROLLBACK").await.unwrap();
    let mut errors = 0;
    for (i, task) in tasks.into_iter().enumerate() {
        let outcome = task.await.unwrap();
        let back = store.get(&records[i].payment_id).await.unwrap().unwrap();
        let events = store.events(&records[i].payment_id).await.unwrap();
        match outcome {
            // Redone on another connection: applied once.
            Ok(Updated::Done(_)) => {
                assert_eq!(back.version, 1);
                assert_eq!(events.len(), 2);
            }
            Ok(other) => panic!("kill-{i}: {other:?}"),
            Err(e) => {
                errors += 1;
                eprintln!("kill-{i}: {e}");
                assert_eq!(back.version, 0);
                assert_eq!(events.len(), 1);
            }
        }
    }
    eprintln!("{errors} of 10 writes of the killed batch failed");
    // The ledger writes on.
    let (next, event) = change(&records[0], PayoutState::Accepted, "after");
    assert!(matches!(
        store.update(0, next, event).await.unwrap(),
        Updated::Done(_)
    ));
    db.remove().await;
}

/// Two short-lived runtimes, each of which starts a write of `records[0]` / `records[1]`
/// and stops: `poll_once` polls the write once (it is queued and its flusher spawned, never
/// run), else a timeout lets the flusher start before the runtime stops in the middle of it.
fn short_lived_writes(store: &Arc<dyn PayoutStore>, records: &[PayoutRecord], poll_once: bool) {
    for r in &records[..2] {
        let short = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        short.block_on(async {
            let (next, event) = change(r, PayoutState::Accepted, "given up");
            let mut write = store.update(0, next, event);
            if poll_once {
                std::future::poll_fn(|cx| {
                    let _ = write.as_mut().poll(cx);
                    std::task::Poll::Ready(())
                })
                .await;
            } else {
                let _ = tokio::time::timeout(Duration::from_millis(50), write).await;
            }
        });
        drop(short);
    }
}

fn three_payouts(
    admin: &str,
    name: &str,
    main: &tokio::runtime::Runtime,
) -> (Database, Arc<dyn PayoutStore>, Vec<PayoutRecord>) {
    main.block_on(async {
        let db = Database::fresh(admin, name).await;
        let store = db.open().await.store(project(1234));
        let records: Vec<PayoutRecord> = (0..3)
            .map(|i| record(&format!("rt-{i}"), "77011234567", 100 + i, 1))
            .collect();
        insert_all(&store, &records).await;
        (db, store, records)
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// (7): a flusher is a task spawned on the runtime of the write that started it. When that
/// runtime stops before the task ran, its place among the `MAX_FLUSHERS` is never given back
/// (`FlusherSlot` is made only once the task runs): after two such writes, no flusher is
/// ever started again and every later write of the ledger, on any runtime, waits for ever.
#[test]
fn review3_a_flusher_that_never_ran_does_not_stop_every_later_write() {
    let Some(admin) = server("review3_a_flusher_that_never_ran_does_not_stop_every_later_write")
    else {
        return;
    };
    let main = runtime();
    let (db, store, records) = three_payouts(&admin, "review3_never_ran", &main);
    short_lived_writes(&store, &records, true);
    main.block_on(async {
        // Another payout: nothing to do with the writes given up.
        let (next, event) = change(&records[2], PayoutState::Accepted, "later");
        let outcome = tokio::time::timeout(Duration::from_secs(10), store.update(0, next, event))
            .await
            .expect("a write of the ledger waited for ever: no flusher is left");
        assert!(matches!(outcome.unwrap(), Updated::Done(_)));
        db.remove().await;
    });
}

/// (7): a flusher stopped in the middle of a batch (its runtime stops) gives its place back
/// but leaves the batch's payouts in `writing`: every later write of those payouts is skipped
/// by every flusher and waits for ever.
#[test]
fn review3_a_flusher_stopped_mid_write_does_not_block_its_payouts_for_ever() {
    let Some(admin) =
        server("review3_a_flusher_stopped_mid_write_does_not_block_its_payouts_for_ever")
    else {
        return;
    };
    let main = runtime();
    let (db, store, records) = three_payouts(&admin, "review3_mid_write", &main);
    // The flusher waits for a row lock when its runtime stops.
    let locker = main.block_on(async { lock_rows(&db, &["rt-0", "rt-1"]).await });
    short_lived_writes(&store, &records, false);
    main.block_on(async {
        locker.batch_execute("ROLLBACK").await.unwrap();
        // Control: the flushers write another payout.
        let (next, event) = change(&records[2], PayoutState::Accepted, "control");
        let outcome = tokio::time::timeout(Duration::from_secs(10), store.update(0, next, event))
            .await
            .expect("the control write");
        assert!(matches!(outcome.unwrap(), Updated::Done(_)));
        let current = store.get(&records[0].payment_id).await.unwrap().unwrap();
        let (next, event) = change(&current, PayoutState::Accepted, "later");
        let outcome = tokio::time::timeout(
            Duration::from_secs(10),
            store.update(current.version, next, event),
        )
        .await
        .expect("a write of rt-0 waited for ever: it is still marked as being written");
        assert!(matches!(
            outcome.unwrap(),
            Updated::Done(_) | Updated::Conflict(Some(_))
        ));
        db.remove().await;
    });
}
