//! [`MemoryStore`]: the in-memory [`PayoutStore`], for tests and single-process tools.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use std::time::SystemTime;

use rp_model::{Currency, Limits, PaymentId, Usage, usage_hour};
use rp_transport::BoxFuture;

use super::usage::{check_limits, usage_from_hours};
use super::{
    Inserted, PayoutEvent, PayoutOrigin, PayoutQuery, PayoutRecord, PayoutStore, StateCount,
    Updated,
};
use crate::Error;

/// An in-memory [`PayoutStore`], for tests and single-process tools. Everything is lost when
/// the process ends: use a durable ledger (`rp-ledger`) in production. Its clock, for the
/// limits' windows, is the system clock. It has no batches: [`PayoutOrigin::Batch`] matches
/// nothing here.
#[derive(Debug, Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    records: BTreeMap<PaymentId, PayoutRecord>,
    events: BTreeMap<PaymentId, Vec<PayoutEvent>>,
    /// The hour each payout was recorded in, on this store's clock (for the limits).
    hours: BTreeMap<PaymentId, i64>,
}

impl Inner {
    /// What counts against the limits in `currency` now.
    fn usage(&self, currency: Currency) -> Usage {
        let counted = self.records.values().filter(|record| {
            record.request.payment.currency == currency.code() && !record.state.releases_limits()
        });
        let rows = counted.map(|record| {
            let hour = self
                .hours
                .get(&record.payment_id)
                .copied()
                .unwrap_or_default();
            let amount = i64::try_from(record.request.payment.amount).unwrap_or(i64::MAX);
            (hour, amount, 1)
        });
        usage_from_hours(rows, SystemTime::now())
    }

    fn add(&mut self, record: PayoutRecord, event: PayoutEvent) -> Inserted {
        self.hours
            .insert(record.payment_id.clone(), usage_hour(SystemTime::now()));
        self.records
            .insert(record.payment_id.clone(), record.clone());
        self.events.insert(record.payment_id.clone(), vec![event]);
        Inserted::New(record)
    }
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every record, ordered by payment ID.
    pub fn all(&self) -> Vec<PayoutRecord> {
        self.lock().records.values().cloned().collect()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn ready<'a, T: Send + 'a>(value: T) -> BoxFuture<'a, Result<T, Error>> {
    Box::pin(std::future::ready(Ok(value)))
}

impl PayoutStore for MemoryStore {
    fn insert(
        &self,
        record: PayoutRecord,
        event: PayoutEvent,
        limits: Limits,
    ) -> BoxFuture<'_, Result<Inserted, Error>> {
        let mut inner = self.lock();
        let result = match inner.records.get(&record.payment_id) {
            Some(existing) => Inserted::Existing(existing.clone()),
            None if !limits.is_empty() => {
                let usage = inner.usage(limits.currency);
                match check_limits(limits, usage, &record) {
                    Err(error) => return Box::pin(std::future::ready(Err(error))),
                    Ok(Err(over)) => Inserted::OverLimit(over),
                    Ok(Ok(())) => inner.add(record, event),
                }
            }
            None => inner.add(record, event),
        };
        ready(result)
    }

    fn get<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Option<PayoutRecord>, Error>> {
        ready(self.lock().records.get(payment_id).cloned())
    }

    fn update(
        &self,
        expected_version: u64,
        mut record: PayoutRecord,
        event: PayoutEvent,
    ) -> BoxFuture<'_, Result<Updated, Error>> {
        let mut inner = self.lock();
        let result = match inner.records.get_mut(&record.payment_id) {
            Some(current) if current.version == expected_version => {
                record.version = expected_version.saturating_add(1);
                *current = record.clone();
                inner
                    .events
                    .entry(record.payment_id.clone())
                    .or_default()
                    .push(event);
                Updated::Done(record)
            }
            Some(current) => Updated::Conflict(Some(current.clone())),
            None => Updated::Conflict(None),
        };
        ready(result)
    }

    fn unsettled(
        &self,
        after: Option<PaymentId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<PayoutRecord>, Error>> {
        use std::ops::Bound::{Excluded, Unbounded};
        let lower = after.map_or(Unbounded, Excluded);
        let open: Vec<PayoutRecord> = self
            .lock()
            .records
            .range((lower, Unbounded))
            .map(|(_, record)| record)
            .filter(|r| !r.state.is_settled())
            .take(limit)
            .cloned()
            .collect();
        ready(open)
    }

    fn events<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Vec<PayoutEvent>, Error>> {
        ready(
            self.lock()
                .events
                .get(payment_id)
                .cloned()
                .unwrap_or_default(),
        )
    }

    fn list<'a>(
        &'a self,
        query: &'a PayoutQuery,
    ) -> BoxFuture<'a, Result<Vec<PayoutRecord>, Error>> {
        let inner = self.lock();
        // No batches here: nothing is from one.
        let origin = |record: &PayoutRecord| {
            let first = inner
                .events
                .get(&record.payment_id)
                .and_then(|events| events.first());
            first.map_or(PayoutOrigin::Library, |event| {
                PayoutOrigin::of(&event.source, false)
            })
        };
        let mut found: Vec<&PayoutRecord> = inner
            .records
            .values()
            .filter(|r| {
                query.matches(r) && query.is_after_cursor(r) && query.matches_origin(origin(r))
            })
            .collect();
        found.sort_by(|a, b| {
            b.created_at
                .cmp(&a.created_at)
                .then_with(|| b.payment_id.cmp(&a.payment_id))
        });
        let page = found.into_iter().take(query.page_size()).cloned().collect();
        ready(page)
    }

    fn usage(&self, currency: Currency) -> BoxFuture<'_, Result<Usage, Error>> {
        ready(self.lock().usage(currency))
    }

    fn counts(&self) -> BoxFuture<'_, Result<StateCount, Error>> {
        let inner = self.lock();
        let rows = inner.records.values().map(|r| {
            (
                r.state.label().to_owned(),
                1,
                u64::from(r.attention.is_some()),
            )
        });
        ready(StateCount::from_rows(rows))
    }
}
