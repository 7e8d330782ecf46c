//! The fastest path of [`crate::Signer::verify_callback`], for plain callbacks (what Gate
//! sends): the body read once into small member records, each object's members sorted when
//! it closes, and the string to sign then written straight into the HMAC.
//!
//! [`crate::stream`] writes one `path:value` line per leaf into a buffer while it reads, and
//! moves line records around when an object closes. Here nothing is written while reading:
//! a member is a [`Member`] of 32 bytes holding byte ranges of the body (its key and its
//! value). When an object closes, its members are sorted by [`sibling_order`] (unless they
//! already are) and moved, in that order, next to each other in one arena. The string to
//! sign is then written by walking the arena, paths on the stack, through a
//! [`crate::sink::Sink`].
//!
//! It answers `None` for anything that is not plain (a key holding a digit, whitespace,
//! `:` or `;`, or a non-empty array: their lines do not sort object by object), and for
//! everything [`crate::stream`] declines (syntax errors, escaped or repeated keys,
//! `frame_mode`, a misplaced, repeated or non-string signature, a `;` in a value, a path
//! longer than [`MAX_PATH`] bytes). The caller then takes [`crate::stream`] or the general
//! path. Its tests (`tape/tests.rs`) compare what it writes with the general path's string.

use std::borrow::Cow;
use std::cell::Cell;
use std::cmp::Ordering;

use crate::canonical::{
    Num, has_separator, push_number, short_integer, sibling_order, sibling_word,
};
use crate::error::SignatureLocation;
use crate::raw::{MAX_DEPTH, Parser};
use crate::sink::{SLACK, Sink, copy};

/// Paths longer than this (in bytes) are declined (they are written from the stack).
const MAX_PATH: usize = 126;

// A line's prefix is copied out of the path buffer as one move of `SLACK` bytes.
const _: () = assert!(MAX_PATH + 2 >= SLACK);

/// Records kept for reuse at most, per thread (a few KiB).
const KEPT_RECORDS: usize = 256;

/// What a member holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Leaf {
    /// A string without escapes: `body[start..end]`.
    Text,
    /// A string with escapes, decoded: `Tape::decoded[start..end]`.
    Decoded,
    /// A number token: `body[start..end]`.
    Number,
    True,
    False,
    Null,
    /// An object whose members are `arena[start..end]` (none for `{}`).
    Object,
    /// An empty array (no line).
    EmptyArray,
}

/// A member of an object. Offsets are `u32`: a body that does not fit is declined.
#[derive(Debug, Clone, Copy)]
struct Member {
    /// [`sibling_word`] of the key.
    word: u64,
    key_start: u32,
    key_end: u32,
    start: u32,
    end: u32,
    leaf: Leaf,
}

impl Member {
    fn key<'b>(&self, body: &'b [u8]) -> &'b [u8] {
        body.get(self.key_start as usize..self.key_end as usize)
            .unwrap_or_default()
    }

    fn container(&self) -> bool {
        matches!(self.leaf, Leaf::Object | Leaf::EmptyArray)
    }
}

thread_local! {
    /// The record vectors of the last read on this thread, kept for the next.
    static SPARE: Cell<(Vec<Member>, Vec<Member>)> = const { Cell::new((Vec::new(), Vec::new())) };
}

/// A plain callback, read.
pub(crate) struct Tape<'a> {
    /// The body (checked UTF-8).
    text: &'a str,
    body: &'a [u8],
    /// Every object's members, each object's next to each other in their sorted order.
    arena: Vec<Member>,
    /// The members of the objects still open (empty once read).
    pending: Vec<Member>,
    /// The decoded text of strings with escapes.
    decoded: String,
    /// The root's members: `arena[root.0..root.1]`.
    root: (usize, usize),
    /// Where the signature was.
    pub(crate) location: SignatureLocation,
    /// The signature member's (unescaped) text.
    pub(crate) signature: Cow<'a, str>,
}

impl Drop for Tape<'_> {
    fn drop(&mut self) {
        let mut arena = std::mem::take(&mut self.arena);
        let mut pending = std::mem::take(&mut self.pending);
        if arena.capacity() <= KEPT_RECORDS && pending.capacity() <= KEPT_RECORDS {
            arena.clear();
            pending.clear();
            // Fails only while the thread is being torn down: then they are just freed.
            let _ = SPARE.try_with(|spare| spare.set((arena, pending)));
        }
    }
}

