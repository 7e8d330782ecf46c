//! Adversarial review of the PostgreSQL set-aside / one-statement claim (209f70e): two
//! ledger handles (two instances) on one database. Each test failed on 209f70e: two records
//! pulling each other's later deliveries deadlocked (fixed: a record locks every delivery it
//! changes first, in key order), and a claim took a change whose earlier one a replay made due
//! while the claim ran (fixed: the claim gives such deliveries back, read anew).

use std::time::Duration;

use rp_ledger::{AfterAttempt, DeliveryKey, Ledger};
use rp_model::{PaymentId, ProjectId};

use super::{Database, server};
use crate::review_aside::{attempt, change, insert};

const LEASE: Duration = Duration::from_secs(600);

fn key_of(key: &DeliveryKey) -> (String, u64) {
    (key.payment_id.as_str().to_owned(), key.version)
}

/// Delivers everything due, in order, as owner `o`.
pub(super) async fn deliver_all(ledger: &Ledger, project: ProjectId) {
    let hooks = ledger.webhooks(project);
    for _ in 0..10 {
        let claimed = hooks.claim_due("o", LEASE, 128).await.unwrap();
        if claimed.is_empty() {
            return;
        }
        let records: Vec<_> = claimed
            .iter()
            .map(|c| attempt(&c.key, AfterAttempt::Delivered))
            .collect();
        assert!(
            hooks
                .record_attempts("o", &records)
                .await
                .unwrap()
                .iter()
                .all(|r| *r)
        );
    }
    panic!("deliveries never ran out");
}

/// Claims exactly one delivery as `owner` and checks it is `(payment, version)`.
async fn claim_one(
    ledger: &Ledger,
    project: ProjectId,
    owner: &str,
    want: &(String, u64),
) -> DeliveryKey {
    let got = ledger
        .webhooks(project)
        .claim_due(owner, LEASE, 1)
        .await
        .unwrap();
    assert_eq!(got.len(), 1, "{owner} should claim {want:?}");
    assert_eq!(&key_of(&got[0].key), want);
    got[0].key.clone()
}

