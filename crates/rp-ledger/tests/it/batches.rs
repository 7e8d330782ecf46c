//! The batch store (`BatchStore`), the same assertions for every backend: registration once
//! and whole, claims with leases, take-overs, passes, lists and pages.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use rp_ledger::{
    BatchState, BatchStore, Ledger, NewBatch, NewBatchRow, OnClash, Registered, RowSource,
};
use rp_model::{PaymentStatus, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{
    EventSource, Inserted, PayoutEvent, PayoutOrigin, PayoutQuery, PayoutState, PayoutStore,
};

const LEASE: Duration = Duration::from_secs(60);

fn project(id: u64) -> ProjectId {
    ProjectId::new(id).unwrap()
}

/// A batch ID: 64 hex digits made from `n`.
pub(crate) fn batch_id(n: u8) -> String {
    format!("{n:02x}").repeat(32)
}

pub(crate) fn new_batch(id: &str, rows: u64, invalid: &[u64]) -> NewBatch {
    NewBatch {
        id: id.to_owned(),
        file_name: "payouts.csv".to_owned(),
        delimiter: b';',
        header: b"phone;amount;customer_id".to_vec(),
        rows,
        valid_rows: rows - invalid.len() as u64,
        totals: vec![("KZT".to_owned(), 150_050 * (rows - invalid.len() as u64))],
        limits: vec![
            ("currency".to_owned(), 398),
            ("daily_count".to_owned(), 1_000),
        ],
    }
}

/// The rows of a batch: row `n` pays `pid-<batch>-<n>`; the rows in `invalid` are invalid.
pub(crate) fn rows_of(id: &str, rows: u64, invalid: &[u64]) -> RowSource {
    let id = id[..8].to_owned();
    let invalid = invalid.to_vec();
    Box::new((1..=rows).map(move |n| {
        let valid = !invalid.contains(&n);
        Ok(NewBatchRow {
            row: n,
            line: n + 1,
            payment_id: Some(format!("pid-{id}-{n}")),
            // The request `a_new_pass_reopens_what_is_not_settled` records for the row.
            request_sha256: Some(row_request(&id, n)),
            valid,
            cells: format!("7701234{n:04};1500,50;c{n}").into_bytes(),
            problems: (!valid).then(|| "line 3, column amount: not a number".to_owned()),
        })
    }))
}

/// The SHA-256 of the request row `n` of a batch (first 8 hex digits `short`) pays.
fn row_request(short: &str, n: u64) -> String {
    let payout = record(&format!("pid-{short}-{n}"), "77012345678", 1500, 0);
    rp_ledger::request_sha256(&payout.request).unwrap()
}

async fn register(store: &dyn BatchStore, id: &str, rows: u64, invalid: &[u64]) -> Registered {
    store
        .register(new_batch(id, rows, invalid), rows_of(id, rows, invalid))
        .await
        .unwrap()
}

fn numbers(rows: &[rp_ledger::ClaimedRow]) -> Vec<u64> {
    rows.iter().map(|r| r.row).collect()
}

/// The token of a process of this host that has exited.
fn dead_owner() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .replace('/', "_");
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let pid = child.id();
    child.wait().unwrap();
    format!("{host}/{pid}/1/0")
}

/// Every assertion, each on a fresh pair of stores of one ledger (projects 1234 and 77).
pub(crate) async fn run_all(ledger: &Ledger) {
    let (a, b) = (ledger.batches(project(1234)), ledger.batches(project(77)));
    registration_is_once_and_whole(a.as_ref(), b.as_ref()).await;
    claims_hold_until_finished_or_released(a.as_ref()).await;
    expired_and_dead_claims_are_taken_over(a.as_ref()).await;
    a_new_pass_reopens_what_is_not_settled(a.as_ref(), ledger.store(project(1234)).as_ref()).await;
    lists_and_rows_page(b.as_ref()).await;
    racing_workers_claim_each_row_once(Arc::clone(&a)).await;
    hostile_ids_are_refused(a.as_ref()).await;
    paused_batches_are_left_alone(ledger.batches(project(555)).as_ref()).await;
    registration_refuses_payment_ids_another_batch_holds(
        ledger.batches(project(4323)).as_ref(),
        ledger.store(project(4323)).as_ref(),
    )
    .await;
    racing_registrations_of_one_payment_id_register_one(ledger.batches(project(4324))).await;
    payment_ids_held_by_other_batches_are_found(
        ledger.batches(project(4321)).as_ref(),
        ledger.batches(project(4322)).as_ref(),
    )
    .await;
    new_payouts_refuse_payment_ids_a_batch_row_holds(
        ledger.batches(project(4325)).as_ref(),
        ledger.store(project(4325)).as_ref(),
    )
    .await;
    a_batchs_payouts_are_from_the_batch(
        ledger.batches(project(999)).as_ref(),
        ledger.store(project(999)).as_ref(),
        ledger.store(project(998)).as_ref(),
    )
    .await;
}

