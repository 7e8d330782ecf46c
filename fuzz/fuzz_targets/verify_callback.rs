//! Arbitrary bytes into callback verification: never a panic, never accepted (the fuzzer
//! does not know the key), and the borrowed reader refuses a body as `InvalidJson` exactly
//! when `serde_json` refuses it.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rp_sign::{Error, SecretKey, Signer};

fuzz_target!(|data: &[u8]| {
    let signer = Signer::new(&SecretKey::from("fuzz-key-the-fuzzer-cannot-guess"));
    let result = signer.verify_callback(data);
    assert!(result.is_err());
    let serde_ok = serde_json::from_slice::<serde_json::Value>(data).is_ok();
    assert_eq!(serde_ok, !matches!(result, Err(Error::InvalidJson(_))));
});
