//! PHP's `(string)` cast of a float with `precision=14` (`zend_gcvt`), `spec/signature.md` §2
//! step 3. Used for JSON numbers with `.`/`e`/`E` and for integers outside `i64`.

use std::fmt::Write as _;

/// Significant digits PHP keeps (`precision` ini setting, default 14).
const PRECISION: i32 = 14;

/// Appends `value` rendered as PHP's `(string)$float` to `out`.
///
/// Rust's `{:.13e}` is correctly rounded from the exact binary value with ties to even, which
/// is what `zend_dtoa` mode 2 does; this function only rearranges those 14 digits.
pub(crate) fn push_php_float(out: &mut String, value: f64) {
    if !value.is_finite() {
        // JSON cannot carry these and `serde_json::Number` cannot hold them; PHP writes these.
        out.push_str(if value.is_nan() {
            "NAN"
        } else if value > 0.0 {
            "INF"
        } else {
            "-INF"
        });
        return;
    }
    let mut scientific = String::with_capacity(24);
    // Writing to a String cannot fail.
    let _ = write!(scientific, "{:.13e}", value.abs());
    let (mantissa, exponent) = scientific.split_once('e').unwrap_or((&scientific, "0"));
    let exponent: i32 = exponent.parse().unwrap_or(0);
    let digits: String = mantissa.chars().filter(char::is_ascii_digit).collect();
    let digits = digits.trim_end_matches('0');

    if value.is_sign_negative() {
        out.push('-');
    }
    if digits.is_empty() {
        // Zero (PHP writes `-0` for negative zero).
        out.push('0');
        return;
    }
    if (-4..PRECISION).contains(&exponent) {
        push_positional(out, digits, exponent);
    } else {
        let (first, rest) = digits.split_at(1);
        out.push_str(first);
        out.push('.');
        out.push_str(if rest.is_empty() { "0" } else { rest });
        out.push('E');
        out.push(if exponent < 0 { '-' } else { '+' });
        let _ = write!(out, "{}", exponent.unsigned_abs());
    }
}

/// Writes `0.d1d2…×10^(exponent+1)` positionally; `digits` has no trailing zeros.
fn push_positional(out: &mut String, digits: &str, exponent: i32) {
    if exponent < 0 {
        out.push_str("0.");
        for _ in 0..(-exponent - 1) {
            out.push('0');
        }
        out.push_str(digits);
        return;
    }
    let int_len = usize::try_from(exponent).unwrap_or(0) + 1;
    if digits.len() <= int_len {
        out.push_str(digits);
        for _ in digits.len()..int_len {
            out.push('0');
        }
    } else {
        let (int_part, frac_part) = digits.split_at(int_len);
        out.push_str(int_part);
        out.push('.');
        out.push_str(frac_part);
    }
}

#[cfg(test)]
mod tests {
    use super::push_php_float;

    fn php(value: f64) -> String {
        let mut s = String::new();
        push_php_float(&mut s, value);
        s
    }

    #[test]
    #[allow(clippy::approx_constant)] // 3.14159265358979 is the spec's example, not PI.
    fn positional_examples_from_the_spec() {
        assert_eq!(php(1.0), "1");
        assert_eq!(php(100.0), "100");
        assert_eq!(php(0.1), "0.1");
        assert_eq!(php(0.300_000_000_000_000_04), "0.3");
        assert_eq!(php(3.141_592_653_589_79), "3.1415926535898");
        assert_eq!(php(99_999_999_999_999.0), "99999999999999");
        assert_eq!(php(123_456.789), "123456.789");
        assert_eq!(php(0.0001), "0.0001");
        assert_eq!(php(-2.5), "-2.5");
        assert_eq!(php(0.0), "0");
        assert_eq!(php(-0.0), "-0");
    }

    #[test]
    fn exponent_examples_from_the_spec() {
        assert_eq!(php(1e14), "1.0E+14");
        assert_eq!(php(1e20), "1.0E+20");
        assert_eq!(php(1e-5), "1.0E-5");
        assert_eq!(php(1.5e-5), "1.5E-5");
        assert_eq!(php(12_345_678_901_234_567_890.0), "1.2345678901235E+19");
        assert_eq!(php(-1e100), "-1.0E+100");
        assert_eq!(php(1e-7), "1.0E-7");
    }

    #[test]
    fn rounding_is_to_14_digits_with_ties_to_even() {
        // 123456789012345 is exact in binary: the 15th digit is a tie, so round to even.
        assert_eq!(php(123_456_789_012_345.0), "1.2345678901234E+14");
        assert_eq!(php(123_456_789_012_355.0), "1.2345678901236E+14");
        // Rounding up can carry into a new digit and change the exponent.
        assert_eq!(php(99_999_999_999_999.5), "1.0E+14");
    }
}
