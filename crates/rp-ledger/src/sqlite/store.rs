//! [`SqliteStore`]: the payouts of one project in an SQLite ledger, as a [`PayoutStore`].

use std::sync::LazyLock;

use std::time::SystemTime;

use rp_model::{Currency, Limits, PaymentId, Period, ProjectId, Usage, usage_hour};
use rp_payout::usage::{check_limits, usage_from_hours};
use rp_payout::{
    Error, Inserted, PayoutEvent, PayoutOrigin, PayoutQuery, PayoutRecord, PayoutStore, StateCount,
    Updated,
};
use rp_transport::BoxFuture;
use rusqlite::ToSql;
use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension as _, params, params_from_iter};

use super::SqliteLedger;
use super::rows::{self, EVENT_COLUMNS, MUTABLE_COLUMNS, RECORD_COLUMNS};
use super::writer::{Job, Write};

/// The payouts of one project in an [`SqliteLedger`].
#[derive(Debug, Clone)]
pub struct SqliteStore {
    ledger: SqliteLedger,
    project: i64,
}

impl SqliteStore {
    pub(super) fn new(ledger: SqliteLedger, project: ProjectId) -> SqliteStore {
        SqliteStore {
            ledger,
            project: crate::stored::project_key(project),
        }
    }
}

// The SQL of every statement, built once: rusqlite's statement cache is keyed by the text,
// and a write runs on the one writer thread.

/// `INSERT` of a record: project, payment ID, request, its SHA-256, phone, amount,
/// currency, whether it counts against the limits, the hour it counts in (the ledger's
/// clock), version, created at, metadata, then the mutable columns.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO payouts (project_id, payment_id, request, request_sha256, phone, amount, \
         currency, counts, usage_hour, version, created_at, metadata, {}) VALUES ({}) \
         ON CONFLICT (project_id, payment_id) DO NOTHING",
        MUTABLE_COLUMNS.join(", "),
        vec!["?"; 12 + MUTABLE_COLUMNS.len()].join(", ")
    )
});

/// Adds to (or, with negative values, takes from) one hour's usage.
const ADD_USAGE: &str = "INSERT INTO limit_usage (project_id, currency, hour, amount, count) \
     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (project_id, currency, hour) \
     DO UPDATE SET amount = amount + ?4, count = count + ?5";

/// Whether a payout counts against the limits, set after its state changed; answers only
/// when that flips.
const SET_COUNTS: &str = "UPDATE payouts SET counts = ?3 \
     WHERE project_id = ?1 AND payment_id = ?2 AND counts <> ?3 \
     RETURNING amount, currency, usage_hour";

/// The hourly usage of the last 31 days in one currency.
const USAGE: &str = "SELECT hour, amount, count FROM limit_usage WHERE project_id = ? AND currency = ? AND hour >= ?";

/// Compare-and-set of the mutable columns, then project, payment ID, expected version and
/// the request's SHA-256.
static UPDATE: LazyLock<String> = LazyLock::new(|| {
    let assignments: Vec<String> = MUTABLE_COLUMNS.iter().map(|c| format!("{c} = ?")).collect();
    format!(
        "UPDATE payouts SET {}, version = version + 1 \
         WHERE project_id = ? AND payment_id = ? AND version = ? AND request_sha256 = ?",
        assignments.join(", ")
    )
});

static INSERT_EVENT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO payout_events (project_id, payment_id, version, {EVENT_COLUMNS}) \
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
    )
});

static GET: LazyLock<String> = LazyLock::new(|| {
    format!("SELECT {RECORD_COLUMNS} FROM payouts WHERE project_id = ? AND payment_id = ?")
});

static UNSETTLED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RECORD_COLUMNS} FROM payouts WHERE project_id = ? AND settled = 0 \
         AND payment_id > ? ORDER BY payment_id LIMIT ?"
    )
});

static EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM payout_events \
         WHERE project_id = ? AND payment_id = ? ORDER BY version"
    )
});

fn store_error(what: &str) -> impl Fn(rusqlite::Error) -> Error + '_ {
    move |e| Error::store(what, e)
}

