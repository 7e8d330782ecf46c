//! The string to sign (`spec/signature.md` §2 steps 2–5): flatten a JSON object into
//! `path:value` lines, sort them, join them with `;`.
//!
//! All lines live in one buffer; each line is a range of it. Sorting permutes the small
//! [`Entry`] records, never the text. The buffers are reused: a dropped [`Lines`] leaves them
//! to the next canonicalisation on the same thread (see [`Buffers`]), so a warm thread
//! canonicalises without allocating.
//!
//! There is one flattener for two kinds of tree, both seen through [`JsonTree`]: a parsed
//! `serde_json::Value`, and the borrowed tree of [`crate::raw`] read from a callback's bytes.

use std::cell::Cell;
use std::cmp::Ordering;

use serde_json::{Map, Number, Value};

use crate::float::push_php_float;
use crate::natural::natural_cmp;
use crate::raw::{NumberKind, number_kind};

/// The member skipped with its whole subtree at every depth (a Payment Page parameter).
pub(crate) const FRAME_MODE: &str = "frame_mode";
/// The member that carries a signature.
pub(crate) const SIGNATURE: &str = "signature";
/// The object that carries request metadata (and, in requests, the signature).
pub(crate) const GENERAL: &str = "general";
/// Arrays longer than this sort differently in PHP (natural) and byte order.
const LONGEST_UNCONTESTED_ARRAY: usize = 10;

/// The order in which the lines of a payload are sorted before joining.
///
/// Only [`SortVariant::PhpNatural`] is canonical and used for signing. The two byte-order
/// variants are what other vendor SDKs do; [`crate::Signer::verify_callback`] tries them only
/// when the canonical order fails and they give a different string
/// (`spec/signature.md` §3–§5).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SortVariant {
    /// By path in PHP natural order, ties in document order (the PHP SDK; canonical).
    PhpNatural,
    /// By path in byte order (the Python SDK).
    BytewiseByPath,
    /// By the whole `path:value` line in byte order (the Go and Java SDKs).
    BytewiseByLine,
}

impl SortVariant {
    /// Every variant, canonical first: the order in which verification tries them.
    pub const ALL: [SortVariant; 3] = [
        SortVariant::PhpNatural,
        SortVariant::BytewiseByPath,
        SortVariant::BytewiseByLine,
    ];

    /// A short stable name: `php-natural`, `bytewise-by-path` or `bytewise-by-line`.
    pub fn name(self) -> &'static str {
        match self {
            SortVariant::PhpNatural => "php-natural",
            SortVariant::BytewiseByPath => "bytewise-by-path",
            SortVariant::BytewiseByLine => "bytewise-by-line",
        }
    }

    /// Which vendor SDKs sort this way.
    pub fn used_by(self) -> &'static str {
        match self {
            SortVariant::PhpNatural => "the PHP SDK (canonical)",
            SortVariant::BytewiseByPath => "the Python SDK",
            SortVariant::BytewiseByLine => "the Go and Java SDKs",
        }
    }
}

impl std::fmt::Display for SortVariant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A read-only JSON tree as the flattener walks it: a cheap handle to one node.
pub(crate) trait JsonTree<'s>: Copy {
    /// The members of an object, in order, keys unique.
    type Members: Iterator<Item = (&'s str, Self)>;
    /// The elements of an array.
    type Items: ExactSizeIterator<Item = Self>;

    /// What this node is.
    fn view(self) -> View<'s, Self>;
}

/// One node of a [`JsonTree`].
pub(crate) enum View<'s, N: JsonTree<'s>> {
    Object(N::Members),
    Array(N::Items),
    String(&'s str),
    Number(Num<'s>),
    Bool(bool),
    Null,
}

impl<'s, N: JsonTree<'s>> View<'s, N> {
    /// The JSON type name, for error messages.
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            View::Object(_) => "object",
            View::Array(_) => "array",
            View::String(_) => "string",
            View::Number(_) => "number",
            View::Bool(_) => "boolean",
            View::Null => "null",
        }
    }
}

/// A JSON number: as `serde_json` parsed it, or by its source text (read the PHP way).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Num<'s> {
    Parsed(&'s Number),
    Text(&'s str),
}

/// The members of a `serde_json` object, keys as `&str`.
#[derive(Debug, Clone)]
pub(crate) struct ValueMembers<'s>(serde_json::map::Iter<'s>);

impl<'s> Iterator for ValueMembers<'s> {
    type Item = (&'s str, &'s Value);

    fn next(&mut self) -> Option<Self::Item> {
        self.0.next().map(|(key, value)| (key.as_str(), value))
    }
}

/// The members of `map` as a [`JsonTree`] iterator.
pub(crate) fn value_members(map: &Map<String, Value>) -> ValueMembers<'_> {
    ValueMembers(map.iter())
}

