//! The columns of a batch file and the header row that places them.

use std::fmt;

use crate::error::FileError;

/// A column of the batch file format. Names are matched case-insensitively, with surrounding
/// spaces ignored; columns may come in any order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Column {
    /// `payment_id` (optional): the idempotency key. When the column is absent or the cell is
    /// empty, an ID is derived from the batch and the row number ([`crate::BatchId::derive_payment_id`]).
    PaymentId,
    /// `phone` (required): a Kazakhstan mobile number in any written form.
    Phone,
    /// `amount` (required): the amount as people write it (`1 500,50`, `1500.50`, `₸1500`).
    Amount,
    /// `currency` (optional, default `KZT`): the ISO 4217 code of the amount.
    Currency,
    /// `customer_id` (required): the merchant's ID of the customer.
    CustomerId,
    /// `first_name` (optional; with `last_name`).
    FirstName,
    /// `last_name` (optional; with `first_name`).
    LastName,
    /// `email` (optional).
    Email,
    /// `ip_address` (optional): the customer's IPv4 or IPv6 address.
    IpAddress,
    /// `description` (optional).
    Description,
    /// `operator` (optional): `ACTIV`, `ALTEL`, `BEELINE`, `KCELL` or `TELE2`.
    Operator,
}

impl Column {
    /// Every column, in the order the documentation lists them.
    pub const ALL: [Column; 11] = [
        Column::PaymentId,
        Column::Phone,
        Column::Amount,
        Column::Currency,
        Column::CustomerId,
        Column::FirstName,
        Column::LastName,
        Column::Email,
        Column::IpAddress,
        Column::Description,
        Column::Operator,
    ];

    /// The columns a file must have.
    pub const REQUIRED: [Column; 3] = [Column::Phone, Column::Amount, Column::CustomerId];

    /// The name in the header, e.g. `"customer_id"`.
    pub fn name(self) -> &'static str {
        match self {
            Column::PaymentId => "payment_id",
            Column::Phone => "phone",
            Column::Amount => "amount",
            Column::Currency => "currency",
            Column::CustomerId => "customer_id",
            Column::FirstName => "first_name",
            Column::LastName => "last_name",
            Column::Email => "email",
            Column::IpAddress => "ip_address",
            Column::Description => "description",
            Column::Operator => "operator",
        }
    }

    /// The column named `name` (case-insensitive, surrounding spaces ignored).
    pub fn from_name(name: &str) -> Option<Column> {
        let name = name.trim();
        Column::ALL
            .into_iter()
            .find(|column| column.name().eq_ignore_ascii_case(name))
    }

    /// The column's place in [`Column::ALL`].
    pub(crate) fn slot(self) -> usize {
        match self {
            Column::PaymentId => 0,
            Column::Phone => 1,
            Column::Amount => 2,
            Column::Currency => 3,
            Column::CustomerId => 4,
            Column::FirstName => 5,
            Column::LastName => 6,
            Column::Email => 7,
            Column::IpAddress => 8,
            Column::Description => 9,
            Column::Operator => 10,
        }
    }
}

impl fmt::Display for Column {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where each column is in the file: read from the header row.
///
/// A header cell that is empty (spreadsheets add `;;;` after the last column) names no column:
/// its cells must be empty too.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// For each position in the file, the column there (`None`: an unnamed, ignored position).
    positions: Vec<Option<Column>>,
    /// For each column (by [`Column::index`]), its position in the file.
    by_column: [Option<usize>; 11],
}

impl Header {
    /// Reads the header cells (already decoded as UTF-8).
    ///
    /// # Errors
    /// [`FileError::UnknownColumns`] naming every unknown column, [`FileError::DuplicateColumn`],
    /// [`FileError::MissingColumns`] naming every missing required column.
    pub fn parse<'a>(cells: impl IntoIterator<Item = &'a str>) -> Result<Header, FileError> {
        let mut positions = Vec::new();
        let mut by_column = [None; 11];
        let mut unknown = Vec::new();
        for (position, cell) in cells.into_iter().enumerate() {
            let name = cell.trim();
            if name.is_empty() {
                positions.push(None);
                continue;
            }
            match Column::from_name(name) {
                Some(column) => {
                    if by_column[column.slot()].is_some() {
                        return Err(FileError::DuplicateColumn { column });
                    }
                    by_column[column.slot()] = Some(position);
                    positions.push(Some(column));
                }
                None => {
                    unknown.push(name.to_owned());
                    positions.push(None);
                }
            }
        }
        if !unknown.is_empty() {
            return Err(FileError::UnknownColumns { names: unknown });
        }
        let missing: Vec<Column> = Column::REQUIRED
            .into_iter()
            .filter(|column| by_column[column.slot()].is_none())
            .collect();
        if !missing.is_empty() {
            return Err(FileError::MissingColumns { columns: missing });
        }
        Ok(Header {
            positions,
            by_column,
        })
    }

    /// The position (0-based) of `column` in the file, if the file has it.
    pub fn position(&self, column: Column) -> Option<usize> {
        self.by_column[column.slot()]
    }

    /// The column at `position` (0-based), or `None` for an unnamed position or one past the
    /// header.
    pub fn column_at(&self, position: usize) -> Option<Column> {
        self.positions.get(position).copied().flatten()
    }

    /// How many cells the header has (named or not): every row must have as many.
    pub fn width(&self) -> usize {
        self.positions.len()
    }

    /// The columns the file has, in file order.
    pub fn columns(&self) -> impl Iterator<Item = Column> + '_ {
        self.positions.iter().filter_map(|column| *column)
    }
}
