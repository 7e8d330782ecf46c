//! The streaming reader: one record at a time, each one a checked [`Payout`] or the list of
//! what is wrong with it.

use std::collections::HashSet;
use std::fs::File;
use std::hash::{BuildHasherDefault, Hasher};
use std::io::{BufRead, BufReader, Cursor, Read};
use std::net::IpAddr;
use std::path::Path;

use sha2::Digest as _;

use rp_model::{
    Currency, CustomerId, Error as ModelError, Money, Msisdn, Operator, PaymentId, Payout,
};

use crate::column::{Column, Header};
use crate::error::{FileError, ICONV_HINT, RowError, RowErrorKind};
use crate::id::BatchId;
use crate::input::{Hashed, LineEnds, Source};

/// The message for a `;` in a signed value (the same rule as the `Payout` builder's).
const SEPARATOR_MESSAGE: &str = "contains `;`, which the platform's signature uses as its line separator; remove it or write `,` instead";

/// One row that reads as a payout.
#[derive(Clone, Debug, PartialEq)]
pub struct Row {
    /// The line the row starts on (1-based; the header is line 1).
    pub line: u64,
    /// The row number (1-based, counting the non-blank rows after the header). Derived
    /// payment IDs use it.
    pub row: u64,
    /// The payout, built with [`Payout::builder`]: every rule of the builder holds.
    pub payout: Payout,
    /// True when the file gave no `payment_id` and it was derived
    /// ([`BatchId::derive_payment_id`]).
    pub payment_id_derived: bool,
}

/// One row that does not read as a payout: every problem found in it.
#[derive(Clone, Debug, PartialEq)]
pub struct InvalidRow {
    /// The line the row starts on (1-based; the header is line 1).
    pub line: u64,
    /// The row number (1-based, counting the non-blank rows after the header).
    pub row: u64,
    /// The row's payment ID, when it has a valid one (given or derived).
    pub payment_id: Option<PaymentId>,
    /// Every problem, in column order of the format; never empty.
    pub errors: Vec<RowError>,
}

/// What the reader makes of one non-blank row.
// Each record is moved once, to the caller: boxing the payout would cost an allocation a row.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq)]
pub enum Record {
    /// A payout.
    Valid(Row),
    /// What is wrong with the row.
    Invalid(InvalidRow),
}

impl Record {
    /// The line the row starts on.
    pub fn line(&self) -> u64 {
        match self {
            Record::Valid(row) => row.line,
            Record::Invalid(row) => row.line,
        }
    }

    /// The row number (1-based, non-blank rows after the header).
    pub fn row(&self) -> u64 {
        match self {
            Record::Valid(row) => row.row,
            Record::Invalid(row) => row.row,
        }
    }
}

/// Reads a batch file one row at a time. Memory stays flat whatever the number of rows, but
/// for 8 to 16 bytes per row that gives its own `payment_id` (to find duplicates).
///
/// The first non-blank line is the header; its delimiter (`,` or `;`) is the one it has more
/// of outside quotes. A UTF-8 byte order mark is skipped; CRLF line ends, quoted fields and
/// blank lines (also `;;;` rows spreadsheets leave) are fine.
///
/// ```
/// use rp_batch::{BatchId, BatchReader, Record};
///
/// let file = "Phone;Amount;Customer_ID\r\n8 (701) 123-45-67;1 500,50;c-1\r\n+7 702 000 00 00;1500,505;c-2\r\n";
/// let mut reader = BatchReader::new(file.as_bytes(), BatchId::of_bytes(file.as_bytes()))?;
/// assert_eq!(reader.delimiter(), b';');
/// let Some(Ok(Record::Valid(row))) = reader.next() else { panic!() };
/// assert_eq!(row.payout.amount().minor_units(), 150_050);
/// assert!(row.payment_id_derived);
/// let Some(Ok(Record::Invalid(bad))) = reader.next() else { panic!() };
/// assert_eq!(bad.errors[0].to_string(), "line 3, column amount: 3 fraction digits; KZT has 2");
/// assert!(reader.next().is_none());
/// # Ok::<(), rp_batch::FileError>(())
/// ```
pub struct BatchReader<R: Read> {
    csv: csv::Reader<Source<R>>,
    header: Header,
    delimiter: u8,
    batch: BatchId,
    derived_prefix: String,
    record: csv::ByteRecord,
    rows: u64,
    /// The fingerprint of every payment ID the file gave so far.
    seen: HashSet<u64, BuildHasherDefault<PassThrough>>,
    /// The line of the first cell that was not UTF-8 (the conversion hint is given once).
    first_not_utf8: Option<u64>,
    /// The line after the last record read (the header at first).
    next_line: u64,
}

