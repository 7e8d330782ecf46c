//! `Client::payout`: the retry rules end to end, against the fake Gate and a scripted transport.

use std::sync::Arc;
use std::time::Duration;

use rp_model::{PaymentStatus, ResponseCode};
use rp_payout::{
    Acceptance, Client, Error, ManualClock, MemoryStore, PayoutState, PayoutStore, RetryPolicy,
};
use rp_transport::{
    BoxFuture, HttpRequest, HttpResponse, ScriptedTransport, Transport, TransportError,
};
use serde_json::Value;

use crate::gate::{
    Gate, Reply, accepted, config, envelope, fast_retry, not_found, payout, pid, server_error,
    status_body, status_reply,
};

/// A client over a scripted transport.
fn scripted(
    script: &ScriptedTransport,
    retry: RetryPolicy,
) -> (Client, ManualClock, Arc<MemoryStore>) {
    let clock = ManualClock::new();
    let store = Arc::new(MemoryStore::new());
    let client = Client::builder(config().with_retry(retry))
        .transport(Arc::new(script.clone()))
        .clock(Arc::new(clock.clone()))
        .store(store.clone())
        .build()
        .unwrap();
    (client, clock, store)
}

fn json(status: u16, body: &Value) -> Result<HttpResponse, TransportError> {
    Ok(HttpResponse::new(
        status,
        rp_transport::Headers::new().with("content-type", "application/json"),
        serde_json::to_vec(body).unwrap(),
    ))
}

fn signed(body: &Value) -> Value {
    rp_sign::Signer::new(&crate::gate::key())
        .sign_callback(body)
        .unwrap()
}

fn bodies(script: &ScriptedTransport) -> Vec<(String, Value)> {
    script
        .requests()
        .iter()
        .map(|r| (r.path.clone(), serde_json::from_slice(&r.body).unwrap()))
        .collect()
}

async fn state_of(store: &MemoryStore, id: &str) -> PayoutState {
    store.get(&pid(id)).await.unwrap().unwrap().state
}

