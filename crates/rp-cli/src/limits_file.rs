//! `--limits FILE`: the project's amount limits in a TOML file, as the flags name them.
//!
//! ```toml
//! # Rocketpay project 1234, as its Dashboard shows the limits
//! min_amount = "100"
//! max_amount = "100 000"
//! daily_amount = "5 000 000"
//! daily_count = 1000
//! ```
//!
//! Amounts are tenge as people write them (a string, or a whole number); counts are whole
//! numbers. The keys may also sit in a `[limits]` table. An unknown key, a wrong type or an
//! amount that does not parse is an error that names the file, the line and the key.

use std::path::Path;

use rp_model::{Currency, LimitKind, Limits, Money};
use serde::Deserialize;

use crate::common::Failure;

/// A file whose keys sit in a `[limits]` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wrapped {
    limits: Keys,
}

/// The keys a limits file may hold.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct Keys {
    min_amount: Option<Amount>,
    max_amount: Option<Amount>,
    daily_amount: Option<Amount>,
    weekly_amount: Option<Amount>,
    monthly_amount: Option<Amount>,
    daily_count: Option<u64>,
    weekly_count: Option<u64>,
    monthly_count: Option<u64>,
}

/// An amount in tenge: `"1 500,50"` or `1500`.
#[derive(Deserialize)]
#[serde(untagged)]
enum Amount {
    Text(String),
    Whole(u64),
}

/// The limits in the file at `path` (KZT).
pub(crate) fn read(path: &Path) -> Result<Limits, Failure> {
    let shown = path.display();
    let text = std::fs::read_to_string(path)
        .map_err(|e| Failure::usage(format!("--limits {shown}: cannot read it: {e}")))?;
    let wrong =
        |e: toml::de::Error| Failure::usage(format!("--limits {shown}: {}", one_line(&text, &e)));
    let table: toml::Table = toml::from_str(&text).map_err(wrong)?;
    let keys = if table.contains_key("limits") {
        toml::from_str::<Wrapped>(&text).map(|wrapped| wrapped.limits)
    } else {
        toml::from_str::<Keys>(&text)
    }
    .map_err(wrong)?;
    let mut limits = Limits::none(Currency::KZT);
    let amounts = [
        (LimitKind::MinAmount, "min_amount", keys.min_amount),
        (LimitKind::MaxAmount, "max_amount", keys.max_amount),
        (LimitKind::DailyAmount, "daily_amount", keys.daily_amount),
        (LimitKind::WeeklyAmount, "weekly_amount", keys.weekly_amount),
        (
            LimitKind::MonthlyAmount,
            "monthly_amount",
            keys.monthly_amount,
        ),
    ];
    for (kind, key, amount) in amounts {
        let minor = match amount {
            None => continue,
            Some(Amount::Text(text)) => Money::parse(&text, Currency::KZT)
                .map_err(|e| Failure::usage(format!("--limits {shown}: {key}: {e}")))?
                .minor_units(),
            Some(Amount::Whole(tenge)) => Money::from_major(tenge, Currency::KZT)
                .map_err(|e| Failure::usage(format!("--limits {shown}: {key}: {e}")))?
                .minor_units(),
        };
        limits.set(kind, Some(minor));
    }
    limits.set(LimitKind::DailyCount, keys.daily_count);
    limits.set(LimitKind::WeeklyCount, keys.weekly_count);
    limits.set(LimitKind::MonthlyCount, keys.monthly_count);
    Ok(limits)
}

/// A TOML error on one line: `line 3, column 1: unknown field …`.
fn one_line(text: &str, error: &toml::de::Error) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = text.get(..span.start).unwrap_or(text);
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}
