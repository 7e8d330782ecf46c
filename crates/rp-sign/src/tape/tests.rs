//! Tests of the tape: what it writes is the general path's string to sign.

use super::*;
use crate::canonical::{JsonTree, Lines, SortVariant, Strip, View};
use crate::raw::{Document, RawRef};
use crate::signer::find_signature;
use proptest::prelude::*;
use proptest::strategy::ValueTree;

/// What the general path signs for `body` (the canonical string, where the signature is
/// and its text), or `None` if it refuses the body or finds no signature.
fn general(body: &[u8]) -> Option<(String, SignatureLocation, String)> {
    let document = Document::parse(body).ok()?;
    let View::Object(members) = JsonTree::view(document.root()) else {
        return None;
    };
    let (location, member) = find_signature::<RawRef<'_>>(members.clone())?;
    let View::String(signature) = JsonTree::view(member) else {
        return None;
    };
    let strip = match location {
        SignatureLocation::Root => Strip::Root,
        SignatureLocation::General => Strip::General,
    };
    let mut lines = Lines::flatten(members, strip);
    if lines.ambiguity().is_some() || lines.extra_signature().is_some() {
        return None;
    }
    lines.sort(SortVariant::PhpNatural);
    Some((lines.joined(), location, signature.to_owned()))
}

/// The same from the tape, if it reads the body.
fn taped(body: &[u8]) -> Option<(String, SignatureLocation, String)> {
    let tape = read_callback(body)?;
    Some((
        tape.string_to_sign(),
        tape.location,
        tape.signature.clone().into_owned(),
    ))
}

