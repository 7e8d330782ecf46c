//! The kinds of batched writes of [`super::writes`] and their statements: compare-and-sets
//! ([`Update`]: [`UPDATE_BATCH`], which answers a compare-and-set that does not match with the
//! record that stopped it, read `FOR SHARE`), inserts without limits ([`Insert`]) and reads of
//! a record by payment ID ([`Read`]), each bound as one statement of array parameters.

use super::PostgresLedger;
use super::rows::{
    self, EVENT_COLUMNS, EventRow, MUTABLE_COLUMNS, Mutable, RECORD_COLUMNS, qualified,
};
use super::store::usage_upsert;
use super::writes::{Job, Queue};
use deadpool_postgres::Client;
use rp_payout::PayoutRecord;
use rp_transport::BoxFuture;
use std::sync::LazyLock;
use tokio_postgres::types::ToSql;

/// One compare-and-set of a record with its event, as [`UPDATE_BATCH`] binds it.
#[derive(Debug)]
pub(super) struct Update {
    pub(super) project: i64,
    pub(super) payment_id: String,
    pub(super) expected: i64,
    pub(super) hash: String,
    pub(super) counts: bool,
    pub(super) mutable: Mutable,
    pub(super) event: EventRow,
}

/// What a compare-and-set came to, once its statement committed.
#[derive(Debug)]
pub(super) enum Outcome {
    /// It matched: the record and its event are written.
    Changed,
    /// It did not match; nothing was written. The record that stopped it, as it is now.
    Lost(Box<PayoutRecord>),
    /// It did not match, and the statement found no record to return (none is recorded, or
    /// its row could not be read back): the caller reads it.
    Unread,
}

/// The SQL types of the mutable columns, in the order of [`MUTABLE_COLUMNS`].
const MUTABLE_TYPES: [&str; 13] = [
    "text", "text", "boolean", "bigint", "text", "text", "text", "text", "boolean", "text",
    "bigint", "bigint", "bigint",
];

/// The SQL types of the event columns, in the order of [`EVENT_COLUMNS`].
const EVENT_TYPES: [&str; 8] = [
    "bigint", "text", "text", "text", "text", "text", "text", "text",
];

/// The compare-and-sets of one or more records, each with its event (with the new version)
/// and its change of usage: one array parameter per column, `$1` projects, `$2` payment IDs,
/// `$3` expected versions, `$4` request hashes (the request is immutable), `$5` whether each
/// now counts against the limits, then the mutable columns, then the event's columns. The
/// payouts table is joined to itself as `old`, the row the statement's snapshot sees: when
/// the compare-and-set matches, that is the row it replaces (any later change would have
/// moved the version), so `old.counts` says whether counting flipped. The usage changes of
/// the batch are summed per hour before they are added (one upsert may not touch a row
/// twice).
///
/// Returns one row per write: its ordinal (1-based), whether its compare-and-set matched,
/// and, when it did not, the record that stopped it ([`RECORD_COLUMNS`], all `NULL` when
/// there is none), so that a lost compare-and-set needs no second round trip. That record is
/// read `FOR SHARE`: under `READ COMMITTED` a locking read waits for a concurrent writer of
/// the row and returns its newest committed version (not the one of the statement's
/// snapshot), and the lock keeps it the newest until the statement commits: it is the
/// record a read after the statement would find.
static UPDATE_BATCH: LazyLock<String> = LazyLock::new(|| {
    let mut columns = vec![
        ("project_id", "bigint"),
        ("payment_id", "text"),
        ("expected", "bigint"),
        ("hash", "text"),
        ("counts", "boolean"),
    ];
    columns.extend(MUTABLE_COLUMNS.iter().copied().zip(MUTABLE_TYPES));
    let event_names: Vec<String> = EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("e_{c}"))
        .collect();
    columns.extend(event_names.iter().map(String::as_str).zip(EVENT_TYPES));
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{kind}[]", i + 1))
        .collect();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let assignments: Vec<String> = MUTABLE_COLUMNS
        .iter()
        .map(|c| format!("{c} = i.{c}"))
        .collect();
    let event_values: Vec<String> = event_names.iter().map(|c| format!("i.{c}")).collect();
    format!(
        "WITH input AS MATERIALIZED (SELECT * FROM unnest({}) WITH ORDINALITY AS i({}, ord)), \
         changed AS (UPDATE rp_ledger.payouts AS p SET {}, counts = i.counts, \
         version = p.version + 1 \
         FROM input AS i, rp_ledger.payouts AS old \
         WHERE p.project_id = i.project_id AND p.payment_id = i.payment_id \
         AND p.version = i.expected AND p.request_sha256 = i.hash \
         AND old.project_id = p.project_id AND old.payment_id = p.payment_id \
         RETURNING i.ord, p.project_id, p.payment_id, p.version, p.currency, p.usage_hour, \
         p.amount, p.counts, old.counts AS counted), \
         flipped AS (SELECT project_id, currency, usage_hour, \
         sum(CASE WHEN counts THEN amount ELSE -amount END)::bigint AS amount, \
         sum(CASE WHEN counts THEN 1 ELSE -1 END)::bigint AS count FROM changed \
         WHERE counts <> counted GROUP BY project_id, currency, usage_hour), \
         usage AS ({}), \
         events AS (INSERT INTO rp_ledger.payout_events (project_id, payment_id, version, \
         {EVENT_COLUMNS}) SELECT c.project_id, c.payment_id, c.version, {} \
         FROM changed AS c JOIN input AS i ON i.ord = c.ord), \
         lost AS (SELECT i.ord, {} FROM input AS i JOIN rp_ledger.payouts AS p \
         ON p.project_id = i.project_id AND p.payment_id = i.payment_id \
         WHERE NOT EXISTS (SELECT 1 FROM changed AS c WHERE c.ord = i.ord) FOR SHARE OF p) \
         SELECT i.ord, c.ord IS NOT NULL, {} FROM input AS i \
         LEFT JOIN changed AS c ON c.ord = i.ord LEFT JOIN lost AS l ON l.ord = i.ord",
        arrays.join(", "),
        names.join(", "),
        assignments.join(", "),
        usage_upsert("flipped"),
        event_values.join(", "),
        qualified(RECORD_COLUMNS, "p"),
        qualified(RECORD_COLUMNS, "l"),
    )
});