/// The origin filter: a payout whose payment ID a batch row of its project has is from the
/// batch, whoever recorded it (a console upload records `operator:NAME`, `rp batch run`
/// `call`); the rest by their first event. Another project's batch is not this one's.
async fn a_batchs_payouts_are_from_the_batch(
    batches: &dyn BatchStore,
    store: &dyn PayoutStore,
    other_project: &dyn PayoutStore,
) {
    let id = batch_id(70);
    let short = &id[..8];
    // Rows 1-4; row 2 invalid (no payout), row 4 never paid.
    assert_eq!(register(batches, &id, 4, &[2]).await, Registered::New);
    let recorded = |name: &str, source: EventSource, at: u64| {
        let r = record(name, "77012345678", 1500, at);
        let first = PayoutEvent::new(r.created_at, source, None, PayoutState::Created);
        (r, first)
    };
    let payouts = [
        recorded(
            &format!("pid-{short}-1"),
            EventSource::Operator("anna".into()),
            1,
        ),
        recorded(&format!("pid-{short}-3"), EventSource::Call, 2),
        recorded("by-anna", EventSource::Operator("anna".into()), 3),
        recorded("by-key", EventSource::Operator("api:backend".into()), 4),
        recorded("by-lib", EventSource::Call, 5),
    ];
    for (r, first) in payouts.iter().cloned() {
        let inserted = store
            .insert(r, first, rp_model::Limits::NONE)
            .await
            .unwrap();
        assert!(matches!(inserted, Inserted::New(_)), "{inserted:?}");
    }
    // The same payment ID in another project, recorded by an operator: not from a batch.
    let (r, first) = payouts[0].clone();
    other_project
        .insert(r, first, rp_model::Limits::NONE)
        .await
        .unwrap();
    let ids = |page: Vec<rp_payout::PayoutRecord>| -> Vec<String> {
        page.into_iter().map(|r| r.payment_id.to_string()).collect()
    };
    let by = |origin| PayoutQuery::new().source(origin);
    assert_eq!(
        ids(store.list(&by(PayoutOrigin::Batch)).await.unwrap()),
        [format!("pid-{short}-3"), format!("pid-{short}-1")]
    );
    // A page at a time, keyset pagination unaffected.
    let first_page = store.list(&by(PayoutOrigin::Batch).limit(1)).await.unwrap();
    assert_eq!(ids(first_page.clone()), [format!("pid-{short}-3")]);
    let second = by(PayoutOrigin::Batch).limit(1).after(&first_page[0]);
    assert_eq!(
        ids(store.list(&second).await.unwrap()),
        [format!("pid-{short}-1")]
    );
    assert_eq!(
        ids(store.list(&by(PayoutOrigin::Console)).await.unwrap()),
        ["by-anna"]
    );
    assert_eq!(
        ids(store.list(&by(PayoutOrigin::Api)).await.unwrap()),
        ["by-key"]
    );
    assert_eq!(
        ids(store.list(&by(PayoutOrigin::Library)).await.unwrap()),
        ["by-lib"]
    );
    assert_eq!(
        ids(other_project
            .list(&by(PayoutOrigin::Console))
            .await
            .unwrap()),
        [format!("pid-{short}-1")]
    );
    assert!(
        other_project
            .list(&by(PayoutOrigin::Batch))
            .await
            .unwrap()
            .is_empty()
    );
}