/// The tape agrees with the general path, or declines.
fn agrees(body: &[u8]) -> Result<(), TestCaseError> {
    if let Some(fast) = taped(body) {
        prop_assert_eq!(
            Some(fast),
            general(body),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    Ok(())
}

#[test]
fn reads_plain_callbacks_in_sorted_order() {
    let body = br#" {"z":1,"general":{"signature":"x","b":-0,"a":{"y":"3\u00e9\/","x-":4.50,"x":{"q":5e2}}},"a-b":[],"a":{"b":true,"c":null,"d":false,"e":{}},"":{"":""}} "#;
    let (string, location, signature) = taped(body).unwrap();
    assert_eq!(location, SignatureLocation::General);
    assert_eq!(signature, "x");
    assert_eq!(
        string,
        "::;a:b:1;a:c:;a:d:0;general:a:x-:4.5;general:a:x:q:500;general:a:y:3é/;general:b:0;z:1"
    );
    agrees(body).unwrap();
    let root = br#"{"signature":"c2ln\/","b":{"d":1,"c":2},"a":"x"}"#;
    let (string, location, signature) = taped(root).unwrap();
    assert_eq!(
        (string.as_str(), location, signature.as_str()),
        ("a:x;b:c:2;b:d:1", SignatureLocation::Root, "c2ln/")
    );
    // The longest path read, and one byte more.
    let long = |len: usize| {
        format!(
            "{{\"signature\":\"x\",\"{}\":{{\"{}\":1}}}}",
            "k".repeat(MAX_PATH / 2),
            "k".repeat(len - MAX_PATH / 2 - 1)
        )
    };
    assert!(taped(long(MAX_PATH).as_bytes()).is_some());
    agrees(long(MAX_PATH).as_bytes()).unwrap();
    assert!(taped(long(MAX_PATH + 1).as_bytes()).is_none());
}

#[test]
fn key_words_and_repeats_agree_with_the_keys() {
    let keys = [
        "",
        "a",
        "ab",
        "abc",
        "abcdefg",
        "abcdefgh",
        "abcdefghi",
        "abcdefgh_",
        "abcdefgi",
        "é",
        "aé",
        "b",
        "a-",
        "a_",
    ];
    for key in keys {
        for container in [false, true] {
            // The key at the start of a body, and near its end (no eight bytes to read).
            for body in [format!("\"{key}\":{{}}xxxxxxxxxxxx"), format!("\"{key}\"")] {
                let word = key_word(body.as_bytes(), 1, key.as_bytes(), container);
                assert_eq!(word, sibling_word(key.as_bytes(), container), "{key:?}");
            }
        }
    }
    let body: String = keys.iter().map(|k| format!("\"{k}\":1,")).collect();
    let mut start = 1;
    for (i, key) in keys.iter().enumerate() {
        let member = Member {
            word: sibling_word(key.as_bytes(), i % 2 == 0),
            key_start: u32::try_from(start).unwrap(),
            key_end: u32::try_from(start + key.len()).unwrap(),
            start: 0,
            end: 0,
            leaf: if i % 2 == 0 { Leaf::Object } else { Leaf::Null },
        };
        assert_eq!(member.key(body.as_bytes()), key.as_bytes());
        for other in keys {
            for container in [false, true] {
                let word = sibling_word(other.as_bytes(), container);
                assert_eq!(
                    same_key(&member, word, other.as_bytes(), body.as_bytes()),
                    *key == other,
                    "{key:?} {other:?}"
                );
            }
        }
        start += key.len() + 5;
    }
}

#[test]
fn declines_what_is_not_plain_or_not_usual() {
    for declined in [
        &br#"{"a":1}"#[..],
        br#"{"a":1,"signature":2}"#,
        br#"{"a":1,"signature":"x","a":2}"#,
        br#"{"a":1,"signature":"x","signature":"x"}"#,
        br#"{"general":{"signature":"x","signature":"x"}}"#,
        br#"{"\u0061":1,"signature":"x"}"#,
        br#"{"frame_mode":1,"signature":"x"}"#,
        br#"{"a":{"signature":"y"},"signature":"x"}"#,
        br#"{"general":{"signature":"y"},"signature":"x"}"#,
        br#"{"a":"x;y","signature":"x"}"#,
        br#"{"a":"x\u003by","signature":"x"}"#,
        br#"{"a;":1,"signature":"x"}"#,
        br#"{"a1":1,"signature":"x"}"#,
        br#"{"a b":1,"signature":"x"}"#,
        br#"{"a:b":1,"signature":"x"}"#,
        br#"{"a":[1],"signature":"x"}"#,
        br#"{"a":[[]],"signature":"x"}"#,
        br#"{"a":1,"signature":"x"} x"#,
        br#"{"a":1e400,"signature":"x"}"#,
        br#"{"a":[1,],"signature":"x"}"#,
        br#"[{"signature":"x"}]"#,
        b"{\"a\":\"\xff\",\"signature\":\"x\"}",
    ] {
        assert!(
            read_callback(declined).is_none(),
            "{}",
            String::from_utf8_lossy(declined)
        );
    }
    // Empty keys: the deepest path (`:` between them) still fits in `MAX_PATH`.
    let deep = |n: usize| {
        format!(
            "{{\"signature\":\"x\",\"\":{}1{}}}",
            "{\"\":".repeat(n),
            "}".repeat(n)
        )
    };
    assert!(read_callback(deep(MAX_DEPTH - 1).as_bytes()).is_some());
    agrees(deep(MAX_DEPTH - 1).as_bytes()).unwrap();
    assert!(read_callback(deep(MAX_DEPTH).as_bytes()).is_none());
}

#[test]
fn many_members_and_long_values() {
    let members: Vec<String> = (0..300)
        .rev()
        .map(|i| {
            format!(
                "\"{}\":{{\"v\":\"{}\"}}",
                "k".repeat(i % 40 + 1),
                "é".repeat(i)
            )
        })
        .collect();
    let body = format!(
        "{{\"signature\":\"x\",\"o{}\":{{{}}}}}",
        "",
        members.join(",")
    );
    // Keys repeat (k…k up to 40 times): declined; unique ones are read.
    assert!(read_callback(body.as_bytes()).is_none());
    let members: Vec<String> = (0..40)
        .rev()
        .map(|i| {
            format!(
                "\"{}\":{{\"v\":\"{}\"}}",
                "k".repeat(i + 1),
                "é".repeat(i * 20)
            )
        })
        .collect();
    let body = format!("{{\"signature\":\"x\",\"o\":{{{}}}}}", members.join(","));
    assert!(read_callback(body.as_bytes()).is_some());
    agrees(body.as_bytes()).unwrap();
}

/// Object keys: plain ones that are prefixes of each other around `:` in byte order, and
/// what makes the tape decline (digits, whitespace, `:`, escapes, non-ASCII, repeats).
fn key() -> impl Strategy<Value = &'static str> + Clone {
    prop_oneof![
        60 => prop::sample::select(vec![
            "\"a\"", "\"b\"", "\"a-\"", "\"a_\"", "\"-\"", "\"a.b\"", "\"ab\"", "\"\"",
            "\"general\"", "\"é\"", "\"ü\"", "\"abcdefgh\"", "\"abcdefghi\"", "\"abcdefg-\"",
            "\"c\"", "\"d\"", "\"b-\"", "\"b_\"", "\"ba\"", "\"abcdefgh_\"", "\"A\"", "\"~\"",
        ]),
        3 => prop::sample::select(vec![
            "\"a1\"", "\"a10\"", "\"a2\"", "\"x:y\"", "\"a b\"", "\"\\u0061\"", "\"0\"",
        ]),
        1 => prop::sample::select(vec!["\"signature\"", "\"frame_mode\""]),
    ]
}

/// Whitespace between tokens.
fn ws() -> impl Strategy<Value = &'static str> + Clone {
    prop::sample::select(vec!["", "", " ", "\n\t"])
}

