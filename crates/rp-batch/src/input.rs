//! The bytes under the CSV parser: line ends made `\n` ([`LineEnds`]) and the input hashed on
//! the way ([`Hashed`]).

use std::io::{BufReader, Chain, Cursor, Read};

use sha2::{Digest as _, Sha256};

/// The byte source of the CSV parser: the lines read to find the header, then the rest, with
/// every line end made `\n`.
pub(crate) type Source<R> = Chain<Cursor<Vec<u8>>, BufReader<LineEnds<Hashed<R>>>>;

/// The input as read, hashed on the way: at its end, what was read must be the batch the
/// reader was made for (the file did not change after its SHA-256 was taken).
pub(crate) struct Hashed<R> {
    inner: R,
    pub(crate) hasher: Sha256,
}

impl<R> Hashed<R> {
    /// `inner`, hashed from its first byte.
    pub(crate) fn new(inner: R) -> Hashed<R> {
        Hashed {
            inner,
            hasher: Sha256::new(),
        }
    }
}

impl<R: Read> Read for Hashed<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let read = self.inner.read(buf)?;
        self.hasher.update(buf.get(..read).unwrap_or_default());
        Ok(read)
    }
}

/// Turns `\r\n` and a lone `\r` into `\n`, and ends the input with `\n` if it does not:
/// every record then ends with exactly one `\n`, so its first line is known from the
/// parser's line count (the CSV parser's own record positions are off by one after a
/// `\r\n` and by the number of blank lines skipped).
pub(crate) struct LineEnds<R> {
    pub(crate) inner: R,
    /// The last byte read was `\r`: a `\n` right after it is dropped.
    after_cr: bool,
    /// The last byte given out was `\n` (or nothing was given out yet).
    ended: bool,
    /// The inner reader is at its end.
    done: bool,
}

impl<R: Read> LineEnds<R> {
    pub(crate) fn new(inner: R) -> LineEnds<R> {
        LineEnds {
            inner,
            after_cr: false,
            ended: true,
            done: false,
        }
    }
}

impl<R: Read> Read for LineEnds<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while !self.done && !buf.is_empty() {
            let read = self.inner.read(buf)?;
            if read == 0 {
                self.done = true;
                break;
            }
            let chunk = buf.get(..read).unwrap_or_default();
            if !self.after_cr && !chunk.contains(&b'\r') {
                // The usual case (LF files, and CRLF files in between their line ends).
                self.ended = chunk.last() == Some(&b'\n');
                return Ok(read);
            }
            // Copy the runs between `\r`s down over the bytes dropped so far.
            let mut out = 0;
            let mut at = 0;
            if self.after_cr && buf.first() == Some(&b'\n') {
                at = 1;
            }
            self.after_cr = false;
            while at < read {
                let next = buf
                    .get(at..read)
                    .and_then(|rest| rest.iter().position(|b| *b == b'\r'))
                    .map_or(read, |offset| at + offset);
                buf.copy_within(at..next, out);
                out += next - at;
                if next == read {
                    break;
                }
                if let Some(slot) = buf.get_mut(out) {
                    *slot = b'\n';
                }
                out += 1;
                at = next + 1;
                match buf.get(at..read).and_then(<[u8]>::first) {
                    Some(b'\n') => at += 1,
                    Some(_) => {}
                    None => self.after_cr = true,
                }
            }
            if out > 0 {
                self.ended = buf.get(out - 1) == Some(&b'\n');
                return Ok(out);
            }
        }
        match buf.first_mut() {
            Some(slot) if !self.ended => {
                *slot = b'\n';
                self.ended = true;
                Ok(1)
            }
            _ => Ok(0),
        }
    }
}
