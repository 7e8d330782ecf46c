//! Batches: a file of payouts registered once in the ledger, whose rows workers claim with
//! leases ([`BatchStore`]).
//!
//! A batch is registered whole, in one transaction, before a tenge moves: its header and
//! every row's cells as read from the file, so that any worker (any process, on any machine
//! sharing the ledger) can pay it without the file, and a report can be written from the ledger
//! alone. A worker **claims** rows with a lease on the ledger's clock, pays them, and marks
//! them **done** (the payout call finished, whatever its outcome); a row whose worker died is
//! taken over when its lease expires, or at once when the worker was a process of this host
//! that no longer exists. A row paid twice by two workers is impossible even then: each payout
//! is recorded under its payment ID before it is sent, and the client never sends a recorded
//! payout a second time while another call holds it.
//!
//! A **pass** pays every valid row once. When a pass is over (no valid row left undone),
//! [`BatchStore::reopen`] starts the next one with the rows whose payout is not settled (not
//! recorded, not sent, outcome unknown, `error`, …): running the same file again resumes it.

use std::fmt;
use std::time::{Duration, SystemTime};

use rp_payout::Error;
use rp_transport::BoxFuture;

/// A batch to register: what is known of the file before any row is paid.
#[derive(Clone, PartialEq, Eq)]
pub struct NewBatch {
    /// The batch's identity: the SHA-256 of the file, 64 lowercase hex digits.
    pub id: String,
    /// The file's name as given (for lists; never used to find the file).
    pub file_name: String,
    /// The file's delimiter (`b','` or `b';'`).
    pub delimiter: u8,
    /// The header row, CSV-encoded with the delimiter.
    pub header: Vec<u8>,
    /// Non-blank rows after the header.
    pub rows: u64,
    /// Rows that read as a payout.
    pub valid_rows: u64,
    /// The sum of the valid rows per currency: `(ISO 4217 code, minor units)`.
    pub totals: Vec<(String, u64)>,
    /// The limits the batch was confirmed with: `(limit, value)` pairs (`rp-batch` writes
    /// `rp_model::LimitKind::key` names, and `("currency", numeric ISO 4217 code)`), so that
    /// every worker holds the batch to them.
    pub limits: Vec<(String, u64)>,
}

impl fmt::Debug for NewBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewBatch")
            .field("id", &self.id)
            .field("file_name", &self.file_name)
            .field("rows", &self.rows)
            .field("valid_rows", &self.valid_rows)
            .field("totals", &self.totals)
            .field("limits", &self.limits)
            .finish_non_exhaustive()
    }
}

/// One row of a batch to register.
#[derive(Clone, PartialEq, Eq)]
pub struct NewBatchRow {
    /// The row number (1-based, non-blank rows after the header).
    pub row: u64,
    /// The line of the file it starts on.
    pub line: u64,
    /// Its payment ID, when it has one.
    pub payment_id: Option<String>,
    /// The SHA-256 of the request a valid row pays ([`request_sha256`]): a payout recorded
    /// under the row's payment ID is the row's only if its request has this hash (another
    /// payout may hold the ID: then the row is a `conflict`, never paid).
    pub request_sha256: Option<String>,
    /// Whether it reads as a payout (only valid rows are claimed and paid).
    pub valid: bool,
    /// Its cells as read, CSV-encoded with the batch's delimiter (phone numbers included:
    /// never log them).
    pub cells: Vec<u8>,
    /// Why it is invalid, in words.
    pub problems: Option<String>,
}

impl fmt::Debug for NewBatchRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewBatchRow")
            .field("row", &self.row)
            .field("line", &self.line)
            .field("payment_id", &self.payment_id)
            .field("valid", &self.valid)
            .finish_non_exhaustive()
    }
}

/// The rows of a batch to register, in row order; an `Err` (e.g. the file cannot be read
/// any more) abandons the registration: nothing of the batch is written.
pub type RowSource = Box<dyn Iterator<Item = Result<NewBatchRow, String>> + Send>;

