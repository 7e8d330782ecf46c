//! Property tests (256 cases each).

use std::cmp::Ordering;

use proptest::prelude::*;
use rp_sign::{Error, SortVariant, explain, natural_cmp, string_to_sign};
use serde_json::{Map, Value};

use crate::signer;

fn config() -> ProptestConfig {
    ProptestConfig {
        cases: 256,
        ..ProptestConfig::default()
    }
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(Value::from),
        "\\PC{0,8}".prop_map(|s| Value::String(without_separator(&s))),
        "[a-z0-9 :]{0,6}".prop_map(Value::String),
    ]
}

/// `text` with every `;` (the line separator, refused in signed values) written `,`.
fn without_separator(text: &str) -> String {
    text.replace(';', ",")
}

/// Any JSON value whose object keys come from `key`.
fn json_with_keys(key: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    leaf().prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..12).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..6)
                .prop_map(|members| Value::Object(members.into_iter().collect())),
        ]
    })
}

/// A JSON object with keys from `key`.
fn object_with_keys(key: BoxedStrategy<String>) -> impl Strategy<Value = Value> {
    prop::collection::vec((key.clone(), json_with_keys(key)), 0..6)
        .prop_map(|members| Value::Object(members.into_iter().collect()))
}

/// Keys that never tie in natural order: no whitespace, no leading digit.
fn plain_key() -> BoxedStrategy<String> {
    "[a-z_][a-z_0-9]{0,5}".boxed()
}

/// Keys with everything that matters: colons, digits, spaces, `frame_mode`, `signature`,
/// non-ASCII, the empty key.
fn wild_key() -> BoxedStrategy<String> {
    prop_oneof![
        "[a-z0-9: _]{0,5}",
        "\\PC{0,4}".prop_map(|s| without_separator(&s)),
        Just("frame_mode".to_owned()),
        Just("signature".to_owned()),
        Just("general".to_owned()),
    ]
    .boxed()
}

/// The same value with the members of every object in reverse order.
fn reversed(value: &Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.iter()
                .rev()
                .map(|(k, v)| (k.clone(), reversed(v)))
                .collect::<Map<_, _>>(),
        ),
        Value::Array(items) => Value::Array(items.iter().map(reversed).collect()),
        leaf => leaf.clone(),
    }
}

/// Mutable references to every scalar leaf, in document order.
fn leaves(value: &mut Value) -> Vec<&mut Value> {
    match value {
        Value::Object(map) => map.values_mut().flat_map(leaves).collect(),
        Value::Array(items) => items.iter_mut().flat_map(leaves).collect(),
        leaf => vec![leaf],
    }
}

/// How many objects `value` holds (itself included).
fn count_objects(value: &Value) -> usize {
    match value {
        Value::Object(map) => 1 + map.values().map(count_objects).sum::<usize>(),
        Value::Array(items) => items.iter().map(count_objects).sum(),
        _ => 0,
    }
}

/// The `n`-th object of `value` in pre-order (0 is `value` itself when it is an object).
fn nth_object<'a>(value: &'a mut Value, n: &mut usize) -> Option<&'a mut Map<String, Value>> {
    match value {
        Value::Object(map) => {
            if *n == 0 {
                return Some(map);
            }
            *n -= 1;
            map.values_mut().find_map(|child| nth_object(child, n))
        }
        Value::Array(items) => items.iter_mut().find_map(|item| nth_object(item, n)),
        _ => None,
    }
}

/// A callback signed with `key`, parsed back.
/// Whether a member named `signature` is left below the root once the payload is signed.
fn nested_signature(value: &Value, depth: usize) -> bool {
    match value {
        Value::Object(map) => map.iter().any(|(k, v)| {
            // The root `signature` is replaced by signing; `frame_mode` is skipped.
            k != "frame_mode"
                && !(depth == 0 && k == "signature")
                && (k == "signature" || nested_signature(v, depth + 1))
        }),
        Value::Array(items) => items.iter().any(|v| nested_signature(v, depth + 1)),
        _ => false,
    }
}

fn signed(payload: &Value, key: &str) -> Value {
    signer(key).sign_callback(payload).unwrap()
}

