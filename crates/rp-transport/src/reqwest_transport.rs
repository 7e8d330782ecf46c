//! [`ReqwestTransport`]: the [`Transport`] built on reqwest, rustls and the aws-lc-rs provider.

use std::error::Error as _;
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use reqwest::Url;
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, HeaderValue};
use rustls_platform_verifier::BuilderVerifierExt as _;
use tracing::Instrument as _;
use tracing::field::Empty;

use crate::error::truncate_reason;
use crate::{BoxFuture, Delivery, Headers, HttpRequest, HttpResponse, Transport, TransportError};

/// The production Gate host (spec §6). The test environment is the same host with a test project.
pub const DEFAULT_BASE_URL: &str = "https://api.rocketpay.kz";

/// Default time allowed to open a connection (TCP and TLS): 10 s.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Default time allowed for one whole attempt, from connecting to the last body byte: 30 s.
pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(30);

/// Default largest response body accepted: 16 MiB (Gate responses are a few KiB).
pub const DEFAULT_MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;

/// The `User-Agent` sent: `rp-transport/<version>`, optionally followed by a suffix.
pub const USER_AGENT: &str = concat!(env!("CARGO_PKG_NAME"), "/", env!("CARGO_PKG_VERSION"));

/// Longest `User-Agent` suffix accepted, in bytes.
const MAX_USER_AGENT_SUFFIX_LEN: usize = 200;

/// The [`Transport`] built on reqwest (HTTP/1.1, rustls with the aws-lc-rs provider, no OpenSSL).
///
/// One pooled client: connections are reused across requests, and clones share the pool.
/// Each [`post`](Transport::post) is one attempt: reqwest's retries and redirects are off (hyper
/// may still replay a request on a pooled connection that it finds closed *before* writing
/// anything, which is safe). Proxies from the `HTTPS_PROXY` / `HTTP_PROXY` / `NO_PROXY`
/// environment variables are honoured.
///
/// TLS (1.2 and 1.3) uses rustls with the aws-lc-rs provider, and verifies servers with the platform
/// verifier against the system's CA certificates, so an `https` base URL needs them installed
/// (e.g. the `ca-certificates` package); an `http` base URL, such as a local simulator, needs none.
///
/// Build one with [`ReqwestTransport::builder`]; see the crate docs for an example.
#[derive(Clone)]
pub struct ReqwestTransport {
    client: reqwest::Client,
    base_url: Arc<str>,
    origin: Url,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    max_response_bytes: usize,
    user_agent: Arc<str>,
}

impl fmt::Debug for ReqwestTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReqwestTransport")
            .field("base_url", &self.base_url)
            .field("connect_timeout", &self.connect_timeout)
            .field("attempt_timeout", &self.attempt_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .field("user_agent", &self.user_agent)
            .finish_non_exhaustive()
    }
}

/// Settings for a [`ReqwestTransport`]; every setting is checked by [`build`](Self::build).
#[derive(Debug, Clone)]
#[must_use]
pub struct ReqwestTransportBuilder {
    base_url: String,
    connect_timeout: Duration,
    attempt_timeout: Duration,
    max_response_bytes: usize,
    user_agent_suffix: Option<String>,
}

impl Default for ReqwestTransportBuilder {
    fn default() -> Self {
        Self {
            base_url: DEFAULT_BASE_URL.to_owned(),
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            attempt_timeout: DEFAULT_ATTEMPT_TIMEOUT,
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            user_agent_suffix: None,
        }
    }
}

impl ReqwestTransportBuilder {
    /// The base URL the request paths are appended to: an absolute `http` or `https` URL without
    /// credentials, query or fragment; a path prefix is allowed. Default [`DEFAULT_BASE_URL`].
    pub fn base_url(mut self, base_url: impl Into<String>) -> Self {
        self.base_url = base_url.into();
        self
    }

