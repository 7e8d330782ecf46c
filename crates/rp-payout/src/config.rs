//! [`Config`]: project, secret key and options, from code or from the environment.

use std::fmt;
use std::time::Duration;

use rp_model::{Limits, ProjectId};
use rp_sign::SecretKey;
use rp_transport::ReqwestTransport;

use crate::{Error, RetryPolicy};

/// The environment variable with the project ID.
pub const ENV_PROJECT_ID: &str = "RP_PROJECT_ID";
/// The environment variable with the secret key.
pub const ENV_SECRET_KEY: &str = "RP_SECRET_KEY";
/// The environment variable with the base URL (optional).
pub const ENV_BASE_URL: &str = "RP_BASE_URL";

/// Everything the client needs to talk to the Gate. `Debug` never shows the secret key.
///
/// ```
/// use rp_payout::Config;
/// use rp_model::ProjectId;
///
/// let config = Config::new(ProjectId::new(1234)?, "s3cr3t-value".into())
///     .with_base_url("http://127.0.0.1:8080");
/// assert!(!format!("{config:?}").contains("s3cr3t"));
///
/// let from_env = Config::from_env_map(|name| match name {
///     "RP_PROJECT_ID" => Some("1234".to_owned()),
///     "RP_SECRET_KEY" => Some("s3cret".to_owned()),
///     _ => None,
/// }).unwrap();
/// assert_eq!(from_env.project_id.get(), 1234);
/// assert_eq!(from_env.base_url, rp_payout::DEFAULT_BASE_URL);
/// # Ok::<(), rp_model::Error>(())
/// ```
#[derive(Clone)]
#[non_exhaustive]
pub struct Config {
    /// The project ID.
    pub project_id: ProjectId,
    /// The project's secret key (private: only the signer reads it).
    secret_key: SecretKey,
    /// The Gate base URL. Default [`DEFAULT_BASE_URL`].
    pub base_url: String,
    /// Time allowed to connect (TCP + TLS). Default 10 s.
    pub connect_timeout: Duration,
    /// Time allowed for one request, start to last byte. Default 30 s.
    pub attempt_timeout: Duration,
    /// Retries and their budget.
    pub retry: RetryPolicy,
    /// A payout without a final result this long after its last change is overdue, and
    /// [`Client::reconcile`](crate::Client::reconcile) asks the status for it. Default 10 min.
    pub overdue_after: Duration,
    /// Whether a status response without a signature may change a recorded payout. Default
    /// `false`; see [`Config::with_unsigned_status`].
    pub accept_unsigned_status: bool,
    /// The project's amount limits, checked before a new payout is recorded, atomically with
    /// recording it ([`PayoutStore::insert`](crate::PayoutStore::insert)): a payout over a
    /// limit is [`Error::OverLimit`], and nothing is recorded or sent. Default: none.
    pub limits: Limits,
}

/// The production Gate.
pub const DEFAULT_BASE_URL: &str = rp_transport::DEFAULT_BASE_URL;

impl Config {
    /// A configuration with the defaults for everything but the project and the key.
    pub fn new(project_id: ProjectId, secret_key: SecretKey) -> Self {
        Self {
            project_id,
            secret_key,
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: rp_transport::DEFAULT_CONNECT_TIMEOUT,
            attempt_timeout: rp_transport::DEFAULT_ATTEMPT_TIMEOUT,
            retry: RetryPolicy::default(),
            overdue_after: Duration::from_secs(600),
            accept_unsigned_status: false,
            limits: Limits::none(rp_model::Currency::KZT),
        }
    }

    /// Reads `RP_PROJECT_ID`, `RP_SECRET_KEY` and (optional) `RP_BASE_URL` from the process
    /// environment. See [`Config::from_env_map`].
    ///
    /// # Errors
    ///
    /// As [`Config::from_env_map`].
    pub fn from_env() -> Result<Self, Error> {
        Self::from_env_map(|name| std::env::var(name).ok())
    }

