//! Minting payment IDs: [`PaymentIdGenerator`], [`RandomPaymentIds`], [`SequentialPaymentIds`].

use std::collections::hash_map::RandomState;
use std::fmt;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Mints new payment IDs for callers who let the client choose them
/// ([`Client::new_payment_id`](crate::Client::new_payment_id)).
///
/// An ID is minted **once per payout**, by the caller, before the payout is built; the client
/// never mints one on a retry. Each call must return an ID never returned before (the client
/// checks its form with [`PaymentId::new`](rp_model::PaymentId::new)).
pub trait PaymentIdGenerator: Send + Sync + fmt::Debug {
    /// A new, unique payment ID.
    fn generate(&self) -> String;
}

/// IDs like `rp-lx2k9a1b-3f9c0e1d2a4b5c6d`: a prefix, the time in milliseconds (base 36) and 64
/// random bits. The default generator.
#[derive(Debug, Clone)]
pub struct RandomPaymentIds {
    prefix: String,
}

impl RandomPaymentIds {
    /// IDs starting with `prefix` and `-` (e.g. `shop` gives `shop-…`).
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
        }
    }
}

impl Default for RandomPaymentIds {
    fn default() -> Self {
        Self::new("rp")
    }
}

/// 64 bits from the standard library's randomly seeded hasher, mixed with a process counter.
fn random_u64() -> u64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.finish()
}

fn base36(mut n: u128) -> String {
    const DIGITS: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let mut out = Vec::new();
    loop {
        let digit = usize::try_from(n % 36).unwrap_or(0);
        out.push(DIGITS.get(digit).copied().unwrap_or(b'0'));
        n /= 36;
        if n == 0 {
            break;
        }
    }
    out.reverse();
    String::from_utf8_lossy(&out).into_owned()
}

impl PaymentIdGenerator for RandomPaymentIds {
    fn generate(&self) -> String {
        let millis = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or(0);
        format!("{}-{}-{:016x}", self.prefix, base36(millis), random_u64())
    }
}

/// `prefix-1`, `prefix-2`, …: predictable IDs for tests (unique only within one process).
#[derive(Debug)]
pub struct SequentialPaymentIds {
    prefix: String,
    next: AtomicU64,
}

impl SequentialPaymentIds {
    /// IDs `prefix-1`, `prefix-2`, ….
    pub fn new(prefix: impl Into<String>) -> Self {
        Self {
            prefix: prefix.into(),
            next: AtomicU64::new(1),
        }
    }
}

impl PaymentIdGenerator for SequentialPaymentIds {
    fn generate(&self) -> String {
        format!(
            "{}-{}",
            self.prefix,
            self.next.fetch_add(1, Ordering::Relaxed)
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rp_model::PaymentId;

    #[test]
    fn random_ids_are_valid_and_distinct() {
        let ids = RandomPaymentIds::default();
        let a = ids.generate();
        let b = ids.generate();
        assert_ne!(a, b);
        assert!(a.starts_with("rp-"), "{a}");
        assert!(PaymentId::new(a).is_ok());
    }

    #[test]
    fn sequential_ids_count_up() {
        let ids = SequentialPaymentIds::new("t");
        assert_eq!(ids.generate(), "t-1");
        assert_eq!(ids.generate(), "t-2");
    }

    #[test]
    fn base36_digits() {
        assert_eq!(base36(0), "0");
        assert_eq!(base36(35), "z");
        assert_eq!(base36(36), "10");
    }
}