impl<'s> JsonTree<'s> for &'s Value {
    type Members = ValueMembers<'s>;
    type Items = std::slice::Iter<'s, Value>;

    fn view(self) -> View<'s, Self> {
        match self {
            Value::Object(map) => View::Object(value_members(map)),
            Value::Array(items) => View::Array(items.iter()),
            Value::String(s) => View::String(s),
            Value::Number(n) => View::Number(Num::Parsed(n)),
            Value::Bool(b) => View::Bool(*b),
            Value::Null => View::Null,
        }
    }
}

/// The longest path an ambiguity report carries, in characters.
pub(crate) const MAX_REPORTED_PATH: usize = 100;

/// Which `signature` member (if any) to leave out while flattening.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Strip {
    /// Sign everything.
    Nothing,
    /// Leave out the root `signature` member.
    Root,
    /// Leave out `general.signature`.
    General,
}

/// One line: `buf[start..path_end]` is the path, `buf[start..end]` the whole `path:value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Entry {
    start: usize,
    path_end: usize,
    end: usize,
    /// The path has no ASCII digit and no whitespace, so its natural order is its byte order.
    plain: bool,
    /// The first 16 bytes of the path, zero-padded, as two big-endian integers: comparing
    /// them is byte order on those bytes, and decides most comparisons without `memcmp`.
    /// Set by [`Lines::sort`] (lines already in order never need it).
    prefix: [u64; 2],
}

impl Entry {
    /// Byte order of the paths: by [`Entry::prefix`], then by the whole path on a tie.
    fn cmp_path(&self, other: &Entry, bytes: &[u8]) -> Ordering {
        self.prefix.cmp(&other.prefix).then_with(|| {
            let path = |e: &Entry| bytes.get(e.start..e.path_end).unwrap_or_default();
            path(self).cmp(path(other))
        })
    }
}

/// The first 16 bytes of `path`, zero-padded, as two big-endian integers.
fn path_prefix(path: &[u8]) -> [u64; 2] {
    let mut head = [0u8; 16];
    for (slot, byte) in head.iter_mut().zip(path) {
        *slot = *byte;
    }
    let (high, low) = head.split_at(8);
    let word = |half: &[u8]| u64::from_be_bytes(<[u8; 8]>::try_from(half).unwrap_or_default());
    [word(high), word(low)]
}

/// The buffers of a [`Lines`] (and of its [`Flattener`]), kept for reuse.
///
/// Allocating them cost about a fifth of the work besides the HMAC (glibc serves blocks above
/// 1 KiB from its slower bins), so a dropped [`Lines`] gives them back, emptied, to a one-slot
/// cache per thread, and the next [`Flattener`] takes them from there. Buffers that grew
/// past [`Buffers::KEPT_BYTES`] are freed instead, so a thread keeps at most a few KiB.
#[derive(Debug, Default)]
struct Buffers {
    buf: String,
    entries: Vec<Entry>,
    path: String,
    /// Room to move lines around in ([`Flattener::reorder`]).
    scratch: Vec<Entry>,
}

thread_local! {
    /// The spare buffers of this thread, if any.
    static SPARE: Cell<Option<Buffers>> = const { Cell::new(None) };
}

impl Buffers {
    /// Buffers larger than this (in bytes) are not kept.
    const KEPT_BYTES: usize = 16 * 1024;

    /// This thread's spare buffers, or new ones.
    fn take() -> Buffers {
        SPARE
            .try_with(Cell::take)
            .ok()
            .flatten()
            .unwrap_or_else(|| Buffers {
                buf: String::with_capacity(1024),
                entries: Vec::with_capacity(32),
                path: String::with_capacity(64),
                scratch: Vec::new(),
            })
    }

    /// Empties the buffers and keeps them for this thread's next [`Buffers::take`].
    fn recycle(mut self) {
        let bytes = self.buf.capacity()
            + (self.entries.capacity() + self.scratch.capacity()) * size_of::<Entry>()
            + self.path.capacity();
        if bytes == 0 || bytes > Self::KEPT_BYTES {
            return;
        }
        self.buf.clear();
        self.entries.clear();
        self.path.clear();
        self.scratch.clear();
        // Fails only while the thread is being torn down: then the buffers are just freed.
        let _ = SPARE.try_with(|spare| spare.set(Some(self)));
    }
}

