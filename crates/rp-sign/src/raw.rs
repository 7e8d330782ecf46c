//! A borrowed JSON reader for verifying callbacks from their raw bytes.
//!
//! It reads exactly the JSON that `serde_json` (with this workspace's `preserve_order`
//! and `float_roundtrip` features) reads into a `Value`: RFC 8259 grammar, UTF-8, every
//! escape including surrogate pairs (a lone surrogate is an error), at most
//! [`MAX_DEPTH`] nested containers, nothing but whitespace after the value, and a number
//! whose value is out of `f64` range is an error. Duplicate keys: the last value wins, at
//! the position of the first (as `serde_json`'s `IndexMap` and PHP do).
//!
//! What it builds is cheaper than a `Value`: strings borrow from the input unless they hold
//! escapes, numbers keep their source text (so `-0` can be read the PHP way, see
//! [`crate::canonical`]), and all containers share two vectors.

use std::borrow::Cow;
use std::collections::HashMap;

use crate::canonical::{JsonTree, Num, View, impure_bytes};

/// The deepest nesting of arrays and objects accepted (`serde_json`'s default recursion
/// limit: it rejects the 128th nested container).
pub(crate) const MAX_DEPTH: usize = 127;

/// Objects with more members than this index their keys in a hash map to find duplicates
/// (fewer are scanned linearly, which is faster for the small objects of Gate messages).
const LINEAR_SCAN_LIMIT: usize = 24;

/// A JSON value read from bytes; containers point into [`Document::children`].
#[derive(Debug, Clone, PartialEq)]
enum Node<'a> {
    Null,
    Bool(bool),
    /// The number's source text, already checked against the grammar and the `f64` range.
    Number(&'a str),
    String(Cow<'a, str>),
    /// `children[start..start + len]`, keys empty.
    Array {
        start: usize,
        len: usize,
    },
    /// `children[start..start + len]`, keys unique, in order of first appearance.
    Object {
        start: usize,
        len: usize,
    },
}

/// An array element (empty key) or an object member.
#[derive(Debug, Clone, PartialEq)]
struct Child<'a> {
    key: Cow<'a, str>,
    value: Node<'a>,
}

/// A whole JSON text, borrowed from its bytes.
#[derive(Debug, Clone)]
pub(crate) struct Document<'a> {
    root: Node<'a>,
    /// The elements and members of every container, each container's contiguous.
    children: Vec<Child<'a>>,
}

/// A node of a [`Document`], as the canonicaliser walks it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRef<'s> {
    doc: &'s Document<'s>,
    node: &'s Node<'s>,
}

impl<'a> Document<'a> {
    /// Parses `body` (see the module documentation for what is accepted).
    pub(crate) fn parse(body: &'a [u8]) -> Result<Document<'a>, SyntaxError> {
        let mut parser = Parser::new(body)?;
        parser.pending.reserve(32);
        parser.children.reserve(64);
        parser.skip_whitespace();
        parser.value(Cow::Borrowed(""), 0)?;
        parser.skip_whitespace();
        if parser.pos < body.len() {
            return Err(parser.error("trailing characters"));
        }
        let root = parser.pending.pop().map_or(Node::Null, |child| child.value);
        Ok(Document {
            root,
            children: parser.children,
        })
    }

    /// The top-level value.
    pub(crate) fn root(&self) -> RawRef<'_> {
        RawRef {
            doc: self,
            node: &self.root,
        }
    }

    /// The elements or members of a container at `start..start + len`.
    fn children(&self, start: usize, len: usize) -> &[Child<'a>] {
        self.children
            .get(start..start.saturating_add(len))
            .unwrap_or_default()
    }
}

/// Why a body is not JSON, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SyntaxError {
    /// What was wrong.
    what: &'static str,
    /// The byte offset at which it was found.
    offset: usize,
}

