//! The project's secret key.

use zeroize::Zeroizing;

/// A Gate project's secret key: the HMAC key of every signature.
///
/// - It never shows itself: `Debug` prints `SecretKey(***)`, there is no `Display`, and there is
///   no public accessor for its bytes (only [`crate::Signer`] reads it).
/// - Its memory is wiped (zeroized) when it is dropped.
/// - Any string is accepted, including the empty one: the platform accepts an empty secret
///   (every vendor SDK but Java's signs with it; vector `secret_empty`). Use
///   [`SecretKey::is_empty`] to warn about it.
/// - The key is the UTF-8 bytes of the string, used as is (no trimming).
///
/// ```
/// use rp_sign::SecretKey;
///
/// let key = SecretKey::from("my-project-secret");
/// assert_eq!(format!("{key:?}"), "SecretKey(***)");
/// ```
#[derive(Clone)]
pub struct SecretKey(Zeroizing<String>);

impl SecretKey {
    /// Wraps a secret key (any string, empty allowed).
    pub fn new(secret: impl Into<String>) -> Self {
        SecretKey(Zeroizing::new(secret.into()))
    }

    /// Whether the key is the empty string (allowed, but usually a configuration mistake).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The key bytes, for [`crate::Signer`] only.
    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<String> for SecretKey {
    fn from(secret: String) -> Self {
        SecretKey::new(secret)
    }
}

impl From<&str> for SecretKey {
    fn from(secret: &str) -> Self {
        SecretKey::new(secret)
    }
}

impl std::fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::SecretKey;

    #[test]
    fn debug_hides_the_key() {
        let key = SecretKey::from(String::from("hunter2"));
        let shown = format!("{key:?} {key:#?}");
        assert!(!shown.contains("hunter2"), "{shown}");
        assert!(shown.contains("SecretKey(***)"));
    }

    #[test]
    fn empty_key_is_allowed() {
        assert!(SecretKey::from("").is_empty());
        assert!(!SecretKey::from("x").is_empty());
    }
}