    /// Time allowed to open a connection, TCP and TLS. Must be non-zero; default 10 s. A connect
    /// timeout is reported as not sent. Keep it shorter than the attempt timeout: when the attempt
    /// timeout runs out first, the error is (conservatively) maybe sent.
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Time allowed for one whole attempt, from connecting to the last body byte. Must be
    /// non-zero; default 30 s. Running out is reported as maybe sent.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.attempt_timeout = timeout;
        self
    }

    /// Largest response body accepted, in bytes. Must be non-zero; default 16 MiB.
    pub fn max_response_bytes(mut self, limit: usize) -> Self {
        self.max_response_bytes = limit;
        self
    }

    /// Text appended to the `User-Agent` after a space, e.g. `my-shop/2.3` gives
    /// `rp-transport/0.1.0 my-shop/2.3`. Printable ASCII, at most 200 bytes.
    pub fn user_agent_suffix(mut self, suffix: impl Into<String>) -> Self {
        self.user_agent_suffix = Some(suffix.into());
        self
    }

    /// Checks the settings and builds the transport with its connection pool.
    ///
    /// # Errors
    ///
    /// [`TransportError::InvalidConfig`] naming the setting when the base URL is not an absolute
    /// `http`/`https` URL (or has credentials, a query or a fragment), a timeout or the body limit
    /// is zero, the User-Agent suffix is not printable ASCII, or (for an `https` base URL) the
    /// system's CA certificates cannot be loaded.
    pub fn build(self) -> Result<ReqwestTransport, TransportError> {
        let origin = parse_base_url(&self.base_url)?;
        let base_url: Arc<str> = origin.as_str().trim_end_matches('/').into();
        require_non_zero("connect_timeout", self.connect_timeout)?;
        require_non_zero("attempt_timeout", self.attempt_timeout)?;
        if self.max_response_bytes == 0 {
            return Err(invalid_config(
                "max_response_bytes",
                "must be at least 1 byte (default 16 MiB)",
            ));
        }
        let user_agent: Arc<str> = match &self.user_agent_suffix {
            None => USER_AGENT.into(),
            Some(suffix) => format!("{USER_AGENT} {}", check_suffix(suffix)?).into(),
        };

        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));

        let client = reqwest::Client::builder()
            .tls_backend_preconfigured(tls_config(origin.scheme() == "https")?)
            .user_agent(&*user_agent)
            .default_headers(headers)
            .connect_timeout(self.connect_timeout)
            .timeout(self.attempt_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .retry(reqwest::retry::never())
            .referer(false)
            .build()
            .map_err(|e| invalid_config("http_client", describe(e)))?;

        Ok(ReqwestTransport {
            client,
            base_url,
            origin,
            connect_timeout: self.connect_timeout,
            attempt_timeout: self.attempt_timeout,
            max_response_bytes: self.max_response_bytes,
            user_agent,
        })
    }
}

impl ReqwestTransport {
    /// A builder with the defaults: production host, 10 s connect, 30 s attempt, 16 MiB bodies.
    pub fn builder() -> ReqwestTransportBuilder {
        ReqwestTransportBuilder::default()
    }

    /// The base URL, without a trailing `/`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// The connect timeout.
    pub fn connect_timeout(&self) -> Duration {
        self.connect_timeout
    }

    /// The per-attempt timeout.
    pub fn attempt_timeout(&self) -> Duration {
        self.attempt_timeout
    }

    /// The largest response body accepted, in bytes.
    pub fn max_response_bytes(&self) -> usize {
        self.max_response_bytes
    }

    /// The `User-Agent` sent.
    pub fn user_agent(&self) -> &str {
        &self.user_agent
    }

    /// The full URL for `path`, checked to stay on the base URL's origin.
    fn url_for(&self, path: &str) -> Result<Url, TransportError> {
        let invalid = |reason: &str| TransportError::not_sent_invalid(path, reason);
        if !path.starts_with('/') || path.starts_with("//") {
            return Err(invalid(
                "the path must start with a single `/`, e.g. `/v2/payment/status`",
            ));
        }
        if path
            .chars()
            .any(|c| c.is_control() || c.is_whitespace() || c == '?' || c == '#')
        {
            return Err(invalid(
                "the path must not contain spaces, control characters, `?` or `#`",
            ));
        }
        let url = Url::parse(&format!("{}{path}", self.base_url))
            .map_err(|e| invalid(&format!("the URL does not parse: {e}")))?;
        if url.origin() != self.origin.origin() {
            return Err(invalid("the path leaves the base URL's host"));
        }
        Ok(url)
    }

