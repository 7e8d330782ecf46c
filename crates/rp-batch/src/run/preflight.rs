//! Before a tenge moves: the payment IDs the ledger holds for other payouts.

use std::fmt;
use std::path::Path;

use rp_model::{PaymentId, ProjectId};
use rp_payout::PayoutStore;

use super::types::RunError;
use crate::id::BatchId;
use crate::reader::{BatchReader, Record};

/// A row whose payment ID the ledger holds for a different payout: nothing is sent under it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Clash {
    /// The line.
    pub line: u64,
    /// The payment ID.
    pub payment_id: PaymentId,
}

impl fmt::Display for Clash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column payment_id: {} is already in the ledger for a different payout (phone, amount, customer or parameters differ); give this row a new payment ID",
            self.line, self.payment_id
        )
    }
}

/// Before a tenge moves: every valid row whose payment ID `store` (the payouts of `project`)
/// already holds for a different payout: another request than the row would send, or the
/// same request with the merchant's metadata (a row carries none: the API refuses the same
/// payment ID with other metadata, and so does a batch). Reads the file once more, checking
/// it is still batch `batch`.
///
/// # Errors
/// [`RunError`]: the file, a change of the file, the ledger.
pub async fn preflight(
    path: &Path,
    batch: BatchId,
    store: &dyn PayoutStore,
    project: ProjectId,
) -> Result<Vec<Clash>, RunError> {
    let mut reader = open_same(path, batch)?;
    let mut clashes = Vec::new();
    while let Some(record) = reader.next_record()? {
        let Record::Valid(row) = record else {
            continue;
        };
        if let Some(existing) = store.get(row.payout.payment_id()).await?
            && (existing.request != row.payout.to_request(project) || existing.metadata.is_some())
        {
            clashes.push(Clash {
                line: row.line,
                payment_id: row.payout.payment_id().clone(),
            });
        }
    }
    Ok(clashes)
}

/// Opens `path` and checks it is still batch `batch`.
pub(super) fn open_same(
    path: &Path,
    batch: BatchId,
) -> Result<BatchReader<std::fs::File>, RunError> {
    let reader = BatchReader::open(path)?;
    if reader.batch_id() != batch {
        return Err(RunError::Changed {
            was: batch,
            now: reader.batch_id(),
        });
    }
    Ok(reader)
}