/// The flattened lines of a payload, in the order of the last sort.
#[derive(Debug, Clone)]
pub(crate) struct Lines {
    buf: String,
    entries: Vec<Entry>,
    /// The flattener's path and scratch buffers, kept only to be reused (see [`Buffers`]).
    path: String,
    scratch: Vec<Entry>,
    /// The path of the first key or string value holding `;`, the line separator: such a
    /// payload's string to sign can be re-split into other lines (see [`Lines::ambiguity`]).
    ambiguous: Option<String>,
    /// The path of the first member named `signature` that was flattened (not the one left
    /// out by [`Strip`]): see [`Lines::extra_signature`].
    extra_signature: Option<String>,
}

impl Drop for Lines {
    fn drop(&mut self) {
        Buffers {
            buf: std::mem::take(&mut self.buf),
            entries: std::mem::take(&mut self.entries),
            path: std::mem::take(&mut self.path),
            scratch: std::mem::take(&mut self.scratch),
        }
        .recycle();
    }
}

impl Lines {
    /// Flattens the members of the root object in document order
    /// (`spec/signature.md` §2 steps 2–3).
    pub(crate) fn flatten<'s, N: JsonTree<'s>>(
        root: impl Iterator<Item = (&'s str, N)>,
        strip: Strip,
    ) -> Lines {
        let mut flattener = Flattener::new(None);
        flattener.root(root, strip);
        flattener.finish()
    }

    /// Flattens `root` and records the features on which vendor SDKs disagree.
    pub(crate) fn flatten_with_notes<'s, N: JsonTree<'s>>(
        root: impl Iterator<Item = (&'s str, N)>,
        strip: Strip,
        notes: &mut Vec<String>,
    ) -> Lines {
        let mut flattener = Flattener::new(Some(notes));
        flattener.root(root, strip);
        flattener.finish()
    }

    /// The path (at most [`MAX_REPORTED_PATH`] characters) of the first member named
    /// `signature` that was flattened as data, i.e. not the one [`Strip`] left out. The
    /// vendor SDKs' callback classes remove such members before checking, so they are not
    /// covered by the signature the platform computed as the SDKs check it: a verified
    /// message never carries one (`spec/signature.md` §2 step 0).
    pub(crate) fn extra_signature(&self) -> Option<&str> {
        self.extra_signature.as_deref()
    }

    /// The path (at most [`MAX_REPORTED_PATH`] characters) of the first key or string value
    /// that contains `;`, if any. The string to sign joins lines with `;` and escapes nothing,
    /// so such a payload's lines can be regrouped into a *different* payload with the same
    /// string and therefore the same signature: it is ambiguous, and neither signed nor
    /// accepted (invariant 11).
    pub(crate) fn ambiguity(&self) -> Option<&str> {
        self.ambiguous.as_deref()
    }

    /// Sorts the lines, ties in document order.
    ///
    /// Lines are appended to the buffer in document order, so `start` is the document order:
    /// breaking ties with it makes the order total, and an unstable sort (measured faster
    /// on these small slices) gives exactly what a stable sort of the document order gives,
    /// whatever the order before.
    pub(crate) fn sort(&mut self, variant: SortVariant) {
        let bytes = self.buf.as_bytes();
        for e in &mut self.entries {
            e.prefix = path_prefix(bytes.get(e.start..e.path_end).unwrap_or_default());
        }
        let path = |e: &Entry| &bytes[e.start..e.path_end];
        let line = |e: &Entry| &bytes[e.start..e.end];
        let in_document_order = |a: &Entry, b: &Entry| a.start.cmp(&b.start);
        match variant {
            // Byte order is natural order for plain paths, and much faster.
            SortVariant::PhpNatural => self.entries.sort_unstable_by(|a, b| {
                if a.plain && b.plain {
                    a.cmp_path(b, bytes)
                } else {
                    natural_cmp(path(a), path(b))
                }
                .then_with(|| in_document_order(a, b))
            }),
            SortVariant::BytewiseByPath => self.entries.sort_unstable_by(|a, b| {
                a.cmp_path(b, bytes).then_with(|| in_document_order(a, b))
            }),
            SortVariant::BytewiseByLine => self.entries.sort_unstable_by(|a, b| {
                line(a).cmp(line(b)).then_with(|| in_document_order(a, b))
            }),
        }
    }

    /// The number of lines.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether `other` holds the same lines in the same order (so the same string).
    pub(crate) fn same_order(&self, other: &Lines) -> bool {
        self.entries == other.entries
    }

    /// The lines in their current order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &str> {
        self.entries
            .iter()
            .map(|e| self.buf.get(e.start..e.end).unwrap_or_default())
    }

    /// Feeds the joined string to `sink` piece by piece, without building it.
    pub(crate) fn for_each_piece(&self, mut sink: impl FnMut(&[u8])) {
        let bytes = self.buf.as_bytes();
        for (i, e) in self.entries.iter().enumerate() {
            // Every line is preceded by `;` in the buffer (see `Flattener::start_line`).
            let from = if i > 0 { e.start - 1 } else { e.start };
            sink(&bytes[from..e.end]);
        }
    }

    /// The lines joined with `;` in their current order.
    pub(crate) fn joined(&self) -> String {
        let mut out = String::with_capacity(self.buf.len() + self.entries.len());
        for (i, line) in self.iter().enumerate() {
            if i > 0 {
                out.push(';');
            }
            out.push_str(line);
        }
        out
    }
}

/// How to undo one path segment.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    /// The path length before the segment.
    len: usize,
    /// Whether the segment holds a digit or whitespace.
    impure: bool,
    /// Whether the segment is a plain key (see [`key_is_plain`]).
    pub(crate) plain: bool,
}

