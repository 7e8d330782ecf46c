//! [`PostgresStore`]: the payouts of one project in a PostgreSQL ledger, as a
//! [`PayoutStore`]. Each write is one `READ COMMITTED` transaction: the record and its event.

use std::sync::LazyLock;
use std::time::SystemTime;

use deadpool_postgres::Client;
use rp_model::{Currency, Limits, PaymentId, Period, ProjectId, Usage};
use rp_payout::usage::{check_limits, usage_from_hours};
use rp_payout::{
    Error, Inserted, PayoutEvent, PayoutOrigin, PayoutQuery, PayoutRecord, PayoutStore, StateCount,
    Updated,
};
use rp_transport::BoxFuture;
use tokio_postgres::types::ToSql;

use super::PostgresLedger;
use super::batched::{Insert, Inserting, Outcome, Read, Update};
use super::clock::{SERVER_CLOCK, server_time};
use super::connect::describe;
use super::rows::{self, EVENT_COLUMNS, EventRow, MUTABLE_COLUMNS, Mutable, RECORD_COLUMNS};

/// The payouts of one project in a [`PostgresLedger`].
#[derive(Debug, Clone)]
pub struct PostgresStore {
    ledger: PostgresLedger,
    project: i64,
}

/// How many columns [`INSERT`] has before the mutable ones.
const INSERT_KEY_COLUMNS: usize = 11;

/// `INSERT` of a record, unless its payment ID is recorded: `$1` project, `$2` payment ID,
/// `$3` request, `$4` its hash, `$5` phone, `$6` amount, `$7` currency, `$8` whether it
/// counts against the limits, `$9` version, `$10` created at, `$11` metadata, then the
/// mutable columns; the hour it counts in is the server's.
static INSERT: LazyLock<String> = LazyLock::new(|| {
    format!(
        "INSERT INTO rp_ledger.payouts (project_id, payment_id, request, request_sha256, phone, \
         amount, currency, counts, version, created_at, metadata, {}, usage_hour) VALUES ({}, \
         div(extract(epoch FROM clock_timestamp())::bigint, 3600)) \
         ON CONFLICT (project_id, payment_id) DO NOTHING",
        MUTABLE_COLUMNS.join(", "),
        placeholders(1, INSERT_KEY_COLUMNS + MUTABLE_COLUMNS.len())
    )
});

/// Adds the hourly usage of the rows of `source` (a `FROM` item with the columns
/// `project_id, currency, usage_hour, amount, count`) to this connection's shard: a
/// data-modifying `WITH` part.
pub(super) fn usage_upsert(source: &str) -> String {
    format!(
        "INSERT INTO rp_ledger.limit_usage (project_id, currency, hour, shard, amount, count) \
         SELECT project_id, currency, usage_hour, \
         (pg_backend_pid() % 16)::smallint, amount, count FROM {source} \
         ON CONFLICT (project_id, currency, hour, shard) DO UPDATE \
         SET amount = rp_ledger.limit_usage.amount + excluded.amount, \
         count = rp_ledger.limit_usage.count + excluded.count"
    )
}

/// The hourly usage in one currency from an hour on: `$1` project, `$2` currency, `$3` hour.
const USAGE: &str = "SELECT hour, sum(amount)::bigint, sum(count)::bigint \
     FROM rp_ledger.limit_usage WHERE project_id = $1 AND currency = $2 AND hour >= $3 \
     GROUP BY hour";

/// Serialises the reservations of one project: `$1` project.
const LOCK_LIMITS: &str =
    "SELECT pg_advisory_xact_lock(hashtextextended('rp_ledger.limits/' || ($1::bigint)::text, 0))";

