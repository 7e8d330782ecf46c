//! The rules of delivery, as pure functions: what follows a failed attempt (the retry
//! schedule, then giving up), what counts as delivered, and which endpoint URLs are
//! accepted.

use std::net::IpAddr;
use std::time::Duration;

use rp_ledger::AfterAttempt;

const MINUTE: u64 = 60;
const HOUR: u64 = 3600;

/// The waits after each failed attempt, in order: 5 s, 5 min, 30 min, 2 h, 5 h, then 10 h
/// eight times. An event whose endpoint fails throughout is tried 14 times over 3 days and
/// 15 hours, then given up (and the endpoint disabled).
pub const RETRY_SCHEDULE: [Duration; 13] = [
    Duration::from_secs(5),
    Duration::from_secs(5 * MINUTE),
    Duration::from_secs(30 * MINUTE),
    Duration::from_secs(2 * HOUR),
    Duration::from_secs(5 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(10 * HOUR),
    Duration::from_secs(10 * HOUR),
];

/// What follows a failed attempt, given how many attempts had failed before it (since the
/// delivery was made or replayed) and what went wrong this time.
pub fn after_failure(failures_before: u32, error: &str) -> AfterAttempt {
    let index = usize::try_from(failures_before).unwrap_or(usize::MAX);
    match RETRY_SCHEDULE.get(index) {
        Some(wait) => AfterAttempt::RetryIn(*wait),
        None => AfterAttempt::GiveUp(format!(
            "disabled after {} failed attempts over {}: last {error}",
            RETRY_SCHEDULE.len() + 1,
            schedule_span()
        )),
    }
}

/// The whole schedule in words (`3 days 15 hours`).
fn schedule_span() -> String {
    let total: u64 = RETRY_SCHEDULE.iter().map(Duration::as_secs).sum();
    let (days, hours) = (total / (24 * HOUR), total % (24 * HOUR) / HOUR);
    format!("{days} days {hours} hours")
}

/// Whether an endpoint's answer means "delivered": any 2xx. A redirect is a failure (it is
/// not followed: the registered URL is where events go).
pub fn delivered(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Checks an endpoint URL: `https://`, or `http://` to a loopback address (a receiver on
/// the same machine) or when `allow_plain_http` (a private network the operator vouches
/// for). No user or password in it, no fragment.
///
/// # Errors
///
/// A sentence naming what is wrong.
pub fn check_url(url: &str, allow_plain_http: bool) -> Result<(), String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|e| format!("the webhook URL {url:?} is not a URL ({e})"))?;
    let host = parsed
        .host_str()
        .ok_or_else(|| format!("the webhook URL {url:?} has no host"))?;
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(
            "the webhook URL has a user or password in it: deliveries are signed instead"
                .to_owned(),
        );
    }
    if parsed.fragment().is_some() {
        return Err("the webhook URL has a #fragment, which is never sent".to_owned());
    }
    match parsed.scheme() {
        "https" => Ok(()),
        "http" if allow_plain_http || is_loopback(host) => Ok(()),
        "http" => Err(format!(
            "the webhook URL {url:?} is plain http to another machine: payout data would \
             cross the network unencrypted; use https (or allow plain http explicitly)"
        )),
        other => Err(format!(
            "the webhook URL {url:?} has scheme {other:?}; only https (and http to this \
             machine) are sent to"
        )),
    }
}

/// An endpoint's URL as shown to someone who may only read (a `read` API key, a `view`
/// operator): its scheme, host and port, the path and query (which may carry the merchant's
/// token) as `…`. Those who may pay (and manage endpoints) see it whole.
pub fn shown_url(url: &str, whole: bool) -> String {
    if whole {
        return url.to_owned();
    }
    match reqwest::Url::parse(url) {
        Ok(parsed) => {
            let port = parsed.port().map(|p| format!(":{p}")).unwrap_or_default();
            let rest = if parsed.path() == "/" && parsed.query().is_none() {
                "/"
            } else {
                "/…"
            };
            format!(
                "{}://{}{port}{rest}",
                parsed.scheme(),
                parsed.host_str().unwrap_or_default()
            )
        }
        Err(_) => "…".to_owned(),
    }
}

fn is_loopback(host: &str) -> bool {
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readers_see_no_path_or_query() {
        let url = "https://shop.example:8443/hooks/t0ken?key=s3cret";
        assert_eq!(shown_url(url, true), url);
        assert_eq!(shown_url(url, false), "https://shop.example:8443/…");
        assert_eq!(
            shown_url("https://shop.example/", false),
            "https://shop.example/"
        );
        assert_eq!(shown_url("http://[::1]/x", false), "http://[::1]/…");
        assert_eq!(shown_url("not a url", false), "…");
    }

    #[test]
    fn failures_retry_for_more_than_three_days_then_give_up() {
        let total: Duration = RETRY_SCHEDULE.iter().sum();
        assert!(total >= Duration::from_secs(3 * 24 * HOUR), "{total:?}");
        assert_eq!(
            after_failure(0, "HTTP 500"),
            AfterAttempt::RetryIn(Duration::from_secs(5))
        );
        assert_eq!(
            after_failure(12, "HTTP 500"),
            AfterAttempt::RetryIn(Duration::from_secs(10 * HOUR))
        );
        match after_failure(13, "connection refused") {
            AfterAttempt::GiveUp(reason) => {
                assert!(reason.contains("14 failed attempts"), "{reason}");
                assert!(reason.contains("3 days 15 hours"), "{reason}");
                assert!(reason.ends_with("last connection refused"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            after_failure(u32::MAX, "x"),
            AfterAttempt::GiveUp(_)
        ));
    }

    #[test]
    fn only_2xx_is_delivered() {
        assert!(delivered(200) && delivered(204) && delivered(299));
        assert!(!delivered(301) && !delivered(410) && !delivered(500) && !delivered(199));
    }

    #[test]
    fn urls_are_https_or_loopback_http() {
        assert!(check_url("https://shop.kz/hooks/rp", false).is_ok());
        assert!(check_url("http://127.0.0.1:8080/hooks", false).is_ok());
        assert!(check_url("http://[::1]:8080/hooks", false).is_ok());
        assert!(check_url("http://localhost/hooks", false).is_ok());
        let plain = check_url("http://shop.kz/hooks", false).unwrap_err();
        assert!(plain.contains("unencrypted"), "{plain}");
        assert!(check_url("http://10.0.0.5/hooks", true).is_ok());
        assert!(
            check_url("ftp://shop.kz/x", true)
                .unwrap_err()
                .contains("scheme")
        );
        assert!(
            check_url("shop.kz/hooks", false)
                .unwrap_err()
                .contains("not a URL")
        );
        assert!(
            check_url("https://user:pw@shop.kz/", false)
                .unwrap_err()
                .contains("password")
        );
        assert!(
            check_url("https://shop.kz/#x", false)
                .unwrap_err()
                .contains("fragment")
        );
    }
}
