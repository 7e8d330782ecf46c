//! Before a tenge moves: the payment IDs the ledger holds for other payouts, as payouts or
//! as rows of other batches.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use rp_ledger::{BatchStore, HeldRow, MAX_HELD_QUERY, RowClash};
use rp_model::{PaymentId, ProjectId};
use rp_payout::PayoutStore;

use super::types::RunError;
use crate::id::BatchId;
use crate::reader::{BatchReader, Record};

/// A row whose payment ID the ledger holds for a different payout: nothing is sent under it.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Clash {
    /// The row (1-based, non-blank rows after the header: the item of a JSON batch).
    pub row: u64,
    /// The line.
    pub line: u64,
    /// The payment ID.
    pub payment_id: PaymentId,
    /// What holds it.
    pub holder: Holder,
}

/// What holds a payment ID a row would use.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Holder {
    /// A payout the ledger records (sent or not), with other details.
    Payout,
    /// A payout the ledger records with the row's very details and the merchant's metadata
    /// (one made through the API, say; a row carries none): the row is not paid, and that
    /// payout is its payee's, so the row must not be paid again under another payment ID.
    PayoutWithMetadata,
    /// A row of another batch, paid or not yet: its batch and line.
    Batch {
        /// The batch's ID (64 hex digits).
        batch: String,
        /// The row's line in that batch's file.
        line: u64,
    },
}

impl Clash {
    /// A clash the ledger found registering a batch ([`rp_ledger::Registered::Clashes`]).
    /// `None` for a payment ID that is not one (a ledger's rows are written valid).
    pub fn of_registration(clash: &RowClash) -> Option<Clash> {
        Some(Clash {
            row: clash.row,
            line: clash.line,
            payment_id: PaymentId::new(clash.payment_id.clone()).ok()?,
            holder: match &clash.held_by {
                Some(held) => Holder::Batch {
                    batch: held.batch_id.clone(),
                    line: held.line,
                },
                None if clash.same_request => Holder::PayoutWithMetadata,
                None => Holder::Payout,
            },
        })
    }

    /// What is wrong, without where: "ID is held by … for a different payout; give this row a
    /// new payment ID" (or, for [`Holder::PayoutWithMetadata`], check that payout first).
    pub fn reason(&self) -> String {
        let holder = match &self.holder {
            Holder::PayoutWithMetadata => {
                return format!(
                    "{} is already in the ledger for a payout with this row's phone, amount and \
                     customer, made with the merchant's metadata (through the API, say): this row \
                     is not sent; that payout is this payee's, check it (rp status {}) before \
                     paying this row under another payment ID",
                    self.payment_id, self.payment_id
                );
            }
            Holder::Payout => "already in the ledger".to_owned(),
            Holder::Batch { batch, line } => {
                let short = batch.get(..20).unwrap_or(batch);
                format!("held by batch {short} (its line {line})")
            }
        };
        format!(
            "{} is {holder} for a different payout (phone, amount, customer or parameters differ); give this row a new payment ID",
            self.payment_id
        )
    }
}

impl fmt::Display for Clash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column payment_id: {}",
            self.line,
            self.reason()
        )
    }
}

/// Before a tenge moves: every valid row whose payment ID is held for a different payout,
/// by the payouts `store` records (of `project`), or, when none is recorded under it, by a
/// valid row of another batch in `batches` (two batches accepted with one payment ID for two
/// payouts would pay only the first to run, and show the other's row as a conflict only
/// then). Registration checks the batches again, atomically
/// ([`rp_ledger::Registered::Clashes`]): this is what an operator sees before confirming. A
/// payout is different when its request differs from the row's, or when it carries the
/// merchant's metadata (a row carries none: the API refuses the same payment ID with other
/// metadata, and so does a batch). Reads the file once more, checking it is still batch
/// `batch`. Clashes come in line order.
///
/// # Errors
/// [`RunError`]: the file, a change of the file, the ledger.
pub async fn preflight(
    path: &Path,
    batch: BatchId,
    store: &dyn PayoutStore,
    batches: &dyn BatchStore,
    project: ProjectId,
) -> Result<Vec<Clash>, RunError> {
    let mut reader = open_same(path, batch)?;
    let mut clashes = Vec::new();
    let mut pending = Pending::default();
    while let Some(record) = reader.next_record()? {
        let Record::Valid(row) = record else {
            continue;
        };
        let request = row.payout.to_request(project);
        // A recorded payout decides whose the ID is: the row is it, or clashes with it; other
        // batches' rows holding the ID for another payout are then conflicts, never paid.
        if let Some(existing) = store.get(row.payout.payment_id()).await? {
            let holder = if existing.request != request {
                Some(Holder::Payout)
            } else if existing.metadata.is_some() {
                Some(Holder::PayoutWithMetadata)
            } else {
                None
            };
            if let Some(holder) = holder {
                clashes.push(Clash {
                    row: row.row,
                    line: row.line,
                    payment_id: row.payout.payment_id().clone(),
                    holder,
                });
            }
            continue;
        }
        let hash = rp_ledger::request_sha256(&request)?;
        pending.push(row.row, row.line, row.payout.payment_id().clone(), hash);
        if pending.ids.len() == MAX_HELD_QUERY {
            pending.check(batches, batch, &mut clashes).await?;
        }
    }
    pending.check(batches, batch, &mut clashes).await?;
    clashes.sort_by_key(|clash| clash.line);
    Ok(clashes)
}

/// Rows waiting to be looked up among other batches' rows, a query's worth at a time.
#[derive(Default)]
struct Pending {
    ids: Vec<String>,
    rows: Vec<(u64, u64, PaymentId, String)>,
}

impl Pending {
    fn push(&mut self, row: u64, line: u64, payment_id: PaymentId, request_sha256: String) {
        self.ids.push(payment_id.as_str().to_owned());
        self.rows.push((row, line, payment_id, request_sha256));
    }

    /// Looks the waiting rows up; a row held by another batch's row for another request is a
    /// clash (each row once, with the first holder found).
    async fn check(
        &mut self,
        batches: &dyn BatchStore,
        batch: BatchId,
        clashes: &mut Vec<Clash>,
    ) -> Result<(), RunError> {
        if self.ids.is_empty() {
            return Ok(());
        }
        let held = batches
            .held_elsewhere(&batch.to_string(), &self.ids)
            .await?;
        let mut by_id: HashMap<&str, Vec<&HeldRow>> = HashMap::new();
        for row in &held {
            by_id.entry(row.payment_id.as_str()).or_default().push(row);
        }
        for (row, line, payment_id, hash) in self.rows.drain(..) {
            let other = by_id.get(payment_id.as_str()).and_then(|rows| {
                rows.iter()
                    .find(|h| h.request_sha256.as_deref() != Some(hash.as_str()))
            });
            if let Some(other) = other {
                clashes.push(Clash {
                    row,
                    line,
                    payment_id,
                    holder: Holder::Batch {
                        batch: other.batch_id.clone(),
                        line: other.line,
                    },
                });
            }
        }
        self.ids.clear();
        Ok(())
    }
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
