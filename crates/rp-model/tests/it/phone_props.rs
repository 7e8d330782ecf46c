//! Property tests: every written form of a valid number maps to the same canonical one;
//! invalid ones never parse; no input panics.

use proptest::prelude::*;
use rp_model::{Msisdn, PrefixInfo};

/// A valid KZ mobile NSN: a prefix from the table and seven digits.
fn valid_nsn() -> impl Strategy<Value = String> {
    let prefixes: Vec<&'static str> = PrefixInfo::all().iter().map(|p| p.prefix).collect();
    (proptest::sample::select(prefixes), 0u32..10_000_000)
        .prop_map(|(prefix, rest)| format!("{prefix}{rest:07}"))
}

/// A separator people put between digit groups.
fn separator() -> impl Strategy<Value = &'static str> {
    proptest::sample::select(vec!["", " ", "-", " - ", ".", "\u{a0}", "\u{202f}"])
}

/// Writes `nsn` in one of the common forms, with random separators.
fn written(nsn: &str, form: usize, seps: &[&str]) -> String {
    let (a, b, c, d) = (&nsn[0..3], &nsn[3..6], &nsn[6..8], &nsn[8..10]);
    let body = format!("{a}{}{b}{}{c}{}{d}", seps[0], seps[1], seps[2]);
    let bracketed = format!("({a}){}{b}{}{c}{}{d}", seps[0], seps[1], seps[2]);
    match form {
        0 => format!("+7{}{body}", seps[3]),
        1 => format!("+7{}{bracketed}", seps[3]),
        2 => format!("8{}{bracketed}", seps[3]),
        3 => format!("8{}{body}", seps[3]),
        4 => format!("7{}{body}", seps[3]),
        5 => body,
        6 => bracketed,
        _ => format!("8 10 7{}{body}", seps[3]),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn every_written_form_maps_to_the_canonical_number(
        nsn in valid_nsn(),
        form in 0usize..8,
        seps in proptest::collection::vec(separator(), 4),
        padding in "[ \t]{0,2}",
    ) {
        let text = format!("{padding}{}{padding}", written(&nsn, form, &seps));
        let parsed = Msisdn::parse(&text);
        prop_assert!(parsed.is_ok(), "{text:?}: {parsed:?}");
        let parsed = parsed.unwrap();
        prop_assert_eq!(parsed.as_str(), format!("7{nsn}"));
        prop_assert_eq!(parsed.national(), nsn.as_str());
        // The canonical form and the human form parse back to the same number.
        prop_assert_eq!(Msisdn::parse(parsed.as_str()).unwrap(), parsed);
        prop_assert_eq!(Msisdn::parse(&parsed.international()).unwrap(), parsed);
    }

    #[test]
    fn numbers_outside_the_kz_mobile_ranges_never_parse(
        prefix in 0u32..1000,
        rest in 0u32..10_000_000,
        form in 0usize..8,
        seps in proptest::collection::vec(separator(), 4),
    ) {
        let prefix = format!("{prefix:03}");
        prop_assume!(PrefixInfo::lookup(&prefix).is_none());
        let nsn = format!("{prefix}{rest:07}");
        let text = written(&nsn, form, &seps);
        prop_assert!(Msisdn::parse(&text).is_err(), "{text:?} parsed");
    }

    #[test]
    fn wrong_lengths_never_parse(digits in "[0-9]{1,9}|[0-9]{15,20}") {
        prop_assert!(Msisdn::parse(&digits).is_err());
    }

    #[test]
    fn phone_like_input_never_panics_and_successes_are_payable(text in "[0-9 +()\\-.]{0,20}") {
        // Digits and separators: a good share of these parse, so the checks below do run.
        if let Ok(n) = Msisdn::parse(&text) {
            prop_assert!(PrefixInfo::lookup(n.prefix()).is_some());
            prop_assert_eq!(n.as_str().len(), 11);
            let digits: String = text.chars().filter(char::is_ascii_digit).collect();
            prop_assert!(digits.ends_with(n.national()), "{} from {:?}", n.as_str(), text);
        }
    }

    #[test]
    fn no_input_panics_and_successes_are_payable(text in "\\PC{0,24}") {
        if let Ok(n) = Msisdn::parse(&text) {
            prop_assert!(PrefixInfo::lookup(n.prefix()).is_some());
            prop_assert_eq!(n.as_str().len(), 11);
            let debug = format!("{n:?}");
            prop_assert!(!debug.contains(&n.as_str()[4..7]), "{} is not masked", debug);
        }
    }
}
