//! Adversarial review of the webhook outbox (`WebhookStore`): each test here failed on the code
//! it was written against, and names the promise it holds the outbox to. The shared functions
//! run against SQLite here and against PostgreSQL in `postgres.rs`; each uses a project of its
//! own so that claims never see another test's deliveries.

use std::time::{Duration, SystemTime};

use rp_ledger::{AfterAttempt, DeliveryAttempt, DeliveryState, Ledger};
use rp_model::{Limits, ProjectId};
use rp_payout::conformance::record;
use rp_payout::{EventSource, PayoutEvent, PayoutRecord, PayoutState};

const LEASE: Duration = Duration::from_secs(60);

fn attempt(status: Option<u16>) -> DeliveryAttempt {
    DeliveryAttempt::new(SystemTime::now(), Duration::from_millis(3), status, None)
}

/// A payout recorded in `project` at `at` (its first event's time, as the client's clock
/// gives it).
pub(crate) async fn recorded_at(
    ledger: &Ledger,
    project: ProjectId,
    id: &str,
    at: SystemTime,
) -> PayoutRecord {
    let mut r = record(id, "77011234567", 100, 1);
    r.created_at = at;
    r.updated_at = at;
    let event = PayoutEvent::new(at, EventSource::Call, None, PayoutState::Created);
    ledger
        .store(project)
        .insert(r.clone(), event, Limits::NONE)
        .await
        .unwrap();
    ledger
        .store(project)
        .get(&r.payment_id)
        .await
        .unwrap()
        .unwrap()
}

/// Promise: `set_disabled` answers `false`, and changes nothing, for an endpoint that is not
/// the project's. Enabling another project's endpoint number answers `false` but restarts
/// that project's retry schedule (`failures = 0`, due at once): the second `UPDATE` of
/// `set_disabled(id, None)` filters on `endpoint_id` only. Any project's API key (or
/// `rp serve enable-webhook --project-id OTHER`) can make another merchant's failing endpoint
/// be hammered and never reach its give-up.
pub(crate) async fn enabling_another_projects_endpoint_changes_nothing(ledger: &Ledger) {
    let mine = ledger.webhooks(ProjectId::new(7101).unwrap());
    let stranger = ledger.webhooks(ProjectId::new(7102).unwrap());
    let endpoint = mine
        .add_endpoint("https://merchant.example/x", "whsec_eA==")
        .await
        .unwrap();
    let r = recorded_at(
        ledger,
        ProjectId::new(7101).unwrap(),
        "rv-xproj",
        SystemTime::now(),
    )
    .await;
    let claimed = mine.claim_due("w1", LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        mine.record_attempt(
            &claimed[0].key,
            "w1",
            &attempt(Some(500)),
            &AfterAttempt::RetryIn(Duration::from_secs(3600)),
        )
        .await
        .unwrap()
    );
    // Another project tries to enable endpoint `endpoint.id`: not its own, so `false` ...
    assert!(!stranger.set_disabled(endpoint.id, None).await.unwrap());
    // ... and the owner's delivery must still wait its hour.
    let after = mine.deliveries(&r.payment_id).await.unwrap();
    let next = after[0].next_attempt_at.expect("still pending");
    assert!(
        next > SystemTime::now() + Duration::from_secs(3000),
        "another project's `enable` rescheduled this project's delivery to {:?} from now",
        next.duration_since(SystemTime::now()).ok()
    );
    assert!(
        mine.claim_due("w2", LEASE, 10).await.unwrap().is_empty(),
        "a delivery that was to wait an hour is due at once"
    );
}

