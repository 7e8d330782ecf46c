//! Webhooks: every change of a payout's state pushed to the merchant's endpoints, signed as
//! the Standard Webhooks specification says.
//!
//! The ledger writes one delivery per endpoint in the same transaction as the change
//! ([`rp_ledger::WebhookStore`], a transactional outbox), so a change is never committed
//! without its deliveries, whatever happens to the process after. The sender (run by
//! [`serve`](crate::serve)) claims due
//! deliveries with a lease (several instances on one PostgreSQL ledger: each delivery is sent
//! by one at a time), sends them (`POST`, headers `webhook-id`, `webhook-timestamp`,
//! `webhook-signature`), and records each attempt: 2xx is delivered; anything else is tried
//! again on [`RETRY_SCHEDULE`] for more than 3 days, then given up and the endpoint disabled
//! (needs attention; enabling it sends what waited). Delivery is at least once: a process
//! killed after the endpoint took a message but before recording it sends it again, with the
//! same `webhook-id`.
//!
//! - [`message`]: secret, message ID, body, signature.
//! - [`policy`]: retry schedule, what counts as delivered, which URLs are accepted.

pub mod message;
pub mod policy;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use rp_ledger::{AfterAttempt, AttemptRecord, ClaimedDelivery, DeliveryAttempt};
use tokio::sync::{Semaphore, mpsc, watch};

pub use message::{SECRET_PREFIX, new_secret, signature};
pub use policy::{RETRY_SCHEDULE, check_url, shown_url};

use crate::Desk;

/// Deliveries in flight at once, at most, per process.
pub const MAX_IN_FLIGHT: usize = 128;

/// Deliveries claimed by one look, at most.
const CLAIM_BATCH: usize = 128;

/// The HTTP client that sends deliveries: no redirects followed, `timeout` per attempt.
///
/// # Errors
///
/// The TLS roots could not be loaded.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(concat!("rp-webhooks/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the webhook client: {e}"))
}

/// Sends due deliveries until `stopped`: looks every `every`, and at once when this process
/// recorded or changed a payout ([`rp_ledger::Ledger::payout_changes`]) or
/// [`Desk::wake_webhooks`] is called, claims up to [`MAX_IN_FLIGHT`] with a lease of three
/// timeouts, sends each, and records the attempts that finished together (one ledger
/// transaction for many sends). At shutdown it stops claiming, lets the sends in flight
/// finish and records them (a send cut off keeps its claim until the lease ends; then any
/// instance sends it again).
pub(crate) async fn sender(
    desk: Desk,
    every: Duration,
    http: reqwest::Client,
    timeout: Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let owner = owner_token();
    let lease = timeout * 3 + Duration::from_secs(5);
    let slots = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let (finished, to_record) = mpsc::channel::<Finished>(MAX_IN_FLIGHT);
    let recorder = tokio::spawn(recorder(desk.clone(), owner.clone(), to_record));
    let mut sends = tokio::task::JoinSet::new();
    loop {
        while sends.try_join_next().is_some() {}
        let free = slots.available_permits().min(CLAIM_BATCH);
        let claimed = if free == 0 {
            Vec::new()
        } else {
            match desk.webhooks().claim_due(&owner, lease, free).await {
                Ok(claimed) => claimed,
                Err(error) => {
                    tracing::warn!(%error, "webhooks: could not claim deliveries");
                    Vec::new()
                }
            }
        };
        let full = claimed.len() == free && free > 0;
        for delivery in claimed {
            let Ok(permit) = Arc::clone(&slots).acquire_owned().await else {
                break;
            };
            let (project, http, finished) =
                (desk.client().project_id(), http.clone(), finished.clone());
            sends.spawn(async move {
                let done = send_one(project, &http, delivery).await;
                let _ = finished.send(done).await;
                drop(permit);
            });
        }
        if full {
            // More may be due: look again at once (unless stopping).
            if *stopped.borrow() {
                break;
            }
            continue;
        }
        // Woken by a change (a claim shares the ledger's next group commit with the changes
        // queued beside it, so a burst of them costs one transaction, not one each).
        let wake = desk.webhook_wakeup();
        let go_on = tokio::select! {
            () = tokio::time::sleep(every) => true,
            () = wake.notified() => true,
            _ = stopped.wait_for(|stop| *stop) => false,
        };
        if !go_on || *stopped.borrow() {
            break;
        }
    }
    while sends.join_next().await.is_some() {}
    drop(finished);
    let _ = recorder.await;
}

