//! Any JSON text that parses must canonicalise, explain, sign and verify without panicking,
//! and a signed callback built from it must verify under the canonical order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rp_sign::{SecretKey, Signer, SortVariant, explain, string_to_sign};
use serde_json::Value;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = serde_json::from_slice::<Value>(data) else {
        return;
    };
    let canonical = string_to_sign(&value);
    assert_eq!(canonical.is_ok(), value.is_object());
    if let Ok(explanation) = explain(&value) {
        assert_eq!(Some(explanation.string_to_sign()), canonical.as_deref().ok());
        let _ = explanation.to_string();
    }
    let signer = Signer::new(&SecretKey::from("fuzz"));
    if let Ok(body) = signer.sign_callback_body(&value) {
        let verified = signer
            .verify_callback(&body)
            .expect("a signed callback verifies");
        assert_eq!(verified.variant, SortVariant::PhpNatural);
    }
});