impl Job for Update {
    type Answer = Outcome;

    fn key(&self) -> (i64, &str) {
        (self.project, &self.payment_id)
    }

    fn queue(ledger: &PostgresLedger) -> &Queue<Update> {
        &ledger.shared.updates
    }

    fn write_batch<'a>(
        client: &'a Client,
        jobs: &'a [Update],
    ) -> BoxFuture<'a, Result<Vec<Outcome>, tokio_postgres::Error>> {
        Box::pin(update_batch(client, jobs))
    }

    fn wrote(answer: &Outcome) -> bool {
        matches!(answer, Outcome::Changed)
    }
}

/// The writes in one statement ([`UPDATE_BATCH`]): what each compare-and-set came to, in
/// the order of `updates`.
async fn update_batch(
    client: &Client,
    updates: &[Update],
) -> Result<Vec<Outcome>, tokio_postgres::Error> {
    let columns = Columns::of(updates);
    let statement = client.prepare_cached(&UPDATE_BATCH).await?;
    let rows = client.query(&statement, &columns.params()).await?;
    // A write the statement gave no row for is read by its caller (it does not happen).
    let mut outcomes: Vec<Outcome> = updates.iter().map(|_| Outcome::Unread).collect();
    for row in rows {
        let ord: i64 = row.try_get(0)?;
        let Some(slot) = usize::try_from(ord)
            .ok()
            .and_then(|o| o.checked_sub(1))
            .and_then(|i| outcomes.get_mut(i))
        else {
            continue;
        };
        *slot = if row.try_get(1)? {
            Outcome::Changed
        } else if row.try_get::<_, Option<String>>(2)?.is_none() {
            Outcome::Unread
        } else {
            // A row that does not read back as a record: the caller reads it again, and
            // reports what is wrong with it.
            rows::record_at(&row, 2).map_or(Outcome::Unread, |r| Outcome::Lost(Box::new(r)))
        };
    }
    Ok(outcomes)
}

/// The writes of a batch, column by column, as [`UPDATE_BATCH`]'s array parameters.
struct Columns {
    project: Vec<i64>,
    payment_id: Vec<String>,
    expected: Vec<i64>,
    hash: Vec<String>,
    counts: Vec<bool>,
    mutable: MutableColumns,
    event: EventColumns,
}

