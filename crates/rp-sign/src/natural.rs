//! PHP's natural order: a port of `strnatcmp_ex` (php-src `ext/standard/strnatcmp.c`,
//! case-sensitive), as described in `spec/signature.md` §2 step 4.
//!
//! The C code reads one byte past the end of a string (its NUL terminator) while skipping
//! whitespace; [`at`] reproduces that by reading `0` past the end.

use std::cmp::Ordering;

/// The byte at `i`, or `0` past the end (the C string's terminator).
fn at(s: &[u8], i: usize) -> u8 {
    s.get(i).copied().unwrap_or(0)
}

/// C `isspace` in the "C" locale.
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Whether the byte at `i` exists and is an ASCII digit.
fn digit_at(s: &[u8], i: usize) -> bool {
    s.get(i).is_some_and(u8::is_ascii_digit)
}

/// Compares `a` and `b` in PHP's natural order (`strnatcmp_ex`, case-sensitive) on raw bytes:
/// the order in which paths are sorted before signing (`items:2` before `items:10`).
///
/// It is a total preorder: strings that differ only by whitespace, or by leading zeros at the
/// very start, can compare equal. Sorting with it must be stable to match PHP.
pub fn natural_cmp(a: &[u8], b: &[u8]) -> Ordering {
    // Fast path: skip the common prefix, backed up to the start of any digit or whitespace run
    // that reaches its end. The prefix then ends on an equal plain byte in both strings, which
    // the C loop has just compared and stepped past, so it can resume right there.
    let mut same = a.iter().zip(b).take_while(|(x, y)| x == y).count();
    while same > 0
        && a.get(same - 1)
            .is_some_and(|&c| c.is_ascii_digit() || is_space(c))
    {
        same -= 1;
    }
    if same == 0 {
        return from_start(a, b);
    }
    match (same >= a.len(), same >= b.len()) {
        (true, true) => Ordering::Equal,
        (true, false) => Ordering::Less,
        (false, true) => Ordering::Greater,
        (false, false) => resume(a, same, b, same),
    }
}

/// `strnatcmp_ex` from the very start (empty strings, leading zeros).
fn from_start(a: &[u8], b: &[u8]) -> Ordering {
    if a.is_empty() || b.is_empty() {
        return a.len().cmp(&b.len());
    }
    let (mut ai, mut bi) = (0usize, 0usize);
    // Leading zeros are skipped only at the very start of each string.
    while at(a, ai) == b'0' && digit_at(a, ai + 1) {
        ai += 1;
    }
    while at(b, bi) == b'0' && digit_at(b, bi + 1) {
        bi += 1;
    }
    resume(a, ai, b, bi)
}

/// The main loop of `strnatcmp_ex` from positions `ai` and `bi` (neither past its end).
fn resume(a: &[u8], mut ai: usize, b: &[u8], mut bi: usize) -> Ordering {
    loop {
        let mut ca = at(a, ai);
        let mut cb = at(b, bi);
        while is_space(ca) {
            ai += 1;
            ca = at(a, ai);
        }
        while is_space(cb) {
            bi += 1;
            cb = at(b, bi);
        }
        if ca.is_ascii_digit() && cb.is_ascii_digit() {
            let result = if ca == b'0' || cb == b'0' {
                compare_left(a, &mut ai, b, &mut bi)
            } else {
                compare_right(a, &mut ai, b, &mut bi)
            };
            if result != Ordering::Equal {
                return result;
            }
            match (ai >= a.len(), bi >= b.len()) {
                (true, true) => return Ordering::Equal,
                (true, false) => return Ordering::Less,
                (false, true) => return Ordering::Greater,
                (false, false) => {
                    ca = at(a, ai);
                    cb = at(b, bi);
                }
            }
        }
        match ca.cmp(&cb) {
            Ordering::Equal => {}
            unequal => return unequal,
        }
        ai += 1;
        bi += 1;
        match (ai >= a.len(), bi >= b.len()) {
            (true, true) => return Ordering::Equal,
            (true, false) => return Ordering::Less,
            (false, true) => return Ordering::Greater,
            (false, false) => {}
        }
    }
}

