//! The platform's timestamps: `2024-12-07T19:08:45+0000` (ISO 8601 with a basic offset).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::Error;

/// A timestamp as the platform writes it, e.g. `2024-12-07T19:08:45+0000`.
///
/// The text is kept exactly as received (so a format the platform may use one day is never
/// rejected while reading a callback) and is interpreted on demand by [`GateTime::unix_seconds`],
/// which also accepts `+00:00` and `Z` offsets. [`GateTime::from_unix_seconds`] writes the
/// platform's format.
///
/// ```
/// use rp_model::GateTime;
/// let t = GateTime::from_unix_seconds(1_733_598_525);
/// assert_eq!(t.as_str(), "2024-12-07T19:08:45+0000");
/// assert_eq!(t.unix_seconds()?, 1_733_598_525);
/// assert_eq!(GateTime::new("2024-12-07T22:08:45+0300").unix_seconds()?, 1_733_598_525);
/// # Ok::<(), rp_model::Error>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct GateTime(String);

impl GateTime {
    /// Wraps a timestamp text as received.
    pub fn new(text: impl Into<String>) -> GateTime {
        GateTime(text.into())
    }

    /// The platform's format for a Unix time, in UTC: `YYYY-MM-DDTHH:MM:SS+0000`.
    pub fn from_unix_seconds(seconds: i64) -> GateTime {
        let days = seconds.div_euclid(86_400);
        let secs = seconds.rem_euclid(86_400);
        let (year, month, day) = civil_from_days(days);
        GateTime(format!(
            "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}+0000",
            secs / 3600,
            secs % 3600 / 60,
            secs % 60
        ))
    }

    /// The text as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The Unix time the text denotes.
    ///
    /// # Errors
    /// [`Error::InvalidTimestamp`] if the text is not `YYYY-MM-DDTHH:MM:SS` followed by
    /// `±HHMM`, `±HH:MM` or `Z`, or a field is out of range.
    pub fn unix_seconds(&self) -> Result<i64, Error> {
        parse(&self.0).ok_or_else(|| Error::InvalidTimestamp {
            input: self.0.chars().take(64).collect(),
        })
    }
}

impl fmt::Display for GateTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn number(text: &str) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn parse(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20
        || b.get(4) != Some(&b'-')
        || b.get(7) != Some(&b'-')
        || b.get(10) != Some(&b'T')
        || b.get(13) != Some(&b':')
        || b.get(16) != Some(&b':')
    {
        return None;
    }
    let year = number(text.get(0..4)?)?;
    let month = number(text.get(5..7)?)?;
    let day = number(text.get(8..10)?)?;
    let hour = number(text.get(11..13)?)?;
    let minute = number(text.get(14..16)?)?;
    let second = number(text.get(17..19)?)?;
    let offset_minutes = match text.get(19..)? {
        "Z" => 0,
        zone => {
            let sign = match zone.as_bytes().first()? {
                b'+' => 1,
                b'-' => -1,
                _ => return None,
            };
            let digits = zone.get(1..)?.replacen(':', "", 1);
            if digits.len() != 4 {
                return None;
            }
            let hours = number(digits.get(0..2)?)?;
            let minutes = number(digits.get(2..4)?)?;
            if hours > 23 || minutes > 59 {
                return None;
            }
            sign * (hours * 60 + minutes)
        }
    };
    let days_in_month = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        _ => return None,
    };
    if day < 1 || day > days_in_month || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    Some(days * 86_400 + hour * 3600 + minute * 60 + second - offset_minutes * 60)
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day number since 1970-01-01 (inverse of [`days_from_civil`]).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_platform_format_and_variants() {
        let t = |s: &str| GateTime::new(s).unix_seconds();
        assert_eq!(t("1970-01-01T00:00:00+0000").unwrap(), 0);
        assert_eq!(t("2024-05-14T10:21:33+0000").unwrap(), 1_715_682_093);
        assert_eq!(t("2024-05-14T10:21:33Z").unwrap(), 1_715_682_093);
        assert_eq!(t("2024-05-14T15:21:33+05:00").unwrap(), 1_715_682_093);
        assert_eq!(t("2024-05-14T05:21:33-0500").unwrap(), 1_715_682_093);
        assert_eq!(t("2024-02-29T00:00:00+0000").unwrap(), 1_709_164_800);
    }

    #[test]
    fn rejects_what_is_not_a_timestamp() {
        for bad in [
            "",
            "2024-05-14",
            "2024-05-14 10:21:33+0000",
            "2024-13-01T00:00:00+0000",
            "2023-02-29T00:00:00+0000",
            "2024-05-14T24:00:00+0000",
            "2024-05-14T10:21:33+2500",
            "2024-05-14T10:21:33+00",
            "2024-05-14T10:21:33 UTC",
            "２０２４-05-14T10:21:33+0000",
        ] {
            let error = GateTime::new(bad).unix_seconds().unwrap_err();
            assert!(error.to_string().contains("timestamp"), "{bad}: {error}");
        }
    }

    #[test]
    fn formats_round_trip_over_centuries() {
        for seconds in [
            0,
            1,
            86_399,
            951_782_400,
            1_715_682_093,
            4_102_444_799,
            -86_400,
        ] {
            let t = GateTime::from_unix_seconds(seconds);
            assert_eq!(t.unix_seconds().unwrap(), seconds, "{t}");
        }
        assert_eq!(
            GateTime::from_unix_seconds(-1).as_str(),
            "1969-12-31T23:59:59+0000"
        );
    }
}
