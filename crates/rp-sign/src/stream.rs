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
//!   the last value at the first position);
//! - a member named `frame_mode` (skipped with its subtree by the general path);
//! - no signature, a signature that is not a string, both a root `signature` and a
//!   `general.signature`, or a `signature` member anywhere else (an error in the general
//!   path);
//! - a key or string value holding `;` (refused as ambiguous by the general path).
//!
//! What it answers otherwise is what the general path would flatten, with the signature
//! member left out the same way: the unit tests below and `tests/it/props.rs` compare them.
//!
//! When every path is plain (no key with a digit, whitespace or `:`, no non-empty array, as
//! in Gate callbacks), the members of each object are sorted when it closes, by
//! [`sibling_order`]: the lines come out sorted, with no sort of all the lines.

use std::borrow::Cow;
use std::cell::Cell;

use crate::canonical::{
    FRAME_MODE, Flattener, GENERAL, Lines, Num, SIGNATURE, sibling_order, sibling_word,
};
use crate::error::SignatureLocation;
use crate::raw::{MAX_DEPTH, Parser};

/// A member of an object still open: where its key is in the body, whether its value is a
/// container, and its lines.
///
/// Offsets are `u32` to keep blocks small (they are sorted): a body or line count that does
/// not fit takes the general path.
#[derive(Debug, Clone, Copy)]
struct Block {
    /// [`sibling_word`] of the key.
    word: u64,
    key_start: u32,
    key_end: u32,
    /// Its lines are `first_line..end_line` (`end_line` set when the object closes).
    first_line: u32,
    end_line: u32,
    container: bool,
}

impl Block {
    /// The key's bytes in `body`.
    fn key<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        body.get(self.key_start as usize..self.key_end as usize)
            .unwrap_or_default()
    }
}

thread_local! {
    /// The block stack of the last read on this thread, kept for the next (as the line
    /// buffers are, see [`crate::canonical`]).
    static SPARE_BLOCKS: Cell<Vec<Block>> = const { Cell::new(Vec::new()) };
}

/// Blocks kept for reuse at most (a few KiB).
const KEPT_BLOCKS: usize = 256;

/// A callback read in one pass.
pub(crate) struct Streamed<'a> {
    /// Every line but the signature's, with no `;` and no other `signature` member in them:
    /// sorted in the canonical order if `sorted`, else in document order.
    pub(crate) lines: Lines,
    /// Whether `lines` are already in the canonical order.
    pub(crate) sorted: bool,
    /// Where the signature was.
    pub(crate) location: SignatureLocation,
    /// The signature member's (unescaped) text.
    pub(crate) signature: Cow<'a, str>,
}

/// Reads `body` in one pass, or `None` for anything unusual (see the module documentation).
pub(crate) fn read_callback(body: &[u8]) -> Option<Streamed<'_>> {
    let mut reader = Reader {
        parser: Parser::new(body).ok()?,
        body,
        flattener: Flattener::new(None),
        blocks: SPARE_BLOCKS.try_with(Cell::take).unwrap_or_default(),
        plain: true,
        root_signature: None,
        general_signature: None,
    };
    let read = reader.root();
    let mut blocks = std::mem::take(&mut reader.blocks);
    if blocks.capacity() <= KEPT_BLOCKS {
        blocks.clear();
        // Fails only while the thread is being torn down: then the blocks are just freed.
        let _ = SPARE_BLOCKS.try_with(|spare| spare.set(blocks));
    }
    read?;
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
        sorted: reader.plain,
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
    body: &'a [u8],
    flattener: Flattener<'n>,
    /// The members of the objects still open, innermost last.
    blocks: Vec<Block>,
    /// Whether every path so far is plain (see the module documentation).
    plain: bool,
    root_signature: Option<Cow<'a, str>>,
    general_signature: Option<Cow<'a, str>>,
}