/// Takes the payment-ID locks of projects `$1` (an array), shared, for the transaction: a
/// new payout holds its project's from before it looks for a batch row holding its payment
/// ID to its commit, and a batch's registration takes it alone for its clash check
/// ([`super::register`]'s `LOCK_PAYMENT_IDS`). A statement of its own: the look that follows
/// is a later statement, whose snapshot has every registration committed before the lock.
/// The projects come sorted and each once ([`sorted_projects`]), and are locked in that
/// order: two inserts of several projects never wait for each other behind two registrations.
pub(super) const LOCK_PAYMENT_IDS_SHARED: &str = "SELECT count(pg_advisory_xact_lock_shared(\
     hashtextextended('rp_ledger.payment_ids/' || p::text, 0))) FROM unnest($1::bigint[]) AS p";

/// `projects` sorted, each once: [`LOCK_PAYMENT_IDS_SHARED`]'s parameter.
pub(super) fn sorted_projects(mut projects: Vec<i64>) -> Vec<i64> {
    projects.sort_unstable();
    projects.dedup();
    projects
}

/// The batch row holding payment ID `$2` of project `$1` for a different payout (see
/// [`Inserted::Held`]): a valid row whose request hash is not `$4`, or any valid row when
/// the payout carries the merchant's metadata (`$3`; a row carries none). Asked only when no
/// payout is recorded under the ID.
const HOLDER: &str = "SELECT batch_id, line FROM rp_ledger.batch_rows \
     WHERE project_id = $1 AND payment_id = $2 AND valid \
     AND ($3 OR request_sha256 IS DISTINCT FROM $4) ORDER BY batch_id LIMIT 1";

/// The event columns as typed placeholders from `$first` on, for `INSERT … SELECT`.
fn event_placeholders(first: usize) -> String {
    [
        "bigint", "text", "text", "text", "text", "text", "text", "text",
    ]
    .iter()
    .enumerate()
    .map(|(i, kind)| format!("${}::{kind}", first + i))
    .collect::<Vec<_>>()
    .join(", ")
}

/// [`INSERT`], its first event and its usage in **one statement** (one round trip, atomic and
/// durable when it returns, as any autocommitted statement): the event and the usage are
/// written only if the record was. Its parameters: those of [`INSERT`], then the event's
/// columns.
static INSERT_WITH_EVENT: LazyLock<String> = LazyLock::new(|| {
    let n = INSERT_KEY_COLUMNS + MUTABLE_COLUMNS.len();
    format!(
        "WITH inserted AS ({} RETURNING project_id, payment_id, version, currency, usage_hour, \
         amount, counts), \
         usage AS ({}) \
         INSERT INTO rp_ledger.payout_events (project_id, payment_id, version, {EVENT_COLUMNS}) \
         SELECT project_id, payment_id, version, {} FROM inserted",
        *INSERT,
        usage_upsert(
            "(SELECT project_id, currency, usage_hour, amount, 1 AS count FROM inserted WHERE counts) AS new"
        ),
        event_placeholders(n + 1)
    )
});

static GET: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RECORD_COLUMNS} FROM rp_ledger.payouts WHERE project_id = $1 AND payment_id = $2"
    )
});

static UNSETTLED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {RECORD_COLUMNS} FROM rp_ledger.payouts WHERE project_id = $1 AND NOT settled \
         AND payment_id > $2 ORDER BY payment_id LIMIT $3"
    )
});

static EVENTS: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT {EVENT_COLUMNS} FROM rp_ledger.payout_events \
         WHERE project_id = $1 AND payment_id = $2 ORDER BY version"
    )
});

const COUNTS: &str = "SELECT state_label, count(*), count(attention) FROM rp_ledger.payouts \
     WHERE project_id = $1 GROUP BY state_label";