/// The answer to [`BatchStore::register`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Registered {
    /// The batch and all its rows were written.
    New,
    /// The batch was already registered (nothing was written; the rows were not read).
    Existing,
    /// Nothing was written: valid rows of the batch use payment IDs the ledger holds for
    /// different payouts: a recorded payout (another request, or the merchant's metadata),
    /// or, when none is recorded, a valid row of another batch (two batches that would pay two
    /// payouts under one ID; whichever paid second would find a conflict). At most
    /// [`MAX_CLASHES`], in row order. Checked in the registration's transaction, so that of
    /// two batches registered at the same moment, the second sees the first (and what the
    /// first paid meanwhile).
    Clashes(Vec<RowClash>),
}

/// What a registration does when the ledger holds some of the batch's payment IDs for other
/// payouts ([`BatchStore::register_with`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnClash {
    /// Writes nothing and names them: [`Registered::Clashes`].
    Refuse,
    /// Registers rows whose payment ID a recorded payout holds all the same: such a row is
    /// never paid (when its turn comes, the payout under its ID is another's: a `conflict`
    /// row). For an operator who chose to send the other rows (`rp batch run --skip-invalid`).
    /// A row that another batch's row holds, none recorded yet, is still refused: it cannot be
    /// skipped, since whichever batch ran first would take the ID.
    Register,
}

/// Clashes [`Registered::Clashes`] lists, at most.
pub const MAX_CLASHES: usize = 100;

/// A row of a batch being registered whose payment ID the ledger holds for a different
/// payout.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RowClash {
    /// The row (1-based, non-blank rows after the header).
    pub row: u64,
    /// The line of the file it starts on.
    pub line: u64,
    /// Its payment ID.
    pub payment_id: String,
    /// The other batch's row holding it; `None`: a recorded payout does.
    pub held_by: Option<HeldRow>,
    /// The recorded payout holding it pays this row's very request, and differs by the
    /// merchant's metadata only (one made through the API, say): it is this row's payee's, and
    /// the row must not be paid again under another payment ID. `false` for another batch's
    /// row.
    pub same_request: bool,
}

/// A registered batch: what [`NewBatch`] said of it, and when it was registered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchInfo {
    /// As registered ([`NewBatch`]).
    pub batch: NewBatch,
    /// When it was registered (the ledger's clock).
    pub created_at: SystemTime,
    /// Stopped on purpose ([`BatchStore::set_paused`], e.g. Ctrl-C in `rp batch run`): no
    /// background worker resumes it; only an explicit run or resume does.
    pub paused: bool,
}

/// Where a batch stands: its rows counted by their payout's state.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BatchProgress {
    /// The batch.
    pub info: BatchInfo,
    /// Valid rows by their payout's state label ([`rp_payout::PayoutState::label`]);
    /// `not_recorded` for a valid row the ledger holds no payout for, `conflict` for one
    /// whose payment ID the ledger holds for a different payout (never paid). Most first.
    pub by_label: Vec<(String, u64)>,
    /// Valid rows this pass has not finished yet.
    pub undone: u64,
    /// Of those, the rows a worker holds under a lease that has not expired.
    pub claimed: u64,
    /// Valid rows this pass finished whose payout is recorded but not final (neither
    /// settled, nor `error`, nor `not_registered`, which only a rerun resends): waiting for a
    /// callback or a status.
    pub waiting: u64,
}

impl BatchProgress {
    /// Valid rows whose payout has the state labelled `label`.
    pub fn count(&self, label: &str) -> u64 {
        self.by_label
            .iter()
            .find(|(l, _)| l == label)
            .map_or(0, |(_, n)| *n)
    }

    /// The batch's state as the console and `rp batch list` show it.
    pub fn state(&self) -> BatchState {
        if self.claimed > 0 {
            BatchState::Running
        } else if self.undone > 0 && self.info.paused {
            BatchState::Paused
        } else if self.undone > 0 {
            BatchState::Stopped
        } else if self.waiting > 0 {
            BatchState::Waiting
        } else {
            BatchState::Done
        }
    }
}

