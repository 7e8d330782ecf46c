//! The one error type of `rp-model`.

use std::fmt;

/// Everything that can be wrong with a value given to `rp-model`. Each message names the
/// input (phone numbers masked) and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The phone number is empty.
    #[error("phone number is empty")]
    PhoneEmpty,
    /// The phone number has a character that is not a digit or a separator.
    #[error(
        "phone number has an invalid character {character:?} at position {position}; \
         write digits, spaces, `+`, `-` or brackets"
    )]
    PhoneInvalidCharacter {
        /// The character.
        character: char,
        /// Its 1-based position in the input.
        position: usize,
    },
    /// The phone number has the wrong number of digits.
    #[error(
        "phone number has {digits} digits; a Kazakhstan mobile number has 11 (7 + 10), \
         e.g. +7 701 123 45 67"
    )]
    PhoneWrongLength {
        /// How many digits it has.
        digits: usize,
    },
    /// A Russian number (+7 9xx): same country code, different country.
    #[error(
        "phone number {masked} is a Russian number (+7 9xx); only Kazakhstan mobile numbers \
         (+7 7xx) can be paid"
    )]
    PhoneRussian {
        /// The number, masked.
        masked: String,
    },
    /// Not in the Kazakhstan mobile ranges (fixed line, unassigned prefix, another country).
    #[error("phone number {masked} is not a Kazakhstan mobile number: {reason} (prefix {prefix})")]
    PhoneNotKzMobile {
        /// The number, masked.
        masked: String,
        /// The prefix that was checked.
        prefix: String,
        /// Why it is not one.
        reason: &'static str,
    },
    /// A number in a range that no payout operator serves (e.g. 760, Kulan), without an
    /// operator named explicitly.
    #[error(
        "phone number {masked} is in the {prefix} range of {company}, which no payout operator \
         serves; if the number was moved to one, name that operator (ACTIV, ALTEL, BEELINE, \
         KCELL, TELE2)"
    )]
    PhoneNoPayoutOperator {
        /// The number, masked.
        masked: String,
        /// The three-digit prefix.
        prefix: String,
        /// Who holds the range, e.g. `Kulan`.
        company: String,
    },
    /// The amount is not a number this crate can read.
    #[error("invalid amount {input:?}: {reason}")]
    InvalidAmount {
        /// The input.
        input: String,
        /// What is wrong.
        reason: &'static str,
    },
    /// The amount is in exponent notation (`1.5E+3`, as spreadsheets write large numbers).
    #[error(
        "invalid amount {input:?}: exponent notation is not accepted; write the digits out, \
         e.g. `1500` or `1 500,00`"
    )]
    ExponentNotation {
        /// The input.
        input: String,
    },
    /// The amount is negative.
    #[error(
        "amount {input:?} is negative; write a positive amount in tenge, e.g. `1500` or `1 500,50`"
    )]
    NegativeAmount {
        /// The input or the operation.
        input: String,
    },
    /// More fraction digits than the currency has (e.g. `10.005` KZT).
    #[error(
        "amount {input:?} has more digits after the decimal separator than {currency} allows \
         ({allowed}); write at most {allowed}, e.g. `1500.50` or `1 500,50`"
    )]
    TooManyFractionDigits {
        /// The input.
        input: String,
        /// The currency.
        currency: &'static str,
        /// Its number of minor-unit digits.
        allowed: u8,
    },
    /// The amount does not fit in 64-bit minor units.
    #[error("amount {input:?} does not fit in 64-bit minor units")]
    AmountOverflow {
        /// The input or the operation.
        input: String,
    },
    /// A payout amount of zero.
    #[error("the amount must be greater than zero")]
    ZeroAmount,
    /// A currency code or symbol this crate does not know.
    #[error(
        "unknown currency {code:?}; write the amount alone (e.g. `1500`), or with `KZT`, `₸` or `тг`"
    )]
    UnknownCurrency {
        /// The code or symbol.
        code: String,
    },
    /// A currency other than the one required.
    #[error("the currency is {expected}, but {found} was given")]
    CurrencyMismatch {
        /// The required currency.
        expected: &'static str,
        /// The one given.
        found: String,
    },
    /// A project ID that is not a positive integer up to [`ProjectId::MAX`](crate::ProjectId::MAX).
    #[error(
        "project ID {input:?} is not a positive integer; write your project's number as the \
         Dashboard shows it, e.g. 1234 (at most 9223372036854775807)"
    )]
    InvalidProjectId {
        /// The input.
        input: String,
    },
    /// A payment or customer ID that breaks a rule.
    #[error("invalid {what} {value:?}: {reason}")]
    InvalidId {
        /// `"payment ID"` or `"customer ID"`.
        what: &'static str,
        /// The value (first 64 characters).
        value: String,
        /// The rule it breaks.
        reason: String,
    },
    /// A timestamp that is not in the platform's format.
    #[error(
        "invalid timestamp {input:?}: expected YYYY-MM-DDTHH:MM:SS+HHMM, e.g. 2024-12-07T19:08:45+0000"
    )]
    InvalidTimestamp {
        /// The input (first 64 characters).
        input: String,
    },
    /// A required field of a payout was not set.
    #[error("{field} is required")]
    MissingField {
        /// The field.
        field: &'static str,
    },
    /// An optional payout parameter that cannot be sent.
    #[error("parameter {key:?} is refused: {reason}")]
    InvalidParam {
        /// The key.
        key: String,
        /// Why.
        reason: &'static str,
    },
    /// A text field of a payout holds `;`, which the platform's signature uses as its line
    /// separator without escaping it: a signed value with `;` could be regrouped into another
    /// message with the same signature, so it is never sent (invariant 11).
    #[error(
        "{field} contains `;`, which the platform's signature uses as its line separator; remove it or write `,` instead"
    )]
    SeparatorInValue {
        /// The field (`description`, `customer.first_name`, a parameter's path, …).
        field: String,
    },
    /// Several problems at once.
    #[error("the payout is invalid: {}", Problems(problems))]
    Invalid {
        /// Every problem found.
        problems: Vec<Error>,
    },
}

struct Problems<'a>(&'a [Error]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, problem) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{problem}")?;
        }
        Ok(())
    }
}