fn assert_rejected(callback: &Value, key: &str) -> Result<(), TestCaseError> {
    let body = serde_json::to_vec(callback).unwrap();
    match signer(key).verify_callback(&body) {
        Err(Error::InvalidSignature { .. }) => Ok(()),
        other => Err(TestCaseError::fail(format!(
            "accepted or wrong error: {other:?}"
        ))),
    }
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn key_order_never_changes_the_signature(payload in object_with_keys(plain_key())) {
        let s = signer("k");
        prop_assert_eq!(
            s.sign_value(&payload).unwrap().to_base64(),
            s.sign_value(&reversed(&payload)).unwrap().to_base64()
        );
    }

    #[test]
    fn sign_then_verify_always_passes(payload in object_with_keys(wild_key()), key in "\\PC{0,12}") {
        let body = signer(&key).sign_callback_body(&payload).unwrap();
        let result = signer(&key).verify_callback(&body);
        if nested_signature(&payload, 0) {
            // A second `signature` member is never accepted (spec/signature.md §2 step 0).
            prop_assert!(matches!(result, Err(Error::ExtraSignature { .. })), "{:?}", result);
            return Ok(());
        }
        let verified = result.unwrap();
        prop_assert_eq!(verified.variant(), SortVariant::PhpNatural);
        let mut expected = payload;
        expected.as_object_mut().unwrap().remove("signature");
        prop_assert_eq!(verified.value().unwrap(), expected);
    }

    #[test]
    fn changing_any_leaf_breaks_the_signature(
        payload in object_with_keys(plain_key()),
        pick in any::<prop::sample::Index>(),
    ) {
        let callback = signed(&payload, "k");
        let mut changed = callback;
        let mut targets = leaves(&mut changed);
        // The root `signature` is a leaf too; changing it must fail as well.
        let target = pick.get_mut(&mut targets);
        **target = Value::String(format!("{target}~changed"));
        assert_rejected(&changed, "k").or_else(|e| {
            // A malformed signature is also a rejection when the signature itself was hit.
            let body = serde_json::to_vec(&changed).unwrap();
            match signer("k").verify_callback(&body) {
                Err(Error::MalformedSignature { .. }) => Ok(()),
                _ => Err(e),
            }
        })?;
    }

    #[test]
    fn adding_a_leaf_breaks_the_signature(
        payload in object_with_keys(plain_key()),
        pick in any::<prop::sample::Index>(),
        value in leaf(),
    ) {
        let mut changed = signed(&payload, "k");
        let mut n = pick.index(count_objects(&changed));
        let map = nth_object(&mut changed, &mut n).unwrap();
        // A key no generated key can equal, so this is always a new member.
        map.insert("ZZ-added".to_owned(), value);
        assert_rejected(&changed, "k")?;
    }

    #[test]
    fn removing_a_leaf_breaks_the_signature(
        payload in object_with_keys(plain_key()),
        pick in any::<prop::sample::Index>(),
    ) {
        let mut changed = signed(&payload, "k");
        let signature = changed.as_object_mut().unwrap().remove("signature").unwrap();
        // Remove one member holding a scalar, from an object that has one.
        let scalar = |v: &Value| !v.is_object() && !v.is_array();
        let total = count_objects(&changed);
        let first = pick.index(total);
        let mut removed = false;
        for offset in 0..total {
            let mut n = (first + offset) % total;
            let map = nth_object(&mut changed, &mut n).unwrap();
            if let Some(key) = map.iter().find(|(_, v)| scalar(v)).map(|(k, _)| k.clone()) {
                map.remove(&key);
                removed = true;
                break;
            }
        }
        prop_assume!(removed);
        changed.as_object_mut().unwrap().insert("signature".to_owned(), signature);
        assert_rejected(&changed, "k")?;
    }

    #[test]
    fn natural_order_is_antisymmetric_and_transitive(
        a in "[0-9a :\t]{0,6}",
        b in "[0-9a :\t]{0,6}",
        c in "[0-9a :\t]{0,6}",
    ) {
        let (a, b, c) = (a.as_bytes(), b.as_bytes(), c.as_bytes());
        prop_assert_eq!(natural_cmp(a, b), natural_cmp(b, a).reverse());
        prop_assert_eq!(natural_cmp(a, a), Ordering::Equal);
        if natural_cmp(a, b) != Ordering::Greater && natural_cmp(b, c) != Ordering::Greater {
            prop_assert_ne!(natural_cmp(a, c), Ordering::Greater, "not transitive");
        }
        if natural_cmp(a, b) == Ordering::Equal && natural_cmp(b, c) == Ordering::Equal {
            prop_assert_eq!(natural_cmp(a, c), Ordering::Equal);
        }
    }

    #[test]
    fn natural_order_is_consistent_with_sorting(
        mut items in prop::collection::vec(prop_oneof!["[0-9a :\t]{0,6}", "\\PC{0,4}"], 0..40),
    ) {
        items.sort_by(|x, y| natural_cmp(x.as_bytes(), y.as_bytes()));
        for (i, x) in items.iter().enumerate() {
            for y in &items[i + 1..] {
                prop_assert_ne!(natural_cmp(x.as_bytes(), y.as_bytes()), Ordering::Greater, "{:?} {:?}", x, y);
            }
        }
    }

    #[test]
    fn random_bytes_never_panic_verify(bytes in prop::collection::vec(any::<u8>(), 0..200)) {
        let _ = signer("k").verify_callback(&bytes);
        let mut wrapped = br#"{"signature":""#.to_vec();
        wrapped.extend_from_slice(&bytes);
        let _ = signer("k").verify_callback(&wrapped);
    }

    #[test]
    fn random_json_never_panics_canonicalisation(value in json_with_keys(wild_key())) {
        let result = string_to_sign(&value);
        prop_assert_eq!(result.is_ok(), value.is_object());
        let _ = explain(&value).map(|e| e.to_string());
        let _ = signer("k").verify_value(&value);
    }
}