/// A batch's state, derived from its rows ([`BatchProgress::state`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BatchState {
    /// A worker holds rows of it.
    Running,
    /// Rows are left to pay and no worker holds them (a worker died or gave up): a
    /// background worker (`rp serve`) or a rerun resumes it.
    Stopped,
    /// Stopped on purpose, rows left: only an explicit rerun or resume continues it.
    Paused,
    /// Every row was paid; some payouts wait for their final status.
    Waiting,
    /// Every row's payout is final, or was refused before it was sent.
    Done,
}

impl BatchState {
    /// `running`, `stopped`, `waiting` or `done`.
    pub fn as_str(self) -> &'static str {
        match self {
            BatchState::Running => "running",
            BatchState::Stopped => "stopped",
            BatchState::Paused => "paused",
            BatchState::Waiting => "waiting",
            BatchState::Done => "done",
        }
    }
}

impl fmt::Display for BatchState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A row a worker claimed: what it needs to pay it.
#[derive(Clone, PartialEq, Eq)]
pub struct ClaimedRow {
    /// The row number.
    pub row: u64,
    /// The line it starts on.
    pub line: u64,
    /// Its cells as registered.
    pub cells: Vec<u8>,
}

impl fmt::Debug for ClaimedRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClaimedRow")
            .field("row", &self.row)
            .field("line", &self.line)
            .finish_non_exhaustive()
    }
}

/// One registered row, for a report or a listing.
#[derive(Clone, PartialEq, Eq)]
pub struct BatchRow {
    /// As registered.
    pub row: NewBatchRow,
    /// Whether this pass finished it (always true for an invalid row).
    pub done: bool,
}

impl fmt::Debug for BatchRow {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BatchRow")
            .field("row", &self.row)
            .field("done", &self.done)
            .finish()
    }
}

/// A valid row of a batch holding a payment ID ([`BatchStore::held_elsewhere`]).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct HeldRow {
    /// The payment ID.
    pub payment_id: String,
    /// The batch whose row holds it.
    pub batch_id: String,
    /// The row's line in that batch's file.
    pub line: u64,
    /// The SHA-256 of the request the row pays ([`NewBatchRow::request_sha256`]).
    pub request_sha256: Option<String>,
}

/// Payment IDs asked of [`BatchStore::held_elsewhere`] at once, at most.
pub const MAX_HELD_QUERY: usize = 1000;

/// The longest lease a claim may ask for.
pub const MAX_LEASE: Duration = Duration::from_secs(24 * 3600);

/// Where the batches of one project are kept, and how workers share their rows. Every
/// write is atomic: a registration is one transaction, and a claim takes its rows in one
/// statement (after reading who holds live claims, to tell the dead from the living).
pub trait BatchStore: Send + Sync + fmt::Debug {
    /// Registers `batch` with every row `rows` yields, in one transaction, unless a batch with
    /// its ID is registered already ([`Registered::Existing`]: nothing is read or written), or
    /// the ledger holds some of its payment IDs for other payouts and `on_clash` is
    /// [`OnClash::Refuse`] ([`Registered::Clashes`]: nothing written).
    ///
    /// # Errors
    /// [`Error::Store`]: the ledger failed, or `rows` yielded an error (nothing is written).
    fn register_with(
        &self,
        batch: NewBatch,
        rows: RowSource,
        on_clash: OnClash,
    ) -> BoxFuture<'_, Result<Registered, Error>>;

