//! A small stack buffer between the writers of a string to sign and the HMAC: the string is
//! written in many small pieces (a `;`, a path, a `:`, a value), and handed on in a few large
//! chunks, so that it is never built whole and the hash sees few `update` calls.

/// The buffer's size: whole SHA-512 blocks (128 bytes), so that a full buffer is hashed
/// straight from it.
const SINK_BYTES: usize = 512;

/// Pieces of at most this many bytes can be copied as one fixed-size move, bytes past their
/// end included, by [`Sink::write_from`]; the buffer has this much room past
/// [`SINK_BYTES`] for it.
pub(crate) const SLACK: usize = 64;

/// Collects bytes and hands them to `flush` in chunks (see the module documentation). The
/// concatenation of what `flush` receives is exactly what was written, in order.
pub(crate) struct Sink<F: FnMut(&[u8])> {
    /// `buf[..len]` is what is kept; `len < SINK_BYTES` between calls.
    buf: [u8; SINK_BYTES + SLACK],
    len: usize,
    flush: F,
}

impl<F: FnMut(&[u8])> Sink<F> {
    /// An empty sink that hands its bytes to `flush`.
    pub(crate) fn new(flush: F) -> Self {
        Sink {
            buf: [0; SINK_BYTES + SLACK],
            len: 0,
            flush,
        }
    }

    /// Appends `bytes`.
    #[inline]
    pub(crate) fn write(&mut self, bytes: &[u8]) {
        let end = self.len + bytes.len();
        if end < SINK_BYTES
            && let Some(room) = self.buf.get_mut(self.len..end)
        {
            copy(room, bytes);
            self.len = end;
        } else {
            self.spill(bytes);
        }
    }

    /// Appends `source[start..start + len]`. When `len` is at most [`SLACK`] and `source`
    /// has [`SLACK`] bytes from `start`, they are all copied in one fixed-size move (no
    /// branch on the length, which varies from piece to piece and was mispredicted); the
    /// bytes past the piece are overwritten by the next one, or never handed on.
    #[inline]
    pub(crate) fn write_from(&mut self, source: &[u8], start: usize, len: usize) {
        if len <= SLACK
            && let Some(from) = source.get(start..).and_then(<[u8]>::first_chunk::<SLACK>)
            && let Some(to) = self
                .buf
                .get_mut(self.len..)
                .and_then(<[u8]>::first_chunk_mut::<SLACK>)
        {
            *to = *from;
            self.len += len;
            if self.len >= SINK_BYTES {
                self.rotate();
            }
        } else if let Some(piece) = source.get(start..start + len) {
            self.write(piece);
        }
    }

    /// Appends one byte.
    #[inline]
    pub(crate) fn byte(&mut self, byte: u8) {
        if let Some(slot) = self.buf.get_mut(self.len) {
            *slot = byte;
            self.len += 1;
            if self.len >= SINK_BYTES {
                self.rotate();
            }
        }
    }

    /// Hands on the first [`SINK_BYTES`] and keeps the rest (less than [`SLACK`] bytes).
    #[cold]
    fn rotate(&mut self) {
        if let Some(full) = self.buf.get(..SINK_BYTES) {
            (self.flush)(full);
        }
        let rest = self.len.saturating_sub(SINK_BYTES);
        self.buf.copy_within(SINK_BYTES..SINK_BYTES + rest, 0);
        self.len = rest;
    }

    /// Appends `bytes`, which do not fit in what is left of the buffer: fills it, hands it
    /// on, hands on whole buffers of the rest directly, and keeps what is left.
    #[cold]
    fn spill(&mut self, bytes: &[u8]) {
        let room = SINK_BYTES.saturating_sub(self.len).min(bytes.len());
        let (head, rest) = bytes.split_at(room);
        if let Some(tail) = self.buf.get_mut(self.len..self.len + room) {
            tail.copy_from_slice(head);
        }
        self.len += room;
        if self.len < SINK_BYTES {
            return;
        }
        if let Some(full) = self.buf.get(..SINK_BYTES) {
            (self.flush)(full);
        }
        let direct = rest.len() - rest.len() % SINK_BYTES;
        let (whole, left) = rest.split_at(direct);
        if !whole.is_empty() {
            (self.flush)(whole);
        }
        if let Some(start) = self.buf.get_mut(..left.len()) {
            start.copy_from_slice(left);
        }
        self.len = left.len();
    }