impl Columns {
    fn of(updates: &[Update]) -> Columns {
        fn column<T>(updates: &[Update], f: impl Fn(&Update) -> T) -> Vec<T> {
            updates.iter().map(f).collect()
        }
        Columns {
            project: column(updates, |u| u.project),
            payment_id: column(updates, |u| u.payment_id.clone()),
            expected: column(updates, |u| u.expected),
            hash: column(updates, |u| u.hash.clone()),
            counts: column(updates, |u| u.counts),
            mutable: MutableColumns::of(updates.iter().map(|u| &u.mutable)),
            event: EventColumns::of(updates.iter().map(|u| &u.event)),
        }
    }

    /// In the order of [`UPDATE_BATCH`]'s parameters.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.project,
            &self.payment_id,
            &self.expected,
            &self.hash,
            &self.counts,
        ];
        params.extend(self.mutable.params());
        params.extend(self.event.params());
        params
    }
}

/// The mutable columns of the records of a batch, in the order of [`MUTABLE_COLUMNS`].
struct MutableColumns {
    state: Vec<String>,
    state_label: Vec<String>,
    settled: Vec<bool>,
    updated_at: Vec<i64>,
    request_id: Vec<Option<String>>,
    last_code: Vec<Option<String>>,
    last_message: Vec<Option<String>>,
    attention: Vec<Option<String>>,
    maybe_sent: Vec<bool>,
    claimed_by: Vec<Option<String>>,
    attempts: Vec<i64>,
    lease_until: Vec<Option<i64>>,
    next_check_at: Vec<Option<i64>>,
}

impl MutableColumns {
    fn of<'a>(rows: impl Iterator<Item = &'a Mutable> + Clone) -> MutableColumns {
        fn column<'a, T>(
            rows: impl Iterator<Item = &'a Mutable>,
            f: impl Fn(&Mutable) -> T,
        ) -> Vec<T> {
            rows.map(f).collect()
        }
        MutableColumns {
            state: column(rows.clone(), |m| m.state.clone()),
            state_label: column(rows.clone(), |m| m.state_label.clone()),
            settled: column(rows.clone(), |m| m.settled),
            updated_at: column(rows.clone(), |m| m.updated_at),
            request_id: column(rows.clone(), |m| m.request_id.clone()),
            last_code: column(rows.clone(), |m| m.last_code.clone()),
            last_message: column(rows.clone(), |m| m.last_message.clone()),
            attention: column(rows.clone(), |m| m.attention.clone()),
            maybe_sent: column(rows.clone(), |m| m.maybe_sent),
            claimed_by: column(rows.clone(), |m| m.claimed_by.clone()),
            attempts: column(rows.clone(), |m| m.attempts),
            lease_until: column(rows.clone(), |m| m.lease_until),
            next_check_at: column(rows, |m| m.next_check_at),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 13] {
        [
            &self.state,
            &self.state_label,
            &self.settled,
            &self.updated_at,
            &self.request_id,
            &self.last_code,
            &self.last_message,
            &self.attention,
            &self.maybe_sent,
            &self.claimed_by,
            &self.attempts,
            &self.lease_until,
            &self.next_check_at,
        ]
    }
}

/// The events of a batch, in the order of [`EVENT_COLUMNS`].
struct EventColumns {
    at: Vec<i64>,
    source: Vec<String>,
    previous: Vec<Option<String>>,
    state: Vec<String>,
    code: Vec<Option<String>>,
    message: Vec<Option<String>>,
    note: Vec<Option<String>>,
    raw: Vec<Option<String>>,
}

impl EventColumns {
    fn of<'a>(rows: impl Iterator<Item = &'a EventRow> + Clone) -> EventColumns {
        fn column<'a, T>(
            rows: impl Iterator<Item = &'a EventRow>,
            f: impl Fn(&EventRow) -> T,
        ) -> Vec<T> {
            rows.map(f).collect()
        }
        EventColumns {
            at: column(rows.clone(), |e| e.at),
            source: column(rows.clone(), |e| e.source.clone()),
            previous: column(rows.clone(), |e| e.previous.clone()),
            state: column(rows.clone(), |e| e.state.clone()),
            code: column(rows.clone(), |e| e.code.clone()),
            message: column(rows.clone(), |e| e.message.clone()),
            note: column(rows.clone(), |e| e.note.clone()),
            raw: column(rows, |e| e.raw.clone()),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 8] {
        [
            &self.at,
            &self.source,
            &self.previous,
            &self.state,
            &self.code,
            &self.message,
            &self.note,
            &self.raw,
        ]
    }
}

