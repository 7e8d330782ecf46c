//! The report of a batch: every row of its file in file order, its cells as they were, then
//! what became of it ([`REPORT_COLUMNS`]), written from the ledger alone ([`write_report`]).

use std::io::Write;

use rp_ledger::{BatchRow, BatchStore};
use rp_model::{PaymentId, PaymentStatus};
use rp_payout::{PayoutRecord, PayoutState, PayoutStore};

use crate::id::BatchId;
use crate::run::RunError;

/// The columns a report adds after the file's own.
pub const REPORT_COLUMNS: [&str; 9] = [
    "row",
    "payment_id",
    "state",
    "status",
    "code",
    "message",
    "operation_id",
    "request_id",
    "updated_at",
];

/// Whether a recorded payout is final for a report: settled, or ended in `error`.
pub fn is_final(record: &PayoutRecord) -> bool {
    record.state.is_settled() || record.state == PayoutState::Status(PaymentStatus::Error)
}

/// How many rows a report holds, by what it says of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReportSummary {
    /// Rows written (every non-blank row of the file).
    pub rows: u64,
    /// Invalid rows (state `invalid`).
    pub invalid: u64,
    /// Valid rows the ledger holds no payout for (state `not_recorded`: not sent).
    pub not_recorded: u64,
    /// Valid rows whose payment ID the ledger holds for a different payout (state
    /// `conflict`: never paid).
    pub conflict: u64,
    /// Rows whose payout is final ([`is_final`]).
    pub final_rows: u64,
}

/// Rows read from the ledger at a time.
const PAGE: usize = 1_000;

/// Writes the report of batch `batch` to `out` as CSV with the file's delimiter, from the
/// ledger alone (`batches` for its rows, `store` for their payouts): the header, then every
/// row of the file in file order, its cells as they were, then [`REPORT_COLUMNS`]. An
/// invalid row has state `invalid` and its problems as the message; a valid row the ledger
/// holds no payout for has state `not_recorded`. Memory stays flat.
///
/// # Errors
/// [`RunError::NotRegistered`], [`RunError::Store`]; [`RunError::Report`] when `out` cannot
/// be written.
pub async fn write_report(
    batches: &dyn BatchStore,
    store: &dyn PayoutStore,
    batch: BatchId,
    out: impl Write,
) -> Result<ReportSummary, RunError> {
    let id = batch.to_string();
    let Some(progress) = batches.progress(&id).await? else {
        return Err(RunError::NotRegistered(batch));
    };
    let delimiter = progress.info.batch.delimiter;
    let mut csv = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(out);
    let write_error = |e: csv::Error| RunError::Report(std::io::Error::other(e));
    let header = cells_of(&progress.info.batch.header, delimiter);
    let width = header.len();
    csv.write_record(
        header
            .iter()
            .map(Vec::as_slice)
            .chain(REPORT_COLUMNS.map(str::as_bytes)),
    )
    .map_err(write_error)?;
    let mut summary = ReportSummary::default();
    let mut after = 0;
    loop {
        let page = batches.rows(&id, after, PAGE).await?;
        let Some(last) = page.last() else { break };
        after = last.row.row;
        for row in &page {
            summary.rows += 1;
            // Every row as wide as the header: a row's cells past it are empty (or the row is
            // invalid, and its message says so).
            let mut cells = cells_of(&row.row.cells, delimiter);
            cells.resize(width, Vec::new());
            let extra = report_cells(row, store, &mut summary).await?;
            csv.write_record(
                cells
                    .iter()
                    .map(Vec::as_slice)
                    .chain(extra.iter().map(|c| c.as_bytes())),
            )
            .map_err(write_error)?;
        }
    }
    csv.flush().map_err(RunError::Report)?;
    Ok(summary)
}

/// The cells of one CSV-encoded row as a ledger keeps it.
fn cells_of(encoded: &[u8], delimiter: u8) -> Vec<Vec<u8>> {
    let mut record = csv::ByteRecord::new();
    let read = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(encoded)
        .read_byte_record(&mut record);
    match read {
        Ok(true) => record.iter().map(<[u8]>::to_vec).collect(),
        _ => Vec::new(),
    }
}

/// The report's cells of one row.
async fn report_cells(
    row: &BatchRow,
    store: &dyn PayoutStore,
    summary: &mut ReportSummary,
) -> Result<[String; 9], RunError> {
    let number = row.row.row.to_string();
    let payment_id = row.row.payment_id.clone().unwrap_or_default();
    if !row.row.valid {
        summary.invalid += 1;
        let problems = row.row.problems.clone().unwrap_or_default();
        return Ok(plain(number, payment_id, "invalid", problems));
    }
    let recorded = match PaymentId::new(&payment_id) {
        Ok(id) => store.get(&id).await?,
        Err(_) => None,
    };
    let Some(record) = recorded else {
        summary.not_recorded += 1;
        let message = "not sent: run the file again to send it".to_owned();
        return Ok(plain(number, payment_id, "not_recorded", message));
    };
    // The payout under the row's payment ID is the row's only if it pays the row's request
    // and carries no merchant's metadata (a row has none: one with it was made elsewhere).
    let same_request = row.row.request_sha256.as_deref()
        == Some(rp_ledger::request_sha256(&record.request)?.as_str());
    if !same_request || record.metadata.is_some() {
        summary.conflict += 1;
        let message = if same_request {
            format!(
                "not sent by this batch: payment ID {payment_id} is held by a payout with this \
                 row's phone, amount and customer, made with the merchant's metadata (through \
                 the API, say); that payout is this payee's: check it (rp status {payment_id}) \
                 before paying this row under another payment ID"
            )
        } else {
            format!(
                "not paid: payment ID {payment_id} is held in the ledger by a different payout \
                 (phone, amount, customer or parameters differ); give this row a new payment ID"
            )
        };
        return Ok(plain(number, payment_id, "conflict", message));
    }
    summary.final_rows += u64::from(is_final(&record));
    let status = match &record.state {
        PayoutState::Status(status) => status.as_str().to_owned(),
        _ => String::new(),
    };
    let operation = operation_id(&store.events(&record.payment_id).await?);
    let updated = record
        .updated_at
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
    Ok([
        number,
        payment_id,
        record.state.label().to_owned(),
        status,
        record
            .last_code
            .as_ref()
            .map(ToString::to_string)
            .unwrap_or_default(),
        record.last_message.clone().unwrap_or_default(),
        operation.unwrap_or_default(),
        record.request_id.clone().unwrap_or_default(),
        rp_model::GateTime::from_unix_seconds(updated)
            .as_str()
            .to_owned(),
    ])
}

/// The cells of a row that has no payout.
fn plain(row: String, payment_id: String, state: &str, message: String) -> [String; 9] {
    [
        row,
        payment_id,
        state.to_owned(),
        String::new(),
        String::new(),
        message,
        String::new(),
        String::new(),
        String::new(),
    ]
}

/// The platform's operation ID, from the newest signed body in the history that has one: a
/// callback's `operation.id`, or the last of a status response's `operations[].id`.
fn operation_id(events: &[rp_payout::PayoutEvent]) -> Option<String> {
    events.iter().rev().find_map(|event| {
        let body: serde_json::Value = serde_json::from_str(event.raw.as_deref()?).ok()?;
        let operation = body
            .get("operation")
            .or_else(|| body.get("operations")?.as_array()?.last())?;
        match operation.get("id")? {
            serde_json::Value::Number(n) => Some(n.to_string()),
            serde_json::Value::String(s) => Some(s.clone()),
            _ => None,
        }
    })
}