impl BatchReader<File> {
    /// Opens the file at `path`: reads it once for its identity ([`BatchId::of_file`]), then
    /// opens it again to read its rows.
    ///
    /// # Errors
    /// [`FileError::Io`], or a header problem (see [`BatchReader::new`]).
    pub fn open(path: &Path) -> Result<BatchReader<File>, FileError> {
        let batch = BatchId::of_file(path)?;
        BatchReader::new(File::open(path)?, batch)
    }
}

impl<R: Read> BatchReader<R> {
    /// Reads the header from `input`, the file of batch `batch` (its SHA-256: see
    /// [`BatchId::of_bytes`], [`BatchId::of_reader`]). What is read is hashed on the way: at
    /// the end of the input, [`BatchReader::next_record`] fails with [`FileError::Changed`]
    /// unless it was batch `batch` (a file that changed after its SHA-256 was taken).
    ///
    /// # Errors
    /// [`FileError::Empty`], [`FileError::Utf16`], [`FileError::HeaderNotUtf8`],
    /// [`FileError::UnknownColumns`], [`FileError::DuplicateColumn`],
    /// [`FileError::MissingColumns`], [`FileError::Io`], [`FileError::Csv`].
    pub fn new(input: R, batch: BatchId) -> Result<BatchReader<R>, FileError> {
        // Small: the parser reads in larger blocks, which then go past this buffer.
        let mut input = BufReader::with_capacity(8 * 1024, LineEnds::new(Hashed::new(input)));
        // Read up to the first non-blank line: it is the header, and tells the delimiter.
        let mut head = Vec::new();
        let header_start = loop {
            let start = head.len();
            if input.read_until(b'\n', &mut head)? == 0 {
                return Err(FileError::Empty);
            }
            if start == 0 {
                if head.starts_with(&[0xFF, 0xFE]) || head.starts_with(&[0xFE, 0xFF]) {
                    return Err(FileError::Utf16);
                }
                if head.starts_with(&[0xEF, 0xBB, 0xBF]) {
                    head.drain(..3);
                }
            }
            let line = head.get(start.min(head.len())..).unwrap_or_default();
            if !line.iter().all(u8::is_ascii_whitespace) {
                break start.min(head.len());
            }
        };
        let delimiter = detect_delimiter(head.get(header_start..).unwrap_or_default());
        let mut csv = csv::ReaderBuilder::new()
            .delimiter(delimiter)
            .has_headers(false)
            .flexible(true)
            .buffer_capacity(64 * 1024)
            .from_reader(Cursor::new(head).chain(input));
        let mut record = csv::ByteRecord::new();
        if !csv
            .read_byte_record(&mut record)
            .map_err(|e| csv_error(&e, 1))?
        {
            return Err(FileError::Empty);
        }
        let mut cells = Vec::with_capacity(record.len());
        for cell in &record {
            match std::str::from_utf8(cell) {
                Ok(text) => cells.push(text),
                Err(error) => {
                    let byte = cell.get(error.valid_up_to()).copied().unwrap_or_default();
                    return Err(FileError::HeaderNotUtf8 { byte });
                }
            }
        }
        let header = Header::parse(cells)?;
        let next_line = csv.position().line();
        Ok(BatchReader {
            csv,
            header,
            delimiter,
            derived_prefix: batch.derived_prefix(),
            batch,
            record: csv::ByteRecord::new(),
            rows: 0,
            seen: HashSet::default(),
            first_not_utf8: None,
            next_line,
        })
    }

    /// The header: which column is where.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The delimiter found in the header: `b','` or `b';'`.
    pub fn delimiter(&self) -> u8 {
        self.delimiter
    }

    /// The batch's identity.
    pub fn batch_id(&self) -> BatchId {
        self.batch
    }

    /// How many non-blank rows have been read so far.
    pub fn rows_read(&self) -> u64 {
        self.rows
    }

