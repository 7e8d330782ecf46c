//! The project's payout limits, enforced like the platform's: per payout (3358, 3104) and per
//! rolling day, week and month in amount (3109, 3108, 3106) and in count (3112, 3111, 3110).

use std::time::{Duration, Instant};

use rp_model::{Currency, Money, PaymentStatus};
use serde::Serialize;

use crate::TimeScale;
use crate::state::{Entry, SimPayment, State};

/// "Operation amount is less than limit": below the project's minimum per payout.
pub(crate) const CODE_MIN_AMOUNT: u32 = 3358;
/// "Payment Constraint Invalid Payout Amount": above the maximum per payout (the platform
/// also spells it 2642; the simulator answers 3104).
pub(crate) const CODE_MAX_AMOUNT: u32 = 3104;
/// "Payment Constraint Invalid 24 Hour Payout".
pub(crate) const CODE_DAILY_AMOUNT: u32 = 3109;
/// "Payment Constraint Invalid Weekly Payout".
pub(crate) const CODE_WEEKLY_AMOUNT: u32 = 3108;
/// "Payment Constraint Invalid Monthly Payout".
pub(crate) const CODE_MONTHLY_AMOUNT: u32 = 3106;
/// "Payment Constraint 24 hour payout operations number exceeded".
pub(crate) const CODE_DAILY_COUNT: u32 = 3112;
/// "Payment Constraint Weekly payout operations number exceeded".
pub(crate) const CODE_WEEKLY_COUNT: u32 = 3111;
/// "Payment Constraint Monthly payout operations number exceeded".
pub(crate) const CODE_MONTHLY_COUNT: u32 = 3110;

/// The project limits the simulator enforces, as a project's Dashboard sets them on the
/// platform. Every limit is optional (`None`: no limit); amounts are in KZT minor units
/// (tiyn), counts are payouts. They apply to every configured project, each counted on its
/// own.
///
/// - `min_amount` / `max_amount` hold for one payout: below the minimum, 3358; above the
///   maximum, 3104. They come on top of the simulator-wide per-operation limit
///   ([`SimulatorBuilder::amount_limit`](crate::SimulatorBuilder::amount_limit), 500 000 ₸ by
///   default, always on), which also answers 3104.
/// - The running limits count the payouts the simulator accepted in a rolling window of the
///   last 24 hours, 7 days or 31 days of platform time (multiplied by the time scale, like
///   every platform delay): amounts 3109 / 3108 / 3106, counts 3112 / 3111 / 3110.
///
/// A payout in another currency is counted by its converted amount in tenge. A payout stops
/// counting when it ends `decline` or `error` (nothing was paid); of a `partially paid out`
/// payout only the paid part counts. A reversal does not give the limit back.
///
/// ```
/// use rp_sim::ProjectLimits;
///
/// let mut limits = ProjectLimits::default();
/// assert!(limits.is_empty());
/// limits.daily_count = Some(5);
/// limits.max_amount = Some(10_000_000); // 100 000,00 ₸
/// assert!(!limits.is_empty());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct ProjectLimits {
    /// The smallest amount of one payout, in tiyn (after conversion); below it: 3358.
    pub min_amount: Option<u64>,
    /// The largest amount of one payout, in tiyn (after conversion); above it: 3104.
    pub max_amount: Option<u64>,
    /// The most paid out in the last 24 hours, in tiyn; over it: 3109.
    pub daily_amount: Option<u64>,
    /// The most paid out in the last 7 days, in tiyn; over it: 3108.
    pub weekly_amount: Option<u64>,
    /// The most paid out in the last 31 days, in tiyn; over it: 3106.
    pub monthly_amount: Option<u64>,
    /// The most payouts in the last 24 hours; more: 3112.
    pub daily_count: Option<u64>,
    /// The most payouts in the last 7 days; more: 3111.
    pub weekly_count: Option<u64>,
    /// The most payouts in the last 31 days; more: 3110.
    pub monthly_count: Option<u64>,
}

impl ProjectLimits {
    /// No limit at all (the default).
    pub const NONE: ProjectLimits = ProjectLimits {
        min_amount: None,
        max_amount: None,
        daily_amount: None,
        weekly_amount: None,
        monthly_amount: None,
        daily_count: None,
        weekly_count: None,
        monthly_count: None,
    };

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        *self == ProjectLimits::NONE
    }

    /// Whether a running (day, week, month) limit is set.
    pub(crate) fn has_running(&self) -> bool {
        self.daily_amount.is_some()
            || self.weekly_amount.is_some()
            || self.monthly_amount.is_some()
            || self.daily_count.is_some()
            || self.weekly_count.is_some()
            || self.monthly_count.is_some()
    }
}

