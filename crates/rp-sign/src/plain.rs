//! The fast path of signing a `serde_json::Value`: the string to sign written directly in
//! its sorted order, for payloads whose keys are all plain, straight into the HMAC through a
//! small stack buffer ([`crate::sink`]): no string, no line records, no thread-local buffers.
//!
//! The general path ([`crate::canonical::Lines`]) writes one line per leaf in document order,
//! then sorts the lines by path. When no key holds a `:`, an ASCII digit or whitespace and
//! there is no non-empty array, every path is plain (natural order is byte order, see
//! [`crate::canonical`]) and the lines of two members of one object never interleave in
//! that order: all lines of member `a` start with `P:a` followed by the end of the path (a
//! scalar) or by `:` (a container), and likewise for `b`, so any line of `a` compares with
//! any line of `b` at the first byte where `a` and `b` differ, or, if `a` is a prefix of
//! `b`, at the byte after `a`: the end or `:` on `a`'s side, a byte of `b` (never `:`) on the
//! other. So sorting the members of each object by that rule ([`member_order`]) and walking
//! the tree gives exactly the sorted lines, with no line records and no global sort.
//!
//! Anything else (a key with `:`, a digit, whitespace or `;`, a string value with `;`, a
//! non-empty array, an object with more than [`MAX_MEMBERS`] members, a path longer than
//! [`MAX_PATH`] bytes) answers `None`, and the caller takes the general path.
//! `tests/it/props.rs` and the unit tests below check that both give the same string.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::canonical::{FRAME_MODE, Num, has_separator, key_is_plain, push_number, sibling_order};
use crate::sink::{SLACK, Sink, copy, u64_digits};

/// Objects with more members than this take the general path (their members are sorted on
/// the stack).
const MAX_MEMBERS: usize = 32;

/// Objects with at most this many members are sorted in a smaller array (cheaper to fill).
const FEW_MEMBERS: usize = 8;

/// Paths longer than this (in bytes) take the general path (the path is kept on the stack).
const MAX_PATH: usize = 126;

// A line's prefix is copied out of the path buffer as one move of `SLACK` bytes.
const _: () = assert!(MAX_PATH + 2 >= SLACK);

/// A stand-in to fill the member array before it is used.
static NULL: Value = Value::Null;

/// Writes the string to sign of the root object `map` to `flush`, in pieces, if it is plain
/// (see the module documentation); `None` otherwise, possibly after some pieces were
/// written (the caller then starts again on the general path).
pub(crate) fn write_string_to_sign(
    map: &Map<String, Value>,
    flush: impl FnMut(&[u8]),
) -> Option<()> {
    let mut writer = Writer {
        out: Sink::new(flush),
        path: [b';'; MAX_PATH + 2],
        first: true,
    };
    writer.object(map, 1)?;
    writer.out.finish();
    Some(())
}

/// The string to sign of `map` by [`write_string_to_sign`], whole (for tests).
#[cfg(test)]
pub(crate) fn string_to_sign(map: &Map<String, Value>) -> Option<String> {
    let mut text = Vec::new();
    write_string_to_sign(map, |piece| text.extend_from_slice(piece))?;
    String::from_utf8(text).ok()
}

/// A member of an object: its key and value.
type Member<'v> = (&'v str, &'v Value);

/// Whether `value` is a container.
fn is_container(value: &Value) -> bool {
    matches!(value, Value::Object(_) | Value::Array(_))
}

/// The order of two members of one object (see [`sibling_order`]; few members, and
/// comparing them directly measured faster than precomputing a [`crate::canonical::sibling_word`]).
fn member_order(a: &Member<'_>, b: &Member<'_>) -> Ordering {
    sibling_order(
        a.0.as_bytes(),
        is_container(a.1),
        b.0.as_bytes(),
        is_container(b.1),
    )
}

