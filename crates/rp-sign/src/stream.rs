//! The fast path of [`crate::Signer::verify_callback`]: the lines of a callback flattened
//! while its bytes are read, in one pass, without building a tree.
//!
//! The general path reads the body into a [`crate::raw::Document`], looks for the
//! signature, then walks the tree into [`Lines`]. That tree (and the walk over it) cost more
//! than half of the work besides the HMAC. Here the same token methods of
//! [`crate::raw::Parser`] (so exactly the same grammar, depth limit, UTF-8 and number checks)
//! feed the same [`Flattener`] as they go.
//!
//! It handles only the usual message, and answers `None` for anything else, so that the
//! caller falls back to the general path, which also gives the precise error:
//!
//! - a syntax error of any kind;
//! - a key written with an escape, or a key repeated in one object (the general path keeps
//!   the last value at the first position), or an object with more keys open at once than
//!   [`OPEN_KEYS`];
//! - a member named `frame_mode` (skipped with its subtree by the general path);
//! - no signature, a signature that is not a string, both a root `signature` and a
//!   `general.signature`, or a `signature` member anywhere else (an error in the general
//!   path);
//! - a key or string value holding `;` (refused as ambiguous by the general path).
//!
//! What it answers otherwise is what the general path would flatten, with the signature
//! member left out the same way: the unit tests below and `tests/it/props.rs` compare them.

use std::borrow::Cow;

use crate::canonical::{Flattener, GENERAL, Lines, Num, SIGNATURE};
use crate::error::SignatureLocation;
use crate::raw::{MAX_DEPTH, Parser};

/// The member skipped by the general path: not handled here.
const FRAME_MODE: &str = "frame_mode";

/// How many keys of the open objects are remembered to find a repeated key; a message with
/// more (far more than any Gate message) takes the general path.
const OPEN_KEYS: usize = 64;

/// A callback read in one pass.
pub(crate) struct Streamed<'a> {
    /// Every line but the signature's, in document order, with no `;` and no other
    /// `signature` member in them.
    pub(crate) lines: Lines,
    /// Where the signature was.
    pub(crate) location: SignatureLocation,
    /// The signature member's (unescaped) text.
    pub(crate) signature: Cow<'a, str>,
}

/// Reads `body` in one pass, or `None` for anything unusual (see the module documentation).
pub(crate) fn read_callback(body: &[u8]) -> Option<Streamed<'_>> {
    let mut reader = Reader {
        parser: Parser::new(body).ok()?,
        flattener: Flattener::new(None),
        keys: [""; OPEN_KEYS],
        open_keys: 0,
        root_signature: None,
        general_signature: None,
    };
    reader.parser.skip_whitespace();
    if reader.parser.peek() != Some(b'{') {
        return None;
    }
    reader.object(0, Place::Root)?;
    reader.parser.skip_whitespace();
    if !reader.parser.at_end() {
        return None;
    }
    let (location, signature) = match (reader.root_signature, reader.general_signature) {
        (Some(signature), None) => (SignatureLocation::Root, signature),
        (None, Some(signature)) => (SignatureLocation::General, signature),
        _ => return None,
    };
    let lines = reader.flattener.finish();
    if lines.ambiguity().is_some() || lines.extra_signature().is_some() {
        return None;
    }
    Some(Streamed {
        lines,
        location,
        signature,
    })
}

/// Where an object is, for the signature members it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The root object: its `signature` is the root signature.
    Root,
    /// The root's `general` member: its `signature` is `general.signature`.
    General,
    /// Anywhere else: a `signature` here is not handled.
    Other,
}

struct Reader<'a, 'n> {
    parser: Parser<'a>,
    flattener: Flattener<'n>,
    /// The keys of the objects still open, innermost last: `keys[..open_keys]`.
    keys: [&'a str; OPEN_KEYS],
    open_keys: usize,
    root_signature: Option<Cow<'a, str>>,
    general_signature: Option<Cow<'a, str>>,
}

impl<'a> Reader<'a, '_> {
    /// Reads a value, and flattens it under the current path; `depth` is the number of
    /// containers it is inside (as in [`Parser`]).
    fn value(&mut self, depth: usize, place: Place) -> Option<()> {
        match self.parser.peek()? {
            b'{' => {
                self.flattener.descend();
                self.object(depth, place)?;
                self.flattener.ascend();
            }
            b'[' => {
                self.flattener.descend();
                self.array(depth)?;
                self.flattener.ascend();
            }
            b'"' => {
                let text = self.parser.string().ok()?;
                self.flattener.string_leaf(&text);
            }
            b't' => {
                self.parser.literal(b"true").ok()?;
                self.flattener.leaf("1");
            }
            b'f' => {
                self.parser.literal(b"false").ok()?;
                self.flattener.leaf("0");
            }
            b'n' => {
                self.parser.literal(b"null").ok()?;
                self.flattener.leaf("");
            }
            b'-' | b'0'..=b'9' => {
                let text = self.parser.number().ok()?;
                self.flattener.number_leaf(Num::Text(text));
            }
            _ => return None,
        }
        Some(())
    }

