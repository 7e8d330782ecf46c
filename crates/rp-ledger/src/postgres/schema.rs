//! The PostgreSQL schema, versioned: migrations embedded here, applied on open in one
//! transaction under an advisory lock (instances opening at once migrate once), all in the
//! schema [`POSTGRES_SCHEMA`]; `rp_ledger.schema_version` holds the version.

use tokio_postgres::Client;

use super::connect::describe;
use crate::LedgerError;

/// The PostgreSQL schema (namespace) that holds the ledger's tables. Nothing outside it is
/// read or altered.
pub const POSTGRES_SCHEMA: &str = "rp_ledger";

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 9;

/// The key of the advisory lock held while migrating ("RPLG", as SQLite's application ID).
const MIGRATION_LOCK: i64 = 0x5250_4C47;

/// Version 1: payouts (one row per project and payment ID; the request immutable, with its
/// hash) and their history. The same columns as the SQLite ledger; text that is compared or
/// ordered uses the "C" collation (byte order, as Rust compares strings).
const V1: &str = r#"
CREATE TABLE rp_ledger.payouts (
    project_id     BIGINT  NOT NULL,
    payment_id     TEXT    COLLATE "C" NOT NULL,
    request        TEXT    NOT NULL,   -- wire::PayoutRequest as JSON; never changes
    request_sha256 TEXT    NOT NULL,   -- hex SHA-256 of `request`
    phone          TEXT    COLLATE "C" NOT NULL,   -- request.account.number, for queries
    state          TEXT    NOT NULL,   -- PayoutState as tagged JSON
    state_label    TEXT    COLLATE "C" NOT NULL,   -- PayoutState::label
    settled        BOOLEAN NOT NULL,   -- PayoutState::is_settled
    version        BIGINT  NOT NULL,
    created_at     BIGINT  NOT NULL,   -- nanoseconds since the Unix epoch
    updated_at     BIGINT  NOT NULL,
    request_id     TEXT,
    last_code      TEXT,
    last_message   TEXT,
    attention      TEXT,
    maybe_sent     BOOLEAN NOT NULL,
    claimed_by     TEXT,               -- host/pid/start/client of the claim that sends it
    attempts       BIGINT  NOT NULL,   -- payout requests counted before each was sent
    lease_until    BIGINT,             -- nanoseconds, server clock: until when the claim holds
    next_check_at  BIGINT,             -- nanoseconds: when reconcile asks about it next
    PRIMARY KEY (project_id, payment_id)
);
CREATE INDEX payouts_by_time ON rp_ledger.payouts (project_id, created_at DESC, payment_id DESC);
CREATE INDEX payouts_by_state ON rp_ledger.payouts
    (project_id, state_label, created_at DESC, payment_id DESC);
CREATE INDEX payouts_by_phone ON rp_ledger.payouts
    (project_id, phone, created_at DESC, payment_id DESC);
CREATE INDEX payouts_open ON rp_ledger.payouts (project_id, payment_id) WHERE NOT settled;
CREATE INDEX payouts_attention ON rp_ledger.payouts (project_id, created_at DESC, payment_id DESC)
    WHERE attention IS NOT NULL;

CREATE TABLE rp_ledger.payout_events (
    project_id BIGINT NOT NULL,
    payment_id TEXT   COLLATE "C" NOT NULL,
    version    BIGINT NOT NULL,   -- the payout's version this event produced (0: recorded)
    at         BIGINT NOT NULL,   -- nanoseconds since the Unix epoch
    source     TEXT   NOT NULL,   -- EventSource::as_text
    previous   TEXT,              -- PayoutState as tagged JSON
    state      TEXT   NOT NULL,
    code       TEXT,
    message    TEXT,
    note       TEXT,
    raw        TEXT,              -- the raw signed body of a callback or status response
    PRIMARY KEY (project_id, payment_id, version),
    FOREIGN KEY (project_id, payment_id) REFERENCES rp_ledger.payouts (project_id, payment_id)
);
"#;

