//! Every vector of `spec/signature-vectors.json` (read at test time, not copied).

use rp_sign::{Error, SortVariant, string_to_sign};
use serde_json::Value;

use crate::signer;

/// The two vectors that only show PHP SDK bugs, which we deliberately do not emulate.
const PHP_BUGS: [&str; 2] = [
    "top_level_key_zero_with_object",
    "numeric_top_level_keys_renumbered",
];

/// Vectors whose values hold `;`, the line separator: their string to sign can be regrouped
/// into another message, so we reproduce it but never sign or accept them (invariant 11).
const AMBIGUOUS: [&str; 1] = ["values_with_separators"];

fn vectors() -> Vec<Value> {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../spec/signature-vectors.json"
    );
    let text = std::fs::read_to_string(path).unwrap();
    let file: Value = serde_json::from_str(&text).unwrap();
    file["vectors"].as_array().unwrap().clone()
}

fn vector(name: &str) -> Value {
    vectors()
        .into_iter()
        .find(|v| v["name"] == name)
        .unwrap_or_else(|| panic!("no vector {name}"))
}

fn text<'a>(v: &'a Value, field: &str) -> &'a str {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{}: {field} is not a string", v["name"]))
}

/// `payload_text` with a root `signature` added (the payload is re-serialised; order kept).
fn with_root_signature(v: &Value, signature: &str) -> Vec<u8> {
    let mut payload: Value = serde_json::from_str(text(v, "payload_text")).unwrap();
    payload
        .as_object_mut()
        .unwrap()
        .insert("signature".into(), signature.into());
    serde_json::to_vec(&payload).unwrap()
}

#[test]
fn every_signed_vector_reproduces_string_and_signature() {
    let mut checked = 0;
    let mut bytes_checked = 0;
    for v in vectors() {
        let name = text(&v, "name");
        if v["signature"].is_null() || PHP_BUGS.contains(&name) {
            continue;
        }
        let payload: Value = serde_json::from_str(text(&v, "payload_text")).unwrap();
        assert_eq!(
            string_to_sign(&payload).unwrap(),
            text(&v, "string_to_sign"),
            "string to sign of {name}"
        );
        let signer = signer(text(&v, "secret"));
        if AMBIGUOUS.contains(&name) {
            checked += 1;
            continue; // see `ambiguous_vectors_are_reproduced_but_never_signed_or_accepted`
        }
        assert_eq!(
            signer.sign_value(&payload).unwrap().to_base64(),
            text(&v, "signature"),
            "signature of {name}"
        );
        // The same signature verifies as a callback, under the canonical order (except where
        // the payload already has a root `signature`, which is then signed as data).
        if payload.get("signature").is_none() {
            let body = with_root_signature(&v, text(&v, "signature"));
            let verified = signer
                .verify_callback(&body)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(verified.variant(), SortVariant::PhpNatural, "{name}");
            assert_eq!(
                verified.value().unwrap(),
                payload,
                "{name}: signature removed"
            );
            // And from the exact `payload_text` (its own escapes and number spellings),
            // through the borrowed reader.
            let body = crate::props::insert_root_signature(
                text(&v, "payload_text"),
                text(&v, "signature"),
            );
            let verified = signer
                .verify_callback(&body)
                .unwrap_or_else(|e| panic!("{name} (payload_text): {e}"));
            assert_eq!(verified.variant(), SortVariant::PhpNatural, "{name}");
            bytes_checked += 1;
        }
        checked += 1;
    }
    assert_eq!(checked, 47, "vectors checked");
    // All but `raw_sign_includes_signature_key`, whose payload has a root `signature`, and the
    // ambiguous ones.
    assert_eq!(bytes_checked, 45, "vectors checked from bytes");
}

#[test]
fn php_bug_vectors_are_not_emulated() {
    // Our strings follow the plain rules (as the Python, JS, Go and Java SDKs do here).
    for (name, ours) in [
        ("top_level_key_zero_with_object", "0:1:x;a:y"),
        ("numeric_top_level_keys_renumbered", "4:k:1;5:x"),
    ] {
        let v = vector(name);
        let payload: Value = serde_json::from_str(text(&v, "payload_text")).unwrap();
        let string = string_to_sign(&payload).unwrap();
        assert_eq!(string, ours, "{name}");
        assert_ne!(
            string,
            text(&v, "string_to_sign"),
            "{name}: PHP bug emulated"
        );
        let signature = signer(text(&v, "secret")).sign_value(&payload).unwrap();
        assert_ne!(signature.to_base64(), text(&v, "signature"), "{name}");
        assert_eq!(
            signature.to_base64(),
            text(&v["sdk_results"], "python"),
            "{name}"
        );
    }
}

