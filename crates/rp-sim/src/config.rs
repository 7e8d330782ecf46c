//! Configuration: projects, delays, the time scale and the defaults.

use std::fmt;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use rp_model::{Currency, ProjectId};
use rp_sign::SecretKey;
use serde::Serialize;

use crate::Error;

/// The project ID the simulator serves when none is configured.
pub const DEFAULT_PROJECT_ID: u64 = 1234;

/// The secret key of the default project (a test key: it is printed at start-up).
pub const DEFAULT_SECRET_KEY: &str = "sim-secret-key";

/// The default per-operation amount limit in minor units: 500 000,00 ₸.
pub const DEFAULT_AMOUNT_LIMIT: u64 = 50_000_000;

/// The default time from acceptance to the final status.
pub const DEFAULT_PROCESSING_DELAY: Duration = Duration::from_secs(1);

/// The default delay of a slow response (magic value `0023`): longer than a client's timeout.
pub const DEFAULT_SLOW_DELAY: Duration = Duration::from_secs(3);

/// The platform's status lag: for this long after a payment is recorded, the status endpoint
/// answers 3061 "Transaction not found" for it (spec §4: "wait at least 10 seconds"). It is
/// platform time: multiplied by the time scale. The command line applies it by default; the
/// library only when asked ([`SimulatorBuilder::platform_status_lag`](crate::SimulatorBuilder::platform_status_lag)).
pub const PLATFORM_STATUS_LAG: Duration = Duration::from_secs(10);

/// How long a payment stays `awaiting clarification` (magic `0008`) before it is declined:
/// 30 minutes of platform time (multiplied by the time scale).
pub const CLARIFICATION_TIMEOUT: Duration = Duration::from_secs(30 * 60);

/// The default largest request body the simulator reads: 64 KiB (a payout request is well
/// under 2 KiB). Above it: HTTP 413, and nothing is applied.
pub const DEFAULT_BODY_LIMIT: usize = 64 * 1024;

/// The default time a client has to send a request's headers (and that an idle keep-alive
/// connection stays open), and, separately, its body: 10 s each. Then the connection is closed
/// (headers) or answered 408 (body).
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// The default number of connections served at once; further ones wait in the listen backlog
/// until one closes.
pub const DEFAULT_MAX_CONNECTIONS: usize = 256;

/// The default listen address of the library: loopback, any free port.
pub const DEFAULT_LISTEN: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(Ipv4Addr::LOCALHOST), 0);

/// A factor applied to the platform's *callback* clock: the retry intervals of the callback
/// schedule and a request's `callback.delay`. `1` is real time; `0.001` turns the 10-second
/// retry interval into 10 ms.
///
/// It is held as an integer number of parts per million (no floating point), and read from a
/// decimal text with at most six decimal places.
///
/// ```
/// use rp_sim::TimeScale;
/// use std::time::Duration;
///
/// let scale: TimeScale = "0.001".parse()?;
/// assert_eq!(scale, TimeScale::per_million(1_000));
/// assert_eq!(scale.apply(Duration::from_secs(10)), Duration::from_millis(10));
/// assert_eq!(scale.to_string(), "0.001");
/// assert_eq!(TimeScale::REAL_TIME.apply(Duration::from_secs(10)), Duration::from_secs(10));
/// # Ok::<(), rp_sim::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TimeScale(u64);

impl TimeScale {
    /// Real time (factor 1).
    pub const REAL_TIME: TimeScale = TimeScale(1_000_000);

    /// A factor of `ppm / 1 000 000`.
    pub const fn per_million(ppm: u64) -> TimeScale {
        TimeScale(ppm)
    }

    /// A factor of `per_mille / 1 000`.
    pub const fn per_mille(per_mille: u64) -> TimeScale {
        TimeScale(per_mille.saturating_mul(1_000))
    }

    /// The factor in parts per million.
    pub fn as_per_million(self) -> u64 {
        self.0
    }

    /// `duration` multiplied by the factor (microsecond precision, saturating).
    pub fn apply(self, duration: Duration) -> Duration {
        let micros = duration.as_micros().saturating_mul(u128::from(self.0)) / 1_000_000;
        Duration::from_micros(u64::try_from(micros).unwrap_or(u64::MAX))
    }
}

impl Default for TimeScale {
    fn default() -> Self {
        TimeScale::REAL_TIME
    }
}

impl FromStr for TimeScale {
    type Err = Error;

