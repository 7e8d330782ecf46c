//! Adversarial review (attacks and crashes). Every test here failed when it was written: each
//! demonstrates one finding of the review; the comment above it says what and why it matters.

use std::sync::Arc;
use std::time::Duration;

use rp_model::{PaymentStatus, ProjectId};
use rp_payout::{
    Client, Clock, Error, ManualClock, MemoryStore, PayoutRecord, PayoutState, PayoutStore,
    RetryPolicy,
};
use rp_sign::{Signer, testing};
use rp_transport::{
    BoxFuture, Headers, HttpRequest, HttpResponse, ScriptedTransport, Transport, TransportError,
};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};

use crate::gate::{
    Gate, PROJECT, Reply, accepted, config, envelope, fast_retry, key, payout, pid, server_error,
    status_body, unsigned_not_found,
};

// ---------------------------------------------------------------------------------------
// Helpers

/// A transport whose every request is handed to the test, which answers it when it wants:
/// a Gate under the test's hand, to interleave concurrent calls deterministically.
#[derive(Debug, Clone)]
struct ManualGate {
    tx: mpsc::UnboundedSender<Pending>,
}

#[derive(Debug)]
struct Pending {
    request: HttpRequest,
    answer: oneshot::Sender<Result<HttpResponse, TransportError>>,
}

impl Pending {
    fn path(&self) -> &str {
        &self.request.path
    }

    fn reply(self, status: u16, body: &Value) {
        let _ = self.answer.send(Ok(HttpResponse::new(
            status,
            Headers::new(),
            serde_json::to_vec(body).unwrap(),
        )));
    }

    fn fail(self, error: TransportError) {
        let _ = self.answer.send(Err(error));
    }
}

impl ManualGate {
    fn new() -> (ManualGate, mpsc::UnboundedReceiver<Pending>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (ManualGate { tx }, rx)
    }
}