    /// [`BatchStore::register_with`], refusing clashes ([`OnClash::Refuse`]).
    ///
    /// # Errors
    /// As [`BatchStore::register_with`].
    fn register(
        &self,
        batch: NewBatch,
        rows: RowSource,
    ) -> BoxFuture<'_, Result<Registered, Error>> {
        self.register_with(batch, rows, OnClash::Refuse)
    }

    /// Claims up to `max` valid rows of batch `id` that this pass has not finished and no
    /// other worker holds (its lease expired, or its process on this host is gone), lowest
    /// rows first, for `owner` until `lease` from now on the ledger's clock.
    ///
    /// # Errors
    /// [`Error::Store`].
    fn claim<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        lease: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<ClaimedRow>, Error>>;

    /// Extends the lease of every row of batch `id` that `owner` holds to `lease` from now;
    /// answers how many it holds.
    ///
    /// # Errors
    /// [`Error::Store`].
    fn renew<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<u64, Error>>;

    /// Marks `rows` of batch `id` done for this pass, those `owner` still holds; answers how
    /// many (a row another worker took over is left to it).
    ///
    /// # Errors
    /// [`Error::Store`].
    fn finish<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        rows: &'a [u64],
    ) -> BoxFuture<'a, Result<u64, Error>>;

    /// Gives back every row of batch `id` that `owner` holds and has not finished, for any
    /// worker to claim at once; answers how many.
    ///
    /// # Errors
    /// [`Error::Store`].
    fn release<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<u64, Error>>;

    /// When the pass of batch `id` is over (every valid row done), starts the next one with
    /// the valid rows whose payout is not settled ([`rp_payout::PayoutState::is_settled`]):
    /// not recorded, not sent, outcome unknown, waiting for a status, or ended in `error`
    /// (which the client resends under the same payment ID). Answers how many rows it
    /// reopened (0 while a pass is going).
    ///
    /// # Errors
    /// [`Error::Store`].
    fn reopen<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<u64, Error>>;

    /// Batches with rows left that no worker holds (its claims expired or were given back)
    /// and that are not paused: what a background worker resumes. At most `limit` IDs.
    ///
    /// # Errors
    /// [`Error::Store`].
    fn stopped(&self, limit: usize) -> BoxFuture<'_, Result<Vec<String>, Error>>;

    /// Marks batch `id` stopped on purpose (`paused`), or no longer; whether it is
    /// registered.
    ///
    /// # Errors
    /// [`Error::Store`].
    fn set_paused<'a>(&'a self, id: &'a str, paused: bool) -> BoxFuture<'a, Result<bool, Error>>;

    /// Batch `id` as registered, if it is: one row read, its rows not counted (see
    /// [`BatchStore::progress`]).
    ///
    /// # Errors
    /// [`Error::Store`].
    fn info<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<BatchInfo>, Error>>;

    /// Batch `id` and where it stands, if it is registered.
    ///
    /// # Errors
    /// [`Error::Store`].
    fn progress<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<BatchProgress>, Error>>;

    /// The batches, newest first: up to `limit` registered before `before` (a batch's
    /// `(created_at, id)`, from the last batch of the previous page).
    ///
    /// # Errors
    /// [`Error::Store`].
    fn list(
        &self,
        before: Option<(SystemTime, String)>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<BatchProgress>, Error>>;

    /// Up to `limit` rows of batch `id` after row `after` (0: from the first), in row order.
    ///
    /// # Errors
    /// [`Error::Store`].
    fn rows<'a>(
        &'a self,
        id: &'a str,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<BatchRow>, Error>>;

    /// The valid rows of batches other than `batch` that hold any of `payment_ids` (at most
    /// [`MAX_HELD_QUERY`]), paid or not yet, in no particular order: so that a payment ID
    /// another batch holds for a different payout is found before a batch is registered, not
    /// when the second of the two is paid.
    ///
    /// # Errors
    /// [`Error::Store`]; more than [`MAX_HELD_QUERY`] payment IDs.
    fn held_elsewhere<'a>(
        &'a self,
        batch: &'a str,
        payment_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<HeldRow>, Error>>;
}

/// How a new payout's insert names the batch row that holds its payment ID
/// ([`rp_payout::Inserted::Held`]): `batch 5f3a09c1d2e4b6a87c90 (its line 3)`.
pub(crate) fn holder_name(batch_id: &str, line: u64) -> String {
    format!(
        "batch {} (its line {line})",
        batch_id.get(..20).unwrap_or(batch_id)
    )
}

/// `payment_ids` is no longer than [`MAX_HELD_QUERY`].
pub(crate) fn check_held_query(payment_ids: &[String]) -> Result<(), Error> {
    if payment_ids.len() > MAX_HELD_QUERY {
        return Err(Error::store(
            "find the batches holding payment IDs",
            format!(
                "{} payment IDs asked at once; at most {MAX_HELD_QUERY}",
                payment_ids.len()
            ),
        ));
    }
    Ok(())
}

