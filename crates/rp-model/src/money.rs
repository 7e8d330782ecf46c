//! Money as integer minor units with an ISO 4217 currency. No floating point anywhere.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

use crate::Error;

/// An ISO 4217 currency this crate knows (see [`Currency::ALL`]), with its minor-unit exponent.
///
/// The table is generated from `spec/currencies.tsv`. The payout currency is [`Currency::KZT`]
/// (2 minor digits: 100 tiyn = 1 tenge).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency {
    pub(crate) alpha: &'static str,
    pub(crate) numeric: u16,
    pub(crate) exponent: u8,
    pub(crate) name: &'static str,
    pub(crate) symbol: Option<&'static str>,
}

impl Currency {
    /// Finds a currency by its alphabetic code (`"KZT"`, case-insensitive).
    pub fn from_code(code: &str) -> Option<Currency> {
        let code = code.trim();
        Self::ALL
            .iter()
            .find(|c| c.alpha.eq_ignore_ascii_case(code))
            .copied()
    }

    /// Finds a currency by its symbol (`"₸"`). Symbols shared by several currencies (`¥`) are
    /// ambiguous and give `None`.
    pub fn from_symbol(symbol: &str) -> Option<Currency> {
        let mut matches = Self::ALL.iter().filter(|c| c.symbol == Some(symbol));
        match (matches.next(), matches.next()) {
            (Some(currency), None) => Some(*currency),
            _ => None,
        }
    }

    /// The alphabetic code, e.g. `"KZT"`.
    pub fn code(self) -> &'static str {
        self.alpha
    }

    /// The numeric code, e.g. `398`.
    pub fn numeric(self) -> u16 {
        self.numeric
    }

    /// The number of minor-unit digits, e.g. `2`.
    pub fn exponent(self) -> u8 {
        self.exponent
    }

    /// The English name, e.g. `"Kazakhstani tenge"`.
    pub fn name(self) -> &'static str {
        self.name
    }

    /// The symbol, e.g. `"₸"`, if the currency has one.
    pub fn symbol(self) -> Option<&'static str> {
        self.symbol
    }

    /// Minor units in one major unit: `10^exponent` (100 for KZT).
    pub fn minor_per_major(self) -> u64 {
        10u64.pow(u32::from(self.exponent))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.alpha)
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.alpha)
    }
}

impl FromStr for Currency {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Self::from_code(s).ok_or_else(|| Error::UnknownCurrency { code: s.to_owned() })
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.alpha)
    }
}

/// An amount of money: a non-negative integer number of minor units and its currency.
///
/// Parsing is exact (decimal text, never floating point) and strict: more fraction digits than
/// the currency has, a sign, an overflow or anything that is not a number is an error that names
/// the problem. Display follows Kazakhstan's convention: spaces between thousands (U+00A0),
/// a decimal comma and the symbol after the amount. `{:#}` gives a plain machine form.
///
/// ```
/// use rp_model::{Currency, Money};
///
/// let m = Money::parse("1 000,50", Currency::KZT)?;
/// assert_eq!(m.minor_units(), 100_050);
/// assert_eq!(m.to_string(), "1\u{a0}000,50\u{a0}₸");
/// assert_eq!(format!("{m:#}"), "1000.50 KZT");
///
/// assert_eq!(Money::parse("1000.00 KZT", Currency::KZT)?, Money::kzt(1000)?);
/// assert!(Money::parse("10.0055", Currency::KZT).is_err()); // tiyn have two digits
/// assert!(Money::parse("1,000", Currency::KZT).is_err()); // a thousand, or 1.000?
///
/// // On the wire an amount is the integer of minor units.
/// assert_eq!(serde_json::to_string(&m).unwrap(), "100050");
/// # Ok::<(), rp_model::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: u64,
    currency: Currency,
}

