//! Registering a batch in a PostgreSQL ledger: the batch and every row in one transaction,
//! the rows inserted a chunk at a time (one statement of arrays each) while the next chunk is
//! read off the async threads.

use std::sync::LazyLock;
use std::time::{Duration, Instant};

use deadpool_postgres::Transaction;
use rp_payout::Error;
use tokio_postgres::types::ToSql;

use super::batch::{PostgresBatches, begin};
use super::connect::describe;
use super::sql::{column, execute, failed, query};
use crate::batch::{
    self, HeldRow, MAX_CLASHES, NewBatch, NewBatchRow, OnClash, Registered, RowClash, RowSource,
    signed, unsigned,
};

/// Rows inserted by one statement of a registration, at most.
const CHUNK_ROWS: usize = 1000;

/// Bytes of cells inserted by one statement of a registration, about (a chunk stops growing
/// once it holds this much).
const CHUNK_BYTES: usize = 4 << 20;

/// A registration of at least this many rows refreshes the planner's statistics
/// ([`ANALYZE`]) before its clash check.
const ANALYZE_ROWS: usize = 10_000;

/// Run in a large registration's transaction once its rows are written, in a savepoint (its
/// failure is only logged). Until the statistics know the batch (autovacuum's next look: a
/// minute or more), the planner takes it for a couple of rows: the clash check, which new
/// payouts wait for ([`LOCK_PAYMENT_IDS`]), took 3.6 s at 100,000 rows instead of 56 ms, and
/// a claim or a finish scanned the whole batch (40 ms a claim instead of 1 ms). The
/// statistics count the transaction's own rows and are published with its commit. A sample
/// of at most 30,000 rows by default; no lock that writes wait for.
const ANALYZE: &str =
    "SAVEPOINT before_analyze; ANALYZE rp_ledger.batch_rows; RELEASE SAVEPOINT before_analyze";

/// Undoes a failed [`ANALYZE`]: the registration goes on without it.
const ANALYZE_FAILED: &str =
    "ROLLBACK TO SAVEPOINT before_analyze; RELEASE SAVEPOINT before_analyze";

/// The batch, unless registered: `$1` project, `$2` ID, `$3` file name, `$4` delimiter,
/// `$5` header, `$6` rows, `$7` valid rows, `$8` totals, `$9` limits; registered now on the
/// server's clock.
const INSERT_BATCH: &str = "INSERT INTO rp_ledger.batches (project_id, batch_id, file_name, \
     delimiter, header, rows, valid_rows, totals, limits, created_at) VALUES ($1, $2, $3, $4, \
     $5, $6, $7, $8, $9, (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint) \
     ON CONFLICT (project_id, batch_id) DO NOTHING";

/// A chunk of rows, one array per column: `$1` project, `$2` batch, then row numbers, lines,
/// payment IDs, validity, cells, problems and request hashes. An invalid row is done from
/// the start.
const INSERT_ROWS: &str = "INSERT INTO rp_ledger.batch_rows (project_id, batch_id, row_no, \
     line, payment_id, valid, cells, problems, request_sha256, done) \
     SELECT $1, $2, r.row_no, r.line, r.payment_id, r.valid, r.cells, r.problems, \
     r.request_sha256, NOT r.valid \
     FROM unnest($3::bigint[], $4::bigint[], $5::text[], $6::boolean[], $7::bytea[], \
     $8::text[], $9::text[]) AS r (row_no, line, payment_id, valid, cells, problems, \
     request_sha256)";

/// Takes the project's registration lock for the transaction, if no other registration holds
/// it (a transaction-level advisory lock on a key of its own: `$1` project): whether it did.
const TRY_LOCK_REGISTRATIONS: &str = "SELECT pg_try_advisory_xact_lock(\
     hashtextextended('rp_ledger.batch_register.' || $1::bigint::text, 0))";

/// Takes the project's payment-ID lock for the transaction, alone (`$1` project): new
/// payouts hold it shared from before they look for a batch row holding their payment ID to
/// their commit ([`super::store::LOCK_PAYMENT_IDS_SHARED`]), so a registration's clash check
/// and a new payout's check never miss each other's uncommitted rows.
const LOCK_PAYMENT_IDS: &str = "SELECT pg_advisory_xact_lock(\
     hashtextextended('rp_ledger.payment_ids/' || $1::bigint::text, 0))";

/// How long a registration waits for the project's other registrations, at most.
const REGISTER_WAIT: Duration = Duration::from_secs(120);