impl SyntaxError {
    /// A message with the 1-based line and column, as `serde_json` writes them.
    pub(crate) fn describe(&self, body: &[u8]) -> String {
        let before = body.get(..self.offset).unwrap_or(body);
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = before.iter().rev().take_while(|&&b| b != b'\n').count();
        format!("{} at line {line} column {column}", self.what)
    }
}

/// The reader: a cursor over the text, and the tree being built by [`Document::parse`]. The
/// one-pass reader of [`crate::stream`] uses only the token methods (`pub(crate)`), which
/// check exactly the same grammar, and builds no tree.
pub(crate) struct Parser<'a> {
    text: &'a str,
    bytes: &'a [u8],
    pos: usize,
    /// Children of the containers still open, innermost last.
    pending: Vec<Child<'a>>,
    /// Children of the containers already closed.
    children: Vec<Child<'a>>,
}

impl<'a> Parser<'a> {
    /// A reader at the start of `body`, which must be UTF-8 (as for `serde_json`).
    pub(crate) fn new(body: &'a [u8]) -> Result<Parser<'a>, SyntaxError> {
        let text = std::str::from_utf8(body).map_err(|e| SyntaxError {
            what: "invalid UTF-8",
            offset: e.valid_up_to(),
        })?;
        Ok(Parser {
            text,
            bytes: body,
            pos: 0,
            pending: Vec::new(),
            children: Vec::new(),
        })
    }

    /// The whole text (UTF-8, checked by [`Parser::new`]).
    pub(crate) fn text(&self) -> &'a str {
        self.text
    }

    /// The offset of the next byte to read.
    #[inline(always)]
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// Whether the whole text has been read.
    #[inline(always)]
    pub(crate) fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Steps over `byte` if it is next; says whether it was.
    #[inline(always)]
    pub(crate) fn eat(&mut self, byte: u8) -> bool {
        let found = self.peek() == Some(byte);
        self.pos += usize::from(found);
        found
    }

    fn error(&self, what: &'static str) -> SyntaxError {
        SyntaxError {
            what,
            offset: self.pos.min(self.bytes.len()),
        }
    }

    #[inline(always)]
    pub(crate) fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    #[inline(always)]
    pub(crate) fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    /// Reads one value and pushes it, under `key`, to [`Parser::pending`]; `depth` is the
    /// number of containers it is inside. (Building values in place, rather than returning
    /// them, saves moving them around: measured faster.)
    fn value(&mut self, key: Cow<'a, str>, depth: usize) -> Result<(), SyntaxError> {
        let value = match self.peek() {
            Some(b'{') => return self.container(key, depth, b'}'),
            Some(b'[') => return self.container(key, depth, b']'),
            Some(b'"') => Node::String(self.string()?),
            Some(b't') => self.literal(b"true").map(|()| Node::Bool(true))?,
            Some(b'f') => self.literal(b"false").map(|()| Node::Bool(false))?,
            Some(b'n') => self.literal(b"null").map(|()| Node::Null)?,
            Some(b'-' | b'0'..=b'9') => Node::Number(self.number()?),
            Some(_) => return Err(self.error("expected a value")),
            None => return Err(self.error("EOF while parsing a value")),
        };
        self.pending.push(Child { key, value });
        Ok(())
    }

    /// Reads `word` (`true`, `false` or `null`).
    pub(crate) fn literal(&mut self, word: &[u8]) -> Result<(), SyntaxError> {
        let end = self.pos + word.len();
        if self.bytes.get(self.pos..end) == Some(word) {
            self.pos = end;
            Ok(())
        } else {
            Err(self.error("expected `true`, `false` or `null`"))
        }
    }