impl Money {
    /// An amount from minor units (tiyn for KZT).
    pub const fn from_minor(minor: u64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// An amount of whole major units (tenge for KZT).
    ///
    /// # Errors
    /// [`Error::AmountOverflow`] if the amount does not fit in `u64` minor units.
    pub fn from_major(major: u64, currency: Currency) -> Result<Money, Error> {
        major
            .checked_mul(currency.minor_per_major())
            .map(|minor| Money { minor, currency })
            .ok_or_else(|| Error::AmountOverflow {
                input: format!("{major} {}", currency.alpha),
            })
    }

    /// Whole tenge: `Money::kzt(1500)` is 1 500,00 ₸ (150 000 tiyn).
    ///
    /// # Errors
    /// [`Error::AmountOverflow`] if the amount does not fit in `u64` tiyn.
    pub fn kzt(tenge: u64) -> Result<Money, Error> {
        Self::from_major(tenge, Currency::KZT)
    }

    /// Tiyn (minor units of KZT).
    pub const fn kzt_minor(tiyn: u64) -> Money {
        Money::from_minor(tiyn, Currency::KZT)
    }

    /// Zero in `currency`.
    pub const fn zero(currency: Currency) -> Money {
        Money::from_minor(0, currency)
    }

    /// The amount in minor units, as the API expects it (1 000,00 ₸ → `100000`).
    pub const fn minor_units(self) -> u64 {
        self.minor
    }

    /// The currency.
    pub const fn currency(self) -> Currency {
        self.currency
    }

    /// The exact amount in major units as a plain decimal, without the currency, as JSON
    /// and files carry it: 150 050 tiyn → `1500.50`.
    ///
    /// ```
    /// use rp_model::{Currency, Money};
    /// assert_eq!(Money::from_minor(150_050, Currency::KZT).decimal(), "1500.50");
    /// ```
    pub fn decimal(self) -> String {
        struct Decimal(Money);
        impl fmt::Display for Decimal {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.write_number(f, None, '.')
            }
        }
        Decimal(self).to_string()
    }

    /// Whether the amount is zero.
    pub const fn is_zero(self) -> bool {
        self.minor == 0
    }

    /// Parses decimal text in `currency`.
    ///
    /// Accepts `1000`, `1000.5`, `1000,50`, `1 000,50` (groups of three separated by a space,
    /// U+00A0 or U+202F), and the currency's code or symbol before or after the number
    /// (`1000.00 KZT`, `1 500 ₸`, `KZT 10`). A named currency must be `currency`.
    ///
    /// # Errors
    /// [`Error::InvalidAmount`], [`Error::NegativeAmount`], [`Error::TooManyFractionDigits`],
    /// [`Error::AmountOverflow`], [`Error::UnknownCurrency`] or [`Error::CurrencyMismatch`],
    /// each naming the input.
    pub fn parse(text: &str, currency: Currency) -> Result<Money, Error> {
        let (number, named) = split_currency(text)?;
        if let Some(named) = named
            && named != currency
        {
            return Err(Error::CurrencyMismatch {
                expected: currency.alpha,
                found: named.alpha.to_owned(),
            });
        }
        parse_number(text, number, currency)
    }

    /// Adds two amounts of the same currency.
    ///
    /// # Errors
    /// [`Error::CurrencyMismatch`] or [`Error::AmountOverflow`].
    pub fn checked_add(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        self.minor
            .checked_add(other.minor)
            .map(|minor| Money { minor, ..self })
            .ok_or_else(|| Error::AmountOverflow {
                input: format!("{self:#} + {other:#}"),
            })
    }

    /// Subtracts an amount of the same currency; the result cannot be negative.
    ///
    /// # Errors
    /// [`Error::CurrencyMismatch`] or [`Error::NegativeAmount`].
    pub fn checked_sub(self, other: Money) -> Result<Money, Error> {
        self.same_currency(other)?;
        self.minor
            .checked_sub(other.minor)
            .map(|minor| Money { minor, ..self })
            .ok_or_else(|| Error::NegativeAmount {
                input: format!("{self:#} - {other:#}"),
            })
    }

    /// Multiplies by a whole number.
    ///
    /// # Errors
    /// [`Error::AmountOverflow`].
    pub fn checked_mul(self, factor: u64) -> Result<Money, Error> {
        self.minor
            .checked_mul(factor)
            .map(|minor| Money { minor, ..self })
            .ok_or_else(|| Error::AmountOverflow {
                input: format!("{self:#} × {factor}"),
            })
    }

    fn same_currency(self, other: Money) -> Result<(), Error> {
        if self.currency == other.currency {
            Ok(())
        } else {
            Err(Error::CurrencyMismatch {
                expected: self.currency.alpha,
                found: other.currency.alpha.to_owned(),
            })
        }
    }