/// The valid rows of batch `$2` whose payment ID the ledger holds for another payout (as the
/// SQLite ledger's `clashes`): a recorded payout of another request or with metadata, or,
/// when none is recorded, a valid row of another batch for another request. One per row, in
/// row order.
static CLASHES: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT DISTINCT ON (row_no) * FROM ( \
         SELECT r.row_no, r.line, r.payment_id, NULL::text AS batch_id, NULL::bigint AS held_line, \
         NULL::text AS held_sha256, \
         p.request_sha256 IS NOT DISTINCT FROM r.request_sha256 AS same_request \
         FROM rp_ledger.batch_rows r JOIN rp_ledger.payouts p \
         ON p.project_id = r.project_id AND p.payment_id = r.payment_id \
         WHERE r.project_id = $1 AND r.batch_id = $2 AND r.valid \
         AND (p.request_sha256 IS DISTINCT FROM r.request_sha256 OR p.metadata IS NOT NULL) \
         UNION ALL \
         SELECT r.row_no, r.line, r.payment_id, o.batch_id, o.line, o.request_sha256, false \
         FROM rp_ledger.batch_rows r JOIN rp_ledger.batch_rows o \
         ON o.project_id = r.project_id AND o.payment_id = r.payment_id \
         WHERE r.project_id = $1 AND r.batch_id = $2 AND r.valid \
         AND o.valid AND o.batch_id <> r.batch_id \
         AND o.request_sha256 IS DISTINCT FROM r.request_sha256 \
         AND NOT EXISTS (SELECT 1 FROM rp_ledger.payouts p \
             WHERE p.project_id = r.project_id AND p.payment_id = r.payment_id) \
         ) AS c ORDER BY row_no, batch_id LIMIT {MAX_CLASHES}"
    )
});

/// A chunk of rows to register, one vector per column of [`INSERT_ROWS`].
#[derive(Default)]
struct Chunk {
    row_no: Vec<i64>,
    line: Vec<i64>,
    payment_id: Vec<Option<String>>,
    valid: Vec<bool>,
    cells: Vec<Vec<u8>>,
    problems: Vec<Option<String>>,
    request_sha256: Vec<Option<String>>,
}

impl Chunk {
    /// The next rows of `rows`, up to [`CHUNK_ROWS`] (or about [`CHUNK_BYTES`] of cells);
    /// none when the rows are over.
    fn read(rows: &mut RowSource) -> Result<Chunk, String> {
        let mut chunk = Chunk::default();
        let mut bytes = 0;
        while chunk.row_no.len() < CHUNK_ROWS && bytes < CHUNK_BYTES {
            let Some(row) = rows.next() else {
                break;
            };
            let row: NewBatchRow = row?;
            bytes += row.cells.len();
            chunk.row_no.push(signed(row.row));
            chunk.line.push(signed(row.line));
            chunk.payment_id.push(row.payment_id);
            chunk.valid.push(row.valid);
            chunk.cells.push(row.cells);
            chunk.problems.push(row.problems);
            chunk.request_sha256.push(row.request_sha256);
        }
        Ok(chunk)
    }
}

/// Reads the next chunk of `rows` off the async threads (the source may read a file); the
/// source comes back with it.
fn read_chunk(mut rows: RowSource) -> tokio::task::JoinHandle<(RowSource, Result<Chunk, String>)> {
    tokio::task::spawn_blocking(move || {
        let chunk = Chunk::read(&mut rows);
        (rows, chunk)
    })
}

