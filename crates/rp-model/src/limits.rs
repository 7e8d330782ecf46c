//! The project's amount limits, mirrored client-side: per payout, and per day, week and month
//! in amount and in count; what counts against them ([`Usage`]) and over which windows
//! ([`Period::window`], [`usage_hour`]).
//!
//! Pure rules, no I/O: the client configuration holds [`Limits`], a ledger reserves against
//! them atomically with recording a payout, `rp batch check` counts a file against them.

use std::fmt;
use std::time::{Duration, SystemTime};

use crate::{Currency, Money};

/// The project's limits, as its Dashboard shows them. Every limit is optional; amounts are
/// exact integers in minor units of [`Limits::currency`] (tiyn for KZT), counts are payouts.
///
/// The platform refuses a payout over a limit with codes 3358 (below the minimum),
/// 3104/2642 (above the maximum), 3109/3108/3106 (amount per day/week/month) and
/// 3112/3111/3110 (count per day/week/month); checking here first stops a payout before the
/// platform has to. See [`LimitKind::platform_codes`].
///
/// ```
/// use rp_model::{Currency, LimitKind, LimitTracker, Limits, Money};
///
/// let mut limits = Limits::none(Currency::KZT);
/// limits.max_amount = Some(10_000_000);   // 100 000 ₸ per payout (in tiyn)
/// limits.daily_amount = Some(25_000_000); // 250 000 ₸ per day
///
/// let mut tracker = LimitTracker::new(limits);
/// assert!(tracker.reserve(Money::kzt(100_000)?).is_ok());
/// assert!(tracker.reserve(Money::kzt(100_000)?).is_ok());
/// let refused = tracker.reserve(Money::kzt(60_000)?).unwrap_err();
/// assert_eq!(refused.kind(), Some(LimitKind::DailyAmount));
/// assert!(tracker.reserve(Money::kzt(50_000)?).is_ok()); // what is left still fits
/// # Ok::<(), rp_model::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// The currency of the amount limits (the project's currency: KZT).
    pub currency: Currency,
    /// The smallest amount of one payout, in minor units.
    pub min_amount: Option<u64>,
    /// The largest amount of one payout, in minor units.
    pub max_amount: Option<u64>,
    /// The most paid out in one day, in minor units.
    pub daily_amount: Option<u64>,
    /// The most paid out in one week, in minor units.
    pub weekly_amount: Option<u64>,
    /// The most paid out in one month, in minor units.
    pub monthly_amount: Option<u64>,
    /// The most payouts in one day.
    pub daily_count: Option<u64>,
    /// The most payouts in one week.
    pub weekly_count: Option<u64>,
    /// The most payouts in one month.
    pub monthly_count: Option<u64>,
}

impl Limits {
    /// No limit set (in KZT, the project's currency).
    pub const NONE: Limits = Limits::none(Currency::KZT);

    /// No limit set, amounts in `currency`.
    pub const fn none(currency: Currency) -> Limits {
        Limits {
            currency,
            min_amount: None,
            max_amount: None,
            daily_amount: None,
            weekly_amount: None,
            monthly_amount: None,
            daily_count: None,
            weekly_count: None,
            monthly_count: None,
        }
    }

    /// Whether no limit is set.
    pub fn is_empty(&self) -> bool {
        LimitKind::ALL
            .into_iter()
            .all(|kind| self.get(kind).is_none())
    }

    /// The value of one limit (minor units or a count).
    pub fn get(&self, kind: LimitKind) -> Option<u64> {
        match kind {
            LimitKind::MinAmount => self.min_amount,
            LimitKind::MaxAmount => self.max_amount,
            LimitKind::DailyAmount => self.daily_amount,
            LimitKind::WeeklyAmount => self.weekly_amount,
            LimitKind::MonthlyAmount => self.monthly_amount,
            LimitKind::DailyCount => self.daily_count,
            LimitKind::WeeklyCount => self.weekly_count,
            LimitKind::MonthlyCount => self.monthly_count,
        }
    }

