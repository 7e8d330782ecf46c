//! The small request and response types a [`Transport`](crate::Transport) works with.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

/// One JSON `POST` to the Gate: a path under the transport's base URL and a body.
///
/// `Debug` shows the path and the body's length only: a Gate request body holds a signature and a
/// phone number.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpRequest {
    /// The endpoint path, starting with `/`, e.g. `/v2/payment/status`.
    pub path: String,
    /// The JSON body, sent as is.
    pub body: Bytes,
}

impl HttpRequest {
    /// A request of `body` to `path` (e.g. `/v2/payment/mobile/payout`).
    pub fn new(path: impl Into<String>, body: impl Into<Bytes>) -> Self {
        Self {
            path: path.into(),
            body: body.into(),
        }
    }
}

impl fmt::Debug for HttpRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpRequest")
            .field("path", &self.path)
            .field("body", &BodyLen(self.body.len()))
            .finish()
    }
}

/// A complete HTTP response, whatever its status.
///
/// `Debug` shows the status, the headers (cookies and credentials redacted) and the body's length
/// only: a Gate response body may hold a phone number.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HttpResponse {
    /// The HTTP status code, e.g. `200`.
    pub status: u16,
    /// The response headers.
    pub headers: Headers,
    /// The whole response body.
    pub body: Bytes,
}

impl HttpResponse {
    /// A response with `status`, `headers` and `body`.
    pub fn new(status: u16, headers: Headers, body: impl Into<Bytes>) -> Self {
        Self {
            status,
            headers,
            body: body.into(),
        }
    }

    /// True for a `2xx` status.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The first value of the header `name` (case-insensitive), if present.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name)
    }

    /// The `Retry-After` header, if present and well formed (see [`RetryAfter`]).
    pub fn retry_after(&self) -> Option<RetryAfter> {
        self.header("retry-after").and_then(RetryAfter::parse)
    }
}

impl fmt::Debug for HttpResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpResponse")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body", &BodyLen(self.body.len()))
            .finish()
    }
}

/// Prints `<N bytes>` instead of a body.
struct BodyLen(usize);

impl fmt::Debug for BodyLen {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes>", self.0)
    }
}

/// Response headers: an ordered list of `(name, value)` pairs; names are stored in lower case
/// and looked up case-insensitively. A value that is not UTF-8 is kept lossily converted.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Headers(Vec<(String, String)>);

/// Headers whose values `Debug` never prints.
const REDACTED_HEADERS: [&str; 4] = [
    "authorization",
    "cookie",
    "proxy-authorization",
    "set-cookie",
];

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a header (the name is lower-cased) and returns the list, for building in one expression.
    #[must_use]
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Self {
        self.push(name, value);
        self
    }

    /// Adds a header; the name is lower-cased. Repeated names are kept in order.
    pub fn push(&mut self, name: &str, value: impl Into<String>) {
        self.0.push((name.to_ascii_lowercase(), value.into()));
    }

    /// The first value of the header `name` (case-insensitive), if present.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// All `(name, value)` pairs in the order received.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// The number of header lines.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when there is no header.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Headers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_map()
            .entries(self.0.iter().map(|(n, v)| {
                let shown = if REDACTED_HEADERS.contains(&n.as_str()) {
                    "<redacted>"
                } else {
                    v.as_str()
                };
                (n, shown)
            }))
            .finish()
    }
}

impl FromIterator<(String, String)> for Headers {
    fn from_iter<I: IntoIterator<Item = (String, String)>>(iter: I) -> Self {
        let mut headers = Self::new();
        for (name, value) in iter {
            headers.push(&name, value);
        }
        headers
    }
}

/// The value of a `Retry-After` header.
///
/// The delta-seconds form is parsed into a [`Duration`]. The HTTP-date form is kept as the text the
/// server sent, unparsed: this crate carries no date parser, and a caller that wants to honour a
/// date can parse it with one of its own.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryAfter {
    /// `Retry-After: 120`: wait this long.
    Delay(Duration),
    /// `Retry-After: Fri, 31 Dec 1999 23:59:59 GMT`: the date as sent, unparsed.
    Date(String),
}

impl RetryAfter {
    /// Parses a `Retry-After` value: digits only are delta-seconds; any other non-empty value is
    /// kept as an HTTP-date. `None` for an empty value or a number too large for `u64`.
    pub fn parse(value: &str) -> Option<Self> {
        let value = value.trim();
        if value.is_empty() {
            return None;
        }
        if value.bytes().all(|b| b.is_ascii_digit()) {
            return value
                .parse::<u64>()
                .ok()
                .map(|secs| Self::Delay(Duration::from_secs(secs)));
        }
        Some(Self::Date(value.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_are_case_insensitive_and_keep_order() {
        let headers = Headers::new()
            .with("Content-Type", "application/json")
            .with("X-A", "1")
            .with("x-a", "2");
        assert_eq!(headers.get("content-type"), Some("application/json"));
        assert_eq!(headers.get("CONTENT-TYPE"), Some("application/json"));
        assert_eq!(headers.get("x-a"), Some("1"));
        assert_eq!(headers.get("missing"), None);
        assert_eq!(headers.len(), 3);
        let names: Vec<_> = headers.iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["content-type", "x-a", "x-a"]);
    }

    #[test]
    fn retry_after_parses_seconds_and_keeps_dates() {
        assert_eq!(
            RetryAfter::parse("120"),
            Some(RetryAfter::Delay(Duration::from_secs(120)))
        );
        assert_eq!(
            RetryAfter::parse(" 0 "),
            Some(RetryAfter::Delay(Duration::ZERO))
        );
        assert_eq!(
            RetryAfter::parse("Fri, 31 Dec 1999 23:59:59 GMT"),
            Some(RetryAfter::Date("Fri, 31 Dec 1999 23:59:59 GMT".to_owned()))
        );
        assert_eq!(RetryAfter::parse(""), None);
        assert_eq!(RetryAfter::parse("99999999999999999999999"), None);
    }

    #[test]
    fn response_helpers() {
        let response = HttpResponse::new(429, Headers::new().with("Retry-After", "3"), "{}");
        assert!(!response.is_success());
        assert_eq!(
            response.retry_after(),
            Some(RetryAfter::Delay(Duration::from_secs(3)))
        );
        assert!(HttpResponse::new(204, Headers::new(), "").is_success());
        assert_eq!(
            HttpResponse::new(200, Headers::new(), "").retry_after(),
            None
        );
    }

    #[test]
    fn debug_never_prints_bodies_or_cookies() {
        let request = HttpRequest::new("/v2/payment/status", r#"{"signature":"SECRETSIG"}"#);
        let shown = format!("{request:?}");
        assert!(shown.contains("/v2/payment/status"), "{shown}");
        assert!(shown.contains("<25 bytes>"), "{shown}");
        assert!(!shown.contains("SECRETSIG"), "{shown}");

        let response = HttpResponse::new(
            200,
            Headers::new()
                .with("Set-Cookie", "session=TOPSECRET")
                .with("X-Request-Id", "abc"),
            r#"{"account":{"number":"77011234567"}}"#,
        );
        let shown = format!("{response:?}");
        assert!(!shown.contains("77011234567"), "{shown}");
        assert!(!shown.contains("TOPSECRET"), "{shown}");
        assert!(shown.contains("abc"), "{shown}");
    }
}