    /// The cells of the row last returned, as raw bytes in file order (for a report that
    /// repeats every input row).
    pub fn last_cells(&self) -> impl Iterator<Item = &[u8]> + '_ {
        self.record.iter()
    }

    /// The row last returned, CSV-encoded with the file's delimiter, as a ledger keeps it
    /// ([`BatchReader::read_stored`] reads it back).
    pub fn last_cells_encoded(&self) -> Vec<u8> {
        encode(&self.record, self.delimiter)
    }

    /// The header as a ledger keeps it: the column names in file order, CSV-encoded with the
    /// file's delimiter.
    pub fn header_encoded(&self) -> Vec<u8> {
        let names =
            (0..self.header.width()).map(|i| self.header.column_at(i).map_or("", Column::name));
        encode(
            &csv::ByteRecord::from(names.collect::<Vec<_>>()),
            self.delimiter,
        )
    }

    /// Reads a row as a ledger keeps it ([`BatchReader::last_cells_encoded`]) as row `row`,
    /// starting on line `line`, of this reader's batch: the same checks and the same derived
    /// payment ID as when the file was read. (That no two rows share a payment ID was checked
    /// when the whole file was read; it is not checked again here.)
    ///
    /// # Errors
    /// [`FileError::Csv`] when `cells` is not one CSV record.
    pub fn read_stored(&mut self, row: u64, line: u64, cells: &[u8]) -> Result<Record, FileError> {
        let mut parser = csv::ReaderBuilder::new()
            .delimiter(self.delimiter)
            .has_headers(false)
            .flexible(true)
            .from_reader(cells);
        if !parser
            .read_byte_record(&mut self.record)
            .map_err(|e| csv_error(&e, line))?
        {
            self.record.clear();
        }
        self.seen.clear();
        self.rows = row;
        Ok(self.read_row(line))
    }

    /// Reads the next non-blank row.
    ///
    /// # Errors
    /// [`FileError::Io`] or [`FileError::Csv`]: the rest of the file cannot be read;
    /// [`FileError::Changed`] at the end: what was read is not the batch the reader was made
    /// for. A row that is wrong is not an error here but a [`Record::Invalid`].
    pub fn next_record(&mut self) -> Result<Option<Record>, FileError> {
        loop {
            let line = self.csv.position().line();
            if !self
                .csv
                .read_byte_record(&mut self.record)
                .map_err(|e| csv_error(&e, line))?
            {
                return self.check_identity().map(|()| None);
            }
            if self
                .record
                .iter()
                .all(|cell| cell.iter().all(u8::is_ascii_whitespace))
            {
                self.next_line = self.csv.position().line();
                continue;
            }
            // Every record ends with one `\n` (see `LineEnds`): it starts as many lines
            // before the parser's count as it has line ends, its own included.
            let inside: u64 = self
                .record
                .iter()
                .map(|cell| cell.iter().filter(|b| **b == b'\n').count() as u64)
                .sum();
            // A quote left open swallows the rest of the file, final line end included:
            // never before the line where the previous record ended.
            let line = self
                .csv
                .position()
                .line()
                .saturating_sub(inside + 1)
                .max(self.next_line);
            self.next_line = self.csv.position().line();
            self.rows += 1;
            return Ok(Some(self.read_row(line)));
        }
    }

    /// At the end of the input: what was read must be the batch this reader was made for.
    fn check_identity(&self) -> Result<(), FileError> {
        let hashed = &self.csv.get_ref().get_ref().1.get_ref().inner;
        let now = BatchId::from_digest(hashed.hasher.clone().finalize().into());
        if now == self.batch {
            Ok(())
        } else {
            Err(FileError::Changed {
                was: self.batch,
                now,
            })
        }
    }

    /// Turns the current record into a [`Record`].
    fn read_row(&mut self, line: u64) -> Record {
        let row = self.rows;
        let mut problems = Problems {
            line,
            row,
            errors: Vec::new(),
        };
        let width = self.header.width();
        let cells = self.record.len();
        let extra_cells_empty = self
            .record
            .iter()
            .skip(width)
            .all(|cell| cell.iter().all(u8::is_ascii_whitespace));
        if cells < width || !extra_cells_empty {
            problems.push(
                None,
                RowErrorKind::FieldCount,
                format!(
                    "{cells} cells; the header has {width} (a delimiter inside a value must be quoted, e.g. \"1 500,50\")"
                ),
            );
            return Record::Invalid(InvalidRow {
                line,
                row,
                payment_id: None,
                errors: problems.errors,
            });
        }
        // Decode every cell once; a cell that is not UTF-8 is reported and left out.
        let mut values: [Cell<'_>; 11] = [Cell::Empty; 11];
        for (position, bytes) in self.record.iter().enumerate().take(width) {
            let column = self.header.column_at(position);
            let cell = match std::str::from_utf8(bytes) {
                Ok(text) if text.trim().is_empty() => Cell::Empty,
                Ok(text) => Cell::Value(text),
                Err(error) => {
                    let byte = bytes.get(error.valid_up_to()).copied().unwrap_or_default();
                    let message = match self.first_not_utf8 {
                        None => {
                            self.first_not_utf8 = Some(line);
                            format!("not UTF-8 (byte 0x{byte:02X}); {ICONV_HINT}")
                        }
                        Some(first) => format!(
                            "not UTF-8 (byte 0x{byte:02X}); see line {first} for how to convert the file"
                        ),
                    };
                    problems.push(column, RowErrorKind::NotUtf8, message);
                    Cell::Unreadable
                }
            };
            match column {
                Some(column) => values[column.slot()] = cell,
                None => {
                    if let Cell::Value(_) = cell {
                        problems.push(
                            None,
                            RowErrorKind::Invalid,
                            format!(
                                "cell {} has a value, but its column has no name in the header",
                                position + 1
                            ),
                        );
                    }
                }
            }
        }
        let value = |column: Column| values[column.slot()];
        let mut builder = Payout::builder();

        // payment_id: given (checked, unique in the file) or derived from the batch and row.
        let mut payment_id = None;
        let mut derived = false;
        match value(Column::PaymentId) {
            Cell::Value(text) => {
                if text.contains(';') {
                    problems.push_separator(Column::PaymentId);
                } else if text.starts_with(&self.derived_prefix) {
                    problems.push(
                        Some(Column::PaymentId),
                        RowErrorKind::ReservedPaymentId,
                        format!(
                            "{text:?} has the form of the IDs derived for this file's rows ({}ROW); choose another ID or leave the cell empty",
                            self.derived_prefix
                        ),
                    );
                } else {
                    match PaymentId::new(text) {
                        Ok(id) => payment_id = Some(id),
                        Err(error) => problems.push_model(Column::PaymentId, &error),
                    }
                }
            }
            // `BatchId::derive_payment_id`, with the prefix computed once per file.
            Cell::Empty => match PaymentId::new(format!("{}{row}", self.derived_prefix)) {
                Ok(id) => {
                    payment_id = Some(id);
                    derived = true;
                }
                Err(error) => problems.push_model(Column::PaymentId, &error),
            },
            Cell::Unreadable => {}
        }
        if let Some(id) = payment_id.as_ref().filter(|_| !derived)
            && !self.seen.insert(fingerprint(id))
        {
            problems.push(
                Some(Column::PaymentId),
                RowErrorKind::DuplicatePaymentId,
                format!(
                    "payment ID {:?} is already used by an earlier row; each row needs its own",
                    id.as_str()
                ),
            );
        }
        if let Some(id) = &payment_id {
            builder = builder.payment_id(id.clone());
        }

        match value(Column::Phone) {
            Cell::Value(text) => match Msisdn::parse(text) {
                Ok(phone) => builder = builder.phone(phone),
                Err(error) => problems.push_model(Column::Phone, &error),
            },
            Cell::Empty => problems.push_missing(Column::Phone, "a phone number"),
            Cell::Unreadable => {}
        }

        let currency = match value(Column::Currency) {
            Cell::Value(text) => match Currency::from_code(text) {
                Some(currency) => Some(currency),
                None => {
                    problems.push(
                        Some(Column::Currency),
                        RowErrorKind::Invalid,
                        format!(
                            "unknown currency {:?}; write an ISO 4217 code such as KZT, or leave the cell empty for KZT",
                            text.trim()
                        ),
                    );
                    None
                }
            },
            Cell::Empty => Some(Currency::KZT),
            Cell::Unreadable => None,
        };
        match (value(Column::Amount), currency) {
            (Cell::Value(text), Some(currency)) => match parse_amount(text, currency) {
                Ok(amount) => builder = builder.amount(amount),
                Err(message) => problems.push(Some(Column::Amount), RowErrorKind::Invalid, message),
            },
            (Cell::Empty, _) => problems.push_missing(Column::Amount, "an amount"),
            _ => {}
        }

        match value(Column::CustomerId) {
            Cell::Value(text) if text.contains(';') => problems.push_separator(Column::CustomerId),
            Cell::Value(text) => match CustomerId::new(text) {
                Ok(id) => builder = builder.customer_id(id),
                Err(error) => problems.push_model(Column::CustomerId, &error),
            },
            Cell::Empty => problems.push_missing(Column::CustomerId, "a customer ID"),
            Cell::Unreadable => {}
        }

        match (value(Column::FirstName), value(Column::LastName)) {
            (Cell::Value(first), Cell::Value(last)) => {
                builder = builder.customer_name(first.trim(), last.trim());
            }
            (Cell::Value(_), Cell::Empty) => problems.push(
                Some(Column::LastName),
                RowErrorKind::Missing,
                "empty, but first_name is filled; the platform takes the name whole: fill both or neither".to_owned(),
            ),
            (Cell::Empty, Cell::Value(_)) => problems.push(
                Some(Column::FirstName),
                RowErrorKind::Missing,
                "empty, but last_name is filled; the platform takes the name whole: fill both or neither".to_owned(),
            ),
            _ => {}
        }
        if let Cell::Value(text) = value(Column::Email) {
            builder = builder.customer_email(text.trim());
        }
        if let Cell::Value(text) = value(Column::IpAddress) {
            match text.trim().parse::<IpAddr>() {
                Ok(ip) => builder = builder.customer_ip(ip),
                Err(_) => problems.push(
                    Some(Column::IpAddress),
                    RowErrorKind::Invalid,
                    format!(
                        "{:?} is not an IPv4 or IPv6 address, e.g. 198.51.100.47",
                        text.trim()
                    ),
                ),
            }
        }
        if let Cell::Value(text) = value(Column::Description) {
            builder = builder.description(text.trim());
        }
        if let Cell::Value(text) = value(Column::Operator) {
            let operator = Operator::from_id(text.trim());
            if operator.is_known() {
                builder = builder.operator(operator);
            } else {
                problems.push(
                    Some(Column::Operator),
                    RowErrorKind::Invalid,
                    format!(
                        "unknown operator {:?}; write ACTIV, ALTEL, BEELINE, KCELL or TELE2, or leave the cell empty",
                        text.trim()
                    ),
                );
            }
        }

        // The builder checks the rest (`;` in names, email and description, the amount's
        // range, numbers no payout operator serves). What it calls missing was reported above.
        match builder.build() {
            Ok(payout) if problems.errors.is_empty() => Record::Valid(Row {
                line,
                row,
                payout,
                payment_id_derived: derived,
            }),
            Ok(_) => problems.into_invalid(payment_id),
            Err(error) => {
                problems.push_builder(&error);
                problems.into_invalid(payment_id)
            }
        }
    }
}