    /// Writes the number with `group` between thousands and `decimal` before the fraction.
    fn write_number(
        self,
        f: &mut fmt::Formatter<'_>,
        group: Option<char>,
        decimal: char,
    ) -> fmt::Result {
        let scale = self.currency.minor_per_major();
        let major = (self.minor / scale).to_string();
        for (index, digit) in major.chars().enumerate() {
            let digits_left = major.len() - index;
            if let Some(group) = group.filter(|_| index > 0 && digits_left.is_multiple_of(3)) {
                write!(f, "{group}")?;
            }
            write!(f, "{digit}")?;
        }
        if self.currency.exponent > 0 {
            let width = usize::from(self.currency.exponent);
            write!(f, "{decimal}{:0width$}", self.minor % scale)?;
        }
        Ok(())
    }
}

/// The group separator used for display: U+00A0 NO-BREAK SPACE, as CLDR `kk`/`ru-KZ` do.
const NBSP: char = '\u{a0}';

impl fmt::Display for Money {
    /// `1 234 567,50 ₸` (Kazakhstan's convention, U+00A0 between groups and before the
    /// symbol); with `{:#}`, `1234567.50 KZT`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if f.alternate() {
            self.write_number(f, None, '.')?;
            write!(f, " {}", self.currency.alpha)
        } else {
            self.write_number(f, Some(NBSP), ',')?;
            match self.currency.symbol {
                Some(symbol) => write!(f, "{NBSP}{symbol}"),
                None => write!(f, "{NBSP}{}", self.currency.alpha),
            }
        }
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self:#})")
    }
}

impl FromStr for Money {
    type Err = Error;

    /// Parses an amount that names its currency (`"1500 KZT"`, `"1 500,00 ₸"`).
    fn from_str(s: &str) -> Result<Self, Error> {
        match split_currency(s)? {
            (number, Some(currency)) => parse_number(s, number, currency),
            (_, None) => Err(Error::InvalidAmount {
                input: s.to_owned(),
                reason: "it names no currency; write e.g. `1500 KZT` or use Money::parse",
            }),
        }
    }
}

impl Serialize for Money {
    /// The integer of minor units, as the API expects (the currency travels in its own field).
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_u64(self.minor)
    }
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\u{a0}' | '\u{202f}' | '\u{2009}')
}

/// How people in Kazakhstan write the tenge after an amount (`spec/kz.md` §4.1): `тг`, `тг.`,
/// `тңг`, `тенге`, `теңге`, in any case, with or without a space before.
const TENGE_WORDS: [&str; 6] = ["теңге", "тенге", "тңг.", "тңг", "тг.", "тг"];

/// `text` without a tenge word at its end, if it has one.
fn strip_tenge_word(text: &str) -> Option<&str> {
    let lower = text.to_lowercase();
    if lower.len() != text.len() {
        return None;
    }
    TENGE_WORDS.iter().find_map(|word| {
        // Lowercasing Cyrillic keeps each letter's UTF-8 length, so byte offsets agree.
        lower
            .strip_suffix(word)
            .filter(|rest| rest.len() + word.len() == text.len())
            .and_then(|rest| text.get(..rest.len()))
            .filter(|rest| rest.ends_with(|c: char| c.is_ascii_digit() || is_space(c)))
    })
}

/// Whether `c` is a minus sign people type or paste: `-`, U+2212 MINUS SIGN, the dashes
/// U+2010–2015, U+FE63, U+FF0D.
fn is_minus(c: char) -> bool {
    matches!(
        c,
        '-' | '\u{2010}'..='\u{2015}' | '\u{2212}' | '\u{fe63}' | '\u{ff0d}'
    )
}

/// Whether `text` is a number in exponent notation (`1e3`, `1.5E3`, `2e-1`, `1,5E+03`).
fn is_exponent_notation(text: &str) -> bool {
    let Some((mantissa, exponent)) = text.split_once(['e', 'E']) else {
        return false;
    };
    let exponent = exponent.strip_prefix(['+', '-']).unwrap_or(exponent);
    !mantissa.is_empty()
        && mantissa
            .chars()
            .all(|c| c.is_ascii_digit() || matches!(c, '.' | ',' | ' '))
        && mantissa.chars().any(|c| c.is_ascii_digit())
        && !exponent.is_empty()
        && exponent.bytes().all(|b| b.is_ascii_digit())
}

