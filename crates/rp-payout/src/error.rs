//! The one error type of `rp-payout`.

use rp_model::{PaymentId, ResponseCode};

/// Longest response-body excerpt an error keeps, in characters.
const MAX_BODY_EXCERPT: usize = 300;

/// Everything that can go wrong in the payout client.
///
/// Each message names what was wrong (setting, field, code, payment ID) and, where it helps,
/// what to do. No variant ever contains the secret key; phone numbers are masked.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A configuration value is missing or malformed (environment variable or option).
    #[error("invalid configuration `{setting}`: {reason}")]
    Config {
        /// The setting or environment variable, e.g. `RP_PROJECT_ID`.
        setting: &'static str,
        /// What is wrong and what is expected.
        reason: String,
    },

    /// The request itself is invalid (a model value such as a payment ID or a phone number).
    #[error("invalid request: {0}")]
    InvalidRequest(#[from] rp_model::Error),

    /// The payment ID belongs to a different payout: recorded in the store with different
    /// details or the merchant's metadata (nothing was sent), or found on the platform with a
    /// different amount or currency (this payout is not registered under it and is not sent
    /// again).
    #[error(
        "payment ID {payment_id} {}",
        match (platform, same_details) {
            (None, false) => "is already recorded for a different payout (phone, amount, customer or parameters differ); nothing was sent. A new payout needs a new payment ID".to_owned(),
            (None, true) => "is already recorded for a payout with the same phone, amount and customer but other merchant's metadata (one made through the API, say); nothing was sent. That payout is this payee's: check it before paying this payee again".to_owned(),
            (Some(found), _) => format!("is used on the platform by a different payout ({found}); this payout is not registered under it and will not be sent under it. Check that payment in the Dashboard; this payout needs a new payment ID"),
        }
    )]
    PaymentIdConflict {
        /// The payment ID.
        payment_id: PaymentId,
        /// `None` when the store holds the different payout; otherwise how the payment the
        /// platform holds under this ID differs (amount, currency).
        platform: Option<String>,
        /// The store's payout has the same details (phone, amount, customer, parameters) and
        /// differs only by the merchant's metadata ([`crate::PayoutRecord::metadata`]): its
        /// payee is this one, so paying again under a new payment ID would pay them twice.
        same_details: bool,
    },

    /// No payout is recorded under the payment ID, but the store holds it for a different
    /// payout to come ([`crate::Inserted::Held`]: a batch's row not paid yet, in `rp-ledger`):
    /// nothing was recorded or sent.
    #[error(
        "payment ID {payment_id} is held by {holder} for a different payout, not paid yet; \
         nothing was recorded or sent. Let it be paid there, or use another payment ID for a \
         different payout"
    )]
    PaymentIdHeld {
        /// The payment ID.
        payment_id: PaymentId,
        /// What holds it, as the store names it (e.g. `batch 5f3a… (its line 3)`).
        holder: String,
    },

    /// The payout does not fit the project's amount limits
    /// ([`Config::limits`](crate::Config::limits)), counting what the store already holds:
    /// it was neither recorded nor sent. The reason names the limit, the amount and what
    /// remains.
    #[error("payout {payment_id} not sent: {reason}")]
    OverLimit {
        /// The payment ID.
        payment_id: PaymentId,
        /// Which limit, and by how much.
        reason: Box<rp_model::LimitError>,
    },

    /// The platform refused the request with a code: it was **not** registered.
    #[error(
        "the platform rejected {what}{}: code {code} ({message}){}",
        payment_id.as_ref().map(|id| format!(" for payment ID {id}")).unwrap_or_default(),
        field.as_ref().map(|f| format!(", field `{f}`")).unwrap_or_default()
    )]
    Rejected {
        /// What was requested (`payout`, `status`, `operator list`).
        what: &'static str,
        /// The payment ID, when the request had one.
        payment_id: Option<PaymentId>,
        /// The HTTP status of the answer (`None` when replayed from the store).
        http_status: Option<u16>,
        /// The platform code (e.g. `3041`, `3261`, `2004`).
        code: ResponseCode,
        /// The platform message (or the code table's message when the answer had none).
        message: String,
        /// The request field the error is about, if the platform named one.
        field: Option<String>,
    },

    /// The platform does not know this payment (code 3061).
    #[error(
        "payment ID {payment_id} is not known to the platform (code 3061); if it was sent less than 10 seconds ago, ask again later"
    )]
    NotFound {
        /// The payment ID.
        payment_id: PaymentId,
        /// Whether the answer was signed and its signature verified. Only a signed "not
        /// found" changes a recorded payout (reconcile), unless
        /// [`Config::with_unsigned_status`](crate::Config::with_unsigned_status) allows it.
        signature_verified: bool,
    },

    /// The retry budget ran out and it is not known whether the platform has the payout.
    #[error(
        "the outcome of payout {payment_id} is unknown after {attempts} request(s) ({last}); it is recorded and will be reconciled through the status endpoint: do NOT pay it again under a new payment ID"
    )]
    OutcomeUnknown {
        /// The payment ID.
        payment_id: PaymentId,
        /// Payout requests sent by this call.
        attempts: u32,
        /// The last thing that went wrong.
        last: String,
    },

    /// The payout is recorded and a call may be sending it right now (another task, process or
    /// machine recorded it as being sent less than
    /// [`Config::in_flight_window`](crate::Config::in_flight_window) ago), so this call sent
    /// nothing and cannot know its outcome. Wait for that call, the callback or reconcile;
    /// once the window has passed, submitting it again resolves it through the status
    /// endpoint. Never pay it again under a new payment ID.
    #[error(
        "payout {payment_id} is being sent by another call (recorded {seconds_ago} s ago), so nothing was sent now and its outcome is not known here: wait for that call, its callback, or reconcile (after {window_seconds} s, submitting the same payout again resolves it); do NOT pay it again under a new payment ID"
    )]
    InFlight {
        /// The payment ID.
        payment_id: PaymentId,
        /// How long ago the record last changed, in seconds.
        seconds_ago: u64,
        /// The in-flight window, in seconds.
        window_seconds: u64,
    },

    /// The request may have reached the platform (or did, with the answer in `platform`), but
    /// the store failed to record what happened. The payout may exist on the platform: never
    /// pay it again under a new payment ID. Submit the same payout again (or reconcile) once
    /// the store works: the status endpoint tells the truth.
    #[error(
        "payout {payment_id}: {platform}, but the payout store failed to record it ({reason}); the payout may exist on the platform: do NOT pay it again under a new payment ID; submit the same payout again or reconcile once the store works"
    )]
    RecordFailed {
        /// The payment ID.
        payment_id: PaymentId,
        /// What the platform said (e.g. `the platform accepted it`).
        platform: String,
        /// The store error.
        reason: String,
    },

    /// The payout request never reached the platform, and the retry budget ran out.
    #[error(
        "payout {payment_id} was not sent after {attempts} attempt(s) ({last}); it is recorded as not registered: submit the same payout again to send it under the same payment ID"
    )]
    NotSent {
        /// The payment ID.
        payment_id: PaymentId,
        /// Attempts made.
        attempts: u32,
        /// The last thing that went wrong.
        last: String,
    },

    /// A request other than a payout could not be completed by the transport.
    #[error("the {what} request failed: {source}")]
    Transport {
        /// What was requested.
        what: &'static str,
        /// The transport error (it says whether the request was sent).
        #[source]
        source: rp_transport::TransportError,
    },

    /// A response carried a signature that does not verify.
    #[error(
        "the {what} response has a signature that does not verify ({source}); the response is not trusted"
    )]
    InvalidResponseSignature {
        /// Which response.
        what: &'static str,
        /// Why it failed.
        #[source]
        source: rp_sign::Error,
    },

    /// A status response without a signature was not applied to the recorded payout (see
    /// [`Config::with_unsigned_status`](crate::Config::with_unsigned_status)).
    #[error(
        "unsigned status response; not applied (enable with_unsigned_status if your project's responses are unsigned); payment ID {payment_id}"
    )]
    UnsignedStatus {
        /// The payment ID asked about.
        payment_id: PaymentId,
    },

    /// A response the client cannot interpret.
    #[error("unexpected {what} response: HTTP {http_status}: {reason}; body: {body:?}")]
    UnexpectedResponse {
        /// Which response.
        what: &'static str,
        /// Its HTTP status.
        http_status: u16,
        /// What is unexpected about it.
        reason: String,
        /// The start of the body (at most 300 characters).
        body: String,
    },

    /// A request could not be signed.
    #[error("could not sign the {what} request: {source}")]
    Sign {
        /// Which request.
        what: &'static str,
        /// Why.
        #[source]
        source: rp_sign::Error,
    },

    /// The payout store failed.
    #[error("the payout store failed to {operation}: {reason}")]
    Store {
        /// What the store was asked to do (e.g. `insert payout p-1`).
        operation: String,
        /// Why it failed.
        reason: String,
    },
}