/// What a project's accepted payouts use of the running limits now (`GET /_sim/limits`,
/// [`RunningSimulator::limit_usage`](crate::RunningSimulator::limit_usage)): amounts in tiyn,
/// counts in payouts, over the same rolling windows the limits are checked on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize)]
#[non_exhaustive]
pub struct LimitUsage {
    /// Tiyn counted in the last 24 hours.
    pub day_amount: u64,
    /// Tiyn counted in the last 7 days.
    pub week_amount: u64,
    /// Tiyn counted in the last 31 days.
    pub month_amount: u64,
    /// Payouts counted in the last 24 hours.
    pub day_count: u64,
    /// Payouts counted in the last 7 days.
    pub week_count: u64,
    /// Payouts counted in the last 31 days.
    pub month_count: u64,
}

/// The rolling windows of the running limits, in real time (platform time × time scale).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Windows {
    pub(crate) day: Duration,
    pub(crate) week: Duration,
    pub(crate) month: Duration,
}

impl Windows {
    /// 24 hours, 7 days and 31 days of platform time, multiplied by `scale`.
    pub(crate) fn scaled(scale: TimeScale) -> Windows {
        const DAY: Duration = Duration::from_secs(24 * 3600);
        Windows {
            day: scale.apply(DAY),
            week: scale.apply(DAY.saturating_mul(7)),
            month: scale.apply(DAY.saturating_mul(31)),
        }
    }
}

/// `amount` minor units of the payment's currency in tiyn (converted at the payment's rate);
/// `None` if the currency is unknown or the conversion overflows.
pub(crate) fn in_kzt(payment: &SimPayment, amount: u64) -> Option<u64> {
    match payment.rate {
        None => Some(amount),
        Some(rate) => rate.convert(amount, Currency::from_code(&payment.currency)?),
    }
}

/// What one recorded payment counts against the running limits: `None` when it does not
/// count (declined, or in `error`), otherwise its amount in tiyn (only the paid part of a
/// `partially paid out` one).
fn counted(entry: &Entry) -> Option<u64> {
    let payment = &entry.payment;
    match payment.status {
        PaymentStatus::Decline | PaymentStatus::Error => None,
        PaymentStatus::PartiallyPaidOut => {
            let paid: u64 = payment
                .operations
                .iter()
                .filter(|op| op.kind == "payout" && op.status == rp_model::OperationStatus::Success)
                .map(|op| op.amount)
                .fold(0, u64::saturating_add);
            Some(in_kzt(payment, paid).unwrap_or(u64::MAX))
        }
        _ => Some(in_kzt(payment, payment.amount).unwrap_or(u64::MAX)),
    }
}

/// What project `project_id`'s payouts use of the running limits at `now`.
pub(crate) fn usage(state: &State, project_id: u64, now: Instant, windows: Windows) -> LimitUsage {
    let mut usage = LimitUsage::default();
    for entry in state
        .payments
        .iter()
        .filter(|e| e.payment.project_id == project_id)
    {
        let Some(amount) = counted(entry) else {
            continue;
        };
        let age = now.saturating_duration_since(entry.accepted_at);
        if age < windows.month {
            usage.month_amount = usage.month_amount.saturating_add(amount);
            usage.month_count += 1;
        }
        if age < windows.week {
            usage.week_amount = usage.week_amount.saturating_add(amount);
            usage.week_count += 1;
        }
        if age < windows.day {
            usage.day_amount = usage.day_amount.saturating_add(amount);
            usage.day_count += 1;
        }
    }
    usage
}

/// A payout refused by a limit: the platform code and a detail for the message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Exceeded {
    pub(crate) code: u32,
    pub(crate) detail: String,
    /// Whether the amount is the problem (`errors[0].field` is then `payment.amount`).
    pub(crate) amount_field: bool,
}

/// Tiyn as `1500.00 KZT`.
fn tenge(tiyn: u64) -> String {
    format!("{:#}", Money::kzt_minor(tiyn))
}

/// The amount of a request for a message: `1500.00 KZT`, or `100.50 USD (48290.25 KZT)`.
pub(crate) fn describe(amount: u64, currency: &str, kzt: u64) -> String {
    match Currency::from_code(currency) {
        Some(Currency::KZT) | None => tenge(kzt),
        Some(other) => format!("{:#} ({})", Money::from_minor(amount, other), tenge(kzt)),
    }
}

/// The per-payout limits: 3358 below the minimum, 3104 above the maximum.
pub(crate) fn check_payout(limits: &ProjectLimits, kzt: u64, what: &str) -> Option<Exceeded> {
    if let Some(max) = limits.max_amount.filter(|max| kzt > *max) {
        return Some(Exceeded {
            code: CODE_MAX_AMOUNT,
            detail: format!(
                "{what} is above the project's maximum per payout of {}",
                tenge(max)
            ),
            amount_field: true,
        });
    }
    if let Some(min) = limits.min_amount.filter(|min| kzt < *min) {
        return Some(Exceeded {
            code: CODE_MIN_AMOUNT,
            detail: format!(
                "{what} is below the project's minimum per payout of {}",
                tenge(min)
            ),
            amount_field: true,
        });
    }
    None
}