/// Reads `body`, or `None` if it is not a plain callback (see the module documentation).
pub(crate) fn read_callback(body: &[u8]) -> Option<Tape<'_>> {
    let parser = Parser::new(body).ok()?;
    let text = parser.text();
    let (arena, pending) = SPARE.try_with(Cell::take).unwrap_or_default();
    let mut reader = Reader {
        parser,
        root_signature: None,
        general_signature: None,
    };
    let mut tape = Tape {
        text,
        body,
        arena,
        pending,
        decoded: String::new(),
        root: (0, 0),
        location: SignatureLocation::Root,
        signature: Cow::Borrowed(""),
    };
    reader.parser.skip_whitespace();
    if reader.parser.peek() != Some(b'{') {
        return None;
    }
    tape.root = reader.object(&mut tape, 0, Place::Root, 0)?;
    reader.parser.skip_whitespace();
    if !reader.parser.at_end() {
        return None;
    }
    (tape.location, tape.signature) = match (reader.root_signature, reader.general_signature) {
        (Some(signature), None) => (SignatureLocation::Root, signature),
        (None, Some(signature)) => (SignatureLocation::General, signature),
        _ => return None,
    };
    Some(tape)
}

impl Tape<'_> {
    /// Writes the string to sign (every line but the signature's, sorted) to `flush`.
    pub(crate) fn write(&self, flush: impl FnMut(&[u8])) {
        let mut writer = Writer {
            tape: self,
            out: Sink::new(flush),
            path: [b';'; MAX_PATH + 2],
            first: true,
        };
        writer.members(self.root, 1);
        writer.out.finish();
    }

    /// The string to sign, whole (for tests).
    #[cfg(test)]
    fn string_to_sign(&self) -> String {
        let mut text = Vec::new();
        self.write(|piece| text.extend_from_slice(piece));
        String::from_utf8(text).unwrap_or_default()
    }
}

/// Whether `key` is `name` (compared as `N` fixed bytes: no call to `memcmp`).
fn is<const N: usize>(key: &[u8], name: &[u8; N]) -> bool {
    key.len() == N && key.first_chunk::<N>() == Some(name)
}

/// [`sibling_word`] of the key `key` at `body[key_start..]`, read as eight bytes of the body
/// (the bytes past a short key masked off) when the body has them.
fn key_word(body: &[u8], key_start: usize, key: &[u8], container: bool) -> u64 {
    let len = key.len();
    match body.get(key_start..).and_then(<[u8]>::first_chunk::<8>) {
        Some(head) if len >= 8 => u64::from_be_bytes(*head),
        Some(head) => {
            let colon = if container {
                u64::from(b':') << (8 * (7 - len))
            } else {
                0
            };
            (u64::from_be_bytes(*head) & !(u64::MAX >> (8 * len))) | colon
        }
        None => sibling_word(key, container),
    }
}

/// Whether `member` has the key `key`, whose [`sibling_word`] is `word`: the same length,
/// the same first eight bytes (the words without the `:` a short container's has), and the
/// same rest.
fn same_key(member: &Member, word: u64, key: &[u8], body: &[u8]) -> bool {
    let len = key.len();
    if (member.key_end - member.key_start) as usize != len {
        return false;
    }
    let head = if len >= 8 {
        u64::MAX
    } else {
        !(u64::MAX >> (8 * len))
    };
    (member.word ^ word) & head == 0 && (len <= 8 || member.key(body).get(8..) == key.get(8..))
}

/// Where an object is, for the signature members it may hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// The root object: its `signature` is the root signature.
    Root,
    /// The root's `general` member: its `signature` is `general.signature`.
    General,
    /// Anywhere else: a `signature` here is declined.
    Other,
}

struct Reader<'a> {
    parser: Parser<'a>,
    root_signature: Option<Cow<'a, str>>,
    general_signature: Option<Cow<'a, str>>,
}