impl Transport for ManualGate {
    fn post(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        let (answer, wait) = oneshot::channel();
        let path = request.path.clone();
        let _ = self.tx.send(Pending { request, answer });
        Box::pin(async move {
            wait.await.unwrap_or_else(|_| {
                Err(TransportError::maybe_sent_interrupted(
                    path,
                    "test gate dropped the request",
                ))
            })
        })
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Pending>) -> Pending {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a request within 5 s")
        .expect("gate open")
}

fn signed(body: &Value) -> Value {
    Signer::new(&key()).sign_callback(body).unwrap()
}

fn refused(code: &str, message: &str) -> Value {
    json!({"status":"error","project_id":PROJECT,"code":code,"message":message,
           "errors":[{"code":code,"message":message}]})
}

fn not_found_body() -> Value {
    refused("3061", "Transaction not found")
}

/// A callback about the payout of `gate::payout(payment_id)` (same amount, phone, customer).
fn callback(payment_id: &str, status: &str, request_id: &str) -> Value {
    json!({
        "project_id": PROJECT,
        "payment": {"id": payment_id, "type": "payout", "status": status,
                    "date": "2024-05-14T10:21:33+0000", "method": "mobile",
                    "sum": {"amount": 150000, "currency": "KZT"}, "description": ""},
        "account": {"number": "77011234567", "type": "KCELL"},
        "customer": {"id": "customer-1"},
        "operation": {"id": 5, "type": "payout", "status": "decline", "request_id": request_id,
                      "code": "3062", "message": "Payment details not received"}
    })
}

fn manual_client(
    gate: &ManualGate,
    retry: RetryPolicy,
) -> (Arc<Client>, ManualClock, Arc<MemoryStore>) {
    let clock = ManualClock::new();
    let store = Arc::new(MemoryStore::new());
    let client = Client::builder(config().with_retry(retry))
        .transport(Arc::new(gate.clone()))
        .store(store.clone())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    (Arc::new(client), clock, store)
}

async fn state_of(store: &MemoryStore, id: &str) -> PayoutState {
    store.get(&pid(id)).await.unwrap().unwrap().state
}

// ---------------------------------------------------------------------------------------
// Finding 1 (high): a status `error` is acted on (resent) without the identity check.

/// After an attempt that may have reached the platform, the status endpoint shows, under our
/// payment ID, a payment in `error` that is **not this payout** (another amount: made in the
/// Dashboard, by another system, by an earlier bug). `retry::decide` resends on any status
/// `error` before anyone checks that the payment is ours, so the client sends again under an ID
/// the platform holds for another payout. The platform re-processes **its recorded payment** on
/// a resend after `error` (rp-sim does exactly that: "its magic, amount and phone, not the new
/// body's"), so this call revives the other payout (other amount / phone) and reports
/// `Ok(Accepted)` for ours, which will never be paid as requested. The identity invariant says
/// a status is checked before it is adopted; reconcile does check it (`PaymentIdTaken`).
#[tokio::test]
async fn review_a_status_error_of_another_payment_is_not_resent_over() {
    let gate = Gate::start().await;
    let mut other = status_body("p-err-other", "error");
    other["payment"]["sum"]["amount"] = json!(999_900);
    gate.on_payout(server_error())
        .on_status(Reply::Signed(other))
        .on_payout(accepted("p-err-other", "r-2"));
    let (client, _clock, store) = gate.client_with(fast_retry());

    let result = client.payout(&payout("p-err-other")).await;

    assert_eq!(
        gate.calls(),
        ["payout", "status"],
        "resent under a payment ID the platform holds for another payout (999900 minor units): {result:?}"
    );
    assert!(
        matches!(result, Err(Error::PaymentIdConflict { .. })),
        "{result:?}"
    );
    assert_eq!(
        state_of(&store, "p-err-other").await,
        PayoutState::PaymentIdTaken
    );
}

/// Same hole after a `3041`: the platform says the ID exists, the signed status shows another
/// customer's payment in `error`, and the client resends over it.
#[tokio::test]
async fn review_after_3041_a_status_error_of_another_customer_is_not_resent_over() {
    let gate = Gate::start().await;
    let mut other = status_body("p-3041-other", "error");
    other["customer"]["id"] = json!("someone-else");
    gate.on_payout(envelope(409, "3041", "Payment ID already exists", None))
        .on_status(Reply::Signed(other))
        .on_payout(accepted("p-3041-other", "r-2"));
    let (client, _clock, _store) = gate.client_with(fast_retry());

    let result = client.payout(&payout("p-3041-other")).await;

    assert_eq!(
        gate.calls(),
        ["payout", "status"],
        "resent over another customer's payment: {result:?}"
    );
    assert!(
        matches!(result, Err(Error::PaymentIdConflict { .. })),
        "{result:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Finding 2 (high): reconcile overwrites a payout another call is sending.

/// `reconcile` decides "in flight?" on the listed snapshot, then applies a 3061 with a
/// compare-and-set whose closure turns **any** `Created` into `NotRegistered`, without asking
/// whether that `Created` is a claim made meanwhile by a call that is sending the payout
/// (`resume`, `reconcile_and_resume`, the merchant retrying `payout`). The in-flight marker is
/// erased, so a second `payout` call for the same payment sends concurrently instead of
/// answering `InFlight`; its request is refused (3028: the balance the first one is using), it
/// has no maybe-sent history, so it ends as `Error::Rejected` ("not registered, nothing sent")
/// and records `Rejected`, while the first call's request is with the platform. A caller that
/// believes `Rejected` pays again under a new payment ID: paid twice.
#[tokio::test]
async fn review_reconcile_does_not_clear_a_claim_made_while_it_asked() {
    let (gate, mut rx) = ManualGate::new();
    let (client, clock, store) = manual_client(&gate, fast_retry());
    // An earlier call left the outcome unknown (its request may have reached the platform).
    let mut record = PayoutRecord::new(
        pid("p-race"),
        payout("p-race").to_request(ProjectId::new(PROJECT).unwrap()),
        clock.now(),
    );
    record.state = PayoutState::Unknown;
    let event = crate::gate::test_event(&record);
    store
        .insert(record, event, rp_model::Limits::NONE)
        .await
        .unwrap();
    clock.advance(client.config().overdue_after + Duration::from_secs(1));

    // Reconcile asks the status...
    let reconcile = tokio::spawn({
        let client = client.clone();
        async move { client.reconcile().await }
    });
    let reconcile_status = next(&mut rx).await;
    assert_eq!(reconcile_status.path(), rp_payout::STATUS_PATH);

    // ...while the merchant resumes the payout: it claims the record and asks the status too.
    let resume = tokio::spawn({
        let client = client.clone();
        async move { client.resume(&pid("p-race")).await }
    });
    let resume_status = next(&mut rx).await;
    assert_eq!(resume_status.path(), rp_payout::STATUS_PATH);
    assert_eq!(state_of(&store, "p-race").await, PayoutState::Created);

    // The platform (lagging, or not yet) answers 3061 to reconcile.
    reconcile_status.reply(404, &not_found_body());
    reconcile.await.unwrap().unwrap();
    // The claim is gone: the record now says `NotRegistered` while resume is sending.
    let after_reconcile = state_of(&store, "p-race").await;

    // A second submission of the same payout while resume is still working on it.
    let second = tokio::spawn({
        let client = client.clone();
        async move { client.payout(&payout("p-race")).await }
    });
    // Give the second call time to finish (InFlight) or to send.
    let extra = tokio::time::timeout(Duration::from_millis(500), rx.recv()).await;
    let mut second_sent = false;
    if let Ok(Some(pending)) = extra {
        assert_eq!(pending.path(), rp_payout::PAYOUT_PATH);
        second_sent = true;
        // The balance is in use by the payout the first request created.
        pending.reply(400, &refused("3028", "Insufficient funds on the balance"));
    }
    let result = second.await.unwrap();
    let final_state = state_of(&store, "p-race").await;
    assert!(
        !second_sent && result.as_ref().is_err_and(Error::may_have_reached_platform),
        "after reconcile the record said {after_reconcile} while resume was sending; a second call \
         sent the payout concurrently: {second_sent}, returned {result:?}, and the record says {final_state}"
    );
    resume_status.fail(TransportError::maybe_sent_timeout(
        rp_payout::STATUS_PATH,
        Duration::from_millis(1),
    ));
    drop(rx);
    let _ = resume.await;
}

// ---------------------------------------------------------------------------------------
// Finding 3 (medium): reconcile drops "maybe-sent", on an unsigned 3061.

/// The first attempt timed out (it may have reached the platform): the record is `Unknown`.
/// Reconcile gets a 3061, here an **unsigned** 404 (invariant: only a signed status response
/// changes the store), and turns `Unknown` into `NotRegistered`; `reconcile_and_resume` then
/// resends with no maybe-sent history (`Start::Send { maybe_sent: false }`), so a refusal that
/// the first attempt may have caused (3028, the balance it used) ends the payout as
/// `Rejected`, `may_have_reached_platform() == false`. Within one call, the very same facts
/// (maybe-sent, 3061, refused resend) end as `OutcomeUnknown`: maybe-sent is sticky there, not
/// across reconcile. A caller that trusts `Rejected` pays again under a new ID.
#[tokio::test]
async fn review_reconcile_keeps_maybe_sent_across_an_unsigned_3061() {
    let gate = Gate::start().await;
    gate.on_payout(server_error()).on_status(server_error());
    let (client, clock, store) = gate.client_with(RetryPolicy {
        max_status_checks: 1,
        ..fast_retry()
    });
    assert!(
        client
            .payout(&payout("p-sticky"))
            .await
            .unwrap_err()
            .may_have_reached_platform()
    );

    clock.advance(client.config().overdue_after);
    gate.on_status(unsigned_not_found()) // unsigned 404 3061
        .on_payout(envelope(400, "3028", "Insufficient funds", None));
    let report = client.reconcile_and_resume().await.unwrap();

    let state = state_of(&store, "p-sticky").await;
    assert!(
        !matches!(state, PayoutState::Rejected { .. }),
        "a payout whose first attempt may have reached the platform is recorded {state}: {report:?}"
    );
    for entry in &report.resent {
        if let rp_payout::ResendResult::Failed {
            may_have_reached_platform,
            error,
        } = &entry.result
        {
            assert!(may_have_reached_platform, "{error}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Finding 4 (medium): a redelivered `error` during a resend hides the resend.

/// The payout ended in `error` (request r-1) and is resent. While the resend is on the wire
/// (the record is claimed: `Created`, still carrying r-1), the platform redelivers r-1's
/// `error` callback (our first 200 was lost). `earlier_error_is_stale` compares it with the
/// recorded request ID, which is still r-1, so the `error` is applied over the claim. The
/// resend's answer is lost; the signed status then shows `processing` (the resend got
/// through), which after `error` is "stale": the call returns `Ok(FoundByStatus)` with state
/// `error`, and the record says `error` (resendable) while the platform is paying it.
#[tokio::test]
async fn review_a_redelivered_error_during_a_resend_does_not_hide_the_resend() {
    let (gate, mut rx) = ManualGate::new();
    let (client, _clock, store) = manual_client(&gate, fast_retry());
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.payout(&payout("p-redeliver")).await }
    });
    next(&mut rx).await.reply(
        200,
        &json!({"status":"success","request_id":"r-1","payment_id":"p-redeliver"}),
    );
    first.await.unwrap().unwrap();
    let error_r1 =
        testing::sign_callback(&callback("p-redeliver", "error", "r-1"), &key()).unwrap();
    assert!(client.handle_callback(&error_r1).await.needs_resend());

    let resend = tokio::spawn({
        let client = client.clone();
        async move { client.payout(&payout("p-redeliver")).await }
    });
    let on_the_wire = next(&mut rx).await;
    assert_eq!(on_the_wire.path(), rp_payout::PAYOUT_PATH);
    // The platform redelivers the first request's error meanwhile.
    let outcome = client.handle_callback(&error_r1).await;
    on_the_wire.fail(TransportError::maybe_sent_timeout(
        rp_payout::PAYOUT_PATH,
        Duration::from_secs(30),
    ));
    // The status shows the resend being processed (request r-2).
    let status = next(&mut rx).await;
    assert_eq!(status.path(), rp_payout::STATUS_PATH);
    let mut processing = status_body("p-redeliver", "processing");
    processing["operations"] = json!([
        {"id": 5, "type": "payout", "status": "decline", "request_id": "r-1", "code": "3062", "message": "x"},
        {"id": 6, "type": "payout", "status": "processing", "request_id": "r-2", "code": "19999", "message": "Awaiting processing"}
    ]);
    status.reply(200, &signed(&processing));
    let receipt = resend.await.unwrap();

    let state = state_of(&store, "p-redeliver").await;
    assert_eq!(
        state,
        PayoutState::Status(PaymentStatus::Processing),
        "the platform processes the resend (r-2), the record says {state}; the callback during the resend was {outcome:?}; the call returned {receipt:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Finding 5 (low): a reversal with no paid status before it is not surfaced.

/// The `success` callback was lost (or is late); the next thing the platform reports is
/// `reversed` (the money came back). It is applied as a plain `Applied` and the record gets
/// no attention: `needs_attention()` is false, so an alert on reversals never fires, and the
/// `success` that arrives later is then a "conflict".
#[tokio::test]
async fn review_a_reversal_without_a_recorded_success_needs_attention() {
    let (gate, mut rx) = ManualGate::new();
    let (client, _clock, store) = manual_client(&gate, fast_retry());
    let first = tokio::spawn({
        let client = client.clone();
        async move { client.payout(&payout("p-rev")).await }
    });
    next(&mut rx).await.reply(
        200,
        &json!({"status":"success","request_id":"r-1","payment_id":"p-rev"}),
    );
    first.await.unwrap().unwrap();
    let mut reversed = callback("p-rev", "reversed", "r-1");
    reversed["operation"]["status"] = json!("success");
    let outcome = client
        .handle_callback(&testing::sign_callback(&reversed, &key()).unwrap())
        .await;
    let record = store.get(&pid("p-rev")).await.unwrap().unwrap();
    assert!(
        outcome.needs_attention() && record.attention.is_some(),
        "a reversal went by without an alert: {outcome:?}, {record:?}"
    );
}

// ---------------------------------------------------------------------------------------
// Finding 6 (low): full phone numbers in errors and records.

/// The platform's message is kept as sent in `Error::Rejected`, `PayoutState::Rejected` and
/// `PayoutRecord::last_message`. A message that echoes the phone number (as many gateways do
/// for a bad account number) reaches `Display`, logs (`state = %existing.state`) and the
/// store in full, although invariant 3 says a phone number appears masked; bodies of
/// unexpected responses are masked (`excerpt`), these are not.
#[tokio::test]
async fn review_a_rejection_message_never_shows_a_full_phone_number() {
    let transport = ScriptedTransport::new().then_respond(
        400,
        r#"{"status":"error","code":"20102","message":"Account 77011234567 is not served by the operator","errors":[{"code":"20102","message":"Account 77011234567 is not served by the operator","field":"account.number"}]}"#,
    );
    let store = Arc::new(MemoryStore::new());
    let client = Client::builder(config())
        .transport(Arc::new(transport))
        .store(store.clone())
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap();
    let error = client.payout(&payout("p-leak")).await.unwrap_err();
    let record = store.get(&pid("p-leak")).await.unwrap().unwrap();
    for (what, text) in [
        ("error", error.to_string()),
        ("state", record.state.to_string()),
        ("record", format!("{record:?}")),
    ] {
        assert!(!text.contains("77011234567"), "{what}: {text}");
    }
}

/// A signed status response whose `account.number` is a JSON number: the reason of the
/// `UnexpectedResponse` error quotes serde's message with the number in full (the body
/// excerpt beside it is masked).
#[tokio::test]
async fn review_an_unexpected_status_reason_never_shows_a_full_phone_number() {
    let mut body = status_body("p-num", "success");
    body["account"]["number"] = json!(77_011_234_567u64);
    let transport =
        ScriptedTransport::new().then_respond(200, serde_json::to_vec(&signed(&body)).unwrap());
    let client = Client::builder(config())
        .transport(Arc::new(transport))
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap();
    let error = client.status(&pid("p-num")).await.unwrap_err();
    assert!(!error.to_string().contains("77011234567"), "{error}");
}

// ---------------------------------------------------------------------------------------
// Finding 7 (low, depends on the platform's masking): a masked number the identity check
// does not read turns our own paid payout into "a different payout; use a new payment ID".

/// `identity::same_phone` reads only `*`, `x` and `X` as mask characters. A number masked with
/// another common character (`•`) never matches: reconcile then marks our own, paid payout
/// `PaymentIdTaken` (settled, never asked about again) and the error tells the caller "this
/// payout needs a new payment ID": an instruction to pay a paid payout again.
#[tokio::test]
async fn review_a_bullet_masked_number_of_our_paid_payout_is_not_another_payout() {
    let gate = Gate::start().await;
    gate.on_payout(server_error()).on_status(server_error());
    let (client, clock, store) = gate.client_with(RetryPolicy {
        max_status_checks: 1,
        ..fast_retry()
    });
    client.payout(&payout("p-mask")).await.unwrap_err();
    clock.advance(client.config().overdue_after);
    let mut ours = status_body("p-mask", "success");
    ours["account"]["number"] = json!("7701\u{2022}\u{2022}\u{2022}4567");
    gate.on_status(Reply::Signed(ours));
    let report = client.reconcile().await.unwrap();
    let state = state_of(&store, "p-mask").await;
    assert_eq!(
        state,
        PayoutState::Status(PaymentStatus::Success),
        "our payout (same amount, customer, visible digits) is recorded {state}: {report:?}; a resubmission says: {}",
        client.payout(&payout("p-mask")).await.unwrap_err()
    );
}