/// Walks a JSON tree depth-first and appends one line per scalar leaf.
///
/// [`crate::stream`] drives the same methods while it reads a body, without a tree.
pub(crate) struct Flattener<'n> {
    buf: String,
    entries: Vec<Entry>,
    /// The path of the current node (segments joined with `:`).
    path: String,
    /// How many containers below the root the walk is.
    depth: usize,
    /// Room to move lines around in ([`Flattener::reorder`]).
    scratch: Vec<Entry>,
    /// How many segments of the current path hold a digit or whitespace (array indices do).
    impure_segments: usize,
    /// Where to record contested features, when explaining.
    notes: Option<&'n mut Vec<String>>,
    /// The path of the first key or string value holding `;`.
    ambiguous: Option<String>,
    /// The path of the first member named `signature` flattened as data.
    extra_signature: Option<String>,
}

impl<'n> Flattener<'n> {
    pub(crate) fn new(notes: Option<&'n mut Vec<String>>) -> Self {
        let Buffers {
            buf,
            entries,
            path,
            scratch,
        } = Buffers::take();
        Flattener {
            buf,
            entries,
            path,
            scratch,
            depth: 0,
            impure_segments: 0,
            notes,
            ambiguous: None,
            extra_signature: None,
        }
    }

    pub(crate) fn finish(self) -> Lines {
        Lines {
            buf: self.buf,
            entries: self.entries,
            path: self.path,
            scratch: self.scratch,
            ambiguous: self.ambiguous,
            extra_signature: self.extra_signature,
        }
    }

    /// Records the current path as ambiguous (the first one only), and notes it.
    fn separator_found(&mut self) {
        if self.ambiguous.is_none() {
            self.ambiguous = Some(self.path.chars().take(MAX_REPORTED_PATH).collect());
        }
        self.note(|path| format!("`{path}` contains `;`, the line separator: the string to sign is ambiguous (its lines can be regrouped into another message with the same signature), so it is never signed or accepted"));
    }