    /// Every limit of `self` and `other` together, the stricter where both set one (the
    /// larger minimum, the smaller of every other limit). The amount limits of `other` count
    /// only in `self`'s currency (amounts in two currencies are not comparable: check
    /// [`Limits::has_amounts`] first); the count limits always do.
    #[must_use]
    pub fn strictest(self, other: Limits) -> Limits {
        let mut both = self;
        for kind in LimitKind::ALL {
            if !kind.is_count() && other.currency != self.currency {
                continue;
            }
            let value = match (self.get(kind), other.get(kind)) {
                (Some(a), Some(b)) if kind == LimitKind::MinAmount => Some(a.max(b)),
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            both.set(kind, value);
        }
        both
    }

    /// Whether an amount limit is set (one in minor units of [`Limits::currency`]).
    pub fn has_amounts(&self) -> bool {
        LimitKind::ALL
            .into_iter()
            .any(|kind| !kind.is_count() && self.get(kind).is_some())
    }

    /// Sets one limit (minor units or a count; `None` removes it).
    pub fn set(&mut self, kind: LimitKind, value: Option<u64>) {
        let slot = match kind {
            LimitKind::MinAmount => &mut self.min_amount,
            LimitKind::MaxAmount => &mut self.max_amount,
            LimitKind::DailyAmount => &mut self.daily_amount,
            LimitKind::WeeklyAmount => &mut self.weekly_amount,
            LimitKind::MonthlyAmount => &mut self.monthly_amount,
            LimitKind::DailyCount => &mut self.daily_count,
            LimitKind::WeeklyCount => &mut self.weekly_count,
            LimitKind::MonthlyCount => &mut self.monthly_count,
        };
        *slot = value;
    }
}

/// One of the project's limits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum LimitKind {
    /// The smallest amount of one payout.
    MinAmount,
    /// The largest amount of one payout.
    MaxAmount,
    /// The amount paid out per day.
    DailyAmount,
    /// The amount paid out per week.
    WeeklyAmount,
    /// The amount paid out per month.
    MonthlyAmount,
    /// The number of payouts per day.
    DailyCount,
    /// The number of payouts per week.
    WeeklyCount,
    /// The number of payouts per month.
    MonthlyCount,
}

/// The period a running limit counts over.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Period {
    /// A day.
    Day,
    /// A week.
    Week,
    /// A month.
    Month,
}

impl Period {
    /// The rolling window a running limit counts over: the last 24 hours, 7 days or 31 days.
    ///
    /// The platform does not say whether its day, week and month are calendar periods, or in
    /// which time zone. A rolling window holds at least every payout of the calendar day,
    /// week or month so far, in any time zone (a month is at most 31 days), so a payout
    /// that fits the rolling window also fits the platform's period: the check errs on the
    /// side of refusing.
    pub const fn window(self) -> Duration {
        const HOUR: u64 = 3600;
        match self {
            Period::Day => Duration::from_secs(24 * HOUR),
            Period::Week => Duration::from_secs(7 * 24 * HOUR),
            Period::Month => Duration::from_secs(31 * 24 * HOUR),
        }
    }

    /// The first [`usage_hour`] that counts in this period's window at `now`: a payout
    /// counts when it was recorded in this hour or later. Counting the whole hour the window
    /// starts in keeps the check on the safe side (up to an hour more is counted, never less)
    /// and lets a ledger keep usage in hourly buckets.
    pub fn first_hour(self, now: SystemTime) -> i64 {
        usage_hour(
            now.checked_sub(self.window())
                .unwrap_or(SystemTime::UNIX_EPOCH),
        )
    }
}

/// The hour a payout recorded at `at` counts in: whole hours since the Unix epoch (UTC).
/// Times before the epoch count in hour 0.
pub fn usage_hour(at: SystemTime) -> i64 {
    let secs = at
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    i64::try_from(secs / 3600).unwrap_or(i64::MAX)
}

impl LimitKind {
    /// Every limit.
    pub const ALL: [LimitKind; 8] = [
        LimitKind::MinAmount,
        LimitKind::MaxAmount,
        LimitKind::DailyAmount,
        LimitKind::WeeklyAmount,
        LimitKind::MonthlyAmount,
        LimitKind::DailyCount,
        LimitKind::WeeklyCount,
        LimitKind::MonthlyCount,
    ];