/// A delivered attempt now also updates the later changes of its payout to its endpoint
/// (`PULL_LATER`), rows the recording instance does not own. Two instances each recording a
/// batch of two delivered attempts, where each batch's second delivery is a later change
/// pulled by the other's first, lock the same two rows in opposite orders: PostgreSQL ends
/// one record with a deadlock error. The crossed ownership is reached with replays of one
/// version (an operator re-sending an old change while a later one is in flight). The two
/// batches are lined up by a third transaction holding `FOR SHARE` on the two in-flight later
/// deliveries for a moment — exactly what a set-aside's `WAITING` read takes on waiting
/// deliveries — so both records' pulls queue behind it and then proceed together.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_crossed_pulls_deadlock_two_records() {
    let Some(admin) = server("review_pg_crossed_pulls_deadlock_two_records") else {
        return;
    };
    let db = Database::fresh(&admin, "review_pg_crossed_pulls").await;
    let (one, two) = (db.open().await, db.open().await);
    let project = ProjectId::new(41).unwrap();
    one.webhooks(project)
        .add_endpoint("https://m.example/x", "whsec_eA==")
        .await
        .unwrap();
    for id in ["xp", "xq"] {
        insert(&one.store(project), id).await;
        change(&one.store(project), id).await;
    }
    deliver_all(&one, project).await;
    let infos = one
        .webhooks(project)
        .deliveries(&PaymentId::new("xp").unwrap())
        .await
        .unwrap();
    let (va, vb) = (infos[0].key.version, infos[1].key.version);
    assert!(va < vb);
    let (p, q) = (PaymentId::new("xp").unwrap(), PaymentId::new("xq").unwrap());
    let hooks = one.webhooks(project);
    // B has P's later change in flight, A has Q's.
    hooks.replay(&p, Some(vb), None).await.unwrap();
    let pb = claim_one(&two, project, "B", &("xp".into(), vb)).await;
    hooks.replay(&q, Some(vb), None).await.unwrap();
    let qb = claim_one(&one, project, "A", &("xq".into(), vb)).await;
    // The earlier changes replayed: A sends P's, B sends Q's.
    hooks.replay(&p, Some(va), None).await.unwrap();
    let pa = claim_one(&one, project, "A", &("xp".into(), va)).await;
    hooks.replay(&q, Some(va), None).await.unwrap();
    let qa = claim_one(&two, project, "B", &("xq".into(), va)).await;

    // A third transaction reads the two in-flight later deliveries FOR SHARE for a moment.
    let (holder, held) = hold_deliveries(&db, 41, None, vb).await;
    assert_eq!(held, 2);
    let (a_hooks, b_hooks) = (one.webhooks(project), two.webhooks(project));
    let a_records = [
        attempt(&pa, AfterAttempt::Delivered),
        attempt(&qb, AfterAttempt::Delivered),
    ];
    let b_records = [
        attempt(&qa, AfterAttempt::Delivered),
        attempt(&pb, AfterAttempt::Delivered),
    ];
    let a = tokio::spawn(async move { a_hooks.record_attempts("A", &a_records).await });
    let b = tokio::spawn(async move { b_hooks.record_attempts("B", &b_records).await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let (a, b) = (a.await.unwrap(), b.await.unwrap());
    assert!(
        a.is_ok() && b.is_ok(),
        "recording delivered attempts failed: A {a:?}, B {b:?}"
    );
    drop((one, two));
    db.remove().await;
}

/// Holds `FOR SHARE`, in a transaction left open, the deliveries of project `project` at
/// version `version` (of endpoint `endpoint`, or every endpoint): what a set-aside's read of
/// waiting deliveries takes, to line two other transactions up behind it. The connection
/// (`COMMIT` lets go) and how many are held.
pub(super) async fn hold_deliveries(
    db: &Database,
    project: i64,
    endpoint: Option<i64>,
    version: u64,
) -> (tokio_postgres::Client, u64) {
    let sql = db.sql().await;
    sql.batch_execute("BEGIN").await.unwrap();
    let held = sql
        .execute(
            "SELECT 1 FROM rp_ledger.webhook_deliveries WHERE project_id = $1 \
             AND ($2::bigint IS NULL OR endpoint_id = $2) AND version = $3 FOR SHARE",
            &[&project, &endpoint, &i64::try_from(version).unwrap()],
        )
        .await
        .unwrap();
    (sql, held)
}

/// A's and B's crossed deliveries in `project`: (P's earlier, Q's later) claimed by A,
/// (Q's earlier, P's later) claimed by B.
async fn crossed(one: &Ledger, two: &Ledger, project: ProjectId) -> [DeliveryKey; 4] {
    one.webhooks(project)
        .add_endpoint("https://m.example/x", "whsec_eA==")
        .await
        .unwrap();
    for id in ["xp", "xq"] {
        insert(&one.store(project), id).await;
        change(&one.store(project), id).await;
    }
    deliver_all(one, project).await;
    let (p, q) = (PaymentId::new("xp").unwrap(), PaymentId::new("xq").unwrap());
    let hooks = one.webhooks(project);
    let infos = hooks.deliveries(&p).await.unwrap();
    let (va, vb) = (infos[0].key.version, infos[1].key.version);
    hooks.replay(&p, Some(vb), None).await.unwrap();
    let pb = claim_one(two, project, "B", &("xp".into(), vb)).await;
    hooks.replay(&q, Some(vb), None).await.unwrap();
    let qb = claim_one(one, project, "A", &("xq".into(), vb)).await;
    hooks.replay(&p, Some(va), None).await.unwrap();
    let pa = claim_one(one, project, "A", &("xp".into(), va)).await;
    hooks.replay(&q, Some(va), None).await.unwrap();
    let qa = claim_one(two, project, "B", &("xq".into(), va)).await;
    [pa, qb, qa, pb]
}

/// The same crossed records, with nothing lining them up: two instances recording at the
/// same moment (each batch: a round trip per statement) deadlock on their own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_crossed_pulls_deadlock_unaided() {
    let Some(admin) = server("review_pg_crossed_pulls_deadlock_unaided") else {
        return;
    };
    let db = Database::fresh(&admin, "review_pg_crossed_unaided").await;
    let (one, two) = (db.open().await, db.open().await);
    let mut failures = Vec::new();
    for round in 0..10_u64 {
        let project = ProjectId::new(600 + round).unwrap();
        let [pa, qb, qa, pb] = crossed(&one, &two, project).await;
        let (a_hooks, b_hooks) = (one.webhooks(project), two.webhooks(project));
        let (a_records, b_records) = (
            [
                attempt(&pa, AfterAttempt::Delivered),
                attempt(&qb, AfterAttempt::Delivered),
            ],
            [
                attempt(&qa, AfterAttempt::Delivered),
                attempt(&pb, AfterAttempt::Delivered),
            ],
        );
        let (a, b) = tokio::join!(
            a_hooks.record_attempts("A", &a_records),
            b_hooks.record_attempts("B", &b_records)
        );
        for r in [a, b] {
            if let Err(e) = r {
                failures.push(format!("round {round}: {e}"));
            }
        }
    }
    assert!(failures.is_empty(), "records failed: {failures:#?}");
    drop((one, two));
    db.remove().await;
}

