//! The SQLite schema, versioned: migrations embedded here, applied on open in one transaction
//! each; `PRAGMA user_version` holds the version and `PRAGMA application_id` marks the file as
//! an rp ledger.

use rusqlite::{Connection, ErrorCode};

use crate::LedgerError;

/// The schema version this build writes and understands.
pub const SCHEMA_VERSION: i64 = 9;

/// `PRAGMA application_id` of an rp ledger: "RPLG".
const APPLICATION_ID: i64 = 0x5250_4C47;

/// Version 1: payouts (one row per project and payment ID; the request immutable, with its
/// hash) and their history.
const V1: &str = "
CREATE TABLE payouts (
    project_id     INTEGER NOT NULL,
    payment_id     TEXT    NOT NULL,
    request        TEXT    NOT NULL,   -- wire::PayoutRequest as JSON; never changes
    request_sha256 TEXT    NOT NULL,   -- hex SHA-256 of `request`
    phone          TEXT    NOT NULL,   -- request.account.number, for queries
    state          TEXT    NOT NULL,   -- PayoutState as tagged JSON
    state_label    TEXT    NOT NULL,   -- PayoutState::label, for queries and counts
    settled        INTEGER NOT NULL,   -- PayoutState::is_settled
    version        INTEGER NOT NULL,
    created_at     INTEGER NOT NULL,   -- nanoseconds since the Unix epoch
    updated_at     INTEGER NOT NULL,
    request_id     TEXT,
    last_code      TEXT,
    last_message   TEXT,
    attention      TEXT,
    maybe_sent     INTEGER NOT NULL,
    claimed_by     TEXT,               -- host/pid/start/client of the claim that sends it
    attempts       INTEGER NOT NULL,   -- payout requests counted before each was sent
    lease_until    INTEGER,            -- nanoseconds: until when the claim holds
    next_check_at  INTEGER,            -- nanoseconds: when reconcile asks about it next
    PRIMARY KEY (project_id, payment_id)
);
CREATE INDEX payouts_by_time ON payouts (project_id, created_at DESC, payment_id DESC);
CREATE INDEX payouts_by_state ON payouts (project_id, state_label, created_at DESC, payment_id DESC);
CREATE INDEX payouts_by_phone ON payouts (project_id, phone, created_at DESC, payment_id DESC);
CREATE INDEX payouts_open ON payouts (project_id, payment_id) WHERE settled = 0;
CREATE INDEX payouts_attention ON payouts (project_id, created_at DESC, payment_id DESC)
    WHERE attention IS NOT NULL;

CREATE TABLE payout_events (
    project_id INTEGER NOT NULL,
    payment_id TEXT    NOT NULL,
    version    INTEGER NOT NULL,   -- the payout's version this event produced (0: recorded)
    at         INTEGER NOT NULL,   -- nanoseconds since the Unix epoch
    source     TEXT    NOT NULL,   -- EventSource::as_text
    previous   TEXT,               -- PayoutState as tagged JSON
    state      TEXT    NOT NULL,
    code       TEXT,
    message    TEXT,
    note       TEXT,
    raw        TEXT,               -- the raw signed body of a callback or status response
    PRIMARY KEY (project_id, payment_id, version),
    FOREIGN KEY (project_id, payment_id) REFERENCES payouts (project_id, payment_id)
);
";