    /// Reads an array (`close` is `]`) or an object (`}`) at its opening bracket.
    fn container(&mut self, key: Cow<'a, str>, depth: usize, close: u8) -> Result<(), SyntaxError> {
        if depth >= MAX_DEPTH {
            return Err(
                self.error("recursion limit exceeded (more than 127 nested arrays or objects)")
            );
        }
        self.pos += 1;
        self.skip_whitespace();
        // The container's own slot, filled in when it is closed; its children follow it.
        let slot = self.pending.len();
        self.pending.push(Child {
            key,
            value: Node::Null,
        });
        let mark = slot + 1;
        // Positions (relative to `mark`) of the keys, once an object is too big to scan.
        let mut index: Option<HashMap<Cow<'a, str>, usize>> = None;
        if self.peek() != Some(close) {
            loop {
                if close == b']' {
                    self.value(Cow::Borrowed(""), depth + 1)?;
                } else {
                    if self.peek() != Some(b'"') {
                        return Err(self.error("expected a string key"));
                    }
                    let key = self.string()?;
                    self.skip_whitespace();
                    if self.peek() != Some(b':') {
                        return Err(self.error("expected `:`"));
                    }
                    self.pos += 1;
                    self.skip_whitespace();
                    self.value(key, depth + 1)?;
                    self.deduplicate(mark, &mut index);
                }
                if !self.separator(close)? {
                    break;
                }
            }
        }
        self.pos += 1;
        let start = self.children.len();
        self.children.extend(self.pending.drain(mark..));
        let len = self.children.len() - start;
        if let Some(child) = self.pending.get_mut(slot) {
            child.value = if close == b']' {
                Node::Array { start, len }
            } else {
                Node::Object { start, len }
            };
        }
        Ok(())
    }

    /// After an element or member: `Ok(true)` on `,`, `Ok(false)` on `close`.
    #[inline(always)]
    pub(crate) fn separator(&mut self, close: u8) -> Result<bool, SyntaxError> {
        self.skip_whitespace();
        match self.peek() {
            Some(b',') => {
                self.pos += 1;
                self.skip_whitespace();
                Ok(true)
            }
            Some(c) if c == close => Ok(false),
            Some(_) if close == b']' => Err(self.error("expected `,` or `]`")),
            Some(_) => Err(self.error("expected `,` or `}`")),
            None => Err(self.error("EOF while parsing a list or an object")),
        }
    }

    /// The member just pushed to an object whose members start at `pending[mark]`: if its
    /// key is a duplicate, its value replaces the earlier one in place (last wins, first
    /// position).
    fn deduplicate(&mut self, mark: usize, index: &mut Option<HashMap<Cow<'a, str>, usize>>) {
        let Some((last, earlier)) = self
            .pending
            .get_mut(mark..)
            .and_then(|members| members.split_last_mut())
        else {
            return;
        };
        let existing = match index {
            Some(map) => map.get(&last.key).copied(),
            None => earlier.iter().position(|m| m.key == last.key),
        };
        if let Some(slot) = existing.and_then(|i| earlier.get_mut(i)) {
            slot.value = std::mem::replace(&mut last.value, Node::Null);
            self.pending.pop();
            return;
        }
        let position = earlier.len();
        if let Some(map) = index {
            map.insert(last.key.clone(), position);
        } else if position >= LINEAR_SCAN_LIMIT {
            let mut map: HashMap<Cow<'a, str>, usize> = earlier
                .iter()
                .enumerate()
                .map(|(i, m)| (m.key.clone(), i))
                .collect();
            map.insert(last.key.clone(), position);
            *index = Some(map);
        }
    }

