//! The optional second factor of an operator: time-based one-time passwords (RFC 6238:
//! HMAC-SHA1, 30-second steps, 6 digits), as every authenticator app makes them. The secret
//! is 20 random bytes, shown once in Base32 and as an `otpauth://` URI.

use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;

/// Seconds per step.
const STEP: u64 = 30;

/// Steps before and after the current one that are accepted (clock drift, typing time).
const DRIFT: u64 = 1;

const BASE32: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// A new secret: 20 random bytes, in Base32 (32 characters).
///
/// # Errors
///
/// When the operating system gives no random bytes.
pub fn new_totp_secret() -> Result<String, String> {
    let mut bytes = [0u8; 20];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes from the system: {e}"))?;
    Ok(base32(&bytes))
}

/// The URI an authenticator app scans (as a QR code) or takes pasted.
pub fn totp_uri(secret: &str, operator: &str, issuer: &str) -> String {
    let label = crate::web::layout::url_encode(&format!("{issuer}:{operator}"));
    let issuer = crate::web::layout::url_encode(issuer);
    format!(
        "otpauth://totp/{label}?secret={secret}&issuer={issuer}&algorithm=SHA1&digits=6&period=30"
    )
}

/// RFC 4648 Base32 without padding.
fn base32(bytes: &[u8]) -> String {
    let mut out = String::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for byte in bytes {
        buffer = (buffer << 8) | u32::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(char::from(BASE32[((buffer >> bits) & 31) as usize]));
        }
    }
    if bits > 0 {
        out.push(char::from(BASE32[((buffer << (5 - bits)) & 31) as usize]));
    }
    out
}

/// Reads Base32 (case and spaces ignored); `None` for anything else.
fn unbase32(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u32, 0u32);
    for c in text.chars().filter(|c| !c.is_whitespace() && *c != '=') {
        let value = BASE32
            .iter()
            .position(|b| char::from(*b) == c.to_ascii_uppercase())?;
        buffer = (buffer << 5) | u32::try_from(value).ok()?;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push(u8::try_from((buffer >> bits) & 0xff).ok()?);
        }
    }
    Some(out)
}

/// The 6-digit code of `key` at step `step`.
fn code(key: &[u8], step: u64) -> u32 {
    let Ok(mut mac) = Hmac::<Sha1>::new_from_slice(key) else {
        return u32::MAX;
    };
    mac.update(&step.to_be_bytes());
    let digest = mac.finalize().into_bytes();
    let offset = usize::from(digest[digest.len() - 1] & 0x0f);
    let word = u32::from_be_bytes([
        digest[offset] & 0x7f,
        digest[offset + 1],
        digest[offset + 2],
        digest[offset + 3],
    ]);
    word % 1_000_000
}

/// The step `code` is valid for, at `unix_seconds`, within [`DRIFT`] steps; `None` when it
/// is not a code of `secret` now (or the secret cannot be read).
pub(crate) fn verify(secret: &str, code_text: &str, unix_seconds: u64) -> Option<u64> {
    let code_text = code_text.trim().replace(' ', "");
    if code_text.len() != 6 || !code_text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let given: u32 = code_text.parse().ok()?;
    let key = unbase32(secret).filter(|k| !k.is_empty())?;
    let now = unix_seconds / STEP;
    // Every candidate is computed and compared, whichever matches.
    let mut found = None;
    for step in now.saturating_sub(DRIFT)..=now + DRIFT {
        if subtle::ConstantTimeEq::ct_eq(&code(&key, step), &given).into() {
            found = Some(step);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc_6238_sha1_vectors() {
        // RFC 6238 appendix B, SHA-1, secret "12345678901234567890": the last 6 digits.
        let key = b"12345678901234567890";
        for (time, expected) in [
            (59, 287_082),
            (1_111_111_109, 81_804),
            (1_111_111_111, 50_471),
            (1_234_567_890, 5_924),
            (2_000_000_000, 279_037),
        ] {
            assert_eq!(code(key, time / STEP), expected, "T={time}");
        }
        let secret = base32(key);
        assert_eq!(secret, "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        assert_eq!(unbase32(&secret.to_lowercase()).unwrap(), key);
        assert_eq!(verify(&secret, "287082", 59), Some(1));
        assert_eq!(
            verify(&secret, "287 082", 59 + 30),
            Some(1),
            "one step late"
        );
        assert_eq!(verify(&secret, "287082", 59 + 90), None, "too late");
        assert_eq!(verify(&secret, "28708", 59), None);
        assert_eq!(verify(&secret, "abcdef", 59), None);
        assert_eq!(verify("not base32!", "287082", 59), None);
    }

    #[test]
    fn secrets_are_random_and_uris_escaped() {
        let (a, b) = (new_totp_secret().unwrap(), new_totp_secret().unwrap());
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        let uri = totp_uri(&a, "anna k", "rp desk");
        assert!(
            uri.starts_with("otpauth://totp/rp+desk%3Aanna+k?secret="),
            "{uri}"
        );
    }
}