    /// Hands on what is left in the buffer.
    pub(crate) fn finish(mut self) {
        if let Some(left) = self.buf.get(..self.len)
            && !left.is_empty()
        {
            (self.flush)(left);
        }
    }
}

/// Copies `src` into `dst`, of the same length. Up to 64 bytes are copied inline with two
/// overlapping fixed-size moves (the pieces of a string to sign are short, and a call to
/// `memcpy` for each cost more than the copy itself); longer slices call `memcpy`.
#[inline]
pub(crate) fn copy(dst: &mut [u8], src: &[u8]) {
    let len = src.len();
    if len != dst.len() {
        return;
    }
    if len > 64 {
        dst.copy_from_slice(src);
    } else if len >= 32 {
        copy_ends::<32>(dst, src);
    } else if len >= 16 {
        copy_ends::<16>(dst, src);
    } else if len >= 8 {
        copy_ends::<8>(dst, src);
    } else if len >= 4 {
        copy_ends::<4>(dst, src);
    } else {
        for (d, s) in dst.iter_mut().zip(src) {
            *d = *s;
        }
    }
}

/// Copies the first and the last `N` bytes of `src` (of `N` to `2 * N` bytes) into `dst`, of
/// the same length: the whole of it.
#[inline(always)]
fn copy_ends<const N: usize>(dst: &mut [u8], src: &[u8]) {
    if let (Some(d), Some(s)) = (dst.first_chunk_mut::<N>(), src.first_chunk::<N>()) {
        *d = *s;
    }
    if let (Some(d), Some(s)) = (dst.last_chunk_mut::<N>(), src.last_chunk::<N>()) {
        *d = *s;
    }
}

/// The decimal digits of `n` in `digits` (ASCII), returned as the slice holding them.
pub(crate) fn u64_digits(mut n: u64, digits: &mut [u8; 20]) -> &[u8] {
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
    digits.get(first..).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whatever the pieces, the chunks handed on concatenate to them.
    #[test]
    fn chunks_concatenate_to_the_pieces() {
        for piece_len in [0, 1, 7, 127, 128, 129, 511, 512, 513, 1100, 2048] {
            for lead in [0, 1, 300, 511] {
                let mut seen = Vec::new();
                let mut expected = Vec::new();
                let mut sink = Sink::new(|chunk: &[u8]| seen.extend_from_slice(chunk));
                for i in 0..lead {
                    let b = u8::try_from(i % 251).unwrap();
                    sink.byte(b);
                    expected.push(b);
                }
                for round in 0..3u8 {
                    let piece: Vec<u8> = (0..piece_len)
                        .map(|i| u8::try_from(i % 13).unwrap() + round)
                        .collect();
                    sink.write(&piece);
                    expected.extend_from_slice(&piece);
                    sink.byte(b';');
                    expected.push(b';');
                    // Pieces of a longer source, with and without room past them.
                    let source: Vec<u8> = (0..piece_len + 70)
                        .map(|i| u8::try_from(i % 7).unwrap() + 100 + round)
                        .collect();
                    for start in [0, 3, 69, piece_len, piece_len + 6] {
                        for len in [0, 1, 63, 64, 65, piece_len] {
                            if let Some(part) = source.get(start..start + len) {
                                sink.write_from(&source, start, len);
                                expected.extend_from_slice(part);
                            }
                        }
                    }
                }
                sink.finish();
                assert_eq!(seen, expected, "piece {piece_len}, lead {lead}");
            }
        }
    }

    #[test]
    fn copies_any_length() {
        let src: Vec<u8> = (0..100).collect();
        for len in 0..=src.len() {
            let mut dst = vec![0xff; len];
            copy(&mut dst, &src[..len]);
            assert_eq!(dst, &src[..len]);
        }
    }

    #[test]
    fn digits_of_integers() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, u64::MAX] {
            let mut digits = [0; 20];
            assert_eq!(u64_digits(n, &mut digits), n.to_string().as_bytes());
        }
    }
}