/// Inserts a record and its first event, unless the payment ID is recorded or the payout does
/// not fit `limits` (in the writer's transaction, which holds the ledger's write lock, so no
/// other writer reads the usage in between).
pub(super) fn insert(
    conn: &Connection,
    project: i64,
    record: &PayoutRecord,
    event: &PayoutEvent,
    limits: Limits,
) -> Result<Inserted, Error> {
    let what = format!("insert payout {}", record.payment_id);
    let fail = store_error(&what);
    // The ledger's clock, read once: the usage's windows and the hour this payout counts in.
    let now = SystemTime::now();
    let (request, hash) = rows::request_text(&record.request).map_err(&fail)?;
    // In the writer's transaction, as a batch's registration is: the two never cross. Before
    // the limits, as on PostgreSQL: a held ID is refused as held, whatever the limits say.
    if let Some(holder) = holder(conn, project, record, &hash).map_err(&fail)? {
        return Ok(Inserted::Held(holder));
    }
    if !limits.is_empty() {
        if let Some(existing) = get(conn, project, &record.payment_id).map_err(&fail)? {
            return Ok(Inserted::Existing(existing));
        }
        let used = usage(conn, project, limits.currency, now).map_err(&fail)?;
        if let Err(over) = check_limits(limits, used, record)? {
            return Ok(Inserted::OverLimit(over));
        }
    }
    let counts = !record.state.releases_limits();
    let hour = usage_hour(now);
    let payment = &record.request.payment;
    let mut values = vec![
        Value::Integer(project),
        Value::Text(record.payment_id.as_str().to_owned()),
        Value::Text(request),
        Value::Text(hash),
        Value::Text(record.request.account.number.clone()),
        Value::Integer(signed(payment.amount)),
        Value::Text(payment.currency.clone()),
        Value::Integer(i64::from(counts)),
        Value::Integer(hour),
        Value::Integer(rows::version(record.version)),
        Value::Integer(rows::nanos(record.created_at)),
        record
            .metadata
            .as_ref()
            .map_or(Value::Null, |m| Value::Text(m.clone())),
    ];
    values.extend(rows::mutable_values(record).map_err(&fail)?);
    let inserted = conn
        .prepare_cached(&INSERT)
        .and_then(|mut statement| statement.execute(params_from_iter(values)))
        .map_err(&fail)?;
    if inserted == 0 {
        let existing = get(conn, project, &record.payment_id).map_err(&fail)?;
        return existing
            .map(Inserted::Existing)
            .ok_or_else(|| Error::store(&what, "neither inserted nor found"));
    }
    insert_event(conn, project, &record.payment_id, record.version, event).map_err(&fail)?;
    if counts {
        add_usage(
            conn,
            project,
            &payment.currency,
            hour,
            signed(payment.amount),
            1,
        )
        .map_err(&fail)?;
    }
    Ok(Inserted::New(record.clone()))
}

/// The batch row holding `record`'s payment ID for a different payout (see
/// [`Inserted::Held`]), unless a payout is recorded under it (that payout decides whose the
/// ID is): a valid row whose request hash is not `hash`, or any valid row when `record`
/// carries the merchant's metadata (a row carries none).
fn holder(
    conn: &Connection,
    project: i64,
    record: &PayoutRecord,
    hash: &str,
) -> rusqlite::Result<Option<String>> {
    conn.prepare_cached(
        "SELECT batch_id, line FROM batch_rows INDEXED BY batch_rows_by_payment \
         WHERE project_id = ?1 AND payment_id = ?2 AND valid \
         AND (?3 OR request_sha256 IS NOT ?4) \
         AND NOT EXISTS (SELECT 1 FROM payouts WHERE project_id = ?1 AND payment_id = ?2) \
         ORDER BY batch_id LIMIT 1",
    )?
    .query_row(
        params![
            project,
            record.payment_id.as_str(),
            record.metadata.is_some(),
            hash
        ],
        |row| {
            Ok(crate::batch::holder_name(
                &row.get::<_, String>(0)?,
                crate::batch::unsigned(row.get(1)?),
            ))
        },
    )
    .optional()
}

/// An amount as SQLite stores it (amounts above `i64::MAX` minor units do not occur).
fn signed(amount: u64) -> i64 {
    i64::try_from(amount).unwrap_or(i64::MAX)
}

fn add_usage(
    conn: &Connection,
    project: i64,
    currency: &str,
    hour: i64,
    amount: i64,
    count: i64,
) -> rusqlite::Result<()> {
    conn.prepare_cached(ADD_USAGE)?
        .execute(params![project, currency, hour, amount, count])?;
    Ok(())
}

