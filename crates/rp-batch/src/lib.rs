//! Mass payouts from a CSV file: read it as a stream, turn every row into a checked
//! [`rp_model::Payout`], report every problem with its line and column, and check the file
//! against the project's amount [`Limits`].
//!
//! The platform's Dashboard takes mass payouts "in a CSV file" but does not publish its
//! template, so the format is **ours**:
//!
//! - A header row, then one payout per row. Columns, in any order, names case-insensitive:
//!   `payment_id` (optional), `phone`, `amount`, `currency` (optional, default `KZT`),
//!   `customer_id`, `first_name`, `last_name`, `email`, `ip_address`, `description`,
//!   `operator`. `phone`, `amount` and `customer_id` are required; an unknown column is an
//!   error that names it. A header cell left empty (spreadsheets add `;;;`) is ignored, and its
//!   cells must be empty.
//! - What spreadsheets in Kazakhstan write: `,` or `;` (the one the header has more of),
//!   UTF-8 with or without a byte order mark, CRLF, quoted fields, blank lines anywhere.
//! - Phones in any written form ([`rp_model::Msisdn::parse`]); amounts as people write them
//!   (`1 500,50`, `1500.50`, `₸1500`, `1500 тг`: [`rp_model::Money::parse`]).
//! - Refused, with line, column and reason: another encoding (e.g. Windows-1251, with the
//!   `iconv` command that converts it), scientific notation (`1.5E+3`), more fraction digits
//!   than the currency has, a `;` inside a signed value, a payment ID used twice in the file,
//!   a missing required column, a row with more or fewer cells than the header, and whatever
//!   the [`rp_model::Payout`] builder refuses.
//! - A row without `payment_id` gets one derived from the batch (the SHA-256 of the file) and
//!   its row number: `rpb-<20 hex digits>-<row>` ([`BatchId::derive_payment_id`]). Running
//!   the same file again derives the same IDs; **changing the file makes a new batch**.
//!
//! Messages read `line 17, column amount: 3 fraction digits; KZT has 2`, and phone numbers
//! are masked in every one.
//!
//! # Example
//!
//! ```
//! use rp_batch::{check, BatchId, BatchReader, Limits, Record};
//! use rp_model::Currency;
//!
//! let file = "\u{feff}Phone;Amount;Customer_ID;Description\r\n\
//!             8 (701) 123-45-67;1 500,50;c-1;May cashback\r\n\
//!             +7 777 123 45 67;₸2000;c-2;\"refund; order 17\"\r\n\
//!             87051234567;1.5E+3;c-3;\r\n\
//!             \r\n";
//! let batch = BatchId::of_bytes(file.as_bytes());
//!
//! // Row by row: a payout, or every problem of the row.
//! let mut reader = BatchReader::new(file.as_bytes(), batch)?;
//! match reader.next().transpose()? {
//!     Some(Record::Valid(row)) => {
//!         assert_eq!(row.payout.amount().minor_units(), 150_050);
//!         assert_eq!(row.payout.payment_id().as_str(), format!("rpb-{}-1", batch.short()));
//!     }
//!     other => panic!("{other:?}"),
//! }
//!
//! // Or the whole file at once, problems as they are found.
//! let mut problems = Vec::new();
//! let report = check(
//!     BatchReader::new(file.as_bytes(), batch)?,
//!     &Limits::none(Currency::KZT),
//!     |problem| problems.push(problem.to_string()),
//! )?;
//! assert_eq!(problems, [
//!     "line 3, column description: contains `;`, which the platform's signature uses as its line separator; remove it or write `,` instead",
//!     "line 4, column amount: scientific notation (1.5E+3) is not accepted; write the digits out, e.g. 1500 or 1 500,00 (format the column as Number or Text, not General)",
//! ]);
//! assert_eq!((report.rows, report.valid_rows, report.invalid_rows), (3, 1, 2));
//! assert_eq!(report.totals[0].to_string(), "1\u{a0}500,50\u{a0}₸");
//! # Ok::<(), rp_batch::FileError>(())
//! ```
//!
//! # Paying a file
//!
//! [`run::register`] registers a checked file in the ledger as a batch (`rp-ledger`'s
//! `BatchStore`): every row with its cells, in one transaction, keyed by the file's SHA-256,
//! so the same file is never a second batch. [`run::run`] then pays its rows through an
//! `rp-payout` [`Client`](rp_payout::Client) as one of any number of workers sharing the
//! ledger: rows are claimed with leases, and the client records each payout before sending it,
//! so no row is paid twice, even by a worker that takes over the rows of one that died. With
//! limits in the client's configuration, each payout is reserved in the ledger atomically
//! with recording it ([`rp_payout::PayoutStore::insert`]). [`report::write_report`] writes
//! every row with what became of it, from the ledger alone. `rp batch run`, `rp batch list`
//! and `rp batch show` are the commands on top.

mod check;
mod column;
mod error;
mod id;
mod input;
mod reader;
pub mod report;
pub mod run;

pub use check::{CheckReport, OperatorCount, check, check_file};
pub use column::{Column, Header};
pub use error::{FileError, RowError, RowErrorKind};
pub use id::BatchId;
pub use reader::{BatchReader, InvalidRow, Record, Row};
/// The project's amount limits (defined in `rp-model`, re-exported here for batch users).
pub use rp_model::{Headroom, LimitError, LimitKind, LimitTracker, Limits, Period, Usage};
