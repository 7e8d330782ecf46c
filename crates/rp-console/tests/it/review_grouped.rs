//! Adversarial review of 1d90d4e (the sender claims as soon as it is woken, no 20 ms gather;
//! claims and attempts share the ledger writer's group commits). Ledger work is counted with
//! `Ledger::stats()` (claims and attempts are writes of the groups now), not timed.

use std::time::{Duration, Instant};

use crate::api::{PAY_KEY, call, payout};

/// Ledger writes (payouts' writes, claims, attempts) committed so far.
fn writes(server: &crate::Server) -> u64 {
    server.desk.ledger().stats().writes
}

/// Promise (held): an idle `rp serve` whose endpoint fails does not claim in a loop: with
/// every payout's first event waiting for its retry and the later ones blocked behind it,
/// the sender claims once per round (`webhooks_every`, 1 s), not continuously.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_serve_with_a_failing_endpoint_claims_once_a_round() {
    let (server, receiver, _endpoint) = crate::webhooks::serve_with_receiver(true).await;
    for n in 0..3 {
        let (status, _, body) = call(
            &server,
            "POST",
            "/api/v1/payouts?wait=15",
            Some(PAY_KEY),
            Some(payout(&format!("idle-{n}"), "100")),
        )
        .await;
        assert!(status.is_success(), "{body}");
    }
    // Every first event refused once (its retry in 5 s); the later events wait behind them.
    let deadline = Instant::now() + Duration::from_secs(10);
    while receiver.got.lock().unwrap().len() < 3 {
        assert!(Instant::now() < deadline, "not every payout was attempted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let before = writes(&server);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let idle = writes(&server) - before;
    assert!(
        idle <= 8,
        "{idle} ledger writes in 3 idle seconds with a failing endpoint: the sender claims in a loop"
    );
    server.stop().await;
}

/// A callback that changes nothing (here forged, refused for its signature; the same for
/// duplicates and stale redeliveries) does not wake the webhook sender: anyone who can reach
/// the callback port (open to the internet) would otherwise turn each request into a claim,
/// a write on the ledger's single writer thread. Counted in ledger writes, not timed: only
/// the sender's rounds (one claim a second) may write meanwhile.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_callbacks_do_not_each_cost_a_webhook_claim() {
    let (server, _receiver, _endpoint) = crate::webhooks::serve_with_receiver(true).await;
    // Let the sender's first rounds pass.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let callback = server.url(rp_console::DEFAULT_CALLBACK_PATH);
    let forged = serde_json::json!({
        "project_id": crate::PROJECT,
        "payment": {"id": "nobody", "status": "success", "sum": {"amount": 100, "currency": "KZT"}},
        "signature": "Zm9yZ2Vk"
    })
    .to_string();
    let started = Instant::now();
    let before = writes(&server);
    const CALLBACKS: u64 = 200;
    for _ in 0..CALLBACKS {
        let answer = server
            .http
            .post(&callback)
            .header("content-type", "application/json")
            .body(forged.clone())
            .send()
            .await
            .unwrap();
        assert!(
            !answer.status().is_success(),
            "a forged callback was accepted"
        );
    }
    // Let the last wake-up be served.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let claims = writes(&server) - before;
    let took = started.elapsed();
    // The sender's rounds: one claim a second, and one more begun before.
    let rounds = took.as_secs() + 2;
    assert!(
        claims <= rounds,
        "{CALLBACKS} forged callbacks (nothing recorded) cost {claims} ledger writes in {took:?}: \
         a webhook claim each"
    );
    server.stop().await;
}