/// A member with whitespace around its tokens.
fn member((key, ws, value): (&str, &str, String)) -> String {
    format!("{ws}{key}{ws}:{ws}{value}")
}

/// `{members}`.
#[allow(clippy::needless_pass_by_value)] // `prop_map` hands over an owned `Vec`
fn object(members: Vec<String>) -> String {
    format!("{{{}}}", members.join(","))
}

/// A JSON text: every kind of value, escapes, numbers of every shape, nested and empty
/// containers, mostly objects.
fn text() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        40 => prop::sample::select(vec![
            "null", "true", "false", "0", "-0", "-0.0", "12", "-7", "1.50", "1e3", "2E-2",
            "123456789012345678", "1234567890123456789", "123456789012345678901",
            "\"\"", "\"s\"", "\"\\u00e9\\/\\n\"", "\"\\\"\"", "\"c2ln\"", "\"a:b\"", "[]",
            "{}", "[ ]", "{ }",
        ]),
        1 => prop::sample::select(vec!["1e400", "\"s;t\"", "[1,]", "tru", "[1]", "[{}]"]),
    ]
    .prop_map(str::to_owned);
    leaf.prop_recursive(4, 40, 6, move |inner| {
        prop_oneof![
            1 => prop::collection::vec(inner.clone(), 0..3)
                .prop_map(|items| format!("[{}]", items.join(","))),
            8 => prop::collection::vec((key(), ws(), inner).prop_map(member), 0..5)
                .prop_map(object),
        ]
    })
}

/// The property test below is worth something only if the tape reads many of its
/// bodies, with lines.
#[test]
fn generated_bodies_are_often_read() {
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = prop::collection::vec((key(), ws(), text()).prop_map(member), 1..7);
    let mut read = 0;
    for _ in 0..1000 {
        let mut members = strategy.new_tree(&mut runner).unwrap().current();
        members.push("\"signature\":\"c2ln\"".to_owned());
        if taped(object(members).as_bytes()).is_some_and(|(s, _, _)| !s.is_empty()) {
            read += 1;
        }
    }
    assert!(read > 150, "{read}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 4096, ..ProptestConfig::default() })]

    /// Whatever the tape writes is the general path's string to sign.
    #[test]
    fn tape_agrees_with_the_general_path(
        members in prop::collection::vec((key(), ws(), text()).prop_map(member), 0..7),
        signature in prop::sample::select(vec![
            "\"signature\":\"c2ln\"",
            "\"signature\":\"c2\\u006cn\"",
            "\"general\":{\"signature\":\"c2ln\"}",
            "\"general\":{\"b\":1, \"signature\":\"c2ln\", \"a\":{}}",
            "\"general\":\"c2ln\"",
        ]),
        at in any::<prop::sample::Index>(),
    ) {
        let mut members = members;
        let at = at.index(members.len() + 1);
        members.insert(at, signature.to_owned());
        agrees(object(members).as_bytes())?;
    }
}