impl<'a> Reader<'a> {
    /// Reads an object at its `{`, `depth` containers deep, whose members' paths start with
    /// `path_len` bytes; returns where its members are in the arena.
    fn object(
        &mut self,
        tape: &mut Tape<'a>,
        depth: usize,
        place: Place,
        path_len: usize,
    ) -> Option<(usize, usize)> {
        if depth >= MAX_DEPTH {
            return None;
        }
        self.parser.eat(b'{');
        self.parser.skip_whitespace();
        let mark = tape.pending.len();
        if !self.parser.eat(b'}') {
            loop {
                self.member(tape, depth, place, path_len, mark)?;
                if !self.parser.separator(b'}').ok()? {
                    break;
                }
            }
            self.parser.eat(b'}');
        }
        let members = tape.pending.get_mut(mark..)?;
        let body = tape.body;
        let order = |a: &Member, b: &Member| -> Ordering {
            a.word
                .cmp(&b.word)
                .then_with(|| sibling_order(a.key(body), a.container(), b.key(body), b.container()))
        };
        if !members.is_sorted_by(|a, b| order(a, b).is_le()) {
            members.sort_unstable_by(order);
        }
        let start = tape.arena.len();
        // Copied whole, then dropped (`drain` moved them one by one: measured slower).
        tape.arena.extend_from_slice(members);
        tape.pending.truncate(mark);
        Some((start, tape.arena.len()))
    }

    /// Reads one member of an object whose members start at `pending[mark]`.
    fn member(
        &mut self,
        tape: &mut Tape<'a>,
        depth: usize,
        place: Place,
        path_len: usize,
        mark: usize,
    ) -> Option<()> {
        if self.parser.peek() != Some(b'"') {
            return None;
        }
        let key_start = self.parser.position() + 1;
        // An escaped key, a key with `;` (or a syntax error) is declined.
        let (key, impure) = self.parser.unseparated_string()?;
        let bytes = key.as_bytes();
        let key_end = key_start + bytes.len();
        self.parser.skip_whitespace();
        if !self.parser.eat(b':') {
            return None;
        }
        self.parser.skip_whitespace();
        if is(bytes, b"signature") {
            return self.signature(place);
        }
        if impure != 0 || is(bytes, b"frame_mode") {
            return None;
        }
        let container = matches!(self.parser.peek(), Some(b'{' | b'['));
        let word = key_word(tape.body, key_start, bytes, container);
        let earlier = tape.pending.get(mark..).unwrap_or_default();
        if earlier.iter().any(|m| same_key(m, word, bytes, tape.body)) {
            return None;
        }
        let path_len = path_len + usize::from(depth > 0) + bytes.len();
        if path_len > MAX_PATH {
            return None;
        }
        let (leaf, start, end) = match self.parser.peek()? {
            b'{' => {
                let inner = if place == Place::Root && is(bytes, b"general") {
                    Place::General
                } else {
                    Place::Other
                };
                let (start, end) = self.object(tape, depth + 1, inner, path_len)?;
                (Leaf::Object, start, end)
            }
            b'[' => {
                if depth + 1 >= MAX_DEPTH {
                    return None;
                }
                self.parser.eat(b'[');
                self.parser.skip_whitespace();
                if !self.parser.eat(b']') {
                    return None;
                }
                (Leaf::EmptyArray, 0, 0)
            }
            b'"' => {
                let open = self.parser.position();
                if let Some((text, _)) = self.parser.unseparated_string() {
                    (Leaf::Text, open + 1, open + 1 + text.len())
                } else {
                    let text = self.parser.string().ok()?;
                    if has_separator(&text) {
                        return None;
                    }
                    let start = tape.decoded.len();
                    tape.decoded.push_str(&text);
                    (Leaf::Decoded, start, tape.decoded.len())
                }
            }
            b't' => {
                self.parser.literal(b"true").ok()?;
                (Leaf::True, 0, 0)
            }
            b'f' => {
                self.parser.literal(b"false").ok()?;
                (Leaf::False, 0, 0)
            }
            b'n' => {
                self.parser.literal(b"null").ok()?;
                (Leaf::Null, 0, 0)
            }
            b'-' | b'0'..=b'9' => {
                let start = self.parser.position();
                let text = self.parser.number().ok()?;
                (Leaf::Number, start, start + text.len())
            }
            _ => return None,
        };
        tape.pending.push(Member {
            word,
            key_start: u32::try_from(key_start).ok()?,
            key_end: u32::try_from(key_end).ok()?,
            start: u32::try_from(start).ok()?,
            end: u32::try_from(end).ok()?,
            leaf,
        });
        Some(())
    }