impl Error {
    /// A store error, for [`PayoutStore`](crate::PayoutStore) implementations.
    pub fn store(operation: impl Into<String>, reason: impl std::fmt::Display) -> Self {
        Self::Store {
            operation: operation.into(),
            reason: reason.to_string(),
        }
    }

    /// The platform code, for [`Error::Rejected`] and [`Error::NotFound`].
    pub fn code(&self) -> Option<ResponseCode> {
        match self {
            Self::Rejected { code, .. } => Some(code.clone()),
            Self::NotFound { .. } => Some(ResponseCode::from_number(
                ResponseCode::TRANSACTION_NOT_FOUND,
            )),
            _ => None,
        }
    }

    /// True when the outcome of a payout is unknown (it will be reconciled).
    pub fn is_outcome_unknown(&self) -> bool {
        matches!(self, Self::OutcomeUnknown { .. })
    }

    /// True when the payout may exist on the platform although this call did not see it
    /// accepted: [`Error::OutcomeUnknown`], [`Error::InFlight`], [`Error::RecordFailed`].
    /// Then the payout must **never** be paid again under a new payment ID; submit the same
    /// payout again, or let reconcile resolve it. (Smithy-style: the error says whether the
    /// request may have been sent.)
    pub fn may_have_reached_platform(&self) -> bool {
        matches!(
            self,
            Self::OutcomeUnknown { .. } | Self::InFlight { .. } | Self::RecordFailed { .. }
        )
    }

