//! `check`: read a whole file, report every problem as it is found, and sum it up.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use rp_model::{Money, Operator, Payout};

use crate::column::Column;
use crate::error::{FileError, RowError, RowErrorKind};
use crate::id::BatchId;
use crate::reader::{BatchReader, Record};
use rp_model::{Headroom, LimitTracker, Limits};

/// What a check found, besides the problems it reported one by one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckReport {
    /// The batch's identity.
    pub batch: BatchId,
    /// The delimiter of the file (`b','` or `b';'`).
    pub delimiter: u8,
    /// The columns of the file, in file order.
    pub columns: Vec<Column>,
    /// Non-blank rows after the header.
    pub rows: u64,
    /// Rows that read as a payout.
    pub valid_rows: u64,
    /// Rows that do not.
    pub invalid_rows: u64,
    /// Valid rows that a limit would stop (counted in file order, see [`LimitTracker`]).
    pub over_limit_rows: u64,
    /// The sum of the valid rows, one entry per currency (KZT first).
    pub totals: Vec<Money>,
    /// Valid rows per operator: the operator the row names, else the prefix's hint.
    pub operators: Vec<OperatorCount>,
    /// Every limit set, with what the file's valid rows within the limits use of it.
    pub headroom: Vec<Headroom>,
}

impl CheckReport {
    /// Whether the whole file can be sent: at least one row, every row valid, none over a
    /// limit.
    pub fn is_valid(&self) -> bool {
        self.rows > 0 && self.invalid_rows == 0 && self.over_limit_rows == 0
    }
}

/// How many valid rows go to one operator (or one prefix hint).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OperatorCount {
    /// `Kcell` when the row names the operator; `Kcell/Activ (prefix hint)` from the number's
    /// range (numbers are portable: the hint is the range's original holder).
    pub label: String,
    /// True when the rows name the operator in the `operator` column.
    pub named: bool,
    /// Rows.
    pub rows: u64,
}

#[derive(Clone, PartialEq, Eq)]
enum OperatorKey {
    Named(Operator),
    Hint(&'static [Operator]),
    Unknown,
}

/// Checks the file at `path` against `limits`, calling `on_problem` with every problem in
/// file order (row problems, then a limit the row would break). Memory stays flat.
///
/// # Errors
/// A [`FileError`]: the file cannot be read past it.
pub fn check_file(
    path: &Path,
    limits: &Limits,
    on_problem: impl FnMut(&RowError),
) -> Result<CheckReport, FileError> {
    check(BatchReader::<File>::open(path)?, limits, on_problem)
}

/// Checks every row `reader` gives against `limits`; see [`check_file`].
///
/// ```
/// use rp_batch::{check, BatchId, BatchReader, Limits};
/// use rp_model::Currency;
///
/// let file = "phone,amount,customer_id\n87011234567,\"1 500,50\",c-1\n87771234567,2000,c-2\n";
/// let reader = BatchReader::new(file.as_bytes(), BatchId::of_bytes(file.as_bytes()))?;
/// let mut limits = Limits::none(Currency::KZT);
/// limits.max_amount = Some(180_000); // 1 800 ₸
/// let mut problems = Vec::new();
/// let report = check(reader, &limits, |p| problems.push(p.to_string()))?;
/// assert_eq!(problems, ["line 3, column amount: 2\u{a0}000,00\u{a0}₸ is above the maximum per payout (1\u{a0}800,00\u{a0}₸)"]);
/// assert_eq!((report.rows, report.valid_rows, report.over_limit_rows), (2, 2, 1));
/// assert!(!report.is_valid());
/// # Ok::<(), rp_batch::FileError>(())
/// ```
///
/// # Errors
/// A [`FileError`]: the file cannot be read past it.
pub fn check<R: Read>(
    mut reader: BatchReader<R>,
    limits: &Limits,
    mut on_problem: impl FnMut(&RowError),
) -> Result<CheckReport, FileError> {
    let mut tracker = LimitTracker::new(*limits);
    let mut report = CheckReport {
        batch: reader.batch_id(),
        delimiter: reader.delimiter(),
        columns: reader.header().columns().collect(),
        rows: 0,
        valid_rows: 0,
        invalid_rows: 0,
        over_limit_rows: 0,
        totals: Vec::new(),
        operators: Vec::new(),
        headroom: Vec::new(),
    };
    let mut operators: Vec<(OperatorKey, u64)> = Vec::new();
    while let Some(record) = reader.next_record()? {
        report.rows += 1;
        let row = match record {
            Record::Invalid(invalid) => {
                report.invalid_rows += 1;
                invalid.errors.iter().for_each(&mut on_problem);
                continue;
            }
            Record::Valid(row) => row,
        };
        report.valid_rows += 1;
        let amount = row.payout.amount();
        add_total(&mut report.totals, amount);
        let key = operator_key(&row.payout);
        match operators.iter_mut().find(|(k, _)| *k == key) {
            Some((_, rows)) => *rows += 1,
            None => operators.push((key, 1)),
        }
        if let Err(error) = tracker.reserve(amount) {
            report.over_limit_rows += 1;
            on_problem(&RowError {
                line: row.line,
                row: row.row,
                column: Some(Column::Amount),
                kind: RowErrorKind::Limit,
                message: error.to_string(),
            });
        }
    }
    report
        .totals
        .sort_by_key(|m| (m.currency() != rp_model::Currency::KZT, m.currency().code()));
    // Most rows first; ties in the order first seen (the sort is stable).
    operators.sort_by_key(|(_, rows)| std::cmp::Reverse(*rows));
    report.operators = operators
        .into_iter()
        .map(|(key, rows)| OperatorCount {
            named: matches!(key, OperatorKey::Named(_)),
            label: operator_label(&key),
            rows,
        })
        .collect();
    report.headroom = tracker.headroom();
    Ok(report)
}

fn add_total(totals: &mut Vec<Money>, amount: Money) {
    match totals
        .iter_mut()
        .find(|t| t.currency() == amount.currency())
    {
        Some(total) => {
            // Beyond u64 minor units no file can go: saturate rather than fail the summary.
            *total = total
                .checked_add(amount)
                .unwrap_or(Money::from_minor(u64::MAX, amount.currency()));
        }
        None => totals.push(amount),
    }
}

fn operator_key(payout: &Payout) -> OperatorKey {
    if let Some(operator) = payout.operator() {
        return OperatorKey::Named(operator.clone());
    }
    match payout.phone().operator_hint() {
        Some(info) => OperatorKey::Hint(info.operators),
        None => OperatorKey::Unknown,
    }
}

fn operator_label(key: &OperatorKey) -> String {
    match key {
        OperatorKey::Named(operator) => operator.name().to_owned(),
        OperatorKey::Hint(operators) => {
            let names: Vec<&str> = operators.iter().map(Operator::name).collect();
            format!("{} (prefix hint)", names.join("/"))
        }
        OperatorKey::Unknown => "unknown (prefix hint)".to_owned(),
    }
}
