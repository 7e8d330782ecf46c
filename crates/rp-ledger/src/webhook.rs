//! Webhooks, as a transactional outbox: the [`WebhookStore`] trait.
//!
//! A merchant's endpoints are registered per project. Every change of a payout's state
//! (an event whose state differs from the one before, and the first event, which records
//! the payout) gets one **delivery** per endpoint of its project, written by a trigger in the
//! ledger **in the same transaction as the change**: no change is committed without its
//! deliveries, and no delivery exists for a change that was rolled back. Workers (one or
//! many instances) claim due deliveries with leases, send them, and record each attempt; a
//! delivery is done when the endpoint answered 2xx, or given up after its retries ran out.
//!
//! Deliveries of one payout to one endpoint go out in the order of its events: a delivery is
//! not claimed while an earlier one of the same payout to the same endpoint is still
//! pending. A disabled endpoint keeps receiving deliveries in the ledger (nothing is lost);
//! they are sent once it is enabled again.

use std::fmt;
use std::time::{Duration, SystemTime};

use rp_model::PaymentId;
use rp_payout::{Error, PayoutEvent, PayoutRecord};
use rp_transport::BoxFuture;

/// How many attempts of one delivery the log keeps (the oldest go first).
pub const MAX_LOGGED_ATTEMPTS: u32 = 50;

/// A merchant's endpoint: where a project's payout events are sent.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WebhookEndpoint {
    /// Its number, never reused.
    pub id: i64,
    /// Where events are sent (`https://…`, or `http://` to a loopback address).
    pub url: String,
    /// The signing secret (`whsec_…`, Standard Webhooks). Shown once, when the endpoint is
    /// added; never in `Debug`, pages or logs.
    pub secret: String,
    /// When it was added.
    pub created_at: SystemTime,
    /// When it was disabled (after persistent failure, or by hand); `None` while enabled.
    pub disabled_at: Option<SystemTime>,
    /// Why it was disabled.
    pub disabled_reason: Option<String>,
    /// Deliveries not yet done (pending or being sent), at the time it was read.
    pub pending: u64,
    /// Deliveries given up, at the time it was read.
    pub failed: u64,
}

impl WebhookEndpoint {
    /// Whether events are being sent to it.
    pub fn enabled(&self) -> bool {
        self.disabled_at.is_none()
    }
}

impl fmt::Debug for WebhookEndpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the secret.
        f.debug_struct("WebhookEndpoint")
            .field("id", &self.id)
            .field("url", &self.url)
            .field("disabled_at", &self.disabled_at)
            .field("disabled_reason", &self.disabled_reason)
            .field("pending", &self.pending)
            .field("failed", &self.failed)
            .finish_non_exhaustive()
    }
}

/// Which delivery: an endpoint and one event of one payout.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DeliveryKey {
    /// The endpoint's number.
    pub endpoint: i64,
    /// The payout.
    pub payment_id: PaymentId,
    /// The payout's version the event produced (0: recorded).
    pub version: u64,
}

/// A delivery claimed for sending: what to send, and where.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct ClaimedDelivery {
    /// Which delivery.
    pub key: DeliveryKey,
    /// The endpoint (with its secret, to sign).
    pub endpoint: WebhookEndpoint,
    /// The payout as it stands now (its request never changes; its state may have moved on
    /// since the event).
    pub payout: PayoutRecord,
    /// The event this delivery announces.
    pub event: PayoutEvent,
    /// Attempts made so far (all of them, for the log's numbering).
    pub attempts: u32,
    /// Failed attempts since it was created or last replayed (for the retry schedule).
    pub failures: u32,
}

/// One attempt to deliver, as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryAttempt {
    /// When it was made.
    pub at: SystemTime,
    /// The endpoint's HTTP status, when it answered.
    pub status: Option<u16>,
    /// What went wrong (no answer, a refusal, a timeout), when it failed.
    pub error: Option<String>,
    /// How long it took.
    pub took: Duration,
}

impl DeliveryAttempt {
    /// An attempt made at `at` that took `took`: answered `status`, or failed with `error`.
    pub fn new(at: SystemTime, took: Duration, status: Option<u16>, error: Option<String>) -> Self {
        DeliveryAttempt {
            at,
            status,
            error,
            took,
        }
    }
}

/// What happens to a delivery after an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AfterAttempt {
    /// Delivered: done.
    Delivered,
    /// Failed: try again after this long (on the ledger's clock).
    RetryIn(Duration),
    /// Failed for the last time: the delivery is given up and its endpoint disabled, with
    /// this reason (shown as needing attention).
    GiveUp(String),
}

