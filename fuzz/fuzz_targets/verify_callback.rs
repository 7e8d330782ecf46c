//! Arbitrary bytes into callback verification: never a panic, and never accepted (the fuzzer
//! does not know the key).
#![no_main]

use libfuzzer_sys::fuzz_target;
use rp_sign::{SecretKey, Signer};

fuzz_target!(|data: &[u8]| {
    let signer = Signer::new(&SecretKey::from("fuzz-key-the-fuzzer-cannot-guess"));
    assert!(signer.verify_callback(data).is_err());
});
