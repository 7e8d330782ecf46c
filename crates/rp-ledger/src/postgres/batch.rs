//! [`PostgresBatches`]: the batches of one project in a PostgreSQL ledger, as a
//! [`BatchStore`]. Every lease and registration time is the server's clock
//! (`clock_timestamp()`), shared by every instance on every machine. A claim is one statement
//! whose choice of rows skips the rows another claim is taking (`FOR UPDATE SKIP LOCKED`), so
//! concurrent workers neither wait for each other nor get the same row; a registration is one
//! transaction, its rows inserted in chunks (`register.rs`).

use std::sync::LazyLock;
use std::time::{Duration, SystemTime};

use deadpool_postgres::{Client, GenericClient, Transaction};
use rp_model::ProjectId;
use rp_payout::Error;
use rp_transport::BoxFuture;
use tokio_postgres::IsolationLevel;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

use super::PostgresLedger;
use super::sql::{column, execute, failed, query};
use crate::batch::{
    self, BatchInfo, BatchProgress, BatchRow, BatchStore, ClaimedRow, HeldRow, LabelCount,
    NewBatch, NewBatchRow, OnClash, Registered, RowSource, signed, unsigned,
};
use crate::stored::{nanos, time};

/// The batches of one project in a [`PostgresLedger`].
#[derive(Debug, Clone)]
pub struct PostgresBatches {
    pub(super) ledger: PostgresLedger,
    pub(super) project: i64,
}

/// `now.t`: the server's clock, read once per statement, in nanoseconds since the Unix epoch
/// (microsecond resolution). A volatile CTE, so never inlined: one value for every row.
const NOW: &str =
    "WITH now AS (SELECT (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint AS t)";

const INFO_COLUMNS: &str =
    "batch_id, file_name, delimiter, header, rows, valid_rows, totals, created_at, limits, paused";

/// The owners holding live claims on a batch, with how many rows each holds: `$1` project,
/// `$2` batch.
static CLAIMS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{NOW} SELECT claimed_by, count(*) FROM rp_ledger.batch_rows \
         WHERE project_id = $1 AND batch_id = $2 AND NOT done AND claimed_by IS NOT NULL \
         AND lease_until > (SELECT t FROM now) GROUP BY claimed_by"
    )
});

/// Claims up to `$6` rows for `$3` until `$4` nanoseconds from now: `$1` project, `$2` batch,
/// `$5` the owners whose rows are taken over at once (gone processes of this host). The rows
/// are chosen and locked once (`ARRAY(…)` is an init plan, run once), skipping those another
/// claim is taking (a row another claim committed since this statement began is checked
/// again on its newest version), then updated through the primary key.
static CLAIM: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{NOW} UPDATE rp_ledger.batch_rows SET claimed_by = $3, \
             lease_until = (SELECT t FROM now) + $4 \
         WHERE project_id = $1 AND batch_id = $2 AND row_no = ANY(ARRAY( \
             SELECT row_no FROM rp_ledger.batch_rows \
             WHERE project_id = $1 AND batch_id = $2 AND NOT done AND valid \
             AND (claimed_by IS NULL OR lease_until <= (SELECT t FROM now) \
                 OR claimed_by = ANY($5::text[])) \
             ORDER BY row_no LIMIT $6 FOR UPDATE SKIP LOCKED)) \
         RETURNING row_no, line, cells"
    )
});

/// Extends `$3`'s leases on batch `$2` of project `$1` to `$4` nanoseconds from now.
static RENEW: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{NOW} UPDATE rp_ledger.batch_rows SET lease_until = (SELECT t FROM now) + $4 \
         WHERE project_id = $1 AND batch_id = $2 AND claimed_by = $3 AND NOT done"
    )
});

/// Marks rows `$4` done, those `$3` holds.
const FINISH: &str = "UPDATE rp_ledger.batch_rows \
     SET done = TRUE, claimed_by = NULL, lease_until = NULL \
     WHERE project_id = $1 AND batch_id = $2 AND claimed_by = $3 AND NOT done \
     AND row_no = ANY($4::bigint[])";

