//! The fast path of signing a `serde_json::Value`: the string to sign written directly in
//! its sorted order, for payloads whose keys are all plain.
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
//! non-empty array, an object with more than [`MAX_MEMBERS`] members) answers `None`, and the
//! caller takes the general path. `tests/it/props.rs` and the unit tests below check that
//! both give the same string.

use std::cmp::Ordering;

use serde_json::{Map, Value};

use crate::canonical::{
    FRAME_MODE, Num, has_separator, key_is_plain, push_number, sibling_order, with_text_buffers,
};

/// Objects with more members than this take the general path (their members are sorted on
/// the stack).
const MAX_MEMBERS: usize = 32;

/// Objects with at most this many members are sorted in a smaller array (cheaper to fill).
const FEW_MEMBERS: usize = 8;

/// A stand-in to fill the member array before it is used.
static NULL: Value = Value::Null;

/// Runs `use_text` on the string to sign of the root object `map`, if it is plain (see the
/// module documentation); `None` otherwise.
pub(crate) fn with_string_to_sign<R>(
    map: &Map<String, Value>,
    use_text: impl FnOnce(&str) -> R,
) -> Option<R> {
    with_text_buffers(|out, path| {
        let mut writer = Writer { out, path };
        writer.object(map, 0)?;
        Some(use_text(writer.out))
    })
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

struct Writer<'b> {
    /// The lines so far, joined with `;`.
    out: &'b mut String,
    /// The path of the current node.
    path: &'b mut String,
}

impl Writer<'_> {
    /// Writes the lines of an object's members in order; `depth` is the number of
    /// containers below the root it is in (0 for the root).
    fn object(&mut self, map: &Map<String, Value>, depth: usize) -> Option<()> {
        let len = map.len();
        if len <= FEW_MEMBERS {
            self.members::<FEW_MEMBERS>(map, depth)
        } else if len <= MAX_MEMBERS {
            self.members::<MAX_MEMBERS>(map, depth)
        } else {
            None
        }
    }

    /// [`Writer::object`] for at most `N` members.
    fn members<const N: usize>(&mut self, map: &Map<String, Value>, depth: usize) -> Option<()> {
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
            let mark = self.path.len();
            if depth > 0 {
                self.path.push(':');
            }
            self.path.push_str(key);
            self.value(value, depth)?;
            self.path.truncate(mark);
        }
        Some(())
    }

    /// Writes the lines of the value at the current path.
    fn value(&mut self, value: &Value, depth: usize) -> Option<()> {
        match value {
            Value::Object(map) => self.object(map, depth + 1)?,
            Value::Array(items) if items.is_empty() => {}
            Value::Array(_) => return None,
            Value::String(s) if has_separator(s) => return None,
            Value::String(s) => self.line().push_str(s),
            Value::Bool(true) => self.line().push('1'),
            Value::Bool(false) => self.line().push('0'),
            Value::Null => {
                self.line();
            }
            Value::Number(n) => {
                push_number(self.line(), Num::Parsed(n));
            }
        }
        Some(())
    }

    /// Starts a line (`;` before all but the first, the path and `:`), for the value to be
    /// appended.
    fn line(&mut self) -> &mut String {
        if !self.out.is_empty() {
            self.out.push(';');
        }
        self.out.push_str(self.path);
        self.out.push(':');
        self.out
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
        with_string_to_sign(value.as_object()?, str::to_owned)
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
    fn declines_what_is_not_plain() {
        for value in [
            json!({"a1": 1}),
            json!({"a b": 1}),
            json!({"a:b": 1}),
            json!({"a;b": 1}),
            json!({"a": "x;y"}),
            json!({"a": [1]}),
            json!({"a": {"b": [{}]}}),
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
            if let Some(fast) = with_string_to_sign(&map, str::to_owned) {
                prop_assert_eq!(fast, general(&map));
            }
        }
    }
}
