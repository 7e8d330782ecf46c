//! A PostgreSQL claim sets aside what no claim can take now, as SQLite's does: the
//! deliveries of a disabled endpoint, and those behind an earlier change of their payout that
//! waits. Every claim used to read them again (an endpoint down for days: every payout's
//! deliveries, at every claim). Setting aside must never lose a delivery, whatever runs
//! beside it on another instance: enabling the endpoint, recording the earlier attempt.

use std::time::Duration;

use rp_ledger::{AfterAttempt, AttemptRecord};
use rp_model::ProjectId;

use super::{Database, server};
use crate::review_aside::{self, Place, attempt, change, insert};

const LEASE: Duration = Duration::from_secs(600);

/// The SQLite scenarios of `review_aside`, on one PostgreSQL database.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_set_aside_scenarios_hold_on_postgres() {
    let Some(admin) = server("the_set_aside_scenarios_hold_on_postgres") else {
        return;
    };
    let db = Database::fresh(&admin, "aside_scenarios").await;
    review_aside::run_all(&Place::Postgres(db.url.clone())).await;
    crate::unreadable::an_unreadable_delivery_holds_up_no_other(
        &Place::Postgres(db.url.clone()),
        7101,
    )
    .await;
    crate::unreadable::unreadable_records_stop_no_walk(&Place::Postgres(db.url.clone()), 7102)
        .await;
    db.remove().await;
}

/// `(payment_id, version, next_attempt_at is null, next_attempt_at > now)` of every
/// delivery not delivered, by payment ID and version.
async fn due_times(db: &Database, project: i64) -> Vec<(String, i64, bool, bool)> {
    let sql = db.sql().await;
    sql.query(
        "SELECT payment_id, version, next_attempt_at IS NULL, \
         coalesce(next_attempt_at > (extract(epoch FROM clock_timestamp()) * 1e9)::bigint, false) \
         FROM rp_ledger.webhook_deliveries WHERE project_id = $1 AND delivered_at IS NULL \
         ORDER BY payment_id, version",
        &[&project],
    )
    .await
    .unwrap()
    .iter()
    .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
    .collect()
}

/// What a claim that found fewer than its limit leaves: a disabled endpoint's deliveries with
/// no time; a change behind an earlier one in flight due when that one's lease ends. A
/// delivered attempt makes the change behind it due at once; enabling, every delivery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_sets_aside_what_no_claim_can_take() {
    let Some(admin) = server("a_claim_sets_aside_what_no_claim_can_take") else {
        return;
    };
    let db = Database::fresh(&admin, "aside_seen").await;
    let ledger = db.open().await;
    let (off, on) = (ProjectId::new(31).unwrap(), ProjectId::new(32).unwrap());
    let hooks = ledger.webhooks(off);
    let e = hooks
        .add_endpoint("https://m.example/off", "whsec_eA==")
        .await
        .unwrap()
        .id;
    hooks.set_disabled(e, Some("off")).await.unwrap();
    insert(&ledger.store(off), "d-1").await;
    change(&ledger.store(off), "d-1").await;
    assert_eq!(
        due_times(&db, 31).await,
        [
            ("d-1".into(), 0, false, false),
            ("d-1".into(), 1, false, false)
        ]
    );
    assert!(hooks.claim_due("a", LEASE, 128).await.unwrap().is_empty());
    assert_eq!(
        due_times(&db, 31).await,
        [
            ("d-1".into(), 0, true, false),
            ("d-1".into(), 1, true, false)
        ],
        "a disabled endpoint's deliveries wait with no time"
    );
    hooks.set_disabled(e, None).await.unwrap();
    assert_eq!(
        due_times(&db, 31).await,
        [
            ("d-1".into(), 0, false, false),
            ("d-1".into(), 1, false, false)
        ],
        "enabled: every one due"
    );

    let hooks = ledger.webhooks(on);
    hooks
        .add_endpoint("https://m.example/on", "whsec_eA==")
        .await
        .unwrap();
    insert(&ledger.store(on), "b-1").await;
    let head = hooks.claim_due("a", LEASE, 128).await.unwrap();
    assert_eq!(head.len(), 1);
    change(&ledger.store(on), "b-1").await;
    // Not set aside by a claim that took as many as it may (it has not read everything).
    assert_eq!(hooks.claim_due("a", LEASE, 0).await.unwrap().len(), 0);
    assert_eq!(due_times(&db, 32).await[1], ("b-1".into(), 1, false, false));
    assert!(hooks.claim_due("a", LEASE, 128).await.unwrap().is_empty());
    assert_eq!(
        due_times(&db, 32).await[1],
        ("b-1".into(), 1, false, true),
        "behind the head in flight: due when its lease ends"
    );
    let done = hooks
        .record_attempts("a", &[attempt(&head[0].key, AfterAttempt::Delivered)])
        .await
        .unwrap();
    assert_eq!(done, [true]);
    assert_eq!(
        due_times(&db, 32).await,
        [("b-1".into(), 1, false, false)],
        "the head delivered: the change behind it is due now"
    );
    let next = hooks.claim_due("a", LEASE, 128).await.unwrap();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].key.version, 1);
    drop(ledger);
    db.remove().await;
}