/// A batch stopped on purpose is not among the stopped ones a background worker resumes;
/// neither is one a worker holds.
async fn paused_batches_are_left_alone(store: &dyn BatchStore) {
    let id = batch_id(60);
    assert!(store.stopped(10).await.unwrap().is_empty());
    assert!(
        !store.set_paused(&id, true).await.unwrap(),
        "not registered"
    );
    assert_eq!(register(store, &id, 3, &[]).await, Registered::New);
    assert_eq!(store.stopped(10).await.unwrap(), std::slice::from_ref(&id));
    assert!(store.set_paused(&id, true).await.unwrap());
    let progress = store.progress(&id).await.unwrap().unwrap();
    assert!(progress.info.paused);
    assert_eq!(progress.state(), BatchState::Paused);
    assert!(store.stopped(10).await.unwrap().is_empty());
    assert!(store.set_paused(&id, false).await.unwrap());
    assert_eq!(store.stopped(10).await.unwrap(), std::slice::from_ref(&id));
    // Held by a worker: running, not stopped.
    assert_eq!(
        store.claim(&id, "worker-a", LEASE, 1).await.unwrap().len(),
        1
    );
    assert!(store.stopped(10).await.unwrap().is_empty());
    assert_eq!(store.release(&id, "worker-a").await.unwrap(), 1);
    // Every row done: nothing to resume.
    let rows = store.claim(&id, "worker-a", LEASE, 10).await.unwrap();
    let numbers: Vec<u64> = rows.iter().map(|r| r.row).collect();
    assert_eq!(store.finish(&id, "worker-a", &numbers).await.unwrap(), 3);
    assert!(store.stopped(10).await.unwrap().is_empty());
}

async fn registration_is_once_and_whole(store: &dyn BatchStore, other: &dyn BatchStore) {
    let id = batch_id(1);
    assert_eq!(register(store, &id, 5, &[3]).await, Registered::New);
    // The same file again: nothing read, nothing written.
    let again = store.register(
        new_batch(&id, 5, &[3]),
        Box::new(std::iter::once(Err("must not be read".to_owned()))),
    );
    assert_eq!(again.await.unwrap(), Registered::Existing);
    let progress = store.progress(&id).await.unwrap().unwrap();
    assert_eq!(progress.info.batch, new_batch(&id, 5, &[3]));
    assert_eq!(store.info(&id).await.unwrap(), Some(progress.info.clone()));
    assert_eq!(store.info(&batch_id(98)).await.unwrap(), None);
    assert_eq!(progress.by_label, vec![("not_recorded".to_owned(), 4)]);
    assert_eq!((progress.undone, progress.claimed), (4, 0));
    assert_eq!(progress.state(), BatchState::Stopped);
    // Another project does not see it.
    assert!(other.progress(&id).await.unwrap().is_none());
    assert!(other.claim(&id, "w", LEASE, 10).await.unwrap().is_empty());

    // A registration whose rows fail half-way writes nothing.
    let broken = batch_id(2);
    let rows = rows_of(&broken, 3, &[]).chain(std::iter::once(Err("disk gone".to_owned())));
    let error = store
        .register(new_batch(&broken, 4, &[]), Box::new(rows))
        .await
        .unwrap_err();
    assert!(error.to_string().contains("disk gone"), "{error}");
    assert!(store.progress(&broken).await.unwrap().is_none());
    assert_eq!(register(store, &broken, 4, &[]).await, Registered::New);
}