/// Gives back the rows `$3` holds.
const RELEASE: &str = "UPDATE rp_ledger.batch_rows SET claimed_by = NULL, lease_until = NULL \
     WHERE project_id = $1 AND batch_id = $2 AND claimed_by = $3 AND NOT done";

/// Serialises the passes of a batch: a reopen waits for a concurrent one, then sees its rows
/// undone (the batch's row, not its rows: claims never wait for it).
const LOCK_BATCH: &str = "SELECT 1 FROM rp_ledger.batches \
     WHERE project_id = $1 AND batch_id = $2 FOR NO KEY UPDATE";

/// The next pass: the valid rows whose payout is not settled, when no valid row is undone.
const REOPEN: &str = "UPDATE rp_ledger.batch_rows AS r \
     SET done = FALSE, claimed_by = NULL, lease_until = NULL \
     WHERE r.project_id = $1 AND r.batch_id = $2 AND r.valid \
     AND NOT EXISTS (SELECT 1 FROM rp_ledger.batch_rows u WHERE u.project_id = $1 \
         AND u.batch_id = $2 AND u.valid AND NOT u.done) \
     AND NOT EXISTS (SELECT 1 FROM rp_ledger.payouts p \
         WHERE p.project_id = $1 AND p.payment_id = r.payment_id \
         AND p.request_sha256 = r.request_sha256 AND p.metadata IS NULL AND p.settled)";

static INFO: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {INFO_COLUMNS} FROM rp_ledger.batches WHERE project_id = $1 AND batch_id = $2")
});

/// A batch's valid rows grouped by their payout's state label: rows, undone rows, finished
/// rows whose payout is recorded but not final.
/// A row whose payment ID the ledger holds for a different payout (another request hash, or
/// the merchant's metadata: a row carries none) counts as `conflict`.
const COUNTS: &str = "SELECT CASE WHEN p.payment_id IS NULL THEN NULL \
         WHEN p.request_sha256 IS DISTINCT FROM r.request_sha256 OR p.metadata IS NOT NULL \
         THEN 'conflict' ELSE p.state_label END AS label, \
     count(*), count(*) FILTER (WHERE NOT r.done), \
     count(*) FILTER (WHERE r.done AND p.request_sha256 = r.request_sha256 \
         AND p.metadata IS NULL AND NOT p.settled \
         AND p.state_label NOT IN ('error', 'not_registered')) \
     FROM rp_ledger.batch_rows r LEFT JOIN rp_ledger.payouts p \
     ON p.project_id = r.project_id AND p.payment_id = r.payment_id \
     WHERE r.project_id = $1 AND r.batch_id = $2 AND r.valid GROUP BY label";

/// The newest batches: `$1` project, `$2` how many.
const LIST: &str = "SELECT batch_id FROM rp_ledger.batches WHERE project_id = $1 \
     ORDER BY created_at DESC, batch_id DESC LIMIT $2";

/// The newest batches registered before (`$2` time, `$3` ID): `$1` project, `$4` how many.
const LIST_BEFORE: &str = "SELECT batch_id FROM rp_ledger.batches WHERE project_id = $1 \
     AND (created_at, batch_id) < ($2, $3) ORDER BY created_at DESC, batch_id DESC LIMIT $4";

/// `$4` rows of batch `$2` after row `$3`.
const ROWS: &str = "SELECT row_no, line, payment_id, valid, cells, problems, done, \
     request_sha256 \
     FROM rp_ledger.batch_rows WHERE project_id = $1 AND batch_id = $2 AND row_no > $3 \
     ORDER BY row_no LIMIT $4";

/// The valid rows of other batches holding any of the payment IDs `$3`.
const HELD: &str = "SELECT payment_id, batch_id, line, request_sha256 \
     FROM rp_ledger.batch_rows WHERE project_id = $1 AND payment_id = ANY($3) AND valid \
     AND batch_id <> $2";

