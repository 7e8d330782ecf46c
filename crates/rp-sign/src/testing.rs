//! Helpers for tests: build signed callbacks without the platform (like async-stripe's webhook
//! test helpers). Merchants use them to test their callback handlers; the simulator uses them
//! to send callbacks.
//!
//! ```
//! use rp_sign::{SecretKey, Signer, SortVariant, testing};
//! use serde_json::json;
//!
//! let key = SecretKey::from("secret");
//! let body = testing::sign_callback(&json!({"payment": {"id": "p1", "status": "success"}}), &key)?;
//! let verified = Signer::new(&key).verify_callback(&body)?;
//! assert_eq!(verified.variant(), SortVariant::PhpNatural);
//! # Ok::<(), rp_sign::Error>(())
//! ```

use serde_json::Value;

use crate::error::Error;
use crate::key::SecretKey;
use crate::signer::Signer;

/// A callback body (JSON bytes) with a root `signature` over `payload`, replacing any root
/// `signature` already there.
///
/// # Errors
///
/// [`Error::NotAnObject`] if `payload` is not a JSON object.
pub fn sign_callback(payload: &Value, key: &SecretKey) -> Result<Vec<u8>, Error> {
    Signer::new(key).sign_callback_body(payload)
}

/// Like [`sign_callback`], for a payload given as JSON bytes.
///
/// # Errors
///
/// [`Error::InvalidJson`] if `payload` is not JSON, [`Error::NotAnObject`] if it is not an
/// object.
pub fn sign_callback_bytes(payload: &[u8], key: &SecretKey) -> Result<Vec<u8>, Error> {
    let value: Value = serde_json::from_slice(payload).map_err(Error::InvalidJson)?;
    sign_callback(&value, key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_round_trip_and_bad_json_is_reported() {
        let key = SecretKey::from("k");
        let body = sign_callback_bytes(br#"{"a":1,"signature":"old"}"#, &key).unwrap();
        let verified = Signer::new(&key).verify_callback(&body).unwrap();
        assert_eq!(verified.value().unwrap(), serde_json::json!({"a": 1}));
        assert!(matches!(
            sign_callback_bytes(b"{", &key),
            Err(Error::InvalidJson(_))
        ));
    }
}