/// One insert of a record with its first event, unless its payment ID is recorded: the
/// columns of the record, then of its event.
#[derive(Debug)]
pub(super) struct Insert {
    pub(super) project: i64,
    pub(super) payment_id: String,
    pub(super) request: String,
    pub(super) hash: String,
    pub(super) phone: String,
    pub(super) amount: i64,
    pub(super) currency: String,
    pub(super) counts: bool,
    pub(super) version: i64,
    pub(super) created_at: i64,
    pub(super) metadata: Option<String>,
    pub(super) mutable: Mutable,
    pub(super) event: EventRow,
}

/// What one insert came to, once its transaction committed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Inserting {
    /// The record is written, with its first event and its usage.
    Inserted,
    /// A record with its payment ID is recorded: nothing written.
    NotInserted,
    /// No record is, but a batch row holds the payment ID for a different payout (see
    /// [`rp_payout::Inserted::Held`]): nothing written. Which row.
    Held(String),
}

/// The inserts of one or more records, each unless its payment ID is recorded (`ON CONFLICT
/// DO NOTHING` on the primary key) or, none recorded, a batch row holds it for a different
/// payout (a valid row of another request hash, or any when the record carries the
/// merchant's metadata: answered with the row), each with its first event and its usage,
/// written only if the record was: one array parameter per column, `$1` projects, `$2`
/// payment IDs, `$3` requests, `$4` their hashes, `$5` phones, `$6` amounts, `$7`
/// currencies, `$8` whether each counts against the limits, `$9` versions, `$10` creation
/// times, `$11` metadata, then the mutable columns, then the event's columns; the hour each
/// counts in is the server's. The usage of the batch
/// is summed per hour before it is added (one upsert may not touch a row twice). Returns the
/// ordinal (1-based) of each write that inserted its record (with no batch row), and of each
/// held one with the batch and line of the row holding it. Run after
/// [`super::store::LOCK_PAYMENT_IDS_SHARED`], in its transaction.
static INSERT_BATCH: LazyLock<String> = LazyLock::new(|| {
    let mut columns = vec![
        ("project_id", "bigint"),
        ("payment_id", "text"),
        ("request", "text"),
        ("request_sha256", "text"),
        ("phone", "text"),
        ("amount", "bigint"),
        ("currency", "text"),
        ("counts", "boolean"),
        ("version", "bigint"),
        ("created_at", "bigint"),
        ("metadata", "text"),
    ];
    columns.extend(MUTABLE_COLUMNS.iter().copied().zip(MUTABLE_TYPES));
    let record_names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let event_names: Vec<String> = EVENT_COLUMNS
        .split(", ")
        .map(|c| format!("e_{c}"))
        .collect();
    columns.extend(event_names.iter().map(String::as_str).zip(EVENT_TYPES));
    let arrays: Vec<String> = columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| format!("${}::{kind}[]", i + 1))
        .collect();
    let names: Vec<&str> = columns.iter().map(|(name, _)| *name).collect();
    let event_values: Vec<String> = event_names.iter().map(|c| format!("i.{c}")).collect();
    format!(
        "WITH input AS MATERIALIZED (SELECT * FROM unnest({}) WITH ORDINALITY AS i({}, ord)), \
         held AS MATERIALIZED (SELECT i.ord, h.batch_id, h.line FROM input AS i \
         CROSS JOIN LATERAL (SELECT r.batch_id, r.line FROM rp_ledger.batch_rows AS r \
         WHERE r.project_id = i.project_id AND r.payment_id = i.payment_id AND r.valid \
         AND (i.metadata IS NOT NULL OR r.request_sha256 IS DISTINCT FROM i.request_sha256) \
         ORDER BY r.batch_id LIMIT 1) AS h \
         WHERE NOT EXISTS (SELECT 1 FROM rp_ledger.payouts AS p \
         WHERE p.project_id = i.project_id AND p.payment_id = i.payment_id)), \
         inserted AS (INSERT INTO rp_ledger.payouts ({}, usage_hour) \
         SELECT {}, div(extract(epoch FROM clock_timestamp())::bigint, 3600) FROM input \
         WHERE ord NOT IN (SELECT ord FROM held) \
         ORDER BY ord ON CONFLICT (project_id, payment_id) DO NOTHING \
         RETURNING project_id, payment_id, currency, usage_hour, amount, counts), \
         usage AS ({}), \
         events AS (INSERT INTO rp_ledger.payout_events (project_id, payment_id, version, \
         {EVENT_COLUMNS}) SELECT i.project_id, i.payment_id, i.version, {} \
         FROM inserted AS n JOIN input AS i \
         ON i.project_id = n.project_id AND i.payment_id = n.payment_id) \
         SELECT i.ord, NULL::text AS batch_id, NULL::bigint AS line \
         FROM inserted AS n JOIN input AS i \
         ON i.project_id = n.project_id AND i.payment_id = n.payment_id \
         UNION ALL SELECT ord, batch_id, line FROM held",
        arrays.join(", "),
        names.join(", "),
        record_names.join(", "),
        record_names.join(", "),
        usage_upsert(
            "(SELECT project_id, currency, usage_hour, sum(amount)::bigint AS amount, \
             count(*)::bigint AS count FROM inserted WHERE counts \
             GROUP BY project_id, currency, usage_hour) AS new"
        ),
        event_values.join(", "),
    )
});

