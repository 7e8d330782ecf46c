//! Identifiers: project, payment, customer, request and operation IDs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::lenient::LenientU64;

/// Your project's ID on the platform (a positive integer, sent as a JSON number).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ProjectId(u64);

impl ProjectId {
    /// The largest project ID: 2^63 - 1, what a signed 64-bit column (the ledger's) holds.
    pub const MAX: u64 = i64::MAX as u64;

    /// A project ID: 1 to [`ProjectId::MAX`].
    ///
    /// # Errors
    /// [`Error::InvalidProjectId`] for zero or above [`ProjectId::MAX`].
    pub fn new(id: u64) -> Result<ProjectId, Error> {
        if id == 0 || id > Self::MAX {
            Err(Error::InvalidProjectId {
                input: id.to_string(),
            })
        } else {
            Ok(ProjectId(id))
        }
    }

    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for ProjectId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ProjectId {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let invalid = || Error::InvalidProjectId {
            input: s.to_owned(),
        };
        let t = s.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid());
        }
        t.parse::<u64>()
            .ok()
            .and_then(|id| ProjectId::new(id).ok())
            .ok_or_else(invalid)
    }
}

impl Serialize for ProjectId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for ProjectId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let id = LenientU64::deserialize(deserializer)?.0;
        ProjectId::new(id).map_err(serde::de::Error::custom)
    }
}

/// Checks a merchant-chosen text identifier.
///
/// Rules: not empty, at most [`PaymentId::MAX_LEN`] characters, no control characters, no `;`
/// (the signature joins its lines with `;` without escaping, see `spec/signature.md` §2), and no
/// leading or trailing whitespace (the signature's natural sort skips whitespace, and such IDs
/// are nearly always a copy-and-paste accident).
fn check_text_id(what: &'static str, value: &str) -> Result<(), Error> {
    let invalid = |reason: String| Error::InvalidId {
        what,
        value: value.chars().take(64).collect(),
        reason,
    };
    if value.is_empty() {
        return Err(invalid("it is empty".to_owned()));
    }
    let length = value.chars().count();
    if length > PaymentId::MAX_LEN {
        return Err(invalid(format!(
            "it is {length} characters long; the limit is {}",
            PaymentId::MAX_LEN
        )));
    }
    if let Some(c) = value.chars().find(|c| c.is_control()) {
        return Err(invalid(format!(
            "it contains the control character U+{:04X}",
            u32::from(c)
        )));
    }
    if value.contains(';') {
        return Err(invalid(
            "it contains `;`, which the signature uses as its line separator".to_owned(),
        ));
    }
    if value.trim() != value {
        return Err(invalid("it starts or ends with whitespace".to_owned()));
    }
    Ok(())
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub struct $name(String);

        impl $name {
            /// Checks and wraps an identifier.
            ///
            /// # Errors
            /// [`Error::InvalidId`] naming the rule it breaks.
            pub fn new(value: impl Into<String>) -> Result<Self, Error> {
                let value = value.into();
                check_text_id($what, &value)?;
                Ok(Self(value))
            }

            /// The identifier as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }

            /// The identifier as an owned string.
            pub fn into_string(self) -> String {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;

            fn from_str(s: &str) -> Result<Self, Error> {
                Self::new(s)
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
            }
        }
    };
}

text_id!(
    /// The merchant's ID of a payment, unique within the project: **the idempotency key**.
    ///
    /// A payout is retried only with its original payment ID; a new ID is a new payout.
    /// Any UTF-8 letters, digits and symbols are allowed by the platform; this type also rejects
    /// what would make the signature ambiguous (see [`PaymentId::new`]).
    ///
    /// ```
    /// use rp_model::PaymentId;
    /// assert!(PaymentId::new("payout-2024-000047").is_ok());
    /// assert!(PaymentId::new("").is_err());
    /// assert!(PaymentId::new("a;b").is_err());
    /// ```
    PaymentId,
    "payment ID"
);

text_id!(
    /// The merchant's ID of the customer being paid (`customer.id`), unique within the project.
    CustomerId,
    "customer ID"
);

impl PaymentId {
    /// The longest payment or customer ID accepted, in characters.
    pub const MAX_LEN: usize = 255;
}

/// The platform's ID of an accepted request (`request_id`), as it sent it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub String);

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The platform's ID of an operation (`operation.id`): an integer that can have 16 or more
/// digits, so it is kept as `u64` and never passes through floating point.
///
/// ```
/// use rp_model::OperationId;
/// let id: OperationId = serde_json::from_str("5028800010128225").unwrap();
/// assert_eq!(id.get(), 5_028_800_010_128_225);
/// assert_eq!(serde_json::to_string(&id).unwrap(), "5028800010128225");
/// // Also accepted as a string of digits.
/// let same: OperationId = serde_json::from_str("\"5028800010128225\"").unwrap();
/// assert_eq!(same, id);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct OperationId(pub u64);

impl OperationId {
    /// The number.
    pub fn get(self) -> u64 {
        self.0
    }
}

impl fmt::Display for OperationId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for OperationId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.0)
    }
}

impl<'de> Deserialize<'de> for OperationId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        LenientU64::deserialize(deserializer).map(|v| OperationId(v.0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn project_ids() {
        assert_eq!("1234".parse::<ProjectId>().unwrap().get(), 1234);
        for bad in [
            "0",
            "",
            "-1",
            "12a",
            "99999999999999999999",
            "9223372036854775808",
        ] {
            let error = bad.parse::<ProjectId>().unwrap_err();
            assert_eq!(
                error.to_string(),
                format!(
                    "project ID {bad:?} is not a positive integer; write your project's number \
                     as the Dashboard shows it, e.g. 1234 (at most 9223372036854775807)"
                )
            );
        }
        assert_eq!(
            "9223372036854775807".parse::<ProjectId>().unwrap().get(),
            ProjectId::MAX
        );
        assert!(ProjectId::new(u64::MAX).is_err());
        assert!(serde_json::from_str::<ProjectId>("9223372036854775808").is_err());
        assert_eq!(
            serde_json::from_str::<ProjectId>("\"77\"").unwrap().get(),
            77
        );
        assert!(serde_json::from_str::<ProjectId>("0").is_err());
    }

    #[test]
    fn text_id_rejections_say_why() {
        let long = "x".repeat(256);
        let cases = [
            ("", "invalid payment ID \"\": it is empty"),
            (
                "a;b",
                "invalid payment ID \"a;b\": it contains `;`, which the signature uses as its line separator",
            ),
            (
                "a\nb",
                "invalid payment ID \"a\\nb\": it contains the control character U+000A",
            ),
            (
                " a",
                "invalid payment ID \" a\": it starts or ends with whitespace",
            ),
            (long.as_str(), "it is 256 characters long; the limit is 255"),
        ];
        for (input, message) in cases {
            let error = PaymentId::new(input).unwrap_err().to_string();
            assert!(error.contains(message), "{error}");
        }
        assert!(PaymentId::new("x".repeat(255)).is_ok());
        assert!(
            PaymentId::new("оплата:№1/ü").is_ok(),
            "colons and any UTF-8 are fine"
        );
        assert_eq!(
            CustomerId::new("").unwrap_err().to_string(),
            "invalid customer ID \"\": it is empty"
        );
    }

    #[test]
    fn operation_ids_survive_exactly() {
        let id: OperationId = serde_json::from_str("18446744073709551615").unwrap();
        assert_eq!(id.get(), u64::MAX);
        assert!(serde_json::from_str::<OperationId>("-1").is_err());
        assert!(serde_json::from_str::<OperationId>("\"12x\"").is_err());
    }
}
