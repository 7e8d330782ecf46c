//! Adversarial review of 983326a (PostgreSQL webhooks: a record locks what it changes first,
//! in key order; a claim gives back what now has an earlier change waiting). The promise: no
//! deadlock or error in records, claims, enable, replay or removal across two instances.
//! (Fixed: a replay locks the endpoints, then the deliveries in key order, before its upsert.)
//!
//! A replay (`INSERT ... ON CONFLICT DO UPDATE` over the payout's events times the project's
//! endpoints) locks the deliveries it updates in its plan's order, not in key order, and takes
//! `FOR KEY SHARE` on the endpoint of every delivery it *inserts* (the foreign key's check, at
//! the end of its statement). A removal takes its endpoint `FOR UPDATE` first, then the
//! endpoint's deliveries; a record takes its endpoints, then its deliveries in key order.
//! Each test lines the two up with a third transaction holding `FOR SHARE` on one delivery for
//! a moment (what a set-aside's `WAITING` read takes), and fails on 983326a with a deadlock
//! error on one side.

use std::time::Duration;

use rp_ledger::{AfterAttempt, DeliveryKey};
use rp_model::{PaymentId, ProjectId};

use super::review_pg_aside::{deliver_all, hold_deliveries};
use super::{Database, server};
use crate::review_aside::{attempt, change, insert};

const LEASE: Duration = Duration::from_secs(600);

fn keys(infos: &[rp_ledger::DeliveryInfo]) -> Vec<(i64, u64)> {
    infos
        .iter()
        .map(|i| (i.key.endpoint, i.key.version))
        .collect()
}

/// An endpoint added between two changes of a payout has no delivery of the first: a replay
/// of the whole payout inserts it (checking the endpoint, `FOR KEY SHARE`, at its statement's
/// end) and updates the second (locking it). A removal of that endpoint on the other instance
/// holds the endpoint `FOR UPDATE` and waits for the second delivery: the replay's foreign-key
/// check waits for the removal, the removal for the replay. One of them fails ("deadlock
/// detected"): an operator's replay or removal errors out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_replay_and_removal_of_a_later_endpoint_deadlock() {
    let Some(admin) = server("review_pg_replay_and_removal_of_a_later_endpoint_deadlock") else {
        return;
    };
    let db = Database::fresh(&admin, "review_pg_replay_removal").await;
    let (one, two) = (db.open().await, db.open().await);
    let project = ProjectId::new(81).unwrap();
    let hooks = one.webhooks(project);
    let e1 = hooks
        .add_endpoint("https://m.example/one", "whsec_eA==")
        .await
        .unwrap()
        .id;
    insert(&one.store(project), "rr").await;
    let e2 = hooks
        .add_endpoint("https://m.example/two", "whsec_eA==")
        .await
        .unwrap()
        .id;
    change(&one.store(project), "rr").await;
    deliver_all(&one, project).await;
    let p = PaymentId::new("rr").unwrap();
    let infos = hooks.deliveries(&p).await.unwrap();
    // E1 has both changes, E2 only the second.
    assert_eq!(infos.len(), 3, "{:?}", keys(&infos));
    let later = infos
        .iter()
        .find(|i| i.key.endpoint == e2)
        .unwrap()
        .key
        .version;
    assert!(
        infos
            .iter()
            .any(|i| i.key.endpoint == e1 && i.key.version < later)
    );

    let (holder, held) = hold_deliveries(&db, 81, Some(e2), later).await;
    assert_eq!(held, 1);
    let replays = one.webhooks(project);
    let replay = tokio::spawn(async move {
        replays
            .replay(&PaymentId::new("rr").unwrap(), None, None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let removals = two.webhooks(project);
    let removal = tokio::spawn(async move { removals.remove_endpoint(e2).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let (replay, removal) = (replay.await.unwrap(), removal.await.unwrap());
    assert!(
        replay.is_ok() && removal.is_ok(),
        "a replay and a removal on two instances: replay {replay:?}, removal {removal:?}"
    );
    drop((one, two));
    db.remove().await;
}

/// Two endpoints, two changes of a payout, everything delivered. The instance A has
/// (E1, v2) and (E2, v1) in flight (replays of one version to one endpoint, claimed together)
/// and records them: it locks them in key order, (E1, v2) first. A replay of the whole payout
/// on the other instance locks its deliveries version by version, (E2, v1) before (E1, v2):
/// the two cross, and one fails with a deadlock error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_pg_replay_and_record_cross_deadlock() {
    let Some(admin) = server("review_pg_replay_and_record_cross_deadlock") else {
        return;
    };
    let db = Database::fresh(&admin, "review_pg_replay_record").await;
    let (one, two) = (db.open().await, db.open().await);
    let project = ProjectId::new(82).unwrap();
    let hooks = one.webhooks(project);
    let e1 = hooks
        .add_endpoint("https://m.example/one", "whsec_eA==")
        .await
        .unwrap()
        .id;
    let e2 = hooks
        .add_endpoint("https://m.example/two", "whsec_eA==")
        .await
        .unwrap()
        .id;
    assert!(e1 < e2);
    insert(&one.store(project), "rx").await;
    change(&one.store(project), "rx").await;
    deliver_all(&one, project).await;
    let p = PaymentId::new("rx").unwrap();
    let infos = hooks.deliveries(&p).await.unwrap();
    assert_eq!(infos.len(), 4, "{:?}", keys(&infos));
    let (v1, v2) = (infos[0].key.version, infos[3].key.version);
    assert!(v1 < v2);
    hooks.replay(&p, Some(v2), Some(e1)).await.unwrap();
    hooks.replay(&p, Some(v1), Some(e2)).await.unwrap();
    let claimed = two
        .webhooks(project)
        .claim_due("A", LEASE, 10)
        .await
        .unwrap();
    let mut mine: Vec<DeliveryKey> = claimed.iter().map(|c| c.key.clone()).collect();
    mine.sort_by_key(|k| (k.endpoint, k.version));
    assert_eq!(
        mine.iter()
            .map(|k| (k.endpoint, k.version))
            .collect::<Vec<_>>(),
        [(e1, v2), (e2, v1)]
    );

    let (holder, held) = hold_deliveries(&db, 82, Some(e2), v1).await;
    assert_eq!(held, 1);
    let replays = one.webhooks(project);
    let replay = tokio::spawn(async move {
        replays
            .replay(&PaymentId::new("rx").unwrap(), None, None)
            .await
    });
    tokio::time::sleep(Duration::from_millis(400)).await;
    let records = two.webhooks(project);
    let attempts: Vec<_> = mine
        .iter()
        .map(|k| attempt(k, AfterAttempt::RetryIn(Duration::from_secs(60))))
        .collect();
    let record = tokio::spawn(async move { records.record_attempts("A", &attempts).await });
    tokio::time::sleep(Duration::from_millis(400)).await;
    holder.batch_execute("COMMIT").await.unwrap();
    let (replay, record) = (replay.await.unwrap(), record.await.unwrap());
    assert!(
        replay.is_ok() && record.is_ok(),
        "a replay and a record on two instances: replay {replay:?}, record {record:?}"
    );
    drop((one, two));
    db.remove().await;
}