/// The claim's `NOT EXISTS` (no earlier change of the payout to the endpoint waits) is read in
/// the claim statement's snapshot, and `FOR UPDATE ... SKIP LOCKED` rechecks only the
/// delivery's own row when it finds it changed by a transaction that committed meanwhile
/// (READ COMMITTED's recheck): a replay of the whole payout that commits while a claim runs
/// (its update made before the claim's statement began, so the replayed later change is due
/// as of `statement_timestamp()`) has its later change claimed although its earlier change,
/// replayed in the same transaction, is waiting to be sent: both are then in flight at once.
/// The replay is the product's replay statement with its commit held back a moment (a slow
/// commit: synchronous replication, a busy WAL); the claim runs long by having a few thousand
/// due deliveries to take before it reaches the later change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_claim_takes_a_change_whose_earlier_one_was_replayed_meanwhile() {
    let Some(admin) =
        server("review_pg_claim_takes_a_change_whose_earlier_one_was_replayed_meanwhile")
    else {
        return;
    };
    let db = Database::fresh(&admin, "review_pg_claim_epq").await;
    let (one, two) = (db.open().await, db.open().await);
    let project = ProjectId::new(71).unwrap();
    let hooks = one.webhooks(project);
    hooks
        .add_endpoint("https://m.example/x", "whsec_eA==")
        .await
        .unwrap();
    insert(&one.store(project), "ep").await;
    change(&one.store(project), "ep").await;
    deliver_all(&one, project).await;
    let ep = PaymentId::new("ep").unwrap();
    let infos = hooks.deliveries(&ep).await.unwrap();
    let (va, vb) = (infos[0].key.version, infos[1].key.version);
    const AHEAD: usize = 3000;
    for n in 0..AHEAD {
        insert(&one.store(project), &format!("f{n}")).await;
    }
    // The later change due again (after everything ahead of it), the earlier one delivered.
    hooks.replay(&ep, Some(vb), None).await.unwrap();

    // A replay of the whole payout: its statement runs, its commit is slow.
    let mut sql = db.sql().await;
    let replay = sql.transaction().await.unwrap();
    let n = replay
        .execute(
            "INSERT INTO rp_ledger.webhook_deliveries \
             (endpoint_id, project_id, payment_id, version, created_at, next_attempt_at) \
             SELECT e.id, v.project_id, v.payment_id, v.version, v.at, \
             (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint \
             FROM rp_ledger.payout_events v \
             JOIN rp_ledger.webhook_endpoints e ON e.project_id = v.project_id \
             WHERE v.project_id = 71 AND v.payment_id = 'ep' \
             AND (v.previous IS NULL OR v.previous <> v.state) \
             ON CONFLICT (endpoint_id, project_id, payment_id, version) DO UPDATE SET \
             next_attempt_at = excluded.next_attempt_at, failures = 0, \
             delivered_at = NULL, failed_at = NULL, claimed_by = NULL, lease_until = NULL",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(n, 2);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let claims = two.webhooks(project);
    let claim = tokio::spawn(async move { claims.claim_due("B", LEASE, 10 * AHEAD).await });
    tokio::time::sleep(Duration::from_millis(15)).await;
    replay.commit().await.unwrap();
    let claimed = claim.await.unwrap().unwrap();
    let took: Vec<u64> = claimed
        .iter()
        .filter(|c| c.key.payment_id == ep)
        .map(|c| c.key.version)
        .collect();
    let states = hooks.deliveries(&ep).await.unwrap();
    assert!(
        !took.contains(&vb),
        "the later change {vb} was claimed while the earlier change {va} waits to be sent \
         (claimed {} in all): {states:?}",
        claimed.len()
    );
    drop((one, two));
    db.remove().await;
}
