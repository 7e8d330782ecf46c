//! What can be wrong with a batch file: with the file as a whole ([`FileError`], reading
//! stops) or with one row ([`RowError`], reading goes on).

use std::fmt;

use crate::column::Column;

/// How to convert a file saved in Windows-1251 (Excel's default for Cyrillic on Windows).
pub(crate) const ICONV_HINT: &str = "if it was saved as Windows-1251 (Excel's \"CSV\" on a Cyrillic Windows), \
     save it as \"CSV UTF-8\" or convert it: iconv -f WINDOWS-1251 -t UTF-8 FILE > FILE.utf8.csv";

/// A problem with the file as a whole: nothing after it can be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FileError {
    /// The file cannot be read.
    #[error("cannot read the file: {source}")]
    Io {
        /// The I/O error.
        #[from]
        source: std::io::Error,
    },
    /// What was read is not the batch the reader was made for: the file changed after its
    /// SHA-256 was taken (saved again, or still being written). Nothing read from it may be
    /// used.
    #[error(
        "the file changed while it was read (what was read has SHA-256 {now}, the file had {was}); nothing of it is used: wait until it is written, then check it again"
    )]
    Changed {
        /// The identity the reader was made for.
        was: crate::id::BatchId,
        /// The SHA-256 of what was read.
        now: crate::id::BatchId,
    },
    /// The file has no header row.
    #[error(
        "the file is empty; its first line must be the header, e.g. `phone,amount,customer_id`"
    )]
    Empty,
    /// The file starts with a UTF-16 byte order mark (Excel's "Unicode text").
    #[error(
        "the file is UTF-16; save it as \"CSV UTF-8\" or convert it: iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8.csv"
    )]
    Utf16,
    /// The header row is not valid UTF-8.
    #[error("line 1: the header is not UTF-8 (byte 0x{byte:02X}); {ICONV_HINT}")]
    HeaderNotUtf8 {
        /// The first byte that is not UTF-8.
        byte: u8,
    },
    /// The header names columns the format does not have.
    #[error(
        "line 1: unknown column{} {}; the columns are {}",
        if names.len() == 1 { "" } else { "s" },
        Quoted(names),
        Known
    )]
    UnknownColumns {
        /// Every unknown name, as written.
        names: Vec<String>,
    },
    /// A column appears twice in the header.
    #[error("line 1: column {column} appears twice in the header")]
    DuplicateColumn {
        /// The column.
        column: Column,
    },
    /// Required columns are missing from the header.
    #[error(
        "line 1: missing required column{} {}; every file needs phone, amount and customer_id",
        if columns.len() == 1 { "" } else { "s" },
        Listed(columns)
    )]
    MissingColumns {
        /// Every missing column.
        columns: Vec<Column>,
    },
    /// The CSV itself cannot be read at this line.
    #[error("line {line}: {message}")]
    Csv {
        /// The line (1-based).
        line: u64,
        /// What the CSV reader said.
        message: String,
    },
}

struct Quoted<'a>(&'a [String]);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, name) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            write!(f, "{name:?}")?;
        }
        Ok(())
    }
}

struct Listed<'a>(&'a [Column]);

impl fmt::Display for Listed<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, column) in self.0.iter().enumerate() {
            if index > 0 {
                f.write_str(", ")?;
            }
            f.write_str(column.name())?;
        }
        Ok(())
    }
}

struct Known;

impl fmt::Display for Known {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        Listed(&Column::ALL).fmt(f)
    }
}

/// What kind of problem a [`RowError`] is, for programs that sort them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RowErrorKind {
    /// A cell is not UTF-8 (the file is in another encoding).
    NotUtf8,
    /// The row has more or fewer cells than the header.
    FieldCount,
    /// A required cell is empty.
    Missing,
    /// A value cannot be read or breaks a rule of the payout (phone, amount, ID, …).
    Invalid,
    /// A signed text value contains `;`, the signature's line separator.
    SeparatorInValue,
    /// The payment ID is already used by an earlier row of the file.
    DuplicatePaymentId,
    /// The payment ID has the form of the IDs derived for this batch.
    ReservedPaymentId,
    /// A limit would be exceeded (see [`crate::Limits`]).
    Limit,
}

impl RowErrorKind {
    /// A stable name for programs, e.g. `"duplicate_payment_id"`.
    pub fn key(self) -> &'static str {
        match self {
            RowErrorKind::NotUtf8 => "not_utf8",
            RowErrorKind::FieldCount => "field_count",
            RowErrorKind::Missing => "missing",
            RowErrorKind::Invalid => "invalid",
            RowErrorKind::SeparatorInValue => "separator_in_value",
            RowErrorKind::DuplicatePaymentId => "duplicate_payment_id",
            RowErrorKind::ReservedPaymentId => "reserved_payment_id",
            RowErrorKind::Limit => "limit",
        }
    }
}

/// A problem with one row: its line, the column when there is one, and what is wrong.
///
/// Displays as `line 17, column amount: 3 fraction digits; KZT has 2`. Phone numbers are
/// masked in every message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowError {
    /// The line the row starts on (1-based, the header is line 1).
    pub line: u64,
    /// The row number (1-based, counting the non-blank rows after the header).
    pub row: u64,
    /// The column, when the problem is in one cell.
    pub column: Option<Column>,
    /// What kind of problem it is.
    pub kind: RowErrorKind,
    /// What is wrong and, where it helps, what to write instead.
    pub message: String,
}

impl fmt::Display for RowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.column {
            Some(column) => write!(f, "line {}, column {column}: {}", self.line, self.message),
            None => write!(f, "line {}: {}", self.line, self.message),
        }
    }
}

impl std::error::Error for RowError {}
