//! Kazakhstan mobile numbers (MSISDN), parsed from every common written form.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::Error;
use crate::operator::PrefixInfo;

/// A payable Kazakhstan mobile number, held in the canonical form the API wants: 11 digits,
/// country code 7 first, no `+` (`77011234567`).
///
/// [`Msisdn::parse`] accepts every common written form (`+7 701 123 45 67`,
/// `8 (701) 123-45-67`, `87011234567`, `7011234567`, `+77011234567`, `77011234567`, and the
/// international-prefix form `8 10 7 701 …`) and rejects, with a specific error, wrong lengths,
/// letters, Russian numbers (`+7 9xx`) and numbers outside the KZ mobile ranges
/// (`7(?:0[0-25-8]|47|6[0-4]|7[15-8]|85)\d{7}`, from libphonenumber).
///
/// A phone number is personal data: [`Debug`](fmt::Debug) and [`Display`](fmt::Display) mask
/// the middle digits (`7701***4567`), so a number never reaches a log line whole by accident.
/// [`Msisdn::as_str`] gives the digits for the wire.
///
/// ```
/// use rp_model::{Msisdn, Operator};
///
/// let n: Msisdn = "8 (701) 123-45-67".parse()?;
/// assert_eq!(n.as_str(), "77011234567");
/// assert_eq!(n.to_string(), "7701***4567");
/// assert_eq!(n.international(), "+7 701 123 45 67");
/// assert_eq!(n.operator_hint().unwrap().operators, &[Operator::Kcell, Operator::Activ]);
///
/// let err = "+7 912 345 67 89".parse::<Msisdn>().unwrap_err();
/// assert!(err.to_string().contains("Russian"));
/// # Ok::<(), rp_model::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Msisdn([u8; 11]);

impl Msisdn {
    /// Parses a number written in any common form.
    ///
    /// # Errors
    /// [`Error::PhoneEmpty`], [`Error::PhoneInvalidCharacter`], [`Error::PhoneWrongLength`],
    /// [`Error::PhoneRussian`] or [`Error::PhoneNotKzMobile`].
    pub fn parse(input: &str) -> Result<Msisdn, Error> {
        let trimmed = input.trim_matches(|c: char| {
            c.is_whitespace() || matches!(c, '\u{200b}'..='\u{200d}' | '\u{2060}' | '\u{feff}')
        });
        if trimmed.is_empty() {
            return Err(Error::PhoneEmpty);
        }
        let has_plus = trimmed.starts_with('+');
        let mut digits = String::with_capacity(16);
        for (position, character) in trimmed.chars().enumerate() {
            match character {
                '0'..='9' => digits.push(character),
                '+' if position == 0 => {}
                c if is_separator(c) => {}
                _ => {
                    return Err(Error::PhoneInvalidCharacter {
                        character,
                        position: position + 1,
                    });
                }
            }
        }
        let canonical = normalise(&digits, has_plus)?;
        let mut bytes = [0u8; 11];
        bytes.copy_from_slice(canonical.as_bytes());
        let number = Msisdn(bytes);
        let nsn = number.national();
        if nsn.starts_with('9') {
            return Err(Error::PhoneRussian {
                masked: number.to_string(),
            });
        }
        if PrefixInfo::lookup(number.prefix()).is_none() {
            let kind = if nsn.starts_with("71") || nsn.starts_with("72") {
                "it is a fixed-line (landline) number"
            } else if nsn.starts_with('7') {
                "its prefix is not assigned to a mobile operator"
            } else {
                "it is outside Kazakhstan's +7 7xx ranges"
            };
            return Err(Error::PhoneNotKzMobile {
                masked: number.to_string(),
                prefix: number.prefix().to_owned(),
                reason: kind,
            });
        }
        Ok(number)
    }