    /// Reads a string at the opening `"`: borrowed unless it holds escapes.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>, SyntaxError> {
        self.pos += 1;
        let start = self.pos;
        loop {
            self.skip_plain_string_bytes();
            match self.peek() {
                Some(b'"') => {
                    let text = self.slice(start)?;
                    self.pos += 1;
                    return Ok(Cow::Borrowed(text));
                }
                Some(b'\\') => break,
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => self.pos += 1,
                None => return Err(self.error("EOF while parsing a string")),
            }
        }
        let mut owned = String::with_capacity(self.pos - start + 16);
        owned.push_str(self.slice(start)?);
        let mut run = self.pos;
        loop {
            self.skip_plain_string_bytes();
            match self.peek() {
                Some(b'"') => {
                    owned.push_str(self.slice(run)?);
                    self.pos += 1;
                    return Ok(Cow::Owned(owned));
                }
                Some(b'\\') => {
                    owned.push_str(self.slice(run)?);
                    self.pos += 1;
                    owned.push(self.escape()?);
                    run = self.pos;
                }
                Some(0..=0x1f) => return Err(self.error("control character in a string")),
                Some(_) => self.pos += 1,
                None => return Err(self.error("EOF while parsing a string")),
            }
        }
    }

    /// Reads a string at the opening `"` if it holds no escape and no control character:
    /// the common case, cheaper than [`Parser::string`]. `None` (nothing read) otherwise.
    pub(crate) fn plain_string(&mut self) -> Option<&'a str> {
        let open = self.pos;
        self.pos += 1;
        self.skip_plain_string_bytes();
        if self.peek() == Some(b'"') {
            let text = self.text.get(open + 1..self.pos);
            if text.is_some() {
                self.pos += 1;
                return text;
            }
        }
        self.pos = open;
        None
    }

    /// Reads a string at the opening `"` if it holds no escape, no control character and no
    /// `;` (the line separator): the text, and the [`impure_bytes`] flags of its bytes, or-ed
    /// (zero for a plain key). `None` (nothing read) otherwise. One pass over the bytes, eight
    /// at a time, for what [`Parser::plain_string`], [`crate::canonical::key_is_plain`] and
    /// [`crate::canonical::has_separator`] would check in three.
    #[inline(always)]
    pub(crate) fn unseparated_string(&mut self) -> Option<(&'a str, u64)> {
        const SEMICOLONS: u64 = u64::from_le_bytes([b';'; 8]);
        let start = self.pos + 1;
        let mut pos = start;
        let mut impure = 0;
        while let Some(word) = self
            .bytes
            .get(pos..pos + 8)
            .and_then(|chunk| <[u8; 8]>::try_from(chunk).ok())
        {
            let word = u64::from_le_bytes(word);
            let stops = ends_plain_run(word) | zero_bytes(word ^ SEMICOLONS);
            let flags = impure_bytes(word);
            if stops != 0 {
                // The lowest flagged byte is exact: the bytes before it are the string's.
                let lowest = stops & stops.wrapping_neg();
                impure |= flags & (lowest - 1);
                pos += usize::try_from(stops.trailing_zeros() / 8).unwrap_or(0);
                return self.end_unseparated(start, pos, impure);
            }
            impure |= flags;
            pos += 8;
        }
        let tail = self.bytes.get(pos..).unwrap_or_default();
        let len = tail
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20 || b == b';')
            .unwrap_or(tail.len());
        let mut last = [0u8; 8];
        for (slot, &byte) in last.iter_mut().zip(tail.get(..len).unwrap_or_default()) {
            *slot = byte;
        }
        // Zero bytes are not flagged.
        impure |= impure_bytes(u64::from_le_bytes(last));
        self.end_unseparated(start, pos + len, impure)
    }

    /// The end of [`Parser::unseparated_string`]: the string is `start..end` if a `"` is at
    /// `end`.
    #[inline(always)]
    fn end_unseparated(&mut self, start: usize, end: usize, impure: u64) -> Option<(&'a str, u64)> {
        if self.bytes.get(end) != Some(&b'"') {
            return None;
        }
        let text = self.text.get(start..end)?;
        self.pos = end + 1;
        Some((text, impure))
    }

    /// Skips the bytes of a string that stand for themselves (not `"`, `\\` or a control).
    fn skip_plain_string_bytes(&mut self) {
        // Eight bytes at a time: the lowest flagged byte of a word is the first one that
        // ends the run (about three times faster on the strings of a callback).
        while let Some(word) = self
            .bytes
            .get(self.pos..self.pos + 8)
            .and_then(|chunk| <[u8; 8]>::try_from(chunk).ok())
        {
            let flags = ends_plain_run(u64::from_le_bytes(word));
            if flags != 0 {
                self.pos += usize::try_from(flags.trailing_zeros() / 8).unwrap_or(0);
                return;
            }
            self.pos += 8;
        }
        let tail = self.bytes.get(self.pos..).unwrap_or_default();
        self.pos += tail
            .iter()
            .position(|&b| b == b'"' || b == b'\\' || b < 0x20)
            .unwrap_or(tail.len());
    }

    /// `text[start..pos]`; both ends are next to ASCII bytes, so always char boundaries.
    fn slice(&self, start: usize) -> Result<&'a str, SyntaxError> {
        self.text
            .get(start..self.pos)
            .ok_or_else(|| self.error("invalid UTF-8"))
    }

    /// Decodes the escape after a `\`.
    fn escape(&mut self) -> Result<char, SyntaxError> {
        let c = match self.peek() {
            Some(b'"') => '"',
            Some(b'\\') => '\\',
            Some(b'/') => '/',
            Some(b'b') => '\u{8}',
            Some(b'f') => '\u{c}',
            Some(b'n') => '\n',
            Some(b'r') => '\r',
            Some(b't') => '\t',
            Some(b'u') => {
                self.pos += 1;
                return self.unicode_escape();
            }
            Some(_) => return Err(self.error("invalid escape")),
            None => return Err(self.error("EOF while parsing a string")),
        };
        self.pos += 1;
        Ok(c)
    }

    /// Decodes the hex digits after `\u`, and the low half after a high surrogate.
    fn unicode_escape(&mut self) -> Result<char, SyntaxError> {
        let first = self.hex4()?;
        let code = match first {
            0xd800..=0xdbff => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    return Err(self.error("lone leading surrogate in a hex escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xdc00..=0xdfff).contains(&second) {
                    return Err(self.error("lone leading surrogate in a hex escape"));
                }
                0x10000 + ((first - 0xd800) << 10) + (second - 0xdc00)
            }
            0xdc00..=0xdfff => return Err(self.error("lone trailing surrogate in a hex escape")),
            other => other,
        };
        char::from_u32(code).ok_or_else(|| self.error("invalid Unicode code point"))
    }

    fn hex4(&mut self) -> Result<u32, SyntaxError> {
        let mut code = 0;
        for _ in 0..4 {
            let digit = match self.peek() {
                Some(c @ b'0'..=b'9') => c - b'0',
                Some(c @ b'a'..=b'f') => c - b'a' + 10,
                Some(c @ b'A'..=b'F') => c - b'A' + 10,
                Some(_) => return Err(self.error("invalid hex escape")),
                None => return Err(self.error("EOF while parsing a string")),
            };
            code = code * 16 + u32::from(digit);
            self.pos += 1;
        }
        Ok(code)
    }

    /// Reads a number: `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?`.
    /// Returns the token's text.
    pub(crate) fn number(&mut self) -> Result<&'a str, SyntaxError> {
        let start = self.pos;
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(self.error("invalid number")),
        }
        let int_end = self.pos;
        if self.peek() == Some(b'.') {
            self.pos += 1;
            self.required_digits()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        let text = self.slice(start)?;
        // Up to 18 digits always fit in i64; anything else must be a finite f64, or
        // `serde_json` would refuse it ("number out of range").
        let short_integer = self.pos == int_end && int_end - start <= 18;
        if !short_integer && number_kind(text) == NumberKind::OutOfRange {
            return Err(SyntaxError {
                what: "number out of range",
                offset: start,
            });
        }
        Ok(text)
    }

    fn digits(&mut self) {
        while matches!(self.peek(), Some(b'0'..=b'9')) {
            self.pos += 1;
        }
    }

    fn required_digits(&mut self) -> Result<(), SyntaxError> {
        if !matches!(self.peek(), Some(b'0'..=b'9')) {
            return Err(self.error("invalid number"));
        }
        self.digits();
        Ok(())
    }
}