/// Splits an optional currency code or symbol off either end of `text`.
fn split_currency(text: &str) -> Result<(&str, Option<Currency>), Error> {
    let trimmed = text.trim_matches(is_space).trim();
    if let Some(number) = strip_tenge_word(trimmed) {
        return Ok((number.trim_matches(is_space), Some(Currency::KZT)));
    }
    if trimmed.starts_with(is_minus) {
        return Err(Error::NegativeAmount {
            input: text.to_owned(),
        });
    }
    if is_exponent_notation(trimmed) {
        return Err(Error::ExponentNotation {
            input: text.to_owned(),
        });
    }
    let is_currency_char = |c: char| {
        !(c.is_ascii_digit() || is_space(c) || is_minus(c) || matches!(c, '.' | ',' | '+'))
    };
    let head_len: usize = trimmed
        .chars()
        .take_while(|c| is_currency_char(*c))
        .map(char::len_utf8)
        .sum();
    let tail_len: usize = trimmed
        .chars()
        .rev()
        .take_while(|c| is_currency_char(*c))
        .map(char::len_utf8)
        .sum();
    let (token, number) = if head_len > 0 && head_len < trimmed.len() {
        (&trimmed[..head_len], &trimmed[head_len..])
    } else if tail_len > 0 && tail_len < trimmed.len() {
        (
            &trimmed[trimmed.len() - tail_len..],
            &trimmed[..trimmed.len() - tail_len],
        )
    } else {
        return Ok((trimmed, None));
    };
    let currency = Currency::from_code(token)
        .or_else(|| Currency::from_symbol(token))
        .ok_or_else(|| Error::UnknownCurrency {
            code: token.to_owned(),
        })?;
    Ok((number.trim_matches(is_space), Some(currency)))
}