    /// True when the platform refused the request (it was not registered).
    pub fn is_rejected(&self) -> bool {
        matches!(self, Self::Rejected { .. })
    }
}

/// The start of a body for an error message: lossy UTF-8, at most 300 characters, with
/// phone-number-like runs of 10 to 12 digits masked (a Gate body may hold `account.number`).
pub(crate) fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let start: String = text.chars().take(MAX_BODY_EXCERPT).collect();
    let mut out = mask_phone_numbers(&start);
    if text.chars().count() > MAX_BODY_EXCERPT {
        out.push('…');
    }
    out
}

/// `text` with every phone-number-like run of 10 to 12 digits masked (`7701***4567`), for
/// messages that may echo outside values (e.g. serde's `invalid type: integer …`).
pub(crate) fn mask_phone_numbers(text: &str) -> String {
    let mut out = String::new();
    let mut digits = String::new();
    let flush = |digits: &mut String, out: &mut String| {
        if (10..=12).contains(&digits.len()) {
            out.push_str(&rp_model::mask_phone(digits));
        } else {
            out.push_str(digits);
        }
        digits.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            digits.push(c);
        } else {
            flush(&mut digits, &mut out);
            out.push(c);
        }
    }
    flush(&mut digits, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn excerpt_is_truncated() {
        let long = "a".repeat(400);
        let cut = excerpt(long.as_bytes());
        assert_eq!(cut.chars().count(), 301);
        assert!(cut.ends_with('…'));
        assert_eq!(excerpt(b"short"), "short");
        let masked = excerpt(br#"{"number":"77011234567","id":1000000012345}"#);
        assert!(!masked.contains("77011234567"), "{masked}");
        assert!(masked.contains("1000000012345"), "{masked}");
    }

    #[test]
    fn phone_numbers_are_masked_and_other_numbers_kept() {
        assert_eq!(
            mask_phone_numbers("invalid type: integer `77011234567`, expected a string"),
            "invalid type: integer `7701***4567`, expected a string"
        );
        let kept = mask_phone_numbers("code 3041 at line 1 column 120, op 1000000012345");
        assert_eq!(kept, "code 3041 at line 1 column 120, op 1000000012345");
    }

    #[test]
    fn rejection_names_the_code_and_field() {
        let error = Error::Rejected {
            what: "payout",
            payment_id: Some(PaymentId::new("p-1").unwrap()),
            http_status: Some(400),
            code: ResponseCode::new("2004"),
            message: "Required field not provided".into(),
            field: Some("customer.id".into()),
        };
        assert_eq!(
            error.to_string(),
            "the platform rejected payout for payment ID p-1: code 2004 (Required field not provided), field `customer.id`"
        );
        assert_eq!(error.code(), Some(ResponseCode::new("2004")));
        assert!(error.is_rejected());
    }
}