async fn claims_hold_until_finished_or_released(store: &dyn BatchStore) {
    let id = batch_id(3);
    register(store, &id, 6, &[2]).await;
    let first = store.claim(&id, "worker-a", LEASE, 2).await.unwrap();
    assert_eq!(numbers(&first), [1, 3], "lowest valid rows first");
    assert_eq!(first[0].line, 2);
    assert_eq!(first[0].cells, b"77012340001;1500,50;c1");
    let second = store.claim(&id, "worker-b", LEASE, 10).await.unwrap();
    assert_eq!(numbers(&second), [4, 5, 6]);
    assert!(
        store
            .claim(&id, "worker-c", LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    let progress = store.progress(&id).await.unwrap().unwrap();
    assert_eq!((progress.undone, progress.claimed), (5, 5));
    assert_eq!(progress.state(), BatchState::Running);

    // Only the holder finishes a row.
    assert_eq!(store.finish(&id, "worker-b", &[1, 3]).await.unwrap(), 0);
    assert_eq!(store.finish(&id, "worker-a", &[1, 3, 4]).await.unwrap(), 2);
    assert_eq!(store.renew(&id, "worker-a", LEASE).await.unwrap(), 0);
    assert_eq!(store.renew(&id, "worker-b", LEASE).await.unwrap(), 3);
    // Released rows go to the next worker at once.
    assert_eq!(store.finish(&id, "worker-b", &[4]).await.unwrap(), 1);
    assert_eq!(store.release(&id, "worker-b").await.unwrap(), 2);
    let third = store.claim(&id, "worker-c", LEASE, 10).await.unwrap();
    assert_eq!(numbers(&third), [5, 6]);
    assert_eq!(store.finish(&id, "worker-c", &[5, 6]).await.unwrap(), 2);
    let progress = store.progress(&id).await.unwrap().unwrap();
    assert_eq!((progress.undone, progress.claimed), (0, 0));
    // No payout recorded: nothing waits, the batch is done.
    assert_eq!(progress.state(), BatchState::Done);
    assert!(
        store
            .claim(&id, "worker-c", LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
}

async fn expired_and_dead_claims_are_taken_over(store: &dyn BatchStore) {
    let id = batch_id(4);
    register(store, &id, 4, &[]).await;
    let short = Duration::from_millis(200);
    assert_eq!(
        numbers(&store.claim(&id, "worker-a", short, 2).await.unwrap()),
        [1, 2]
    );
    let dead = dead_owner();
    assert_eq!(
        numbers(&store.claim(&id, &dead, LEASE, 1).await.unwrap()),
        [3]
    );
    // A dead process's rows do not count as claimed, and are taken over at once; worker-a's
    // lease still holds.
    let progress = store.progress(&id).await.unwrap().unwrap();
    assert_eq!(progress.claimed, 2, "a dead owner's rows are not claimed");
    let alive = rp_payout::Owner::new_client();
    assert_eq!(
        numbers(&store.claim(&id, alive.token(), LEASE, 1).await.unwrap()),
        [3]
    );
    assert_eq!(
        numbers(&store.claim(&id, "worker-b", LEASE, 10).await.unwrap()),
        [4]
    );
    // A live process of this host holds its rows.
    assert!(
        store
            .claim(&id, "worker-c", LEASE, 10)
            .await
            .unwrap()
            .is_empty()
    );
    tokio::time::sleep(short + Duration::from_millis(100)).await;
    assert_eq!(
        numbers(&store.claim(&id, "worker-b", LEASE, 10).await.unwrap()),
        [1, 2]
    );
    // worker-a comes back late: its rows are worker-b's now.
    assert_eq!(store.finish(&id, "worker-a", &[1, 2]).await.unwrap(), 0);
    assert_eq!(
        store.finish(&id, "worker-b", &[1, 2, 3, 4]).await.unwrap(),
        3
    );
}

async fn a_new_pass_reopens_what_is_not_settled(
    batches: &dyn BatchStore,
    payouts: &dyn PayoutStore,
) {
    let id = batch_id(5);
    let short = &id[..8];
    // Row 3's payment ID taken by a different payout (another phone), settled, before the
    // batch is registered (`--skip-invalid`: the row is registered, never paid).
    let mut other = record(&format!("pid-{short}-3"), "77019999999", 1500, 3);
    other.state = PayoutState::Status(PaymentStatus::Success);
    let event = PayoutEvent::new(
        other.created_at,
        EventSource::Call,
        None,
        other.state.clone(),
    );
    payouts
        .insert(other, event, rp_model::Limits::NONE)
        .await
        .unwrap();
    let registered = batches
        .register_with(
            new_batch(&id, 4, &[4]),
            rows_of(&id, 4, &[4]),
            OnClash::Register,
        )
        .await;
    assert_eq!(registered.unwrap(), Registered::New);
    let claimed = batches.claim(&id, "w", LEASE, 10).await.unwrap();
    assert_eq!(numbers(&claimed), [1, 2, 3]);
    assert_eq!(batches.reopen(&id).await.unwrap(), 0, "a pass is going");
    // Row 1 paid (settled), row 2 accepted (waiting), row 3 not its payout's.
    for (n, state) in [
        (1, PayoutState::Status(PaymentStatus::Success)),
        (2, PayoutState::Accepted),
    ] {
        let mut payout = record(&format!("pid-{short}-{n}"), "77012345678", 1500, n);
        let event = PayoutEvent::new(payout.created_at, EventSource::Call, None, state.clone());
        payout.state = state;
        let inserted = payouts
            .insert(payout, event, rp_model::Limits::NONE)
            .await
            .unwrap();
        assert!(matches!(inserted, Inserted::New(_)));
    }
    assert_eq!(batches.finish(&id, "w", &[1, 2, 3]).await.unwrap(), 3);
    let progress = batches.progress(&id).await.unwrap().unwrap();
    // Row 3 is a conflict, never counted as that payout's success, and reopened by the next
    // pass.
    assert_eq!(
        progress.by_label,
        vec![
            ("accepted".to_owned(), 1),
            ("conflict".to_owned(), 1),
            ("success".to_owned(), 1)
        ]
    );
    assert_eq!(progress.count("success"), 1, "{:?}", progress.by_label);
    assert_eq!((progress.undone, progress.waiting), (0, 1));
    assert_eq!(progress.state(), BatchState::Waiting);
    assert_eq!(progress.count("success"), 1);
    // The next pass: rows 2 and 3, not the paid row 1 nor the invalid row 4.
    assert_eq!(batches.reopen(&id).await.unwrap(), 2);
    assert_eq!(batches.reopen(&id).await.unwrap(), 0);
    let again = batches.claim(&id, "w2", LEASE, 10).await.unwrap();
    assert_eq!(numbers(&again), [2, 3]);
}

async fn lists_and_rows_page(store: &dyn BatchStore) {
    let ids: Vec<String> = (10..13).map(batch_id).collect();
    for id in &ids {
        register(store, id, 3, &[2]).await;
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let first = store.list(None, 2).await.unwrap();
    let listed: Vec<&str> = first.iter().map(|p| p.info.batch.id.as_str()).collect();
    assert_eq!(listed, [ids[2].as_str(), ids[1].as_str()], "newest first");
    let last = first.last().unwrap();
    let next = store
        .list(Some((last.info.created_at, last.info.batch.id.clone())), 2)
        .await
        .unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].info.batch.id, ids[0]);

    let rows = store.rows(&ids[0], 0, 2).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.row.row).collect::<Vec<_>>(), [1, 2]);
    assert!(!rows[1].row.valid && rows[1].done);
    assert_eq!(
        rows[1].row.problems.as_deref(),
        Some("line 3, column amount: not a number")
    );
    let rest = store.rows(&ids[0], 2, 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].row.payment_id.as_deref(), Some("pid-0a0a0a0a-3"));
    assert!(store.rows(&batch_id(99), 0, 10).await.unwrap().is_empty());
}