    fn root<'s, N: JsonTree<'s>>(
        &mut self,
        root: impl Iterator<Item = (&'s str, N)>,
        strip: Strip,
    ) {
        for (key, value) in root {
            match (strip, key) {
                (Strip::Root, SIGNATURE) => {}
                (Strip::General, GENERAL) => match value.view() {
                    View::Object(general) => {
                        let mark = self.enter_key(key);
                        self.object::<N>(general, Some(SIGNATURE));
                        self.leave(mark);
                    }
                    view => self.member(key, view),
                },
                _ => self.member(key, value.view()),
            }
        }
    }

    /// Pushes `:` (below the root) and the escaped key; [`Flattener::leave`] undoes it.
    pub(crate) fn enter_key(&mut self, key: &str) -> Mark {
        let len = self.path.len();
        if self.depth > 0 {
            self.path.push(':');
        }
        // One pass over the key: does it need escaping, does it leave byte order?
        let class = key
            .as_bytes()
            .iter()
            .fold(0, |class, &c| class | KEY_BYTE_CLASS[usize::from(c)]);
        let colon = class & COLON != 0;
        let separator = class & SEPARATOR != 0;
        let impure = class & IMPURE != 0;
        if colon {
            self.path.push_str(&key.replace(':', "::"));
            self.note(|path| format!("key in `{path}` contains `:`, written `::` (the JS SDK, and the Go SDK below the top level, do not escape it)"));
        } else {
            self.path.push_str(key);
        }
        if self.notes.is_some() {
            self.note_key(key);
        }
        self.impure_segments += usize::from(impure);
        if separator {
            self.separator_found();
        }
        Mark {
            len,
            impure,
            plain: class == 0,
        }
    }

    /// Pushes `:` and an array index; [`Flattener::leave`] undoes it.
    pub(crate) fn enter_index(&mut self, index: usize) -> Mark {
        let len = self.path.len();
        self.path.push(':');
        push_u64(&mut self.path, u64::try_from(index).unwrap_or(u64::MAX));
        self.impure_segments += 1;
        Mark {
            len,
            impure: true,
            plain: false,
        }
    }

    /// Pops the segment pushed by [`Flattener::enter_key`] or [`Flattener::enter_index`].
    pub(crate) fn leave(&mut self, mark: Mark) {
        self.impure_segments -= usize::from(mark.impure);
        self.path.truncate(mark.len);
    }

    fn member<'s, N: JsonTree<'s>>(&mut self, key: &str, value: View<'s, N>) {
        if key == FRAME_MODE {
            return;
        }
        let mark = self.enter_key(key);
        if key == SIGNATURE && self.extra_signature.is_none() {
            self.extra_signature = Some(self.path.chars().take(MAX_REPORTED_PATH).collect());
        }
        self.value(value);
        self.leave(mark);
    }

    /// The number of lines so far.
    pub(crate) fn line_count(&self) -> usize {
        self.entries.len()
    }

    /// Rewrites the lines from `from` on as the concatenation of the line ranges `blocks`
    /// (which must cover `from..` exactly once, in another order).
    pub(crate) fn reorder(&mut self, from: usize, blocks: impl Iterator<Item = (usize, usize)>) {
        self.scratch.clear();
        for (start, end) in blocks {
            if let Some(lines) = self.entries.get(start..end) {
                self.scratch.extend_from_slice(lines);
            }
        }
        if let Some(lines) = self.entries.get_mut(from..)
            && lines.len() == self.scratch.len()
        {
            lines.copy_from_slice(&self.scratch);
        }
    }

    /// Steps into a container below the root (its members' segments get a `:` prefix).
    pub(crate) fn descend(&mut self) {
        self.depth += 1;
    }

    /// Steps out of the container entered by [`Flattener::descend`].
    pub(crate) fn ascend(&mut self) {
        self.depth -= 1;
    }

    fn object<'s, N: JsonTree<'s>>(&mut self, members: N::Members, skip: Option<&str>) {
        self.depth += 1;
        for (key, value) in members {
            if skip != Some(key) {
                self.member(key, value.view());
            }
        }
        self.depth -= 1;
    }

    fn value<'s, N: JsonTree<'s>>(&mut self, value: View<'s, N>) {
        match value {
            View::Object(members) => self.object::<N>(members, None),
            View::Array(items) => {
                if items.len() > LONGEST_UNCONTESTED_ARRAY {
                    let len = items.len();
                    self.note(|path| format!("array `{path}` has {len} elements: PHP (used here) sorts index 9 before 10; the Python, Go and Java SDKs sort 10 before 2"));
                }
                self.depth += 1;
                for (index, item) in items.enumerate() {
                    let mark = self.enter_index(index);
                    self.value(item.view());
                    self.leave(mark);
                }
                self.depth -= 1;
            }
            View::String(s) => self.string_leaf(s),
            View::Bool(true) => self.leaf("1"),
            View::Bool(false) => self.leaf("0"),
            View::Null => self.leaf(""),
            View::Number(n) => self.number_leaf(n),
        }
    }

    /// The line of a string value.
    pub(crate) fn string_leaf(&mut self, s: &str) {
        if has_separator(s) {
            self.separator_found();
        }
        self.leaf(s);
    }

    /// The line of a number.
    pub(crate) fn number_leaf(&mut self, n: Num<'_>) {
        let (start, path_end) = self.start_line();
        let integer = push_number(&mut self.buf, n);
        self.end_line(start, path_end);
        if !integer {
            let rendered = self.buf.get(path_end + 1..).unwrap_or_default().to_owned();
            self.note(|path| format!("`{path}` is a float or an integer outside i64, rendered by PHP's 14-digit rule as `{rendered}` (the SDKs disagree on floats; requests should never carry them)"));
        }
    }

    /// The line of a literal value (`1`, `0` or empty for `true`, `false`, `null`).
    pub(crate) fn leaf(&mut self, text: &str) {
        let (start, path_end) = self.start_line();
        self.buf.push_str(text);
        self.end_line(start, path_end);
    }

    fn start_line(&mut self) -> (usize, usize) {
        // Each line is preceded by `;` in the buffer, so that a line and the separator before
        // it feed the HMAC in one piece ([`Lines::for_each_piece`]).
        self.buf.push(';');
        let start = self.buf.len();
        self.buf.push_str(&self.path);
        let path_end = self.buf.len();
        self.buf.push(':');
        (start, path_end)
    }

    fn end_line(&mut self, start: usize, path_end: usize) {
        let end = self.buf.len();
        self.entries.push(Entry {
            start,
            path_end,
            end,
            plain: self.impure_segments == 0,
            prefix: [0; 2],
        });
    }

    /// Records a note about the current path (only when explaining; duplicates dropped).
    fn note(&mut self, make: impl FnOnce(&str) -> String) {
        if let Some(notes) = self.notes.as_deref_mut() {
            let note = make(&self.path);
            if !notes.contains(&note) {
                notes.push(note);
            }
        }
    }

    fn note_key(&mut self, key: &str) {
        let bytes = key.as_bytes();
        if bytes.iter().any(u8::is_ascii_digit) {
            self.note(|path| format!("key in `{path}` contains digits: PHP's natural order (used here) sorts `2` before `10`, the byte order of other SDKs does not"));
        }
        if bytes.iter().any(|&b| is_php_space(b)) {
            self.note(|path| format!("key in `{path}` contains whitespace, which PHP's natural order ignores (ties keep document order)"));
        }
    }
}

/// Renders a JSON number: exact digits for an `i64`, PHP's float rule for anything else.
/// Returns whether it was an integer in `i64`.
///
/// A parsed `serde_json::Number` is an `i64`, a `u64` above `i64::MAX` or an `f64`
/// (`serde_json` reads `-0` as the float `-0.0`, so a `Value` renders it PHP's float way, `-0`). Source text is read the PHP way
/// (`spec/signature.md` §2 step 1): with `.`, `e` or `E` a float, otherwise an integer if
/// it fits in `i64` (so `-0` is the integer `0`), otherwise a float.
pub(crate) fn push_number(out: &mut String, n: Num<'_>) -> bool {
    if let Num::Text(text) = n
        && let Some(digits) = short_integer(text)
    {
        out.push_str(digits);
        return true;
    }
    let kind = match n {
        Num::Parsed(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => NumberKind::Integer(i),
            (None, Some(f)) => NumberKind::Float(f),
            (None, None) => NumberKind::OutOfRange,
        },
        Num::Text(text) => number_kind(text),
    };
    match kind {
        NumberKind::Integer(i) => {
            if i < 0 {
                out.push('-');
            }
            push_u64(out, i.unsigned_abs());
            true
        }
        NumberKind::Float(f) => {
            push_php_float(out, f);
            false
        }
        // The reader refuses such numbers; render the text rather than lose the line.
        NumberKind::OutOfRange => {
            if let Num::Text(text) = n {
                out.push_str(text);
            }
            false
        }
    }
}

/// The rendering of an integer token of at most 18 digits (always in `i64`): the token
/// itself, which JSON writes without `+` or leading zeros, except `-0`, which is `0`. Saves
/// parsing and printing it again; `None` for any other token.
pub(crate) fn short_integer(text: &str) -> Option<&str> {
    let digits = text.strip_prefix('-').unwrap_or(text);
    let canonical = !digits.is_empty()
        && digits.len() <= 18
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits.len() == 1 || !digits.starts_with('0'));
    match digits {
        _ if !canonical => None,
        "0" => Some("0"),
        _ => Some(text),
    }
}