impl<R: Read> Iterator for BatchReader<R> {
    type Item = Result<Record, FileError>;

    /// [`BatchReader::next_record`]; after a [`FileError`] the reader is not to be used again.
    fn next(&mut self) -> Option<Self::Item> {
        self.next_record().transpose()
    }
}

/// `record` as one CSV line (without its line end).
fn encode(record: &csv::ByteRecord, delimiter: u8) -> Vec<u8> {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    // Writing to memory fails only on a record with no field at all, which needs no bytes.
    if writer.write_byte_record(record).is_err() {
        return Vec::new();
    }
    let mut bytes = writer.into_inner().unwrap_or_default();
    if bytes.last() == Some(&b'\n') {
        bytes.pop();
    }
    bytes
}

/// A cell of the current row.
#[derive(Clone, Copy)]
enum Cell<'a> {
    /// Empty or only spaces (or the column is not in the file).
    Empty,
    /// The text as written (not trimmed).
    Value(&'a str),
    /// Not UTF-8: already reported.
    Unreadable,
}

/// The problems of one row, collected in order.
struct Problems {
    line: u64,
    row: u64,
    errors: Vec<RowError>,
}

impl Problems {
    fn push(&mut self, column: Option<Column>, kind: RowErrorKind, message: String) {
        self.errors.push(RowError {
            line: self.line,
            row: self.row,
            column,
            kind,
            message,
        });
    }

