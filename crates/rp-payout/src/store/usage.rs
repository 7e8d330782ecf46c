//! What counts against the project's limits: the reference rules every store implements
//! ([`PayoutStore::insert`](super::PayoutStore::insert), [`PayoutStore::usage`](super::PayoutStore::usage)).

use std::time::SystemTime;

use rp_model::{Currency, LimitError, LimitTracker, Limits, Money, Period, Usage};

use super::PayoutRecord;
use crate::Error;

/// Whether `record` counts against the limits now: its state is not one the platform
/// definitively refused.
pub fn counts_against_limits(record: &PayoutRecord) -> bool {
    !record.state.releases_limits()
}

/// The usage in `currency` at `now` of the records that count, each with the hour the store
/// recorded it in ([`rp_model::usage_hour`] of the **store's** clock at the insert, never of
/// the client-written `created_at`): the reference computation, by walking every record (a
/// database keeps hourly sums instead, with the same result).
pub fn usage_of<'a>(
    records: impl IntoIterator<Item = (&'a PayoutRecord, i64)>,
    currency: Currency,
    now: SystemTime,
) -> Usage {
    let mut usage = Usage::default();
    for (record, hour) in records {
        if record.request.payment.currency == currency.code() && counts_against_limits(record) {
            add_hour(&mut usage, hour, record.request.payment.amount, 1, now);
        }
    }
    usage
}

/// Adds `amount` and `count` recorded in `hour` to each window of `usage` that holds that
/// hour at `now`.
pub fn add_hour(usage: &mut Usage, hour: i64, amount: u64, count: u64, now: SystemTime) {
    if hour >= Period::Day.first_hour(now) {
        usage.day_amount = usage.day_amount.saturating_add(amount);
        usage.day_count = usage.day_count.saturating_add(count);
    }
    if hour >= Period::Week.first_hour(now) {
        usage.week_amount = usage.week_amount.saturating_add(amount);
        usage.week_count = usage.week_count.saturating_add(count);
    }
    if hour >= Period::Month.first_hour(now) {
        usage.month_amount = usage.month_amount.saturating_add(amount);
        usage.month_count = usage.month_count.saturating_add(count);
    }
}

/// Whether `record` fits `limits` on top of `usage` ([`LimitTracker::check`]).
///
/// # Errors
///
/// The limit it breaks; [`Error::Store`] for a recorded currency this build does not know
/// (a record built from a [`rp_model::Payout`] never has one).
pub fn check_limits(
    limits: Limits,
    usage: Usage,
    record: &PayoutRecord,
) -> Result<Result<(), LimitError>, Error> {
    if limits.is_empty() {
        return Ok(Ok(()));
    }
    let payment = &record.request.payment;
    let currency = Currency::from_code(&payment.currency).ok_or_else(|| {
        Error::store(
            format!("check the limits of payout {}", record.payment_id),
            format!("unknown currency {:?}", payment.currency),
        )
    })?;
    let amount = Money::from_minor(payment.amount, currency);
    Ok(LimitTracker::with_usage(limits, usage).check(amount))
}