/// The order of the lines of two members of one object whose keys are plain (see
/// [`key_is_plain`]), when every path of the payload is plain: all lines of member `a` start
/// with `P:a` followed by the end of the path (a scalar) or by `:` (a container), and
/// likewise for `b`. So any line of `a` compares with any line of `b` at the first byte where
/// the keys differ, or, if `a` is a prefix of `b`, at the byte after `a`: the end or `:` on
/// `a`'s side, a byte of `b` (never `:`) on the other. The lines of two members never
/// interleave, and sorting each object's members by this order and walking the tree gives
/// the lines sorted by path (see [`crate::plain`] and [`crate::stream`]).
pub(crate) fn sibling_order(a: &[u8], a_container: bool, b: &[u8], b_container: bool) -> Ordering {
    // The first byte where the keys differ, or the end of the shorter one (a byte loop:
    // keys are short, and calling `memcmp` cost more).
    let at = a
        .iter()
        .zip(b)
        .position(|(x, y)| x != y)
        .unwrap_or(a.len().min(b.len()));
    // The byte after the first `at` bytes of a member's paths.
    let after = |key: &[u8], container: bool| match key.get(at) {
        Some(&byte) => Some(byte),
        None if container => Some(b':'),
        None => None,
    };
    after(a, a_container).cmp(&after(b, b_container))
}

/// A quick key for [`sibling_order`]: the first eight bytes of the member's key followed by
/// `:` for a container, zero-padded, big-endian. Where two members' words differ, they are
/// in the order of their words (that is [`sibling_order`] on those bytes); where they are
/// equal, [`sibling_order`] decides.
pub(crate) fn sibling_word(key: &[u8], container: bool) -> u64 {
    if let Some(head) = key.first_chunk::<8>() {
        return u64::from_be_bytes(*head);
    }
    // Fewer than eight bytes: shifted in one by one, then to the top of the word.
    let separator: &[u8] = if container { b":" } else { b"" };
    let (word, len) = key
        .iter()
        .chain(separator)
        .fold((0u64, 0u32), |(word, len), &byte| {
            (word << 8 | u64::from(byte), len + 1)
        });
    word.checked_shl(8 * (8 - len)).unwrap_or(0)
}

