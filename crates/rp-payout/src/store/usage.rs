//! What counts against the project's limits: the reference rules every store implements
//! ([`PayoutStore::insert`](super::PayoutStore::insert), [`PayoutStore::usage`](super::PayoutStore::usage)).

use std::time::SystemTime;

use rp_model::{Currency, LimitError, LimitTracker, Limits, Money, Period, Usage};

use super::PayoutRecord;
use crate::Error;

/// The usage at `now` of hourly sums: `(hour, amount, count)` rows, an hour as
/// [`rp_model::usage_hour`] of the **store's** clock when the payouts were recorded (never the
/// client-written `created_at`), several rows of one hour allowed, negative sums read as 0.
/// Every store folds its usage through this: the SQL ledgers from their hourly table, the
/// memory store from its records (one row each).
pub fn usage_from_hours(rows: impl IntoIterator<Item = (i64, i64, i64)>, now: SystemTime) -> Usage {
    let first = [Period::Day, Period::Week, Period::Month].map(|period| period.first_hour(now));
    let mut usage = Usage::default();
    for (hour, amount, count) in rows {
        let (amount, count) = (
            u64::try_from(amount).unwrap_or(0),
            u64::try_from(count).unwrap_or(0),
        );
        let windows = [
            (&mut usage.day_amount, &mut usage.day_count),
            (&mut usage.week_amount, &mut usage.week_count),
            (&mut usage.month_amount, &mut usage.month_count),
        ];
        for ((amount_used, count_used), first) in windows.into_iter().zip(first) {
            if hour >= first {
                *amount_used = amount_used.saturating_add(amount);
                *count_used = count_used.saturating_add(count);
            }
        }
    }
    usage
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
