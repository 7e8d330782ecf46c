//! Property tests: money parse/format round trips, exact decimal parsing, no panics.

use proptest::prelude::*;
use rp_model::{Currency, Money};

fn currency() -> impl Strategy<Value = Currency> {
    proptest::sample::select(Currency::ALL.to_vec())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn display_parses_back_to_the_same_amount(minor in any::<u64>(), currency in currency()) {
        let money = Money::from_minor(minor, currency);
        let shown = money.to_string();
        // The symbol may be shared (¥), so parse the number in the known currency.
        let number = shown.trim_end_matches(|c: char| !c.is_ascii_digit());
        prop_assert_eq!(Money::parse(number, currency).unwrap(), money);
        // The machine form names its currency and parses on its own.
        let plain = format!("{money:#}");
        prop_assert_eq!(plain.parse::<Money>().unwrap(), money);
    }

    #[test]
    fn decimal_text_is_parsed_exactly(
        major in 0u64..100_000_000_000,
        fraction in 0u64..100,
        comma in any::<bool>(),
        digits in 0usize..3,
    ) {
        let (text, expected) = match digits {
            0 => (major.to_string(), major * 100),
            1 => (format!("{major}{}{}", if comma { ',' } else { '.' }, fraction / 10), major * 100 + fraction / 10 * 10),
            _ => (format!("{major}{}{fraction:02}", if comma { ',' } else { '.' }), major * 100 + fraction),
        };
        prop_assert_eq!(Money::parse(&text, Currency::KZT).unwrap().minor_units(), expected);
    }

    #[test]
    fn more_fraction_digits_than_the_currency_has_are_rejected(
        major in 0u64..1_000_000,
        extra in "[0-9]{4,7}",
    ) {
        let text = format!("{major}.{extra}");
        let error = Money::parse(&text, Currency::KZT).unwrap_err();
        prop_assert!(error.to_string().contains("more digits after the decimal separator than KZT allows (2); write at most 2"));
    }

    #[test]
    fn a_separator_and_three_digits_is_ambiguous(major in 1u64..1000, fraction in 0u64..1000, comma in any::<bool>()) {
        let text = format!("{major}{}{fraction:03}", if comma { ',' } else { '.' });
        let error = Money::parse(&text, Currency::KZT).unwrap_err();
        prop_assert!(error.to_string().contains("ambiguous"), "{}", error);
    }

    /// `0.500`, `1500.000`, `1 000,000`: the separator cannot group thousands there, so the
    /// three digits are decimals, one too many.
    #[test]
    fn three_decimals_where_no_thousands_can_be_are_too_many(major in 1000u64..1_000_000, fraction in 0u64..1000, comma in any::<bool>()) {
        let separator = if comma { ',' } else { '.' };
        for text in [format!("{major}{separator}{fraction:03}"), format!("0{separator}{fraction:03}")] {
            let error = Money::parse(&text, Currency::KZT).unwrap_err();
            prop_assert!(error.to_string().contains("more digits after the decimal separator"), "{}", error);
        }
    }

    #[test]
    fn no_input_panics(text in "\\PC{0,30}") {
        let _ = Money::parse(&text, Currency::KZT);
        let _ = text.parse::<Money>();
    }

    #[test]
    fn checked_arithmetic_agrees_with_u128(a in any::<u64>(), b in any::<u64>()) {
        let (x, y) = (Money::kzt_minor(a), Money::kzt_minor(b));
        let sum = u128::from(a) + u128::from(b);
        match x.checked_add(y) {
            Ok(m) => prop_assert_eq!(u128::from(m.minor_units()), sum),
            Err(_) => prop_assert!(sum > u128::from(u64::MAX)),
        }
        match x.checked_sub(y) {
            Ok(m) => prop_assert_eq!(m.minor_units(), a - b),
            Err(_) => prop_assert!(b > a),
        }
    }
}