/// Appends the decimal digits of `n` (faster than `write!` on this hot path).
fn push_u64(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut first = digits.len();
    loop {
        first -= 1;
        if let Some(slot) = digits.get_mut(first) {
            *slot = b'0' + u8::try_from(n % 10).unwrap_or(0);
        }
        n /= 10;
        if n == 0 || first == 0 {
            break;
        }
    }
    // ASCII digits: always UTF-8, appended at once.
    out.push_str(std::str::from_utf8(digits.get(first..).unwrap_or_default()).unwrap_or_default());
}

/// Whether `s` holds `;`, the line separator (eight bytes at a time: faster than `memchr`
/// on the short values of a message).
#[allow(clippy::manual_contains)] // `contains` calls `memchr`: slower for the few bytes left
pub(crate) fn has_separator(s: &str) -> bool {
    const ONES: u64 = u64::from_le_bytes([0x01; 8]);
    const HIGH_BITS: u64 = u64::from_le_bytes([0x80; 8]);
    const SEMICOLONS: u64 = u64::from_le_bytes([b';'; 8]);
    let chunks = s.as_bytes().chunks_exact(8);
    let rest = chunks.remainder();
    chunks
        .map(|chunk| <[u8; 8]>::try_from(chunk).map_or(0, u64::from_le_bytes) ^ SEMICOLONS)
        .any(|v| v.wrapping_sub(ONES) & !v & HIGH_BITS != 0)
        || rest.iter().any(|&b| b == b';')
}

/// C `isspace` in the "C" locale (what PHP's natural order skips).
const fn is_php_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r')
}

/// Whether `key` has no `:`, no `;`, no ASCII digit and no whitespace: its path segment is
/// the key itself, and natural order is byte order on it.
pub(crate) fn key_is_plain(key: &str) -> bool {
    // No early exit: keys are short, and a branch-free loop measured faster.
    key.as_bytes()
        .iter()
        .fold(0, |class, &c| class | KEY_BYTE_CLASS[usize::from(c)])
        == 0
}

/// The bytes of `word` that [`KEY_BYTE_CLASS`] flags (`\t` to `\r`, space, `0` to `9`, `:`
/// and `;`: the ranges 0x09–0x0D, 0x20 and 0x30–0x3B), as their high bits; exact in every
/// byte (no borrow or carry crosses a byte).
pub(crate) const fn impure_bytes(word: u64) -> u64 {
    /// The bytes of `x` strictly between `low` and `high` (both at most 128), as high bits.
    const fn between(x: u64, low: u64, high: u64) -> u64 {
        const ONES: u64 = u64::from_le_bytes([0x01; 8]);
        let seven_bits = x & (ONES * 127);
        ((ONES * (127 + high)).wrapping_sub(seven_bits)
            & !x
            & seven_bits.wrapping_add(ONES * (127 - low)))
            & (ONES * 128)
    }
    between(word, 0x08, 0x0e) | between(word, 0x1f, 0x21) | between(word, 0x2f, 0x3c)
}

/// [`KEY_BYTE_CLASS`]: `:` (escaped in paths).
const COLON: u8 = 1;
/// [`KEY_BYTE_CLASS`]: `;` (the line separator: ambiguous).
const SEPARATOR: u8 = 2;
/// [`KEY_BYTE_CLASS`]: an ASCII digit or PHP whitespace (natural order differs from bytes).
const IMPURE: u8 = 4;