async fn racing_workers_claim_each_row_once(store: Arc<dyn BatchStore>) {
    let id = batch_id(6);
    register(store.as_ref(), &id, 300, &[]).await;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..3 {
        let (store, id) = (Arc::clone(&store), id.clone());
        workers.spawn(async move {
            let owner = format!("racer-{w}");
            let mut mine = Vec::new();
            loop {
                let rows = store.claim(&id, &owner, LEASE, 7).await.unwrap();
                if rows.is_empty() {
                    return mine;
                }
                let numbers = numbers(&rows);
                assert_eq!(
                    store.finish(&id, &owner, &numbers).await.unwrap(),
                    numbers.len() as u64
                );
                mine.extend(numbers);
            }
        });
    }
    let mut all = Vec::new();
    while let Some(mine) = workers.join_next().await {
        all.extend(mine.unwrap());
    }
    let once: BTreeSet<u64> = all.iter().copied().collect();
    assert_eq!(all.len(), 300, "no row claimed twice");
    assert_eq!(once, (1..=300).collect());
}

/// `held_elsewhere`: the valid rows of other batches of the project holding the payment IDs,
/// with their line and request hash; not the asking batch's own rows, not invalid rows, not
/// another project's; too many IDs at once are refused.
async fn payment_ids_held_by_other_batches_are_found(
    store: &dyn BatchStore,
    other: &dyn BatchStore,
) {
    let (held_by, asking) = (batch_id(41), batch_id(42));
    register(store, &held_by, 3, &[2]).await;
    register(other, &held_by, 3, &[]).await;
    let short = &held_by[..8];
    let ids: Vec<String> = (1..=3)
        .map(|n| format!("pid-{short}-{n}"))
        .chain(["pid-nobody".to_owned()])
        .collect();
    let mut held = store.held_elsewhere(&asking, &ids).await.unwrap();
    held.sort_by_key(|h| h.line);
    let found: Vec<(String, String, u64, Option<String>)> = held
        .into_iter()
        .map(|h| (h.payment_id, h.batch_id, h.line, h.request_sha256))
        .collect();
    assert_eq!(
        found,
        [1, 3]
            .map(|n| (
                format!("pid-{short}-{n}"),
                held_by.clone(),
                n + 1,
                Some(row_request(short, n))
            ))
            .to_vec()
    );
    // Its own rows are not another batch's.
    assert!(
        store
            .held_elsewhere(&held_by, &ids)
            .await
            .unwrap()
            .is_empty()
    );
    let too_many = vec!["x".to_owned(); rp_ledger::MAX_HELD_QUERY + 1];
    let error = store.held_elsewhere(&asking, &too_many).await.unwrap_err();
    assert!(error.to_string().contains("at most"), "{error}");
    assert!(store.held_elsewhere(&asking, &[]).await.unwrap().is_empty());
}