#[tokio::test]
async fn accepted_over_http() {
    let gate = Gate::start().await;
    gate.on_payout(accepted("p-ok", "r-1"));
    let (client, _clock, store) = gate.client();

    let receipt = client.payout(&payout("p-ok")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(receipt.request_id.as_deref(), Some("r-1"));
    assert_eq!(receipt.attempts, 1);
    assert_eq!(state_of(&store, "p-ok").await, PayoutState::Accepted);

    let received = gate.received();
    assert_eq!(gate.calls(), ["payout"]);
    let body = &received[0].body;
    assert_eq!(body["general"]["project_id"], 1234);
    assert_eq!(body["general"]["payment_id"], "p-ok");
    assert_eq!(body["account"]["number"], "77011234567");
    assert_eq!(body["payment"]["amount"], 150_000);
    assert_eq!(body["payment"]["currency"], "KZT");
    assert!(body["general"]["signature"].is_string());
}

/// The merchant's metadata is part of what a payment ID names: the same request with other
/// metadata (or none, as `payout` has) is another payout, refused before anything is sent;
/// the same metadata, written in another member order, is the payout as it stands.
#[tokio::test]
async fn the_same_request_with_other_metadata_is_a_conflict() {
    let gate = Gate::start().await;
    gate.on_payout(accepted("p-meta", "r-1"));
    let (client, _clock, store) = gate.client();
    let source = rp_payout::EventSource::Call;
    let metadata = || Some(r#"{"order":7,"tags":["a"]}"#.to_owned());
    client
        .payout_reporting(&payout("p-meta"), source.clone(), metadata(), None)
        .await
        .unwrap();
    assert_eq!(gate.calls(), ["payout"]);

    let error = client.payout(&payout("p-meta")).await.unwrap_err();
    assert!(
        matches!(error, Error::PaymentIdConflict { platform: None, .. }),
        "{error}"
    );
    let (told, recorded) = tokio::sync::oneshot::channel();
    let other = Some(r#"{"order":8,"tags":["a"]}"#.to_owned());
    let error = client
        .payout_reporting(&payout("p-meta"), source.clone(), other, Some(told))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::PaymentIdConflict { .. }), "{error}");
    assert_eq!(recorded.await.unwrap(), rp_payout::Recorded::Conflict);

    let reordered = Some(r#"{"tags": ["a"], "order": 7}"#.to_owned());
    let receipt = client
        .payout_reporting(&payout("p-meta"), source, reordered, None)
        .await
        .unwrap();
    assert_eq!(receipt.acceptance, Acceptance::AlreadyRecorded);
    assert_eq!(gate.calls(), ["payout"], "nothing sent again");
    let kept = store.get(&pid("p-meta")).await.unwrap().unwrap();
    assert_eq!(kept.metadata, metadata());
}

#[tokio::test]
async fn validation_error_is_a_typed_rejection_and_is_never_resent() {
    let gate = Gate::start().await;
    gate.on_payout(envelope(
        400,
        "2004",
        "Required field not provided: customer.id",
        Some("customer.id"),
    ));
    let (client, _clock, store) = gate.client();

    let error = client.payout(&payout("p-bad")).await.unwrap_err();
    let Error::Rejected {
        code,
        message,
        field,
        http_status,
        ..
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(code.as_str(), "2004");
    assert_eq!(message, "Required field not provided: customer.id");
    assert_eq!(field.as_deref(), Some("customer.id"));
    assert_eq!(*http_status, Some(400));
    assert!(error.to_string().contains("code 2004"), "{error}");
    assert!(matches!(
        state_of(&store, "p-bad").await,
        PayoutState::Rejected { .. }
    ));

    // Submitting it again replays the rejection without sending.
    let again = client.payout(&payout("p-bad")).await.unwrap_err();
    assert_eq!(again.code(), Some(ResponseCode::new("2004")));
    assert_eq!(gate.calls(), ["payout"]);
}

#[tokio::test]
async fn invalid_signature_rejection_names_3261() {
    let gate = Gate::start().await;
    gate.on_payout(envelope(403, "3261", "Invalid signature", None));
    let (client, _clock, _store) = gate.client();
    let error = client.payout(&payout("p-sig")).await.unwrap_err();
    assert_eq!(error.code(), Some(ResponseCode::new("3261")));
    assert!(error.to_string().contains("Invalid signature"), "{error}");
}

#[tokio::test]
async fn server_error_then_status_not_found_then_resend_succeeds() {
    let gate = Gate::start().await;
    gate.on_payout(server_error())
        .on_status(not_found())
        .on_payout(accepted("p-5xx", "r-2"));
    let (client, clock, store) = gate.client_with(fast_retry());

    let receipt = client.payout(&payout("p-5xx")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(receipt.attempts, 2);
    assert_eq!(gate.calls(), ["payout", "status", "payout"]);
    let received = gate.received();
    assert_eq!(
        received[0].body, received[2].body,
        "the resend is byte for byte the same request"
    );
    assert!(received.iter().all(|r| r.payment_id() == Some("p-5xx")));
    assert_eq!(
        clock.sleeps()[1],
        Duration::from_secs(10),
        "the status waits the platform's 10 s"
    );
    assert_eq!(state_of(&store, "p-5xx").await, PayoutState::Accepted);
}

#[tokio::test]
async fn timeout_then_status_processing_means_no_resend() {
    let gate = Gate::start().await;
    gate.on_payout(Reply::Delayed(
        Duration::from_millis(800),
        Box::new(accepted("p-slow", "r-3")),
    ))
    .on_status(status_reply("p-slow", "processing"));
    let (client, _clock, store) = gate.client();

    let receipt = client.payout(&payout("p-slow")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(receipt.attempts, 1);
    assert_eq!(receipt.request_id.as_deref(), Some("r-1"));
    assert_eq!(gate.calls(), ["payout", "status"], "never resent");
    assert_eq!(
        state_of(&store, "p-slow").await,
        PayoutState::Status(PaymentStatus::Processing)
    );
}

#[tokio::test]
async fn timeout_then_not_found_resends_with_the_same_payment_id() {
    let script = ScriptedTransport::new()
        .then_fail(TransportError::maybe_sent_timeout(
            rp_payout::PAYOUT_PATH,
            Duration::from_secs(30),
        ))
        .then_respond(
            404,
            r#"{"status":"error","code":"3061","message":"Transaction not found"}"#,
        )
        .then_respond(
            200,
            r#"{"status":"success","request_id":"r-9","payment_id":"p-t"}"#,
        );
    let (client, _clock, _store) = scripted(&script, fast_retry());

    let receipt = client.payout(&payout("p-t")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(receipt.request_id.as_deref(), Some("r-9"));
    let sent = bodies(&script);
    let paths: Vec<&str> = sent.iter().map(|(p, _)| p.as_str()).collect();
    assert_eq!(
        paths,
        [
            rp_payout::PAYOUT_PATH,
            rp_payout::STATUS_PATH,
            rp_payout::PAYOUT_PATH
        ]
    );
    assert_eq!(sent[0].1, sent[2].1);
    assert!(
        sent.iter()
            .all(|(_, b)| b["general"]["payment_id"] == "p-t")
    );
}

#[tokio::test]
async fn status_error_resends_with_the_same_payment_id() {
    let script = ScriptedTransport::new()
        .then_fail(TransportError::maybe_sent_interrupted(
            rp_payout::PAYOUT_PATH,
            "connection reset",
        ))
        .then_respond(
            200,
            serde_json::to_vec(&signed(&status_body("p-e", "error"))).unwrap(),
        )
        .then_respond(
            200,
            r#"{"status":"success","request_id":"r-10","payment_id":"p-e"}"#,
        );
    let (client, _clock, store) = scripted(&script, fast_retry());

    let receipt = client.payout(&payout("p-e")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(receipt.attempts, 2);
    let sent = bodies(&script);
    assert_eq!(sent.len(), 3);
    assert_eq!(sent[0].1, sent[2].1);
    assert_eq!(state_of(&store, "p-e").await, PayoutState::Accepted);
}

/// Defect (review): a second 3041 adopted the payment with no check. Now a 3041 on a resend
/// is adopted only through a matching signed status, asked after the platform's delay.
#[tokio::test]
async fn payment_id_exists_on_a_resend_is_adopted_only_through_a_matching_status() {
    let gate = Gate::start().await;
    gate.on_payout(server_error())
        .on_status(not_found())
        .on_payout(envelope(409, "3041", "Payment ID already exists", None))
        .on_status(not_found())
        .on_status(status_reply("p-3041", "processing"));
    let (client, clock, store) = gate.client_with(fast_retry());

    let receipt = client.payout(&payout("p-3041")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(
        state_of(&store, "p-3041").await,
        PayoutState::Status(PaymentStatus::Processing)
    );
    assert_eq!(
        gate.calls(),
        ["payout", "status", "payout", "status", "status"],
        "after the 3041 only the status is asked, never a third payout"
    );
    let sleeps = clock.sleeps();
    assert_eq!(sleeps[sleeps.len() - 1], Duration::from_secs(10));
    assert_eq!(sleeps[sleeps.len() - 2], Duration::from_secs(10));
}

/// Defect 1 (review): first attempt maybe sent (500), the status lags (3061), the resend is
/// refused with 3028 because the first attempt took the balance: it was recorded as a final
/// rejection, never reconciled, and replayed on resubmission. Now the call asks the status
/// and adopts the payment the first attempt made.
#[tokio::test]
async fn a_refused_resend_after_a_maybe_sent_attempt_asks_the_status_and_finds_it() {
    let gate = Gate::start().await;
    gate.on_payout(server_error())
        .on_status(not_found())
        .on_payout(envelope(
            400,
            "3028",
            "Insufficient funds on merchant balance",
            None,
        ))
        .on_status(status_reply("p-3028", "success"));
    let (client, _clock, store) = gate.client_with(fast_retry());

    let receipt = client.payout(&payout("p-3028")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(
        state_of(&store, "p-3028").await,
        PayoutState::Status(PaymentStatus::Success)
    );
    assert_eq!(gate.calls(), ["payout", "status", "payout", "status"]);
}

/// Defect 1, when the status never shows the payment within the call: unknown (reconcile keeps
/// asking), never rejected; a resubmission asks the status instead of replaying a rejection.
#[tokio::test]
async fn a_refused_resend_after_a_maybe_sent_attempt_is_unknown_never_rejected() {
    let gate = Gate::start().await;
    gate.on_payout(server_error())
        .on_status(not_found())
        .on_payout(envelope(
            400,
            "3109",
            "Payment Constraint Daily payout amount exceeded",
            None,
        ))
        .on_status(not_found());
    let (client, _clock, store) = gate.client_with(RetryPolicy {
        max_attempts: 2,
        max_status_checks: 2,
        ..fast_retry()
    });

    let error = client.payout(&payout("p-lim")).await.unwrap_err();
    assert!(error.is_outcome_unknown(), "{error}");
    assert!(error.may_have_reached_platform());
    assert!(error.to_string().contains("3109"), "{error}");
    assert_eq!(state_of(&store, "p-lim").await, PayoutState::Unknown);

    // Submitting it again resolves it through the status, which now knows it.
    gate.on_status(status_reply("p-lim", "success"));
    let receipt = client.payout(&payout("p-lim")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(
        gate.calls(),
        ["payout", "status", "payout", "status", "status"]
    );
}

fn payment_id_exists() -> Reply {
    envelope(409, "3041", "Payment ID already exists", None)
}

/// A signed status for `payment_id` whose `payment.sum.amount` is `amount`.
fn status_with_amount(payment_id: &str, status: &str, amount: u64) -> Reply {
    let mut body = status_body(payment_id, status);
    body["payment"]["sum"]["amount"] = serde_json::json!(amount);
    Reply::Signed(body)
}

/// 3041 on the first attempt of a fresh store (e.g. the CLI after an unknown outcome, run
/// again with the same payment ID): an earlier attempt got through. Ask the status; the
/// payment there with this payout's amount is this payout.
#[tokio::test]
async fn payment_id_exists_on_a_first_attempt_is_resolved_by_the_status() {
    let gate = Gate::start().await;
    gate.on_payout(payment_id_exists())
        .on_status(status_reply("p-used", "processing"));
    let (client, clock, store) = gate.client();
    let receipt = client.payout(&payout("p-used")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(receipt.attempts, 1);
    assert_eq!(gate.calls(), ["payout", "status"], "never resent");
    assert_eq!(
        clock.sleeps()[1],
        Duration::from_secs(10),
        "asked after the platform's delay, not at once"
    );
    assert_eq!(
        state_of(&store, "p-used").await,
        PayoutState::Status(PaymentStatus::Processing)
    );
}

#[tokio::test]
async fn payment_id_exists_with_a_different_amount_on_the_platform_is_a_conflict() {
    let gate = Gate::start().await;
    gate.on_payout(payment_id_exists())
        .on_status(status_with_amount("p-other", "success", 999_900));
    let (client, _clock, store) = gate.client();
    let error = client.payout(&payout("p-other")).await.unwrap_err();
    let Error::PaymentIdConflict { platform, .. } = &error else {
        panic!("{error}");
    };
    assert!(platform.as_deref().unwrap().contains("999900"), "{error}");
    assert!(error.to_string().contains("new payment ID"), "{error}");
    let record = store.get(&pid("p-other")).await.unwrap().unwrap();
    assert_eq!(record.state, PayoutState::PaymentIdTaken);
    assert!(record.state.is_settled());

    // Submitting it again sends nothing and says the same.
    let again = client.payout(&payout("p-other")).await.unwrap_err();
    assert!(
        matches!(
            again,
            Error::PaymentIdConflict {
                platform: Some(_),
                ..
            }
        ),
        "{again}"
    );
    assert_eq!(gate.calls(), ["payout", "status"]);
}

/// Defect 5 (review): 3041, then 3061 from the lagging status, then a resend answered 3041
/// adopted the payment without any check. Now the status is asked again (no resend) until
/// it shows the payment, or the outcome stays unknown.
#[tokio::test]
async fn payment_id_exists_then_not_found_waits_for_the_status_and_never_adopts_blindly() {
    let gate = Gate::start().await;
    gate.on_payout(payment_id_exists())
        .on_status(not_found())
        .on_status(not_found())
        .on_status(not_found())
        .on_status(not_found());
    let (client, _clock, store) = gate.client_with(fast_retry());
    let error = client.payout(&payout("p-lag")).await.unwrap_err();
    assert!(error.is_outcome_unknown(), "{error}");
    assert_eq!(state_of(&store, "p-lag").await, PayoutState::Unknown);
    assert_eq!(
        gate.calls(),
        ["payout", "status", "status", "status", "status"],
        "never resent, never adopted without a status"
    );
}

/// Defect 5: after a 3041 the platform's payment is adopted only if it is this payout: a
/// payment under the ID to another phone, or for another customer, is a conflict.
#[tokio::test]
async fn payment_id_exists_for_another_phone_or_customer_is_a_conflict() {
    for (field, value, shown) in [
        ("number", "77019999999", "7701***9999"),
        ("customer", "customer-2", "customer-2"),
    ] {
        let gate = Gate::start().await;
        let mut body = status_body("p-who", "success");
        if field == "number" {
            body["account"]["number"] = serde_json::json!(value);
        } else {
            body["customer"]["id"] = serde_json::json!(value);
        }
        gate.on_payout(payment_id_exists())
            .on_status(Reply::Signed(body));
        let (client, _clock, store) = gate.client();
        let error = client.payout(&payout("p-who")).await.unwrap_err();
        let Error::PaymentIdConflict { platform, .. } = &error else {
            panic!("{field}: {error}");
        };
        assert!(platform.as_deref().unwrap().contains(shown), "{error}");
        assert!(!error.to_string().contains("77019999999"), "{error}");
        let record = store.get(&pid("p-who")).await.unwrap().unwrap();
        assert_eq!(record.state, PayoutState::PaymentIdTaken, "{field}");
        assert!(record.attention.is_some(), "{field}");
    }
}

/// Defect 5: a status without `payment.sum` cannot be matched: never adopted.
#[tokio::test]
async fn a_status_without_a_sum_is_never_adopted() {
    let gate = Gate::start().await;
    let mut body = status_body("p-nosum", "success");
    body["payment"].as_object_mut().unwrap().remove("sum");
    gate.on_payout(payment_id_exists())
        .on_status(Reply::Signed(body));
    let (client, _clock, store) = gate.client();
    let error = client.payout(&payout("p-nosum")).await.unwrap_err();
    assert!(error.to_string().contains("no payment.sum"), "{error}");
    assert_eq!(
        state_of(&store, "p-nosum").await,
        PayoutState::PaymentIdTaken
    );
}

#[tokio::test]
async fn payment_id_exists_and_no_status_is_unknown_never_rejected() {
    let gate = Gate::start().await;
    gate.on_payout(payment_id_exists())
        .on_status(server_error());
    let (client, _clock, store) = gate.client_with(RetryPolicy {
        max_status_checks: 1,
        ..fast_retry()
    });
    let error = client.payout(&payout("p-dark")).await.unwrap_err();
    assert!(error.is_outcome_unknown(), "{error}");
    assert_eq!(state_of(&store, "p-dark").await, PayoutState::Unknown);
}

#[tokio::test]
async fn payment_id_exists_on_a_resend_from_not_registered_is_resolved_by_the_status() {
    let gate = Gate::start().await;
    let (client, _clock, store) = gate.client();
    // Recorded as not registered (e.g. reconcile saw 3061 while the first request was slow).
    client.payout(&payout("p-nr")).await.unwrap_err();
    set_state(&store, "p-nr", PayoutState::NotRegistered).await;
    let before = gate.calls().len();

    gate.on_payout(payment_id_exists())
        .on_status(status_reply("p-nr", "success"));
    let receipt = client.resume(&pid("p-nr")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(receipt.state, PayoutState::Status(PaymentStatus::Success));
    assert_eq!(gate.calls()[before..], ["payout", "status"]);
}

#[tokio::test]
async fn payment_id_exists_on_a_resend_after_error_is_resolved_by_the_status() {
    let gate = Gate::start().await;
    gate.on_payout(accepted("p-err", "r-1"));
    let (client, _clock, store) = gate.client();
    client.payout(&payout("p-err")).await.unwrap();
    set_state(&store, "p-err", PayoutState::Status(PaymentStatus::Error)).await;

    // An earlier resend got through; its answer was lost.
    gate.on_payout(payment_id_exists())
        .on_status(status_reply("p-err", "processing"));
    let receipt = client.payout(&payout("p-err")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(
        state_of(&store, "p-err").await,
        PayoutState::Status(PaymentStatus::Processing)
    );
    assert_eq!(gate.calls(), ["payout", "payout", "status"]);
}

#[tokio::test]
async fn payment_id_exists_in_a_fresh_store_with_a_different_amount_is_a_conflict() {
    // A fresh process and store (the CLI): another payout already uses the ID.
    let script = ScriptedTransport::new()
        .then_respond(
            409,
            r#"{"status":"error","code":"3041","message":"Payment ID already exists"}"#,
        )
        .then_respond(
            200,
            serde_json::to_vec(&signed(&{
                let mut body = status_body("p-fresh", "processing");
                body["payment"]["sum"]["amount"] = serde_json::json!(1);
                body
            }))
            .unwrap(),
        );
    let (client, _clock, store) = scripted(&script, fast_retry());
    let error = client.payout(&payout("p-fresh")).await.unwrap_err();
    assert!(matches!(error, Error::PaymentIdConflict { .. }), "{error}");
    assert_eq!(
        state_of(&store, "p-fresh").await,
        PayoutState::PaymentIdTaken
    );
}

async fn set_state(store: &MemoryStore, id: &str, state: PayoutState) {
    let mut record = store.get(&pid(id)).await.unwrap().unwrap();
    let version = record.version;
    record.state = state;
    assert!(matches!(
        store
            .update(version, record.clone(), crate::gate::test_event(&record))
            .await
            .unwrap(),
        rp_payout::Updated::Done(_)
    ));
}

#[tokio::test]
async fn rate_limited_honours_retry_after_and_resends() {
    let gate = Gate::start().await;
    gate.on_payout(Reply::WithHeader(
        429,
        "retry-after",
        "3",
        serde_json::json!({"status":"error","code":"429","message":"Too many requests"}),
    ))
    .on_payout(accepted("p-429", "r-4"));
    let (client, clock, _store) = gate.client_with(fast_retry());

    let receipt = client.payout(&payout("p-429")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(receipt.attempts, 2);
    assert_eq!(
        gate.calls(),
        ["payout", "payout"],
        "429 is not processed: no status check"
    );
    assert!(
        clock.sleeps().contains(&Duration::from_secs(3)),
        "{:?}",
        clock.sleeps()
    );
}

#[tokio::test]
async fn exhausted_budget_is_outcome_unknown_and_recorded() {
    let gate = Gate::start().await;
    for _ in 0..3 {
        gate.on_payout(server_error()).on_status(server_error());
    }
    let retry = RetryPolicy {
        max_attempts: 2,
        max_status_checks: 2,
        ..fast_retry()
    };
    let (client, _clock, store) = gate.client_with(retry);

    let error = client.payout(&payout("p-lost")).await.unwrap_err();
    assert!(error.is_outcome_unknown(), "{error}");
    assert!(error.to_string().contains("will be reconciled"), "{error}");
    assert_eq!(state_of(&store, "p-lost").await, PayoutState::Unknown);
    assert!(
        gate.received()
            .iter()
            .all(|r| r.payment_id() == Some("p-lost"))
    );
    assert_eq!(gate.calls().iter().filter(|c| **c == "payout").count(), 1);
}

#[tokio::test]
async fn time_budget_ends_in_outcome_unknown() {
    let gate = Gate::start().await;
    gate.on_payout(server_error());
    let retry = RetryPolicy {
        max_elapsed: Duration::from_secs(5),
        ..fast_retry()
    };
    let (client, _clock, _store) = gate.client_with(retry);
    let error = client.payout(&payout("p-slowbudget")).await.unwrap_err();
    assert!(error.is_outcome_unknown(), "{error}");
    assert_eq!(
        gate.calls(),
        ["payout"],
        "the 10 s status wait does not fit 5 s"
    );
}

#[tokio::test]
async fn not_sent_after_retries_then_resubmitting_sends_the_same_id() {
    let script = ScriptedTransport::new();
    for _ in 0..2 {
        script.push(Err(TransportError::not_sent_connect(
            rp_payout::PAYOUT_PATH,
            "connection refused",
        )));
    }
    let retry = RetryPolicy {
        max_attempts: 2,
        ..fast_retry()
    };
    let (client, _clock, store) = scripted(&script, retry);

    let error = client.payout(&payout("p-ns")).await.unwrap_err();
    assert!(
        matches!(error, Error::NotSent { attempts: 2, .. }),
        "{error}"
    );
    assert_eq!(state_of(&store, "p-ns").await, PayoutState::NotRegistered);

    script.push(Ok(HttpResponse::new(
        200,
        rp_transport::Headers::new(),
        r#"{"status":"success","request_id":"r-5"}"#,
    )));
    let receipt = client.payout(&payout("p-ns")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    let sent = bodies(&script);
    assert_eq!(sent.len(), 3);
    assert!(sent.iter().all(|(_, b)| b == &sent[0].1));
}

#[tokio::test]
async fn unknown_outcome_resubmitted_asks_the_status_first() {
    let script = ScriptedTransport::new()
        .then_fail(TransportError::maybe_sent_timeout(
            rp_payout::PAYOUT_PATH,
            Duration::from_secs(1),
        ))
        .then_fail(TransportError::maybe_sent_timeout(
            rp_payout::STATUS_PATH,
            Duration::from_secs(1),
        ));
    let retry = RetryPolicy {
        max_status_checks: 1,
        ..fast_retry()
    };
    let (client, _clock, store) = scripted(&script, retry);
    assert!(
        client
            .payout(&payout("p-u"))
            .await
            .unwrap_err()
            .is_outcome_unknown()
    );
    assert_eq!(state_of(&store, "p-u").await, PayoutState::Unknown);

    script.push(json(200, &signed(&status_body("p-u", "success"))));
    let receipt = client.payout(&payout("p-u")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::FoundByStatus);
    assert_eq!(receipt.attempts, 0, "nothing resent");
    assert_eq!(receipt.state, PayoutState::Status(PaymentStatus::Success));
    let last = script.requests().last().unwrap().path.clone();
    assert_eq!(last, rp_payout::STATUS_PATH);
}

#[tokio::test]
async fn the_same_payout_twice_is_sent_once_and_different_details_are_refused() {
    let gate = Gate::start().await;
    gate.on_payout(accepted("p-twice", "r-6"));
    let (client, _clock, _store) = gate.client();

    client.payout(&payout("p-twice")).await.unwrap();
    let again = client.payout(&payout("p-twice")).await.unwrap();
    assert_eq!(again.acceptance, Acceptance::AlreadyRecorded);
    assert_eq!(again.state, PayoutState::Accepted);

    let different = rp_model::Payout::builder()
        .payment_id(pid("p-twice"))
        .phone(rp_model::Msisdn::parse("+7 701 123 45 67").unwrap())
        .amount(rp_model::Money::kzt(9999).unwrap())
        .customer_id(rp_model::CustomerId::new("customer-1").unwrap())
        .build()
        .unwrap();
    let error = client.payout(&different).await.unwrap_err();
    assert!(matches!(error, Error::PaymentIdConflict { .. }), "{error}");
    assert_eq!(gate.calls(), ["payout"]);
}

/// A transport that checks the payout is in the store before anything is sent.
#[derive(Debug)]
struct StoreChecking {
    store: Arc<MemoryStore>,
    inner: ScriptedTransport,
    seen_recorded: std::sync::Mutex<Vec<bool>>,
}

impl Transport for StoreChecking {
    fn post(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        let recorded = !self.store.all().is_empty();
        self.seen_recorded.lock().unwrap().push(recorded);
        self.inner.post(request)
    }
}

#[tokio::test]
async fn the_payout_is_recorded_before_the_first_byte_is_sent() {
    let store = Arc::new(MemoryStore::new());
    let transport = Arc::new(StoreChecking {
        store: store.clone(),
        inner: ScriptedTransport::new().then_respond(200, r#"{"status":"success"}"#),
        seen_recorded: std::sync::Mutex::new(Vec::new()),
    });
    let client = Client::builder(config())
        .transport(transport.clone())
        .store(store.clone())
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap();
    client.payout(&payout("p-first")).await.unwrap();
    assert_eq!(*transport.seen_recorded.lock().unwrap(), [true]);
}

#[tokio::test]
async fn minted_ids_come_from_the_generator_once_per_call() {
    let client = Client::builder(config())
        .transport(Arc::new(ScriptedTransport::new()))
        .payment_ids(Arc::new(rp_payout::SequentialPaymentIds::new("order")))
        .build()
        .unwrap();
    assert_eq!(client.new_payment_id().unwrap().as_str(), "order-1");
    assert_eq!(client.new_payment_id().unwrap().as_str(), "order-2");
}

/// A transport that lets a "callback" (a direct store change) land while the payout request
/// is in flight, then plays the script.
#[derive(Debug)]
struct CallbackMidFlight {
    store: Arc<MemoryStore>,
    inner: ScriptedTransport,
}

impl Transport for CallbackMidFlight {
    fn post(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            if request.path == rp_payout::PAYOUT_PATH {
                let mut record = self.store.all().pop().unwrap();
                let version = record.version;
                record.state = PayoutState::Status(PaymentStatus::Success);
                let event = crate::gate::test_event(&record);
                let updated = self.store.update(version, record, event).await.unwrap();
                assert!(matches!(updated, rp_payout::Updated::Done(_)));
            }
            self.inner.post(request).await
        })
    }
}

#[tokio::test]
async fn a_callback_during_the_request_is_never_overwritten() {
    for (answer, expect_unknown) in [
        (
            Ok(HttpResponse::new(
                200,
                rp_transport::Headers::new(),
                r#"{"status":"success","request_id":"r-7"}"#,
            )),
            false,
        ),
        (
            Err(TransportError::maybe_sent_timeout(
                rp_payout::PAYOUT_PATH,
                Duration::from_secs(1),
            )),
            true,
        ),
    ] {
        let store = Arc::new(MemoryStore::new());
        let inner = ScriptedTransport::new();
        inner.push(answer);
        let client = Client::builder(config().with_retry(RetryPolicy {
            max_status_checks: 0,
            ..fast_retry()
        }))
        .transport(Arc::new(CallbackMidFlight {
            store: store.clone(),
            inner,
        }))
        .store(store.clone())
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap();
        let result = client.payout(&payout("p-mid")).await;
        assert_eq!(result.is_err(), expect_unknown, "{result:?}");
        assert_eq!(
            state_of(&store, "p-mid").await,
            PayoutState::Status(PaymentStatus::Success),
            "the callback's final status stays"
        );
    }
}

#[tokio::test]
async fn an_unsigned_status_does_not_settle_a_payout_by_default() {
    for accept in [false, true] {
        let gate = Gate::start().await;
        gate.on_payout(server_error())
            .on_status(Reply::Json(200, status_body("p-unsigned", "processing")));
        let (client, _clock, store) = gate.client_from(
            config()
                .with_retry(RetryPolicy {
                    max_status_checks: 1,
                    ..fast_retry()
                })
                .with_unsigned_status(accept),
        );
        let result = client.payout(&payout("p-unsigned")).await;
        if accept {
            assert_eq!(result.unwrap().acceptance, Acceptance::FoundByStatus);
            assert_eq!(
                state_of(&store, "p-unsigned").await,
                PayoutState::Status(PaymentStatus::Processing)
            );
        } else {
            let error = result.unwrap_err();
            assert!(error.is_outcome_unknown(), "{error}");
            assert!(
                error
                    .to_string()
                    .contains("unsigned status response; not applied"),
                "{error}"
            );
            assert_eq!(state_of(&store, "p-unsigned").await, PayoutState::Unknown);
        }
        assert_eq!(gate.calls(), ["payout", "status"], "never resent");
    }
}

/// A transport that plays a callback landing while the payout request is in flight: the
/// record moves to `status` (with the request ID the answer will carry), then the script.
#[derive(Debug)]
struct StatusMidFlight {
    store: Arc<MemoryStore>,
    status: PaymentStatus,
    inner: ScriptedTransport,
}

impl Transport for StatusMidFlight {
    fn post(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        Box::pin(async move {
            if request.path == rp_payout::PAYOUT_PATH {
                let mut record = self.store.all().pop().unwrap();
                let version = record.version;
                record.state = PayoutState::Status(self.status.clone());
                record.maybe_sent = true; // as a callback applied by the client sets it
                record.request_id = Some("r-mid".to_owned());
                let event = crate::gate::test_event(&record);
                self.store.update(version, record, event).await.unwrap();
            }
            self.inner.post(request).await
        })
    }
}

fn mid_flight_client(status: PaymentStatus, store: &Arc<MemoryStore>) -> Client {
    let inner = ScriptedTransport::new().then_respond(
        200,
        r#"{"status":"success","request_id":"r-mid","payment_id":"p-adv"}"#,
    );
    Client::builder(config())
        .transport(Arc::new(StatusMidFlight {
            store: store.clone(),
            status,
            inner,
        }))
        .store(store.clone())
        .clock(Arc::new(ManualClock::new()))
        .build()
        .unwrap()
}

#[tokio::test]
async fn acceptance_after_a_more_advanced_callback_writes_nothing() {
    let store = Arc::new(MemoryStore::new());
    let client = mid_flight_client(PaymentStatus::Processing, &store);
    let receipt = client.payout(&payout("p-adv")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(
        receipt.state,
        PayoutState::Status(PaymentStatus::Processing)
    );
    let record = store.get(&pid("p-adv")).await.unwrap().unwrap();
    assert_eq!(
        record.version, 2,
        "the attempt log and the callback wrote; the acceptance wrote nothing"
    );
}

#[tokio::test]
async fn acceptance_of_a_resend_replaces_an_error_of_the_earlier_request() {
    let script = ScriptedTransport::new()
        .then_respond(
            200,
            r#"{"status":"success","request_id":"r-first","payment_id":"p-re"}"#,
        )
        .then_respond(
            200,
            r#"{"status":"success","request_id":"r-second","payment_id":"p-re"}"#,
        );
    let (client, _clock, store) = scripted(&script, fast_retry());
    client.payout(&payout("p-re")).await.unwrap();
    set_state(&store, "p-re", PayoutState::Status(PaymentStatus::Error)).await;

    let receipt = client.payout(&payout("p-re")).await.unwrap();
    assert_eq!(receipt.acceptance, Acceptance::Accepted);
    assert_eq!(receipt.state, PayoutState::Accepted);
    assert_eq!(
        receipt.request_id.as_deref(),
        Some("r-second"),
        "the record follows the newest request"
    );
}