    /// Reads an object at its `{`.
    fn object(&mut self, depth: usize, place: Place) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.parser.eat(b'{');
        self.parser.skip_whitespace();
        if self.parser.eat(b'}') {
            return Some(());
        }
        let first_key = self.open_keys;
        loop {
            if self.parser.peek() != Some(b'"') {
                return None;
            }
            let Cow::Borrowed(key) = self.parser.string().ok()? else {
                return None; // an escaped key
            };
            self.remember(first_key, key)?;
            self.parser.skip_whitespace();
            if !self.parser.eat(b':') {
                return None;
            }
            self.parser.skip_whitespace();
            if key == SIGNATURE {
                self.signature(place)?;
            } else if key == FRAME_MODE {
                return None;
            } else {
                let mark = self.flattener.enter_key(key);
                let inner = if place == Place::Root && key == GENERAL {
                    Place::General
                } else {
                    Place::Other
                };
                self.value(depth + 1, inner)?;
                self.flattener.leave(mark);
            }
            if !self.parser.separator(b'}').ok()? {
                break;
            }
        }
        self.parser.eat(b'}');
        self.open_keys = first_key;
        Some(())
    }

    /// Reads an array at its `[`.
    fn array(&mut self, depth: usize) -> Option<()> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.parser.eat(b'[');
        self.parser.skip_whitespace();
        if self.parser.eat(b']') {
            return Some(());
        }
        let mut index = 0;
        loop {
            let mark = self.flattener.enter_index(index);
            self.value(depth + 1, Place::Other)?;
            self.flattener.leave(mark);
            index += 1;
            if !self.parser.separator(b']').ok()? {
                break;
            }
        }
        self.parser.eat(b']');
        Some(())
    }

    /// Adds `key` to the keys of the object whose keys start at `keys[first_key]`; `None` if
    /// it is already there (or there is no room left).
    fn remember(&mut self, first_key: usize, key: &'a str) -> Option<()> {
        let earlier = self.keys.get(first_key..self.open_keys)?;
        if earlier.contains(&key) {
            return None;
        }
        *self.keys.get_mut(self.open_keys)? = key;
        self.open_keys += 1;
        Some(())
    }

    /// Reads the value of a member named `signature` (not flattened), if it is the root
    /// signature or `general.signature` and a string.
    fn signature(&mut self, place: Place) -> Option<()> {
        if self.parser.peek() != Some(b'"') {
            return None;
        }
        let text = self.parser.string().ok()?;
        match place {
            Place::Root => self.root_signature = Some(text),
            Place::General => self.general_signature = Some(text),
            Place::Other => return None,
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{SortVariant, Strip};
    use crate::raw::{Document, RawRef};
    use crate::signer::find_signature;
    use proptest::prelude::*;

    /// What the general path flattens for `body`: the lines in each order, where the
    /// signature is, and whether the message is refused as ambiguous or for an extra
    /// signature; `None` if it has no signature or is not a JSON object.
    fn general(body: &[u8]) -> Option<(Vec<String>, SignatureLocation, String)> {
        let document = Document::parse(body).ok()?;
        let crate::canonical::View::Object(members) =
            crate::canonical::JsonTree::view(document.root())
        else {
            return None;
        };
        let (location, member) = find_signature::<RawRef<'_>>(members.clone())?;
        let crate::canonical::View::String(signature) = crate::canonical::JsonTree::view(member)
        else {
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
        let mut orders = Vec::new();
        for variant in SortVariant::ALL {
            lines.sort(variant);
            orders.push(lines.joined());
        }
        Some((orders, location, signature.to_owned()))
    }

    /// The same from the one-pass reader.
    fn streamed(body: &[u8]) -> Option<(Vec<String>, SignatureLocation, String)> {
        let Streamed {
            mut lines,
            location,
            signature,
        } = read_callback(body)?;
        let mut orders = Vec::new();
        for variant in SortVariant::ALL {
            lines.sort(variant);
            orders.push(lines.joined());
        }
        Some((orders, location, signature.into_owned()))
    }

    /// The one-pass reader agrees with the general path, or declines.
    fn agrees(body: &[u8]) -> Result<(), TestCaseError> {
        if let Some(fast) = streamed(body) {
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
    fn reads_the_usual_callback_and_declines_the_unusual() {
        let usual = br#" {"project_id":1234,"payment":{"id":"p\u0041","sum":{"amount":-0,"currency":"KZT"},"n":[1.5,true,false,null,"",[],{}]},"signature":"c2ln\/"} "#;
        let (orders, location, signature) = streamed(usual).unwrap();
        assert_eq!(location, SignatureLocation::Root);
        assert_eq!(signature, "c2ln/");
        assert_eq!(
            orders[0],
            "payment:id:pA;payment:n:0:1.5;payment:n:1:1;payment:n:2:0;payment:n:3:;payment:n:4:;payment:sum:amount:0;payment:sum:currency:KZT;project_id:1234"
        );
        agrees(usual).unwrap();
        let general = br#"{"general":{"project_id":1,"signature":"x"},"a":"b"}"#;
        assert_eq!(streamed(general).unwrap().1, SignatureLocation::General);
        agrees(general).unwrap();
        for declined in [
            &br#"{"a":1}"#[..],
            br#"{"a":1,"signature":2}"#,
            br#"{"a":1,"signature":"x","a":2}"#,
            br#"{"\u0061":1,"signature":"x"}"#,
            br#"{"frame_mode":1,"signature":"x"}"#,
            br#"{"a":{"signature":"y"},"signature":"x"}"#,
            br#"{"general":{"signature":"y"},"signature":"x"}"#,
            br#"{"a":"x;y","signature":"x"}"#,
            br#"{"a;":1,"signature":"x"}"#,
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
        let deep = format!(
            "{{\"signature\":\"x\",\"a\":{}1{}}}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(read_callback(deep.as_bytes()).is_some());
        agrees(deep.as_bytes()).unwrap();
        let too_deep = format!(
            "{{\"signature\":\"x\",\"a\":{}1{}}}",
            "[".repeat(MAX_DEPTH),
            "]".repeat(MAX_DEPTH)
        );
        assert!(read_callback(too_deep.as_bytes()).is_none());
        let many: Vec<String> = (0..OPEN_KEYS + 1)
            .map(|i| format!("\"k{i}\":{i}"))
            .collect();
        let many = format!("{{\"signature\":\"x\",{}}}", many.join(","));
        assert!(read_callback(many.as_bytes()).is_none());
    }

    /// Object keys, mostly what the fast path handles, sometimes what makes it decline.
    fn key() -> impl Strategy<Value = &'static str> + Clone {
        prop_oneof![
            30 => prop::sample::select(vec![
                "\"a\"", "\"b\"", "\"a1\"", "\"a10\"", "\"x:y\"", "\"a b\"", "\"\"", "\"general\"",
                "\"é\"",
            ]),
            1 => prop::sample::select(vec!["\"\\u0061\"", "\"signature\"", "\"frame_mode\""]),
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

    /// A JSON text from the pieces that matter here: keys that repeat, escapes, `signature`
    /// and `general` at every depth, whitespace, every kind of value.
    fn text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            40 => prop::sample::select(vec![
                "null", "true", "false", "0", "-0", "-0.0", "12", "1.50", "1e3",
                "123456789012345678901", "\"\"", "\"s\"", "\"\\u00e9\\/\"", "\"c2ln\"", "[]", "{}",
            ]),
            1 => prop::sample::select(vec!["1e400", "\"s;t\"", "[1,]", "tru"]),
        ]
        .prop_map(str::to_owned);
        leaf.prop_recursive(4, 32, 5, move |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec((key(), ws(), inner).prop_map(member), 0..5).prop_map(object),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// Whatever the one-pass reader answers is what the general path flattens.
        #[test]
        fn one_pass_agrees_with_the_general_path(
            members in prop::collection::vec((key(), ws(), text()).prop_map(member), 0..6),
            signature in prop::sample::select(vec![
                "\"signature\":\"c2ln\"",
                "\"general\":{\"signature\":\"c2ln\"}",
                "\"general\":{\"a\":1, \"signature\":\"c2ln\", \"b\":[2]}",
                "\"general\":\"c2ln\"",
            ]),
            at in any::<prop::sample::Index>(),
            root in prop::bool::weighted(0.9),
        ) {
            let mut members = members;
            let at = at.index(members.len() + 1);
            members.insert(at, signature.to_owned());
            let mut body = object(members);
            if !root {
                // Any value at the root.
                body = format!("[{body}]");
            }
            agrees(body.as_bytes())?;
        }
    }
}