impl Job for Insert {
    type Answer = Inserting;

    fn key(&self) -> (i64, &str) {
        (self.project, &self.payment_id)
    }

    fn queue(ledger: &PostgresLedger) -> &Queue<Insert> {
        &ledger.shared.inserts
    }

    fn write_batch<'a>(
        client: &'a Client,
        jobs: &'a [Insert],
    ) -> BoxFuture<'a, Result<Vec<Inserting>, tokio_postgres::Error>> {
        Box::pin(insert_batch(client, jobs))
    }

    fn wrote(answer: &Inserting) -> bool {
        *answer == Inserting::Inserted
    }
}

/// The inserts in one transaction: the payment-ID locks of their projects, shared, then
/// [`INSERT_BATCH`]; what each came to. Its four statements are sent at once (pipelined, one
/// round trip); whatever fails, the `COMMIT` ends the transaction (an aborted one as a
/// rollback), so the connection goes back to the pool outside of one.
async fn insert_batch(
    client: &Client,
    inserts: &[Insert],
) -> Result<Vec<Inserting>, tokio_postgres::Error> {
    let columns = InsertColumns::of(inserts);
    let projects = super::store::sorted_projects(inserts.iter().map(|i| i.project).collect());
    let (lock, statement) = tokio::try_join!(
        client.prepare_cached(super::store::LOCK_PAYMENT_IDS_SHARED),
        client.prepare_cached(&INSERT_BATCH)
    )?;
    let (params, lock_params): (_, [&(dyn ToSql + Sync); 1]) = (columns.params(), [&projects]);
    let (begun, locked, rows, committed) = tokio::join!(
        client.batch_execute("BEGIN"),
        client.execute(&lock, &lock_params),
        client.query(&statement, &params),
        client.batch_execute("COMMIT"),
    );
    begun?;
    locked?;
    let rows = rows?;
    committed?;
    let mut answers = vec![Inserting::NotInserted; inserts.len()];
    for row in rows {
        let ord: i64 = row.try_get(0)?;
        let holder: Option<(String, i64)> = match row.try_get::<_, Option<String>>(1)? {
            Some(batch_id) => Some((batch_id, row.try_get(2)?)),
            None => None,
        };
        if let Some(slot) = usize::try_from(ord)
            .ok()
            .and_then(|o| o.checked_sub(1))
            .and_then(|i| answers.get_mut(i))
        {
            *slot = match holder {
                Some((batch_id, line)) => Inserting::Held(crate::batch::holder_name(
                    &batch_id,
                    crate::batch::unsigned(line),
                )),
                None => Inserting::Inserted,
            };
        }
    }
    Ok(answers)
}

/// The inserts of a batch, column by column, as [`INSERT_BATCH`]'s array parameters.
struct InsertColumns {
    project: Vec<i64>,
    payment_id: Vec<String>,
    request: Vec<String>,
    hash: Vec<String>,
    phone: Vec<String>,
    amount: Vec<i64>,
    currency: Vec<String>,
    counts: Vec<bool>,
    version: Vec<i64>,
    created_at: Vec<i64>,
    metadata: Vec<Option<String>>,
    mutable: MutableColumns,
    event: EventColumns,
}