/// Version 2: the project's amount limits, as in the SQLite ledger: each payout's amount,
/// currency, whether it counts and the hour it was recorded in on the server's clock; hourly
/// sums of what counts. The new columns keep no default once filled, so an instance of an
/// older rp still running during an upgrade fails to insert instead of recording payouts the
/// limits never see. Each hour has up to 16 rows
/// (`shard`: the writing connection's backend PID modulo 16), so that concurrent inserts on
/// different connections do not queue on one row; a reservation sums them. Existing payouts
/// are counted in.
const V2: &str = r#"
ALTER TABLE rp_ledger.payouts ADD COLUMN amount BIGINT NOT NULL DEFAULT 0;
ALTER TABLE rp_ledger.payouts ADD COLUMN currency TEXT COLLATE "C" NOT NULL DEFAULT '';
ALTER TABLE rp_ledger.payouts ADD COLUMN counts BOOLEAN NOT NULL DEFAULT TRUE;
ALTER TABLE rp_ledger.payouts ADD COLUMN usage_hour BIGINT NOT NULL DEFAULT 0;
UPDATE rp_ledger.payouts SET
    amount = (request::jsonb #>> '{payment,amount}')::bigint,
    currency = request::jsonb #>> '{payment,currency}',
    counts = state_label NOT IN ('rejected', 'payment_id_taken', 'decline'),
    usage_hour = div(greatest(created_at, 0), 3600000000000);
ALTER TABLE rp_ledger.payouts ALTER COLUMN amount DROP DEFAULT,
    ALTER COLUMN currency DROP DEFAULT, ALTER COLUMN counts DROP DEFAULT,
    ALTER COLUMN usage_hour DROP DEFAULT;

CREATE TABLE rp_ledger.limit_usage (
    project_id BIGINT   NOT NULL,
    currency   TEXT     COLLATE "C" NOT NULL,
    hour       BIGINT   NOT NULL,   -- whole hours since the Unix epoch (created_at)
    shard      SMALLINT NOT NULL,
    amount     BIGINT   NOT NULL,   -- sum of the amounts that count, in minor units
    count      BIGINT   NOT NULL,   -- how many payouts count
    PRIMARY KEY (project_id, currency, hour, shard)
);
INSERT INTO rp_ledger.limit_usage (project_id, currency, hour, shard, amount, count)
    SELECT project_id, currency, usage_hour, 0, sum(amount), count(*)
    FROM rp_ledger.payouts WHERE counts GROUP BY 1, 2, 3;
"#;

/// Version 3: batches (`rp-ledger`'s `BatchStore`), as in the SQLite ledger: a file registered
/// whole, its header and every row's cells, and the rows' claims: which worker holds a row,
/// until when (nanoseconds on the server's clock, as every lease and registration time here),
/// and whether the current pass finished it. Besides the index of the undone rows, which a
/// claim walks in row order, an index of the claimed ones: before each claim the live
/// claimants are read (to take over at once the rows of a process of this host that is gone),
/// and that read must not walk every undone row of a large batch.
const V3: &str = r#"
CREATE TABLE rp_ledger.batches (
    project_id BIGINT   NOT NULL,
    batch_id   TEXT     COLLATE "C" NOT NULL,   -- hex SHA-256 of the file
    file_name  TEXT     NOT NULL,
    delimiter  SMALLINT NOT NULL,   -- the file's delimiter byte
    header     BYTEA    NOT NULL,   -- the header row, CSV
    rows       BIGINT   NOT NULL,   -- non-blank rows after the header
    valid_rows BIGINT   NOT NULL,
    totals     TEXT     NOT NULL,   -- JSON: [[currency, minor units], ...]
    limits     TEXT     NOT NULL,   -- JSON: [[limit, value], ...], as confirmed
    created_at BIGINT   NOT NULL,   -- nanoseconds since the Unix epoch, server clock
    PRIMARY KEY (project_id, batch_id)
);
CREATE INDEX batches_by_time ON rp_ledger.batches (project_id, created_at DESC, batch_id DESC);

CREATE TABLE rp_ledger.batch_rows (
    project_id  BIGINT  NOT NULL,
    batch_id    TEXT    COLLATE "C" NOT NULL,
    row_no      BIGINT  NOT NULL,   -- 1-based, non-blank rows after the header
    line        BIGINT  NOT NULL,
    payment_id  TEXT    COLLATE "C",
    request_sha256 TEXT,            -- of the request a valid row pays (payouts.request_sha256)
    valid       BOOLEAN NOT NULL,
    cells       BYTEA   NOT NULL,   -- the row as read, CSV
    problems    TEXT,               -- why an invalid row is invalid
    done        BOOLEAN NOT NULL,   -- the current pass finished it (an invalid row: always)
    claimed_by  TEXT,               -- the worker (Owner token) that holds it
    lease_until BIGINT,             -- nanoseconds, server clock: until when the claim holds
    PRIMARY KEY (project_id, batch_id, row_no),
    FOREIGN KEY (project_id, batch_id) REFERENCES rp_ledger.batches (project_id, batch_id)
);
CREATE INDEX batch_rows_undone ON rp_ledger.batch_rows (project_id, batch_id, row_no)
    WHERE NOT done;
CREATE INDEX batch_rows_claimed ON rp_ledger.batch_rows (project_id, batch_id, claimed_by)
    WHERE NOT done AND claimed_by IS NOT NULL;
"#;

/// Version 4: the operators of `rp serve`'s console and their sessions, as in the SQLite
/// ledger (a password's argon2 hash, the SHA-256 of a session's token), the API's keys; a
/// batch stopped on
/// purpose is marked `paused`.
const V4: &str = r#"
ALTER TABLE rp_ledger.batches ADD COLUMN paused BOOLEAN NOT NULL DEFAULT FALSE;
CREATE TABLE rp_ledger.operators (
    name          TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    password_hash TEXT   NOT NULL,   -- PHC string ($argon2id$...)
    role          TEXT   NOT NULL,   -- view | pay
    totp_secret   TEXT,              -- Base32, when a second factor is required
    updated_at    BIGINT NOT NULL    -- nanoseconds since the Unix epoch
);
CREATE TABLE rp_ledger.sessions (
    token_sha256 TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    operator     TEXT   COLLATE "C" NOT NULL REFERENCES rp_ledger.operators (name),
    csrf         TEXT   NOT NULL,    -- the token every form of the session carries
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL
);
CREATE INDEX sessions_by_operator ON rp_ledger.sessions (operator);
CREATE TABLE rp_ledger.api_keys (
    name       TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    key_sha256 TEXT   COLLATE "C" NOT NULL UNIQUE,   -- hex SHA-256 of the key; never the key
    role       TEXT   NOT NULL,                       -- view (read) | pay
    created_at BIGINT NOT NULL,
    revoked_at BIGINT
);
"#;

/// Version 5: each payout's metadata, and webhooks as a transactional outbox, as in the
/// SQLite ledger: a project's
/// endpoints, one delivery per endpoint for every change of a payout's state (inserted by a
/// trigger on `payout_events`, in the transaction that records the change), each attempt's
/// outcome in a log. Times of deliveries are the server's clock.
const V5: &str = r#"
ALTER TABLE rp_ledger.payouts ADD COLUMN metadata TEXT;   -- the merchant's JSON; never sent
CREATE TABLE rp_ledger.webhook_endpoints (
    id              BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,   -- never reused
    project_id      BIGINT NOT NULL,
    url             TEXT   NOT NULL,
    secret          TEXT   NOT NULL,   -- whsec_...: signs every delivery; shown once
    created_at      BIGINT NOT NULL,
    disabled_at     BIGINT,
    disabled_reason TEXT
);
CREATE INDEX webhook_endpoints_by_project ON rp_ledger.webhook_endpoints (project_id);

CREATE TABLE rp_ledger.webhook_deliveries (
    endpoint_id     BIGINT NOT NULL REFERENCES rp_ledger.webhook_endpoints (id),
    project_id      BIGINT NOT NULL,
    payment_id      TEXT   COLLATE "C" NOT NULL,
    version         BIGINT NOT NULL,   -- the event's (payout_events.version)
    created_at      BIGINT NOT NULL,
    attempts        BIGINT NOT NULL DEFAULT 0,   -- every attempt, for the log
    failures        BIGINT NOT NULL DEFAULT 0,   -- since created or replayed: the schedule
    next_attempt_at BIGINT,            -- nanoseconds; NULL once delivered or given up
    delivered_at    BIGINT,
    failed_at       BIGINT,            -- given up
    claimed_by      TEXT,
    lease_until     BIGINT,
    PRIMARY KEY (endpoint_id, project_id, payment_id, version),
    FOREIGN KEY (project_id, payment_id, version)
        REFERENCES rp_ledger.payout_events (project_id, payment_id, version)
);
CREATE INDEX webhook_deliveries_due ON rp_ledger.webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_by_payment
    ON rp_ledger.webhook_deliveries (project_id, payment_id, version);

CREATE TABLE rp_ledger.webhook_attempts (
    endpoint_id BIGINT NOT NULL,
    project_id  BIGINT NOT NULL,
    payment_id  TEXT   COLLATE "C" NOT NULL,
    version     BIGINT NOT NULL,
    attempt     BIGINT NOT NULL,   -- 1, 2, ...
    at          BIGINT NOT NULL,
    took_ms     BIGINT NOT NULL,
    status      INTEGER,           -- the endpoint's HTTP status, when it answered
    error       TEXT,
    PRIMARY KEY (endpoint_id, project_id, payment_id, version, attempt),
    FOREIGN KEY (endpoint_id, project_id, payment_id, version)
        REFERENCES rp_ledger.webhook_deliveries (endpoint_id, project_id, payment_id, version)
);

CREATE FUNCTION rp_ledger.payout_events_to_webhooks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    -- Due now on the server's clock (claims compare with it), whatever the instance's clock
    -- says. FOR KEY SHARE: an endpoint being removed is waited for, then skipped, instead of
    -- failing this change on the foreign key.
    INSERT INTO rp_ledger.webhook_deliveries
        (endpoint_id, project_id, payment_id, version, created_at, next_attempt_at)
    SELECT e.id, NEW.project_id, NEW.payment_id, NEW.version, NEW.at,
        (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint
    FROM rp_ledger.webhook_endpoints e WHERE e.project_id = NEW.project_id
    FOR KEY SHARE OF e;
    RETURN NULL;
END
$$;
CREATE TRIGGER payout_events_to_webhooks AFTER INSERT ON rp_ledger.payout_events
FOR EACH ROW WHEN (NEW.previous IS NULL OR NEW.previous <> NEW.state)
EXECUTE FUNCTION rp_ledger.payout_events_to_webhooks();
"#;

/// Version 6: batch rows by payment ID, as in the SQLite ledger.
const V6: &str = r#"
CREATE INDEX batch_rows_by_payment ON rp_ledger.batch_rows (project_id, payment_id)
    WHERE payment_id IS NOT NULL;
"#;

/// Version 7: the due deliveries by project, then time. A claim and a set-aside read one
/// project's due deliveries; on a ledger shared by projects, those of another project (one
/// whose sender is not running, say) are no longer read by each of them.
const V7: &str = r#"
DROP INDEX rp_ledger.webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due ON rp_ledger.webhook_deliveries (project_id, next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
"#;

/// Version 8: a change that marks a payout as needing attention without changing its state
/// makes deliveries too, as in the SQLite ledger: its event's note is the payout's attention,
/// written by the same statement (an AFTER trigger sees the statement's changes).
const V8: &str = r#"
CREATE OR REPLACE FUNCTION rp_ledger.payout_events_to_webhooks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.previous IS NOT NULL AND NEW.previous = NEW.state AND NOT EXISTS (
        SELECT 1 FROM rp_ledger.payouts p
        WHERE p.project_id = NEW.project_id AND p.payment_id = NEW.payment_id
        AND p.attention = NEW.note
    ) THEN
        RETURN NULL;
    END IF;
    -- Due now on the server's clock (claims compare with it), whatever the instance's clock
    -- says. FOR KEY SHARE: an endpoint being removed is waited for, then skipped, instead of
    -- failing this change on the foreign key.
    INSERT INTO rp_ledger.webhook_deliveries
        (endpoint_id, project_id, payment_id, version, created_at, next_attempt_at)
    SELECT e.id, NEW.project_id, NEW.payment_id, NEW.version, NEW.at,
        (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint
    FROM rp_ledger.webhook_endpoints e WHERE e.project_id = NEW.project_id
    FOR KEY SHARE OF e;
    RETURN NULL;
END
$$;
DROP TRIGGER payout_events_to_webhooks ON rp_ledger.payout_events;
CREATE TRIGGER payout_events_to_webhooks AFTER INSERT ON rp_ledger.payout_events
FOR EACH ROW WHEN (NEW.previous IS NULL OR NEW.previous <> NEW.state OR NEW.note IS NOT NULL)
EXECUTE FUNCTION rp_ledger.payout_events_to_webhooks();
"#;

/// Version 9: operators, sessions and API keys belong to a project, in new tables, as in the
/// SQLite ledger: an instance of an older rp still running during a rolling upgrade fails on
/// the old tables rather than read every project's rows. Those made before are kept, bound to
/// no project (`project_id` 0) until `adopt_unbound` binds them; their sessions end. Names
/// are unique per project.
const V9: &str = r#"
CREATE TABLE rp_ledger.project_operators (
    project_id    BIGINT NOT NULL,   -- 0: made before version 9, bound to no project yet
    name          TEXT   COLLATE "C" NOT NULL,
    password_hash TEXT   NOT NULL,   -- PHC string ($argon2id$...)
    role          TEXT   NOT NULL,   -- view | pay
    totp_secret   TEXT,              -- Base32, when a second factor is required
    updated_at    BIGINT NOT NULL,   -- nanoseconds since the Unix epoch
    PRIMARY KEY (project_id, name)
);
INSERT INTO rp_ledger.project_operators
    (project_id, name, password_hash, role, totp_secret, updated_at)
    SELECT 0, name, password_hash, role, totp_secret, updated_at FROM rp_ledger.operators;
CREATE TABLE rp_ledger.project_sessions (
    token_sha256 TEXT   COLLATE "C" NOT NULL PRIMARY KEY,
    project_id   BIGINT NOT NULL,
    operator     TEXT   COLLATE "C" NOT NULL,
    csrf         TEXT   NOT NULL,    -- the token every form of the session carries
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    FOREIGN KEY (project_id, operator)
        REFERENCES rp_ledger.project_operators (project_id, name)
);
CREATE INDEX project_sessions_by_operator ON rp_ledger.project_sessions (project_id, operator);
CREATE TABLE rp_ledger.project_api_keys (
    project_id BIGINT NOT NULL,   -- 0: made before version 9, bound to no project yet
    name       TEXT   COLLATE "C" NOT NULL,
    key_sha256 TEXT   COLLATE "C" NOT NULL UNIQUE,   -- hex SHA-256 of the key; never the key
    role       TEXT   NOT NULL,                       -- view (read) | pay
    created_at BIGINT NOT NULL,
    revoked_at BIGINT,
    PRIMARY KEY (project_id, name)
);
INSERT INTO rp_ledger.project_api_keys
    (project_id, name, key_sha256, role, created_at, revoked_at)
    SELECT 0, name, key_sha256, role, created_at, revoked_at FROM rp_ledger.api_keys;
DROP TABLE rp_ledger.sessions;
DROP TABLE rp_ledger.operators;
DROP TABLE rp_ledger.api_keys;
"#;

/// Every migration, oldest first: `(version it brings the schema to, SQL)`.
const MIGRATIONS: &[(i64, &str)] = &[
    (1, V1),
    (2, V2),
    (3, V3),
    (4, V4),
    (5, V5),
    (6, V6),
    (7, V7),
    (8, V8),
    (9, V9),
];

/// Brings the ledger to [`SCHEMA_VERSION`], or says why it cannot; the connection is
/// dropped afterwards.
pub(super) async fn migrate(mut client: Client, name: &str) -> Result<(), LedgerError> {
    let failed =
        |operation: &'static str| move |e: tokio_postgres::Error| classify(name, operation, &e);
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::ReadCommitted)
        .start()
        .await
        .map_err(failed("start a migration"))?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
        .await
        .map_err(failed("lock the schema for a migration"))?;
    let row = tx
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
                    to_regclass($2) IS NOT NULL, \
                    (SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                      WHERE n.nspname = $1)",
            &[
                &POSTGRES_SCHEMA,
                &format!("{POSTGRES_SCHEMA}.schema_version"),
            ],
        )
        .await
        .map_err(failed("read the schema"))?;
    let schema_exists: bool = row.try_get(0).map_err(failed("read the schema"))?;
    let versioned: bool = row.try_get(1).map_err(failed("read the schema"))?;
    let relations: i64 = row.try_get(2).map_err(failed("read the schema"))?;
    if schema_exists && !versioned && relations > 0 {
        return Err(LedgerError::NotALedger {
            path: name.to_owned(),
            reason: format!(
                "its schema {POSTGRES_SCHEMA} holds {relations} table(s) or other relation(s) \
                 but no schema_version table: it was not made by rp, and is left alone"
            ),
        });
    }
    if !schema_exists {
        tx.batch_execute(&format!("CREATE SCHEMA {POSTGRES_SCHEMA}"))
            .await
            .map_err(failed("create the ledger's schema"))?;
    }
    if !versioned {
        tx.batch_execute(&format!(
            "CREATE TABLE {POSTGRES_SCHEMA}.schema_version (version BIGINT NOT NULL); \
             INSERT INTO {POSTGRES_SCHEMA}.schema_version (version) VALUES (0)"
        ))
        .await
        .map_err(failed("create the schema version table"))?;
    }
    let versions = tx
        .query(
            &format!("SELECT version FROM {POSTGRES_SCHEMA}.schema_version"),
            &[],
        )
        .await
        .map_err(failed("read the schema version"))?;
    let [row] = versions.as_slice() else {
        return Err(LedgerError::NotALedger {
            path: name.to_owned(),
            reason: format!(
                "{POSTGRES_SCHEMA}.schema_version has {} rows instead of one",
                versions.len()
            ),
        });
    };
    let found: i64 = row.try_get(0).map_err(failed("read the schema version"))?;
    if found > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            path: name.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.batch_execute(sql)
            .await
            .map_err(failed("migrate the schema"))?;
        tx.execute(
            &format!("UPDATE {POSTGRES_SCHEMA}.schema_version SET version = $1"),
            &[version],
        )
        .await
        .map_err(failed("record the schema version"))?;
        tracing::info!(ledger = name, version, "ledger schema migrated");
    }
    tx.commit().await.map_err(failed("commit a migration"))?;
    Ok(())
}

/// A [`LedgerError`] for a failure while migrating: a missing right gets a hint.
fn classify(name: &str, operation: &'static str, error: &tokio_postgres::Error) -> LedgerError {
    let insufficient = error
        .code()
        .is_some_and(|c| *c == tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE);
    let mut reason = format!("{name}: {}", describe(error));
    if insufficient {
        reason.push_str(&format!(
            "; the ledger's user needs CREATE on the database (GRANT CREATE ON DATABASE … TO …), \
             or an empty schema {POSTGRES_SCHEMA} it owns (CREATE SCHEMA {POSTGRES_SCHEMA} AUTHORIZATION …)"
        ));
    }
    LedgerError::Backend { operation, reason }
}