impl PostgresBatches {
    /// Registers `new` with every row of `rows` (see [`crate::BatchStore::register`]).
    pub(super) async fn register_batch(
        &self,
        new: NewBatch,
        rows: RowSource,
        on_clash: OnClash,
    ) -> Result<Registered, Error> {
        batch::check_id(&new.id)?;
        let what = format!("register batch {}", new.id);
        let started = Instant::now();
        let mut pause = Duration::from_millis(20);
        loop {
            let mut client = self.ledger.client(&what).await?;
            let tx = begin(&mut client, &what, false).await?;
            // One registration of the project at a time, each to its commit: the clash check
            // sees every batch registered before it (two at once would not see each other's
            // uncommitted rows). Waited for without a connection: registrations queued
            // behind a large one do not take the pool from payouts and callbacks.
            let locked = query(&tx, &what, TRY_LOCK_REGISTRATIONS, &[&self.project])
                .await?
                .first()
                .map(|row| column::<bool>(row, 0))
                .transpose()
                .map_err(|e| Error::store(&what, e))?
                .unwrap_or(false);
            if locked {
                return self.register_locked(tx, &what, new, rows, on_clash).await;
            }
            drop(tx);
            drop(client);
            if started.elapsed() >= REGISTER_WAIT {
                return Err(Error::store(
                    &what,
                    format!(
                        "another batch of this project has been registering for over {} s; \
                         nothing was written: try again",
                        REGISTER_WAIT.as_secs()
                    ),
                ));
            }
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(500));
        }
    }

    /// [`PostgresBatches::register_batch`] in `tx`, which holds the project's registration
    /// lock.
    async fn register_locked(
        &self,
        tx: Transaction<'_>,
        what: &str,
        new: NewBatch,
        rows: RowSource,
        on_clash: OnClash,
    ) -> Result<Registered, Error> {
        // A concurrent registration of the same batch holds its key until it commits (then
        // this inserts nothing) or rolls back (then this inserts it).
        let (delimiter, totals) = (i16::from(new.delimiter), batch::pairs_text(&new.totals));
        let limits = batch::pairs_text(&new.limits);
        let (rows_count, valid) = (signed(new.rows), signed(new.valid_rows));
        let params: [&(dyn ToSql + Sync); 9] = [
            &self.project,
            &new.id,
            &new.file_name,
            &delimiter,
            &new.header,
            &rows_count,
            &valid,
            &totals,
            &limits,
        ];
        let inserted = execute(&tx, what, INSERT_BATCH, &params).await?;
        if inserted == 0 {
            // Nothing written; the transaction is rolled back as it is dropped.
            return Ok(Registered::Existing);
        }
        let statement = tx.prepare_cached(INSERT_ROWS).await.map_err(failed(what))?;
        // The next chunk is read while the previous one is inserted.
        let mut next = read_chunk(rows);
        let mut written = 0;
        loop {
            let (rows, chunk) = next.await.map_err(|e| {
                Error::store(what, format!("the task reading the rows failed: {e}"))
            })?;
            // An error of the rows rolls everything back (the transaction is dropped).
            let chunk = chunk.map_err(|reason| Error::store(what, reason))?;
            if chunk.row_no.is_empty() {
                break;
            }
            next = read_chunk(rows);
            written += chunk.row_no.len();
            let params: [&(dyn ToSql + Sync); 9] = [
                &self.project,
                &new.id,
                &chunk.row_no,
                &chunk.line,
                &chunk.payment_id,
                &chunk.valid,
                &chunk.cells,
                &chunk.problems,
                &chunk.request_sha256,
            ];
            tx.execute(&statement, &params)
                .await
                .map_err(failed(what))?;
        }
        // The clash check below, and a claim or a finish later, plan with these rows counted.
        if written >= ANALYZE_ROWS
            && let Err(error) = tx.batch_execute(ANALYZE).await
        {
            tracing::warn!(
                batch = %new.id,
                error = %describe(&error),
                "ledger: could not refresh the statistics of rp_ledger.batch_rows while \
                 registering a batch; its clash check and claims may be slow until autovacuum \
                 does"
            );
            tx.batch_execute(ANALYZE_FAILED)
                .await
                .map_err(failed(what))?;
        }
        // New payouts wait from here to the commit, and this waits for those recording now
        // ([`LOCK_PAYMENT_IDS`]): the check below sees each of them, or each sees these rows.
        execute(&tx, what, LOCK_PAYMENT_IDS, &[&self.project]).await?;
        let mut clashes: Vec<RowClash> = query(&tx, what, &CLASHES, &[&self.project, &new.id])
            .await?
            .iter()
            .map(|row| {
                let payment_id: String = column(row, 2)?;
                let held_by = match column::<Option<String>>(row, 3)? {
                    Some(batch_id) => Some(HeldRow {
                        payment_id: payment_id.clone(),
                        batch_id,
                        line: unsigned(column(row, 4)?),
                        request_sha256: column(row, 5)?,
                    }),
                    None => None,
                };
                Ok(RowClash {
                    row: unsigned(column(row, 0)?),
                    line: unsigned(column(row, 1)?),
                    payment_id,
                    held_by,
                    same_request: column(row, 6)?,
                })
            })
            .collect::<Result<Vec<_>, String>>()
            .map_err(|e| Error::store(what, e))?;
        if on_clash == OnClash::Register {
            clashes.retain(|clash| clash.held_by.is_some());
        }
        if !clashes.is_empty() {
            // Nothing written: the transaction is rolled back as it is dropped.
            return Ok(Registered::Clashes(clashes));
        }
        tx.commit().await.map_err(failed(what))?;
        Ok(Registered::New)
    }
}
