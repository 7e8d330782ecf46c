//! Adversarial review (s3) of the fixes from review s2 and of "Webhooks: the sender is woken
//! by every change": each test here failed when it was written, and says what it found.

use std::time::Duration;

use reqwest::StatusCode;

use crate::api::post_payout;

/// "The sender is woken by every change rp serve makes" (d31fad2). Found: the console's
/// "Ask the status now" (`POST /payments/{id}/check`, `Client::check_now`) and "Send again"
/// (`POST /payments/{id}/resend`, `Client::resume`) change the ledger without waking the
/// sender, so the webhook of what they found waits for the sender's next look (here an hour;
/// 1 s by default). A payout whose callback was lost (the simulator's `0016`: `success`,
/// no callback) is found `success` by an operator's check, and the merchant is not told.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_s3_a_consoles_status_check_is_pushed_at_once() {
    let (server, receiver) = crate::webhooks::hourly_sender_with_receiver().await;
    let single = serde_json::json!({"payment_id": "s3-check", "phone": "+7 701 125 0016",
                                    "amount": "300", "customer": {"id": "c"}});
    let (status, _, body) = post_payout(&server, single).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    receiver
        .wait_for("s3-check", "accepted", Duration::from_secs(10))
        .await;
    // The simulator settles it (success) after its processing delay; no callback comes.
    tokio::time::sleep(Duration::from_millis(800)).await;
    let anna = server.login(crate::PAY).await;
    let answer = server.post(&anna, "/payments/s3-check/check", &[]).await;
    assert_eq!(answer.status(), StatusCode::SEE_OTHER);
    assert!(
        crate::location(&answer).ends_with("done=checked"),
        "{}",
        crate::location(&answer)
    );
    // The ledger has it, and its delivery is made and due: only the sender's look is missing.
    let id = rp_model::PaymentId::new("s3-check").unwrap();
    let record = server
        .desk
        .client()
        .store()
        .get(&id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(record.state.label(), "success", "{record:?}");
    let deliveries = server.desk.webhooks().deliveries(&id).await.unwrap();
    assert!(
        deliveries
            .iter()
            .any(|d| d.state == rp_ledger::DeliveryState::Pending && d.delivered_at.is_none()),
        "{deliveries:#?}"
    );
    receiver
        .wait_for("s3-check", "success", Duration::from_secs(5))
        .await;
    server.stop().await;
}

/// "The sender is woken by every change rp serve makes" (d31fad2). Found: the callback
/// endpoint wakes the sender only for `Applied` and `Reversed` outcomes, but a callback that
/// marks the payout as needing attention (`partially reversed` after `success`, simulator
/// `0017`; a contradicting final status; a callback about another payment) also makes
/// deliveries (schema 8), and no one wakes the sender for them: the `payout.needs_attention`
/// webhook (half the money came back) waits for the sender's next look (here an hour).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_s3_a_needs_attention_callback_is_pushed_at_once() {
    let (server, receiver) = crate::webhooks::hourly_sender_with_receiver().await;
    let body = serde_json::json!({"payment_id": "s3-half-back", "phone": "+7 701 123 0017",
                                  "amount_minor": 1000, "customer": {"id": "c"}});
    let (status, _, answer) = post_payout(&server, body).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{answer}");
    receiver
        .wait_for("s3-half-back", "success", Duration::from_secs(10))
        .await;
    let id = rp_model::PaymentId::new("s3-half-back").unwrap();
    server.marked_for_attention("s3-half-back").await;
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    loop {
        let pushed: Vec<String> = receiver
            .accepted_for("s3-half-back")
            .iter()
            .map(|r| r.body["type"].as_str().unwrap_or_default().to_owned())
            .collect();
        if pushed.iter().any(|t| t == "payout.needs_attention") {
            break;
        }
        let deliveries = server.desk.webhooks().deliveries(&id).await.unwrap();
        assert!(
            std::time::Instant::now() < deadline,
            "the needs-attention webhook is made but not pushed within 5 s (the sender looks \
             hourly): pushed {pushed:?}, deliveries {deliveries:#?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    server.stop().await;
}
