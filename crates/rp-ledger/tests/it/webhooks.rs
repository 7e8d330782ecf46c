//! Webhooks as a transactional outbox (`WebhookStore`), the same assertions for every
//! backend: a delivery per endpoint for each state change, written with the change; claims,
//! leases and the per-payout order; attempts, retries, giving up and disabling; replay.

use std::time::{Duration, SystemTime};

use rp_ledger::{AfterAttempt, DeliveryAttempt, DeliveryState, Ledger};
use rp_model::{Limits, PaymentId, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{EventSource, PayoutEvent, PayoutRecord, PayoutState, Updated};

const LEASE: Duration = Duration::from_secs(60);

fn project() -> ProjectId {
    ProjectId::new(1234).unwrap()
}

fn attempt(status: Option<u16>) -> DeliveryAttempt {
    DeliveryAttempt::new(SystemTime::now(), Duration::from_millis(3), status, None)
}

/// Moves `r` to `state` with an event from `source`; the record after.
async fn change(
    ledger: &Ledger,
    r: &PayoutRecord,
    state: PayoutState,
    source: EventSource,
) -> PayoutRecord {
    let mut next = r.clone();
    next.state = state.clone();
    let event = PayoutEvent::new(SystemTime::now(), source, Some(r.state.clone()), state);
    match ledger
        .store(project())
        .update(r.version, next, event)
        .await
        .unwrap()
    {
        Updated::Done(after) => after,
        other => panic!("update not applied: {other:?}"),
    }
}

async fn recorded(ledger: &Ledger, id: &str, at: u64) -> PayoutRecord {
    let r = record(id, "77011234567", 100, at);
    let event = PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
    ledger
        .store(project())
        .insert(r.clone(), event, Limits::NONE)
        .await
        .unwrap();
    ledger
        .store(project())
        .get(&r.payment_id)
        .await
        .unwrap()
        .unwrap()
}

pub(crate) async fn run_all(ledger: &Ledger) {
    let hooks = ledger.webhooks(project());
    let other_project = ledger.webhooks(ProjectId::new(99).unwrap());
    assert!(hooks.endpoints().await.unwrap().is_empty());

    // Before any endpoint: changes make no deliveries, and replay has nowhere to send.
    let early = recorded(ledger, "wh-early", 1).await;
    let id = |s: &str| PaymentId::new(s).unwrap();
    assert!(hooks.deliveries(&id("wh-early")).await.unwrap().is_empty());

    let a = hooks
        .add_endpoint("https://merchant.example/hooks", "whsec_c2VjcmV0LWE=")
        .await
        .unwrap();
    let b = hooks
        .add_endpoint("http://127.0.0.1:9/hooks", "whsec_c2VjcmV0LWI=")
        .await
        .unwrap();
    assert!(b.id > a.id);
    assert!(a.enabled() && a.pending == 0 && a.failed == 0);
    assert!(!format!("{a:?}").contains("whsec_"), "the secret in Debug");
    assert!(other_project.endpoints().await.unwrap().is_empty());

    // Every state change (and the recording) makes one delivery per endpoint; a change that
    // keeps the state (a note, a status check that found nothing new) makes none.
    let r = recorded(ledger, "wh-1", 2).await;
    let r = change(ledger, &r, PayoutState::Accepted, EventSource::Answer).await;
    let r = change(ledger, &r, PayoutState::Accepted, EventSource::Status).await;
    let r = change(
        ledger,
        &r,
        PayoutState::Status(rp_model::PaymentStatus::Success),
        EventSource::Callback,
    )
    .await;
    assert_eq!(r.version, 3);
    let deliveries = hooks.deliveries(&id("wh-1")).await.unwrap();
    let keys: Vec<(i64, u64)> = deliveries
        .iter()
        .map(|d| (d.key.endpoint, d.key.version))
        .collect();
    assert_eq!(
        keys,
        [
            (a.id, 0),
            (b.id, 0),
            (a.id, 1),
            (b.id, 1),
            (a.id, 3),
            (b.id, 3)
        ]
    );
    assert!(deliveries.iter().all(|d| d.state == DeliveryState::Pending));

    // Claims: in order per payout and endpoint, so only version 0 of each endpoint first.
    let mut first = hooks.claim_due("worker-1", LEASE, 100).await.unwrap();
    first.sort_by_key(|c| c.key.endpoint);
    let claimed: Vec<(i64, u64)> = first
        .iter()
        .map(|c| (c.key.endpoint, c.key.version))
        .collect();
    assert_eq!(claimed, [(a.id, 0), (b.id, 0)]);
    assert_eq!(first[0].endpoint.secret, "whsec_c2VjcmV0LWE=");
    assert_eq!(first[0].event.state, PayoutState::Created);
    assert_eq!(first[0].payout.payment_id.as_str(), "wh-1");
    // In flight, each is next due when its lease ends (if its attempt is lost, it goes again
    // then), on the ledger's clock (PostgreSQL: the server's, here the same machine's).
    let soon = SystemTime::now() + LEASE - Duration::from_secs(30);
    let in_flight = hooks.deliveries(&id("wh-1")).await.unwrap();
    assert!(
        in_flight
            .iter()
            .filter(|d| d.key.version == 0)
            .all(|d| d.next_attempt_at.is_some_and(|at| at > soon)),
        "{in_flight:?}"
    );
    // Another worker gets nothing while the leases hold.
    assert!(
        hooks
            .claim_due("worker-2", LEASE, 100)
            .await
            .unwrap()
            .is_empty()
    );

    // A delivery recorded by someone who does not hold the claim changes nothing.
    let stolen = hooks
        .record_attempt(
            &first[0].key,
            "worker-2",
            &attempt(Some(200)),
            &AfterAttempt::Delivered,
        )
        .await
        .unwrap();
    assert!(!stolen);

    // Endpoint a takes version 0; b fails and retries later.
    assert!(
        hooks
            .record_attempt(
                &first[0].key,
                "worker-1",
                &attempt(Some(204)),
                &AfterAttempt::Delivered,
            )
            .await
            .unwrap()
    );
    assert!(
        hooks
            .record_attempt(
                &first[1].key,
                "worker-1",
                &attempt(Some(500)),
                &AfterAttempt::RetryIn(Duration::from_secs(3600)),
            )
            .await
            .unwrap()
    );
    // Delivering twice is refused: the claim is gone.
    assert!(
        !hooks
            .record_attempt(
                &first[0].key,
                "worker-1",
                &attempt(Some(204)),
                &AfterAttempt::Delivered,
            )
            .await
            .unwrap()
    );
    // Next: a's version 1 only (a's version 3 waits for 1; b's version 1 waits for b's 0).
    let second = hooks.claim_due("worker-2", LEASE, 100).await.unwrap();
    let claimed: Vec<(i64, u64)> = second
        .iter()
        .map(|c| (c.key.endpoint, c.key.version))
        .collect();
    assert_eq!(claimed, [(a.id, 1)]);
    assert_eq!(second[0].event.previous, Some(PayoutState::Created));
    assert!(
        hooks
            .record_attempt(
                &second[0].key,
                "worker-2",
                &attempt(Some(200)),
                &AfterAttempt::Delivered,
            )
            .await
            .unwrap()
    );
    let third = hooks.claim_due("worker-2", LEASE, 100).await.unwrap();
    assert_eq!(third.len(), 1);
    assert_eq!((third[0].key.endpoint, third[0].key.version), (a.id, 3));
    assert!(
        hooks
            .record_attempt(
                &third[0].key,
                "worker-2",
                &attempt(None),
                &AfterAttempt::GiveUp("failed for 3 days: connection refused".to_owned()),
            )
            .await
            .unwrap()
    );

    // Giving up disables the endpoint and says why; the log has every attempt.
    let endpoints = hooks.endpoints().await.unwrap();
    let a_now = endpoints.iter().find(|e| e.id == a.id).unwrap();
    assert!(!a_now.enabled());
    assert_eq!(
        a_now.disabled_reason.as_deref(),
        Some("failed for 3 days: connection refused")
    );
    assert_eq!(a_now.failed, 1);
    let b_now = endpoints.iter().find(|e| e.id == b.id).unwrap();
    assert_eq!(b_now.pending, 3);
    let deliveries = hooks.deliveries(&id("wh-1")).await.unwrap();
    let states: Vec<(i64, u64, DeliveryState, usize)> = deliveries
        .iter()
        .map(|d| (d.key.endpoint, d.key.version, d.state, d.attempts.len()))
        .collect();
    assert_eq!(
        states,
        [
            (a.id, 0, DeliveryState::Delivered, 1),
            (b.id, 0, DeliveryState::Pending, 1),
            (a.id, 1, DeliveryState::Delivered, 1),
            (b.id, 1, DeliveryState::Pending, 0),
            (a.id, 3, DeliveryState::Failed, 1),
            (b.id, 3, DeliveryState::Pending, 0),
        ]
    );
    assert_eq!(deliveries[1].attempts[0].status, Some(500));
    assert!(deliveries[1].next_attempt_at.unwrap() > SystemTime::now());

    // A disabled endpoint still gets its deliveries written (nothing is lost) but none sent.
    let r2 = recorded(ledger, "wh-2", 3).await;
    assert_eq!(hooks.deliveries(&r2.payment_id).await.unwrap().len(), 2);
    let due = hooks.claim_due("worker-3", LEASE, 100).await.unwrap();
    let claimed: Vec<(i64, &str)> = due
        .iter()
        .map(|c| (c.key.endpoint, c.key.payment_id.as_str()))
        .collect();
    assert_eq!(claimed, [(b.id, "wh-2")]);

    // Enabling it again makes every delivery it did not take due at once (the pending ones
    // and the one given up); replay resends one and makes deliveries for changes made before
    // the endpoint existed.
    assert!(hooks.set_disabled(a.id, None).await.unwrap());
    assert!(hooks.endpoints().await.unwrap().iter().all(|e| e.enabled()));
    let due = hooks.claim_due("worker-3", LEASE, 100).await.unwrap();
    let claimed: Vec<(i64, &str, u64)> = due
        .iter()
        .map(|c| (c.key.endpoint, c.key.payment_id.as_str(), c.key.version))
        .collect();
    let mut claimed = claimed;
    claimed.sort_unstable();
    assert_eq!(claimed, [(a.id, "wh-1", 3), (a.id, "wh-2", 0)]);
    assert_eq!(
        hooks
            .replay(&id("wh-1"), Some(3), Some(a.id))
            .await
            .unwrap(),
        1
    );
    assert_eq!(
        hooks.replay(&early.payment_id, None, None).await.unwrap(),
        2
    );
    let early_deliveries = hooks.deliveries(&early.payment_id).await.unwrap();
    assert_eq!(early_deliveries.len(), 2);
    let replayed = hooks.deliveries(&id("wh-1")).await.unwrap();
    assert_eq!(replayed[4].state, DeliveryState::Pending);
    assert_eq!(
        replayed[4].attempts.len(),
        1,
        "the log keeps earlier attempts"
    );
    assert!(!hooks.set_disabled(9999, None).await.unwrap());

    // Removing an endpoint removes its deliveries and log; the other's stay.
    assert!(hooks.remove_endpoint(a.id).await.unwrap());
    assert!(!hooks.remove_endpoint(a.id).await.unwrap());
    assert!(!other_project.remove_endpoint(b.id).await.unwrap());
    let left = hooks.deliveries(&id("wh-1")).await.unwrap();
    assert!(left.iter().all(|d| d.key.endpoint == b.id));
    assert_eq!(left.len(), 3);
}

/// Changes rolled back make no delivery: the outbox row is in the change's transaction.
pub(crate) async fn a_refused_change_makes_no_delivery(ledger: &Ledger) {
    let hooks = ledger.webhooks(project());
    hooks
        .add_endpoint("https://merchant.example/cas", "whsec_eA==")
        .await
        .unwrap();
    let r = recorded(ledger, "wh-cas", 5).await;
    let mut next = r.clone();
    next.state = PayoutState::Accepted;
    let event = PayoutEvent::new(
        SystemTime::now(),
        EventSource::Answer,
        Some(PayoutState::Created),
        PayoutState::Accepted,
    );
    // A stale version: the compare-and-set refuses it, and no delivery appears.
    let outcome = ledger
        .store(project())
        .update(r.version + 7, next, event)
        .await
        .unwrap();
    assert!(!matches!(outcome, Updated::Done(_)), "{outcome:?}");
    let versions: Vec<u64> = hooks
        .deliveries(&r.payment_id)
        .await
        .unwrap()
        .iter()
        .map(|d| d.key.version)
        .collect();
    assert!(
        !versions.is_empty() && versions.iter().all(|v| *v == 0),
        "{versions:?}"
    );
}

/// Several attempts recorded in one transaction: each its own compare-and-set.
pub(crate) async fn attempts_are_recorded_together(ledger: &Ledger) {
    let hooks = ledger.webhooks(ProjectId::new(77).unwrap());
    let one = hooks
        .add_endpoint("https://one.example/", "whsec_eQ==")
        .await
        .unwrap();
    let two = hooks
        .add_endpoint("https://two.example/", "whsec_eg==")
        .await
        .unwrap();
    let store = ledger.store(ProjectId::new(77).unwrap());
    let r = record("wh-together", "77011234567", 100, 9);
    let event = PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
    store.insert(r, event, Limits::NONE).await.unwrap();
    let claimed = hooks.claim_due("w", LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 2);
    let mut records: Vec<rp_ledger::AttemptRecord> = claimed
        .iter()
        .map(|c| rp_ledger::AttemptRecord {
            key: c.key.clone(),
            attempt: attempt(Some(200)),
            after: if c.key.endpoint == two.id {
                AfterAttempt::GiveUp("gone".to_owned())
            } else {
                AfterAttempt::Delivered
            },
        })
        .collect();
    // A third whose claim is not ours: refused alone.
    let mut stranger = records[0].clone();
    stranger.key.version = 99;
    records.push(stranger);
    let recorded = hooks.record_attempts("w", &records).await.unwrap();
    assert_eq!(recorded, [true, true, false]);
    let endpoints = hooks.endpoints().await.unwrap();
    assert!(endpoints.iter().any(|e| e.id == one.id && e.enabled()));
    assert!(endpoints.iter().any(|e| e.id == two.id && !e.enabled()));
}

/// A delivery's log keeps its last [`rp_ledger::MAX_LOGGED_ATTEMPTS`] attempts, in order,
/// however often it is tried; its attempt count goes on.
pub(crate) async fn the_log_keeps_the_last_attempts(ledger: &Ledger) {
    let project = ProjectId::new(78).unwrap();
    let hooks = ledger.webhooks(project);
    hooks
        .add_endpoint("https://log.example/", "whsec_eQ==")
        .await
        .unwrap();
    let r = record("wh-log", "77011234567", 100, 9);
    let event = PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
    ledger
        .store(project)
        .insert(r, event, Limits::NONE)
        .await
        .unwrap();
    let tries = rp_ledger::MAX_LOGGED_ATTEMPTS + 3;
    for n in 0..tries {
        let claimed = hooks.claim_due("w", LEASE, 10).await.unwrap();
        assert_eq!(claimed.len(), 1, "try {n}");
        assert_eq!(claimed[0].attempts, n);
        let record = rp_ledger::AttemptRecord {
            key: claimed[0].key.clone(),
            attempt: attempt(Some(500 + u16::try_from(n).unwrap())),
            after: AfterAttempt::RetryIn(Duration::ZERO),
        };
        assert_eq!(hooks.record_attempts("w", &[record]).await.unwrap(), [true]);
    }
    let id = PaymentId::new("wh-log").unwrap();
    let logged = &hooks.deliveries(&id).await.unwrap()[0].attempts;
    let statuses: Vec<u16> = logged.iter().map(|a| a.status.unwrap()).collect();
    let kept: Vec<u16> = (3..tries)
        .map(|n| 500 + u16::try_from(n).unwrap())
        .collect();
    assert_eq!(statuses, kept);
    assert_eq!(
        hooks.claim_due("w", LEASE, 10).await.unwrap()[0].attempts,
        tries
    );
}

/// Records payout `id` of `project`, then applies `changes` in turn, each moving it to (or
/// keeping it at) `success` with `(attention, note)`: the attention the payout is left with
/// and the note of the change's event.
pub(crate) async fn recorded_then_marked(
    ledger: &Ledger,
    project: ProjectId,
    id: &str,
    changes: &[(Option<&str>, Option<&str>)],
) -> PaymentId {
    let store = ledger.store(project);
    let r = record(id, "77011234567", 100, 1);
    let event = PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
    store.insert(r.clone(), event, Limits::NONE).await.unwrap();
    let mut current = store.get(&r.payment_id).await.unwrap().unwrap();
    let success = PayoutState::Status(rp_model::PaymentStatus::Success);
    for (mark, note) in changes {
        let mut next = current.clone();
        next.state = success.clone();
        next.attention = mark.map(str::to_owned);
        let event = PayoutEvent::new(
            SystemTime::now(),
            EventSource::Callback,
            Some(current.state.clone()),
            success.clone(),
        )
        .with_note(note.map(str::to_owned));
        current = match store.update(current.version, next, event).await.unwrap() {
            Updated::Done(after) => after,
            other => panic!("update not applied: {other:?}"),
        };
    }
    r.payment_id
}

/// The versions of the deliveries of `id`'s events, in order.
pub(crate) async fn delivered_versions(
    hooks: &dyn rp_ledger::WebhookStore,
    id: &PaymentId,
) -> Vec<u64> {
    let deliveries = hooks.deliveries(id).await.unwrap();
    deliveries.iter().map(|d| d.key.version).collect()
}

/// A change that keeps the state and marks the payout as needing attention (`partially
/// reversed` after `success`) makes a delivery per endpoint, as a state change does; another
/// change that keeps the state (a note of its own, the attention unchanged) makes none.
/// Replay sends the attention's change again, with the state changes.
pub(crate) async fn an_attention_mark_makes_deliveries(ledger: &Ledger) {
    let project = ProjectId::new(4242).unwrap();
    let hooks = ledger.webhooks(project);
    let endpoint = hooks
        .add_endpoint("https://merchant.example/attention", "whsec_c2VjcmV0LWE=")
        .await
        .unwrap();
    // created -> success, then success -> success marked, then success -> success noted.
    let attention = "the platform reported `partially reversed` after `success`";
    let id = recorded_then_marked(
        ledger,
        project,
        "wh-attention",
        &[
            (None, None),
            (Some(attention), Some(attention)),
            (Some(attention), Some("checked: nothing new")),
        ],
    )
    .await;
    assert_eq!(
        delivered_versions(hooks.as_ref(), &id).await,
        [0, 1, 2],
        "recorded, success, the attention"
    );
    let claimed = hooks.claim_due("attention", LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1, "in order: the first change first");
    // Replayed: the same three, nothing for the change that only noted.
    assert_eq!(hooks.replay(&id, None, Some(endpoint.id)).await.unwrap(), 3);
    assert_eq!(delivered_versions(hooks.as_ref(), &id).await, [0, 1, 2]);
}

/// A payout recorded, and each change of it, tells `payout_changes` once committed (the
/// webhook sender waits on it); a read tells nothing.
pub(crate) async fn payout_changes_are_told(ledger: &Ledger) {
    let changes = ledger.payout_changes();
    let told = || async {
        tokio::time::timeout(Duration::from_secs(2), changes.notified())
            .await
            .is_ok()
    };
    let project = ProjectId::new(4444).unwrap();
    let id = recorded_then_marked(ledger, project, "wh-told", &[]).await;
    assert!(told().await, "a payout recorded");
    recorded_then_marked(ledger, project, "wh-told-2", &[(None, None)]).await;
    assert!(told().await, "recorded and changed: told (once or more)");
    ledger.store(project).get(&id).await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(100), changes.notified())
            .await
            .is_err(),
        "a read is no change"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_memory_ledger_keeps_a_webhook_outbox() {
    let ledger = Ledger::open("sqlite::memory:").await.unwrap();
    run_all(&ledger).await;
    a_refused_change_makes_no_delivery(&ledger).await;
    attempts_are_recorded_together(&ledger).await;
    the_log_keeps_the_last_attempts(&ledger).await;
    an_attention_mark_makes_deliveries(&ledger).await;
    payout_changes_are_told(&ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sqlite_ledger_keeps_its_webhook_outbox_across_a_reopen() {
    let dir = crate::scratch("webhooks");
    let url = format!("sqlite:{}", dir.join("ledger.db").display());
    run_all(&Ledger::open(&url).await.unwrap()).await;
    let again = Ledger::open(&url).await.unwrap();
    let endpoints = again.webhooks(project()).endpoints().await.unwrap();
    assert_eq!(endpoints.len(), 1);
    assert_eq!(endpoints[0].secret, "whsec_c2VjcmV0LWI=");
}