    /// The canonical 11 digits, e.g. `"77011234567"`: the form the API wants.
    pub fn as_str(&self) -> &str {
        // Always ASCII digits: built only by `parse`.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }

    /// The 10-digit national significant number, e.g. `"7011234567"`.
    pub fn national(&self) -> &str {
        self.as_str().get(1..).unwrap_or_default()
    }

    /// The three-digit operator code (DEF code), e.g. `"701"`.
    pub fn prefix(&self) -> &str {
        self.as_str().get(1..4).unwrap_or_default()
    }

    /// The number for people to read: `+7 701 123 45 67`. Not masked: use it for display to
    /// the number's owner, never in logs.
    pub fn international(&self) -> String {
        let s = self.as_str();
        let part = |range: std::ops::Range<usize>| s.get(range).unwrap_or_default();
        format!(
            "+7 {} {} {} {}",
            part(1..4),
            part(4..7),
            part(7..9),
            part(9..11)
        )
    }

    /// The masked form for logs: `7701***4567`. Same as `Display`.
    pub fn masked(&self) -> String {
        self.to_string()
    }

    /// The operator that originally held this number's range: a **hint** only, because numbers
    /// can be ported between operators (see [`PrefixInfo`]). When the caller knows the
    /// operator, use that.
    pub fn operator_hint(&self) -> Option<&'static PrefixInfo> {
        PrefixInfo::lookup(self.prefix())
    }
}

/// Whether `c` may separate the digits of a written number: spaces (also no-break and thin),
/// brackets, dots, the dash family (`-`, U+2010–2015, U+2212 MINUS SIGN, U+FF0D) and the
/// invisible format characters that copying from chats and documents leaves in (U+200B–200D,
/// U+2060, U+FEFF).
fn is_separator(c: char) -> bool {
    matches!(
        c,
        ' ' | '\t'
            | '('
            | ')'
            | '.'
            | '-'
            | '\u{a0}'
            | '\u{202f}'
            | '\u{2009}'
            | '\u{2010}'..='\u{2015}'
            | '\u{2212}'
            | '\u{ff0d}'
            | '\u{200b}'..='\u{200d}'
            | '\u{2060}'
            | '\u{feff}'
    )
}

/// Masks a string of digits for logs: the first and last four stay, the middle becomes `***`.
pub(crate) fn mask_digits(digits: &str) -> String {
    if digits.len() <= 8 || !digits.is_ascii() {
        return "***".to_owned();
    }
    format!(
        "{}***{}",
        digits.get(..4).unwrap_or_default(),
        digits.get(digits.len() - 4..).unwrap_or_default()
    )
}

/// Applies the normalisation rules of `spec/kz.md` §3.2 to the bare digits.
fn normalise(digits: &str, has_plus: bool) -> Result<String, Error> {
    let wrong_length = || Error::PhoneWrongLength {
        digits: digits.len(),
    };
    match digits.len() {
        // 8 10 7 XXX XXX XX XX: the official international-prefix dialling form, 3 + 1 + 10
        // digits (`spec/kz.md` §3.2 says 13 here; that is a slip: the example has 14).
        14 if !has_plus && digits.starts_with("8107") => Ok(digits[3..].to_owned()),
        11 if digits.starts_with('7') => Ok(digits.to_owned()),
        // 8 XXX XXX XX XX: trunk prefix 8 instead of the country code.
        11 if digits.starts_with('8') && !has_plus => Ok(format!("7{}", &digits[1..])),
        11 => Err(Error::PhoneNotKzMobile {
            masked: mask_digits(digits),
            prefix: digits.get(..1).unwrap_or_default().to_owned(),
            reason: "its country code is not 7 (Kazakhstan)",
        }),
        // XXX XXX XX XX: the bare national number (a 9xx one is Russian, reported as such).
        10 if !has_plus && (digits.starts_with('7') || digits.starts_with('9')) => {
            Ok(format!("7{digits}"))
        }
        _ => Err(wrong_length()),
    }
}

impl FromStr for Msisdn {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        Msisdn::parse(s)
    }
}

impl fmt::Display for Msisdn {
    /// Masked: `7701***4567`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&mask_digits(self.as_str()))
    }
}

impl fmt::Debug for Msisdn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Msisdn({self})")
    }
}

impl Serialize for Msisdn {
    /// The canonical 11 digits.
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl<'de> Deserialize<'de> for Msisdn {
    /// Any written form that [`Msisdn::parse`] accepts.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Msisdn::parse(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_written_form_gives_the_canonical_number() {
        for input in [
            "+7 701 123 45 67",
            "8 (701) 123-45-67",
            "87011234567",
            "7011234567",
            "+77011234567",
            "77011234567",
            "+7(701)1234567",
            "+7 (701) 123-45-67",
            "8 701 123 4567",
            "(701) 123-45-67",
            "8 10 7 701 123 45 67",
            "810 7 701 1234567",
            " \u{a0}+7\u{202f}701.123.45.67 ",
            // The dash family and invisible characters, as pasted from chats and documents.
            "8 (701) 123\u{2013}45\u{2014}67",
            "+7\u{2011}701\u{2010}123\u{2012}45\u{2015}67",
            "8\u{2212}701\u{ff0d}1234567",
            "\u{feff}+7 701\u{200b}123\u{200c}45\u{200d}6\u{2060}7",
        ] {
            assert_eq!(
                Msisdn::parse(input).unwrap().as_str(),
                "77011234567",
                "{input}"
            );
        }
        assert_eq!(
            Msisdn::parse("+7 777 123 4567").unwrap().as_str(),
            "77771234567"
        );
        assert_eq!(
            Msisdn::parse("8 777 1234567").unwrap().as_str(),
            "77771234567"
        );
    }

