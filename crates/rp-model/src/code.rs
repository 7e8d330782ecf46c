//! Platform response codes: `operation.code`, `errors[].code` and the `code` of error responses.
//!
//! The platform sends codes as strings (`"0"`, `"20000"`) and sometimes as numbers. A
//! [`ResponseCode`] keeps exactly what was received, so an unknown or non-numeric code is never
//! lost, and looks the code up in the platform's table of 378 codes (generated from
//! `spec/response-codes.tsv` by `cargo xtask codegen`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::generated::codes::CODES;

/// What the platform recommends doing about a code, condensed into six categories.
///
/// Derived from the platform's "recommended action" text. The category of a code says nothing
/// about whether a *payment* is final: that is decided by its status (see
/// [`PaymentStatus::is_final`](crate::PaymentStatus::is_final)).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CodeCategory {
    /// The operation succeeded (code `0`).
    Success,
    /// Not a result yet: wait (e.g. `19999` "Awaiting processing").
    Pending,
    /// A temporary failure: the same request may succeed later.
    RetryLater,
    /// The request itself is wrong: fix it before sending again.
    CorrectRequest,
    /// A configuration or account problem that support has to solve.
    ContactSupport,
    /// A decline (risk, provider, merchant): resending will not help.
    Declined,
}

impl CodeCategory {
    /// A short lowercase label, e.g. `"retry later"`.
    pub fn label(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Pending => "pending",
            Self::RetryLater => "retry later",
            Self::CorrectRequest => "correct the request",
            Self::ContactSupport => "contact support",
            Self::Declined => "declined",
        }
    }
}

impl fmt::Display for CodeCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

/// One row of the platform's code table.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CodeInfo {
    /// The numeric code.
    pub code: u32,
    /// The platform's message, e.g. `"Payment ID already exists"`.
    pub message: &'static str,
    /// The platform's recommended action, verbatim.
    pub action: &'static str,
    /// The category derived from the action.
    pub category: CodeCategory,
}

impl CodeInfo {
    /// Looks a numeric code up in the table of 378 platform codes.
    pub fn lookup(code: u32) -> Option<&'static CodeInfo> {
        CODES
            .binary_search_by_key(&code, |info| info.code)
            .ok()
            .and_then(|index| CODES.get(index))
    }

    /// The whole table, sorted by code.
    pub fn all() -> &'static [CodeInfo] {
        CODES
    }
}

/// A response code exactly as the platform sent it, with its table entry when it has one.
///
/// ```
/// use rp_model::{CodeCategory, ResponseCode};
///
/// let code = ResponseCode::new("3041");
/// assert_eq!(code.number(), Some(3041));
/// assert_eq!(code.info().map(|i| i.message), Some("Payment ID already exists"));
/// assert_eq!(code.category(), Some(CodeCategory::CorrectRequest));
///
/// // Only canonical digits are a number: `+0` and `00` are not code 0.
/// assert_eq!(ResponseCode::new("00").number(), None);
///
/// // A code the table does not know is kept as it came.
/// let new = ResponseCode::new("77777");
/// assert_eq!(new.as_str(), "77777");
/// assert!(new.info().is_none());
/// ```
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct ResponseCode(String);

impl ResponseCode {
    /// `0`: success.
    pub const SUCCESS: u32 = 0;
    /// `2003`: invalid JSON string.
    pub const INVALID_JSON: u32 = 2003;
    /// `2004`: required field not provided.
    pub const FIELD_MISSING: u32 = 2004;
    /// `2442`: project ID not found.
    pub const PROJECT_NOT_FOUND: u32 = 2442;
    /// `3023`: currency disabled for the project.
    pub const CURRENCY_DISABLED: u32 = 3023;
    /// `3041`: payment ID already exists.
    pub const PAYMENT_ID_EXISTS: u32 = 3041;
    /// `3061`: transaction not found.
    pub const TRANSACTION_NOT_FOUND: u32 = 3061;
    /// `3104`: payout amount above the per-operation limit.
    pub const PAYOUT_AMOUNT_LIMIT: u32 = 3104;
    /// `3261`: invalid signature.
    pub const INVALID_SIGNATURE: u32 = 3261;
    /// `3262`: empty signature.
    pub const EMPTY_SIGNATURE: u32 = 3262;

    /// Wraps a code as received (surrounding whitespace is trimmed).
    pub fn new(code: impl Into<String>) -> Self {
        let code = code.into();
        let trimmed = code.trim();
        if trimmed.len() == code.len() {
            Self(code)
        } else {
            Self(trimmed.to_owned())
        }
    }

    /// A numeric code.
    pub fn from_number(code: u32) -> Self {
        Self(code.to_string())
    }

    /// The code as received.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The code as a number, if it is one.
    pub fn number(&self) -> Option<u32> {
        // Canonical digits only: `u32::from_str` would also take `+0` and `00`.
        let canonical = !self.0.is_empty()
            && self.0.bytes().all(|b| b.is_ascii_digit())
            && (self.0.len() == 1 || !self.0.starts_with('0'));
        if !canonical {
            return None;
        }
        self.0.parse().ok()
    }

    /// Whether this is the numeric code `code`.
    pub fn is(&self, code: u32) -> bool {
        self.number() == Some(code)
    }

    /// The table entry for this code, if the platform's table has it.
    pub fn info(&self) -> Option<&'static CodeInfo> {
        self.number().and_then(CodeInfo::lookup)
    }

    /// The category of a known code.
    pub fn category(&self) -> Option<CodeCategory> {
        self.info().map(|info| info.category)
    }

    /// The platform's message for a known code.
    pub fn message(&self) -> Option<&'static str> {
        self.info().map(|info| info.message)
    }
}

impl fmt::Debug for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ResponseCode({})", self.0)
    }
}

impl fmt::Display for ResponseCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<u32> for ResponseCode {
    fn from(code: u32) -> Self {
        Self::from_number(code)
    }
}

impl Serialize for ResponseCode {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for ResponseCode {
    /// Accepts a string or an integer; the platform uses both.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        crate::lenient::StringOrNumber::deserialize(deserializer).map(|s| Self::new(s.0))
    }
}