// What every backend shares.

/// The SHA-256 (hex) of `request` as the ledger stores it: what a batch row records of the
/// payout it pays, to tell its payout from another holding the same payment ID.
///
/// # Errors
/// [`Error::Store`] if the request cannot be serialised (it always can).
pub fn request_sha256(request: &rp_model::wire::PayoutRequest) -> Result<String, Error> {
    crate::stored::request_text(request)
        .map(|(_, hash)| hash)
        .map_err(|e| Error::store("hash a payout request", e))
}

/// The owners among `tokens` (claims with a live lease) whose process on this host is gone:
/// their rows are taken over at once.
pub(crate) fn dead_owners(tokens: impl IntoIterator<Item = String>) -> Vec<String> {
    tokens
        .into_iter()
        .filter(|token| rp_payout::Owner::liveness_of(token) == rp_payout::Liveness::Dead)
        .collect()
}

/// Named amounts as stored (a batch's totals and limits): JSON `[["KZT", 150050], …]`.
pub(crate) fn pairs_text(pairs: &[(String, u64)]) -> String {
    serde_json::to_string(pairs).unwrap_or_else(|_| "[]".to_owned())
}

/// The pairs of [`pairs_text`].
pub(crate) fn pairs_of(text: &str) -> Result<Vec<(String, u64)>, String> {
    serde_json::from_str(text).map_err(|e| format!("a batch's stored amounts are unreadable: {e}"))
}

/// Checks a lease a worker asks for before it reaches the ledger (`what`: the operation).
pub(crate) fn check_lease(what: &str, lease: Duration) -> Result<(), Error> {
    if lease.is_zero() || lease > MAX_LEASE {
        return Err(Error::store(
            what,
            format!("a lease of {lease:?} is out of range (more than zero, at most a day)"),
        ));
    }
    Ok(())
}

/// A batch ID is 64 lowercase hex digits (a SHA-256).
pub(crate) fn check_id(id: &str) -> Result<(), Error> {
    if id.len() == 64 && id.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        Ok(())
    } else {
        Err(Error::store(
            "find a batch",
            format!("{id:?} is not a batch ID (64 lowercase hex digits: the file's SHA-256)"),
        ))
    }
}

/// One group of a batch's valid rows, as a backend counts them: the payout's state label
/// (`None`: not recorded), rows, undone rows, finished rows waiting for a final status.
pub(crate) struct LabelCount {
    pub(crate) label: Option<String>,
    pub(crate) rows: u64,
    pub(crate) undone: u64,
    pub(crate) waiting: u64,
}

/// A batch's progress from its counts and the owners of live claims (`(owner, rows)`): rows
/// held by a process of this host that is gone do not count as claimed.
pub(crate) fn progress_of(
    info: BatchInfo,
    counts: Vec<LabelCount>,
    claims: Vec<(String, u64)>,
) -> BatchProgress {
    let mut by_label: Vec<(String, u64)> = Vec::new();
    let (mut undone, mut waiting) = (0, 0);
    for count in counts {
        undone += count.undone;
        waiting += count.waiting;
        let label = count.label.unwrap_or_else(|| "not_recorded".to_owned());
        match by_label.iter_mut().find(|(l, _)| *l == label) {
            Some((_, n)) => *n += count.rows,
            None => by_label.push((label, count.rows)),
        }
    }
    by_label.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let claimed = claims
        .into_iter()
        .filter(|(owner, _)| rp_payout::Owner::liveness_of(owner) != rp_payout::Liveness::Dead)
        .map(|(_, rows)| rows)
        .sum();
    BatchProgress {
        info,
        by_label,
        undone,
        claimed,
        waiting,
    }
}

/// A count or row number as stored (SQLite and PostgreSQL integers are signed).
pub(crate) fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

/// A stored count or row number (never negative; a negative one reads as 0).
pub(crate) fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}