    fn push_missing(&mut self, column: Column, what: &str) {
        self.push(
            Some(column),
            RowErrorKind::Missing,
            format!("empty; every row needs {what}"),
        );
    }

    fn push_separator(&mut self, column: Column) {
        self.push(
            Some(column),
            RowErrorKind::SeparatorInValue,
            SEPARATOR_MESSAGE.to_owned(),
        );
    }

    /// An error of `rp-model` about one column's value (phone numbers come masked).
    fn push_model(&mut self, column: Column, error: &ModelError) {
        let kind = match error {
            ModelError::SeparatorInValue { .. } => RowErrorKind::SeparatorInValue,
            _ => RowErrorKind::Invalid,
        };
        self.push(Some(column), kind, error.to_string());
    }

    /// The builder's verdict, each problem under its column.
    fn push_builder(&mut self, error: &ModelError) {
        if let ModelError::Invalid { problems } = error {
            for problem in problems {
                self.push_builder(problem);
            }
            return;
        }
        let column = match error {
            // Reported above, under the cell that caused it.
            ModelError::MissingField { .. } if !self.errors.is_empty() => return,
            ModelError::SeparatorInValue { field } => {
                let column = match field.as_str() {
                    "customer.first_name" => Some(Column::FirstName),
                    "customer.last_name" => Some(Column::LastName),
                    "customer.email" => Some(Column::Email),
                    "description" => Some(Column::Description),
                    _ => None,
                };
                match column {
                    Some(column) => self.push_separator(column),
                    None => self.push(None, RowErrorKind::SeparatorInValue, error.to_string()),
                }
                return;
            }
            ModelError::PhoneNoPayoutOperator { .. } => Some(Column::Phone),
            ModelError::ZeroAmount | ModelError::InvalidAmount { .. } => Some(Column::Amount),
            _ => None,
        };
        self.push(column, RowErrorKind::Invalid, error.to_string());
    }

