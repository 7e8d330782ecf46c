//! Adversarial review of 1d90d4e ("claims and attempts share the writer's group commits; the
//! claim names its due index"). Each test names the promise it holds the change to.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rp_ledger::{AfterAttempt, AttemptRecord, DeliveryAttempt, Ledger};
use rp_model::{Limits, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{EventSource, PayoutEvent, PayoutState, Updated};

const LEASE: Duration = Duration::from_secs(600);

/// Who claimed each delivery: (payment ID, version) -> owners.
type Claims = HashMap<(String, u64), Vec<String>>;

fn url(path: &std::path::Path) -> String {
    format!("sqlite:{}", path.display())
}

fn delivered(key: &rp_ledger::DeliveryKey) -> AttemptRecord {
    AttemptRecord {
        key: key.clone(),
        attempt: DeliveryAttempt::new(SystemTime::now(), Duration::from_millis(1), Some(204), None),
        after: AfterAttempt::Delivered,
    }
}

fn failed(key: &rp_ledger::DeliveryKey, retry_in: Duration) -> AttemptRecord {
    AttemptRecord {
        key: key.clone(),
        attempt: DeliveryAttempt::new(
            SystemTime::now(),
            Duration::from_millis(1),
            Some(503),
            Some("HTTP 503".to_owned()),
        ),
        after: AfterAttempt::RetryIn(retry_in),
    }
}

/// Inserts payouts `prefix-0 .. prefix-n` in `project` (64 at a time, so they share groups).
async fn insert_many(ledger: &Ledger, project: ProjectId, prefix: &str, n: u64) {
    let store = ledger.store(project);
    let mut next = 0;
    while next < n {
        let mut tasks = Vec::new();
        for i in next..(next + 64).min(n) {
            let store = Arc::clone(&store);
            let id = format!("{prefix}-{i}");
            tasks.push(tokio::spawn(async move {
                let r = record(&id, "77011234567", 100, i);
                let event =
                    PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
                store.insert(r, event, Limits::NONE).await.unwrap();
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        next = (next + 64).min(n);
    }
}

/// A file ledger in a fresh directory named `name`.
async fn outbox(name: &str) -> Ledger {
    let dir = crate::scratch(name);
    Ledger::open(&url(&dir.join("ledger.db"))).await.unwrap()
}

/// One more change of payout `id`: to `Unknown` (a delivery per endpoint).
async fn to_unknown(store: &dyn rp_payout::PayoutStore, id: &rp_model::PaymentId) {
    let r = store.get(id).await.unwrap().unwrap();
    let mut next = r.clone();
    next.state = PayoutState::Unknown;
    let event = PayoutEvent::new(
        SystemTime::now(),
        EventSource::Call,
        Some(r.state.clone()),
        PayoutState::Unknown,
    );
    assert!(matches!(
        store.update(r.version, next, event).await.unwrap(),
        Updated::Done(_)
    ));
}

fn next_of(deliveries: &[rp_ledger::DeliveryInfo], version: u64) -> Option<SystemTime> {
    deliveries
        .iter()
        .find(|d| d.key.version == version)
        .unwrap()
        .next_attempt_at
}

/// Promise of 1d90d4e: "the due index … holds only the deliveries not yet delivered, in time
/// order, so a claim reads the few due ones and stops at its limit". It stops at its limit
/// only when `limit` deliveries are claimable. When an endpoint is down (for hours: it is
/// disabled only after 3 days 15 hours), each payout's first change waits for its retry
/// while the later ones would stay due but blocked behind it (the order per payout), and a
/// disabled endpoint's deliveries would stay due until it is enabled: every claim, on the
/// single writer thread, would read all of them and find nothing. So a claim that finds
/// nothing more sets them aside: a blocked one is due at its predecessor's retry, one of a
/// disabled endpoint waits with no time; a delivered attempt, or enabling the endpoint,
/// makes them due again at once. (Not timed: the due times are what the claim reads.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_set_aside_what_they_cannot_take() {
    let ledger = outbox("review-grouped-aside").await;
    let project = ProjectId::new(9301).unwrap();
    let hooks = ledger.webhooks(project);
    let store = ledger.store(project);
    let down = hooks
        .add_endpoint("https://merchant.example/down", "whsec_eA==")
        .await
        .unwrap();
    insert_many(&ledger, project, "blk", 2).await;
    // The endpoint is down: each payout's first change fails and waits an hour.
    let claimed = hooks.claim_due("sender", LEASE, 128).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let records: Vec<AttemptRecord> = claimed
        .iter()
        .map(|c| failed(&c.key, Duration::from_secs(3600)))
        .collect();
    assert_eq!(
        hooks.record_attempts("sender", &records).await.unwrap(),
        [true, true]
    );
    // Each payout changes again: a second delivery, blocked behind the first.
    for i in 0..2 {
        let id = rp_model::PaymentId::new(format!("blk-{i}")).unwrap();
        to_unknown(store.as_ref(), &id).await;
    }
    let id = rp_model::PaymentId::new("blk-0").unwrap();
    let before = hooks.deliveries(&id).await.unwrap();
    assert!(
        next_of(&before, 1).unwrap() <= SystemTime::now(),
        "{before:?}"
    );
    // A claim finds nothing, and sets the blocked ones aside until their predecessor's retry.
    assert!(
        hooks
            .claim_due("sender", LEASE, 128)
            .await
            .unwrap()
            .is_empty()
    );
    let after = hooks.deliveries(&id).await.unwrap();
    let retry = next_of(&after, 0).unwrap();
    assert!(
        retry > SystemTime::now() + Duration::from_secs(3000),
        "{after:?}"
    );
    assert_eq!(next_of(&after, 1), Some(retry), "{after:?}");
    // The first change goes through (replayed now, delivered): the second is due at once.
    hooks.replay(&id, Some(0), None).await.unwrap();
    let claimed = hooks.claim_due("sender", LEASE, 128).await.unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].key.version, 0);
    assert_eq!(
        hooks
            .record_attempts("sender", &[delivered(&claimed[0].key)])
            .await
            .unwrap(),
        [true]
    );
    let claimed = hooks.claim_due("sender", LEASE, 128).await.unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(
        (claimed[0].key.payment_id.as_str(), claimed[0].key.version),
        ("blk-0", 1)
    );

    // A disabled endpoint's deliveries wait with no time, still counted as pending; enabling
    // it makes them due.
    hooks.set_disabled(down.id, Some("paused")).await.unwrap();
    insert_many(&ledger, project, "off", 1).await;
    assert!(
        hooks
            .claim_due("other", LEASE, 128)
            .await
            .unwrap()
            .is_empty()
    );
    let off = rp_model::PaymentId::new("off-0").unwrap();
    let waiting = hooks.deliveries(&off).await.unwrap();
    assert_eq!(next_of(&waiting, 0), None, "{waiting:?}");
    assert_eq!(waiting[0].state, rp_ledger::DeliveryState::Pending);
    let endpoint = hooks.endpoints().await.unwrap();
    // blk-0 v2 (claimed), blk-1 v1 and v2, off-0 v1.
    assert_eq!(endpoint[0].pending, 4, "{endpoint:?}");
    hooks.set_disabled(down.id, None).await.unwrap();
    let claimed = hooks.claim_due("other", LEASE, 128).await.unwrap();
    let keys: Vec<(&str, u64)> = claimed
        .iter()
        .map(|c| (c.key.payment_id.as_str(), c.key.version))
        .collect();
    assert!(keys.contains(&("off-0", 0)), "{keys:?}");
}

/// Promise: each delivery is sent by one claimant at a time, in order per payout, none lost,
/// with two handles on one file (two processes) claiming while payouts are inserted and
/// updated through both. (Held: written to try to break the shared groups.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_claim_each_delivery_once_and_in_order_while_payouts_are_written() {
    const N: u64 = 150;
    let dir = crate::scratch("review-grouped-two");
    let path = dir.join("ledger.db");
    let project = ProjectId::new(9302).unwrap();
    let a = Ledger::open(&url(&path)).await.unwrap();
    let b = Ledger::open(&url(&path)).await.unwrap();
    a.webhooks(project)
        .add_endpoint("https://merchant.example/a", "whsec_eA==")
        .await
        .unwrap();
    // Claims seen: (payment, version) -> owners.
    let claims: Arc<Mutex<Claims>> = Arc::default();
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let mut claimers = Vec::new();
    for (n, ledger) in [a.clone(), b.clone(), a.clone(), b.clone()]
        .into_iter()
        .enumerate()
    {
        let (claims, writing) = (Arc::clone(&claims), Arc::clone(&writing));
        claimers.push(tokio::spawn(async move {
            let hooks = ledger.webhooks(project);
            let owner = format!("owner-{n}");
            let mut idle = 0;
            loop {
                let claimed = hooks.claim_due(&owner, LEASE, 5).await.unwrap();
                if claimed.is_empty() {
                    if !writing.load(std::sync::atomic::Ordering::SeqCst) {
                        idle += 1;
                        if idle > 20 {
                            break;
                        }
                    }
                    tokio::time::sleep(Duration::from_millis(2)).await;
                    continue;
                }
                idle = 0;
                for c in &claimed {
                    let key = (c.key.payment_id.as_str().to_owned(), c.key.version);
                    claims
                        .lock()
                        .unwrap()
                        .entry(key)
                        .or_default()
                        .push(owner.clone());
                    // In order: the claim committed after every earlier version was delivered.
                    let all = hooks.deliveries(&c.key.payment_id).await.unwrap();
                    for earlier in all.iter().filter(|d| d.key.version < c.key.version) {
                        assert_eq!(
                            earlier.state,
                            rp_ledger::DeliveryState::Delivered,
                            "{:?} claimed while {:?} was not delivered",
                            c.key,
                            earlier.key
                        );
                    }
                }
                let records: Vec<AttemptRecord> =
                    claimed.iter().map(|c| delivered(&c.key)).collect();
                let recorded = hooks.record_attempts(&owner, &records).await.unwrap();
                assert!(recorded.iter().all(|r| *r), "{recorded:?}");
            }
        }));
    }
    let mut writers = Vec::new();
    for i in 0..N {
        let ledger = if i % 2 == 0 { a.clone() } else { b.clone() };
        writers.push(tokio::spawn(async move {
            let store = ledger.store(project);
            let r = record(&format!("two-{i}"), "77011234567", 100, i);
            let event =
                PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
            store.insert(r.clone(), event, Limits::NONE).await.unwrap();
            let mut r = store.get(&r.payment_id).await.unwrap().unwrap();
            for state in [
                PayoutState::Accepted,
                PayoutState::Unknown,
                PayoutState::NotRegistered,
            ] {
                let mut next = r.clone();
                next.state = state.clone();
                let event = PayoutEvent::new(
                    SystemTime::now(),
                    EventSource::Call,
                    Some(r.state.clone()),
                    state,
                );
                r = match store.update(r.version, next, event).await.unwrap() {
                    Updated::Done(after) => after,
                    other => panic!("{other:?}"),
                };
            }
        }));
    }
    for w in writers {
        w.await.unwrap();
    }
    writing.store(false, std::sync::atomic::Ordering::SeqCst);
    for c in claimers {
        c.await.unwrap();
    }
    let twice: Vec<_> = claims
        .lock()
        .unwrap()
        .iter()
        .filter(|(_, o)| o.len() > 1)
        .map(|(key, owners)| (key.clone(), owners.clone()))
        .collect();
    assert!(twice.is_empty(), "claimed more than once: {twice:?}");
    let hooks = a.webhooks(project);
    for i in 0..N {
        let id = rp_model::PaymentId::new(format!("two-{i}")).unwrap();
        let deliveries = hooks.deliveries(&id).await.unwrap();
        assert!(
            deliveries
                .iter()
                .all(|d| d.state == rp_ledger::DeliveryState::Delivered),
            "{deliveries:?}"
        );
        assert_eq!(deliveries.len(), 4, "{id}: {deliveries:?}");
    }
}

/// Promise: "a failed write is rolled back alone and the others commit". A grouped write
/// that panics (here `record_attempts` with `RetryIn(Duration::MAX)`: `SystemTime::now() +
/// delay` overflows on the writer thread; `claim_due` with a huge lease does the same) is not
/// a failed write: it unwinds the writer thread. The payout writes sharing its group are
/// answered "the ledger writer stopped" and, worse, every later write of the process fails
/// (the writer is gone) until a restart. Before 1d90d4e the same panic ran alone
/// (`exclusive`) but also killed the writer; now it also takes the payouts queued beside it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panicking_grouped_write_fails_alone_and_the_writer_goes_on() {
    let ledger = outbox("review-grouped-panic").await;
    let project = ProjectId::new(9303).unwrap();
    let hooks = ledger.webhooks(project);
    hooks
        .add_endpoint("https://merchant.example/p", "whsec_eA==")
        .await
        .unwrap();
    insert_many(&ledger, project, "pan", 1).await;
    let claimed = hooks.claim_due("sender", LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let bad = failed(&claimed[0].key, Duration::MAX);
    let recorded = hooks.record_attempts("sender", &[bad]).await;
    eprintln!("record_attempts(RetryIn(MAX)) answered {recorded:?}");
    // The ledger must still take payouts.
    let r = record("pan-after", "77011234567", 100, 7);
    let event = PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
    let after = ledger.store(project).insert(r, event, Limits::NONE).await;
    assert!(
        after.is_ok(),
        "after one bad webhook attempt, the ledger refuses every write: {after:?}"
    );
}

/// A delivery in flight (claimed, its attempt not yet recorded) is next due when its lease
/// ends, not at its old due time: so the deliveries in flight (up to 128 per sender) are not in
/// the range each later claim and set-aside reads, and a later change of the same payout, blocked
/// behind it, is set aside until then instead of being read again by every claim; the
/// delivery pulls it forward.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_makes_its_deliveries_due_at_the_end_of_the_lease() {
    let ledger = outbox("review-grouped-in-flight").await;
    let project = ProjectId::new(9302).unwrap();
    let (hooks, store) = (ledger.webhooks(project), ledger.store(project));
    hooks
        .add_endpoint("https://merchant.example/hooks", "whsec_eA==")
        .await
        .unwrap();
    insert_many(&ledger, project, "fly", 1).await;
    let claimed = hooks.claim_due("sender", LEASE, 128).await.unwrap();
    assert_eq!(claimed.len(), 1);
    let id = rp_model::PaymentId::new("fly-0").unwrap();
    let lease_end = SystemTime::now() + LEASE;
    let in_flight = next_of(&hooks.deliveries(&id).await.unwrap(), 0).unwrap();
    assert!(
        in_flight > lease_end - Duration::from_secs(60) && in_flight <= lease_end,
        "in flight, due at {in_flight:?}; the lease ends about {lease_end:?}"
    );
    // A later change, blocked behind it: a claim sets it aside until the lease ends.
    to_unknown(store.as_ref(), &id).await;
    assert!(
        hooks
            .claim_due("other", LEASE, 128)
            .await
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        next_of(&hooks.deliveries(&id).await.unwrap(), 1),
        Some(in_flight)
    );
    // Delivered: the later change is due at once, and claimed.
    assert_eq!(
        hooks
            .record_attempts("sender", &[delivered(&claimed[0].key)])
            .await
            .unwrap(),
        [true]
    );
    let claimed = hooks.claim_due("other", LEASE, 128).await.unwrap();
    assert_eq!(claimed.len(), 1, "{claimed:?}");
    assert_eq!(claimed[0].key.version, 1);
}