    #[test]
    fn rejections_name_the_problem() {
        let cases = [
            ("", "phone number is empty"),
            ("   ", "phone number is empty"),
            (
                "+7 701 abc 45 67",
                "phone number has an invalid character 'a' at position 8; write digits, spaces, `+`, `-` or brackets",
            ),
            (
                "7701123456O",
                "phone number has an invalid character 'O' at position 11; write digits, spaces, `+`, `-` or brackets",
            ),
            (
                "870112345678",
                "phone number has 12 digits; a Kazakhstan mobile number has 11 (7 + 10), e.g. +7 701 123 45 67",
            ),
            (
                "701123456",
                "phone number has 9 digits; a Kazakhstan mobile number has 11 (7 + 10), e.g. +7 701 123 45 67",
            ),
            (
                "+7011234567",
                "phone number has 10 digits; a Kazakhstan mobile number has 11 (7 + 10), e.g. +7 701 123 45 67",
            ),
            (
                "+7 912 345 67 89",
                "phone number 7912***6789 is a Russian number (+7 9xx); only Kazakhstan mobile numbers (+7 7xx) can be paid",
            ),
            (
                "89123456789",
                "phone number 7912***6789 is a Russian number (+7 9xx); only Kazakhstan mobile numbers (+7 7xx) can be paid",
            ),
            (
                "9123456789",
                "phone number 7912***6789 is a Russian number (+7 9xx); only Kazakhstan mobile numbers (+7 7xx) can be paid",
            ),
            (
                "+7 703 123 45 67",
                "phone number 7703***4567 is not a Kazakhstan mobile number: its prefix is not assigned to a mobile operator (prefix 703)",
            ),
            (
                "+7 727 250 00 00",
                "phone number 7727***0000 is not a Kazakhstan mobile number: it is a fixed-line (landline) number (prefix 727)",
            ),
            (
                "+7 495 123 45 67",
                "phone number 7495***4567 is not a Kazakhstan mobile number: it is outside Kazakhstan's +7 7xx ranges (prefix 495)",
            ),
            (
                "+8 701 123 45 67",
                "phone number 8701***4567 is not a Kazakhstan mobile number: its country code is not 7 (Kazakhstan) (prefix 8)",
            ),
            (
                "+1 212 555 01 23",
                "phone number 1212***0123 is not a Kazakhstan mobile number: its country code is not 7 (Kazakhstan) (prefix 1)",
            ),
        ];
        for (input, message) in cases {
            let error = Msisdn::parse(input).expect_err(input);
            assert_eq!(error.to_string(), message, "input {input:?}");
        }
    }

    #[test]
    fn debug_and_display_mask_the_middle_digits() {
        let n = Msisdn::parse("+7 701 123 45 67").unwrap();
        assert_eq!(format!("{n}"), "7701***4567");
        assert_eq!(format!("{n:?}"), "Msisdn(7701***4567)");
        assert!(!format!("{n:?}").contains("123"));
    }

    #[test]
    fn serialises_as_the_canonical_string() {
        let n = Msisdn::parse("8 (705) 000-00-01").unwrap();
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"77050000001\"");
        let back: Msisdn = serde_json::from_str("\"+7 705 000 00 01\"").unwrap();
        assert_eq!(back, n);
        assert!(serde_json::from_str::<Msisdn>("\"+7 912 345 67 89\"").is_err());
    }

    #[test]
    fn every_prefix_in_the_table_is_payable_and_hinted() {
        for info in PrefixInfo::all() {
            let n = Msisdn::parse(&format!("7{}1234567", info.prefix)).unwrap();
            assert_eq!(n.operator_hint(), Some(info));
        }
        assert_eq!(PrefixInfo::all().len(), 19);
    }
}