    /// One attempt, without the span.
    async fn attempt(&self, request: HttpRequest) -> Result<HttpResponse, TransportError> {
        let path = request.path.as_str();
        let url = self.url_for(path)?;
        let mut response = self
            .client
            .post(url)
            .body(request.body.clone())
            .send()
            .await
            .map_err(|e| self.classify(path, None, e))?;

        let status = response.status().as_u16();
        let headers: Headers = response
            .headers()
            .iter()
            .map(|(name, value)| {
                (
                    name.as_str().to_owned(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                )
            })
            .collect();
        let limit = self.max_response_bytes;
        let too_large = || TransportError::ResponseTooLarge {
            path: path.to_owned(),
            status,
            limit,
        };
        let declared = response.content_length();
        if declared.is_some_and(|len| len > u64::try_from(limit).unwrap_or(u64::MAX)) {
            return Err(too_large());
        }
        let capacity = declared
            .and_then(|len| usize::try_from(len).ok())
            .unwrap_or(0);
        let mut body = BytesMut::with_capacity(capacity);
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.classify(path, Some(status), e))?
        {
            if chunk.len() > limit.saturating_sub(body.len()) {
                return Err(too_large());
            }
            body.extend_from_slice(&chunk);
        }
        Ok(HttpResponse::new(status, headers, body.freeze()))
    }

    /// Turns a reqwest error into a [`TransportError`], conservatively: only errors that provably
    /// happened before any byte of the request was written (building it, connecting, TLS) are not
    /// sent; everything else may have been sent.
    fn classify(&self, path: &str, status: Option<u16>, error: reqwest::Error) -> TransportError {
        let path = path.to_owned();
        if error.is_builder() {
            return TransportError::InvalidRequest {
                path,
                reason: describe(error),
            };
        }
        if error.is_connect() {
            let timed_out = error.is_timeout();
            return if timed_out {
                TransportError::not_sent_connect_timeout(path, self.connect_timeout)
            } else {
                TransportError::not_sent_connect(path, describe(error))
            };
        }
        if error.is_timeout() {
            return TransportError::Timeout {
                path,
                timeout: self.attempt_timeout,
                status,
            };
        }
        TransportError::Interrupted {
            path,
            status,
            reason: describe(error),
        }
    }
}

impl Transport for ReqwestTransport {
    fn post(&self, request: HttpRequest) -> BoxFuture<'_, Result<HttpResponse, TransportError>> {
        let span = tracing::info_span!(
            "rp_transport.post",
            path = %request.path,
            status = Empty,
            duration_ms = Empty,
            outcome = Empty,
        );
        Box::pin(
            async move {
                let started = Instant::now();
                let result = self.attempt(request).await;
                record_outcome(&result, started.elapsed());
                result
            }
            .instrument(span),
        )
    }
}

/// Records status, duration and outcome on the current span and logs one event. Nothing from
/// the bodies or headers is recorded.
fn record_outcome(result: &Result<HttpResponse, TransportError>, elapsed: Duration) {
    let span = tracing::Span::current();
    let duration_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
    let outcome = match Delivery::of(result) {
        Delivery::NotSent => "not_sent",
        Delivery::MaybeSent => "maybe_sent",
        Delivery::Answered => "answered",
    };
    span.record("duration_ms", duration_ms);
    span.record("outcome", outcome);
    match result {
        Ok(response) => {
            span.record("status", response.status);
            tracing::debug!(
                status = response.status,
                duration_ms,
                outcome,
                "gate request answered"
            );
        }
        Err(error) => {
            if let Some(status) = error.status() {
                span.record("status", status);
            }
            tracing::debug!(duration_ms, outcome, %error, "gate request failed");
        }
    }
}