/// Whitespace that JSON allows between tokens.
fn ws() -> impl Strategy<Value = &'static str> {
    prop::sample::select(vec!["", "", "", " ", "\n", "\t", "\r\n  "])
}

/// A JSON string literal for `text`, each character written raw, with a short escape or
/// with `\u` escapes (surrogate pairs above the BMP, upper or lower case hex).
/// A `;` is written `,`: messages with one are refused as ambiguous (see
/// `separator_anywhere_is_refused_both_ways`).
#[allow(clippy::needless_pass_by_value)] // `prop_flat_map` hands over an owned `String`
fn string_literal(text: String) -> impl Strategy<Value = String> {
    let text = without_separator(&text);
    let n = text.chars().count();
    prop::collection::vec(0u8..4, n).prop_map(move |styles| {
        let mut out = String::from("\"");
        for (c, style) in text.chars().zip(styles) {
            let must_escape = c == '"' || c == '\\' || c < ' ';
            match (style, c) {
                (1, '"') => out.push_str("\\\""),
                (1, '\\') => out.push_str("\\\\"),
                (1, '/') => out.push_str("\\/"),
                (1, '\n') => out.push_str("\\n"),
                (1, '\t') => out.push_str("\\t"),
                (0, _) if !must_escape => out.push(c),
                _ => {
                    let mut units = [0u16; 2];
                    for unit in c.encode_utf16(&mut units) {
                        if style == 3 {
                            out.push_str(&format!("\\u{unit:04X}"));
                        } else {
                            out.push_str(&format!("\\u{unit:04x}"));
                        }
                    }
                }
            }
        }
        out.push('"');
        out
    })
}

/// Number tokens of every shape, never the integer `-0` (see `minus_zero_*`).
fn number_text() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string()),
        any::<u64>().prop_map(|u| u.to_string()),
        "-?[1-9][0-9]{18,30}",
        "-?(0|[1-9][0-9]{0,5})(\\.[0-9]{1,8})?([eE][+-]?[0-9]{1,3})?",
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| f.to_string()),
        any::<f64>()
            .prop_filter("finite", |f| f.is_finite())
            .prop_map(|f| format!("{f:e}")),
        prop::sample::select(vec![
            "0",
            "-0.0",
            "0.0",
            "1E2",
            "1e-7",
            "1.0",
            "9007199254740993",
            "-9223372036854775808",
            "9223372036854775808",
            "-9223372036854775809",
            "1e308",
            "2.5e-324",
            "1e400",
        ])
        .prop_map(str::to_owned),
    ]
    // `f64::to_string` and the pattern can give `-0` too.
    .prop_map(|t| if t == "-0" { "-0.0".to_owned() } else { t })
}

/// Object keys as text: a small pool (so duplicates are common, also spelled differently
/// with escapes) and everything the canonicaliser treats specially.
fn key_text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[a-c]{1,2}",
        1 => prop::sample::select(vec!["frame_mode", "general", "x:y", "a b", "a1", "a10", "", "é", "😀"])
            .prop_map(str::to_owned),
        1 => "\\PC{0,4}",
    ]
    .prop_flat_map(string_literal)
}

