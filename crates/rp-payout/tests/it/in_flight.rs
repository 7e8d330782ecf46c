//! A payout recorded as `Created` is in flight for `Config::in_flight_window`: neither
//! reconcile nor a second submission touches it; after that its sender is gone.

use std::time::Duration;

use rp_model::{PaymentStatus, ProjectId};
use rp_payout::{
    Acceptance, Client, Clock, Error, ManualClock, MemoryStore, PayoutRecord, PayoutState,
    PayoutStore, ReconcileResult,
};

use crate::gate::{Gate, PROJECT, accepted, config, not_found, payout, pid, status_reply};

/// A client that finds reconciliation overdue after 1 s, and a store holding `id` as
/// `Created` now, with one attempt logged, as another call (or a process that crashed after
/// it started sending) left it.
async fn with_created(gate: &Gate, id: &str) -> (Client, ManualClock, std::sync::Arc<MemoryStore>) {
    let (client, clock, store) =
        gate.client_from(config().with_overdue_after(Duration::from_secs(1)));
    let request = payout(id).to_request(ProjectId::new(PROJECT).unwrap());
    let mut record = PayoutRecord::new(pid(id), request, clock.now());
    record.attempts = 1;
    store
        .insert(
            record.clone(),
            crate::gate::test_event(&record),
            rp_model::Limits::NONE,
        )
        .await
        .unwrap();
    (client, clock, store)
}

#[tokio::test]
async fn reconcile_leaves_an_in_flight_payout_alone() {
    let gate = Gate::start().await;
    let (client, clock, store) = with_created(&gate, "p-fly").await;
    let window = client.config().in_flight_window();

    clock.advance(Duration::from_secs(30));
    let report = client.reconcile().await.unwrap();
    assert_eq!(
        report.entries[0].result,
        ReconcileResult::Unchanged(PayoutState::Created)
    );
    assert!(report.needs_resend().is_empty());
    assert!(
        gate.calls().is_empty(),
        "no status asked: {:?}",
        gate.calls()
    );

    // The sender is gone: now the status decides.
    clock.advance(window);
    gate.on_status(not_found());
    let report = client.reconcile().await.unwrap();
    assert_eq!(
        report.entries[0].result,
        ReconcileResult::Updated {
            previous: PayoutState::Created,
            state: PayoutState::NotRegistered,
        }
    );
    assert_eq!(report.needs_resend(), [&pid("p-fly")]);
    assert_eq!(
        store.get(&pid("p-fly")).await.unwrap().unwrap().state,
        PayoutState::NotRegistered
    );
}

