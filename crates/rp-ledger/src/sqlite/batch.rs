//! [`SqliteBatches`]: the batches of one project in an SQLite ledger, as a [`BatchStore`].
//! Every write runs in its own transaction on the writer's connection; the lease times are
//! this machine's clock (every process sharing an SQLite file shares the machine).

use std::time::{Duration, SystemTime};

use rp_model::ProjectId;
use rp_payout::Error;
use rp_transport::BoxFuture;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _, Row, params, params_from_iter};

use super::SqliteLedger;
use super::rows::nanos;
use crate::batch::{
    self, BatchInfo, BatchProgress, BatchRow, BatchStore, ClaimedRow, HeldRow, LabelCount,
    NewBatch, NewBatchRow, OnClash, Registered, RowClash, RowSource, signed, unsigned,
};
use crate::stored::time;

/// The batches of one project in an [`SqliteLedger`].
#[derive(Debug, Clone)]
pub struct SqliteBatches {
    ledger: SqliteLedger,
    project: i64,
}

impl SqliteBatches {
    pub(super) fn new(ledger: SqliteLedger, project: ProjectId) -> SqliteBatches {
        SqliteBatches {
            ledger,
            project: crate::stored::project_key(project),
        }
    }
}

const INFO_COLUMNS: &str =
    "batch_id, file_name, delimiter, header, rows, valid_rows, totals, created_at, limits, paused";

/// A [`BatchInfo`] from a row of [`INFO_COLUMNS`].
fn info(row: &Row<'_>) -> rusqlite::Result<BatchInfo> {
    let totals: String = row.get(6)?;
    let totals = batch::pairs_of(&totals).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(6, rusqlite::types::Type::Text, e.into())
    })?;
    let limits: String = row.get(8)?;
    let limits = batch::pairs_of(&limits).map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(8, rusqlite::types::Type::Text, e.into())
    })?;
    Ok(BatchInfo {
        batch: NewBatch {
            id: row.get(0)?,
            file_name: row.get(1)?,
            delimiter: u8::try_from(row.get::<_, i64>(2)?).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    2,
                    rusqlite::types::Type::Integer,
                    e.into(),
                )
            })?,
            header: row.get(3)?,
            rows: unsigned(row.get(4)?),
            valid_rows: unsigned(row.get(5)?),
            totals,
            limits,
        },
        created_at: time(row.get(7)?),
        paused: row.get(9)?,
    })
}

/// The owners holding live claims on batch `id`, with how many rows each holds.
fn claims(
    conn: &Connection,
    project: i64,
    id: &str,
    now: i64,
) -> rusqlite::Result<Vec<(String, u64)>> {
    let mut statement = conn.prepare_cached(
        "SELECT claimed_by, count(*) FROM batch_rows WHERE project_id = ?1 AND batch_id = ?2 \
         AND done = 0 AND claimed_by IS NOT NULL AND lease_until > ?3 GROUP BY claimed_by",
    )?;
    statement
        .query_map(params![project, id, now], |row| {
            Ok((row.get(0)?, unsigned(row.get(1)?)))
        })?
        .collect()
}

/// Batch `id` as registered.
fn read_info(conn: &Connection, project: i64, id: &str) -> rusqlite::Result<Option<BatchInfo>> {
    conn.prepare_cached(&format!(
        "SELECT {INFO_COLUMNS} FROM batches WHERE project_id = ?1 AND batch_id = ?2"
    ))?
    .query_row(params![project, id], info)
    .optional()
}