/// Parses the number part (no currency) exactly into minor units.
fn parse_number(input: &str, number: &str, currency: Currency) -> Result<Money, Error> {
    let invalid = |reason: &'static str| Error::InvalidAmount {
        input: input.to_owned(),
        reason,
    };
    if !number.chars().any(|c| c.is_ascii_digit()) {
        return Err(invalid("there is no number"));
    }
    if number.starts_with(is_minus) {
        return Err(Error::NegativeAmount {
            input: input.to_owned(),
        });
    }
    if number.starts_with('+') {
        return Err(invalid("write the amount without a sign"));
    }
    let separators: Vec<(usize, char)> = number
        .char_indices()
        .filter(|(_, c)| matches!(c, '.' | ','))
        .collect();
    let (integer, fraction) = match separators.as_slice() {
        [] => (number, ""),
        [(at, _)] => (&number[..*at], &number[*at + 1..]),
        _ => {
            return Err(invalid(
                "it has more than one decimal separator; group thousands with spaces, e.g. `1 000,50`",
            ));
        }
    };
    if integer.is_empty() {
        return Err(invalid("there are no digits before the decimal separator"));
    }
    if !fraction.is_empty() && !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the fraction may only contain digits"));
    }
    if separators.len() == 1 && fraction.is_empty() {
        return Err(invalid("there are no digits after the decimal separator"));
    }
    // The integer part: digits, optionally in groups of three separated by spaces.
    let groups: Vec<&str> = integer.split(is_space).collect();
    for (index, group) in groups.iter().enumerate() {
        if group.is_empty() || !group.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid(
                if group.chars().any(|c| !c.is_ascii_digit() && !is_space(c)) {
                    "it contains characters that are not digits"
                } else {
                    "spaces may only separate groups of three digits"
                },
            ));
        }
        if groups.len() > 1 && ((index == 0 && group.len() > 3) || (index > 0 && group.len() != 3))
        {
            return Err(invalid("spaces may only separate groups of three digits"));
        }
    }
    let exponent = usize::from(currency.exponent);
    // `1,000` or `1.500`: a thousand, or one with a fraction? People write both. Only when the
    // separator could group thousands: one to three digits before it, not `0`, no spaces.
    let could_group_thousands =
        groups.len() == 1 && (1..=3).contains(&integer.len()) && !integer.starts_with('0');
    if separators.len() == 1 && fraction.len() == 3 && exponent < 3 && could_group_thousands {
        return Err(invalid(
            "one separator followed by three digits is ambiguous (a thousand, or a fraction?); \
             group thousands with spaces, e.g. `1 000`, and write at most two decimals",
        ));
    }
    if fraction.len() > exponent {
        return Err(Error::TooManyFractionDigits {
            input: input.to_owned(),
            currency: currency.alpha,
            allowed: currency.exponent,
        });
    }
    let overflow = || Error::AmountOverflow {
        input: input.to_owned(),
    };
    let mut minor: u64 = 0;
    let digits = groups
        .iter()
        .flat_map(|g| g.bytes())
        .chain(fraction.bytes());
    for digit in digits {
        minor = minor
            .checked_mul(10)
            .and_then(|m| m.checked_add(u64::from(digit - b'0')))
            .ok_or_else(overflow)?;
    }
    for _ in fraction.len()..exponent {
        minor = minor.checked_mul(10).ok_or_else(overflow)?;
    }
    Ok(Money { minor, currency })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kzt(text: &str) -> Result<u64, Error> {
        Money::parse(text, Currency::KZT).map(Money::minor_units)
    }

    #[test]
    fn parses_the_forms_people_write() {
        assert_eq!(kzt("1000").unwrap(), 100_000);
        assert_eq!(kzt("1000.5").unwrap(), 100_050);
        assert_eq!(kzt("1000,50").unwrap(), 100_050);
        assert_eq!(kzt("1 000,50").unwrap(), 100_050);
        assert_eq!(kzt("1\u{a0}000,50").unwrap(), 100_050);
        assert_eq!(kzt("1\u{202f}000 000").unwrap(), 100_000_000);
        assert_eq!(kzt("1000.00 KZT").unwrap(), 100_000);
        assert_eq!(kzt("1 500 ₸").unwrap(), 150_000);
        assert_eq!(kzt("₸1500").unwrap(), 150_000);
        assert_eq!(kzt("KZT 0.01").unwrap(), 1);
        assert_eq!(kzt("kzt 7").unwrap(), 700);
        assert_eq!(kzt("  0  ").unwrap(), 0);
        assert_eq!(kzt("007").unwrap(), 700);
    }

    #[test]
    fn parses_tenge_as_people_in_kazakhstan_write_it() {
        for (input, minor) in [
            ("1 500 тг", 150_000),
            ("1500тг.", 150_000),
            ("1500 тенге", 150_000),
            ("1 500,50 теңге", 150_050),
            ("1500 тңг", 150_000),
            ("1500 ТГ", 150_000),
            ("1500 Тенге", 150_000),
            ("1\u{a0}500\u{a0}тг", 150_000),
        ] {
            assert_eq!(kzt(input).unwrap(), minor, "{input}");
            assert_eq!(
                input.parse::<Money>().unwrap(),
                Money::kzt_minor(minor),
                "{input}"
            );
        }
        // A tenge word is KZT: never another currency's amount.
        assert_eq!(
            Money::parse("15 тг", Currency::USD)
                .unwrap_err()
                .to_string(),
            "the currency is USD, but KZT was given"
        );
    }

    #[test]
    fn rejects_with_a_reason() {
        let cases = [
            ("", "invalid amount \"\": there is no number"),
            (
                "-5",
                "amount \"-5\" is negative; write a positive amount in tenge, e.g. `1500` or `1 500,50`",
            ),
            (
                "\u{2212}3,00",
                "amount \"\u{2212}3,00\" is negative; write a positive amount in tenge, e.g. `1500` or `1 500,50`",
            ),
            (
                "\u{2013}3 тг",
                "amount \"\u{2013}3 тг\" is negative; write a positive amount in tenge, e.g. `1500` or `1 500,50`",
            ),
            (
                "1e3",
                "invalid amount \"1e3\": exponent notation is not accepted; write the digits out, e.g. `1500` or `1 500,00`",
            ),
            (
                "1.5E3",
                "invalid amount \"1.5E3\": exponent notation is not accepted; write the digits out, e.g. `1500` or `1 500,00`",
            ),
            (
                "1500.000",
                "amount \"1500.000\" has more digits after the decimal separator than KZT allows (2); write at most 2, e.g. `1500.50` or `1 500,50`",
            ),
            (
                "0.500",
                "amount \"0.500\" has more digits after the decimal separator than KZT allows (2); write at most 2, e.g. `1500.50` or `1 500,50`",
            ),
            (
                "1 000,000",
                "amount \"1 000,000\" has more digits after the decimal separator than KZT allows (2); write at most 2, e.g. `1500.50` or `1 500,50`",
            ),
            (
                "+5",
                "invalid amount \"+5\": write the amount without a sign",
            ),
            (
                "10.0055",
                "amount \"10.0055\" has more digits after the decimal separator than KZT allows (2); write at most 2, e.g. `1500.50` or `1 500,50`",
            ),
            (
                "1,000",
                "invalid amount \"1,000\": one separator followed by three digits is ambiguous (a thousand, or a fraction?); group thousands with spaces, e.g. `1 000`, and write at most two decimals",
            ),
            (
                "1,000.50",
                "invalid amount \"1,000.50\": it has more than one decimal separator; group thousands with spaces, e.g. `1 000,50`",
            ),
            (
                "12a",
                "unknown currency \"a\"; write the amount alone (e.g. `1500`), or with `KZT`, `₸` or `тг`",
            ),
            (
                "1 2a3",
                "invalid amount \"1 2a3\": it contains characters that are not digits",
            ),
            (
                "10 00",
                "invalid amount \"10 00\": spaces may only separate groups of three digits",
            ),
            (
                "1000 000",
                "invalid amount \"1000 000\": spaces may only separate groups of three digits",
            ),
            (
                ".5",
                "invalid amount \".5\": there are no digits before the decimal separator",
            ),
            (
                "5.",
                "invalid amount \"5.\": there are no digits after the decimal separator",
            ),
            (
                "5.x0",
                "invalid amount \"5.x0\": the fraction may only contain digits",
            ),
            (
                "184467440737095516.16",
                "amount \"184467440737095516.16\" does not fit in 64-bit minor units",
            ),
            (
                "99999999999999999999",
                "amount \"99999999999999999999\" does not fit in 64-bit minor units",
            ),
            ("10 USD", "the currency is KZT, but USD was given"),
            (
                "10 XYZ",
                "unknown currency \"XYZ\"; write the amount alone (e.g. `1500`), or with `KZT`, `₸` or `тг`",
            ),
            ("KZT", "invalid amount \"KZT\": there is no number"),
        ];
        for (input, message) in cases {
            let error = kzt(input).expect_err(input);
            assert_eq!(error.to_string(), message, "input {input:?}");
        }
    }

    #[test]
    fn the_largest_amount_parses_and_one_more_overflows() {
        assert_eq!(kzt("184467440737095516.15").unwrap(), u64::MAX);
        assert!(matches!(
            kzt("184467440737095516.16"),
            Err(Error::AmountOverflow { .. })
        ));
    }

    #[test]
    fn displays_as_people_in_kazakhstan_read_it() {
        let show = |minor, c| {
            Money::from_minor(minor, c)
                .to_string()
                .replace('\u{a0}', " ")
        };
        assert_eq!(show(123_456_750, Currency::KZT), "1 234 567,50 ₸");
        assert_eq!(show(100_000, Currency::KZT), "1 000,00 ₸");
        assert_eq!(show(99_999, Currency::KZT), "999,99 ₸");
        assert_eq!(show(5, Currency::KZT), "0,05 ₸");
        assert_eq!(show(1_000_000, Currency::JPY), "1 000 000 ¥");
        assert_eq!(show(1_234, Currency::KWD), "1,234 KWD");
        assert_eq!(
            format!("{:#}", Money::kzt_minor(123_456_750)),
            "1234567.50 KZT"
        );
        assert_eq!(format!("{:?}", Money::kzt_minor(5)), "Money(0.05 KZT)");
    }

    #[test]
    fn arithmetic_is_checked() {
        let a = Money::kzt_minor(150);
        let b = Money::kzt_minor(50);
        assert_eq!(a.checked_add(b).unwrap(), Money::kzt_minor(200));
        assert_eq!(a.checked_sub(b).unwrap(), Money::kzt_minor(100));
        assert_eq!(a.checked_mul(3).unwrap(), Money::kzt_minor(450));
        assert!(matches!(
            b.checked_sub(a),
            Err(Error::NegativeAmount { .. })
        ));
        assert!(matches!(
            Money::kzt_minor(u64::MAX).checked_add(b),
            Err(Error::AmountOverflow { .. })
        ));
        assert!(matches!(
            Money::kzt_minor(u64::MAX).checked_mul(2),
            Err(Error::AmountOverflow { .. })
        ));
        let usd = Money::from_minor(1, Currency::USD);
        assert_eq!(
            a.checked_add(usd).unwrap_err().to_string(),
            "the currency is KZT, but USD was given"
        );
        assert!(Money::kzt(u64::MAX).is_err());
    }

    #[test]
    fn from_str_requires_a_currency() {
        assert_eq!(
            "15 USD".parse::<Money>().unwrap(),
            Money::from_minor(1500, Currency::USD)
        );
        assert_eq!(
            "1,5 KWD".parse::<Money>().unwrap(),
            Money::from_minor(1500, Currency::KWD)
        );
        assert!("15".parse::<Money>().is_err());
        // `¥` is both JPY and CNY: ambiguous, so rejected.
        assert!("15 ¥".parse::<Money>().is_err());
    }
}