    /// Reads the value of a member named `signature` (not signed), if it is the root
    /// signature or `general.signature`, a string, and the first of its place.
    fn signature(&mut self, place: Place) -> Option<()> {
        if self.parser.peek() != Some(b'"') {
            return None;
        }
        let text = match self.parser.plain_string() {
            Some(text) => Cow::Borrowed(text),
            None => self.parser.string().ok()?,
        };
        let slot = match place {
            Place::Root => &mut self.root_signature,
            Place::General => &mut self.general_signature,
            Place::Other => return None,
        };
        if slot.is_some() {
            return None;
        }
        *slot = Some(text);
        Some(())
    }
}

/// Writes the lines of a [`Tape`].
struct Writer<'t, 'a, F: FnMut(&[u8])> {
    tape: &'t Tape<'a>,
    out: Sink<F>,
    /// `;` and the path of the current object and `:` (its end is passed along). Small
    /// enough to be set up without a call to `memset`, and at least [`SLACK`] bytes, so that
    /// a line's prefix is copied from it as one move ([`Sink::write_from`]).
    path: [u8; MAX_PATH + 2],
    /// Whether no line has been written yet.
    first: bool,
}

impl<F: FnMut(&[u8])> Writer<'_, '_, F> {
    /// Writes the lines of the members `arena[range]` of an object, whose lines all start
    /// with `path[..prefix_end]`: `;`, and the object's path and `:` below the root.
    ///
    /// A line is written in pieces from where they already are: that prefix, the key and
    /// the value from the body. (Copying the key into [`Writer::path`] and then the whole
    /// path out of it read bytes just stored, which stalled on every line.)
    fn members(&mut self, (start, end): (usize, usize), prefix_end: usize) {
        let tape = self.tape;
        let body = tape.body;
        for member in tape.arena.get(start..end).unwrap_or_default() {
            let key_start = member.key_start as usize;
            let key_len = (member.key_end - member.key_start) as usize;
            let (start, end) = (member.start as usize, member.end as usize);
            let value: &[u8] = match member.leaf {
                Leaf::Object => {
                    // Always fits: paths were checked against `MAX_PATH` while reading.
                    let key_end = prefix_end + key_len;
                    if let Some(room) = self.path.get_mut(prefix_end..key_end) {
                        copy(room, member.key(body));
                    }
                    if let Some(colon) = self.path.get_mut(key_end) {
                        *colon = b':';
                    }
                    self.members((start, end), key_end + 1);
                    continue;
                }
                Leaf::EmptyArray => continue,
                Leaf::Text => {
                    self.line(prefix_end, key_start, key_len);
                    self.out.write_from(body, start, end - start);
                    continue;
                }
                Leaf::Decoded => tape.decoded.as_bytes().get(start..end).unwrap_or_default(),
                Leaf::Number => {
                    let text = tape.text.get(start..end).unwrap_or_default();
                    self.line(prefix_end, key_start, key_len);
                    match short_integer(text) {
                        // The token itself.
                        Some(digits) if digits.len() == end - start => {
                            self.out.write_from(body, start, end - start);
                        }
                        Some(digits) => self.out.write(digits.as_bytes()),
                        None => {
                            let mut rendered = String::new();
                            push_number(&mut rendered, Num::Text(text));
                            self.out.write(rendered.as_bytes());
                        }
                    }
                    continue;
                }
                Leaf::True => b"1",
                Leaf::False => b"0",
                Leaf::Null => b"",
            };
            self.line(prefix_end, key_start, key_len);
            self.out.write(value);
        }
    }

    /// Starts a line: `path[..prefix_end]` (without its `;` before the first line), the
    /// key `body[key_start..key_start + key_len]` and `:`.
    fn line(&mut self, prefix_end: usize, key_start: usize, key_len: usize) {
        let from = usize::from(self.first);
        self.first = false;
        self.out
            .write_from(&self.path, from, prefix_end.saturating_sub(from));
        self.out.write_from(self.tape.body, key_start, key_len);
        self.out.byte(b':');
    }
}

#[cfg(test)]
mod tests;