#[test]
fn lone_surrogate_is_rejected() {
    let v = vector("lone_surrogate");
    assert!(v["signature"].is_null());
    let payload_text = text(&v, "payload_text");
    assert!(serde_json::from_str::<Value>(payload_text).is_err());
    let err = signer("secret")
        .verify_callback(payload_text.as_bytes())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidJson(_)), "{err}");
    let err = rp_sign::testing::sign_callback_bytes(payload_text.as_bytes(), &"secret".into())
        .unwrap_err();
    assert!(matches!(err, Error::InvalidJson(_)), "{err}");
}

/// Vectors where an SDK differs from PHP only by its sort order, with the variant that
/// reproduces that SDK's signature.
const SORT_ONLY_DIVERGENCES: [(&str, &str, SortVariant); 11] = [
    ("array_11_elements", "python", SortVariant::BytewiseByPath),
    ("array_11_elements", "go", SortVariant::BytewiseByLine),
    ("array_11_elements", "java", SortVariant::BytewiseByLine),
    (
        "receipt_12_positions",
        "python",
        SortVariant::BytewiseByPath,
    ),
    // No leaf path is a prefix of another here, so Go's line order equals the path order.
    ("receipt_12_positions", "go", SortVariant::BytewiseByPath),
    ("key_prefix_then_digit", "go", SortVariant::BytewiseByLine),
    ("key_prefix_then_digit", "java", SortVariant::BytewiseByLine),
    (
        "numeric_keys_in_object",
        "python",
        SortVariant::BytewiseByPath,
    ),
    (
        "natural_sort_digits_in_keys",
        "python",
        SortVariant::BytewiseByPath,
    ),
    (
        "natural_sort_whitespace_tie_ba",
        "python",
        SortVariant::BytewiseByPath,
    ),
    // Go's string equals Python's here, so the by-path variant (tried first) matches.
    (
        "natural_sort_whitespace_tie_ba",
        "go",
        SortVariant::BytewiseByPath,
    ),
];

#[test]
fn other_sdks_signatures_verify_under_their_variant() {
    for (name, sdk, variant) in SORT_ONLY_DIVERGENCES {
        let v = vector(name);
        let sdk_signature = text(&v["sdk_results"], sdk);
        assert_ne!(
            sdk_signature,
            text(&v, "signature"),
            "{name}/{sdk} must diverge"
        );
        let body = with_root_signature(&v, sdk_signature);
        let verified = signer(text(&v, "secret"))
            .verify_callback(&body)
            .unwrap_or_else(|e| panic!("{name}/{sdk}: {e}"));
        assert_eq!(verified.variant(), variant, "{name}/{sdk}");
    }
}

#[test]
fn float_divergences_are_not_accepted_as_variants() {
    // Python renders 1.0 as `1.0`; we only vary the sort order, never the rendering.
    let v = vector("float_1_0");
    let body = with_root_signature(&v, text(&v["sdk_results"], "python"));
    let err = signer(text(&v, "secret"))
        .verify_callback(&body)
        .unwrap_err();
    assert!(matches!(err, Error::InvalidSignature { .. }), "{err}");
}

#[test]
fn ambiguous_vectors_are_reproduced_but_never_signed_or_accepted() {
    use base64::Engine as _;
    use hmac::{KeyInit as _, Mac as _};
    for name in AMBIGUOUS {
        let v = vector(name);
        let payload: Value = serde_json::from_str(text(&v, "payload_text")).unwrap();
        let string = string_to_sign(&payload).unwrap();
        assert_eq!(string, text(&v, "string_to_sign"), "{name}");
        // The vendor's signature is the plain HMAC of that string...
        let mut mac =
            hmac::Hmac::<sha2::Sha512>::new_from_slice(text(&v, "secret").as_bytes()).unwrap();
        mac.update(string.as_bytes());
        let hmac = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
        assert_eq!(hmac, text(&v, "signature"), "{name}");
        // ...but we refuse to sign such a payload, and to accept it signed.
        let signer = signer(text(&v, "secret"));
        let err = signer.sign_value(&payload).unwrap_err();
        assert!(
            matches!(&err, Error::AmbiguousValue { path, signing: true } if path == "a"),
            "{name}: {err:?}"
        );
        let body = with_root_signature(&v, text(&v, "signature"));
        let err = signer.verify_callback(&body).unwrap_err();
        assert!(
            matches!(&err, Error::AmbiguousValue { path, signing: false } if path == "a"),
            "{name}: {err:?}"
        );
        assert!(err.to_string().contains("`a` contains `;`"), "{err}");
        // The explanation says why.
        let explanation = rp_sign::explain(&payload).unwrap();
        assert!(
            explanation
                .notes()
                .iter()
                .any(|n| n.contains("`a` contains `;`")),
            "{:?}",
            explanation.notes()
        );
    }
}