/// Keeps the usage in step after `record`'s state changed: when whether it counts flipped,
/// its amount moves in or out of its hour.
fn follow_counts(conn: &Connection, project: i64, record: &PayoutRecord) -> rusqlite::Result<()> {
    let counts = !record.state.releases_limits();
    let flipped = conn
        .prepare_cached(SET_COUNTS)?
        .query_row(
            params![project, record.payment_id.as_str(), i64::from(counts)],
            |row| {
                Ok((
                    row.get::<_, i64>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                ))
            },
        )
        .optional()?;
    if let Some((amount, currency, hour)) = flipped {
        let sign = if counts { 1 } else { -1 };
        add_usage(conn, project, &currency, hour, sign * amount, sign)?;
    }
    Ok(())
}

/// What counts against the limits at `now` in `currency` (see [`PayoutStore::usage`]).
pub(super) fn usage(
    conn: &Connection,
    project: i64,
    currency: Currency,
    now: SystemTime,
) -> rusqlite::Result<Usage> {
    let mut statement = conn.prepare_cached(USAGE)?;
    let rows: Vec<(i64, i64, i64)> = statement
        .query_map(
            params![project, currency.code(), Period::Month.first_hour(now)],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)),
        )?
        .collect::<rusqlite::Result<_>>()?;
    Ok(usage_from_hours(rows, now))
}

/// Compare-and-set of a record's mutable columns with its event (in the writer's
/// transaction). The request is immutable: a record whose request differs is refused.
pub(super) fn update(
    conn: &Connection,
    project: i64,
    expected: u64,
    record: &PayoutRecord,
    event: &PayoutEvent,
) -> Result<Updated, Error> {
    let what = format!("update payout {}", record.payment_id);
    let fail = store_error(&what);
    let (_, hash) = rows::request_text(&record.request).map_err(&fail)?;
    let mut values = rows::mutable_values(record).map_err(&fail)?;
    values.extend([
        Value::Integer(project),
        Value::Text(record.payment_id.as_str().to_owned()),
        Value::Integer(rows::version(expected)),
        Value::Text(hash),
    ]);
    let changed = conn
        .prepare_cached(&UPDATE)
        .and_then(|mut statement| statement.execute(params_from_iter(values)))
        .map_err(&fail)?;
    if changed == 0 {
        let current = get(conn, project, &record.payment_id).map_err(&fail)?;
        return match current {
            Some(current) if current.version == expected => Err(Error::store(
                &what,
                "the recorded request is immutable, and this update carries a different one",
            )),
            current => Ok(Updated::Conflict(current)),
        };
    }
    let version = expected.saturating_add(1);
    insert_event(conn, project, &record.payment_id, version, event).map_err(&fail)?;
    follow_counts(conn, project, record).map_err(&fail)?;
    let mut stored = record.clone();
    stored.version = version;
    Ok(Updated::Done(stored))
}

fn insert_event(
    conn: &Connection,
    project: i64,
    payment_id: &PaymentId,
    version: u64,
    event: &PayoutEvent,
) -> rusqlite::Result<()> {
    let mut values = vec![
        Value::Integer(project),
        Value::Text(payment_id.as_str().to_owned()),
        Value::Integer(rows::version(version)),
    ];
    values.extend(rows::event_values(event)?);
    // Prepared once per connection (the statement cache), as are the others: parsing SQL
    // is a good part of a write's cost.
    conn.prepare_cached(&INSERT_EVENT)?
        .execute(params_from_iter(values))?;
    Ok(())
}

fn get(
    conn: &Connection,
    project: i64,
    payment_id: &PaymentId,
) -> rusqlite::Result<Option<PayoutRecord>> {
    conn.prepare_cached(&GET)?
        .query_row(params![project, payment_id.as_str()], rows::record)
        .optional()
}

