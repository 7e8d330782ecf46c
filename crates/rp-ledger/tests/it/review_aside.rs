//! Adversarial review of 28a5c4f ("a claim that finds fewer than it may take sets aside what it
//! cannot"; a delivered attempt pulls the later changes; enabling requeues). Each scenario
//! drives the outbox to completion afterwards and checks the promise: every delivery ends
//! delivered, none claimed before an earlier change of its payout to its endpoint was delivered
//! or given up, none parked while its endpoint is enabled.
//!
//! Each scenario runs on SQLite here (a fresh file each, [`sqlite`]) and on PostgreSQL
//! ([`run_all`], called by the PostgreSQL tests on one database: the projects keep the
//! scenarios apart).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rp_ledger::{AfterAttempt, AttemptRecord, DeliveryAttempt, DeliveryKey, DeliveryState, Ledger};
use rp_model::{Limits, PaymentId, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{EventSource, PayoutEvent, PayoutState, PayoutStore, Updated};

const LEASE: Duration = Duration::from_secs(600);

/// Where the scenarios run.
pub(crate) enum Place {
    /// A fresh SQLite file for each scenario.
    Sqlite,
    /// One PostgreSQL database (its URL) for every scenario.
    Postgres(String),
}

impl Place {
    /// The ledger URL of scenario `name`.
    pub(crate) fn url(&self, name: &str) -> String {
        match self {
            Place::Sqlite => format!(
                "sqlite:{}",
                crate::scratch(name).join("ledger.db").display()
            ),
            Place::Postgres(url) => url.clone(),
        }
    }
}

pub(crate) fn attempt(key: &DeliveryKey, after: AfterAttempt) -> AttemptRecord {
    let ok = after == AfterAttempt::Delivered;
    AttemptRecord {
        key: key.clone(),
        attempt: DeliveryAttempt::new(
            SystemTime::now(),
            Duration::from_millis(1),
            Some(if ok { 204 } else { 503 }),
            (!ok).then(|| "HTTP 503".to_owned()),
        ),
        after,
    }
}

fn pid(id: &str) -> PaymentId {
    PaymentId::new(id).unwrap()
}

/// States cycled through so that every update is a change (a delivery each).
fn state(n: u64) -> PayoutState {
    match n % 3 {
        0 => PayoutState::Accepted,
        1 => PayoutState::Unknown,
        _ => PayoutState::NotRegistered,
    }
}

pub(crate) async fn insert(store: &Arc<dyn PayoutStore>, id: &str) {
    let r = record(id, "77011234567", 100, 1);
    let event = PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
    store.insert(r, event, Limits::NONE).await.unwrap();
}

/// One more change of `id` (its next version).
pub(crate) async fn change(store: &Arc<dyn PayoutStore>, id: &str) {
    let r = store.get(&pid(id)).await.unwrap().unwrap();
    let mut next = r.clone();
    next.state = state(r.version);
    let event = PayoutEvent::new(
        SystemTime::now(),
        EventSource::Call,
        Some(r.state.clone()),
        next.state.clone(),
    );
    assert!(matches!(
        store.update(r.version, next, event).await.unwrap(),
        Updated::Done(_)
    ));
}

type Hooks = Arc<dyn rp_ledger::WebhookStore>;

/// Claims and checks the order: every earlier change of a claimed delivery's payout to its
/// endpoint is delivered or given up when the claim is seen.
async fn claim(hooks: &Hooks, owner: &str, lease: Duration, limit: usize) -> Vec<DeliveryKey> {
    let claimed = hooks.claim_due(owner, lease, limit).await.unwrap();
    let mut keys = Vec::new();
    for c in claimed {
        let all = hooks.deliveries(&c.key.payment_id).await.unwrap();
        for earlier in all
            .iter()
            .filter(|d| d.key.endpoint == c.key.endpoint && d.key.version < c.key.version)
        {
            assert!(
                matches!(
                    earlier.state,
                    DeliveryState::Delivered | DeliveryState::Failed
                ),
                "{:?} claimed while {:?} was {:?}: {all:#?}",
                c.key,
                earlier.key,
                earlier.state
            );
        }
        keys.push(c.key);
    }
    keys
}

/// Drives the outbox until every delivery of `ids` is delivered (claims with `limit`, records
/// Delivered), at most `patience`; then asserts every one of them is delivered.
async fn drain(hooks: &Hooks, ids: &[&str], limit: usize, patience: Duration) {
    let until = SystemTime::now() + patience;
    loop {
        let keys = claim(hooks, "drain", LEASE, limit).await;
        if !keys.is_empty() {
            let records: Vec<AttemptRecord> = keys
                .iter()
                .map(|k| attempt(k, AfterAttempt::Delivered))
                .collect();
            let done = hooks.record_attempts("drain", &records).await.unwrap();
            assert!(done.iter().all(|d| *d), "{done:?}");
            continue;
        }
        let mut left = Vec::new();
        for id in ids {
            for d in hooks.deliveries(&pid(id)).await.unwrap() {
                if d.state != DeliveryState::Delivered {
                    left.push(d);
                }
            }
        }
        if left.is_empty() {
            return;
        }
        assert!(
            SystemTime::now() < until,
            "not delivered after {patience:?} (endpoints {:?}): {left:#?}",
            hooks.endpoints().await.unwrap()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn setup(
    place: &Place,
    name: &str,
    project: u64,
) -> (Ledger, Arc<dyn PayoutStore>, Hooks, i64) {
    let ledger = Ledger::open(&place.url(name)).await.unwrap();
    let project = ProjectId::new(project).unwrap();
    let hooks = ledger.webhooks(project);
    let store = ledger.store(project);
    let e = hooks
        .add_endpoint("https://merchant.example/a", "whsec_eA==")
        .await
        .unwrap();
    (ledger, store, hooks, e.id)
}

const SHORT: Duration = Duration::from_secs(5);

/// Disabled before any claim; changes made while disabled; set aside; enabled; drained.
pub(crate) async fn aside_disabled_before_claim(place: &Place) {
    let (_l, store, hooks, e) = setup(place, "aside-1", 9401).await;
    hooks.set_disabled(e, Some("off")).await.unwrap();
    insert(&store, "p").await;
    change(&store, "p").await;
    assert!(claim(&hooks, "a", LEASE, 128).await.is_empty());
    change(&store, "p").await;
    assert!(claim(&hooks, "a", LEASE, 1).await.is_empty());
    assert!(claim(&hooks, "a", LEASE, 128).await.is_empty());
    hooks.set_disabled(e, None).await.unwrap();
    drain(&hooks, &["p"], 1, SHORT).await;
}

/// Disabled between the claim of the head and its record (`Delivered`, `RetryIn`, `GiveUp`).
pub(crate) async fn aside_disabled_between_claim_and_record(place: &Place) {
    for (n, after) in [
        AfterAttempt::Delivered,
        AfterAttempt::RetryIn(Duration::from_millis(100)),
        AfterAttempt::RetryIn(Duration::from_secs(86_400)),
        AfterAttempt::GiveUp("gone".to_owned()),
    ]
    .into_iter()
    .enumerate()
    {
        let (_l, store, hooks, e) = setup(place, &format!("aside-2-{n}"), 9420 + n as u64).await;
        insert(&store, "p").await;
        change(&store, "p").await;
        let keys = claim(&hooks, "a", LEASE, 1).await;
        assert_eq!(keys.len(), 1);
        hooks.set_disabled(e, Some("off")).await.unwrap();
        change(&store, "p").await;
        assert!(claim(&hooks, "b", LEASE, 128).await.is_empty());
        assert_eq!(
            hooks
                .record_attempts("a", &[attempt(&keys[0], after.clone())])
                .await
                .unwrap(),
            [true]
        );
        assert!(claim(&hooks, "b", LEASE, 128).await.is_empty());
        hooks.set_disabled(e, None).await.unwrap();
        drain(&hooks, &["p"], 128, SHORT).await;
    }
}

/// Given up (the endpoint disabled), later changes set aside, then enabled.
pub(crate) async fn aside_after_give_up(place: &Place) {
    let (_l, store, hooks, e) = setup(place, "aside-3", 9403).await;
    insert(&store, "p").await;
    insert(&store, "q").await;
    let keys = claim(&hooks, "a", LEASE, 1).await;
    change(&store, "p").await;
    change(&store, "q").await;
    // A later change blocked behind a retry set aside, then the head gives up.
    hooks
        .record_attempts(
            "a",
            &[attempt(
                &keys[0],
                AfterAttempt::RetryIn(Duration::from_millis(200)),
            )],
        )
        .await
        .unwrap();
    let _ = claim(&hooks, "a", LEASE, 128).await;
    let rest: Vec<AttemptRecord> = claim(&hooks, "a", LEASE, 128)
        .await
        .iter()
        .map(|k| attempt(k, AfterAttempt::RetryIn(Duration::from_millis(50))))
        .collect();
    hooks.record_attempts("a", &rest).await.unwrap();
    tokio::time::sleep(Duration::from_millis(250)).await;
    let keys = claim(&hooks, "a", LEASE, 128).await;
    let give: Vec<AttemptRecord> = keys
        .iter()
        .map(|k| attempt(k, AfterAttempt::GiveUp("gone".to_owned())))
        .collect();
    hooks.record_attempts("a", &give).await.unwrap();
    change(&store, "p").await;
    assert!(claim(&hooks, "a", LEASE, 128).await.is_empty());
    hooks.set_disabled(e, None).await.unwrap();
    drain(&hooks, &["p", "q"], 1, SHORT).await;
}

/// The head retries far in the future; later changes set aside behind it; then replays of an
/// earlier or a later version, in every combination.
pub(crate) async fn aside_replays_while_set_aside(place: &Place) {
    for (n, replay) in [Some(0), Some(1), Some(2), None].into_iter().enumerate() {
        let (_l, store, hooks, _e) = setup(place, &format!("aside-4-{n}"), 9440 + n as u64).await;
        insert(&store, "p").await;
        let keys = claim(&hooks, "a", LEASE, 128).await;
        hooks
            .record_attempts(
                "a",
                &[attempt(
                    &keys[0],
                    AfterAttempt::RetryIn(Duration::from_secs(86_400)),
                )],
            )
            .await
            .unwrap();
        change(&store, "p").await;
        change(&store, "p").await;
        assert!(claim(&hooks, "a", LEASE, 128).await.is_empty());
        hooks.replay(&pid("p"), replay, None).await.unwrap();
        // The head goes (replayed, or replayed now whatever was replayed).
        hooks.replay(&pid("p"), Some(0), None).await.unwrap();
        drain(&hooks, &["p"], 1, SHORT).await;
    }
}

/// Replays of an earlier delivered version while the later ones are set aside behind a retry.
pub(crate) async fn aside_replay_of_delivered_earlier_version(place: &Place) {
    let (_l, store, hooks, _e) = setup(place, "aside-5", 9405).await;
    insert(&store, "p").await;
    drain(&hooks, &["p"], 128, SHORT).await;
    change(&store, "p").await;
    let keys = claim(&hooks, "a", LEASE, 128).await;
    assert_eq!(keys[0].version, 1);
    hooks
        .record_attempts(
            "a",
            &[attempt(
                &keys[0],
                AfterAttempt::RetryIn(Duration::from_millis(300)),
            )],
        )
        .await
        .unwrap();
    change(&store, "p").await;
    assert!(claim(&hooks, "a", LEASE, 128).await.is_empty());
    hooks.replay(&pid("p"), Some(0), None).await.unwrap();
    drain(&hooks, &["p"], 1, SHORT).await;
}

/// The head's short lease runs out, another claims it, the first one's Delivered is lost;
/// followers set aside behind the second one's retry.
pub(crate) async fn aside_lease_expiry_of_head(place: &Place) {
    let (_l, store, hooks, _e) = setup(place, "aside-6", 9406).await;
    insert(&store, "p").await;
    let a = claim(&hooks, "a", Duration::from_millis(30), 128).await;
    change(&store, "p").await;
    assert!(claim(&hooks, "b", LEASE, 128).await.is_empty());
    tokio::time::sleep(Duration::from_millis(60)).await;
    let b = claim(&hooks, "b", LEASE, 128).await;
    assert_eq!(b, a);
    assert_eq!(
        hooks
            .record_attempts("a", &[attempt(&a[0], AfterAttempt::Delivered)])
            .await
            .unwrap(),
        [false]
    );
    hooks
        .record_attempts(
            "b",
            &[attempt(
                &b[0],
                AfterAttempt::RetryIn(Duration::from_millis(300)),
            )],
        )
        .await
        .unwrap();
    change(&store, "p").await;
    assert!(claim(&hooks, "c", LEASE, 128).await.is_empty());
    drain(&hooks, &["p"], 1, SHORT).await;
}

/// Two handles on one file: claims, records, enable and replay interleaved.
pub(crate) async fn aside_two_handles_interleaved(place: &Place) {
    let url = place.url("aside-7");
    let project = ProjectId::new(9407).unwrap();
    let a = Ledger::open(&url).await.unwrap();
    let b = Ledger::open(&url).await.unwrap();
    let (ha, hb) = (a.webhooks(project), b.webhooks(project));
    let (sa, sb) = (a.store(project), b.store(project));
    let e1 = ha
        .add_endpoint("https://m.example/1", "whsec_eA==")
        .await
        .unwrap()
        .id;
    let e2 = hb
        .add_endpoint("https://m.example/2", "whsec_eA==")
        .await
        .unwrap()
        .id;
    insert(&sa, "p").await;
    insert(&sb, "q").await;
    let ka = claim(&ha, "a", LEASE, 2).await;
    hb.set_disabled(e2, Some("off")).await.unwrap();
    change(&sb, "p").await;
    change(&sa, "q").await;
    let kb = claim(&hb, "b", LEASE, 128).await;
    // a's: retry soon; b's: delivered.
    let ra: Vec<_> = ka
        .iter()
        .map(|k| attempt(k, AfterAttempt::RetryIn(Duration::from_millis(200))))
        .collect();
    ha.record_attempts("a", &ra).await.unwrap();
    let rb: Vec<_> = kb
        .iter()
        .map(|k| attempt(k, AfterAttempt::Delivered))
        .collect();
    hb.record_attempts("b", &rb).await.unwrap();
    assert!(claim(&ha, "a", LEASE, 128).await.len() <= 2);
    change(&sa, "p").await;
    hb.replay(&pid("q"), Some(1), None).await.unwrap();
    let _ = claim(&hb, "b", LEASE, 128).await; // left claimed: lease 600 s, taken back below
    ha.set_disabled(e2, None).await.unwrap();
    ha.set_disabled(e1, Some("off")).await.unwrap();
    let last: Vec<_> = claim(&ha, "a", LEASE, 128)
        .await
        .iter()
        .map(|k| attempt(k, AfterAttempt::RetryIn(Duration::from_millis(100))))
        .collect();
    hb.set_disabled(e1, None).await.unwrap();
    ha.record_attempts("a", &last).await.unwrap();
    drain(&ha, &["p", "q"], 1, SHORT).await;
    let _ = e1;
}

/// Two endpoints, one disabled, one removed while set aside.
pub(crate) async fn aside_several_endpoints_one_disabled_one_removed(place: &Place) {
    let (_l, store, hooks, e1) = setup(place, "aside-8", 9408).await;
    let e2 = hooks
        .add_endpoint("https://merchant.example/b", "whsec_eA==")
        .await
        .unwrap()
        .id;
    let e3 = hooks
        .add_endpoint("https://merchant.example/c", "whsec_eA==")
        .await
        .unwrap()
        .id;
    hooks.set_disabled(e2, Some("off")).await.unwrap();
    insert(&store, "p").await;
    change(&store, "p").await;
    let keys = claim(&hooks, "a", LEASE, 128).await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    hooks.remove_endpoint(e3).await.unwrap();
    let recs: Vec<_> = keys
        .iter()
        .map(|k| attempt(k, AfterAttempt::RetryIn(Duration::from_millis(100))))
        .collect();
    hooks.record_attempts("a", &recs).await.unwrap();
    change(&store, "p").await;
    assert!(claim(&hooks, "a", LEASE, 128).await.is_empty());
    hooks.set_disabled(e2, None).await.unwrap();
    drain(&hooks, &["p"], 1, SHORT).await;
    let _ = e1;
}

/// An endpoint added after the changes, replayed whole (every version due at once), while a
/// disabled endpoint holds set-aside deliveries of the same payout.
pub(crate) async fn aside_replay_to_a_new_endpoint(place: &Place) {
    let (_l, store, hooks, e1) = setup(place, "aside-9", 9409).await;
    hooks.set_disabled(e1, Some("off")).await.unwrap();
    insert(&store, "p").await;
    change(&store, "p").await;
    change(&store, "p").await;
    assert!(claim(&hooks, "a", LEASE, 128).await.is_empty());
    let e2 = hooks
        .add_endpoint("https://merchant.example/b", "whsec_eA==")
        .await
        .unwrap()
        .id;
    hooks.replay(&pid("p"), None, Some(e2)).await.unwrap();
    hooks.replay(&pid("p"), Some(1), Some(e1)).await.unwrap();
    let keys = claim(&hooks, "a", LEASE, 128).await;
    assert_eq!(keys.len(), 1, "{keys:?}");
    hooks
        .record_attempts("a", &[attempt(&keys[0], AfterAttempt::Delivered)])
        .await
        .unwrap();
    hooks.set_disabled(e1, None).await.unwrap();
    drain(&hooks, &["p"], 1, SHORT).await;
}

/// The head's retry past the end of the clock (`Duration::MAX`, saturated); its followers set
/// aside to that time; the head replayed and delivered: the followers go at once.
pub(crate) async fn aside_predecessor_retry_at_the_end_of_time(place: &Place) {
    let (_l, store, hooks, _e) = setup(place, "aside-10", 9410).await;
    insert(&store, "p").await;
    let keys = claim(&hooks, "a", Duration::MAX, 128).await;
    hooks
        .record_attempts(
            "a",
            &[attempt(&keys[0], AfterAttempt::RetryIn(Duration::MAX))],
        )
        .await
        .unwrap();
    change(&store, "p").await;
    change(&store, "p").await;
    assert!(claim(&hooks, "a", LEASE, 128).await.is_empty());
    hooks.replay(&pid("p"), Some(0), None).await.unwrap();
    drain(&hooks, &["p"], 1, SHORT).await;
}

/// A small seeded generator (no dependency).
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n
    }

    /// An index below `n`.
    fn index(&mut self, n: usize) -> usize {
        usize::try_from(self.below(n as u64)).unwrap_or(0)
    }
}

/// Every pending delivery of an enabled endpoint has a due time (none parked with no time).
async fn none_parked(hooks: &Hooks, ids: &[&str], step: &str) {
    let enabled: Vec<i64> = hooks
        .endpoints()
        .await
        .unwrap()
        .iter()
        .filter(|e| e.disabled_at.is_none())
        .map(|e| e.id)
        .collect();
    for id in ids {
        for d in hooks.deliveries(&pid(id)).await.unwrap() {
            if d.state == DeliveryState::Pending && enabled.contains(&d.key.endpoint) {
                assert!(d.next_attempt_at.is_some(), "{step}: parked: {d:?}");
            }
        }
    }
}

/// Random sequences over two handles on one file, two endpoints, three payouts: changes,
/// claims (short and long leases, small and large limits), records (delivered, retry soon,
/// give up), disable, enable, replays; the order checked at every claim, nothing parked
/// while enabled after every step; then everything enabled and drained.
pub(crate) async fn aside_random_sequences(place: &Place) {
    const IDS: [&str; 3] = ["p", "q", "r"];
    for seed in (0..40u64).chain(
        std::env::var("ASIDE_SEEDS")
            .ok()
            .map_or(0..0, |n| 40..40 + n.parse::<u64>().unwrap()),
    ) {
        let url = place.url(&format!("aside-rand-{seed}"));
        let project = ProjectId::new(9500 + seed).unwrap();
        let a = Ledger::open(&url).await.unwrap();
        let b = Ledger::open(&url).await.unwrap();
        let hooks = [a.webhooks(project), b.webhooks(project)];
        let stores = [a.store(project), b.store(project)];
        let mut eps = vec![
            hooks[0]
                .add_endpoint("https://m.example/1", "whsec_eA==")
                .await
                .unwrap()
                .id,
            hooks[1]
                .add_endpoint("https://m.example/2", "whsec_eA==")
                .await
                .unwrap()
                .id,
        ];
        for id in IDS {
            insert(&stores[0], id).await;
        }
        let mut rng = Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 7);
        // Outstanding claims: (owner, key).
        let mut held: Vec<(String, DeliveryKey)> = Vec::new();
        let mut log = Log(seed, Vec::new());
        for step in 0..60 {
            let h = &hooks[rng.index(2)];
            let op = rng.below(12);
            let what = match op {
                0 | 1 => {
                    let id = IDS[rng.index(3)];
                    change(&stores[rng.index(2)], id).await;
                    format!("change {id}")
                }
                2..=4 => {
                    let owner = format!("o{}", rng.below(3));
                    let lease = if rng.below(2) == 0 {
                        Duration::from_millis(20)
                    } else {
                        LEASE
                    };
                    let limit = [1, 2, 128][rng.index(3)];
                    let keys = claim(h, &owner, lease, limit).await;
                    let s = format!("claim {owner} {lease:?} {limit} -> {keys:?}");
                    held.extend(keys.into_iter().map(|k| (owner.clone(), k)));
                    s
                }
                5..=7 if !held.is_empty() => {
                    let (owner, key) = held.remove(rng.index(held.len()));
                    let after = match rng.below(6) {
                        0..=2 => AfterAttempt::Delivered,
                        3 | 4 => AfterAttempt::RetryIn(Duration::from_millis(rng.below(150))),
                        _ => AfterAttempt::GiveUp("gone".to_owned()),
                    };
                    let r = h
                        .record_attempts(&owner, &[attempt(&key, after.clone())])
                        .await;
                    format!("record {owner} {key:?} {after:?} -> {r:?}")
                }
                8 => {
                    let e = eps[rng.index(eps.len())];
                    h.set_disabled(e, Some("off")).await.unwrap();
                    format!("disable {e}")
                }
                9 => {
                    let e = eps[rng.index(eps.len())];
                    h.set_disabled(e, None).await.unwrap();
                    format!("enable {e}")
                }
                10 => {
                    let id = IDS[rng.index(3)];
                    let v = hooks[0]
                        .deliveries(&pid(id))
                        .await
                        .unwrap()
                        .iter()
                        .map(|d| d.key.version)
                        .max()
                        .unwrap_or(0);
                    let version = match rng.below(3) {
                        0 => None,
                        _ => Some(rng.below(v + 1)),
                    };
                    let endpoint = match rng.below(2) {
                        0 => None,
                        _ => Some(eps[rng.index(eps.len())]),
                    };
                    let n = h.replay(&pid(id), version, endpoint).await.unwrap();
                    format!("replay {id} {version:?} {endpoint:?} -> {n}")
                }
                _ => {
                    let ms = rng.below(60);
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    if rng.below(10) == 0 && eps.len() < 3 {
                        let e = h
                            .add_endpoint("https://m.example/3", "whsec_eA==")
                            .await
                            .unwrap()
                            .id;
                        eps.push(e);
                        format!("sleep {ms} ms, add endpoint {e}")
                    } else {
                        format!("sleep {ms} ms")
                    }
                }
            };
            log.1.push(format!("{step}: {what}"));
            none_parked(h, &IDS, &what).await;
        }
        // The end: every claim answered (delivered), every endpoint enabled, drained.
        for (owner, key) in held.drain(..) {
            let _ = hooks[0]
                .record_attempts(&owner, &[attempt(&key, AfterAttempt::Delivered)])
                .await;
        }
        for e in &eps {
            hooks[1].set_disabled(*e, None).await.unwrap();
        }
        drain(&hooks[0], &IDS, 2, SHORT).await;
        drop(log);
    }
}

/// Prints the sequence of a failing seed.
struct Log(u64, Vec<String>);

impl Drop for Log {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!("seed {}:\n{}", self.0, self.1.join("\n"));
        }
    }
}