/// An attempt to record, with the delivery it belongs to and what follows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AttemptRecord {
    /// Which delivery.
    pub key: DeliveryKey,
    /// The attempt.
    pub attempt: DeliveryAttempt,
    /// What follows it.
    pub after: AfterAttempt,
}

/// Where a delivery stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DeliveryState {
    /// Waiting for its next attempt (or for its endpoint to be enabled).
    Pending,
    /// The endpoint answered 2xx.
    Delivered,
    /// Its retries ran out.
    Failed,
}

impl DeliveryState {
    /// `pending`, `delivered` or `failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "pending",
            DeliveryState::Delivered => "delivered",
            DeliveryState::Failed => "failed",
        }
    }
}

/// A delivery and its log, as pages and the API show it.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryInfo {
    /// Which delivery.
    pub key: DeliveryKey,
    /// The endpoint's URL.
    pub url: String,
    /// Where it stands.
    pub state: DeliveryState,
    /// When its change was committed.
    pub created_at: SystemTime,
    /// When it is tried next (pending only). While a sender holds it: the end of its lease,
    /// when it is sent again if that sender's attempt is lost. SQLite keeps none for one set
    /// aside while its endpoint is disabled (enabling the endpoint makes it due).
    pub next_attempt_at: Option<SystemTime>,
    /// When the endpoint took it.
    pub delivered_at: Option<SystemTime>,
    /// Every attempt, oldest first (at most [`MAX_LOGGED_ATTEMPTS`]).
    pub attempts: Vec<DeliveryAttempt>,
}

/// The webhook endpoints, deliveries and their logs of one project.
pub trait WebhookStore: Send + Sync + fmt::Debug {
    /// Registers an endpoint with its signing secret; every later change of the project's
    /// payouts is delivered to it.
    fn add_endpoint<'a>(
        &'a self,
        url: &'a str,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<WebhookEndpoint, Error>>;

    /// The project's endpoints, with their counts of pending and failed deliveries.
    fn endpoints(&self) -> BoxFuture<'_, Result<Vec<WebhookEndpoint>, Error>>;

    /// Removes an endpoint, its deliveries and their logs; `false` when there was none.
    fn remove_endpoint(&self, id: i64) -> BoxFuture<'_, Result<bool, Error>>;

    /// Disables an endpoint with a reason (`Some`), or enables it again (`None`): then its
    /// pending deliveries are due at once, their retry schedule started anew. `false` when
    /// there is no such endpoint.
    fn set_disabled<'a>(
        &'a self,
        id: i64,
        reason: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// Claims up to `limit` due deliveries of enabled endpoints for `owner` until `lease` from
    /// now (the ledger's clock), oldest first, none whose earlier event of the same payout to
    /// the same endpoint is still pending. A claim another owner holds is taken only once its
    /// lease ran out: a claimed delivery is next due then (its recorded attempt sets the time
    /// that follows it).
    fn claim_due<'a>(
        &'a self,
        owner: &'a str,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ClaimedDelivery>, Error>>;

    /// Records attempts of deliveries `owner` holds and what follows each (a compare-and-set
    /// on each claim), all in one transaction (one commit for many sends): for each, `false`,
    /// and nothing recorded for it, when its claim is no longer `owner`'s.
    fn record_attempts<'a>(
        &'a self,
        owner: &'a str,
        attempts: &'a [AttemptRecord],
    ) -> BoxFuture<'a, Result<Vec<bool>, Error>>;

    /// [`WebhookStore::record_attempts`] of one attempt.
    fn record_attempt<'a>(
        &'a self,
        key: &'a DeliveryKey,
        owner: &'a str,
        attempt: &'a DeliveryAttempt,
        after: &'a AfterAttempt,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let one = [AttemptRecord {
                key: key.clone(),
                attempt: attempt.clone(),
                after: after.clone(),
            }];
            let recorded = self.record_attempts(owner, &one).await?;
            Ok(recorded.first().copied().unwrap_or(false))
        })
    }

    /// The deliveries of a payout's events, with their logs, in the order of the events.
    fn deliveries<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Vec<DeliveryInfo>, Error>>;

    /// Sends a payout's events again: each of its state changes and attention marks (only
    /// `version`, when given; a mark: one that made deliveries, or the payout's attention now)
    /// to `endpoint` (every endpoint of the project when `None`) becomes a pending delivery
    /// due at once, whether it was delivered, given up or never made (an endpoint added after
    /// the change). How many deliveries are now pending.
    fn replay<'a>(
        &'a self,
        payment_id: &'a PaymentId,
        version: Option<u64>,
        endpoint: Option<i64>,
    ) -> BoxFuture<'a, Result<u64, Error>>;
}