/// Valid rows paying `(payment ID, request hash)`, one per line from line 2.
fn rows_paying(rows: &[(&str, &str)]) -> RowSource {
    let rows: Vec<(String, String)> = rows
        .iter()
        .map(|(id, hash)| ((*id).to_owned(), (*hash).to_owned()))
        .collect();
    Box::new(rows.into_iter().zip(1..).map(|((id, hash), n)| {
        Ok(NewBatchRow {
            row: n,
            line: n + 1,
            payment_id: Some(id),
            request_sha256: Some(hash),
            valid: true,
            cells: format!("77012345678;100;c{n}").into_bytes(),
            problems: None,
        })
    }))
}

/// A registration whose rows use payment IDs the ledger holds for other payouts writes
/// nothing and names them, each row once, in row order: a recorded payout of another request,
/// or, when none is recorded, another batch's row for another request. The same requests are
/// no clash, and a recorded payout decides whose an ID is (another batch's row for another
/// request is then a conflict row, never paid: no clash for the row that is the payout).
async fn registration_refuses_payment_ids_another_batch_holds(
    store: &dyn BatchStore,
    payouts: &dyn PayoutStore,
) {
    let (first, second, third) = (batch_id(43), batch_id(44), batch_id(45));
    let held = rows_paying(&[
        ("h-1", "aa"),
        ("h-2", "bb"),
        ("h-3", "cc"),
        ("h-paid", "dd"),
    ]);
    // h-paid is recorded, for another request than the first batch's row (registered all
    // the same: that row is a conflict, never paid).
    let paid = record("h-paid", "77012345678", 100, 0);
    let paid_hash = rp_ledger::request_sha256(&paid.request).unwrap();
    let event = PayoutEvent::new(
        paid.created_at,
        EventSource::Call,
        None,
        PayoutState::Created,
    );
    let inserted = payouts.insert(paid, event, rp_model::Limits::NONE).await;
    assert!(matches!(inserted.unwrap(), Inserted::New(_)));
    let registered = store
        .register_with(new_batch(&first, 4, &[]), held, OnClash::Register)
        .await;
    assert_eq!(registered.unwrap(), Registered::New);

    let clashing = rows_paying(&[
        ("h-1", "aa"),
        ("h-2", "XX"),
        ("new", "ee"),
        ("h-3", "YY"),
        ("h-paid", "ZZ"),
    ]);
    let answer = store.register(new_batch(&second, 5, &[]), clashing).await;
    let Registered::Clashes(clashes) = answer.unwrap() else {
        panic!("registered with clashing payment IDs");
    };
    // Row, line, payment ID, and who holds it: another batch's row (its line), or a payout.
    let found: Vec<String> = clashes
        .iter()
        .map(|c| match &c.held_by {
            Some(h) => format!(
                "{} {} {} {} {}",
                c.row,
                c.line,
                c.payment_id,
                &h.batch_id[..2],
                h.line
            ),
            None => format!("{} {} {} payout", c.row, c.line, c.payment_id),
        })
        .collect();
    assert_eq!(found, ["2 3 h-2 2b 3", "4 5 h-3 2b 4", "5 6 h-paid payout"]);
    assert_eq!(
        store.progress(&second).await.unwrap(),
        None,
        "nothing written"
    );

    // The same requests, and the recorded payout itself: registered.
    let same = rows_paying(&[("h-1", "aa"), ("h-2", "bb"), ("h-paid", &paid_hash)]);
    let registered = store.register(new_batch(&third, 3, &[]), same).await;
    assert_eq!(registered.unwrap(), Registered::New);
    // Registered all the same when asked (`rp batch run --skip-invalid`) where a recorded
    // payout holds the ID: that row is a conflict when its turn comes, never paid. Not where
    // another batch's row holds it (whichever ran first would take the ID).
    let skipping = rows_paying(&[("h-paid", "XX"), ("new-2", "ee")]);
    let registered = store
        .register_with(
            new_batch(&batch_id(48), 2, &[]),
            skipping,
            OnClash::Register,
        )
        .await;
    assert_eq!(registered.unwrap(), Registered::New);
    let over_a_batch = rows_paying(&[("h-3", "QQ"), ("new-3", "ee")]);
    let registered = store
        .register_with(
            new_batch(&batch_id(49), 2, &[]),
            over_a_batch,
            OnClash::Register,
        )
        .await;
    assert!(
        matches!(registered.unwrap(), Registered::Clashes(c) if c.len() == 1 && c[0].payment_id == "h-3")
    );
}