/// Every scenario on `place`.
pub(crate) async fn run_all(place: &Place) {
    aside_disabled_before_claim(place).await;
    aside_disabled_between_claim_and_record(place).await;
    aside_after_give_up(place).await;
    aside_replays_while_set_aside(place).await;
    aside_replay_of_delivered_earlier_version(place).await;
    aside_lease_expiry_of_head(place).await;
    aside_two_handles_interleaved(place).await;
    aside_several_endpoints_one_disabled_one_removed(place).await;
    aside_replay_to_a_new_endpoint(place).await;
    aside_predecessor_retry_at_the_end_of_time(place).await;
    aside_random_sequences(place).await;
}

/// The scenarios on SQLite.
mod sqlite {
    use super::Place;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_disabled_before_claim() {
        super::aside_disabled_before_claim(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_disabled_between_claim_and_record() {
        super::aside_disabled_between_claim_and_record(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_after_give_up() {
        super::aside_after_give_up(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_replays_while_set_aside() {
        super::aside_replays_while_set_aside(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_replay_of_delivered_earlier_version() {
        super::aside_replay_of_delivered_earlier_version(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_lease_expiry_of_head() {
        super::aside_lease_expiry_of_head(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_two_handles_interleaved() {
        super::aside_two_handles_interleaved(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_several_endpoints_one_disabled_one_removed() {
        super::aside_several_endpoints_one_disabled_one_removed(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_replay_to_a_new_endpoint() {
        super::aside_replay_to_a_new_endpoint(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_predecessor_retry_at_the_end_of_time() {
        super::aside_predecessor_retry_at_the_end_of_time(&Place::Sqlite).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn aside_random_sequences() {
        super::aside_random_sequences(&Place::Sqlite).await;
    }
}
