//! The crate's error type.

use std::fmt;

/// Where a message carries its signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SignatureLocation {
    /// The root member `signature` (Gate callbacks).
    Root,
    /// `general.signature` (Gate requests, some callback formats and signed responses).
    General,
}

impl fmt::Display for SignatureLocation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            SignatureLocation::Root => "signature",
            SignatureLocation::General => "general.signature",
        })
    }
}

/// Why a signature value could not even be compared.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureProblem {
    /// The member is not a JSON string.
    NotAString {
        /// The JSON type found instead (`number`, `null`, …).
        found: &'static str,
    },
    /// The string is not standard, padded Base64.
    NotBase64,
    /// The Base64 decodes to the wrong number of bytes.
    WrongLength {
        /// The number of decoded bytes (an HMAC-SHA512 is 64).
        bytes: usize,
    },
}

impl fmt::Display for SignatureProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SignatureProblem::NotAString { found } => {
                write!(f, "it is a JSON {found}, not a string")
            }
            SignatureProblem::NotBase64 => f.write_str("it is not standard padded Base64"),
            SignatureProblem::WrongLength { bytes } => write!(
                f,
                "it decodes to {bytes} bytes, but an HMAC-SHA512 signature is 64 bytes (88 Base64 characters)"
            ),
        }
    }
}

/// Everything that can go wrong while signing or verifying.
///
/// No variant ever contains the secret key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The payload is valid JSON but not a JSON object.
    #[error("the payload must be a JSON object, but it is a JSON {found}")]
    NotAnObject {
        /// The JSON type found (`array`, `string`, …).
        found: &'static str,
    },
    /// A request body to sign has no `general` object.
    #[error(
        "the request body has no `general` object (found: {found}); every Gate request carries `general.project_id` and `general.payment_id`, and the signature goes into `general.signature`"
    )]
    MissingGeneral {
        /// What `general` is instead: `nothing` or a JSON type.
        found: &'static str,
    },
    /// The bytes are not valid JSON (including invalid UTF-8 and lone surrogates such as `\ud800`).
    #[error("the body is not valid JSON: {0}")]
    InvalidJson(#[source] serde_json::Error),
    /// A verified message does not have the shape of the type it was read into
    /// ([`crate::VerifiedCallback::deserialize`]).
    #[error("the verified message does not have the expected shape: {0}")]
    Deserialize(#[source] serde_json::Error),
    /// A value could not be turned into JSON (its `Serialize` implementation failed).
    #[error("the value could not be serialised to JSON: {0}")]
    Serialize(#[source] serde_json::Error),
    /// The message has neither a root `signature` nor `general.signature`.
    #[error("the message is not signed: it has neither a root `signature` nor `general.signature`")]
    MissingSignature,
    /// The signature member exists but cannot be a signature.
    #[error("the signature in `{location}` is malformed: {problem}")]
    MalformedSignature {
        /// Where the signature was found.
        location: SignatureLocation,
        /// What is wrong with it.
        problem: SignatureProblem,
    },
    /// A key or string value of the message contains `;`, the separator of the string to
    /// sign. The platform escapes nothing, so the lines of such a message can be regrouped
    /// into a different message with the same string to sign, and the same signature: whoever
    /// saw one signed body could forge another. Such a message is never signed, and never
    /// accepted even when its signature matches (invariant 11).
    #[error(
        "`{path}` contains `;`, the separator of the string to sign: the signature of such a message cannot tell it from a rearranged one, so it is refused{}",
        if *signing { " (remove the `;` from the value, e.g. write `,` instead)" } else { " unchecked (a genuine platform message never needs one; ask the platform's support if this is one)" }
    )]
    AmbiguousValue {
        /// The path of the first key or value holding `;` (keys joined with `:`; at most 100
        /// characters). The value itself is not repeated: it may be personal data.
        path: String,
        /// Whether the message was being signed (`false`: verified).
        signing: bool,
    },
    /// The message carries a member named `signature` besides the one that was checked
    /// (a nested one, or both a root `signature` and `general.signature`). The vendor SDKs'
    /// callback classes delete every such member before checking, so its content would not be
    /// covered by the signature; this crate never accepts a message with unsigned content, and
    /// no Gate message carries two (`spec/signature.md` §2 step 0).
    #[error(
        "`{path}` is a second `signature` member: it is not covered by the signature in `{location}`, so the message is refused unchecked"
    )]
    ExtraSignature {
        /// Where the checked signature was found.
        location: SignatureLocation,
        /// The path of the other `signature` member (keys joined with `:`, at most 100
        /// characters).
        path: String,
    },
    /// The signature is well formed but does not match the message under this key.
    #[error(
        "the signature in `{location}` does not match the message: check the project's secret key, and that the body reached you unchanged (`rp_sign::explain` shows the string that was signed)"
    )]
    InvalidSignature {
        /// Where the signature was found.
        location: SignatureLocation,
    },
}

/// The JSON type name of `value`, for error messages.
pub(crate) fn json_type(value: &serde_json::Value) -> &'static str {
    match value {
        serde_json::Value::Null => "null",
        serde_json::Value::Bool(_) => "boolean",
        serde_json::Value::Number(_) => "number",
        serde_json::Value::String(_) => "string",
        serde_json::Value::Array(_) => "array",
        serde_json::Value::Object(_) => "object",
    }
}