/// Two instances: one claims (and sets aside a disabled endpoint's deliveries) while the
/// other enables the endpoint. Whatever the interleaving, every delivery of the enabled
/// endpoint is due afterwards: none set aside after enabling made it due.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enabling_beside_a_set_aside_leaves_nothing_waiting() {
    let Some(admin) = server("enabling_beside_a_set_aside_leaves_nothing_waiting") else {
        return;
    };
    let db = Database::fresh(&admin, "aside_enable").await;
    let (one, two) = (db.open().await, db.open().await);
    for round in 0..40_i64 {
        let project = ProjectId::new(100 + round.unsigned_abs()).unwrap();
        let (claims, enables) = (one.webhooks(project), two.webhooks(project));
        let e = claims
            .add_endpoint("https://m.example/e", "whsec_eA==")
            .await
            .unwrap()
            .id;
        claims.set_disabled(e, Some("off")).await.unwrap();
        for n in 0..30 {
            insert(&one.store(project), &format!("en-{n}")).await;
        }
        let (claimed, enabled) = tokio::join!(
            claims.claim_due("a", LEASE, 128),
            enables.set_disabled(e, None)
        );
        claimed.unwrap();
        assert!(enabled.unwrap());
        let parked: Vec<_> = due_times(&db, 100 + round)
            .await
            .into_iter()
            .filter(|d| d.2)
            .collect();
        assert!(
            parked.is_empty(),
            "round {round}: enabled, yet set aside with no time: {parked:?}"
        );
    }
    drop((one, two));
    db.remove().await;
}

/// Two instances: one claims (and sets aside the changes behind a head in flight) while the
/// other records the head delivered. Whatever the interleaving, the changes behind it are due
/// afterwards, not left until the head's lease ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_recorded_beside_a_set_aside_leaves_nothing_behind_it() {
    let Some(admin) = server("a_delivery_recorded_beside_a_set_aside_leaves_nothing_behind_it")
    else {
        return;
    };
    let db = Database::fresh(&admin, "aside_record").await;
    let (one, two) = (db.open().await, db.open().await);
    for round in 0..40_i64 {
        let project = ProjectId::new(200 + round.unsigned_abs()).unwrap();
        let (claims, records) = (one.webhooks(project), two.webhooks(project));
        claims
            .add_endpoint("https://m.example/r", "whsec_eA==")
            .await
            .unwrap();
        for n in 0..30 {
            insert(&one.store(project), &format!("rc-{n}")).await;
        }
        let heads = records.claim_due("head", LEASE, 128).await.unwrap();
        assert_eq!(heads.len(), 30);
        for n in 0..30 {
            change(&one.store(project), &format!("rc-{n}")).await;
        }
        let attempts: Vec<AttemptRecord> = heads
            .iter()
            .map(|h| attempt(&h.key, AfterAttempt::Delivered))
            .collect();
        let (claimed, recorded) = tokio::join!(
            claims.claim_due("other", LEASE, 128),
            records.record_attempts("head", &attempts)
        );
        let claimed = claimed.unwrap();
        assert!(recorded.unwrap().iter().all(|r| *r));
        let waiting: Vec<_> = due_times(&db, 200 + round)
            .await
            .into_iter()
            .filter(|d| d.3)
            .collect();
        // Either claimed beside the record (in flight: due at its lease end) or due now.
        let in_flight: Vec<(String, i64)> = claimed
            .iter()
            .map(|c| {
                (
                    c.key.payment_id.as_str().to_owned(),
                    i64::try_from(c.key.version).unwrap(),
                )
            })
            .collect();
        let left: Vec<_> = waiting
            .into_iter()
            .filter(|d| !in_flight.contains(&(d.0.clone(), d.1)))
            .collect();
        assert!(
            left.is_empty(),
            "round {round}: delivered heads, yet the changes behind them wait: {left:?}"
        );
    }
    drop((one, two));
    db.remove().await;
}