/// Version 2: the project's amount limits. Each payout's amount and currency as columns,
/// whether it counts against the limits (`PayoutState::releases_limits`) and the hour it was
/// recorded in on the ledger's clock; hourly sums of what counts, kept in step by every insert
/// and update, so a reservation reads at most 744 rows (31 days) whatever the size of the
/// ledger. Existing payouts are counted in (in the hour of their `created_at`). A process of an
/// older rp still holding the file open would insert payouts without amount or currency,
/// which the limits would never see: a trigger refuses them.
const V2: &str = "
ALTER TABLE payouts ADD COLUMN amount INTEGER NOT NULL DEFAULT 0;     -- request.payment.amount
ALTER TABLE payouts ADD COLUMN currency TEXT NOT NULL DEFAULT '';     -- request.payment.currency
ALTER TABLE payouts ADD COLUMN counts INTEGER NOT NULL DEFAULT 1;     -- counts against the limits
ALTER TABLE payouts ADD COLUMN usage_hour INTEGER NOT NULL DEFAULT 0; -- hour recorded, ledger clock
UPDATE payouts SET
    amount = json_extract(request, '$.payment.amount'),
    currency = json_extract(request, '$.payment.currency'),
    counts = state_label NOT IN ('rejected', 'payment_id_taken', 'decline'),
    usage_hour = max(created_at, 0) / 3600000000000;
CREATE TRIGGER payouts_written_by_schema_1 BEFORE INSERT ON payouts WHEN NEW.currency = ''
BEGIN
    SELECT RAISE(ABORT, 'this ledger was upgraded to schema 2 by a newer rp, which counts payouts against the limits: upgrade this process');
END;

CREATE TABLE limit_usage (
    project_id INTEGER NOT NULL,
    currency   TEXT    NOT NULL,
    hour       INTEGER NOT NULL,   -- whole hours since the Unix epoch (created_at)
    amount     INTEGER NOT NULL,   -- sum of the amounts that count, in minor units
    count      INTEGER NOT NULL,   -- how many payouts count
    PRIMARY KEY (project_id, currency, hour)
);
INSERT INTO limit_usage (project_id, currency, hour, amount, count)
    SELECT project_id, currency, usage_hour, sum(amount), count(*)
    FROM payouts WHERE counts GROUP BY 1, 2, 3;
";

/// Version 3: batches (`rp-ledger`'s `BatchStore`): a file registered whole, its header and
/// every row's cells, and the rows' claims: which worker holds a row, until when (the
/// ledger's clock), and whether the current pass finished it.
const V3: &str = "
CREATE TABLE batches (
    project_id INTEGER NOT NULL,
    batch_id   TEXT    NOT NULL,   -- hex SHA-256 of the file
    file_name  TEXT    NOT NULL,
    delimiter  INTEGER NOT NULL,   -- the file's delimiter byte
    header     BLOB    NOT NULL,   -- the header row, CSV
    rows       INTEGER NOT NULL,   -- non-blank rows after the header
    valid_rows INTEGER NOT NULL,
    totals     TEXT    NOT NULL,   -- JSON: [[currency, minor units], ...]
    limits     TEXT    NOT NULL,   -- JSON: [[limit, value], ...], as confirmed
    created_at INTEGER NOT NULL,   -- nanoseconds since the Unix epoch
    PRIMARY KEY (project_id, batch_id)
);
CREATE INDEX batches_by_time ON batches (project_id, created_at DESC, batch_id DESC);

CREATE TABLE batch_rows (
    project_id  INTEGER NOT NULL,
    batch_id    TEXT    NOT NULL,
    row_no      INTEGER NOT NULL,   -- 1-based, non-blank rows after the header
    line        INTEGER NOT NULL,
    payment_id  TEXT,
    request_sha256 TEXT,            -- of the request a valid row pays (payouts.request_sha256)
    valid       INTEGER NOT NULL,
    cells       BLOB    NOT NULL,   -- the row as read, CSV
    problems    TEXT,               -- why an invalid row is invalid
    done        INTEGER NOT NULL,   -- the current pass finished it (an invalid row: always)
    claimed_by  TEXT,               -- the worker (Owner token) that holds it
    lease_until INTEGER,            -- nanoseconds: until when the claim holds
    PRIMARY KEY (project_id, batch_id, row_no),
    FOREIGN KEY (project_id, batch_id) REFERENCES batches (project_id, batch_id)
);
CREATE INDEX batch_rows_undone ON batch_rows (project_id, batch_id, row_no) WHERE done = 0;
CREATE INDEX batch_rows_claimed ON batch_rows (project_id, batch_id, claimed_by)
    WHERE done = 0 AND claimed_by IS NOT NULL;