/// `$first, $first+1, …` up to `$last`.
fn placeholders(first: usize, last: usize) -> String {
    (first..=last)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

impl PostgresStore {
    pub(super) fn new(ledger: PostgresLedger, project: ProjectId) -> PostgresStore {
        PostgresStore {
            ledger,
            project: crate::stored::project_key(project),
        }
    }

    async fn insert_record(
        &self,
        record: PayoutRecord,
        event: PayoutEvent,
        limits: Limits,
    ) -> Result<Inserted, Error> {
        let what = format!("insert payout {}", record.payment_id);
        let (request, hash) =
            rows::request_text(&record.request).map_err(|e| Error::store(&what, e))?;
        let mutable = Mutable::of(&record).map_err(|e| Error::store(&what, e))?;
        let event = EventRow::of(&event).map_err(|e| Error::store(&what, e))?;
        let (payment_id, version, created_at) = (
            record.payment_id.as_str(),
            rows::version(record.version),
            rows::nanos(record.created_at),
        );
        let payment = &record.request.payment;
        let amount = i64::try_from(payment.amount).unwrap_or(i64::MAX);
        let counts = !record.state.releases_limits();
        if !limits.is_empty() {
            let mut params: Vec<&(dyn ToSql + Sync)> = vec![
                &self.project,
                &payment_id,
                &request,
                &hash,
                &record.request.account.number,
                &amount,
                &payment.currency,
                &counts,
                &version,
                &created_at,
                &record.metadata,
            ];
            params.extend(mutable.params());
            params.extend(event.params());
            let mut client = self.ledger.client(&what).await?;
            return self
                .insert_within(&mut client, &record, &hash, &params, limits)
                .await
                .map_err(|e| e.into_error(&what));
        }
        let insert = Insert {
            project: self.project,
            payment_id: payment_id.to_owned(),
            request,
            hash,
            phone: record.request.account.number.clone(),
            amount,
            currency: payment.currency.clone(),
            counts,
            version,
            created_at,
            metadata: record.metadata.clone(),
            mutable,
            event,
        };
        // Written with the inserts of other calls that arrive meanwhile (group commit), in
        // one statement that is committed when this returns.
        let inserted = self
            .ledger
            .write_insert(insert)
            .await
            .map_err(|reason| Error::store(&what, reason))?;
        if let Inserting::Held(holder) = inserted {
            return Ok(Inserted::Held(holder));
        }
        if inserted == Inserting::NotInserted {
            // `ON CONFLICT DO NOTHING` waited for the conflicting insert to commit: it is there.
            let existing = self
                .read_record(&record.payment_id)
                .await
                .map_err(|e| Error::store(&what, e))?;
            return existing
                .map(Inserted::Existing)
                .ok_or_else(|| Error::store(&what, "neither inserted nor found"));
        }
        Ok(Inserted::New(record))
    }

    /// An insert against limits, in a transaction that holds the project's reservation lock:
    /// the usage read and the insert are one step for every other reservation. `hash` is the
    /// request's hash (as in `params`), for the look for a batch row holding the ID.
    async fn insert_within(
        &self,
        client: &mut Client,
        record: &PayoutRecord,
        hash: &str,
        params: &[&(dyn ToSql + Sync)],
        limits: Limits,
    ) -> Result<Inserted, Failure> {
        let tx = client
            .build_transaction()
            .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
            .start()
            .await?;
        tx.execute(LOCK_LIMITS, &[&self.project]).await?;
        let lock = tx.prepare_cached(LOCK_PAYMENT_IDS_SHARED).await?;
        tx.execute(&lock, &[&vec![self.project]]).await?;
        if let Some(existing) = self.existing_on(&tx, &record.payment_id).await? {
            return Ok(Inserted::Existing(existing));
        }
        let with_metadata = record.metadata.is_some();
        let holder = tx.prepare_cached(HOLDER).await?;
        let holder = tx
            .query_opt(
                &holder,
                &[
                    &self.project,
                    &record.payment_id.as_str(),
                    &with_metadata,
                    &hash,
                ],
            )
            .await?;
        if let Some(row) = holder {
            let (batch_id, line): (String, i64) = (row.try_get(0)?, row.try_get(1)?);
            return Ok(Inserted::Held(crate::batch::holder_name(
                &batch_id,
                crate::batch::unsigned(line),
            )));
        }
        let now = server_time(tx.query_one(SERVER_CLOCK, &[]).await?.try_get(0)?);
        let used = usage_on(&tx, self.project, limits.currency, now).await?;
        if let Err(over) = check_limits(limits, used, record).map_err(Failure::Other)? {
            return Ok(Inserted::OverLimit(over));
        }
        let statement = tx.prepare_cached(&INSERT_WITH_EVENT).await?;
        if tx.execute(&statement, params).await? == 0 {
            // Recorded in between by an insert that reserves nothing (no limits set there).
            return match self.existing_on(&tx, &record.payment_id).await? {
                Some(existing) => Ok(Inserted::Existing(existing)),
                None => Err(Failure::Other(Error::store(
                    format!("insert payout {}", record.payment_id),
                    "neither inserted nor found",
                ))),
            };
        }
        tx.commit().await?;
        self.ledger.committed();
        Ok(Inserted::New(record.clone()))
    }

    /// The record of `payment_id`, read in the transaction `tx`.
    async fn existing_on(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        payment_id: &PaymentId,
    ) -> Result<Option<PayoutRecord>, Failure> {
        let row = tx
            .query_opt(GET.as_str(), &[&self.project, &payment_id.as_str()])
            .await?;
        row.map(|row| {
            rows::record(&row)
                .map_err(|e| Failure::Other(Error::store(format!("read payout {payment_id}"), e)))
        })
        .transpose()
    }

    async fn update_record(
        &self,
        expected: u64,
        record: PayoutRecord,
        event: PayoutEvent,
    ) -> Result<Updated, Error> {
        let what = format!("update payout {}", record.payment_id);
        let (_, hash) = rows::request_text(&record.request).map_err(|e| Error::store(&what, e))?;
        let update = Update {
            project: self.project,
            payment_id: record.payment_id.as_str().to_owned(),
            expected: rows::version(expected),
            hash,
            counts: !record.state.releases_limits(),
            mutable: Mutable::of(&record).map_err(|e| Error::store(&what, e))?,
            event: EventRow::of(&event).map_err(|e| Error::store(&what, e))?,
        };
        // Written with the updates of other calls that arrive meanwhile (group commit), in
        // one statement that is committed when this returns.
        let current = match self
            .ledger
            .write_update(update)
            .await
            .map_err(|reason| Error::store(&what, reason))?
        {
            Outcome::Changed => None,
            // The record that stopped it, read (under a lock) in the same statement.
            Outcome::Lost(current) => Some(Some(*current)),
            Outcome::Unread => Some(
                self.read_record(&record.payment_id)
                    .await
                    .map_err(|e| Error::store(&what, e))?,
            ),
        };
        if let Some(current) = current {
            return match current {
                Some(current) if current.version == expected => Err(Error::store(
                    &what,
                    "the recorded request is immutable, and this update carries a different one",
                )),
                current => Ok(Updated::Conflict(current)),
            };
        }
        let version = expected.saturating_add(1);
        let mut stored = record;
        stored.version = version;
        Ok(Updated::Done(stored))
    }

    /// The record of `payment_id`, read with the other reads that arrive meanwhile, in one
    /// statement.
    async fn read_record(&self, payment_id: &PaymentId) -> Result<Option<PayoutRecord>, Error> {
        let read = Read {
            project: self.project,
            payment_id: payment_id.as_str().to_owned(),
        };
        self.ledger
            .read(read)
            .await
            .map_err(|reason| Error::store(format!("read payout {payment_id}"), reason))
    }

    async fn read_unsettled(
        &self,
        after: Option<PaymentId>,
        limit: usize,
    ) -> Result<Vec<PayoutRecord>, Error> {
        let what = "list unsettled payouts";
        let after = after.map(PaymentId::into_string).unwrap_or_default();
        // A record this rp cannot read is skipped (and said), and the page filled from the
        // rows after it: one such record must not stop reconcile.
        let (mut page, mut after) = (Vec::new(), after);
        loop {
            let wanted = i64::try_from(limit - page.len()).unwrap_or(i64::MAX);
            let rows = self
                .query(what, &UNSETTLED, &[&self.project, &after, &wanted])
                .await?;
            let exhausted = rows.len() < limit - page.len();
            for row in &rows {
                let payment_id: String = row.try_get(0).map_err(|e| Error::store(what, e))?;
                match rows::record(row) {
                    Ok(record) => page.push(record),
                    Err(error) => crate::stored::unreadable(&payment_id, &error),
                }
                after = payment_id;
            }
            if exhausted || page.len() >= limit {
                return Ok(page);
            }
        }
    }

    async fn read_events(&self, payment_id: &PaymentId) -> Result<Vec<PayoutEvent>, Error> {
        let what = format!("read the history of payout {payment_id}");
        let rows = self
            .query(&what, &EVENTS, &[&self.project, &payment_id.as_str()])
            .await?;
        rows.iter()
            .map(rows::event)
            .collect::<Result<_, _>>()
            .map_err(|e| Error::store(&what, e))
    }

    async fn read_list(&self, query: &PayoutQuery) -> Result<Vec<PayoutRecord>, Error> {
        let what = "list payouts";
        let mut filter = ListFilter::of(self.project, query);
        let size = query.page_size();
        // As in `read_unsettled`: a record this rp cannot read is left out (and said), and
        // the page filled from the rows after it.
        let mut page = Vec::new();
        loop {
            filter.limit = i64::try_from(size - page.len()).unwrap_or(i64::MAX);
            let rows = {
                let (sql, params) = filter.sql();
                self.query(what, &sql, &params).await?
            };
            let exhausted = rows.len() < size - page.len();
            for row in &rows {
                let cursor: (String, i64) = (
                    row.try_get(0)
                        .map_err(|e| Error::store(what, describe(&e)))?,
                    row.try_get(4)
                        .map_err(|e| Error::store(what, describe(&e)))?,
                );
                match rows::record(row) {
                    Ok(record) => page.push(record),
                    Err(error) => crate::stored::unreadable(&cursor.0, &error),
                }
                filter.after = Some((cursor.1, cursor.0));
            }
            if exhausted || page.len() >= size {
                return Ok(page);
            }
        }
    }

    async fn read_counts(&self) -> Result<StateCount, Error> {
        let what = "count payouts";
        let rows = self.query(what, COUNTS, &[&self.project]).await?;
        let mut counts = Vec::with_capacity(rows.len());
        for row in &rows {
            let column = |i: usize| -> Result<i64, Error> {
                row.try_get(i).map_err(|e| Error::store(what, describe(&e)))
            };
            let label: String = row
                .try_get(0)
                .map_err(|e| Error::store(what, describe(&e)))?;
            let count = u64::try_from(column(1)?).unwrap_or(0);
            let attention = u64::try_from(column(2)?).unwrap_or(0);
            counts.push((label, count, attention));
        }
        Ok(StateCount::from_rows(counts))
    }

    /// The server's clock: leases of several instances on several machines are all measured
    /// on it. Read off an offset measured every few seconds rather than asked each time
    /// (see [`super::clock`]): within milliseconds of the server's `clock_timestamp()`.
    async fn read_now(&self) -> Result<Option<SystemTime>, Error> {
        self.ledger
            .server_now("read the server's clock")
            .await
            .map(Some)
    }

    /// What counts against the limits now, on the server's clock.
    async fn read_usage(&self, currency: Currency) -> Result<Usage, Error> {
        let what = "read the usage of the limits";
        let client = self.ledger.client(what).await?;
        let now = client
            .query_one(SERVER_CLOCK, &[])
            .await
            .and_then(|row| row.try_get(0))
            .map(server_time)
            .map_err(|e| Error::store(what, describe(&e)))?;
        usage_on(&client, self.project, currency, now)
            .await
            .map_err(|e| e.into_error(what))
    }

    /// Runs a read (a prepared, cached statement) on a pooled connection.
    async fn query(
        &self,
        what: &str,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<tokio_postgres::Row>, Error> {
        let client: Client = self.ledger.client(what).await?;
        let statement = client
            .prepare_cached(sql)
            .await
            .map_err(|e| Error::store(what, describe(&e)))?;
        client
            .query(&statement, params)
            .await
            .map_err(|e| Error::store(what, describe(&e)))
    }
}

/// A failure of a step of several statements: SQL, or already an [`Error`].
enum Failure {
    Sql(tokio_postgres::Error),
    Other(Error),
}

impl Failure {
    /// The store error, an SQL failure described as doing `what`.
    fn into_error(self, what: &str) -> Error {
        match self {
            Failure::Sql(e) => Error::store(what, describe(&e)),
            Failure::Other(e) => e,
        }
    }
}

impl From<tokio_postgres::Error> for Failure {
    fn from(error: tokio_postgres::Error) -> Failure {
        Failure::Sql(error)
    }
}

/// The usage at `now` in `currency`, summed over the hourly rows of the last 31 days.
async fn usage_on(
    client: &impl deadpool_postgres::GenericClient,
    project: i64,
    currency: Currency,
    now: SystemTime,
) -> Result<Usage, Failure> {
    let first = Period::Month.first_hour(now);
    let rows = client
        .query(USAGE, &[&project, &currency.code(), &first])
        .await?;
    let rows = rows
        .iter()
        .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
        .collect::<Result<Vec<(i64, i64, i64)>, tokio_postgres::Error>>()?;
    Ok(usage_from_hours(rows, now))
}

/// The values of a [`PayoutQuery`] as SQL parameters.
struct ListFilter {
    project: i64,
    state: Option<String>,
    attention: bool,
    since: Option<i64>,
    until: Option<i64>,
    phone: Option<String>,
    payment_id: Option<String>,
    source: Option<PayoutOrigin>,
    after: Option<(i64, String)>,
    limit: i64,
}

impl ListFilter {
    fn of(project: i64, query: &PayoutQuery) -> ListFilter {
        ListFilter {
            project,
            state: query.state.clone(),
            attention: query.attention,
            since: query.since.map(rows::nanos),
            until: query.until.map(rows::nanos),
            phone: query.phone.clone(),
            payment_id: query.payment_id.as_ref().map(|id| id.as_str().to_owned()),
            source: query.source,
            after: query
                .after
                .as_ref()
                .map(|(at, id)| (rows::nanos(*at), id.as_str().to_owned())),
            limit: i64::try_from(query.page_size()).unwrap_or(i64::MAX),
        }
    }

    /// `list`'s SQL and its parameters (borrowed from `self`).
    fn sql(&self) -> (String, Vec<&(dyn ToSql + Sync)>) {
        let mut params: Vec<&(dyn ToSql + Sync)> = Vec::new();
        let project = bind(&mut params, &self.project);
        let mut sql =
            format!("SELECT {RECORD_COLUMNS} FROM rp_ledger.payouts WHERE project_id = {project}");
        if let Some(label) = &self.state {
            sql.push_str(&format!(" AND state_label = {}", bind(&mut params, label)));
        }
        if self.attention {
            sql.push_str(" AND attention IS NOT NULL");
        }
        if let Some(since) = &self.since {
            sql.push_str(&format!(" AND created_at >= {}", bind(&mut params, since)));
        }
        if let Some(until) = &self.until {
            sql.push_str(&format!(" AND created_at < {}", bind(&mut params, until)));
        }
        if let Some(phone) = &self.phone {
            sql.push_str(&format!(" AND phone = {}", bind(&mut params, phone)));
        }
        if let Some(id) = &self.payment_id {
            sql.push_str(&format!(" AND payment_id = {}", bind(&mut params, id)));
        }
        if let Some(origin) = self.source {
            // (NOT) EXISTS: a semi or anti join on the batch rows, planned as a whole; the
            // first event is found by its key.
            let exists = if origin == PayoutOrigin::Batch {
                "EXISTS"
            } else {
                "NOT EXISTS"
            };
            sql.push_str(&format!(
                " AND {exists} (SELECT 1 FROM rp_ledger.batch_rows AS b \
                 WHERE b.project_id = payouts.project_id AND b.payment_id = payouts.payment_id)"
            ));
            let first = "(SELECT source FROM rp_ledger.payout_events AS e \
                 WHERE e.project_id = payouts.project_id AND e.payment_id = payouts.payment_id \
                 AND e.version = 0)";
            if let Some(condition) = crate::origin::first_source_sql(origin, first) {
                sql.push_str(&format!(" AND {condition}"));
            }
        }
        if let Some((at, id)) = &self.after {
            let at = bind(&mut params, at);
            let id = bind(&mut params, id);
            // A row value: the (created_at, payment_id) index is sought, not scanned.
            sql.push_str(&format!(" AND (created_at, payment_id) < ({at}, {id})"));
        }
        let limit = bind(&mut params, &self.limit);
        sql.push_str(&format!(
            " ORDER BY created_at DESC, payment_id DESC LIMIT {limit}"
        ));
        (sql, params)
    }
}

/// Adds a parameter; its placeholder (`$n`).
fn bind<'a>(params: &mut Vec<&'a (dyn ToSql + Sync)>, value: &'a (dyn ToSql + Sync)) -> String {
    params.push(value);
    format!("${}", params.len())
}

impl PayoutStore for PostgresStore {
    fn insert(
        &self,
        record: PayoutRecord,
        event: PayoutEvent,
        limits: Limits,
    ) -> BoxFuture<'_, Result<Inserted, Error>> {
        Box::pin(async move {
            let inserted = self.insert_record(record, event, limits).await;
            if matches!(inserted, Ok(Inserted::New(_))) {
                self.ledger.payout_changed();
            }
            inserted
        })
    }

    fn get<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Option<PayoutRecord>, Error>> {
        Box::pin(self.read_record(payment_id))
    }

    fn update(
        &self,
        expected_version: u64,
        record: PayoutRecord,
        event: PayoutEvent,
    ) -> BoxFuture<'_, Result<Updated, Error>> {
        Box::pin(async move {
            let updated = self.update_record(expected_version, record, event).await;
            if matches!(updated, Ok(Updated::Done(_))) {
                self.ledger.payout_changed();
            }
            updated
        })
    }

    fn unsettled(
        &self,
        after: Option<PaymentId>,
        limit: usize,
    ) -> BoxFuture<'_, Result<Vec<PayoutRecord>, Error>> {
        Box::pin(self.read_unsettled(after, limit))
    }

    fn events<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Vec<PayoutEvent>, Error>> {
        Box::pin(self.read_events(payment_id))
    }

    fn list<'a>(
        &'a self,
        query: &'a PayoutQuery,
    ) -> BoxFuture<'a, Result<Vec<PayoutRecord>, Error>> {
        Box::pin(self.read_list(query))
    }

    fn counts(&self) -> BoxFuture<'_, Result<StateCount, Error>> {
        Box::pin(self.read_counts())
    }

    fn usage(&self, currency: Currency) -> BoxFuture<'_, Result<Usage, Error>> {
        Box::pin(self.read_usage(currency))
    }

    fn now(&self) -> BoxFuture<'_, Result<Option<SystemTime>, Error>> {
        Box::pin(self.read_now())
    }
}
