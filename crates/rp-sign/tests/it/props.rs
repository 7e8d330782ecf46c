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
        "\\PC{0,8}".prop_map(Value::String),
        "[a-z0-9 :;]{0,6}".prop_map(Value::String),
    ]
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
        "\\PC{0,4}",
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
        let verified = signer(&key).verify_callback(&body).unwrap();
        prop_assert_eq!(verified.variant(), SortVariant::PhpNatural);
        let mut expected = payload;
        expected.as_object_mut().unwrap().shift_remove("signature");
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
        let signature = changed.as_object_mut().unwrap().shift_remove("signature").unwrap();
        // Remove one member holding a scalar, from an object that has one.
        let scalar = |v: &Value| !v.is_object() && !v.is_array();
        let total = count_objects(&changed);
        let first = pick.index(total);
        let mut removed = false;
        for offset in 0..total {
            let mut n = (first + offset) % total;
            let map = nth_object(&mut changed, &mut n).unwrap();
            if let Some(key) = map.iter().find(|(_, v)| scalar(v)).map(|(k, _)| k.clone()) {
                map.shift_remove(&key);
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
