//! The payout lifecycle and where it is kept: [`PayoutRecord`], [`PayoutState`], the
//! [`PayoutStore`] trait, its history ([`PayoutEvent`]) and queries ([`PayoutQuery`]), and the
//! in-memory [`MemoryStore`].
//!
//! A payout is recorded **before** its first byte is sent (invariant 5), then moves through
//! states as answers, status requests and callbacks arrive. Every change is a compare-and-set on
//! the record's `version` **with the event that explains it**, written in the same atomic step:
//! a database implementation needs a unique key on the payment ID, `UPDATE … WHERE payment_id
//! = ? AND version = ?` and an `INSERT` into the history, in one transaction.
//!
//! A store holds the payouts of **one project** (the platform's payment IDs are unique per
//! project); a ledger shared by several projects hands out one store per project, as
//! `rp-ledger` does.

mod event;
mod memory;
mod query;
mod record;
pub mod usage;

use std::fmt;
use std::time::SystemTime;

use rp_model::{Currency, LimitError, Limits, PaymentId, Usage};
use rp_transport::BoxFuture;

use crate::Error;

pub use event::{EventSource, PayoutEvent};
pub use memory::MemoryStore;
pub use query::{
    API_SOURCE_PREFIX, MAX_PAGE, OPERATOR_SOURCE_PREFIX, PayoutOrigin, PayoutQuery, StateCount,
    UnknownOrigin,
};
pub use record::{PayoutRecord, PayoutState, StatusChange};

/// The answer to [`PayoutStore::insert`].
#[derive(Debug, Clone, PartialEq)]
pub enum Inserted {
    /// The record was stored.
    New(PayoutRecord),
    /// A record with this payment ID already exists (returned, unchanged).
    Existing(PayoutRecord),
    /// The payout does not fit the limits, counting what the store holds: nothing was stored.
    OverLimit(LimitError),
    /// No payout is recorded under the payment ID, but the store holds it for a different
    /// payout to come (in `rp-ledger`, a batch's row not paid yet, whose request differs, or
    /// any request with the merchant's metadata: a row carries none): nothing was stored. Says
    /// what holds it, e.g. `batch 5f3a09c1d2e4b6a87c90 (its line 3)`.
    Held(String),
}

/// The answer to [`PayoutStore::update`].
#[derive(Debug, Clone, PartialEq)]
pub enum Updated {
    /// Stored; the record as stored (with its new version).
    Done(PayoutRecord),
    /// The version did not match: the current record (`None` if there is none).
    Conflict(Option<PayoutRecord>),
}

/// Where the payouts of one project are recorded. Object-safe and async, so a database can
/// implement it.
///
/// Each method is one atomic step per payout; nothing needs a transaction across payouts. A
/// write ([`PayoutStore::insert`], [`PayoutStore::update`]) is durable when it returns: the
/// client sends nothing before the insert has returned.
pub trait PayoutStore: Send + Sync + fmt::Debug {
    /// Stores `record` and its first `event` unless its payment ID is already recorded,
    /// atomically (a unique key). An existing record is returned unchanged, and the event is
    /// not written.
    ///
    /// **Limits.** A new record is a reservation against the project's amount limits: in the
    /// same atomic step, the store reads what counts against `limits` ([`PayoutStore::usage`]
    /// in the limits' currency, on the store's clock), refuses the record with
    /// [`Inserted::OverLimit`] if it does not fit ([`rp_model::LimitTracker::check`]), and
    /// otherwise counts it, so two concurrent inserts cannot both pass a limit. With no
    /// limit set ([`Limits::is_empty`]) nothing is refused, but the record still counts. A
    /// record counts while its state is not one the platform definitively refused
    /// ([`PayoutState::releases_limits`]): every update keeps the usage in step.
    ///
    /// **Held payment IDs.** A store that knows of payouts to come (a ledger's batches)
    /// refuses, in the same atomic step, a new record whose payment ID one of them holds for
    /// a different payout: [`Inserted::Held`]. [`MemoryStore`] holds none.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn insert(
        &self,
        record: PayoutRecord,
        event: PayoutEvent,
        limits: Limits,
    ) -> BoxFuture<'_, Result<Inserted, Error>>;

    /// The record for `payment_id`.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn get<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Option<PayoutRecord>, Error>>;

    /// Replaces the record with `record.payment_id` if its version is `expected_version`, and
    /// appends `event` to its history, atomically; the stored record gets version
    /// `expected_version + 1` (compare-and-set). On a conflict nothing is written.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails (a version mismatch is [`Updated::Conflict`]).
    fn update(
        &self,
        expected_version: u64,
        record: PayoutRecord,
        event: PayoutEvent,
    ) -> BoxFuture<'_, Result<Updated, Error>>;

    /// Up to `limit` records that are not settled ([`PayoutState::is_settled`]), in payment-ID
    /// order, starting after `after` (all of them from the start when `None`). Keyset
    /// pagination, so a caller can walk every unsettled payout however many there are; in SQL:
    /// `WHERE NOT settled AND payment_id > $after ORDER BY payment_id LIMIT $limit`. A record
    /// the store cannot read (written by a newer version, say) is left out and logged, and
    /// the page filled from the records after it, so that it stops no walk (reconcile) and a
    /// page shorter than `limit` still means the end.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn unsettled(
        &self,
        after: Option<PaymentId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<PayoutRecord>, Error>>;

    /// The history of a payout, oldest first (empty when it is not recorded).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn events<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Vec<PayoutEvent>, Error>>;

    /// One page of payouts matching `query`, newest first (by `created_at`, then payment ID),
    /// at most `query.limit` (capped at [`MAX_PAGE`]). The next page starts after the last
    /// record of this one ([`PayoutQuery::after`]). A record the store cannot read is left
    /// out and logged, and the page filled from the records after it (as in
    /// [`PayoutStore::unsettled`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn list<'a>(
        &'a self,
        query: &'a PayoutQuery,
    ) -> BoxFuture<'a, Result<Vec<PayoutRecord>, Error>>;

    /// How many payouts are in each state ([`PayoutState::label`]), most first, and how many
    /// need attention.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn counts(&self) -> BoxFuture<'_, Result<StateCount, Error>>;

    /// What counts against the running limits now, in `currency`: every payout recorded in
    /// `currency` in each window ([`rp_model::Period::first_hour`], on the store's clock) that
    /// still counts (not [`PayoutState::releases_limits`]).
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store fails.
    fn usage(&self, currency: Currency) -> BoxFuture<'_, Result<Usage, Error>>;

    /// The store's own clock, for claims and their leases
    /// ([`PayoutRecord::lease_until`]), when it is shared by machines whose clocks may differ
    /// (a database server); `None` (the default): the client's clock is the store's.
    ///
    /// # Errors
    ///
    /// [`Error::Store`] if the store cannot tell.
    fn now(&self) -> BoxFuture<'_, Result<Option<SystemTime>, Error>> {
        Box::pin(std::future::ready(Ok(None)))
    }
}