/// A new payout whose payment ID a valid batch row holds, none recorded under it, is refused
/// in its insert, naming the row (`Inserted::Held`), unless it is that row's very payout (the
/// same request, no metadata): a different request, or the same with the merchant's
/// metadata (a row carries none), with limits or without. An invalid row holds nothing, and
/// once a payout is recorded under an ID, it decides: the same request again is `Existing`.
async fn new_payouts_refuse_payment_ids_a_batch_row_holds(
    store: &dyn BatchStore,
    payouts: &dyn PayoutStore,
) {
    let row_payout = |id: &str| record(id, "77012345678", 1500, 0);
    let other_payout = |id: &str| record(id, "77019999999", 1500, 0);
    let hash = |id: &str| rp_ledger::request_sha256(&row_payout(id).request).unwrap();
    let rows = rows_paying(&[
        ("held-1", &hash("held-1")),
        ("held-2", &hash("held-2")),
        ("held-3", &hash("held-3")),
        ("held-4", &hash("held-4")),
    ]);
    let mut rows = rows.map(|row| {
        row.map(|mut row| {
            row.valid = row.row != 4;
            row
        })
    });
    let rows: RowSource = Box::new(std::iter::from_fn(move || rows.next()));
    let id = batch_id(0x5e);
    let registered = store.register(new_batch(&id, 4, &[4]), rows).await;
    assert_eq!(registered.unwrap(), Registered::New);
    let mut limits = rp_model::Limits::none(rp_model::Currency::KZT);
    limits.daily_count = Some(1_000);
    let insert = |record: rp_payout::PayoutRecord, limits: rp_model::Limits| async move {
        let event = PayoutEvent::new(
            record.created_at,
            EventSource::Call,
            None,
            PayoutState::Created,
        );
        payouts.insert(record, event, limits).await.unwrap()
    };
    let held_by = |line: u64| format!("batch {} (its line {line})", &id[..20]);
    let with_metadata = |mut record: rp_payout::PayoutRecord| {
        record.metadata = Some(r#"{"order":7}"#.to_owned());
        record
    };

    for limits in [rp_model::Limits::NONE, limits] {
        // Another payee under the row's ID, or the row's payee with metadata: refused.
        assert_eq!(
            insert(other_payout("held-1"), limits).await,
            Inserted::Held(held_by(2))
        );
        assert_eq!(
            insert(with_metadata(row_payout("held-3")), limits).await,
            Inserted::Held(held_by(4))
        );
    }
    // Nothing was recorded by the refusals.
    assert_eq!(payouts.get(&pid("held-1")).await.unwrap(), None);
    assert_eq!(payouts.get(&pid("held-3")).await.unwrap(), None);
    // The row's very payout is recorded; the ID is then the payout's.
    assert!(matches!(
        insert(row_payout("held-2"), rp_model::Limits::NONE).await,
        Inserted::New(_)
    ));
    assert!(matches!(
        insert(other_payout("held-2"), limits).await,
        Inserted::Existing(_)
    ));
    assert!(matches!(
        insert(with_metadata(row_payout("held-2")), rp_model::Limits::NONE).await,
        Inserted::Existing(_)
    ));
    // With limits too, and an invalid row holds nothing.
    assert!(matches!(
        insert(row_payout("held-1"), limits).await,
        Inserted::New(_)
    ));
    assert!(matches!(
        insert(other_payout("held-4"), rp_model::Limits::NONE).await,
        Inserted::New(_)
    ));
}

fn pid(id: &str) -> rp_model::PaymentId {
    rp_model::PaymentId::new(id).unwrap()
}

/// Two batches registered at the same moment, each of 2,000 rows with one payment ID for two
/// different payouts: one is registered, the other sees it (its transaction waits for the
/// first's) and writes nothing.
async fn racing_registrations_of_one_payment_id_register_one(store: Arc<dyn BatchStore>) {
    const ROWS: u64 = 2_000;
    let mut tasks = Vec::new();
    for (n, hash) in [(46u8, "one"), (47, "two")] {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let id = batch_id(n);
            let rows: Vec<(String, String)> = (0..ROWS)
                .map(|r| match r {
                    // The shared ID last: inserted after most of the other's rows.
                    r if r == ROWS - 1 => ("race-shared".to_owned(), hash.to_owned()),
                    r => (format!("race-{n}-{r}"), "h".to_owned()),
                })
                .collect();
            let refs: Vec<(&str, &str)> =
                rows.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect();
            store
                .register(new_batch(&id, ROWS, &[]), rows_paying(&refs))
                .await
                .unwrap()
        }));
    }
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap());
    }
    let new = answers.iter().filter(|a| **a == Registered::New).count();
    let clashed = answers
        .iter()
        .filter(|a| matches!(a, Registered::Clashes(c) if c.len() == 1 && c[0].row == ROWS))
        .count();
    assert_eq!((new, clashed), (1, 1), "{answers:?}");
}

async fn hostile_ids_are_refused(store: &dyn BatchStore) {
    for id in [
        "",
        "x",
        "'; DROP TABLE batches; --",
        &"A".repeat(64),
        &"0".repeat(65),
    ] {
        let error = store.claim(id, "w", LEASE, 1).await.unwrap_err();
        assert!(error.to_string().contains("not a batch ID"), "{error}");
        assert!(store.progress(id).await.is_err());
    }
    let error = store
        .claim(&batch_id(1), "w", Duration::ZERO, 1)
        .await
        .unwrap_err();
    assert!(error.to_string().contains("lease"), "{error}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_in_memory_sqlite_ledger_keeps_batches() {
    run_all(&Ledger::open("sqlite::memory:").await.unwrap()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_file_ledger_keeps_batches_across_handles() {
    let dir = crate::scratch("batches");
    let url = format!("sqlite:{}", dir.join("ledger.db").display());
    run_all(&Ledger::open(&url).await.unwrap()).await;
    // Another handle on the file (another process's) sees the same batches.
    let other = Ledger::open(&url).await.unwrap();
    let progress = other
        .batches(project(1234))
        .progress(&batch_id(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(progress.count("success"), 1);
}