/// The bytes of `word` (little-endian) that are `"`, `\\` or below 0x20, as their high bits,
/// exact up to the first such byte (bytes after it may be flagged too: the classic "has a
/// zero byte" / "has a byte less than" tests, whose borrows only run upwards).
const fn ends_plain_run(word: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH_BITS: u64 = u64::from_le_bytes([0x80; 8]);
    let quote = zero_bytes(word ^ (ONES * b'"' as u64));
    let backslash = zero_bytes(word ^ (ONES * b'\\' as u64));
    let control = word.wrapping_sub(ONES * 0x20) & !word & HIGH_BITS;
    quote | backslash | control
}

/// The zero bytes of `v`, as their high bits, exact up to the first one (the classic "has a
/// zero byte" test: bytes after a zero byte may be flagged too).
const fn zero_bytes(v: u64) -> u64 {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH_BITS: u64 = u64::from_le_bytes([0x80; 8]);
    v.wrapping_sub(ONES) & !v & HIGH_BITS
}

/// How a number token is read (`spec/signature.md` §2 step 1, PHP's reading).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum NumberKind {
    /// No `.`, `e` or `E`, and it fits in `i64`.
    Integer(i64),
    /// A float, or an integer outside `i64`, as the correctly rounded `f64`.
    Float(f64),
    /// Not a finite `f64` (or not a number at all).
    OutOfRange,
}