    /// A stable name for programs and flags, e.g. `"daily_amount"`.
    pub fn key(self) -> &'static str {
        match self {
            LimitKind::MinAmount => "min_amount",
            LimitKind::MaxAmount => "max_amount",
            LimitKind::DailyAmount => "daily_amount",
            LimitKind::WeeklyAmount => "weekly_amount",
            LimitKind::MonthlyAmount => "monthly_amount",
            LimitKind::DailyCount => "daily_count",
            LimitKind::WeeklyCount => "weekly_count",
            LimitKind::MonthlyCount => "monthly_count",
        }
    }

    /// The name for people, e.g. `"daily amount limit"`.
    pub fn label(self) -> &'static str {
        match self {
            LimitKind::MinAmount => "minimum per payout",
            LimitKind::MaxAmount => "maximum per payout",
            LimitKind::DailyAmount => "daily amount limit",
            LimitKind::WeeklyAmount => "weekly amount limit",
            LimitKind::MonthlyAmount => "monthly amount limit",
            LimitKind::DailyCount => "daily count limit",
            LimitKind::WeeklyCount => "weekly count limit",
            LimitKind::MonthlyCount => "monthly count limit",
        }
    }

    /// Whether the limit counts payouts (else it is an amount in minor units).
    pub fn is_count(self) -> bool {
        matches!(
            self,
            LimitKind::DailyCount | LimitKind::WeeklyCount | LimitKind::MonthlyCount
        )
    }

    /// The period of a running limit; `None` for the per-payout minimum and maximum.
    pub fn period(self) -> Option<Period> {
        match self {
            LimitKind::MinAmount | LimitKind::MaxAmount => None,
            LimitKind::DailyAmount | LimitKind::DailyCount => Some(Period::Day),
            LimitKind::WeeklyAmount | LimitKind::WeeklyCount => Some(Period::Week),
            LimitKind::MonthlyAmount | LimitKind::MonthlyCount => Some(Period::Month),
        }
    }

    /// The platform's codes for a payout refused over this limit.
    pub fn platform_codes(self) -> &'static [u32] {
        match self {
            LimitKind::MinAmount => &[3358],
            LimitKind::MaxAmount => &[3104, 2642],
            LimitKind::DailyAmount => &[3109],
            LimitKind::WeeklyAmount => &[3108],
            LimitKind::MonthlyAmount => &[3106],
            LimitKind::DailyCount => &[3112],
            LimitKind::WeeklyCount => &[3111],
            LimitKind::MonthlyCount => &[3110],
        }
    }
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// What is already used of the running limits in their windows (minor units and counts):
/// every payout recorded in the project's currency in the window ([`Period::first_hour`])
/// that the platform has not definitively refused. A file check starts from zero; a ledger
/// computes it for a new payout, in the same transaction that records it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Usage {
    /// Amount paid out (or reserved) today, in minor units.
    pub day_amount: u64,
    /// Amount this week, in minor units.
    pub week_amount: u64,
    /// Amount this month, in minor units.
    pub month_amount: u64,
    /// Payouts today.
    pub day_count: u64,
    /// Payouts this week.
    pub week_count: u64,
    /// Payouts this month.
    pub month_count: u64,
}

impl Usage {
    /// The part of the usage that `kind` counts (0 for the per-payout limits).
    pub fn of(&self, kind: LimitKind) -> u64 {
        match kind {
            LimitKind::MinAmount | LimitKind::MaxAmount => 0,
            LimitKind::DailyAmount => self.day_amount,
            LimitKind::WeeklyAmount => self.week_amount,
            LimitKind::MonthlyAmount => self.month_amount,
            LimitKind::DailyCount => self.day_count,
            LimitKind::WeeklyCount => self.week_count,
            LimitKind::MonthlyCount => self.month_count,
        }
    }
}

/// Why a payout does not fit the limits.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LimitError {
    /// Over (or under) a limit.
    Exceeded {
        /// The limit.
        kind: LimitKind,
        /// Its value (minor units or a count).
        limit: u64,
        /// What was already used of it before this payout (0 for the per-payout limits).
        used: u64,
        /// The payout's amount.
        amount: Money,
    },
    /// The payout is in another currency than the limits: the platform converts it at its
    /// own rate, so it cannot be checked here.
    Currency {
        /// The currency of the limits.
        limits: Currency,
        /// The payout's amount.
        amount: Money,
    },
}

impl LimitError {
    /// The limit exceeded, if that is the problem.
    pub fn kind(&self) -> Option<LimitKind> {
        match self {
            LimitError::Exceeded { kind, .. } => Some(*kind),
            LimitError::Currency { .. } => None,
        }
    }
}

