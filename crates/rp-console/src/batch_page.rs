//! A page of a batch's payouts in file order: the console's payments list and the API's
//! `GET /api/v1/payouts?batch=` show the same rows.

use rp_model::PaymentId;
use rp_payout::PayoutRecord;

use crate::Desk;

/// Why a page of a batch's payouts could not be had.
pub(crate) enum BatchPage {
    /// A filter is wrong.
    Bad(String),
    /// The ledger failed.
    Ledger(rp_payout::Error),
}

/// A page of batch `batch`'s payouts, in file order (at most `limit` rows after the row
/// number in `after`): the payouts and the cursor of the next page. The console's and the
/// API's.
pub(crate) async fn batch_page(
    desk: &Desk,
    batch: &str,
    after: &str,
    limit: usize,
) -> Result<(Vec<PayoutRecord>, Option<String>), BatchPage> {
    let id: rp_batch::BatchId = batch
        .trim()
        .parse()
        .map_err(|_| BatchPage::Bad("batch: a batch ID has 64 hex digits".to_owned()))?;
    let after: u64 = match after.trim() {
        "" => 0,
        text => text
            .parse()
            .map_err(|_| BatchPage::Bad("a bad page cursor".to_owned()))?,
    };
    let rows = desk
        .batches()
        .rows(&id.to_string(), after, limit)
        .await
        .map_err(BatchPage::Ledger)?;
    let next = (rows.len() == limit)
        .then(|| rows.last().map(|r| r.row.row.to_string()))
        .flatten();
    let mut records = Vec::with_capacity(rows.len());
    for row in rows {
        let Some(payment_id) = row
            .row
            .payment_id
            .as_deref()
            .and_then(|p| PaymentId::new(p).ok())
        else {
            continue;
        };
        if let Some(record) = desk
            .client()
            .store()
            .get(&payment_id)
            .await
            .map_err(BatchPage::Ledger)?
        {
            records.push(record);
        }
    }
    Ok((records, next))
}
