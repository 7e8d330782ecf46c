//! [`TransportError`] and the three delivery outcomes.

use std::time::Duration;

use crate::HttpResponse;

/// What is known about a request after an attempt: the one thing that matters before deciding
/// whether it may be sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Delivery {
    /// The request provably never left this process (bad URL or request, DNS failure, connection
    /// refused, TLS handshake failure, connect timeout). Sending it again is safe.
    NotSent,
    /// Bytes may have reached the server but no complete response came back (timeout after
    /// connecting, connection reset or closed mid-response, body cut off). The outcome is
    /// **unknown**: find it out (e.g. a status request) before sending again, and never send it
    /// again as a new payment.
    MaybeSent,
    /// The server answered with a complete HTTP response (any status, including 4xx and 5xx).
    /// Read the response to learn the outcome.
    Answered,
}

impl Delivery {
    /// The outcome of one [`Transport::post`](crate::Transport::post) call: `Answered` for any
    /// `Ok` response, otherwise [`TransportError::delivery`].
    pub fn of(result: &Result<HttpResponse, TransportError>) -> Self {
        match result {
            Ok(_) => Self::Answered,
            Err(error) => error.delivery(),
        }
    }
}

/// Longest reason text an error keeps, in bytes; longer text is cut at a character boundary.
const MAX_REASON_LEN: usize = 512;

/// Why a request got no complete HTTP response.
///
/// A complete response with any status (4xx and 5xx included) is **not** an error: it comes back as
/// `Ok(HttpResponse)`, because the Gate answers malformed requests with a non-200 status and a JSON
/// body that the caller must read. Every error is either [`Delivery::NotSent`] or
/// [`Delivery::MaybeSent`]; ask [`TransportError::delivery`]. Errors never contain a request body,
/// a header or a secret: at most the request path and a short reason.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TransportError {
    /// A transport setting is invalid (from the builder). Nothing was sent.
    #[error("invalid transport setting `{setting}`: {reason}")]
    #[non_exhaustive]
    InvalidConfig {
        /// The setting, e.g. `base_url` or `attempt_timeout`.
        setting: &'static str,
        /// What is wrong with it and what is accepted.
        reason: String,
    },

    /// The request could not be built locally (e.g. a path that does not start with `/`).
    /// Nothing was sent.
    #[error("request to {path} was not sent: it is invalid: {reason}")]
    #[non_exhaustive]
    InvalidRequest {
        /// The request path.
        path: String,
        /// What is wrong with the request.
        reason: String,
    },

    /// No connection could be made: DNS failure, connection refused, TLS handshake failure or
    /// connect timeout. Nothing was sent; sending again is safe.
    #[error(
        "request to {path} was not sent: could not connect{}: {reason}; it is safe to send it again",
        if *timed_out { " in time" } else { "" }
    )]
    #[non_exhaustive]
    Connect {
        /// The request path.
        path: String,
        /// Why the connection failed.
        reason: String,
        /// True when the connect timeout ran out.
        timed_out: bool,
    },

    /// No complete response arrived within the attempt timeout. The request may have been sent.
    #[error(
        "request to {path} may have been sent: no complete response within {} ms{}; find out its outcome (e.g. a status request) before sending it again",
        timeout.as_millis(),
        status_note(*status)
    )]
    #[non_exhaustive]
    Timeout {
        /// The request path.
        path: String,
        /// The attempt timeout that ran out.
        timeout: Duration,
        /// The status, when the headers arrived but the body did not finish in time.
        status: Option<u16>,
    },

    /// The connection failed after the request may have been written: reset or closed before or
    /// during the response, or a body cut off. The request may have been sent.
    #[error(
        "request to {path} may have been sent: the connection failed{}: {reason}; find out its outcome (e.g. a status request) before sending it again",
        status_note(*status)
    )]
    #[non_exhaustive]
    Interrupted {
        /// The request path.
        path: String,
        /// The status, when the headers arrived before the failure.
        status: Option<u16>,
        /// What failed.
        reason: String,
    },

    /// The server answered, but the body is longer than the transport accepts, so it was not read.
    /// The request reached the server and its outcome is unknown: treated as maybe sent.
    #[error(
        "request to {path} may have been sent: the HTTP {status} response body exceeds the {limit}-byte limit and was not read; find out its outcome (e.g. a status request), or raise `max_response_bytes`"
    )]
    #[non_exhaustive]
    ResponseTooLarge {
        /// The request path.
        path: String,
        /// The response status.
        status: u16,
        /// The configured limit in bytes.
        limit: usize,
    },
}