impl InsertColumns {
    fn of(inserts: &[Insert]) -> InsertColumns {
        fn column<T>(inserts: &[Insert], f: impl Fn(&Insert) -> T) -> Vec<T> {
            inserts.iter().map(f).collect()
        }
        InsertColumns {
            project: column(inserts, |i| i.project),
            payment_id: column(inserts, |i| i.payment_id.clone()),
            request: column(inserts, |i| i.request.clone()),
            hash: column(inserts, |i| i.hash.clone()),
            phone: column(inserts, |i| i.phone.clone()),
            amount: column(inserts, |i| i.amount),
            currency: column(inserts, |i| i.currency.clone()),
            counts: column(inserts, |i| i.counts),
            version: column(inserts, |i| i.version),
            created_at: column(inserts, |i| i.created_at),
            metadata: column(inserts, |i| i.metadata.clone()),
            mutable: MutableColumns::of(inserts.iter().map(|i| &i.mutable)),
            event: EventColumns::of(inserts.iter().map(|i| &i.event)),
        }
    }

    /// In the order of [`INSERT_BATCH`]'s parameters.
    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![
            &self.project,
            &self.payment_id,
            &self.request,
            &self.hash,
            &self.phone,
            &self.amount,
            &self.currency,
            &self.counts,
            &self.version,
            &self.created_at,
            &self.metadata,
        ];
        params.extend(self.mutable.params());
        params.extend(self.event.params());
        params
    }
}

/// One read of a record by its payment ID ([`PostgresLedger::read`]), batched like the
/// writes: reads that arrive while others are being read are read together, in one
/// statement, on one connection.
#[derive(Debug)]
pub(super) struct Read {
    pub(super) project: i64,
    pub(super) payment_id: String,
}

/// The records of one or more payouts: `$1` projects, `$2` payment IDs. Returns the ordinal
/// (1-based) of each read whose record exists, then the record ([`RECORD_COLUMNS`]).
static READ_BATCH: LazyLock<String> = LazyLock::new(|| {
    format!(
        "SELECT i.ord, {} FROM unnest($1::bigint[], $2::text[]) WITH ORDINALITY \
         AS i(project_id, payment_id, ord) JOIN rp_ledger.payouts AS p \
         ON p.project_id = i.project_id AND p.payment_id = i.payment_id",
        qualified(RECORD_COLUMNS, "p")
    )
});

impl Job for Read {
    /// The record, if there is one, or what is wrong with its row.
    type Answer = Result<Option<PayoutRecord>, String>;

    fn key(&self) -> (i64, &str) {
        (self.project, &self.payment_id)
    }

    fn queue(ledger: &PostgresLedger) -> &Queue<Read> {
        &ledger.shared.reads
    }

    fn write_batch<'a>(
        client: &'a Client,
        jobs: &'a [Read],
    ) -> BoxFuture<'a, Result<Vec<Self::Answer>, tokio_postgres::Error>> {
        Box::pin(read_batch(client, jobs))
    }

    fn wrote(_: &Self::Answer) -> bool {
        false
    }
}

/// The reads in one statement ([`READ_BATCH`]): each record, in the order of `reads`.
async fn read_batch(
    client: &Client,
    reads: &[Read],
) -> Result<Vec<Result<Option<PayoutRecord>, String>>, tokio_postgres::Error> {
    let projects: Vec<i64> = reads.iter().map(|r| r.project).collect();
    let ids: Vec<&str> = reads.iter().map(|r| r.payment_id.as_str()).collect();
    let statement = client.prepare_cached(&READ_BATCH).await?;
    let rows = client.query(&statement, &[&projects, &ids]).await?;
    let mut records: Vec<Result<Option<PayoutRecord>, String>> =
        reads.iter().map(|_| Ok(None)).collect();
    for row in rows {
        let ord: i64 = row.try_get(0)?;
        if let Some(slot) = usize::try_from(ord)
            .ok()
            .and_then(|o| o.checked_sub(1))
            .and_then(|i| records.get_mut(i))
        {
            *slot = rows::record_at(&row, 1).map(Some);
        }
    }
    Ok(records)
}