    /// Reads the configuration through `get` (a variable name to its value), so tests need not
    /// touch the process environment.
    ///
    /// # Errors
    ///
    /// [`Error::Config`] naming the variable: `RP_PROJECT_ID` missing or not a positive integer,
    /// `RP_SECRET_KEY` missing or empty, `RP_BASE_URL` not an `http(s)://` URL.
    pub fn from_env_map(get: impl Fn(&str) -> Option<String>) -> Result<Self, Error> {
        let raw_project = get(ENV_PROJECT_ID).ok_or_else(|| Error::Config {
            setting: ENV_PROJECT_ID,
            reason: "is not set; set it to your project's numeric ID (e.g. 1234)".to_owned(),
        })?;
        let project_id: ProjectId = raw_project.parse().map_err(|_| Error::Config {
            setting: ENV_PROJECT_ID,
            reason: format!(
                "{:?} is not a positive integer; set it to your project's numeric ID",
                raw_project.chars().take(40).collect::<String>()
            ),
        })?;
        let secret = get(ENV_SECRET_KEY).ok_or_else(|| Error::Config {
            setting: ENV_SECRET_KEY,
            reason: "is not set; set it to your project's secret key (Dashboard → Projects)"
                .to_owned(),
        })?;
        if secret.trim().is_empty() {
            return Err(Error::Config {
                setting: ENV_SECRET_KEY,
                reason: "is empty; set it to your project's secret key".to_owned(),
            });
        }
        if secret.trim() != secret {
            return Err(Error::Config {
                setting: ENV_SECRET_KEY,
                reason: "starts or ends with whitespace (the key is used byte for byte); remove it"
                    .to_owned(),
            });
        }
        let mut config = Self::new(project_id, SecretKey::new(secret));
        if let Some(base_url) = get(ENV_BASE_URL).filter(|v| !v.trim().is_empty()) {
            check_base_url(&base_url)?;
            config.base_url = base_url.trim().to_owned();
        }
        Ok(config)
    }

    /// Sets the base URL (e.g. a local simulator).
    #[must_use]
    pub fn with_base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Sets the connect and attempt timeouts.
    #[must_use]
    pub fn with_timeouts(mut self, connect: Duration, attempt: Duration) -> Self {
        self.connect_timeout = connect;
        self.attempt_timeout = attempt;
        self
    }

    /// Sets the retry policy.
    #[must_use]
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets when an unsettled payout counts as overdue.
    #[must_use]
    pub fn with_overdue_after(mut self, overdue_after: Duration) -> Self {
        self.overdue_after = overdue_after;
        self
    }

    /// Whether a status response **without a signature** may settle or resolve a payout
    /// (default `false`).
    ///
    /// Status responses carry payment details, so per the platform's signature overview they
    /// are signed (spec/gate-api.md §4, E1; this is **inferred**, not confirmed). By default an
    /// unsigned one is still returned by [`Client::status`](crate::Client::status) (with
    /// `signature_verified: false`) but is not applied to the store: a payout call does not
    /// take it as "the platform has the payout" (it ends in an unknown outcome, to reconcile)
    /// and [`Client::reconcile`](crate::Client::reconcile) reports it as failed. Enable this
    /// only if your project's status responses are really unsigned. Error envelopes (e.g.
    /// 3061 "not found") are usable unsigned either way. A signature that is present and wrong
    /// is always refused.
    #[must_use]
    pub fn with_unsigned_status(mut self, accept: bool) -> Self {
        self.accept_unsigned_status = accept;
        self
    }