/// The running limits for one more payout of `kzt` tiyn, given what is `used`: amounts (day,
/// week, month) first, then counts (day, week, month).
pub(crate) fn check_running(
    limits: &ProjectLimits,
    used: &LimitUsage,
    kzt: u64,
    what: &str,
) -> Option<Exceeded> {
    let amounts = [
        (
            limits.daily_amount,
            used.day_amount,
            CODE_DAILY_AMOUNT,
            "24 hours",
        ),
        (
            limits.weekly_amount,
            used.week_amount,
            CODE_WEEKLY_AMOUNT,
            "7 days",
        ),
        (
            limits.monthly_amount,
            used.month_amount,
            CODE_MONTHLY_AMOUNT,
            "31 days",
        ),
    ];
    for (limit, used, code, window) in amounts {
        let Some(limit) = limit else { continue };
        if used.saturating_add(kzt) > limit {
            return Some(Exceeded {
                code,
                detail: format!(
                    "{what} would bring the project's payouts of the last {window} to {}, over its limit of {} ({} counted, {} left)",
                    tenge(used.saturating_add(kzt)),
                    tenge(limit),
                    tenge(used),
                    tenge(limit.saturating_sub(used)),
                ),
                amount_field: true,
            });
        }
    }
    let counts = [
        (
            limits.daily_count,
            used.day_count,
            CODE_DAILY_COUNT,
            "24 hours",
        ),
        (
            limits.weekly_count,
            used.week_count,
            CODE_WEEKLY_COUNT,
            "7 days",
        ),
        (
            limits.monthly_count,
            used.month_count,
            CODE_MONTHLY_COUNT,
            "31 days",
        ),
    ];
    for (limit, used, code, window) in counts {
        let Some(limit) = limit else { continue };
        if used >= limit {
            return Some(Exceeded {
                code,
                detail: format!(
                    "the project's limit of {limit} payouts in the last {window} is reached ({used} counted)"
                ),
                amount_field: false,
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> ProjectLimits {
        ProjectLimits {
            min_amount: Some(10_000),
            max_amount: Some(1_000_000),
            daily_amount: Some(2_000_000),
            weekly_amount: Some(3_000_000),
            monthly_amount: Some(4_000_000),
            daily_count: Some(2),
            weekly_count: Some(3),
            monthly_count: Some(4),
        }
    }

    #[test]
    fn per_payout_limits_hold_at_their_bounds() {
        let limits = limits();
        assert_eq!(check_payout(&limits, 10_000, "x"), None);
        assert_eq!(check_payout(&limits, 1_000_000, "x"), None);
        assert_eq!(check_payout(&limits, 9_999, "x").unwrap().code, 3358);
        let over = check_payout(&limits, 1_000_001, "x").unwrap();
        assert_eq!(over.code, 3104);
        assert!(over.detail.contains("10000.00 KZT"), "{}", over.detail);
        assert_eq!(check_payout(&ProjectLimits::NONE, 0, "x"), None);
    }

    #[test]
    fn running_limits_pick_the_first_exceeded() {
        let limits = limits();
        let mut used = LimitUsage::default();
        assert_eq!(check_running(&limits, &used, 2_000_000, "x"), None);
        assert_eq!(
            check_running(&limits, &used, 2_000_001, "x").unwrap().code,
            3109
        );
        used.day_amount = 0;
        used.week_amount = 2_500_000;
        assert_eq!(
            check_running(&limits, &used, 600_000, "x").unwrap().code,
            3108
        );
        used.week_amount = 0;
        used.month_amount = 3_500_000;
        assert_eq!(
            check_running(&limits, &used, 600_000, "x").unwrap().code,
            3106
        );
        let mut used = LimitUsage {
            day_count: 2,
            ..LimitUsage::default()
        };
        assert_eq!(check_running(&limits, &used, 1, "x").unwrap().code, 3112);
        used.day_count = 0;
        used.week_count = 3;
        assert_eq!(check_running(&limits, &used, 1, "x").unwrap().code, 3111);
        used.week_count = 0;
        used.month_count = 4;
        let refused = check_running(&limits, &used, 1, "x").unwrap();
        assert_eq!(refused.code, 3110);
        assert!(!refused.amount_field);
        assert!(refused.detail.contains("4 payouts"), "{}", refused.detail);
    }

    #[test]
    fn windows_are_platform_time_scaled() {
        let real = Windows::scaled(TimeScale::REAL_TIME);
        assert_eq!(real.day, Duration::from_secs(86_400));
        assert_eq!(real.week, Duration::from_secs(7 * 86_400));
        assert_eq!(real.month, Duration::from_secs(31 * 86_400));
        let fast = Windows::scaled(TimeScale::per_million(1_000));
        assert_eq!(fast.day, Duration::from_millis(86_400));
    }

    #[test]
    fn amounts_are_described_in_tenge() {
        assert_eq!(describe(150_000, "KZT", 150_000), "1500.00 KZT");
        assert_eq!(
            describe(10_050, "USD", 4_829_025),
            "100.50 USD (48290.25 KZT)"
        );
    }
}