";

/// Version 4: the operators of `rp serve`'s console (a password's argon2 hash, never the
/// password) and their sessions (the SHA-256 of a session's token, never the token); the JSON API's keys
/// (their SHA-256); a batch
/// stopped on purpose is marked `paused` (no background worker resumes it).
const V4: &str = "
ALTER TABLE batches ADD COLUMN paused INTEGER NOT NULL DEFAULT 0;
CREATE TABLE operators (
    name          TEXT    NOT NULL PRIMARY KEY,
    password_hash TEXT    NOT NULL,   -- PHC string ($argon2id$...)
    role          TEXT    NOT NULL,   -- view | pay
    totp_secret   TEXT,               -- Base32, when a second factor is required
    updated_at    INTEGER NOT NULL    -- nanoseconds since the Unix epoch
);
CREATE TABLE sessions (
    token_sha256 TEXT    NOT NULL PRIMARY KEY,
    operator     TEXT    NOT NULL REFERENCES operators (name),
    csrf         TEXT    NOT NULL,   -- the token every form of the session carries
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL
);
CREATE INDEX sessions_by_operator ON sessions (operator);
CREATE TABLE api_keys (
    name       TEXT    NOT NULL PRIMARY KEY,
    key_sha256 TEXT    NOT NULL UNIQUE,   -- hex SHA-256 of the key; never the key
    role       TEXT    NOT NULL,          -- view (read) | pay
    created_at INTEGER NOT NULL,
    revoked_at INTEGER
);
";

/// Version 5: each payout's metadata (the merchant's own JSON, recorded with it); webhooks as
/// a transactional outbox. A project's endpoints (with their signing
/// secrets); one delivery per endpoint for every change of a payout's state, inserted by a
/// trigger on `payout_events` in the transaction that records the change; each attempt's
/// outcome in a log.
const V5: &str = "
ALTER TABLE payouts ADD COLUMN metadata TEXT;   -- the merchant's JSON; never sent, never changed
CREATE TABLE webhook_endpoints (
    id              INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused
    project_id      INTEGER NOT NULL,
    url             TEXT    NOT NULL,
    secret          TEXT    NOT NULL,   -- whsec_...: signs every delivery; shown once
    created_at      INTEGER NOT NULL,
    disabled_at     INTEGER,
    disabled_reason TEXT
);
CREATE INDEX webhook_endpoints_by_project ON webhook_endpoints (project_id);