    /// The project's amount limits ([`Config::limits`]).
    #[must_use]
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = limits;
        self
    }

    /// How long a payout call can run: `retry.max_elapsed + 2 × (connect_timeout +
    /// attempt_timeout)` (default 200 s). Every wait of a call fits `max_elapsed`, and the
    /// request started last can take one connect and attempt timeout more; the second one is
    /// margin (a status request after it, a slow store, clocks of different machines).
    ///
    /// A payout recorded as [`PayoutState::Created`](crate::PayoutState::Created) that last
    /// changed less than this ago is *in flight*: a call is sending it, and the platform may
    /// still answer 3061 for it, so [`Client::reconcile`](crate::Client::reconcile) does not
    /// ask about it and [`Client::payout`](crate::Client::payout) /
    /// [`Client::resume`](crate::Client::resume) do not send it again. Older, the call that
    /// sent it is gone (e.g. the process crashed): it is resolved through the status endpoint.
    pub fn in_flight_window(&self) -> Duration {
        let per_request = self.connect_timeout.saturating_add(self.attempt_timeout);
        self.retry
            .max_elapsed
            .saturating_add(per_request.saturating_mul(2))
    }

    /// The secret key (its `Debug` prints `SecretKey(***)`).
    pub fn secret_key(&self) -> &SecretKey {
        &self.secret_key
    }

    /// The transport a [`Client`](crate::Client) builds by default: a [`ReqwestTransport`]
    /// to the base URL with the timeouts. Built ahead, it checks the base URL (scheme, host,
    /// no credentials) before anything else is opened; give it to
    /// [`ClientBuilder::transport`](crate::ClientBuilder::transport).
    ///
    /// # Errors
    ///
    /// [`Error::Config`] for a base URL or timeouts the transport refuses.
    pub fn default_transport(&self) -> Result<ReqwestTransport, Error> {
        ReqwestTransport::builder()
            .base_url(&self.base_url)
            .connect_timeout(self.connect_timeout)
            .attempt_timeout(self.attempt_timeout)
            .build()
            .map_err(|e| Error::Config {
                setting: "transport",
                reason: e.to_string(),
            })
    }
}

fn check_base_url(url: &str) -> Result<(), Error> {
    let trimmed = url.trim();
    let rest = trimmed
        .strip_prefix("https://")
        .or_else(|| trimmed.strip_prefix("http://"));
    match rest {
        Some(host) if !host.is_empty() && !host.starts_with('/') => Ok(()),
        _ => Err(Error::Config {
            setting: ENV_BASE_URL,
            reason: format!(
                "{:?} is not an http:// or https:// URL (e.g. {DEFAULT_BASE_URL})",
                trimmed.chars().take(80).collect::<String>()
            ),
        }),
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("project_id", &self.project_id)
            .field("secret_key", &self.secret_key)
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("retry", &self.retry)
            .field("overdue_after", &self.overdue_after)
            .field("accept_unsigned_status", &self.accept_unsigned_status)
            .field("limits", &self.limits)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| (*v).to_owned())
        }
    }

    #[test]
    fn debug_hides_the_secret() {
        let config = Config::from_env_map(env(&[
            ("RP_PROJECT_ID", "1234"),
            ("RP_SECRET_KEY", "hunter2-secret"),
        ]))
        .unwrap();
        let shown = format!("{config:?} {config:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SecretKey(***)"), "{shown}");
    }

    #[test]
    fn the_in_flight_window_covers_a_whole_call() {
        let config = Config::new(ProjectId::new(1).unwrap(), SecretKey::from("k"));
        assert_eq!(config.in_flight_window(), Duration::from_secs(200));
        let config = config
            .with_timeouts(Duration::from_secs(1), Duration::from_secs(2))
            .with_retry(RetryPolicy {
                max_elapsed: Duration::from_secs(10),
                ..RetryPolicy::default()
            });
        assert_eq!(config.in_flight_window(), Duration::from_secs(16));
    }

    #[test]
    fn base_url_is_checked() {
        let ok = Config::from_env_map(env(&[
            ("RP_PROJECT_ID", "1"),
            ("RP_SECRET_KEY", "k"),
            ("RP_BASE_URL", "http://127.0.0.1:9000"),
        ]))
        .unwrap();
        assert_eq!(ok.base_url, "http://127.0.0.1:9000");
        for bad in ["ftp://x", "127.0.0.1:9000", "http://", "https:///path"] {
            let error = Config::from_env_map(env(&[
                ("RP_PROJECT_ID", "1"),
                ("RP_SECRET_KEY", "k"),
                ("RP_BASE_URL", bad),
            ]))
            .unwrap_err()
            .to_string();
            assert!(
                error.starts_with("invalid configuration `RP_BASE_URL`"),
                "{error}"
            );
        }
    }
}