struct Writer<F: FnMut(&[u8])> {
    /// Where the lines go, joined with `;`.
    out: Sink<F>,
    /// `;`, and the path of the current object and `:` below the root (its end is passed
    /// along). Small enough to be set up without a call to `memset`, and at least [`SLACK`]
    /// bytes, so that a line's prefix is copied from it as one move ([`Sink::write_from`]).
    path: [u8; MAX_PATH + 2],
    /// Whether no line has been written yet.
    first: bool,
}

impl<F: FnMut(&[u8])> Writer<F> {
    /// Writes the lines of an object's members in order; they start with
    /// `path[..prefix_end]`.
    fn object(&mut self, map: &Map<String, Value>, prefix_end: usize) -> Option<()> {
        let len = map.len();
        if len <= FEW_MEMBERS {
            self.members::<FEW_MEMBERS>(map, prefix_end)
        } else if len <= MAX_MEMBERS {
            self.members::<MAX_MEMBERS>(map, prefix_end)
        } else {
            None
        }
    }

    /// [`Writer::object`] for at most `N` members.
    fn members<const N: usize>(
        &mut self,
        map: &Map<String, Value>,
        prefix_end: usize,
    ) -> Option<()> {
        let mut members: [Member<'_>; N] = [("", &NULL); N];
        let mut len = 0;
        for (key, value) in map {
            if key == FRAME_MODE {
                continue;
            }
            if !key_is_plain(key) {
                return None;
            }
            *members.get_mut(len)? = (key.as_str(), value);
            len += 1;
        }
        let members = members.get_mut(..len)?;
        members.sort_unstable_by(member_order);
        for &(key, value) in &*members {
            // A path longer than `MAX_PATH` (after the `;` at 0) is declined.
            let key_end = prefix_end + key.len();
            if key_end > MAX_PATH + 1 {
                return None;
            }
            self.value(value, prefix_end, key)?;
        }
        Some(())
    }

    /// Writes the lines of the value of the member `key` of an object whose lines start
    /// with `path[..prefix_end]`.
    ///
    /// A line is written in pieces from where they already are: the prefix, the key and
    /// the value. (Copying the key into [`Writer::path`] and then the whole path out of it
    /// read bytes just stored, which stalled on every line.)
    #[inline(always)]
    fn value(&mut self, value: &Value, prefix_end: usize, key: &str) -> Option<()> {
        match value {
            Value::Object(map) => {
                let key_end = prefix_end + key.len();
                copy(self.path.get_mut(prefix_end..key_end)?, key.as_bytes());
                *self.path.get_mut(key_end)? = b':';
                self.object(map, key_end + 1)?;
            }
            Value::Array(items) if items.is_empty() => {}
            Value::Array(_) => return None,
            Value::String(s) if has_separator(s) => return None,
            Value::String(s) => {
                self.line(prefix_end, key);
                self.out.write(s.as_bytes());
            }
            Value::Bool(true) => {
                self.line(prefix_end, key);
                self.out.byte(b'1');
            }
            Value::Bool(false) => {
                self.line(prefix_end, key);
                self.out.byte(b'0');
            }
            Value::Null => self.line(prefix_end, key),
            Value::Number(n) => {
                self.line(prefix_end, key);
                let mut digits = [0; 20];
                if let Some(i) = n.as_i64() {
                    if i < 0 {
                        self.out.byte(b'-');
                    }
                    self.out.write(u64_digits(i.unsigned_abs(), &mut digits));
                } else {
                    let mut text = String::new();
                    push_number(&mut text, Num::Parsed(n));
                    self.out.write(text.as_bytes());
                }
            }
        }
        Some(())
    }

    /// Starts a line: `path[..prefix_end]` (without its `;` before the first line), `key`
    /// and `:`.
    #[inline(always)]
    fn line(&mut self, prefix_end: usize, key: &str) {
        let from = usize::from(self.first);
        self.first = false;
        self.out
            .write_from(&self.path, from, prefix_end.saturating_sub(from));
        self.out.write(key.as_bytes());
        self.out.byte(b':');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::canonical::{Lines, SortVariant, Strip, value_members};
    use proptest::prelude::*;
    use serde_json::json;

    /// The string to sign by the general path.
    fn general(map: &Map<String, Value>) -> String {
        let mut lines = Lines::flatten(value_members(map), Strip::Nothing);
        lines.sort(SortVariant::PhpNatural);
        lines.joined()
    }

    fn fast(value: &Value) -> Option<String> {
        string_to_sign(value.as_object()?)
    }

    #[test]
    fn prefixes_order_by_what_follows_them() {
        // `a-b:x` < `a:x` < `a_b:x` ('-' < ':' < '_'), while the scalar `c` < `c-d`.
        let value = json!({"a_b": {"x": 1}, "a": {"x": 2}, "a-b": {"x": 3}, "c-d": 4, "c": 5,
                           "": {"e": true}, "f": [], "g": {}, "frame_mode": "x", "h": null});
        let fast = fast(&value).unwrap();
        assert_eq!(fast, ":e:1;a-b:x:3;a:x:2;a_b:x:1;c:5;c-d:4;h:");
        assert_eq!(fast, general(value.as_object().unwrap()));
    }

    #[test]
    fn long_paths_and_values_cross_the_buffer_whole() {
        // Values and paths around and past the sink's 512 bytes, after lines of every length.
        for len in [0, 1, 100, 255, 300, 511, 512, 513, 1500] {
            let value = json!({
                "k".repeat(MAX_PATH - 1): "v".repeat(len),
                "a": {"b": "x".repeat(len), "c": -12, "d": u64::MAX, "e": 1.5, "f": -0.0},
                "z": "é".repeat(len / 2),
            });
            let fast = fast(&value).unwrap();
            assert_eq!(fast, general(value.as_object().unwrap()), "{len}");
        }
    }

    #[test]
    fn declines_what_is_not_plain() {
        for value in [
            json!({"a1": 1}),
            json!({"a b": 1}),
            json!({"a:b": 1}),
            json!({"a;b": 1}),
            json!({"a": "x;y"}),
            json!({"a": [1]}),
            json!({"a": {"b": [{}]}}),
            json!({"k".repeat(MAX_PATH + 1): 1}),
            json!({"k".repeat(MAX_PATH / 2): {"k".repeat(MAX_PATH / 2): 1}}),
            Value::Object(
                (0..=MAX_MEMBERS)
                    .map(|i| ("k".repeat(i + 1), json!(i)))
                    .collect(),
            ),
        ] {
            assert_eq!(fast(&value), None, "{value}");
        }
    }

    /// Keys that are mostly plain and often prefixes of each other, around `:` in byte order.
    fn key() -> impl Strategy<Value = String> {
        prop_oneof![
            20 => "[a-c_.\\-/]{0,3}",
            1 => prop::sample::select(vec!["frame_mode", "é", "a1", "a b", "x:y", "", "Z"]).prop_map(str::to_owned),
        ]
    }

    fn value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(Value::from),
            "\\PC{0,6}".prop_map(Value::String),
            Just(json!([])),
            Just(json!({})),
        ];
        leaf.prop_recursive(4, 40, 6, |inner| {
            prop_oneof![
                8 => prop::collection::vec((key(), inner.clone()), 0..6)
                    .prop_map(|members| Value::Object(members.into_iter().collect())),
                1 => prop::collection::vec(inner, 0..3).prop_map(Value::Array),
            ]
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

        /// Whatever the fast path writes is the general path's string to sign.
        #[test]
        fn plain_string_is_the_general_string(
            members in prop::collection::vec((key(), value()), 0..8),
        ) {
            let map: Map<String, Value> = members.into_iter().collect();
            if let Some(fast) = string_to_sign(&map) {
                prop_assert_eq!(fast, general(&map));
            }
        }
    }
}
