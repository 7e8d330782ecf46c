//! Phase one of a run: the file registered whole in the ledger.

use std::path::Path;

use rp_ledger::{BatchStore, NewBatch, NewBatchRow, OnClash, Registered, RowSource};
use rp_model::{Currency, LimitKind, Limits, PaymentId, ProjectId};

use super::preflight::open_same;
use super::types::RunError;
use crate::check::CheckReport;
use crate::id::BatchId;
use crate::reader::{BatchReader, Record};

/// Registers batch `batch` (the file at `path`, checked as `report`) in `batches` of
/// `project`, with the `limits` it is confirmed with (see [`registered_limits`]), every row
/// with its cells and the hash of the request it pays, in one transaction, unless it is
/// registered already, or, unless `on_clash` says to register them all the same, some of its
/// payment IDs are the ledger's for other payouts ([`Registered::Clashes`]). Reads the file once more; if what it reads
/// is not batch `batch` (the file changed since it was checked), nothing is registered.
/// Memory stays flat.
///
/// # Errors
/// [`RunError`]: the file, a change of the file, the ledger.
pub async fn register(
    path: &Path,
    report: &CheckReport,
    batches: &dyn BatchStore,
    project: ProjectId,
    limits: Limits,
    on_clash: OnClash,
) -> Result<Registered, RunError> {
    let batch = report.batch;
    let reader = open_same(path, batch)?;
    let file_name = path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let new = NewBatch {
        id: batch.to_string(),
        file_name,
        delimiter: reader.delimiter(),
        header: reader.header_encoded(),
        rows: report.rows,
        valid_rows: report.valid_rows,
        totals: report
            .totals
            .iter()
            .map(|money| (money.currency().code().to_owned(), money.minor_units()))
            .collect(),
        limits: limits_pairs(limits),
    };
    let rows: RowSource = Box::new(StoredRows {
        reader,
        batch,
        project,
    });
    Ok(batches.register_with(new, rows, on_clash).await?)
}

/// The rows of a file as a ledger registers them.
struct StoredRows {
    reader: BatchReader<std::fs::File>,
    batch: BatchId,
    project: ProjectId,
}

impl Iterator for StoredRows {
    type Item = Result<NewBatchRow, String>;

    fn next(&mut self) -> Option<Self::Item> {
        let record = match self.reader.next_record() {
            Ok(Some(record)) => record,
            Ok(None) => return None,
            Err(error) => return Some(Err(format!("batch {}: {error}", self.batch))),
        };
        let cells = self.reader.last_cells_encoded();
        Some(Ok(match record {
            Record::Valid(row) => {
                let request = row.payout.to_request(self.project);
                let hash = match rp_ledger::request_sha256(&request) {
                    Ok(hash) => hash,
                    Err(error) => return Some(Err(error.to_string())),
                };
                NewBatchRow {
                    row: row.row,
                    line: row.line,
                    payment_id: Some(row.payout.payment_id().as_str().to_owned()),
                    request_sha256: Some(hash),
                    valid: true,
                    cells,
                    problems: None,
                }
            }
            Record::Invalid(invalid) => {
                let problems: Vec<String> =
                    invalid.errors.iter().map(ToString::to_string).collect();
                NewBatchRow {
                    row: invalid.row,
                    line: invalid.line,
                    payment_id: invalid.payment_id.map(PaymentId::into_string),
                    request_sha256: None,
                    valid: false,
                    cells,
                    problems: Some(problems.join("; ")),
                }
            }
        }))
    }
}

/// `limits` as a batch keeps them: `("currency", numeric ISO 4217 code)`, then each limit set
/// by its [`LimitKind::key`].
fn limits_pairs(limits: Limits) -> Vec<(String, u64)> {
    let mut pairs = vec![("currency".to_owned(), u64::from(limits.currency.numeric()))];
    pairs.extend(
        LimitKind::ALL
            .into_iter()
            .filter_map(|kind| Some((kind.key().to_owned(), limits.get(kind)?))),
    );
    pairs
}

/// The limits batch `batch` was registered with (see [`register`]); `None` when it holds
/// none.
///
/// # Errors
/// Why this build cannot tell them (a newer rp registered the batch: a limit or a currency
/// it does not know, a limit twice): a run must then refuse the batch rather than pay it past
/// limits it cannot read.
pub fn registered_limits(batch: &NewBatch) -> Result<Option<Limits>, String> {
    if batch.limits.is_empty() {
        return Ok(None);
    }
    let mut currency = None;
    let mut set: Vec<(LimitKind, u64)> = Vec::new();
    for (name, value) in &batch.limits {
        if name == "currency" {
            let known = u16::try_from(*value).ok().and_then(|numeric| {
                Currency::ALL
                    .iter()
                    .copied()
                    .find(|c| c.numeric() == numeric)
            });
            currency = Some(known.ok_or_else(|| {
                format!(
                    "its limits are in currency {value} (ISO 4217), which this rp does not know"
                )
            })?);
        } else {
            let kind = LimitKind::ALL
                .into_iter()
                .find(|k| k.key() == name)
                .ok_or_else(|| format!("it has a limit {name:?}, which this rp does not know"))?;
            if set.iter().any(|(k, _)| *k == kind) {
                return Err(format!("it has the limit {name:?} twice"));
            }
            set.push((kind, *value));
        }
    }
    let mut limits =
        Limits::none(currency.ok_or_else(|| "its limits name no currency".to_owned())?);
    for (kind, value) in set {
        limits.set(kind, Some(value));
    }
    Ok(Some(limits))
}
