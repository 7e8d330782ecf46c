//! Defect 4 (review): a store failure after the payout may have been sent came back as
//! `Error::Store`, the same error as "nothing was sent", so a merchant retrying with a new
//! payment ID paid twice. Now it is `Error::RecordFailed`, which carries what the platform said.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rp_model::PaymentId;
use rp_payout::{
    Error, Inserted, MemoryStore, PayoutEvent, PayoutQuery, PayoutRecord, PayoutStore, StateCount,
    Updated,
};
use rp_transport::BoxFuture;

use crate::gate::{Gate, accepted, envelope, fast_retry, payout, server_error, status_reply};

/// A [`MemoryStore`] whose updates fail once `broken` is set, after `spared` more updates
/// (inserts and reads still work).
#[derive(Debug, Default)]
struct BreakingStore {
    inner: MemoryStore,
    broken: AtomicBool,
    spared: std::sync::atomic::AtomicU32,
}

impl PayoutStore for BreakingStore {
    fn insert(
        &self,
        record: PayoutRecord,
        event: PayoutEvent,
        limits: rp_model::Limits,
    ) -> BoxFuture<'_, Result<Inserted, Error>> {
        self.inner.insert(record, event, limits)
    }

    fn get<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Option<PayoutRecord>, Error>> {
        self.inner.get(payment_id)
    }

    fn update(
        &self,
        version: u64,
        record: PayoutRecord,
        event: PayoutEvent,
    ) -> BoxFuture<'_, Result<Updated, Error>> {
        let spared = self
            .spared
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
            .is_ok();
        if self.broken.load(Ordering::SeqCst) && !spared {
            return Box::pin(std::future::ready(Err(Error::store(
                "update payout",
                "disk full",
            ))));
        }
        self.inner.update(version, record, event)
    }

    fn unsettled(
        &self,
        after: Option<PaymentId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<PayoutRecord>, Error>> {
        self.inner.unsettled(after, limit)
    }

    fn events<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Vec<PayoutEvent>, Error>> {
        self.inner.events(payment_id)
    }

    fn list<'a>(
        &'a self,
        query: &'a PayoutQuery,
    ) -> BoxFuture<'a, Result<Vec<PayoutRecord>, Error>> {
        self.inner.list(query)
    }

    fn counts(&self) -> BoxFuture<'_, Result<StateCount, Error>> {
        self.inner.counts()
    }

    fn usage(&self, currency: rp_model::Currency) -> BoxFuture<'_, Result<rp_model::Usage, Error>> {
        self.inner.usage(currency)
    }
}

fn client(gate: &Gate, store: Arc<BreakingStore>) -> rp_payout::Client {
    gate.client_builder(crate::gate::config().with_retry(fast_retry()))
        .store(store)
        .build()
        .unwrap()
}

#[tokio::test]
async fn a_store_failure_after_acceptance_says_the_payout_may_exist() {
    let gate = Gate::start().await;
    gate.on_payout(accepted("p-disk", "r-1"));
    let store = Arc::new(BreakingStore::default());
    store.broken.store(true, Ordering::SeqCst);
    store.spared.store(1, Ordering::SeqCst); // the attempt log is written, then the disk fills
    let error = client(&gate, store)
        .payout(&payout("p-disk"))
        .await
        .unwrap_err();
    let Error::RecordFailed {
        platform, reason, ..
    } = &error
    else {
        panic!("{error}");
    };
    assert_eq!(platform, "the platform accepted it");
    assert!(reason.contains("disk full"), "{reason}");
    assert!(error.may_have_reached_platform());
    assert!(!error.is_rejected());
    assert!(error.to_string().contains("do NOT pay it again"), "{error}");
}

#[tokio::test]
async fn a_store_failure_after_a_status_or_a_refusal_is_never_a_plain_store_error() {
    // Maybe sent, then found by the status.
    let gate = Gate::start().await;
    gate.on_payout(server_error())
        .on_status(status_reply("p-found", "success"));
    let store = Arc::new(BreakingStore::default());
    store.broken.store(true, Ordering::SeqCst);
    store.spared.store(1, Ordering::SeqCst); // the attempt log is written, then the disk fills
    let error = client(&gate, store)
        .payout(&payout("p-found"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::RecordFailed { platform, .. } if platform.contains("success")),
        "{error}"
    );

    // Refused: not registered, but the refusal must still not read as a store error alone.
    let gate = Gate::start().await;
    gate.on_payout(envelope(400, "2004", "Required field not provided", None));
    let store = Arc::new(BreakingStore::default());
    store.broken.store(true, Ordering::SeqCst);
    store.spared.store(1, Ordering::SeqCst); // the attempt log is written, then the disk fills
    let error = client(&gate, store)
        .payout(&payout("p-refused"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, Error::RecordFailed { platform, .. } if platform.contains("2004")),
        "{error}"
    );
}

#[tokio::test]
async fn a_store_failure_before_sending_is_a_store_error_and_nothing_was_sent() {
    let gate = Gate::start().await;
    let store = Arc::new(BreakingStore::default());
    let client = client(&gate, store.clone());
    // Recorded, then left unknown by a dead network; the store breaks before the resend.
    gate.on_payout(server_error()).on_status(server_error());
    let _ = client.payout(&payout("p-claim")).await.unwrap_err();
    let before = gate.calls().len();
    store.broken.store(true, Ordering::SeqCst);
    let error = client.payout(&payout("p-claim")).await.unwrap_err();
    assert!(matches!(error, Error::Store { .. }), "{error}");
    assert_eq!(gate.calls().len(), before, "nothing sent");
}

/// The attempt log cannot be written: the request is not sent (nothing may go out that the
/// ledger does not count), and the error says the store failed.
#[tokio::test]
async fn an_attempt_that_cannot_be_logged_is_not_sent() {
    let gate = Gate::start().await;
    let store = Arc::new(BreakingStore::default());
    store.broken.store(true, Ordering::SeqCst);
    let error = client(&gate, store)
        .payout(&payout("p-nolog"))
        .await
        .unwrap_err();
    assert!(matches!(error, Error::Store { .. }), "{error}");
    assert!(!error.may_have_reached_platform());
    assert!(gate.calls().is_empty(), "nothing sent");
}