/// A [`BatchInfo`] from a row of [`INFO_COLUMNS`].
fn info(row: &Row) -> Result<BatchInfo, String> {
    let totals: String = column(row, 6)?;
    let limits: String = column(row, 8)?;
    Ok(BatchInfo {
        batch: NewBatch {
            id: column(row, 0)?,
            file_name: column(row, 1)?,
            delimiter: u8::try_from(column::<i16>(row, 2)?).unwrap_or(b','),
            header: column(row, 3)?,
            rows: unsigned(column(row, 4)?),
            valid_rows: unsigned(column(row, 5)?),
            totals: batch::pairs_of(&totals)?,
            limits: batch::pairs_of(&limits)?,
        },
        created_at: time(column(row, 7)?),
        paused: column(row, 9)?,
    })
}

/// A number of rows as a `LIMIT`.
fn limit(n: usize) -> i64 {
    signed(u64::try_from(n).unwrap_or(u64::MAX))
}

/// A lease in nanoseconds, to add to the server's clock.
fn lease_nanos(lease: Duration) -> i64 {
    i64::try_from(lease.as_nanos()).unwrap_or(i64::MAX)
}

/// The owners holding live claims on batch `id`, with how many rows each holds.
async fn claims(
    client: &impl GenericClient,
    what: &str,
    project: i64,
    id: &str,
) -> Result<Vec<(String, u64)>, Error> {
    query(client, what, &CLAIMS, &[&project, &id])
        .await?
        .iter()
        .map(|row| Ok((column(row, 0)?, unsigned(column(row, 1)?))))
        .collect::<Result<_, String>>()
        .map_err(|e| Error::store(what, e))
}

/// Batch `id` and where it stands, read in `tx` (one snapshot).
async fn progress(
    tx: &Transaction<'_>,
    what: &str,
    project: i64,
    id: &str,
) -> Result<Option<BatchProgress>, Error> {
    let found = query(tx, what, &INFO, &[&project, &id]).await?;
    let Some(row) = found.first() else {
        return Ok(None);
    };
    let info = info(row).map_err(|e| Error::store(what, e))?;
    let counts = query(tx, what, COUNTS, &[&project, &id])
        .await?
        .iter()
        .map(|row| {
            Ok(LabelCount {
                label: column(row, 0)?,
                rows: unsigned(column(row, 1)?),
                undone: unsigned(column(row, 2)?),
                waiting: unsigned(column(row, 3)?),
            })
        })
        .collect::<Result<Vec<_>, String>>()
        .map_err(|e| Error::store(what, e))?;
    let claims = claims(tx, what, project, id).await?;
    Ok(Some(batch::progress_of(info, counts, claims)))
}

/// A transaction on `client`: `READ COMMITTED` to write, whatever the server's default; a
/// read-only `REPEATABLE READ` one to read (one snapshot for every statement of a batch's
/// progress, or of a list).
pub(super) async fn begin<'c>(
    client: &'c mut Client,
    what: &str,
    read: bool,
) -> Result<Transaction<'c>, Error> {
    let level = if read {
        IsolationLevel::RepeatableRead
    } else {
        IsolationLevel::ReadCommitted
    };
    client
        .build_transaction()
        .isolation_level(level)
        .read_only(read)
        .start()
        .await
        .map_err(failed(what))
}

impl PostgresBatches {
    pub(super) fn new(ledger: PostgresLedger, project: ProjectId) -> PostgresBatches {
        PostgresBatches {
            ledger,
            project: crate::stored::project_key(project),
        }
    }