impl fmt::Display for LimitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LimitError::Exceeded {
                kind,
                limit,
                used,
                amount,
            } => {
                let money = |minor: u64| Money::from_minor(minor, amount.currency());
                match kind {
                    LimitKind::MinAmount => write!(
                        f,
                        "{amount} is below the {} ({})",
                        kind.label(),
                        money(*limit)
                    ),
                    LimitKind::MaxAmount => write!(
                        f,
                        "{amount} is above the {} ({})",
                        kind.label(),
                        money(*limit)
                    ),
                    _ if kind.is_count() => write!(
                        f,
                        "over the {} ({limit} payouts): {used} already counted, none left",
                        kind.label()
                    ),
                    _ => write!(
                        f,
                        "{amount} is over the {} ({}): {} already counted, {} left",
                        kind.label(),
                        money(*limit),
                        money(*used),
                        money(limit.saturating_sub(*used))
                    ),
                }
            }
            LimitError::Currency { limits, amount } => write!(
                f,
                "{amount} is in {}, but the limits are in {limits}; the platform converts it at its own rate, so the limits cannot be checked: pay in {limits}",
                amount.currency()
            ),
        }
    }
}

impl std::error::Error for LimitError {}

/// How much of one limit is used and left.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Headroom {
    /// The limit.
    pub kind: LimitKind,
    /// Its value (minor units or a count).
    pub limit: u64,
    /// Used (running limits; for the per-payout limits, 0).
    pub used: u64,
    /// Left: `limit - used`, never below zero.
    pub remaining: u64,
}

/// Running totals against [`Limits`], in the order payouts are offered.
///
/// [`LimitTracker::reserve`] counts a payout only when it fits every limit; one that does not
/// is refused and counts for nothing, so a later, smaller payout may still fit. This is the
/// rule `rp batch check` reports with (from zero usage, in file order), and the rule a ledger
/// applies to one new payout, from the [`Usage`] it reads in the same transaction
/// ([`LimitTracker::with_usage`]). A tracker alone is **not** a reservation: two processes
/// with a tracker each could both pass a limit.
#[derive(Clone, Debug)]
pub struct LimitTracker {
    limits: Limits,
    usage: Usage,
}

impl LimitTracker {
    /// Starts from nothing used.
    pub fn new(limits: Limits) -> LimitTracker {
        LimitTracker::with_usage(limits, Usage::default())
    }

    /// Starts from what is already used in the current periods.
    pub fn with_usage(limits: Limits, usage: Usage) -> LimitTracker {
        LimitTracker { limits, usage }
    }

    /// The limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// What is used so far.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// Whether a payout of `amount` fits every limit now (nothing is counted).
    ///
    /// # Errors
    /// The first limit it breaks, in [`LimitKind::ALL`] order, or [`LimitError::Currency`].
    pub fn check(&self, amount: Money) -> Result<(), LimitError> {
        if self.limits.is_empty() {
            return Ok(());
        }
        if amount.currency() != self.limits.currency {
            return Err(LimitError::Currency {
                limits: self.limits.currency,
                amount,
            });
        }
        let minor = amount.minor_units();
        for kind in LimitKind::ALL {
            let Some(limit) = self.limits.get(kind) else {
                continue;
            };
            let used = self.usage.of(kind);
            let fits = match kind {
                LimitKind::MinAmount => minor >= limit,
                LimitKind::MaxAmount => minor <= limit,
                _ if kind.is_count() => used.checked_add(1).is_some_and(|n| n <= limit),
                _ => used.checked_add(minor).is_some_and(|n| n <= limit),
            };
            if !fits {
                return Err(LimitError::Exceeded {
                    kind,
                    limit,
                    used,
                    amount,
                });
            }
        }
        Ok(())
    }

    /// Counts a payout of `amount` if it fits every limit.
    ///
    /// # Errors
    /// As [`LimitTracker::check`]; nothing is counted then.
    pub fn reserve(&mut self, amount: Money) -> Result<(), LimitError> {
        self.check(amount)?;
        if self.limits.is_empty() || amount.currency() != self.limits.currency {
            return Ok(());
        }
        let minor = amount.minor_units();
        let usage = &mut self.usage;
        for amount_used in [
            &mut usage.day_amount,
            &mut usage.week_amount,
            &mut usage.month_amount,
        ] {
            *amount_used = amount_used.saturating_add(minor);
        }
        for count in [
            &mut usage.day_count,
            &mut usage.week_count,
            &mut usage.month_count,
        ] {
            *count = count.saturating_add(1);
        }
        Ok(())
    }

    /// Every limit that is set, with what is used and left.
    pub fn headroom(&self) -> Vec<Headroom> {
        LimitKind::ALL
            .into_iter()
            .filter_map(|kind| {
                let limit = self.limits.get(kind)?;
                let used = self.usage.of(kind);
                Some(Headroom {
                    kind,
                    limit,
                    used,
                    remaining: limit.saturating_sub(used),
                })
            })
            .collect()
    }
}