/// `list`'s SQL and its parameters; `after` (creation time in nanoseconds, payment ID as
/// stored) in place of `query.after`.
fn list_sql(
    project: i64,
    query: &PayoutQuery,
    after: Option<&(i64, rows::StoredKey)>,
) -> (String, Vec<Box<dyn ToSql>>) {
    let mut sql = format!("SELECT {RECORD_COLUMNS} FROM payouts WHERE project_id = ?");
    let mut values = vec![Value::Integer(project)];
    if let Some(label) = &query.state {
        sql.push_str(" AND state_label = ?");
        values.push(Value::Text(label.clone()));
    }
    if query.attention {
        sql.push_str(" AND attention IS NOT NULL");
    }
    if let Some(since) = query.since {
        sql.push_str(" AND created_at >= ?");
        values.push(Value::Integer(rows::nanos(since)));
    }
    if let Some(until) = query.until {
        sql.push_str(" AND created_at < ?");
        values.push(Value::Integer(rows::nanos(until)));
    }
    if let Some(phone) = &query.phone {
        sql.push_str(" AND phone = ?");
        values.push(Value::Text(phone.clone()));
    }
    if let Some(id) = &query.payment_id {
        sql.push_str(" AND payment_id = ?");
        values.push(Value::Text(id.as_str().to_owned()));
    }
    if let Some(origin) = query.source {
        // The batch rows' payment IDs are read once (`IN` a subquery that does not refer to
        // the row); the first event is found by its key.
        let in_batch = if origin == PayoutOrigin::Batch {
            " AND payment_id IN"
        } else {
            " AND payment_id NOT IN"
        };
        sql.push_str(in_batch);
        sql.push_str(
            " (SELECT payment_id FROM batch_rows WHERE project_id = ? AND payment_id IS NOT NULL)",
        );
        values.push(Value::Integer(project));
        let first = "(SELECT source FROM payout_events AS e WHERE e.project_id = payouts.project_id \
             AND e.payment_id = payouts.payment_id AND e.version = 0)";
        if let Some(condition) = crate::origin::first_source_sql(origin, first) {
            sql.push_str(&format!(" AND {condition}"));
        }
    }
    let mut values: Vec<Box<dyn ToSql>> = values
        .into_iter()
        .map(|value| Box::new(value) as Box<dyn ToSql>)
        .collect();
    if let Some((at, id)) = after {
        // A row value: SQLite seeks the (created_at, payment_id) index to it, where the
        // equivalent `a < x OR (a = x AND b < y)` scans (38 ms instead of 0.3 ms a page at
        // 1,000,000 payouts).
        sql.push_str(" AND (created_at, payment_id) < (?, ?)");
        values.push(Box::new(*at));
        values.push(Box::new(id.clone()));
    }
    sql.push_str(" ORDER BY created_at DESC, payment_id DESC LIMIT ?");
    values.push(Box::new(
        i64::try_from(query.page_size()).unwrap_or(i64::MAX),
    ));
    (sql, values)
}