/// Left-aligned digit runs (one starts with `0`): the first differing digit decides.
fn compare_left(a: &[u8], ai: &mut usize, b: &[u8], bi: &mut usize) -> Ordering {
    loop {
        match (digit_at(a, *ai), digit_at(b, *bi)) {
            (false, false) => return Ordering::Equal,
            (false, true) => return Ordering::Less,
            (true, false) => return Ordering::Greater,
            (true, true) => match at(a, *ai).cmp(&at(b, *bi)) {
                Ordering::Equal => {}
                unequal => return unequal,
            },
        }
        *ai += 1;
        *bi += 1;
    }
}

/// Right-aligned digit runs: the longer run is larger; for equal lengths the first differing
/// digit decides.
fn compare_right(a: &[u8], ai: &mut usize, b: &[u8], bi: &mut usize) -> Ordering {
    let mut bias = Ordering::Equal;
    loop {
        match (digit_at(a, *ai), digit_at(b, *bi)) {
            (false, false) => return bias,
            (false, true) => return Ordering::Less,
            (true, false) => return Ordering::Greater,
            (true, true) => {
                if bias == Ordering::Equal {
                    bias = at(a, *ai).cmp(&at(b, *bi));
                }
            }
        }
        *ai += 1;
        *bi += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::{from_start, natural_cmp};
    use proptest::prelude::*;
    use std::cmp::Ordering::{Equal, Greater, Less};

    fn cmp(a: &str, b: &str) -> std::cmp::Ordering {
        natural_cmp(a.as_bytes(), b.as_bytes())
    }

    #[test]
    fn numbers_sort_by_value() {
        assert_eq!(cmp("items:2", "items:10"), Less);
        assert_eq!(cmp("items:10", "items:9"), Greater);
        assert_eq!(cmp("address_line2", "address_line10"), Less);
        assert_eq!(cmp("data:9", "data:10"), Less);
    }

    #[test]
    fn plain_text_is_byte_order() {
        assert_eq!(cmp("B", "_x"), Less);
        assert_eq!(cmp("_x", "a"), Less);
        assert_eq!(cmp("address", "address2"), Less);
        assert_eq!(cmp("payment2", "payment:id"), Less);
        assert_eq!(cmp("｡", "😀"), Less);
    }

    #[test]
    fn empty_is_smallest() {
        assert_eq!(cmp("", ""), Equal);
        assert_eq!(cmp("", "a"), Less);
        assert_eq!(cmp("a", ""), Greater);
    }

    #[test]
    fn whitespace_and_leading_zeros_tie() {
        assert_eq!(cmp("a b", "ab"), Equal);
        assert_eq!(cmp("ab", "a  b"), Equal);
        assert_eq!(cmp("007", "7"), Equal);
        // Leading zeros are only skipped at the very start.
        assert_eq!(cmp("a07", "a7"), Less);
    }

    #[test]
    fn fractional_runs_compare_left_aligned() {
        assert_eq!(cmp("x05", "x1"), Less);
        assert_eq!(cmp("x0", "x00"), Less);
        assert_eq!(cmp("x09", "x05"), Greater);
    }

    #[test]
    fn whitespace_at_the_end_reads_the_terminator() {
        // "a " skips its space onto the terminator (0), which is below 'b'.
        assert_eq!(cmp("a ", "ab"), Less);
        assert_eq!(cmp("a ", "a\t"), Equal);
        assert_eq!(cmp("a ", "a"), Greater);
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// The common-prefix fast path agrees with the plain port on strings that share
        /// prefixes full of digits, zeros and whitespace.
        #[test]
        fn fast_path_agrees_with_the_plain_port(
            prefix in "[0-9a :\t]{0,6}",
            a in "[0-9a :\t]{0,5}",
            b in "[0-9a :\t]{0,5}",
        ) {
            let a = format!("{prefix}{a}");
            let b = format!("{prefix}{b}");
            prop_assert_eq!(
                natural_cmp(a.as_bytes(), b.as_bytes()),
                from_start(a.as_bytes(), b.as_bytes()),
                "{:?} vs {:?}", a, b
            );
        }
    }
}