/// `" after HTTP 200 headers"` when a status is known, else nothing.
fn status_note(status: Option<u16>) -> String {
    status.map_or_else(String::new, |s| format!(" after HTTP {s} headers"))
}

/// Cuts `reason` to at most [`MAX_REASON_LEN`] bytes at a character boundary.
pub(crate) fn truncate_reason(reason: impl Into<String>) -> String {
    let mut reason = reason.into();
    if reason.len() > MAX_REASON_LEN {
        let mut end = MAX_REASON_LEN;
        while !reason.is_char_boundary(end) {
            end -= 1;
        }
        reason.truncate(end);
        reason.push('…');
    }
    reason
}

impl TransportError {
    /// Not sent: the request to `path` is invalid and was never sent (for custom transports and tests).
    pub fn not_sent_invalid(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidRequest {
            path: path.into(),
            reason: truncate_reason(reason),
        }
    }

    /// Not sent: no connection could be made for `path` (DNS, refused, TLS handshake).
    pub fn not_sent_connect(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Connect {
            path: path.into(),
            reason: truncate_reason(reason),
            timed_out: false,
        }
    }

    /// Not sent: connecting for `path` took longer than `timeout`.
    pub fn not_sent_connect_timeout(path: impl Into<String>, timeout: Duration) -> Self {
        Self::Connect {
            path: path.into(),
            reason: format!("no connection within {} ms", timeout.as_millis()),
            timed_out: true,
        }
    }

    /// Maybe sent: no complete response for `path` arrived within `timeout`.
    pub fn maybe_sent_timeout(path: impl Into<String>, timeout: Duration) -> Self {
        Self::Timeout {
            path: path.into(),
            timeout,
            status: None,
        }
    }

    /// Maybe sent: the connection for `path` failed after the request may have been written.
    pub fn maybe_sent_interrupted(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Interrupted {
            path: path.into(),
            status: None,
            reason: truncate_reason(reason),
        }
    }

    /// Maybe sent: the response to `path` (HTTP `status`) was larger than `limit` bytes, so it
    /// was not read. For other [`Transport`](crate::Transport) implementations.
    pub fn maybe_sent_too_large(path: impl Into<String>, status: u16, limit: usize) -> Self {
        Self::ResponseTooLarge {
            path: path.into(),
            status,
            limit,
        }
    }

    /// Whether the request was not sent or may have been sent (never [`Delivery::Answered`]:
    /// an answer is an `Ok(HttpResponse)`).
    pub fn delivery(&self) -> Delivery {
        match self {
            Self::InvalidConfig { .. } | Self::InvalidRequest { .. } | Self::Connect { .. } => {
                Delivery::NotSent
            }
            Self::Timeout { .. } | Self::Interrupted { .. } | Self::ResponseTooLarge { .. } => {
                Delivery::MaybeSent
            }
        }
    }

    /// True when the request provably was not sent: sending it again is safe.
    pub fn is_not_sent(&self) -> bool {
        self.delivery() == Delivery::NotSent
    }

    /// True when the request may have reached the server and its outcome is unknown.
    pub fn is_maybe_sent(&self) -> bool {
        self.delivery() == Delivery::MaybeSent
    }

    /// True for a timeout: the connect timeout (not sent) or the attempt timeout (maybe sent).
    pub fn is_timeout(&self) -> bool {
        matches!(
            self,
            Self::Timeout { .. }
                | Self::Connect {
                    timed_out: true,
                    ..
                }
        )
    }

    /// True when no connection could be made (DNS, refused, TLS handshake, connect timeout).
    pub fn is_connect(&self) -> bool {
        matches!(self, Self::Connect { .. })
    }

