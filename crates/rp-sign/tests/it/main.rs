//! Integration tests of rp-sign: the published vectors, the documentation's examples,
//! verification errors and property tests.

// Test helpers outside `#[test]` functions may unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod gate_examples;
mod props;
mod text;
mod vectors;
mod verify;

use rp_sign::{SecretKey, Signer};

/// A signer for `key`.
pub(crate) fn signer(key: &str) -> Signer {
    Signer::new(&SecretKey::from(key))
}