    async fn claim_rows(
        &self,
        id: &str,
        owner: &str,
        lease: Duration,
        max: usize,
    ) -> Result<Vec<ClaimedRow>, Error> {
        let what = format!("claim rows of batch {id}");
        batch::check_lease(&what, lease)?;
        batch::check_id(id)?;
        let client = self.ledger.client(&what).await?;
        let others = claims(&client, &what, self.project, id)
            .await?
            .into_iter()
            .map(|(token, _)| token)
            .filter(|token| token != owner);
        let dead = batch::dead_owners(others);
        let (lease, max) = (lease_nanos(lease), limit(max));
        let params: [&(dyn ToSql + Sync); 6] = [&self.project, &id, &owner, &lease, &dead, &max];
        let mut claimed = query(&client, &what, &CLAIM, &params)
            .await?
            .iter()
            .map(|row| {
                Ok(ClaimedRow {
                    row: unsigned(column(row, 0)?),
                    line: unsigned(column(row, 1)?),
                    cells: column(row, 2)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| Error::store(&what, e))?;
        claimed.sort_by_key(|row| row.row);
        Ok(claimed)
    }

    async fn reopen_batch(&self, id: &str) -> Result<u64, Error> {
        batch::check_id(id)?;
        let what = format!("start a new pass of batch {id}");
        let mut client = self.ledger.client(&what).await?;
        let tx = begin(&mut client, &what, false).await?;
        if query(&tx, &what, LOCK_BATCH, &[&self.project, &id])
            .await?
            .is_empty()
        {
            return Ok(0);
        }
        // A statement of its own, after the lock: it sees what a concurrent reopen committed.
        let reopened = execute(&tx, &what, REOPEN, &[&self.project, &id]).await?;
        tx.commit().await.map_err(failed(&what))?;
        Ok(reopened)
    }

    async fn read_one(&self, id: &str) -> Result<Option<BatchProgress>, Error> {
        batch::check_id(id)?;
        let what = format!("read batch {id}");
        let mut client = self.ledger.client(&what).await?;
        let tx = begin(&mut client, &what, true).await?;
        let found = progress(&tx, &what, self.project, id).await?;
        tx.commit().await.map_err(failed(&what))?;
        Ok(found)
    }

    async fn read_list(
        &self,
        before: Option<(SystemTime, String)>,
        n: usize,
    ) -> Result<Vec<BatchProgress>, Error> {
        let what = "list batches";
        let mut client = self.ledger.client(what).await?;
        let tx = begin(&mut client, what, true).await?;
        let page = match before {
            None => query(&tx, what, LIST, &[&self.project, &limit(n)]).await?,
            Some((at, id)) => {
                let params: [&(dyn ToSql + Sync); 4] = [&self.project, &nanos(at), &id, &limit(n)];
                query(&tx, what, LIST_BEFORE, &params).await?
            }
        };
        let ids: Vec<String> = page
            .iter()
            .map(|row| column(row, 0))
            .collect::<Result<_, String>>()
            .map_err(|e| Error::store(what, e))?;
        let mut batches = Vec::with_capacity(ids.len());
        for id in ids {
            if let Some(one) = progress(&tx, what, self.project, &id).await? {
                batches.push(one);
            }
        }
        tx.commit().await.map_err(failed(what))?;
        Ok(batches)
    }

    async fn read_rows(
        &self,
        id: &str,
        after: u64,
        limit_rows: usize,
    ) -> Result<Vec<BatchRow>, Error> {
        batch::check_id(id)?;
        let what = format!("read the rows of batch {id}");
        let client = self.ledger.client(&what).await?;
        query(
            &client,
            &what,
            ROWS,
            &[&self.project, &id, &signed(after), &limit(limit_rows)],
        )
        .await?
        .iter()
        .map(|row| {
            Ok(BatchRow {
                row: NewBatchRow {
                    row: unsigned(column(row, 0)?),
                    line: unsigned(column(row, 1)?),
                    payment_id: column(row, 2)?,
                    valid: column(row, 3)?,
                    cells: column(row, 4)?,
                    problems: column(row, 5)?,
                    request_sha256: column(row, 7)?,
                },
                done: column(row, 6)?,
            })
        })
        .collect::<Result<_, String>>()
        .map_err(|e| Error::store(&what, e))
    }
}

impl BatchStore for PostgresBatches {
    fn register_with(
        &self,
        batch: NewBatch,
        rows: RowSource,
        on_clash: OnClash,
    ) -> BoxFuture<'_, Result<Registered, Error>> {
        Box::pin(self.register_batch(batch, rows, on_clash))
    }

    fn claim<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        lease: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<ClaimedRow>, Error>> {
        Box::pin(self.claim_rows(id, owner, lease, max))
    }

    fn renew<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        lease: Duration,
    ) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            let what = format!("renew the claims on batch {id}");
            batch::check_lease(&what, lease)?;
            batch::check_id(id)?;
            let params: [&(dyn ToSql + Sync); 4] =
                [&self.project, &id, &owner, &lease_nanos(lease)];
            execute(&self.ledger.client(&what).await?, &what, &RENEW, &params).await
        })
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        rows: &'a [u64],
    ) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            batch::check_id(id)?;
            let what = format!("mark rows of batch {id} done");
            let rows: Vec<i64> = rows.iter().copied().map(signed).collect();
            let params: [&(dyn ToSql + Sync); 4] = [&self.project, &id, &owner, &rows];
            execute(&self.ledger.client(&what).await?, &what, FINISH, &params).await
        })
    }

    fn release<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            batch::check_id(id)?;
            let what = format!("give back the rows of batch {id}");
            let params: [&(dyn ToSql + Sync); 3] = [&self.project, &id, &owner];
            execute(&self.ledger.client(&what).await?, &what, RELEASE, &params).await
        })
    }

    fn reopen<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(self.reopen_batch(id))
    }

    fn stopped(&self, most: usize) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        Box::pin(async move {
            let what = "list stopped batches";
            let client = self.ledger.client(what).await?;
            let sql = format!(
                "{NOW} SELECT b.batch_id FROM rp_ledger.batches b \
                 WHERE b.project_id = $1 AND NOT b.paused \
                 AND EXISTS (SELECT 1 FROM rp_ledger.batch_rows r WHERE r.project_id = $1 \
                     AND r.batch_id = b.batch_id AND NOT r.done) \
                 AND NOT EXISTS (SELECT 1 FROM rp_ledger.batch_rows c WHERE c.project_id = $1 \
                     AND c.batch_id = b.batch_id AND NOT c.done AND c.claimed_by IS NOT NULL \
                     AND c.lease_until > (SELECT t FROM now)) \
                 ORDER BY b.created_at, b.batch_id LIMIT $2"
            );
            query(&client, what, &sql, &[&self.project, &limit(most)])
                .await?
                .iter()
                .map(|row| column(row, 0))
                .collect::<Result<_, String>>()
                .map_err(|e| Error::store(what, e))
        })
    }

    fn set_paused<'a>(&'a self, id: &'a str, paused: bool) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            batch::check_id(id)?;
            let what = format!("pause batch {id}");
            let client = self.ledger.client(&what).await?;
            let changed = execute(
                &client,
                &what,
                "UPDATE rp_ledger.batches SET paused = $3 WHERE project_id = $1 AND batch_id = $2",
                &[&self.project, &id, &paused],
            )
            .await?;
            self.ledger.committed();
            Ok(changed == 1)
        })
    }

    fn info<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<BatchInfo>, Error>> {
        Box::pin(async move {
            batch::check_id(id)?;
            let what = format!("read batch {id}");
            let client = self.ledger.client(&what).await?;
            query(&client, &what, &INFO, &[&self.project, &id])
                .await?
                .first()
                .map(info)
                .transpose()
                .map_err(|e| Error::store(&what, e))
        })
    }

    fn progress<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<BatchProgress>, Error>> {
        Box::pin(self.read_one(id))
    }

    fn list(
        &self,
        before: Option<(SystemTime, String)>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<BatchProgress>, Error>> {
        Box::pin(self.read_list(before, limit))
    }

    fn rows<'a>(
        &'a self,
        id: &'a str,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<BatchRow>, Error>> {
        Box::pin(self.read_rows(id, after, limit))
    }

    fn held_elsewhere<'a>(
        &'a self,
        batch: &'a str,
        payment_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<HeldRow>, Error>> {
        Box::pin(async move {
            batch::check_held_query(payment_ids)?;
            let what = "find the batches holding payment IDs";
            let client = self.ledger.client(what).await?;
            query(&client, what, HELD, &[&self.project, &batch, &payment_ids])
                .await?
                .iter()
                .map(|row| {
                    Ok(HeldRow {
                        payment_id: column(row, 0)?,
                        batch_id: column(row, 1)?,
                        line: unsigned(column(row, 2)?),
                        request_sha256: column(row, 3)?,
                    })
                })
                .collect::<Result<_, String>>()
                .map_err(|e| Error::store(what, e))
        })
    }
}