impl<'a> Reader<'a, '_> {
    /// Reads the whole body: an object, and nothing after it but whitespace.
    fn root(&mut self) -> Option<()> {
        self.parser.skip_whitespace();
        if self.parser.peek() != Some(b'{') {
            return None;
        }
        self.object(0, Place::Root)?;
        self.parser.skip_whitespace();
        self.parser.at_end().then_some(())
    }

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
            b'"' => match self.parser.plain_string() {
                Some(text) => self.flattener.string_leaf(text),
                None => {
                    let text = self.parser.string().ok()?;
                    self.flattener.string_leaf(&text);
                }
            },
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
        let first_block = self.blocks.len();
        loop {
            if self.parser.peek() != Some(b'"') {
                return None;
            }
            let key_start = self.parser.position() + 1;
            // An escaped key (or a syntax error) takes the general path.
            let key = self.parser.plain_string()?;
            let key_end = key_start + key.len();
            self.parser.skip_whitespace();
            if !self.parser.eat(b':') {
                return None;
            }
            self.parser.skip_whitespace();
            let container = matches!(self.parser.peek(), Some(b'{' | b'['));
            self.remember(
                first_block,
                Block {
                    word: sibling_word(key.as_bytes(), container),
                    key_start: u32::try_from(key_start).ok()?,
                    key_end: u32::try_from(key_end).ok()?,
                    first_line: u32::try_from(self.flattener.line_count()).ok()?,
                    end_line: 0,
                    container,
                },
            )?;
            if key == SIGNATURE {
                self.signature(place)?;
            } else if key == FRAME_MODE {
                return None;
            } else {
                let mark = self.flattener.enter_key(key);
                self.plain &= mark.plain;
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
        if self.plain {
            self.sort_members(first_block);
        }
        self.blocks.truncate(first_block);
        Some(())
    }

    /// Puts the lines of the members `blocks[first_block..]` of the object just closed in
    /// [`sibling_order`] (nothing to do when they already are).
    fn sort_members(&mut self, first_block: usize) {
        // Fits: every block's `first_line` did, and no line has been added since.
        let end = u32::try_from(self.flattener.line_count()).unwrap_or(u32::MAX);
        let Some(members) = self.blocks.get_mut(first_block..) else {
            return;
        };
        let Some(from) = members.first().map(|b| b.first_line) else {
            return;
        };
        let mut next = end;
        for block in members.iter_mut().rev() {
            block.end_line = next;
            next = block.first_line;
        }
        let body = self.body;
        let order = |a: &Block, b: &Block| {
            a.word
                .cmp(&b.word)
                .then_with(|| sibling_order(a.key(body), a.container, b.key(body), b.container))
        };
        if members.is_sorted_by(|a, b| order(a, b).is_le()) {
            return;
        }
        members.sort_unstable_by(order);
        self.flattener.reorder(
            from as usize,
            members
                .iter()
                .map(|b| (b.first_line as usize, b.end_line as usize)),
        );
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
        // Array indices are digits: natural order is not byte order.
        self.plain = false;
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

    /// Adds a member to the object whose members start at `blocks[first_block]`; `None` if
    /// its key is already there.
    fn remember(&mut self, first_block: usize, member: Block) -> Option<()> {
        let new = member.key(self.body);
        let earlier = self.blocks.get(first_block..).unwrap_or_default();
        // Lengths first: most keys differ there, without calling `memcmp`. (Not the words:
        // they also say whether the value is a container.)
        if earlier.iter().any(|b| {
            b.key_end - b.key_start == member.key_end - member.key_start && b.key(self.body) == new
        }) {
            return None;
        }
        self.blocks.push(member);
        Some(())
    }

    /// Reads the value of a member named `signature` (not flattened), if it is the root
    /// signature or `general.signature` and a string.
    fn signature(&mut self, place: Place) -> Option<()> {
        if self.parser.peek() != Some(b'"') {
            return None;
        }
        let text = match self.parser.plain_string() {
            Some(text) => Cow::Borrowed(text),
            None => self.parser.string().ok()?,
        };
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

    /// The same from the one-pass reader (and, when it says its lines are sorted, they are
    /// in the canonical order as they come).
    fn streamed(body: &[u8]) -> Option<(Vec<String>, SignatureLocation, String)> {
        let Streamed {
            mut lines,
            sorted,
            location,
            signature,
        } = read_callback(body)?;
        if sorted {
            let mut canonical = lines.clone();
            canonical.sort(SortVariant::PhpNatural);
            assert_eq!(
                lines.joined(),
                canonical.joined(),
                "{}",
                String::from_utf8_lossy(body)
            );
        }
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
        let many: Vec<String> = (0..300)
            .rev()
            .map(|i| format!("\"k{i}\":{{\"v\":{i}}}"))
            .collect();
        let many = format!("{{\"signature\":\"x\",{}}}", many.join(","));
        agrees(many.as_bytes()).unwrap();
        assert_eq!(read_callback(many.as_bytes()).unwrap().lines.len(), 300);
    }

    #[test]
    fn plain_callbacks_come_out_sorted() {
        let body = br#"{"z":1,"general":{"signature":"x","b":2,"a":{"y":"3","x-":4,"x":{"q":5}}},"a-b":6,"a":{"b":7},"":{"":8}}"#;
        let streamed = read_callback(body).unwrap();
        assert!(streamed.sorted);
        assert_eq!(
            streamed.lines.joined(),
            "::8;a-b:6;a:b:7;general:a:x-:4;general:a:x:q:5;general:a:y:3;general:b:2;z:1"
        );
        agrees(body).unwrap();
        let body = br#"{"signature":"x","b":[{"d":1,"c":2}],"a1":{"z":1,"y":2}}"#;
        assert!(!read_callback(body).unwrap().sorted);
        agrees(body).unwrap();
    }

    /// Object keys, mostly what the fast path handles, sometimes what makes it decline.
    fn key() -> impl Strategy<Value = &'static str> + Clone {
        prop_oneof![
            30 => prop::sample::select(vec![
                "\"a\"", "\"b\"", "\"a-\"", "\"a_\"", "\"-\"", "\"a.b\"", "\"a1\"", "\"a10\"",
                "\"x:y\"", "\"a b\"", "\"\"", "\"general\"", "\"é\"",
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

    /// A plain object text (what Gate callbacks are): keys that are prefixes of each other on
    /// both sides of `:` in byte order, objects and scalars, no arrays.
    fn plain_object() -> impl Strategy<Value = String> {
        let key =
            prop::sample::select(vec!["\"a\"", "\"a-\"", "\"a_\"", "\"ab\"", "\"\"", "\"b\""]);
        let leaf = prop::sample::select(vec!["1", "-0", "\"s\"", "null", "{}", "true"])
            .prop_map(str::to_owned);
        leaf.prop_recursive(4, 32, 6, move |inner| {
            prop::collection::vec((key.clone(), inner), 0..6).prop_map(|members| {
                let members: Vec<String> =
                    members.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                object(members)
            })
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// Plain messages come out sorted, in the general path's order.
        #[test]
        fn plain_messages_agree_with_the_general_path(body in plain_object()) {
            let body = match body.strip_prefix('{') {
                Some("}") => "{\"signature\":\"c2ln\"}".to_owned(),
                Some(rest) => format!("{{\"signature\":\"c2ln\",{rest}"),
                None => format!("{{\"signature\":\"c2ln\",\"v\":{body}}}"),
            };
            agrees(body.as_bytes())?;
        }

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