/// Reads a number token by its text.
pub(crate) fn number_kind(text: &str) -> NumberKind {
    let is_float = text.bytes().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if !is_float && let Ok(i) = text.parse::<i64>() {
        return NumberKind::Integer(i);
    }
    match text.parse::<f64>() {
        Ok(f) if f.is_finite() => NumberKind::Float(f),
        _ => NumberKind::OutOfRange,
    }
}

/// The members of a raw object.
#[derive(Debug, Clone)]
pub(crate) struct RawMembers<'s> {
    doc: &'s Document<'s>,
    inner: std::slice::Iter<'s, Child<'s>>,
}

impl<'s> Iterator for RawMembers<'s> {
    type Item = (&'s str, RawRef<'s>);

    fn next(&mut self) -> Option<Self::Item> {
        let child = self.inner.next()?;
        Some((
            &child.key,
            RawRef {
                doc: self.doc,
                node: &child.value,
            },
        ))
    }
}

/// The elements of a raw array.
#[derive(Debug, Clone)]
pub(crate) struct RawItems<'s> {
    doc: &'s Document<'s>,
    inner: std::slice::Iter<'s, Child<'s>>,
}

impl<'s> Iterator for RawItems<'s> {
    type Item = RawRef<'s>;

    fn next(&mut self) -> Option<Self::Item> {
        let child = self.inner.next()?;
        Some(RawRef {
            doc: self.doc,
            node: &child.value,
        })
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.inner.size_hint()
    }
}

impl ExactSizeIterator for RawItems<'_> {}