/// A JSON text: scalars, nested arrays and objects, with whitespace and duplicate keys.
fn json_text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("false".to_owned()),
        number_text(),
        "\\PC{0,8}".prop_flat_map(string_literal),
        "[ -~]{0,6}".prop_flat_map(string_literal),
    ];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec((ws(), inner.clone(), ws()), 0..6).prop_map(|items| {
                let items: Vec<String> = items
                    .into_iter()
                    .map(|(a, v, b)| format!("{a}{v}{b}"))
                    .collect();
                format!("[{}]", items.join(","))
            }),
            prop::collection::vec((key_text(), ws(), inner), 0..6).prop_map(|members| {
                let members: Vec<String> = members
                    .into_iter()
                    .map(|(k, w, v)| format!("{w}{k}{w}:{w}{v}"))
                    .collect();
                format!("{{{}}}", members.join(","))
            }),
        ]
    })
}

/// A JSON object text (the root of a message).
fn object_text() -> impl Strategy<Value = String> {
    prop::collection::vec((key_text(), ws(), json_text()), 0..6).prop_map(|members| {
        let members: Vec<String> = members
            .into_iter()
            .map(|(k, w, v)| format!("{w}{k}{w}:{w}{v}"))
            .collect();
        format!("{{{}}}", members.join(","))
    })
}

/// `object` (the text of a JSON object) with a root `"signature"` added as its first member.
pub(crate) fn insert_root_signature(object: &str, signature: &str) -> Vec<u8> {
    let rest = object.trim_start().strip_prefix('{').unwrap();
    let separator = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!("{{\"signature\":\"{signature}\"{separator}{rest}").into_bytes()
}

/// A single-byte edit of `text`: truncate, delete, or insert or replace a byte.
fn mutate(text: &str, at: prop::sample::Index, byte: u8, how: u8) -> Vec<u8> {
    let mut bytes = text.as_bytes().to_vec();
    let i = at.index(bytes.len() + 1);
    match how {
        0 => bytes.truncate(i),
        1 if i < bytes.len() => {
            bytes.remove(i);
        }
        2 if i < bytes.len() => bytes[i] = byte,
        _ => bytes.insert(i, byte),
    }
    bytes
}

proptest! {
    #![proptest_config(config())]

    /// The borrowed reader and the `Value` path build the same string to sign: a signature
    /// made from the `serde_json` parse verifies from the raw text, under the canonical order.
    #[test]
    fn raw_bytes_and_value_paths_sign_the_same_string(text in object_text()) {
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            // Only out-of-range numbers make a generated text invalid; both must refuse it.
            let body = insert_root_signature(&text, "x");
            prop_assert!(matches!(signer("k").verify_callback(&body), Err(Error::InvalidJson(_))));
            return Ok(());
        };
        prop_assume!(value.get("signature").is_none());
        let signature = signer("k").sign_value(&value).unwrap().to_base64();
        let body = insert_root_signature(&text, &signature);
        let verified = signer("k").verify_callback(&body).map_err(|e| {
            TestCaseError::fail(format!("{e}\ntext: {text}\nValue path: {}", string_to_sign(&value).unwrap()))
        })?;
        prop_assert_eq!(verified.variant(), SortVariant::PhpNatural);
        prop_assert_eq!(verified.value().unwrap(), value);
    }

    /// `verify_callback` reads the usual callback in one pass, and anything else through the
    /// general path: from the bytes it answers exactly what `verify_value` answers on the
    /// `serde_json` parse (location, order, or which error), signature at the root or in
    /// `general`, right or wrong.
    #[test]
    fn verify_callback_agrees_with_verify_value(
        text in object_text(),
        in_general in any::<bool>(),
        right in prop::bool::weighted(0.8),
    ) {
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            return Ok(());
        };
        prop_assume!(value.get("signature").is_none() && value.get("general").is_none());
        let signature = if right {
            signer("k").sign_value(&value).unwrap().to_base64()
        } else {
            format!("{}==", "A".repeat(86))
        };
        let body = if in_general {
            let rest = text.trim_start().strip_prefix('{').unwrap();
            let separator = if rest.trim_start().starts_with('}') { "" } else { "," };
            format!("{{\"general\":{{\"signature\":\"{signature}\"}}{separator}{rest}").into_bytes()
        } else {
            insert_root_signature(&text, &signature)
        };
        let parsed: Value = serde_json::from_slice(&body).unwrap();
        match (signer("k").verify_callback(&body), signer("k").verify_value(&parsed)) {
            (Ok(bytes), Ok(value)) => {
                prop_assert_eq!(bytes.location(), value.location());
                prop_assert_eq!(bytes.variant(), value.variant());
                prop_assert_eq!(bytes.value().unwrap(), value.value().unwrap());
            }
            (Err(bytes), Err(value)) => {
                prop_assert_eq!(std::mem::discriminant(&bytes), std::mem::discriminant(&value));
            }
            (bytes, value) => prop_assert!(
                false,
                "{}: from bytes {:?}, from the value {:?}",
                String::from_utf8_lossy(&body),
                bytes.map(|v| v.location()),
                value.map(|v| v.location())
            ),
        }
    }

    /// Any one-byte edit of a JSON text: never a panic, and refused as `InvalidJson` exactly
    /// when `serde_json` refuses it.
    #[test]
    fn raw_reader_accepts_exactly_what_serde_json_accepts(
        text in json_text(),
        at in any::<prop::sample::Index>(),
        byte in prop_oneof![any::<u8>(), prop::sample::select(b"{}[],:\"\\u0-.eE \x00\xff".to_vec())],
        how in 0u8..4,
    ) {
        for bytes in [text.clone().into_bytes(), mutate(&text, at, byte, how)] {
            let serde_ok = serde_json::from_slice::<Value>(&bytes).is_ok();
            let ours = signer("k").verify_callback(&bytes);
            prop_assert_eq!(
                serde_ok,
                !matches!(ours, Err(Error::InvalidJson(_))),
                "{:?}: serde_json {}, ours {:?}", String::from_utf8_lossy(&bytes), serde_ok, ours
            );
        }
    }
}