/// What each byte of a key means to the flattener (a table is about three times faster
/// than testing each byte four ways).
const KEY_BYTE_CLASS: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte: u8 = 0;
    loop {
        table[byte as usize] = if byte == b':' {
            COLON
        } else if byte == b';' {
            SEPARATOR
        } else if byte.is_ascii_digit() || is_php_space(byte) {
            IMPURE
        } else {
            0
        };
        if byte == u8::MAX {
            break table;
        }
        byte += 1;
    }
};

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn canonical(value: Value) -> String {
        let Value::Object(map) = value else {
            panic!("test payloads are objects")
        };
        let mut lines = Lines::flatten(value_members(&map), Strip::Nothing);
        lines.sort(SortVariant::PhpNatural);
        lines.joined()
    }

    #[test]
    fn separator_is_found_at_any_position() {
        for len in 0..40 {
            let plain = "aé:\u{7f}\u{ff}"
                .chars()
                .cycle()
                .take(len)
                .collect::<String>();
            assert!(!has_separator(&plain), "{plain:?}");
            for at in 0..=plain.len() {
                if plain.is_char_boundary(at) {
                    let mut with = plain.clone();
                    with.insert(at, ';');
                    assert!(has_separator(&with), "{with:?}");
                }
            }
        }
        // Bytes just around `;` (0x3b) in every lane.
        for byte in [b':', b'<', b'{', b'\x7b'] {
            let text = String::from_utf8(vec![byte; 17]).unwrap();
            assert!(!has_separator(&text));
        }
    }

    #[test]
    fn sibling_words_agree_with_sibling_order() {
        let keys = [
            "",
            "a",
            "a-",
            "a_",
            "ab",
            "a-b",
            "abcdefg",
            "abcdefg-",
            "abcdefgh",
            "abcdefgh_",
            "b",
            "\u{0}",
            "a\u{0}",
            "é",
        ];
        for a in keys {
            for b in keys {
                for (ca, cb) in [(false, false), (false, true), (true, false), (true, true)] {
                    let (wa, wb) = (
                        sibling_word(a.as_bytes(), ca),
                        sibling_word(b.as_bytes(), cb),
                    );
                    let order = sibling_order(a.as_bytes(), ca, b.as_bytes(), cb);
                    if wa != wb {
                        assert_eq!(wa.cmp(&wb), order, "{a:?} {ca} / {b:?} {cb}");
                    }
                }
            }
        }
    }

    #[test]
    fn impure_bytes_are_the_flagged_bytes() {
        // Every byte in every lane, next to every byte that matters around the ranges.
        let around = [
            0u8, 0x08, 0x09, 0x0d, 0x0e, 0x1f, 0x20, 0x21, 0x2f, 0x30, 0x3b, 0x3c, 0x7f, 0x80, 0xff,
        ];
        for byte in 0..=u8::MAX {
            for lane in 0..8 {
                for &other in &around {
                    let mut bytes = [other; 8];
                    bytes[lane] = byte;
                    let flags = impure_bytes(u64::from_le_bytes(bytes));
                    for (i, &b) in bytes.iter().enumerate() {
                        let flagged = flags >> (8 * i + 7) & 1 == 1;
                        assert_eq!(flagged, KEY_BYTE_CLASS[usize::from(b)] != 0, "{bytes:?}");
                    }
                    assert_eq!(flags & !u64::from_le_bytes([0x80; 8]), 0);
                }
            }
        }
    }

    #[test]
    fn digits_of_integers() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            let mut out = String::from("x");
            push_u64(&mut out, n);
            assert_eq!(out, format!("x{n}"));
        }
    }

    #[test]
    fn flattens_nested_objects_and_arrays() {
        let value = json!({"a": {"b": 1, "c": [true, null, ""]}, "d": "x"});
        assert_eq!(canonical(value), "a:b:1;a:c:0:1;a:c:1:;a:c:2:;d:x");
    }

    #[test]
    fn escapes_colons_in_keys_and_skips_frame_mode_everywhere() {
        let value = json!({"x:y": "1", "frame_mode": "a", "o": [{"frame_mode": "b", "k": "2"}]});
        assert_eq!(canonical(value), "o:0:k:2;x::y:1");
    }

    #[test]
    fn empty_containers_give_no_line() {
        assert_eq!(canonical(json!({"a": [], "b": {}, "c": [[], {}]})), "");
    }

    #[test]
    fn strip_general_signature_only() {
        let value = json!({"general": {"signature": "s", "project_id": 1}, "signature": "r"});
        let Value::Object(map) = value else {
            unreachable!()
        };
        let general = Lines::flatten(value_members(&map), Strip::General).joined();
        assert_eq!(general, "general:project_id:1;signature:r");
        let mut root = Lines::flatten(value_members(&map), Strip::Root);
        root.sort(SortVariant::PhpNatural);
        assert_eq!(root.joined(), "general:project_id:1;general:signature:s");
    }

    #[test]
    fn variants_differ_only_in_order() {
        let value = json!({"customer": {"address": "a", "address2": "b"}, "items": (0..11).collect::<Vec<_>>()});
        let Value::Object(map) = value else {
            unreachable!()
        };
        let mut natural = Lines::flatten(value_members(&map), Strip::Nothing);
        natural.sort(SortVariant::PhpNatural);
        let mut by_line = natural.clone();
        by_line.sort(SortVariant::BytewiseByLine);
        assert!(!natural.same_order(&by_line));
        assert_ne!(natural.joined(), by_line.joined());
        assert!(
            by_line
                .joined()
                .starts_with("customer:address2:b;customer:address:a;items:0:0;items:10:10;")
        );
    }
}