    /// Reads `1`, `0.5`, `0.001`, `2`: digits, an optional point and up to six decimals.
    fn from_str(s: &str) -> Result<TimeScale, Error> {
        let invalid = || Error::InvalidTimeScale {
            input: s.to_owned(),
        };
        let text = s.trim();
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        let digits = |part: &str| part.bytes().all(|b| b.is_ascii_digit());
        if (whole.is_empty() && fraction.is_empty())
            || !digits(whole)
            || !digits(fraction)
            || fraction.len() > 6
        {
            return Err(invalid());
        }
        let whole: u64 = if whole.is_empty() {
            0
        } else {
            whole.parse().map_err(|_| invalid())?
        };
        let mut micros: u64 = 0;
        for (index, byte) in fraction.bytes().enumerate() {
            let place = 10u64.pow(5 - u32::try_from(index).map_err(|_| invalid())?);
            micros += u64::from(byte - b'0') * place;
        }
        whole
            .checked_mul(1_000_000)
            .and_then(|w| w.checked_add(micros))
            .map(TimeScale)
            .ok_or_else(invalid)
    }
}

impl fmt::Display for TimeScale {
    /// The shortest decimal form: `1`, `0.5`, `0.001`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let whole = self.0 / 1_000_000;
        let fraction = self.0 % 1_000_000;
        if fraction == 0 {
            write!(f, "{whole}")
        } else {
            let decimals = format!("{fraction:06}");
            write!(f, "{whole}.{}", decimals.trim_end_matches('0'))
        }
    }
}

impl Serialize for TimeScale {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// A project the simulator accepts: its ID, its secret key and, optionally, its own callback
/// URL (otherwise the simulator-wide one is used).
#[derive(Clone, Debug)]
pub struct Project {
    /// The project ID.
    pub id: ProjectId,
    /// The secret key that signs requests, callbacks and status responses.
    pub key: SecretKey,
    /// Where this project's callbacks go; `None` uses the simulator-wide callback URL.
    pub callback_url: Option<String>,
}

impl Project {
    /// A project without its own callback URL.
    pub fn new(id: ProjectId, key: SecretKey) -> Project {
        Project {
            id,
            key,
            callback_url: None,
        }
    }

    /// The same project with its own callback URL.
    pub fn with_callback_url(mut self, url: impl Into<String>) -> Project {
        self.callback_url = Some(url.into());
        self
    }