    /// The request path, when the error belongs to a request.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::InvalidConfig { .. } => None,
            Self::InvalidRequest { path, .. }
            | Self::Connect { path, .. }
            | Self::Timeout { path, .. }
            | Self::Interrupted { path, .. }
            | Self::ResponseTooLarge { path, .. } => Some(path),
        }
    }

    /// The HTTP status, when response headers arrived before the failure.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Timeout { status, .. } | Self::Interrupted { status, .. } => *status,
            Self::ResponseTooLarge { status, .. } => Some(*status),
            Self::InvalidConfig { .. } | Self::InvalidRequest { .. } | Self::Connect { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Headers;

    #[test]
    fn constructors_have_the_right_class() {
        let p = "/v2/payment/status";
        let cases = [
            (
                TransportError::not_sent_invalid(p, "bad"),
                Delivery::NotSent,
            ),
            (
                TransportError::not_sent_connect(p, "refused"),
                Delivery::NotSent,
            ),
            (
                TransportError::not_sent_connect_timeout(p, Duration::from_secs(1)),
                Delivery::NotSent,
            ),
            (
                TransportError::maybe_sent_timeout(p, Duration::from_secs(1)),
                Delivery::MaybeSent,
            ),
            (
                TransportError::maybe_sent_interrupted(p, "reset"),
                Delivery::MaybeSent,
            ),
            (
                TransportError::maybe_sent_too_large(p, 200, 1024),
                Delivery::MaybeSent,
            ),
        ];
        for (error, delivery) in cases {
            assert_eq!(error.delivery(), delivery, "{error}");
            assert_eq!(error.path(), Some(p));
            assert_eq!(Delivery::of(&Err(error.clone())), delivery);
            assert_eq!(error.is_not_sent(), delivery == Delivery::NotSent);
            assert_eq!(error.is_maybe_sent(), delivery == Delivery::MaybeSent);
        }
        let ok = Ok(HttpResponse::new(500, Headers::new(), "{}"));
        assert_eq!(Delivery::of(&ok), Delivery::Answered);
    }

    #[test]
    fn predicates() {
        let p = "/x";
        assert!(TransportError::maybe_sent_timeout(p, Duration::from_secs(1)).is_timeout());
        assert!(!TransportError::maybe_sent_timeout(p, Duration::from_secs(1)).is_connect());
        let ct = TransportError::not_sent_connect_timeout(p, Duration::from_secs(1));
        assert!(ct.is_timeout() && ct.is_connect());
        let c = TransportError::not_sent_connect(p, "refused");
        assert!(!c.is_timeout() && c.is_connect());
        assert!(!TransportError::maybe_sent_interrupted(p, "reset").is_timeout());
    }

    #[test]
    fn messages_name_the_path_and_what_to_do() {
        let e =
            TransportError::maybe_sent_timeout("/v2/payment/status", Duration::from_millis(300));
        let text = e.to_string();
        assert!(text.contains("/v2/payment/status"), "{text}");
        assert!(text.contains("300 ms"), "{text}");
        assert!(text.contains("may have been sent"), "{text}");
        assert!(text.contains("status request"), "{text}");

        let e = TransportError::not_sent_connect("/p", "connection refused");
        let text = e.to_string();
        assert!(text.contains("was not sent"), "{text}");
        assert!(text.contains("connection refused"), "{text}");
        assert!(text.contains("safe to send it again"), "{text}");

        let e = TransportError::Interrupted {
            path: "/p".into(),
            status: Some(200),
            reason: "body cut off".into(),
        };
        assert!(e.to_string().contains("after HTTP 200 headers"), "{e}");
        assert_eq!(e.status(), Some(200));
    }

    #[test]
    fn long_reasons_are_truncated_at_a_char_boundary() {
        let reason = "ж".repeat(1000);
        let e = TransportError::maybe_sent_interrupted("/p", reason);
        let TransportError::Interrupted { reason, .. } = &e else {
            unreachable!("constructor builds Interrupted")
        };
        assert!(reason.len() <= MAX_REASON_LEN + '…'.len_utf8());
        assert!(reason.ends_with('…'));
    }
}