    fn into_invalid(self, payment_id: Option<PaymentId>) -> Record {
        Record::Invalid(InvalidRow {
            line: self.line,
            row: self.row,
            payment_id,
            errors: self.errors,
        })
    }
}

/// Parses an amount cell in `currency`, with the file's own wording of the common mistakes.
fn parse_amount(text: &str, currency: Currency) -> Result<Money, String> {
    let trimmed = text.trim();
    Money::parse(text, currency).map_err(|error| match error {
        ModelError::ExponentNotation { .. } => format!(
            "scientific notation ({trimmed}) is not accepted; write the digits out, e.g. 1500 or 1 500,00 (format the column as Number or Text, not General)"
        ),
        ModelError::TooManyFractionDigits {
            currency, allowed, ..
        } => {
            let digits = fraction_digits(trimmed);
            let plural = if digits == 1 { "" } else { "s" };
            format!("{digits} fraction digit{plural}; {currency} has {allowed}")
        }
        other => other.to_string(),
    })
}

/// The digits after the last decimal separator of an amount (`10,005 ₸` → 3).
fn fraction_digits(text: &str) -> usize {
    let Some(at) = text.rfind(['.', ',']) else {
        return 0;
    };
    text[at + 1..]
        .chars()
        .take_while(char::is_ascii_digit)
        .count()
}

/// The fingerprint under which a payment ID is remembered: 64 bits of SipHash-1-3 (8
/// bytes a row instead of the ID). Two different IDs share one with a chance of about
/// n²/2^65 (3 in 100 million for a million rows); such a pair would be reported as a
/// duplicate (a file refused, never a payout sent twice).
fn fingerprint(id: &PaymentId) -> u64 {
    let mut hasher = std::hash::DefaultHasher::new();
    hasher.write(id.as_str().as_bytes());
    hasher.finish()
}

/// A hasher for keys that already are fingerprints: it hands the `u64` through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for byte in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*byte);
        }
    }

    fn write_u64(&mut self, value: u64) {
        self.0 = value;
    }
}

/// The delimiter of a header line: `;` if it has more of them than `,` outside quotes.
fn detect_delimiter(line: &[u8]) -> u8 {
    let mut quoted = false;
    let (mut commas, mut semicolons) = (0usize, 0usize);
    for &byte in line {
        match byte {
            b'"' => quoted = !quoted,
            b',' if !quoted => commas += 1,
            b';' if !quoted => semicolons += 1,
            _ => {}
        }
    }
    if semicolons > commas { b';' } else { b',' }
}

fn csv_error(error: &csv::Error, line: u64) -> FileError {
    let line = error.position().map_or(line, csv::Position::line);
    match error.kind() {
        csv::ErrorKind::Io(io) => FileError::Io {
            source: std::io::Error::new(io.kind(), io.to_string()),
        },
        _ => FileError::Csv {
            line,
            message: error.to_string(),
        },
    }
}
