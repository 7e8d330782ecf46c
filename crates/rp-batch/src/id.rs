//! The identity of a batch (the SHA-256 of its file) and the payment IDs derived from it.

use std::fmt;
use std::io::Read;
use std::path::Path;

use rp_model::PaymentId;
use sha2::{Digest, Sha256};

/// The identity of a batch: the SHA-256 of the file's bytes, exactly as stored.
///
/// The same file run again is the same batch (`rp batch run` resumes it). A file changed in
/// any byte is another batch: rows without a `payment_id` then get other IDs, so **resume a
/// partly run file unchanged**, or give every row its own `payment_id`.
///
/// ```
/// use rp_batch::BatchId;
///
/// let id = BatchId::of_bytes(b"phone,amount,customer_id\n");
/// assert_eq!(id.to_string().len(), 64);
/// let derived = id.derive_payment_id(17)?;
/// assert_eq!(derived.as_str(), format!("rpb-{}-17", id.short()));
/// # Ok::<(), rp_model::Error>(())
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct BatchId([u8; 32]);

/// How many hex digits of the batch's SHA-256 a derived payment ID carries (80 bits).
const SHORT_HEX: usize = 20;

impl std::str::FromStr for BatchId {
    type Err = String;

    /// A batch ID written as [`BatchId`]'s `Display` writes it: 64 hex digits.
    fn from_str(text: &str) -> Result<BatchId, String> {
        let bad = || format!("{text:?} is not a batch ID (64 hex digits: the file's SHA-256)");
        if text.len() != 64 || !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(bad());
        }
        let mut bytes = [0u8; 32];
        for (i, byte) in bytes.iter_mut().enumerate() {
            let pair = text.get(2 * i..2 * i + 2).ok_or_else(bad)?;
            *byte = u8::from_str_radix(pair, 16).map_err(|_| bad())?;
        }
        Ok(BatchId(bytes))
    }
}

impl BatchId {
    /// The identity of a file held in memory.
    pub fn of_bytes(bytes: &[u8]) -> BatchId {
        BatchId(Sha256::digest(bytes).into())
    }

    /// The identity of everything `reader` yields, read in blocks (memory stays flat).
    ///
    /// # Errors
    /// The reader's I/O error.
    pub fn of_reader(mut reader: impl Read) -> std::io::Result<BatchId> {
        let mut hasher = Sha256::new();
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            let read = match reader.read(&mut buffer) {
                Ok(0) => break,
                Ok(read) => read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(error) => return Err(error),
            };
            hasher.update(buffer.get(..read).unwrap_or_default());
        }
        Ok(BatchId(hasher.finalize().into()))
    }

    /// The identity of the file at `path`.
    ///
    /// # Errors
    /// The I/O error opening or reading it.
    pub fn of_file(path: &Path) -> std::io::Result<BatchId> {
        BatchId::of_reader(std::fs::File::open(path)?)
    }

    /// The identity whose SHA-256 is `digest`.
    pub(crate) fn from_digest(digest: [u8; 32]) -> BatchId {
        BatchId(digest)
    }

    /// The SHA-256 as 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// The first 20 hex digits (80 bits): the batch's part of a derived payment ID.
    pub fn short(&self) -> String {
        let mut hex = self.to_string();
        hex.truncate(SHORT_HEX);
        hex
    }

    /// The prefix of every payment ID derived for this batch: `rpb-` + [`BatchId::short`] + `-`.
    pub fn derived_prefix(&self) -> String {
        format!("rpb-{}-", self.short())
    }

    /// The payment ID of row `row` (1-based, counting the non-blank rows after the header)
    /// when the row has none: `rpb-<first 20 hex digits of the file's SHA-256>-<row>`, e.g.
    /// `rpb-3f1c0e5a9b2d4c6e8f01-17`.
    ///
    /// Deterministic: the same file derives the same IDs on every run, so a rerun resumes the
    /// same payouts instead of paying them again. At most 45 ASCII characters, no `;`, no
    /// spaces: within [`PaymentId`]'s rules. A row whose own `payment_id` starts with this
    /// batch's prefix is refused, so an explicit ID never collides with a derived one.
    ///
    /// # Errors
    /// None in practice (the form always satisfies [`PaymentId::new`]); the `Result` is
    /// [`PaymentId::new`]'s.
    pub fn derive_payment_id(&self, row: u64) -> Result<PaymentId, rp_model::Error> {
        PaymentId::new(format!("{}{row}", self.derived_prefix()))
    }
}

impl fmt::Display for BatchId {
    /// The 64 lower-case hex digits of the SHA-256.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for BatchId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "BatchId({self})")
    }
}