/// Promise: "after persistent failure (schedule exhausted) the endpoint is disabled, but
/// deliveries keep being written and are sent when re-enabled" (delivered at least once).
/// The delivery whose schedule ran out is marked failed (`next_attempt_at = NULL`), and
/// `set_disabled(id, None)` only reschedules rows with `next_attempt_at IS NOT NULL`: after
/// the merchant fixes the endpoint and it is enabled, every later event is sent but the one
/// that gave up (often the payout's final state) is never sent again unless someone replays
/// it by hand; a later version of the same payout even overtakes it.
pub(crate) async fn a_given_up_delivery_is_sent_when_its_endpoint_is_enabled(ledger: &Ledger) {
    let project = ProjectId::new(7201).unwrap();
    let hooks = ledger.webhooks(project);
    let endpoint = hooks
        .add_endpoint("https://merchant.example/down", "whsec_eA==")
        .await
        .unwrap();
    let first = recorded_at(ledger, project, "rv-gave-up", SystemTime::now()).await;
    let claimed = hooks.claim_due("w1", LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert!(
        hooks
            .record_attempt(
                &claimed[0].key,
                "w1",
                &attempt(Some(503)),
                &AfterAttempt::GiveUp("disabled after 14 failed attempts".to_owned()),
            )
            .await
            .unwrap()
    );
    assert!(!hooks.endpoints().await.unwrap()[0].enabled());
    // While it is disabled, another payout changes: written, waiting.
    recorded_at(ledger, project, "rv-waited", SystemTime::now()).await;
    // The merchant fixed the endpoint; it is enabled: what waited is sent.
    assert!(hooks.set_disabled(endpoint.id, None).await.unwrap());
    let due: Vec<String> = hooks
        .claim_due("w2", LEASE, 10)
        .await
        .unwrap()
        .iter()
        .map(|c| c.key.payment_id.as_str().to_owned())
        .collect();
    assert!(
        due.iter().any(|id| id == first.payment_id.as_str()),
        "enabled again, the endpoint gets {due:?} but never the event whose schedule ran out \
         ({}): it is left `failed` and not delivered at least once",
        first.payment_id
    );
}

/// Promise: replay makes a delivery "pending, due at once", and answers how many are. A replay
/// of a delivery that a sender holds (its attempt in flight) only sets `next_attempt_at`; the
/// sender's `record_attempt` then overwrites it (`next_attempt_at = NULL` on 2xx, a later time
/// on failure, `failed_at` on give-up) because the compare-and-set is on the owner alone. The
/// replay was acknowledged (`202 {"queued": 1}`, a note in the payout's history) and is
/// silently dropped; the in-flight POST may well have reached the merchant before the replay
/// was asked for.
pub(crate) async fn a_replay_while_a_send_is_in_flight_is_not_lost(ledger: &Ledger) {
    let project = ProjectId::new(7301).unwrap();
    let hooks = ledger.webhooks(project);
    hooks
        .add_endpoint("https://merchant.example/replay", "whsec_eA==")
        .await
        .unwrap();
    let r = recorded_at(ledger, project, "rv-replay-race", SystemTime::now()).await;
    let claimed = hooks.claim_due("sender", LEASE, 10).await.unwrap();
    assert_eq!(claimed.len(), 1);
    // The operator replays while the sender's POST is on its way.
    assert_eq!(hooks.replay(&r.payment_id, None, None).await.unwrap(), 1);
    // The in-flight attempt (made with the body from before the replay) ends.
    let recorded = hooks
        .record_attempt(
            &claimed[0].key,
            "sender",
            &attempt(Some(200)),
            &AfterAttempt::Delivered,
        )
        .await
        .unwrap();
    let after = hooks.deliveries(&r.payment_id).await.unwrap();
    assert_eq!(
        after[0].state,
        DeliveryState::Pending,
        "the replay was acknowledged but the in-flight attempt (recorded: {recorded}) erased \
         it: {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_enabling_another_projects_endpoint_changes_nothing_sqlite() {
    let ledger = Ledger::open("sqlite::memory:").await.unwrap();
    enabling_another_projects_endpoint_changes_nothing(&ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_given_up_delivery_is_sent_when_its_endpoint_is_enabled_sqlite() {
    let ledger = Ledger::open("sqlite::memory:").await.unwrap();
    a_given_up_delivery_is_sent_when_its_endpoint_is_enabled(&ledger).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_a_replay_while_a_send_is_in_flight_is_not_lost_sqlite() {
    let ledger = Ledger::open("sqlite::memory:").await.unwrap();
    a_replay_while_a_send_is_in_flight_is_not_lost(&ledger).await;
}