/// The rustls configuration: aws-lc-rs provider, TLS 1.2 and 1.3, HTTP/1.1 by ALPN. For an `https`
/// base URL the server is verified with the platform's verifier and CA certificates; an `http`
/// base URL (e.g. a local simulator) never does TLS, so it gets an empty root store and needs no
/// system certificates.
fn tls_config(https: bool) -> Result<rustls::ClientConfig, TransportError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid_config("tls", format!("no usable TLS version: {e}")))?;
    let mut config = if https {
        builder
            .with_platform_verifier()
            .map_err(|e| {
                invalid_config(
                    "tls",
                    format!(
                        "could not load the system's CA certificates ({e}); install them (e.g. the `ca-certificates` package)"
                    ),
                )
            })?
            .with_no_client_auth()
    } else {
        builder
            .with_root_certificates(rustls::RootCertStore::empty())
            .with_no_client_auth()
    };
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(config)
}

/// Checks a base URL; returns it parsed.
fn parse_base_url(value: &str) -> Result<Url, TransportError> {
    let shown = if value.contains('@') {
        "(value not shown: it may hold credentials)".to_owned()
    } else {
        format!("`{}`", truncate_reason(value))
    };
    let bad = |what: &str| {
        invalid_config(
            "base_url",
            format!(
                "{shown} {what}; expected an absolute http or https URL such as `{DEFAULT_BASE_URL}`"
            ),
        )
    };
    let url = Url::parse(value).map_err(|e| bad(&format!("is not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(&format!("has the scheme `{}`", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(bad("has no host"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("contains credentials"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("has a query or fragment"));
    }
    Ok(url)
}

/// Checks a User-Agent suffix; returns it trimmed.
fn check_suffix(suffix: &str) -> Result<&str, TransportError> {
    let suffix = suffix.trim();
    if suffix.is_empty() {
        return Err(invalid_config("user_agent_suffix", "is empty"));
    }
    if suffix.len() > MAX_USER_AGENT_SUFFIX_LEN {
        return Err(invalid_config(
            "user_agent_suffix",
            format!(
                "is {} bytes long; at most {MAX_USER_AGENT_SUFFIX_LEN} are allowed",
                suffix.len()
            ),
        ));
    }
    if !suffix.bytes().all(|b| b == b' ' || b.is_ascii_graphic()) {
        return Err(invalid_config(
            "user_agent_suffix",
            "must be printable ASCII (letters, digits, punctuation, spaces)",
        ));
    }
    Ok(suffix)
}

fn require_non_zero(setting: &'static str, timeout: Duration) -> Result<(), TransportError> {
    if timeout.is_zero() {
        return Err(invalid_config(
            setting,
            "must be greater than zero (a zero timeout would fail every request)",
        ));
    }
    Ok(())
}

fn invalid_config(setting: &'static str, reason: impl Into<String>) -> TransportError {
    TransportError::InvalidConfig {
        setting,
        reason: truncate_reason(reason),
    }
}

/// A reqwest error's message and causes, without the URL, joined by `: `.
fn describe(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut parts = vec![error.to_string()];
    let mut source = error.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        // Some errors repeat their cause in their own message; keep each text once.
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    truncate_reason(parts.join(": "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn setting_of(result: Result<ReqwestTransport, TransportError>) -> &'static str {
        match result {
            Err(TransportError::InvalidConfig { setting, .. }) => setting,
            other => panic!("expected InvalidConfig, got {other:?}"),
        }
    }

    fn message_of(result: Result<ReqwestTransport, TransportError>) -> String {
        result.expect_err("expected an error").to_string()
    }

    #[test]
    fn defaults_are_production_and_sane() {
        let transport = ReqwestTransport::builder().build().unwrap();
        assert_eq!(transport.base_url(), "https://api.rocketpay.kz");
        assert_eq!(transport.connect_timeout(), Duration::from_secs(10));
        assert_eq!(transport.attempt_timeout(), Duration::from_secs(30));
        assert_eq!(transport.max_response_bytes(), 16 * 1024 * 1024);
        assert_eq!(transport.user_agent(), "rp-transport/0.1.0");
    }

    #[test]
    fn base_url_accepts_http_https_and_a_prefix() {
        for (input, stored) in [
            ("https://api.rocketpay.kz/", "https://api.rocketpay.kz"),
            ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
            ("http://localhost:8080/gate/", "http://localhost:8080/gate"),
        ] {
            let t = ReqwestTransport::builder().base_url(input).build().unwrap();
            assert_eq!(t.base_url(), stored);
        }
    }

    #[test]
    fn base_url_rejections_name_the_problem() {
        let cases = [
            ("", "is not an absolute URL"),
            ("api.rocketpay.kz", "is not an absolute URL"),
            ("/v2/payment", "is not an absolute URL"),
            ("ftp://api.rocketpay.kz", "has the scheme `ftp`"),
            ("mailto:someone@example.com", "has the scheme `mailto`"),
            ("https://api.rocketpay.kz/?a=1", "has a query or fragment"),
            ("https://api.rocketpay.kz/#x", "has a query or fragment"),
            ("https://user:pass@api.rocketpay.kz", "contains credentials"),
        ];
        for (input, expected) in cases {
            let result = ReqwestTransport::builder().base_url(input).build();
            let message = message_of(result);
            assert!(message.contains(expected), "{input}: {message}");
            assert!(message.contains("base_url"), "{input}: {message}");
        }
        let message = message_of(
            ReqwestTransport::builder()
                .base_url("https://user:hunter2@api.rocketpay.kz")
                .build(),
        );
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn zero_settings_are_rejected() {
        let zero = Duration::ZERO;
        assert_eq!(
            setting_of(ReqwestTransport::builder().connect_timeout(zero).build()),
            "connect_timeout"
        );
        assert_eq!(
            setting_of(ReqwestTransport::builder().attempt_timeout(zero).build()),
            "attempt_timeout"
        );
        assert_eq!(
            setting_of(ReqwestTransport::builder().max_response_bytes(0).build()),
            "max_response_bytes"
        );
        let error = ReqwestTransport::builder()
            .attempt_timeout(zero)
            .build()
            .unwrap_err();
        assert!(error.is_not_sent());
        assert_eq!(error.path(), None);
    }

    #[test]
    fn user_agent_suffix() {
        let t = ReqwestTransport::builder()
            .user_agent_suffix(" my-shop/2.3 ")
            .build()
            .unwrap();
        assert_eq!(t.user_agent(), "rp-transport/0.1.0 my-shop/2.3");
        for bad in ["", "   ", "shop\r\nX-Evil: 1", "магазин", &"a".repeat(201)] {
            assert_eq!(
                setting_of(ReqwestTransport::builder().user_agent_suffix(bad).build()),
                "user_agent_suffix",
                "{bad:?}"
            );
        }
    }

    #[test]
    fn paths_are_checked_and_stay_on_the_origin() {
        let t = ReqwestTransport::builder()
            .base_url("http://127.0.0.1:9/gate")
            .build()
            .unwrap();
        assert_eq!(
            t.url_for("/v2/payment/status").unwrap().as_str(),
            "http://127.0.0.1:9/gate/v2/payment/status"
        );
        for bad in [
            "v2/payment",
            "//evil.example/x",
            "/a b",
            "/a?x=1",
            "/a#f",
            "/a\n",
            "",
        ] {
            let error = t.url_for(bad).unwrap_err();
            assert!(
                matches!(error, TransportError::InvalidRequest { .. }),
                "{bad:?}: {error:?}"
            );
            assert!(error.is_not_sent());
        }
    }

    #[test]
    fn debug_shows_settings() {
        let t = ReqwestTransport::builder().build().unwrap();
        let shown = format!("{t:?}");
        assert!(shown.contains("api.rocketpay.kz"), "{shown}");
        assert!(shown.contains("rp-transport/0.1.0"), "{shown}");
    }
}
