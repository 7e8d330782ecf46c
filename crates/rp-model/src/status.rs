//! Payment, operation and request statuses, with unknown values kept.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Lowercases, turns `_` into spaces and collapses runs of whitespace, so that
/// `partially_paid_out`, `Partially paid out` and `partially  paid out` compare equal.
fn normalise(raw: &str) -> String {
    raw.split(|c: char| c == '_' || c.is_whitespace())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join(" ")
}

macro_rules! status_enum {
    (
        $(#[$doc:meta])* $name:ident {
            $( $(#[$vdoc:meta])* $variant:ident => $wire:literal $(| $alias:literal)* ),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum $name {
            $( $(#[$vdoc])* $variant, )+
            /// A status this crate does not know, exactly as received.
            Other(String),
        }

        impl $name {
            /// Maps the platform's text to a status. Underscores and spaces are equivalent and
            /// case is ignored; anything unknown is kept in `Other`.
            pub fn parse(raw: &str) -> Self {
                match normalise(raw).as_str() {
                    $( $wire $(| $alias)* => Self::$variant, )+
                    _ => Self::Other(raw.to_owned()),
                }
            }

            /// The platform's spelling.
            pub fn as_str(&self) -> &str {
                match self {
                    $( Self::$variant => $wire, )+
                    Self::Other(raw) => raw,
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                String::deserialize(deserializer).map(|raw| Self::parse(&raw))
            }
        }
    };
}

status_enum! {
    /// The status of a payment (`payment.status`). For payouts the platform documents
    /// `processing`, `awaiting clarification`, `awaiting retry` (intermediate) and `success`,
    /// `partially paid out`, `decline`, `error` (final).
    ///
    /// ```
    /// use rp_model::PaymentStatus;
    /// assert_eq!(PaymentStatus::parse("partially paid out"), PaymentStatus::PartiallyPaidOut);
    /// assert_eq!(PaymentStatus::parse("partially_paid_out"), PaymentStatus::PartiallyPaidOut);
    /// assert!(PaymentStatus::Decline.is_final());
    /// assert!(!PaymentStatus::parse("awaiting something new").is_final());
    /// ```
    PaymentStatus {
        /// Being processed.
        Processing => "processing",
        /// Suspended until the merchant sends more data; becomes `decline` after 30 minutes.
        AwaitingClarification => "awaiting clarification" | "awaiting clarify data",
        /// Waiting for a payout retry.
        AwaitingRetry => "awaiting retry",
        /// Being processed on the provider's side.
        ExternalProcessing => "external processing",
        /// Paid out.
        Success => "success",
        /// Paid out in part (the amount was split).
        PartiallyPaidOut => "partially paid out",
        /// Declined.
        Decline => "decline",
        /// The initial request was not accepted; it may be resent with the same payment ID.
        Error => "error",
        /// A successful payout was reversed (the account could not be credited after all).
        Reversed => "reversed",
        /// Refunded.
        Refunded => "refunded",
        /// Cancelled.
        Cancelled => "cancelled" | "canceled",
        /// Expired.
        Expired => "expired",
        /// A platform-internal error; the result is not known yet.
        InternalError => "internal error",
        /// A provider-side error; the result is not known yet.
        ExternalError => "external error",
    }
}

impl PaymentStatus {
    /// Whether the platform will not change this status by itself any more.
    ///
    /// Unknown statuses count as not final, so the payout keeps being reconciled. Note that a
    /// final `success` can still be followed by `reversed` (a manual reversal by the platform).
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Success
                | Self::PartiallyPaidOut
                | Self::Decline
                | Self::Error
                | Self::Reversed
                | Self::Refunded
                | Self::Cancelled
                | Self::Expired
        )
    }

    /// Whether money reached the customer (`success` or `partially paid out`).
    pub fn is_paid(&self) -> bool {
        matches!(self, Self::Success | Self::PartiallyPaidOut)
    }
}

status_enum! {
    /// The status of an operation (`operation.status`). For payout operations the platform
    /// documents `processing` and `awaiting clarification` (intermediate), `success` and
    /// `decline` (final).
    OperationStatus {
        /// Being processed.
        Processing => "processing",
        /// Waiting for more data from the merchant.
        AwaitingClarification => "awaiting clarification",
        /// Being processed on the provider's side.
        ExternalProcessing => "external processing",
        /// Succeeded.
        Success => "success",
        /// Declined.
        Decline => "decline",
        /// A platform-internal error.
        InternalError => "internal error",
        /// A provider-side error.
        ExternalError => "external error",
        /// The platform itself does not know the result yet.
        Unknown => "unknown",
    }
}

impl OperationStatus {
    /// Whether this operation status is final (`success` or `decline`).
    pub fn is_final(&self) -> bool {
        matches!(self, Self::Success | Self::Decline)
    }
}

status_enum! {
    /// The `status` of a synchronous response: whether the *request* was registered. It says
    /// nothing about the payout's result, which comes later in a callback or a status request.
    RequestStatus {
        /// Accepted for processing (no money has moved yet).
        Success => "success",
        /// The request cannot be processed.
        Error => "error",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_spellings_of_partially_paid_out() {
        for raw in [
            "partially_paid_out",
            "partially paid out",
            "Partially Paid  Out",
        ] {
            assert_eq!(
                PaymentStatus::parse(raw),
                PaymentStatus::PartiallyPaidOut,
                "{raw}"
            );
        }
        assert_eq!(
            PaymentStatus::PartiallyPaidOut.as_str(),
            "partially paid out"
        );
    }

    #[test]
    fn unknown_statuses_are_kept_and_round_trip() {
        let s: PaymentStatus = serde_json::from_str("\"awaiting moon phase\"").unwrap();
        assert_eq!(s, PaymentStatus::Other("awaiting moon phase".into()));
        assert!(!s.is_final());
        assert_eq!(
            serde_json::to_string(&s).unwrap(),
            "\"awaiting moon phase\""
        );
        let o: OperationStatus = serde_json::from_str("\"Success\"").unwrap();
        assert_eq!(o, OperationStatus::Success);
    }

    #[test]
    fn finality() {
        let finals = [
            "success",
            "partially paid out",
            "decline",
            "error",
            "reversed",
        ];
        for raw in finals {
            assert!(PaymentStatus::parse(raw).is_final(), "{raw}");
        }
        for raw in [
            "processing",
            "awaiting clarification",
            "awaiting retry",
            "internal error",
        ] {
            assert!(!PaymentStatus::parse(raw).is_final(), "{raw}");
        }
        assert!(OperationStatus::Decline.is_final());
        assert!(!OperationStatus::Processing.is_final());
        assert!(PaymentStatus::Success.is_paid());
        assert!(!PaymentStatus::Decline.is_paid());
    }
}