    /// The default test project: [`DEFAULT_PROJECT_ID`] with [`DEFAULT_SECRET_KEY`].
    #[allow(clippy::expect_used)] // a non-zero constant, not outside input
    pub fn default_test_project() -> Project {
        Project::new(
            ProjectId::new(DEFAULT_PROJECT_ID).expect("DEFAULT_PROJECT_ID is not zero"),
            SecretKey::from(DEFAULT_SECRET_KEY),
        )
    }
}

/// Checks that a callback URL is a plain `http://` URL (the simulator has no TLS).
pub(crate) fn check_callback_url(url: &str) -> Result<(), Error> {
    match reqwest::Url::parse(url) {
        Ok(parsed) if parsed.scheme() == "http" => Ok(()),
        Ok(parsed) => Err(Error::Config {
            problem: format!(
                "callback URL {url:?} uses {}://; the simulator sends callbacks over plain http:// only (it is meant for loopback)",
                parsed.scheme()
            ),
        }),
        Err(error) => Err(Error::Config {
            problem: format!("callback URL {url:?} is not a URL: {error}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_scale_parses_decimals_exactly() {
        for (text, ppm) in [
            ("1", 1_000_000),
            ("0", 0),
            ("0.5", 500_000),
            (".25", 250_000),
            ("2.", 2_000_000),
            ("0.001", 1_000),
            ("0.000001", 1),
            ("10", 10_000_000),
        ] {
            assert_eq!(
                text.parse::<TimeScale>().unwrap().as_per_million(),
                ppm,
                "{text}"
            );
        }
        for bad in [
            "",
            ".",
            "-1",
            "1e-3",
            "0.0000001",
            "abc",
            "1.2.3",
            "99999999999999999999",
        ] {
            let error = bad.parse::<TimeScale>().unwrap_err();
            assert!(error.to_string().contains("invalid time scale"), "{bad}");
        }
    }

    #[test]
    fn time_scale_displays_and_applies() {
        assert_eq!(TimeScale::per_million(1_000).to_string(), "0.001");
        assert_eq!(TimeScale::per_mille(500).to_string(), "0.5");
        assert_eq!(TimeScale::REAL_TIME.to_string(), "1");
        assert_eq!(
            TimeScale::per_mille(1).apply(Duration::from_secs(4 * 3600)),
            Duration::from_millis(14_400)
        );
        assert_eq!(
            TimeScale::per_million(0).apply(Duration::from_secs(10)),
            Duration::ZERO
        );
        assert_eq!(
            TimeScale::per_million(u64::MAX).apply(Duration::MAX),
            Duration::from_micros(u64::MAX)
        );
    }

    #[test]
    fn callback_urls_must_be_plain_http() {
        assert!(check_callback_url("http://127.0.0.1:9000/cb").is_ok());
        let https = check_callback_url("https://example.com/cb")
            .unwrap_err()
            .to_string();
        assert!(https.contains("https://"), "{https}");
        let junk = check_callback_url("not a url").unwrap_err().to_string();
        assert!(junk.contains("not a URL"), "{junk}");
    }

    #[test]
    fn default_project_is_1234() {
        let project = Project::default_test_project();
        assert_eq!(project.id.get(), DEFAULT_PROJECT_ID);
        assert!(!format!("{project:?}").contains(DEFAULT_SECRET_KEY));
    }
}

/// An exchange rate to KZT, held exactly: tenge per one major unit of another currency, as a
/// decimal with at most nine decimal places (`480.50`). No floating point anywhere.
///
/// ```
/// use rp_model::Currency;
/// use rp_sim::Rate;
///
/// let rate: Rate = "480.50".parse()?;
/// // 100.00 USD = 48 050.00 KZT: 10 000 cents → 4 805 000 tiyn.
/// assert_eq!(rate.convert(10_000, Currency::USD), Some(4_805_000));
/// // 1 yen (no minor unit) at 3.3115 KZT = 331.15 tiyn → 331 (half up).
/// assert_eq!("3.3115".parse::<Rate>()?.convert(1, Currency::JPY), Some(331));
/// assert_eq!(rate.to_string(), "480.50");
/// # Ok::<(), rp_sim::Error>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Rate {
    /// The digits without the decimal point.
    mantissa: u64,
    /// How many of them are decimals.
    scale: u32,
}

/// The most decimal places a rate may have.
const MAX_RATE_SCALE: u32 = 9;

impl Rate {
    /// `amount` minor units of `from` in tiyn (KZT minor units), rounded half up; `None` on
    /// overflow. The platform's own rounding is undocumented; half up is this simulator's.
    pub fn convert(self, amount: u64, from: Currency) -> Option<u64> {
        // amount / 10^from_exp major units × mantissa / 10^scale KZT × 10^2 tiyn.
        let kzt_exp = u32::from(Currency::KZT.exponent());
        let from_exp = u32::from(from.exponent());
        let numerator = u128::from(amount)
            .checked_mul(u128::from(self.mantissa))?
            .checked_mul(10u128.checked_pow(kzt_exp)?)?;
        let denominator = 10u128.checked_pow(self.scale + from_exp)?;
        let rounded = numerator.checked_add(denominator / 2)? / denominator;
        u64::try_from(rounded).ok()
    }
}

impl FromStr for Rate {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self, Error> {
        let bad = |why: &str| Error::Config {
            problem: format!("rate {text:?}: {why}"),
        };
        let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
        if whole.is_empty() || !whole.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("write a positive decimal number such as 480.50"));
        }
        if !fraction.bytes().all(|b| b.is_ascii_digit())
            || (text.contains('.') && fraction.is_empty())
        {
            return Err(bad("write a positive decimal number such as 480.50"));
        }
        let scale = u32::try_from(fraction.len()).unwrap_or(u32::MAX);
        if scale > MAX_RATE_SCALE {
            return Err(bad("at most 9 decimal places"));
        }
        let mantissa: u64 = format!("{whole}{fraction}")
            .parse()
            .map_err(|_| bad("too large"))?;
        if mantissa == 0 {
            return Err(bad("a rate must be greater than zero"));
        }
        Ok(Rate { mantissa, scale })
    }
}

impl fmt::Display for Rate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = format!("{:0width$}", self.mantissa, width = self.scale as usize + 1);
        let (whole, fraction) = digits.split_at(digits.len() - self.scale as usize);
        if fraction.is_empty() {
            f.write_str(whole)
        } else {
            write!(f, "{whole}.{fraction}")
        }
    }
}

impl Serialize for Rate {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// `CODE=RATE` as given to `--rate`: a currency of the table other than KZT and its rate.
///
/// # Errors
///
/// [`Error::Config`] naming what is wrong.
pub fn parse_rate_arg(text: &str) -> Result<(Currency, Rate), Error> {
    let (code, rate) = text.split_once('=').ok_or_else(|| Error::Config {
        problem: format!("--rate {text:?}: write CODE=RATE, e.g. USD=480.50"),
    })?;
    let currency = Currency::from_code(code.trim()).ok_or_else(|| Error::Config {
        problem: format!("--rate {text:?}: {code} is not a currency of spec/currencies.tsv"),
    })?;
    if currency == Currency::KZT {
        return Err(Error::Config {
            problem: "--rate KZT=…: KZT is paid out as is".to_owned(),
        });
    }
    Ok((currency, rate.trim().parse()?))
}