CREATE TABLE webhook_deliveries (
    endpoint_id     INTEGER NOT NULL REFERENCES webhook_endpoints (id),
    project_id      INTEGER NOT NULL,
    payment_id      TEXT    NOT NULL,
    version         INTEGER NOT NULL,   -- the event's (payout_events.version)
    created_at      INTEGER NOT NULL,
    attempts        INTEGER NOT NULL DEFAULT 0,   -- every attempt, for the log
    failures        INTEGER NOT NULL DEFAULT 0,   -- since created or replayed: the schedule
    next_attempt_at INTEGER,            -- nanoseconds; NULL once delivered or given up
    delivered_at    INTEGER,
    failed_at       INTEGER,            -- given up
    claimed_by      TEXT,
    lease_until     INTEGER,
    PRIMARY KEY (endpoint_id, project_id, payment_id, version),
    FOREIGN KEY (project_id, payment_id, version)
        REFERENCES payout_events (project_id, payment_id, version)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
CREATE INDEX webhook_deliveries_by_payment ON webhook_deliveries (project_id, payment_id, version);

CREATE TABLE webhook_attempts (
    endpoint_id INTEGER NOT NULL,
    project_id  INTEGER NOT NULL,
    payment_id  TEXT    NOT NULL,
    version     INTEGER NOT NULL,
    attempt     INTEGER NOT NULL,   -- 1, 2, ...
    at          INTEGER NOT NULL,
    took_ms     INTEGER NOT NULL,
    status      INTEGER,            -- the endpoint's HTTP status, when it answered
    error       TEXT,
    PRIMARY KEY (endpoint_id, project_id, payment_id, version, attempt),
    FOREIGN KEY (endpoint_id, project_id, payment_id, version)
        REFERENCES webhook_deliveries (endpoint_id, project_id, payment_id, version)
);

CREATE TRIGGER payout_events_to_webhooks AFTER INSERT ON payout_events
WHEN NEW.previous IS NULL OR NEW.previous <> NEW.state
BEGIN
    INSERT INTO webhook_deliveries
        (endpoint_id, project_id, payment_id, version, created_at, next_attempt_at)
    SELECT id, NEW.project_id, NEW.payment_id, NEW.version, NEW.at, NEW.at
    FROM webhook_endpoints WHERE project_id = NEW.project_id;
END;
";

/// Version 6: batch rows by payment ID, so that a new batch's payment IDs held by another
/// batch for a different payout (paid or not yet) are found before it is registered.
const V6: &str = "
CREATE INDEX batch_rows_by_payment ON batch_rows (project_id, payment_id)
    WHERE payment_id IS NOT NULL;
";

/// Version 7: the due deliveries by project, then time. A claim and a set-aside read one
/// project's due deliveries; on a ledger shared by projects, those of another project (one
/// whose sender is not running, say) are no longer read by each of them.
const V7: &str = "
DROP INDEX webhook_deliveries_due;
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (project_id, next_attempt_at)
    WHERE next_attempt_at IS NOT NULL;
";

/// Version 8: a change that marks a payout as needing attention without changing its state
/// (`partially reversed` after `success`: part of the money came back; a contradicting final
/// status; a callback about another payment) makes deliveries too: its event's note is the
/// payout's attention, written in the same transaction just before the event.
const V8: &str = "
CREATE TRIGGER payout_attention_to_webhooks AFTER INSERT ON payout_events
WHEN NEW.previous = NEW.state AND NEW.note IS NOT NULL AND NEW.note = (
    SELECT attention FROM payouts
    WHERE project_id = NEW.project_id AND payment_id = NEW.payment_id
)
BEGIN
    INSERT INTO webhook_deliveries
        (endpoint_id, project_id, payment_id, version, created_at, next_attempt_at)
    SELECT id, NEW.project_id, NEW.payment_id, NEW.version, NEW.at, NEW.at
    FROM webhook_endpoints WHERE project_id = NEW.project_id;
END;
";

/// Version 9: operators, sessions and API keys belong to a project, as its payouts do: on a
/// ledger that two projects share, one's key or operator is unknown to the other. Their
/// tables are new (`project_operators`, `project_sessions`, `project_api_keys`) and the old
/// ones dropped, so that an older rp still holding the file fails on them rather than read
/// every project's. Those made before are kept, bound to no project (`project_id` 0) until
/// `adopt_unbound` binds them; their sessions end (operators sign in again). Names are unique
/// per project.
const V9: &str = "
CREATE TABLE project_operators (
    project_id    INTEGER NOT NULL,   -- 0: made before version 9, bound to no project yet
    name          TEXT    NOT NULL,
    password_hash TEXT    NOT NULL,   -- PHC string ($argon2id$...)
    role          TEXT    NOT NULL,   -- view | pay
    totp_secret   TEXT,               -- Base32, when a second factor is required
    updated_at    INTEGER NOT NULL,   -- nanoseconds since the Unix epoch
    PRIMARY KEY (project_id, name)
);
INSERT INTO project_operators (project_id, name, password_hash, role, totp_secret, updated_at)
    SELECT 0, name, password_hash, role, totp_secret, updated_at FROM operators;
CREATE TABLE project_sessions (
    token_sha256 TEXT    NOT NULL PRIMARY KEY,
    project_id   INTEGER NOT NULL,
    operator     TEXT    NOT NULL,
    csrf         TEXT    NOT NULL,   -- the token every form of the session carries
    created_at   INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL,
    FOREIGN KEY (project_id, operator) REFERENCES project_operators (project_id, name)
);
CREATE INDEX project_sessions_by_operator ON project_sessions (project_id, operator);
CREATE TABLE project_api_keys (
    project_id INTEGER NOT NULL,          -- 0: made before version 9, bound to no project yet
    name       TEXT    NOT NULL,
    key_sha256 TEXT    NOT NULL UNIQUE,   -- hex SHA-256 of the key; never the key
    role       TEXT    NOT NULL,          -- view (read) | pay
    created_at INTEGER NOT NULL,
    revoked_at INTEGER,
    PRIMARY KEY (project_id, name)
);
INSERT INTO project_api_keys (project_id, name, key_sha256, role, created_at, revoked_at)
    SELECT 0, name, key_sha256, role, created_at, revoked_at FROM api_keys;
DROP TABLE sessions;
DROP TABLE operators;
DROP TABLE api_keys;
";

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

/// Brings the ledger at `conn` to [`SCHEMA_VERSION`], or says why it cannot. The check and
/// every migration run in one `BEGIN IMMEDIATE` transaction, so that processes opening a new
/// ledger at the same moment migrate it once: the others wait, then find it current.
pub(super) fn migrate(conn: &mut Connection, name: &str) -> Result<(), LedgerError> {
    let tx = conn
        .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        .map_err(|e| classify(name, &e, "start the schema check"))?;
    let pragma = |pragma: &str| -> Result<i64, LedgerError> {
        tx.query_row(&format!("PRAGMA {pragma}"), [], |row| row.get(0))
            .map_err(|e| classify(name, &e, "read the schema version"))
    };
    let application = pragma("application_id")?;
    let found = pragma("user_version")?;
    if application != 0 && application != APPLICATION_ID {
        return Err(LedgerError::NotALedger {
            path: name.to_owned(),
            reason: format!(
                "it is an SQLite database of another application (application_id {application:#x})"
            ),
        });
    }
    if found > SCHEMA_VERSION {
        return Err(LedgerError::NewerSchema {
            path: name.to_owned(),
            found,
            supported: SCHEMA_VERSION,
        });
    }
    if found == 0 {
        let tables: i64 = tx
            .query_row(
                "SELECT count(*) FROM sqlite_master WHERE type = 'table'",
                [],
                |row| row.get(0),
            )
            .map_err(|e| classify(name, &e, "read the schema"))?;
        if tables > 0 {
            return Err(LedgerError::NotALedger {
                path: name.to_owned(),
                reason: format!("it is an SQLite database with {tables} table(s) of its own"),
            });
        }
    }
    for (version, sql) in MIGRATIONS.iter().filter(|(v, _)| *v > found) {
        tx.execute_batch(sql)
            .and_then(|()| tx.pragma_update(None, "application_id", APPLICATION_ID))
            .and_then(|()| tx.pragma_update(None, "user_version", version))
            .map_err(|e| classify(name, &e, "migrate the schema"))?;
        tracing::info!(ledger = name, version, "ledger schema migrated");
    }
    tx.commit()
        .map_err(|e| classify(name, &e, "commit the schema"))
}

/// A [`LedgerError`] for an SQLite error while opening: read-only files and non-databases
/// get their own variants.
pub(super) fn classify(
    name: &str,
    error: &rusqlite::Error,
    operation: &'static str,
) -> LedgerError {
    match error.sqlite_error_code() {
        Some(ErrorCode::ReadOnly) => LedgerError::ReadOnly {
            path: name.to_owned(),
        },
        Some(ErrorCode::NotADatabase) => LedgerError::NotALedger {
            path: name.to_owned(),
            reason: "it is not an SQLite database".to_owned(),
        },
        Some(ErrorCode::CannotOpen) => LedgerError::File {
            path: name.to_owned(),
            reason: format!("cannot open it ({error})"),
        },
        _ => LedgerError::Backend {
            operation,
            reason: format!("{name}: {error}"),
        },
    }
}