impl PayoutStore for SqliteStore {
    fn insert(
        &self,
        record: PayoutRecord,
        event: PayoutEvent,
        limits: Limits,
    ) -> BoxFuture<'_, Result<Inserted, Error>> {
        let what = format!("insert payout {}", record.payment_id);
        Box::pin(async move {
            let project = self.project;
            self.ledger
                .write(
                    |reply| {
                        Job::Write(Write::Insert {
                            project,
                            record: Box::new(record),
                            event: Box::new(event),
                            limits,
                            reply,
                        })
                    },
                    &what,
                )
                .await
                .inspect(|inserted| {
                    if matches!(inserted, Inserted::New(_)) {
                        self.ledger.payout_changed();
                    }
                })
        })
    }

    fn get<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Option<PayoutRecord>, Error>> {
        let (project, id) = (self.project, payment_id.clone());
        Box::pin(
            self.ledger
                .read(format!("read payout {payment_id}"), move |conn| {
                    get(conn, project, &id)
                }),
        )
    }

    fn update(
        &self,
        expected_version: u64,
        record: PayoutRecord,
        event: PayoutEvent,
    ) -> BoxFuture<'_, Result<Updated, Error>> {
        let what = format!("update payout {}", record.payment_id);
        Box::pin(async move {
            let project = self.project;
            self.ledger
                .write(
                    |reply| {
                        Job::Write(Write::Update {
                            project,
                            expected: expected_version,
                            record: Box::new(record),
                            event: Box::new(event),
                            reply,
                        })
                    },
                    &what,
                )
                .await
                .inspect(|updated| {
                    if matches!(updated, Updated::Done(_)) {
                        self.ledger.payout_changed();
                    }
                })
        })
    }

    fn unsettled(
        &self,
        after: Option<PaymentId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<PayoutRecord>, Error>> {
        let project = self.project;
        let after = after.map(PaymentId::into_string).unwrap_or_default();
        Box::pin(
            self.ledger
                .read("list unsettled payouts".to_owned(), move |conn| {
                    let mut statement = conn.prepare_cached(&UNSETTLED)?;
                    // A record this rp cannot read is skipped (and said), and the page filled
                    // from the rows after it: one such record must not stop reconcile.
                    // The cursor is the key as stored: a key that is not text (a foreign
                    // write) is an unreadable record too, and the walk goes on after it.
                    let (mut page, mut after) =
                        (Vec::new(), rows::StoredKey::Text(after.into_bytes()));
                    loop {
                        let wanted = limit - page.len();
                        let rows: Vec<(rows::StoredKey, rusqlite::Result<PayoutRecord>)> =
                            statement
                                .query_map(
                                    params![
                                        project,
                                        after,
                                        i64::try_from(wanted).unwrap_or(i64::MAX)
                                    ],
                                    |row| Ok((rows::StoredKey::read(row, 0)?, rows::record(row))),
                                )?
                                .collect::<rusqlite::Result<_>>()?;
                        let exhausted = rows.len() < wanted;
                        for (key, record) in rows {
                            match record {
                                Ok(record) => page.push(record),
                                Err(error) => {
                                    crate::stored::unreadable(&key.describe(), &error);
                                }
                            }
                            after = key;
                        }
                        if exhausted || page.len() >= limit {
                            return Ok(page);
                        }
                    }
                }),
        )
    }

    fn events<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Vec<PayoutEvent>, Error>> {
        let (project, id) = (self.project, payment_id.as_str().to_owned());
        Box::pin(self.ledger.read(
            format!("read the history of payout {payment_id}"),
            move |conn| {
                let mut statement = conn.prepare_cached(&EVENTS)?;

                statement
                    .query_map(params![project, id], rows::event)?
                    .collect()
            },
        ))
    }

    fn list<'a>(
        &'a self,
        query: &'a PayoutQuery,
    ) -> BoxFuture<'a, Result<Vec<PayoutRecord>, Error>> {
        let (project, mut query) = (self.project, query.clone());
        Box::pin(self.ledger.read("list payouts".to_owned(), move |conn| {
            // As in `unsettled`: a record this rp cannot read is left out (and said), and the
            // page filled from the rows after it.
            // The cursor is the payment ID as stored, whatever it holds (see `unsettled`).
            let size = query.page_size();
            let mut after = query.after.take().map(|(at, id)| {
                (
                    rows::nanos(at),
                    rows::StoredKey::Text(id.into_string().into_bytes()),
                )
            });
            let mut page = Vec::new();
            loop {
                query.limit = size - page.len();
                let (sql, values) = list_sql(project, &query, after.as_ref());
                let rows: Vec<(rows::StoredKey, i64, rusqlite::Result<PayoutRecord>)> = conn
                    .prepare_cached(&sql)?
                    .query_map(params_from_iter(values), |row| {
                        Ok((
                            rows::StoredKey::read(row, 0)?,
                            row.get(4)?,
                            rows::record(row),
                        ))
                    })?
                    .collect::<rusqlite::Result<_>>()?;
                let exhausted = rows.len() < query.limit;
                for (payment_id, created_at, record) in rows {
                    match record {
                        Ok(record) => page.push(record),
                        Err(error) => crate::stored::unreadable(&payment_id.describe(), &error),
                    }
                    after = Some((created_at, payment_id));
                }
                if exhausted || page.len() >= size {
                    return Ok(page);
                }
            }
        }))
    }

    fn usage(&self, currency: Currency) -> BoxFuture<'_, Result<Usage, Error>> {
        let project = self.project;
        Box::pin(
            self.ledger
                .read("read the usage of the limits".to_owned(), move |conn| {
                    usage(conn, project, currency, SystemTime::now())
                }),
        )
    }

    fn counts(&self) -> BoxFuture<'_, Result<StateCount, Error>> {
        let project = self.project;
        Box::pin(self.ledger.read("count payouts".to_owned(), move |conn| {
            let mut statement = conn.prepare_cached(
                "SELECT state_label, count(*), count(attention) FROM payouts \
                 WHERE project_id = ? GROUP BY state_label",
            )?;
            let rows: rusqlite::Result<Vec<(String, u64, u64)>> = statement
                .query_map(params![project], |row| {
                    let count = |i: usize| -> rusqlite::Result<u64> {
                        Ok(u64::try_from(row.get::<_, i64>(i)?).unwrap_or(0))
                    };
                    Ok((row.get(0)?, count(1)?, count(2)?))
                })?
                .collect();
            Ok(StateCount::from_rows(rows?))
        }))
    }
}