/// The HMAC-SHA512 of the string to sign, computed here from the canonical string alone: a
/// signature the platform (or a forger replaying one) could have produced for `payload`.
fn raw_signature(payload: &Value, key: &str) -> String {
    use base64::Engine as _;
    use hmac::{KeyInit, Mac};
    let mut mac = hmac::Hmac::<sha2::Sha512>::new_from_slice(key.as_bytes()).unwrap();
    mac.update(string_to_sign(payload).unwrap().as_bytes());
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}

/// Keys that are mostly plain (no digit, whitespace or `:`), so that signing takes its fast
/// path, and often prefixes of each other on both sides of `:` in byte order (`-`, `.`,
/// `/` below it, `_` and letters above).
fn mostly_plain_key() -> BoxedStrategy<String> {
    prop_oneof![
        12 => "[a-c_.\\-/]{0,3}",
        1 => wild_key(),
    ]
    .boxed()
}

proptest! {
    #![proptest_config(config())]

    /// Signing a `Value` (which writes plain payloads straight in sorted order) gives the HMAC
    /// of the string to sign built the general way (lines sorted by path).
    #[test]
    fn signing_signs_the_string_to_sign(payload in object_with_keys(mostly_plain_key())) {
        match signer("k").sign_value(&payload) {
            Ok(signature) => prop_assert_eq!(signature.to_base64(), raw_signature(&payload, "k")),
            Err(e) => prop_assert!(matches!(e, Error::AmbiguousValue { .. }), "{}", e),
        }
    }
}

proptest! {
    #![proptest_config(config())]

    /// A `;` in any key or string value, at any depth, raw or escaped as `\u003b`: signing is
    /// refused, and a body carrying a signature that matches its string to sign is refused
    /// as ambiguous before it could be accepted.
    #[test]
    fn separator_anywhere_is_refused_both_ways(
        payload in object_with_keys(plain_key()),
        pick in any::<prop::sample::Index>(),
        in_key in any::<bool>(),
        escaped in any::<bool>(),
    ) {
        let mut payload = payload;
        let mut n = pick.index(count_objects(&payload));
        let map = nth_object(&mut payload, &mut n).unwrap();
        if in_key {
            map.insert("zz;x".to_owned(), Value::from(1));
        } else {
            map.insert("zz".to_owned(), Value::from("a;payment:status:reversed"));
        }
        let signing_refused = matches!(
            signer("k").sign_value(&payload),
            Err(Error::AmbiguousValue { signing: true, .. })
        );
        prop_assert!(signing_refused);
        let callback_refused = matches!(
            signer("k").sign_callback(&payload),
            Err(Error::AmbiguousValue { signing: true, .. })
        );
        prop_assert!(callback_refused);

        let mut body = payload.clone();
        body.as_object_mut().unwrap().insert("signature".into(), raw_signature(&payload, "k").into());
        let mut text = serde_json::to_string(&body).unwrap();
        if escaped {
            text = text.replace(';', "\\u003b");
        }
        let verified = signer("k").verify_callback(text.as_bytes());
        prop_assert!(
            matches!(verified, Err(Error::AmbiguousValue { signing: false, .. })),
            "{:?}", verified
        );
        let value_refused = matches!(
            signer("k").verify_value(&body),
            Err(Error::AmbiguousValue { signing: false, .. })
        );
        prop_assert!(value_refused);
    }
}