#[tokio::test]
async fn submitting_an_in_flight_payout_sends_nothing() {
    let gate = Gate::start().await;
    let (client, clock, _store) = with_created(&gate, "p-twin").await;
    clock.advance(Duration::from_secs(30));
    // Defect 7 (review): this was `Ok(AlreadyRecorded)`, which a caller could read as "it is
    // with the platform" although nothing may ever have been sent. Now it is an error the
    // caller must handle, and it says the payout may exist.
    let error = client.payout(&payout("p-twin")).await.unwrap_err();
    let Error::InFlight {
        seconds_ago,
        window_seconds,
        ..
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(*seconds_ago, 30);
    assert!(*window_seconds > 30);
    assert!(error.may_have_reached_platform());
    assert!(error.to_string().contains("do NOT pay it again"), "{error}");
    let error = client.resume(&pid("p-twin")).await.unwrap_err();
    assert!(matches!(error, Error::InFlight { .. }), "{error}");
    assert!(gate.calls().is_empty());
}

#[tokio::test]
async fn a_payout_left_created_by_a_crash_is_resolved_by_the_status_first() {
    let gate = Gate::start().await;
    let (client, clock, _store) = with_created(&gate, "p-crash").await;
    clock.advance(client.config().in_flight_window());

    // It did get through before the crash: found, never sent again.
    gate.on_status(status_reply("p-crash", "processing"));
    let receipt = client.payout(&payout("p-crash")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(
        receipt.state,
        PayoutState::Status(PaymentStatus::Processing)
    );
    assert_eq!(gate.calls(), ["status"]);
}

#[tokio::test]
async fn a_payout_left_created_and_unknown_to_the_platform_is_sent_by_resume() {
    let gate = Gate::start().await;
    let (client, clock, _store) = with_created(&gate, "p-never").await;
    clock.advance(client.config().in_flight_window() + Duration::from_secs(1));

    gate.on_status(not_found())
        .on_payout(accepted("p-never", "r-1"));
    let receipt = client.resume(&pid("p-never")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(gate.calls(), ["status", "payout"]);
}

/// A payout claimed by a process of this host that has died (a crash, SIGKILL) is not in
/// flight: a rerun resolves it at once, without waiting out the window.
#[cfg(target_os = "linux")]
#[tokio::test]
async fn a_payout_claimed_by_a_dead_process_is_taken_over_at_once() {
    let gate = Gate::start().await;
    let (client, clock, store) = with_created(&gate, "p-dead").await;
    // A process that has come and gone.
    let mut child = std::process::Command::new("true").spawn().unwrap();
    let gone = child.id();
    child.wait().unwrap();
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap();
    let mut record = store.get(&pid("p-dead")).await.unwrap().unwrap();
    record.claimed_by = Some(format!("{}/{gone}/1", host.trim()));
    let event = crate::gate::test_event(&record);
    store.update(0, record, event).await.unwrap();

    clock.advance(Duration::from_secs(2));
    gate.on_status(status_reply("p-dead", "success"));
    let receipt = client.payout(&payout("p-dead")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(gate.calls(), ["status"], "the status first, at once");

    // A live claim (this very process) is still in flight.
    let (client, clock, store) = with_created(&gate, "p-alive").await;
    let mut record = store.get(&pid("p-alive")).await.unwrap().unwrap();
    record.claimed_by = Some(format!(
        "{}/{}/{}",
        host.trim(),
        std::process::id(),
        std::fs::read_to_string(format!("/proc/{}/stat", std::process::id()))
            .unwrap()
            .rsplit(')')
            .next()
            .unwrap()
            .split_whitespace()
            .nth(19)
            .unwrap()
    ));
    let event = crate::gate::test_event(&record);
    store.update(0, record, event).await.unwrap();
    clock.advance(Duration::from_secs(2));
    let error = client.payout(&payout("p-alive")).await.unwrap_err();
    assert!(matches!(error, Error::InFlight { .. }), "{error}");
}

/// The attempt log: a payout whose sender stopped before its first attempt was never sent, so
/// it is sent at once (no status asked), and reconcile marks it not registered without asking.
#[tokio::test]
async fn a_payout_never_attempted_is_sent_without_asking_the_status() {
    let gate = Gate::start().await;
    let (client, clock, store) = with_created(&gate, "p-unsent").await;
    let mut record = store.get(&pid("p-unsent")).await.unwrap().unwrap();
    record.attempts = 0;
    let event = crate::gate::test_event(&record);
    store.update(0, record, event).await.unwrap();
    clock.advance(client.config().in_flight_window() + Duration::from_secs(1));
    let report = client.reconcile().await.unwrap();
    assert_eq!(
        report.entries[0].result,
        ReconcileResult::Updated {
            previous: PayoutState::Created,
            state: PayoutState::NotRegistered,
        }
    );
    assert!(gate.calls().is_empty(), "nothing asked: it was never sent");
    gate.on_payout(accepted("p-unsent", "r-1"));
    let receipt = client.payout(&payout("p-unsent")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(gate.calls(), ["payout"]);
    let events = store.events(&pid("p-unsent")).await.unwrap();
    assert!(
        events
            .iter()
            .any(|e| e.note.as_deref() == Some("attempt 1: sending the payout request")),
        "{events:?}"
    );
}

/// Claims are leases: held until `lease_until` (renewed before every attempt), and a call
/// whose claim another took over sends nothing more (the attempt log is the fence).
#[tokio::test]
async fn a_call_whose_claim_was_taken_over_sends_nothing_more() {
    use std::sync::Arc;

    /// After the first payout request (answered 500: maybe sent), another client takes the
    /// payout over, as one would after this call's lease ran out.
    #[derive(Debug)]
    struct TakeOver {
        store: Arc<MemoryStore>,
        inner: rp_transport::ScriptedTransport,
    }
    impl rp_transport::Transport for TakeOver {
        fn post(
            &self,
            request: rp_transport::HttpRequest,
        ) -> rp_transport::BoxFuture<
            '_,
            Result<rp_transport::HttpResponse, rp_transport::TransportError>,
        > {
            Box::pin(async move {
                let answer = self.inner.post(request.clone()).await;
                if request.path == rp_payout::PAYOUT_PATH {
                    let mut record = self.store.all().pop().unwrap();
                    let version = record.version;
                    record.claimed_by = Some("elsewhere/1/1/0".to_owned());
                    let event = crate::gate::test_event(&record);
                    self.store.update(version, record, event).await.unwrap();
                }
                answer
            })
        }
    }

    let script = rp_transport::ScriptedTransport::new()
        .then_respond(500, r#"{"status":"error","message":"Internal server error"}"#)
        .then_respond(
            200,
            r#"{"status":"error","code":"3061","message":"Transaction not found","errors":[{"code":"3061","message":"Transaction not found"}]}"#,
        );
    let store = Arc::new(MemoryStore::new());
    let client = Client::builder(config().with_retry(crate::gate::fast_retry()))
        .transport(Arc::new(TakeOver {
            store: store.clone(),
            inner: script.clone(),
        }))
        .store(store.clone())
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap();
    let error = client.payout(&payout("p-fenced")).await.unwrap_err();
    assert!(matches!(error, Error::InFlight { .. }), "{error}");
    assert!(error.may_have_reached_platform());
    let paths: Vec<String> = script.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        [rp_payout::PAYOUT_PATH, rp_payout::STATUS_PATH],
        "the status said 3061, but the claim is not ours any more: no second request"
    );
    let record = store.get(&pid("p-fenced")).await.unwrap().unwrap();
    assert_eq!(record.attempts, 1);
    assert_eq!(record.claimed_by.as_deref(), Some("elsewhere/1/1/0"));
}

/// A claim of another (live) client holds until its lease runs out on the store's clock,
/// then the payout is taken over (the status first: an attempt was logged).
#[tokio::test]
async fn a_claim_holds_until_its_lease_runs_out() {
    let gate = Gate::start().await;
    let (client, clock, store) = with_created(&gate, "p-lease").await;
    let mut record = store.get(&pid("p-lease")).await.unwrap().unwrap();
    record.claimed_by = Some("elsewhere/1/1/0".to_owned());
    record.lease_until = Some(clock.now() + Duration::from_secs(30));
    let event = crate::gate::test_event(&record);
    store.update(0, record, event).await.unwrap();

    clock.advance(Duration::from_secs(29));
    let error = client.payout(&payout("p-lease")).await.unwrap_err();
    assert!(matches!(error, Error::InFlight { .. }), "{error}");
    assert!(gate.calls().is_empty());

    clock.advance(Duration::from_secs(2));
    gate.on_status(status_reply("p-lease", "success"));
    let receipt = client.payout(&payout("p-lease")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(gate.calls(), ["status"]);
}