impl<'s> JsonTree<'s> for RawRef<'s> {
    type Members = RawMembers<'s>;
    type Items = RawItems<'s>;

    fn view(self) -> View<'s, Self> {
        match self.node {
            Node::Null => View::Null,
            Node::Bool(b) => View::Bool(*b),
            Node::Number(text) => View::Number(Num::Text(text)),
            Node::String(s) => View::String(s),
            Node::Array { start, len } => View::Array(RawItems {
                doc: self.doc,
                inner: self.doc.children(*start, *len).iter(),
            }),
            Node::Object { start, len } => View::Object(RawMembers {
                doc: self.doc,
                inner: self.doc.children(*start, *len).iter(),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn parses(text: &str) -> bool {
        Document::parse(text.as_bytes()).is_ok()
    }

    fn serde_parses(text: &str) -> bool {
        serde_json::from_str::<Value>(text).is_ok()
    }

    #[test]
    fn borrows_plain_strings_and_decodes_escapes() {
        let doc = Document::parse(br#"{"a":"plain","b":"\u0410\n\ud83d\ude00\/"}"#).unwrap();
        let View::Object(mut members) = doc.root().view() else {
            panic!("object expected")
        };
        let (key, a) = members.next().unwrap();
        assert_eq!(key, "a");
        assert!(matches!(a.node, Node::String(Cow::Borrowed("plain"))));
        let (_, b) = members.next().unwrap();
        assert!(matches!(b.node, Node::String(Cow::Owned(s)) if s == "А\n😀/"));
        assert!(members.next().is_none());
    }

    #[test]
    fn duplicate_keys_keep_the_first_position_and_the_last_value() {
        let doc = Document::parse(br#"{"a":1,"b":2,"a":{"x":3}}"#).unwrap();
        let View::Object(members) = doc.root().view() else {
            panic!("object expected")
        };
        let members: Vec<_> = members.map(|(k, v)| (k, v.node.clone())).collect();
        assert_eq!(members.len(), 2);
        assert_eq!(members[0].0, "a");
        assert!(matches!(members[0].1, Node::Object { len: 1, .. }));
        assert_eq!(members[1], ("b", Node::Number("2")));
    }

    #[test]
    fn duplicate_keys_in_big_objects_use_the_index() {
        let mut text = String::from("{");
        for i in 0..100 {
            text.push_str(&format!("\"k{}\":{i},", i % 40));
        }
        text.push_str("\"k0\":\"last\"}");
        let doc = Document::parse(text.as_bytes()).unwrap();
        let View::Object(members) = doc.root().view() else {
            panic!("object expected")
        };
        let members: Vec<_> = members.map(|(k, v)| (k, v.node.clone())).collect();
        assert_eq!(members.len(), 40);
        assert_eq!(members[0], ("k0", Node::String(Cow::Borrowed("last"))));
        assert_eq!(members[39], ("k39", Node::Number("79")));
    }

    #[test]
    fn plain_string_bytes_end_at_the_first_quote_backslash_or_control() {
        let filler = " !#[]\u{7f}é~";
        for len in 0..24 {
            let plain: String = filler.chars().cycle().take(len).collect();
            for stop in ["\"", "\\", "\n", "\u{1f}", ""] {
                for at in (0..=plain.len()).filter(|&at| plain.is_char_boundary(at)) {
                    let text = format!("{}{stop}{}\"", &plain[..at], &plain[at..]);
                    let mut parser = Parser::new(text.as_bytes()).unwrap();
                    parser.skip_plain_string_bytes();
                    let expected = text
                        .bytes()
                        .position(|b| b == b'"' || b == b'\\' || b < 0x20)
                        .unwrap();
                    assert_eq!(parser.pos, expected, "{text:?}");
                    // The same string read whole: plainly when it is plain (the first stop is a
                    // quote), else not at all.
                    let literal = format!("\"{text}");
                    let mut parser = Parser::new(literal.as_bytes()).unwrap();
                    let plain = stop == "\"" || stop.is_empty();
                    match parser.plain_string() {
                        Some(read) => {
                            assert!(plain, "{text:?}");
                            assert_eq!(read, &text[..expected]);
                            assert_eq!(parser.pos, expected + 2);
                        }
                        None => {
                            assert!(!plain, "{text:?}");
                            assert_eq!(parser.pos, 0);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn unseparated_strings_are_plain_strings_without_separators() {
        let filler = "ab_:9 é;~\u{7f}";
        for len in 0..24 {
            let chars: String = filler.chars().cycle().skip(len % 5).take(len).collect();
            for stop in ["\"", "\\", "\n", ";", ""] {
                for at in (0..=chars.len()).filter(|&at| chars.is_char_boundary(at)) {
                    let literal = format!("\"{}{stop}{}\"", &chars[..at], &chars[at..]);
                    let mut parser = Parser::new(literal.as_bytes()).unwrap();
                    let plain = parser.plain_string();
                    let mut again = Parser::new(literal.as_bytes()).unwrap();
                    let read = again.unseparated_string();
                    match plain.filter(|text| !crate::canonical::has_separator(text)) {
                        Some(text) => {
                            let (got, impure) = read.unwrap();
                            assert_eq!(got, text, "{literal:?}");
                            assert_eq!(again.pos, parser.pos);
                            assert_eq!(
                                impure == 0,
                                crate::canonical::key_is_plain(text),
                                "{literal:?}"
                            );
                        }
                        None => {
                            assert!(read.is_none(), "{literal:?}");
                            assert_eq!(again.pos, 0);
                        }
                    }
                }
            }
        }
    }

    #[test]
    fn depth_limit_matches_serde_json() {
        for depth in [1, 126, 127, 128, 129, 1000] {
            let text = format!("{}{}", "[".repeat(depth), "]".repeat(depth));
            assert_eq!(parses(&text), serde_parses(&text), "depth {depth}");
            let text = format!("{}1{}", "{\"a\":".repeat(depth), "}".repeat(depth));
            assert_eq!(parses(&text), serde_parses(&text), "depth {depth}");
        }
        let nested = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
        assert!(parses(&nested(MAX_DEPTH)));
        assert!(!parses(&nested(MAX_DEPTH + 1)));
    }

    #[test]
    fn accepts_and_rejects_what_serde_json_does() {
        let cases = [
            "{}",
            " {\"a\" : [ 1 , 2 ] } \n",
            "{\"a\":1,}",
            "[1,]",
            "[,1]",
            "{\"a\"}",
            "{\"a\":}",
            "{1:2}",
            "01",
            "-",
            "-01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "1E-0",
            "-0",
            "-0.0e+00",
            "1e400",
            "-1e400",
            "1e-400",
            "0e99999999999999999999",
            "123456789012345678901234567890",
            &"9".repeat(400),
            "\"\\ud800\"",
            "\"\\udc00\"",
            "\"\\ud800\\u0041\"",
            "\"\\ud800x\"",
            "\"\\ud83d\\ude00\"",
            "\"\\uD83D\\uDE00\"",
            "\"\\x\"",
            "\"\\u12\"",
            "\"\\u12g4\"",
            "\"a\u{1}b\"",
            "\"a\u{7f}b\"",
            "\"tab\there\"",
            "tru",
            "truex",
            "nul",
            "null ",
            "null x",
            "\u{feff}{}",
            "",
            "   ",
            "{\"a\":1}{}",
            "\"unterminated",
            "[1 2]",
            "{\"a\":1 \"b\":2}",
            "\x0c{}",
            "{}\x0b",
        ];
        for text in cases {
            assert_eq!(parses(text), serde_parses(text), "{text:?}");
        }
        for bytes in [
            &b"\"\xff\""[..],
            b"\"\xc3\"",
            b"\"\xed\xa0\x80\"",
            b"{\"a\xe2\x82\":1}",
        ] {
            assert!(Document::parse(bytes).is_err());
            assert!(serde_json::from_slice::<Value>(bytes).is_err());
        }
    }

    #[test]
    fn errors_say_what_and_where() {
        let err = Document::parse(b"{\n  \"a\": tru}").unwrap_err();
        assert_eq!(
            err.describe(b"{\n  \"a\": tru}"),
            "expected `true`, `false` or `null` at line 2 column 7"
        );
        let err = Document::parse(b"[1] x").unwrap_err();
        assert_eq!(
            err.describe(b"[1] x"),
            "trailing characters at line 1 column 4"
        );
    }

    #[test]
    fn numbers_are_read_by_their_text() {
        assert_eq!(number_kind("-0"), NumberKind::Integer(0));
        assert_eq!(
            number_kind("9223372036854775807"),
            NumberKind::Integer(i64::MAX)
        );
        assert_eq!(
            number_kind("-9223372036854775808"),
            NumberKind::Integer(i64::MIN)
        );
        assert_eq!(
            number_kind("9223372036854775808"),
            NumberKind::Float(9_223_372_036_854_775_808.0)
        );
        assert_eq!(number_kind("1.0"), NumberKind::Float(1.0));
        assert_eq!(number_kind("1E2"), NumberKind::Float(100.0));
        assert_eq!(number_kind("1e400"), NumberKind::OutOfRange);
    }
}