/// A send that finished: the claimed delivery and what to record.
struct Finished {
    delivery: ClaimedDelivery,
    record: AttemptRecord,
}

/// Records finished sends as they come, all those waiting in one transaction.
async fn recorder(desk: Desk, owner: String, mut to_record: mpsc::Receiver<Finished>) {
    let mut batch = Vec::new();
    while to_record.recv_many(&mut batch, MAX_IN_FLIGHT).await > 0 {
        let records: Vec<AttemptRecord> = batch.iter().map(|f| f.record.clone()).collect();
        match desk.webhooks().record_attempts(&owner, &records).await {
            Ok(recorded) => {
                for (done, recorded) in batch.iter().zip(recorded.iter().copied()) {
                    report(&desk, done, recorded);
                }
                // A delivery done lets the next change of its payout go (they go in order):
                // the sender looks at once rather than at its next round.
                let next = batch.iter().zip(recorded).any(|(done, recorded)| {
                    recorded && done.record.after == AfterAttempt::Delivered
                });
                if next {
                    desk.wake_webhooks();
                }
            }
            Err(error) => {
                tracing::warn!(%error, attempts = batch.len(), "webhooks: could not record attempts; they are sent again");
            }
        }
        batch.clear();
    }
}

/// Metrics and logs of one recorded send.
fn report(desk: &Desk, done: &Finished, recorded: bool) {
    let delivery = &done.delivery;
    let after = &done.record.after;
    if !recorded {
        tracing::warn!(
            payment_id = %delivery.key.payment_id,
            "webhooks: the claim ran out (or the delivery was replayed or its endpoint enabled) before the attempt was recorded; it is sent again"
        );
        return;
    }
    desk.metrics().webhook(match after {
        AfterAttempt::Delivered => "delivered",
        AfterAttempt::RetryIn(_) => "failed",
        AfterAttempt::GiveUp(_) => "given_up",
    });
    if let AfterAttempt::GiveUp(reason) = after {
        tracing::warn!(endpoint = delivery.endpoint.id, %reason, "webhooks: endpoint disabled");
    } else if let Some(error) = &done.record.attempt.error {
        tracing::info!(
            endpoint = delivery.endpoint.id,
            payment_id = %delivery.key.payment_id,
            version = delivery.key.version,
            %error,
            "webhooks: delivery failed; tried again later"
        );
    }
}

/// Who holds claims: this process, for the webhook sender.
fn owner_token() -> String {
    let mut random = [0u8; 8];
    let _ = getrandom::fill(&mut random);
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("webhooks/{}/{hex}", std::process::id())
}

/// One attempt of one delivery: what to record.
async fn send_one(
    project: rp_model::ProjectId,
    http: &reqwest::Client,
    delivery: ClaimedDelivery,
) -> Finished {
    let id = message::message_id(
        project,
        delivery.payout.payment_id.as_str(),
        delivery.key.version,
    );
    let body = message::body(&delivery);
    let at = SystemTime::now();
    let timestamp = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    let started = Instant::now();
    let outcome = match signature(&delivery.endpoint.secret, &id, timestamp, &body) {
        Ok(signature) => http
            .post(&delivery.endpoint.url)
            .header("content-type", "application/json")
            .header("webhook-id", &id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .body(body)
            .send()
            .await
            .map(|response| response.status().as_u16())
            .map_err(|e| describe(&e)),
        Err(reason) => Err(reason),
    };
    let took = started.elapsed();
    let (attempt, after) = match outcome {
        Ok(status) if policy::delivered(status) => (
            DeliveryAttempt::new(at, took, Some(status), None),
            AfterAttempt::Delivered,
        ),
        Ok(status) => {
            let error = format!("HTTP {status}");
            let after = policy::after_failure(delivery.failures, &error);
            (
                DeliveryAttempt::new(at, took, Some(status), Some(error)),
                after,
            )
        }
        Err(error) => {
            let after = policy::after_failure(delivery.failures, &error);
            (DeliveryAttempt::new(at, took, None, Some(error)), after)
        }
    };
    let record = AttemptRecord {
        key: delivery.key.clone(),
        attempt,
        after,
    };
    Finished { delivery, record }
}

/// A send error in words, without the URL (it may carry a token of the merchant's).
fn describe(error: &reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else {
        "failed"
    };
    let mut text = kind.to_owned();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    text
}
