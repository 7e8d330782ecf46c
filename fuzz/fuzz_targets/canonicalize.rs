//! Any JSON text that parses must canonicalise, explain, sign and verify without panicking;
//! a signed callback built from it must verify under the canonical order; and the same
//! signature must verify from the ORIGINAL text through the borrowed reader (one canonical
//! string for both paths), unless the text holds the integer `-0`, which the reader reads
//! as PHP does (`0`) and `serde_json` as `-0.0`.
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
        assert_eq!(verified.variant(), SortVariant::PhpNatural);
        assert_eq!(verified.value().expect("verified bytes parse"), {
            let mut expected = value.clone();
            if let Some(map) = expected.as_object_mut() {
                map.shift_remove("signature");
            }
            expected
        });
    }
    // The original text through the borrowed reader signs the same string.
    let (Ok(text), Some(map)) = (std::str::from_utf8(data), value.as_object()) else {
        return;
    };
    if map.contains_key("signature") || has_integer_minus_zero(&value) {
        return;
    }
    let signature = signer.sign_value(&value).expect("an object signs").to_base64();
    let Some(rest) = text.trim_start().strip_prefix('{') else {
        return;
    };
    let separator = if rest.trim_start().starts_with('}') { "" } else { "," };
    let body = format!("{{\"signature\":\"{signature}\"{separator}{rest}");
    let verified = signer
        .verify_callback(body.as_bytes())
        .expect("the raw text verifies with the Value path's signature");
    assert_eq!(verified.variant(), SortVariant::PhpNatural);
});

/// Whether `value` holds a number that `serde_json` read from the integer token `-0`
/// (it becomes the float `-0.0`, as does the float token `-0.0`: both are skipped).
fn has_integer_minus_zero(value: &Value) -> bool {
    match value {
        Value::Number(n) => n.as_f64().is_some_and(|f| f == 0.0 && f.is_sign_negative()),
        Value::Array(items) => items.iter().any(has_integer_minus_zero),
        Value::Object(map) => map.values().any(has_integer_minus_zero),
        _ => false,
    }
}
