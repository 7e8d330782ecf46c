//! Every change the client makes to a payout comes with its event, in the same step: where it
//! came from, the state before and after, the code, and the raw signed body of callbacks and
//! status responses (shown masked).

use rp_model::PaymentStatus;
use rp_payout::{EventSource, PayoutState, PayoutStore};
use rp_sign::{Signer, testing};
use serde_json::json;

use crate::gate::{
    Gate, accepted, fast_retry, key, payout, pid, server_error, status_body, status_reply,
};

#[tokio::test]
async fn a_payout_its_answer_and_its_callback_each_leave_an_event() {
    let gate = Gate::start().await;
    gate.on_payout(accepted("p-h", "r-1"));
    let (client, _clock, store) = gate.client();
    client.payout(&payout("p-h")).await.unwrap();
    let body = testing::sign_callback(
        &json!({
            "project_id": crate::gate::PROJECT,
            "payment": {"id": "p-h", "type": "payout", "status": "success",
                        "sum": {"amount": 150_000, "currency": "KZT"}},
            "account": {"number": "77011234567"},
            "customer": {"id": "customer-1"},
            "operation": {"id": 1, "request_id": "r-1", "status": "success", "code": "0", "message": "Success"}
        }),
        &key(),
    )
    .unwrap();
    assert!(client.handle_callback(&body).await.is_acknowledged());

    let events = store.events(&pid("p-h")).await.unwrap();
    let trail: Vec<(EventSource, PayoutState)> = events
        .iter()
        .map(|e| (e.source.clone(), e.state.clone()))
        .collect();
    assert_eq!(
        trail,
        [
            (EventSource::Call, PayoutState::Created),
            // The attempt log: counted before it was sent.
            (EventSource::Call, PayoutState::Created),
            (EventSource::Answer, PayoutState::Accepted),
            (
                EventSource::Callback,
                PayoutState::Status(PaymentStatus::Success)
            ),
        ]
    );
    assert_eq!(
        events[1].note.as_deref(),
        Some("attempt 1: sending the payout request")
    );
    let callback = &events[3];
    assert_eq!(callback.previous, Some(PayoutState::Accepted));
    assert_eq!(callback.code.as_ref().map(|c| c.as_str()), Some("0"));
    assert_eq!(
        callback.raw.as_deref(),
        Some(String::from_utf8_lossy(&body).as_ref())
    );
    let shown = callback.raw_masked().unwrap();
    assert!(
        !shown.contains("77011234567") && shown.contains("7701***4567"),
        "{shown}"
    );
    assert!(!format!("{callback:?}").contains("77011234567"));
    let record = store.get(&pid("p-h")).await.unwrap().unwrap();
    assert_eq!(
        record.version + 1,
        events.len() as u64,
        "one event per version"
    );
}

#[tokio::test]
async fn a_status_found_after_a_lost_answer_keeps_the_signed_response() {
    let gate = Gate::start().await;
    gate.on_payout(server_error())
        .on_status(status_reply("p-s", "processing"));
    let (client, _clock, store) = gate.client_with(fast_retry());
    client.payout(&payout("p-s")).await.unwrap();
    let events = store.events(&pid("p-s")).await.unwrap();
    let last = events.last().unwrap();
    assert_eq!(last.source, EventSource::Status);
    assert_eq!(last.state, PayoutState::Status(PaymentStatus::Processing));
    let raw: serde_json::Value = serde_json::from_str(last.raw.as_deref().unwrap()).unwrap();
    assert!(
        raw["signature"].is_string(),
        "the signed response is kept: {raw}"
    );
    // As received, byte for byte (what the signature covers), not as re-serialised.
    let served = Signer::new(&key())
        .sign_callback(&status_body("p-s", "processing"))
        .unwrap();
    assert_eq!(
        last.raw.as_deref(),
        Some(serde_json::to_string(&served).unwrap().as_str())
    );
}