/// Batch `id` and where it stands.
fn progress(
    conn: &Connection,
    project: i64,
    id: &str,
    now: i64,
) -> rusqlite::Result<Option<BatchProgress>> {
    let Some(info) = read_info(conn, project, id)? else {
        return Ok(None);
    };
    let counts: Vec<LabelCount> = conn
        .prepare_cached(
            "SELECT CASE WHEN p.payment_id IS NULL THEN NULL \
                 WHEN p.request_sha256 IS NOT r.request_sha256 OR p.metadata IS NOT NULL \
                 THEN 'conflict' ELSE p.state_label END AS label, \
             count(*), sum(r.done = 0), \
             sum(r.done = 1 AND p.request_sha256 = r.request_sha256 AND p.metadata IS NULL \
                 AND p.settled = 0 \
                 AND p.state_label NOT IN ('error', 'not_registered')) \
             FROM batch_rows r LEFT JOIN payouts p \
             ON p.project_id = r.project_id AND p.payment_id = r.payment_id \
             WHERE r.project_id = ?1 AND r.batch_id = ?2 AND r.valid = 1 \
             GROUP BY label",
        )?
        .query_map(params![project, id], |row| {
            Ok(LabelCount {
                label: row.get(0)?,
                rows: unsigned(row.get(1)?),
                undone: unsigned(row.get::<_, Option<i64>>(2)?.unwrap_or(0)),
                waiting: unsigned(row.get::<_, Option<i64>>(3)?.unwrap_or(0)),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let claims = claims(conn, project, id, now)?;
    Ok(Some(batch::progress_of(info, counts, claims)))
}

/// Registers a batch and its rows (inside the caller's transaction).
fn register(
    conn: &Connection,
    project: i64,
    new: &NewBatch,
    rows: RowSource,
    on_clash: OnClash,
) -> Result<Registered, Error> {
    let what = format!("register batch {}", new.id);
    let failed = |e: rusqlite::Error| Error::store(&what, e);
    // Rows clashing with another batch's undo the whole registration (the transaction is the
    // caller's: it commits what this leaves).
    conn.execute_batch("SAVEPOINT register").map_err(failed)?;
    let inserted = conn
        .prepare_cached(
            "INSERT INTO batches (project_id, batch_id, file_name, delimiter, header, rows, \
             valid_rows, totals, limits, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) \
             ON CONFLICT (project_id, batch_id) DO NOTHING",
        )
        .and_then(|mut s| {
            s.execute(params![
                project,
                new.id,
                new.file_name,
                i64::from(new.delimiter),
                new.header,
                signed(new.rows),
                signed(new.valid_rows),
                batch::pairs_text(&new.totals),
                batch::pairs_text(&new.limits),
                nanos(SystemTime::now()),
            ])
        })
        .map_err(failed)?;
    if inserted == 0 {
        conn.execute_batch("RELEASE register").map_err(failed)?;
        return Ok(Registered::Existing);
    }
    let mut statement = conn
        .prepare_cached(
            "INSERT INTO batch_rows (project_id, batch_id, row_no, line, payment_id, \
             request_sha256, valid, cells, problems, done) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .map_err(failed)?;
    for row in rows {
        let row: NewBatchRow = row.map_err(|reason| Error::store(&what, reason))?;
        statement
            .execute(params![
                project,
                new.id,
                signed(row.row),
                signed(row.line),
                row.payment_id,
                row.request_sha256,
                row.valid,
                row.cells,
                row.problems,
                !row.valid,
            ])
            .map_err(failed)?;
    }
    let mut clashes = clashes(conn, project, &new.id).map_err(failed)?;
    if on_clash == OnClash::Register {
        clashes.retain(|clash| clash.held_by.is_some());
    }
    if clashes.is_empty() {
        conn.execute_batch("RELEASE register").map_err(failed)?;
        return Ok(Registered::New);
    }
    conn.execute_batch("ROLLBACK TO register; RELEASE register")
        .map_err(failed)?;
    Ok(Registered::Clashes(clashes))
}

/// The valid rows of batch `id` whose payment ID the ledger holds for another payout: a
/// recorded payout of another request (or with the merchant's metadata: a row carries none),
/// or, when none is recorded, a valid row of another batch for another request (the recorded
/// payout decides whose the ID is: the other batch's row is then a conflict, never paid). One
/// per row, in row order, at most [`batch::MAX_CLASHES`].
fn clashes(conn: &Connection, project: i64, id: &str) -> rusqlite::Result<Vec<RowClash>> {
    let mut found: Vec<RowClash> = Vec::new();
    let rows = conn
        .prepare_cached(
            "SELECT r.row_no, r.line, r.payment_id, NULL, NULL, NULL, \
             p.request_sha256 IS r.request_sha256 \
             FROM batch_rows r JOIN payouts p \
             ON p.project_id = r.project_id AND p.payment_id = r.payment_id \
             WHERE r.project_id = ?1 AND r.batch_id = ?2 AND r.valid \
             AND (p.request_sha256 IS NOT r.request_sha256 OR p.metadata IS NOT NULL) \
             UNION ALL \
             SELECT r.row_no, r.line, r.payment_id, o.batch_id, o.line, o.request_sha256, 0 \
             FROM batch_rows r JOIN batch_rows o INDEXED BY batch_rows_by_payment \
             ON o.project_id = r.project_id AND o.payment_id = r.payment_id \
             WHERE r.project_id = ?1 AND r.batch_id = ?2 AND r.valid \
             AND o.valid AND o.batch_id <> r.batch_id \
             AND o.request_sha256 IS NOT r.request_sha256 \
             AND NOT EXISTS (SELECT 1 FROM payouts p \
                 WHERE p.project_id = r.project_id AND p.payment_id = r.payment_id) \
             ORDER BY 1 LIMIT ?3",
        )?
        .query_map(
            params![project, id, signed(batch::MAX_CLASHES as u64)],
            |row| {
                let payment_id: String = row.get(2)?;
                let held_by = match row.get::<_, Option<String>>(3)? {
                    Some(batch_id) => Some(HeldRow {
                        payment_id: payment_id.clone(),
                        batch_id,
                        line: unsigned(row.get(4)?),
                        request_sha256: row.get(5)?,
                    }),
                    None => None,
                };
                Ok(RowClash {
                    row: unsigned(row.get(0)?),
                    line: unsigned(row.get(1)?),
                    payment_id,
                    held_by,
                    same_request: row.get(6)?,
                })
            },
        )?
        .collect::<rusqlite::Result<Vec<_>>>()?;
    for clash in rows {
        if found.last().is_none_or(|last| last.row != clash.row) {
            found.push(clash);
        }
    }
    Ok(found)
}

/// Claims rows (inside the caller's transaction).
fn claim(
    conn: &Connection,
    project: i64,
    id: &str,
    owner: &str,
    lease: Duration,
    max: usize,
) -> rusqlite::Result<Vec<ClaimedRow>> {
    let now = SystemTime::now();
    let now_nanos = nanos(now);
    let others = claims(conn, project, id, now_nanos)?
        .into_iter()
        .map(|(token, _)| token)
        .filter(|token| token != owner);
    let dead = serde_json::to_string(&batch::dead_owners(others)).unwrap_or_default();
    let mut statement = conn.prepare_cached(
        "UPDATE batch_rows SET claimed_by = ?3, lease_until = ?4 \
         WHERE project_id = ?1 AND batch_id = ?2 AND row_no IN ( \
             SELECT row_no FROM batch_rows WHERE project_id = ?1 AND batch_id = ?2 \
             AND done = 0 AND valid = 1 AND (claimed_by IS NULL OR lease_until <= ?5 \
                 OR claimed_by IN (SELECT value FROM json_each(?6))) \
             ORDER BY row_no LIMIT ?7) \
         RETURNING row_no, line, cells",
    )?;
    let mut claimed: Vec<ClaimedRow> = statement
        .query_map(
            params![
                project,
                id,
                owner,
                nanos(now + lease),
                now_nanos,
                dead,
                signed(max as u64)
            ],
            |row| {
                Ok(ClaimedRow {
                    row: unsigned(row.get(0)?),
                    line: unsigned(row.get(1)?),
                    cells: row.get(2)?,
                })
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    claimed.sort_by_key(|row| row.row);
    Ok(claimed)
}

impl SqliteBatches {
    /// Runs `sql` on batch `id` in its own transaction (`what` names it in errors): `?1` the
    /// project, `?2` the batch, then `more` from `?3` on. Answers how many rows it changed.
    async fn execute(
        &self,
        id: &str,
        what: String,
        sql: &'static str,
        more: Vec<Value>,
    ) -> Result<u64, Error> {
        batch::check_id(id)?;
        let mut values = vec![Value::Integer(self.project), Value::Text(id.to_owned())];
        values.extend(more);
        self.ledger
            .exclusive(what.clone(), move |tx| {
                tx.prepare_cached(sql)
                    .and_then(|mut s| s.execute(params_from_iter(values)))
                    .map(|n| n as u64)
                    .map_err(|e| Error::store(&what, e))
            })
            .await
    }
}

impl BatchStore for SqliteBatches {
    fn register_with(
        &self,
        batch: NewBatch,
        rows: RowSource,
        on_clash: OnClash,
    ) -> BoxFuture<'_, Result<Registered, Error>> {
        let project = self.project;
        Box::pin(async move {
            batch::check_id(&batch.id)?;
            self.ledger
                .exclusive(format!("register batch {}", batch.id), move |tx| {
                    register(tx, project, &batch, rows, on_clash)
                })
                .await
        })
    }

    fn claim<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        lease: Duration,
        max: usize,
    ) -> BoxFuture<'a, Result<Vec<ClaimedRow>, Error>> {
        let project = self.project;
        let (id, owner) = (id.to_owned(), owner.to_owned());
        Box::pin(async move {
            let what = format!("claim rows of batch {id}");
            batch::check_lease(&what, lease)?;
            batch::check_id(&id)?;
            self.ledger
                .exclusive(what.clone(), move |tx| {
                    claim(tx, project, &id, &owner, lease, max).map_err(|e| Error::store(&what, e))
                })
                .await
        })
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
            let until = nanos(SystemTime::now() + lease);
            self.execute(
                id,
                what,
                "UPDATE batch_rows SET lease_until = ?4 WHERE project_id = ?1 \
                 AND batch_id = ?2 AND claimed_by = ?3 AND done = 0",
                vec![Value::Text(owner.to_owned()), Value::Integer(until)],
            )
            .await
        })
    }

    fn finish<'a>(
        &'a self,
        id: &'a str,
        owner: &'a str,
        rows: &'a [u64],
    ) -> BoxFuture<'a, Result<u64, Error>> {
        let rows = serde_json::to_string(rows).unwrap_or_default();
        Box::pin(self.execute(
            id,
            format!("mark rows of batch {id} done"),
            "UPDATE batch_rows SET done = 1, claimed_by = NULL, lease_until = NULL \
             WHERE project_id = ?1 AND batch_id = ?2 AND claimed_by = ?3 \
             AND done = 0 AND row_no IN (SELECT value FROM json_each(?4))",
            vec![Value::Text(owner.to_owned()), Value::Text(rows)],
        ))
    }

    fn release<'a>(&'a self, id: &'a str, owner: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(self.execute(
            id,
            format!("give back the rows of batch {id}"),
            "UPDATE batch_rows SET claimed_by = NULL, lease_until = NULL \
             WHERE project_id = ?1 AND batch_id = ?2 AND claimed_by = ?3 AND done = 0",
            vec![Value::Text(owner.to_owned())],
        ))
    }

    fn reopen<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(self.execute(
            id,
            format!("start a new pass of batch {id}"),
            "UPDATE batch_rows SET done = 0, claimed_by = NULL, lease_until = NULL \
             WHERE project_id = ?1 AND batch_id = ?2 AND valid = 1 \
             AND NOT EXISTS (SELECT 1 FROM batch_rows WHERE project_id = ?1 \
                 AND batch_id = ?2 AND valid = 1 AND done = 0) \
             AND NOT EXISTS (SELECT 1 FROM payouts p \
                 WHERE p.project_id = ?1 AND p.payment_id = batch_rows.payment_id \
                 AND p.request_sha256 = batch_rows.request_sha256 AND p.metadata IS NULL \
                 AND p.settled = 1)",
            Vec::new(),
        ))
    }

    fn stopped(&self, limit: usize) -> BoxFuture<'_, Result<Vec<String>, Error>> {
        let project = self.project;
        Box::pin(
            self.ledger
                .read("list stopped batches".to_owned(), move |conn| {
                    conn.prepare_cached(
                        "SELECT b.batch_id FROM batches b WHERE b.project_id = ?1 AND b.paused = 0 \
                 AND EXISTS (SELECT 1 FROM batch_rows r WHERE r.project_id = ?1 \
                     AND r.batch_id = b.batch_id AND r.done = 0) \
                 AND NOT EXISTS (SELECT 1 FROM batch_rows c WHERE c.project_id = ?1 \
                     AND c.batch_id = b.batch_id AND c.done = 0 AND c.claimed_by IS NOT NULL \
                     AND c.lease_until > ?2) \
                 ORDER BY b.created_at, b.batch_id LIMIT ?3",
                    )?
                    .query_map(
                        params![project, nanos(SystemTime::now()), signed(limit as u64)],
                        |row| row.get(0),
                    )?
                    .collect()
                }),
        )
    }

    fn set_paused<'a>(&'a self, id: &'a str, paused: bool) -> BoxFuture<'a, Result<bool, Error>> {
        let project = self.project;
        let id = id.to_owned();
        Box::pin(async move {
            batch::check_id(&id)?;
            let what = format!("pause batch {id}");
            self.ledger
                .exclusive(what.clone(), move |tx| {
                    tx.execute(
                        "UPDATE batches SET paused = ?3 WHERE project_id = ?1 AND batch_id = ?2",
                        params![project, id, paused],
                    )
                    .map(|n| n == 1)
                    .map_err(|e| Error::store(&what, e))
                })
                .await
        })
    }

    fn info<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<BatchInfo>, Error>> {
        let project = self.project;
        let id = id.to_owned();
        Box::pin(async move {
            batch::check_id(&id)?;
            self.ledger
                .read(format!("read batch {id}"), move |conn| {
                    read_info(conn, project, &id)
                })
                .await
        })
    }

    fn progress<'a>(&'a self, id: &'a str) -> BoxFuture<'a, Result<Option<BatchProgress>, Error>> {
        let project = self.project;
        let id = id.to_owned();
        Box::pin(async move {
            batch::check_id(&id)?;
            self.ledger
                .read(format!("read batch {id}"), move |conn| {
                    progress(conn, project, &id, nanos(SystemTime::now()))
                })
                .await
        })
    }

    fn list(
        &self,
        before: Option<(SystemTime, String)>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<BatchProgress>, Error>> {
        let project = self.project;
        let (at, before_id) = before.map_or((i64::MAX, String::new()), |(at, id)| (nanos(at), id));
        let unbounded = before_id.is_empty();
        Box::pin(self.ledger.read("list batches".to_owned(), move |conn| {
            let ids: Vec<String> = conn
                .prepare_cached(
                    "SELECT batch_id FROM batches WHERE project_id = ?1 \
                     AND (?4 OR (created_at, batch_id) < (?2, ?3)) \
                     ORDER BY created_at DESC, batch_id DESC LIMIT ?5",
                )?
                .query_map(
                    params![project, at, before_id, unbounded, signed(limit as u64)],
                    |row| row.get(0),
                )?
                .collect::<rusqlite::Result<_>>()?;
            let now = nanos(SystemTime::now());
            let mut batches = Vec::with_capacity(ids.len());
            for id in ids {
                if let Some(one) = progress(conn, project, &id, now)? {
                    batches.push(one);
                }
            }
            Ok(batches)
        }))
    }

    fn rows<'a>(
        &'a self,
        id: &'a str,
        after: u64,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<BatchRow>, Error>> {
        let project = self.project;
        let id = id.to_owned();
        Box::pin(async move {
            batch::check_id(&id)?;
            self.ledger
                .read(format!("read the rows of batch {id}"), move |conn| {
                    conn.prepare_cached(
                        "SELECT row_no, line, payment_id, valid, cells, problems, done, \
                         request_sha256 \
                         FROM batch_rows WHERE project_id = ?1 AND batch_id = ?2 \
                         AND row_no > ?3 ORDER BY row_no LIMIT ?4",
                    )?
                    .query_map(
                        params![project, id, signed(after), signed(limit as u64)],
                        |row| {
                            Ok(BatchRow {
                                row: NewBatchRow {
                                    row: unsigned(row.get(0)?),
                                    line: unsigned(row.get(1)?),
                                    payment_id: row.get(2)?,
                                    valid: row.get(3)?,
                                    cells: row.get(4)?,
                                    problems: row.get(5)?,
                                    request_sha256: row.get(7)?,
                                },
                                done: row.get(6)?,
                            })
                        },
                    )?
                    .collect()
                })
                .await
        })
    }

    fn held_elsewhere<'a>(
        &'a self,
        batch: &'a str,
        payment_ids: &'a [String],
    ) -> BoxFuture<'a, Result<Vec<HeldRow>, Error>> {
        let project = self.project;
        let (batch, payment_ids) = (batch.to_owned(), payment_ids.to_vec());
        Box::pin(async move {
            batch::check_held_query(&payment_ids)?;
            self.ledger
                .read(
                    "find the batches holding payment IDs".to_owned(),
                    move |conn| {
                        let mut held = Vec::new();
                        let mut holders = conn.prepare_cached(
                            "SELECT batch_id, line, request_sha256 FROM batch_rows \
                         INDEXED BY batch_rows_by_payment \
                         WHERE project_id = ?1 AND payment_id = ?2 AND valid AND batch_id <> ?3",
                        )?;
                        for payment_id in payment_ids {
                            let rows =
                                holders.query_map(params![project, payment_id, batch], |row| {
                                    Ok(HeldRow {
                                        payment_id: payment_id.clone(),
                                        batch_id: row.get(0)?,
                                        line: unsigned(row.get(1)?),
                                        request_sha256: row.get(2)?,
                                    })
                                })?;
                            for row in rows {
                                held.push(row?);
                            }
                        }
                        Ok(held)
                    },
                )
                .await
        })
    }
}
