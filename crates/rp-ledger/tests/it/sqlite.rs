//! What only the SQLite ledger has: it survives a reopen, refuses what it must, commits
//! concurrent writes together, and shares one file between handles (as between processes).

use std::sync::Arc;

use rp_ledger::{Ledger, LedgerError, SCHEMA_VERSION};
use rp_model::ProjectId;
use rp_payout::conformance::record;
use rp_payout::{EventSource, Inserted, PayoutEvent, PayoutQuery, PayoutState, Updated};

fn project() -> ProjectId {
    ProjectId::new(1234).unwrap()
}

fn url(path: &std::path::Path) -> String {
    format!("sqlite:{}", path.display())
}

fn first_event(r: &rp_payout::PayoutRecord) -> PayoutEvent {
    PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_payout_and_its_history_survive_a_reopen() {
    let dir = crate::scratch("reopen");
    let path = dir.join("ledger.db");
    let r = record("kept", "77011234567", 1500, 1);
    {
        let ledger = Ledger::open(&url(&path)).await.unwrap();
        let store = ledger.store(project());
        assert!(matches!(
            store
                .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
                .await
                .unwrap(),
            Inserted::New(_)
        ));
        let mut next = r.clone();
        next.state = PayoutState::Unknown;
        next.maybe_sent = true;
        let event = PayoutEvent::new(
            r.created_at,
            EventSource::Answer,
            Some(PayoutState::Created),
            PayoutState::Unknown,
        );
        assert!(matches!(
            store.update(0, next, event).await.unwrap(),
            Updated::Done(_)
        ));
    }
    let ledger = Ledger::open(&url(&path)).await.unwrap();
    let store = ledger.store(project());
    let back = store.get(&r.payment_id).await.unwrap().unwrap();
    assert_eq!(back.state, PayoutState::Unknown);
    assert!(back.maybe_sent);
    assert_eq!(back.request, r.request);
    assert_eq!(store.events(&r.payment_id).await.unwrap().len(), 2);
    assert_eq!(store.unsettled(None, 10).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_errors_name_what_is_wrong() {
    let dir = crate::scratch("errors");
    let missing_dir = dir.join("nope").join("ledger.db");
    let error = Ledger::open(&url(&missing_dir)).await.unwrap_err();
    assert!(
        matches!(&error, LedgerError::File { reason, .. } if reason.contains("does not exist")),
        "{error}"
    );
    let error = Ledger::open(&url(&dir)).await.unwrap_err();
    assert!(error.to_string().contains("is a directory"), "{error}");

    let junk = dir.join("junk.db");
    std::fs::write(
        &junk,
        b"this is not a database, it is a text file of some length....",
    )
    .unwrap();
    let error = Ledger::open(&url(&junk)).await.unwrap_err();
    assert!(matches!(error, LedgerError::NotALedger { .. }), "{error}");

    // Another application's SQLite database is not altered.
    let other = dir.join("other.db");
    foreign_database(&other);
    let error = Ledger::open(&url(&other)).await.unwrap_err();
    assert!(
        matches!(&error, LedgerError::NotALedger { reason, .. } if reason.contains("table")),
        "{error}"
    );

    let mut refused = vec![("mysql://db/x", "unknown scheme")];
    // With the `postgres` feature such a URL is opened: tests/it/postgres.rs checks it.
    if cfg!(not(feature = "postgres")) {
        refused.push((
            "postgres://rp:secret@db/ledger",
            "not available in this build",
        ));
    }
    for (text, needle) in refused {
        let error = Ledger::open(text).await.unwrap_err().to_string();
        assert!(error.contains(needle), "{text}: {error}");
        assert!(!error.contains("secret"), "{error}");
    }
}

/// Makes an SQLite database of another application: a table of its own.
fn foreign_database(path: &std::path::Path) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.execute_batch("CREATE TABLE orders (id INTEGER PRIMARY KEY, total INTEGER)")
        .unwrap();
}

/// Sets the schema version of a ledger file, as a newer rp would have left it.
fn set_schema_version(path: &std::path::Path, version: i64) {
    let conn = rusqlite::Connection::open(path).unwrap();
    conn.pragma_update(None, "user_version", version).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_from_a_newer_version_is_refused_and_left_alone() {
    let dir = crate::scratch("newer");
    let path = dir.join("ledger.db");
    drop(Ledger::open(&url(&path)).await.unwrap());
    set_schema_version(&path, SCHEMA_VERSION + 1);
    let before = std::fs::read(&path).unwrap();
    let error = Ledger::open(&url(&path)).await.unwrap_err();
    assert!(
        matches!(error, LedgerError::NewerSchema { found, supported, .. } if found == SCHEMA_VERSION + 1 && supported == SCHEMA_VERSION),
        "{error}"
    );
    assert_eq!(std::fs::read(&path).unwrap(), before, "not altered");
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_ledger_is_refused() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = crate::scratch("read-only");
    let path = dir.join("ledger.db");
    drop(Ledger::open(&url(&path)).await.unwrap());
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o444)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let result = Ledger::open(&url(&path)).await;
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    // Root ignores permission bits: there the ledger opens; anyone else is refused clearly.
    if is_root() {
        eprintln!(
            "note: running as root, file permissions do not apply; skipped the refusal check"
        );
        return;
    }
    let error = result.unwrap_err();
    assert!(matches!(error, LedgerError::ReadOnly { .. }), "{error}");
    assert!(error.to_string().contains("must be writable"), "{error}");
}

#[cfg(unix)]
fn is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .map(|s| {
            s.lines()
                .any(|l| l.starts_with("Uid:") && l.split_whitespace().nth(1) == Some("0"))
        })
        .unwrap_or(false)
}

/// Concurrent writers share transactions (group commit) and none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_inserts_are_committed_together_and_none_is_lost() {
    let dir = crate::scratch("group");
    let ledger = Ledger::open(&url(&dir.join("ledger.db"))).await.unwrap();
    let store = ledger.store(project());
    let mut tasks = Vec::new();
    for i in 0..500 {
        let store = Arc::clone(&store);
        tasks.push(tokio::spawn(async move {
            let r = record(&format!("g-{i:03}"), "77011234567", 100, i);
            store
                .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
                .await
                .unwrap()
        }));
    }
    for task in tasks {
        assert!(matches!(task.await.unwrap(), Inserted::New(_)));
    }
    let counts = store.counts().await.unwrap();
    assert_eq!(counts.total, 500);
    let stats = ledger.stats();
    assert_eq!(stats.writes, 500);
    assert!(
        stats.commits < 500,
        "500 concurrent inserts took {} commits: writes were not grouped",
        stats.commits
    );
}

/// The webhook sender's claims and attempts ride in the payouts' group transactions (one
/// fsync for all), each still all-or-nothing: a claim answers only for what it committed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_claims_and_attempts_share_the_group_commits() {
    let dir = crate::scratch("group-webhooks");
    let ledger = Ledger::open(&url(&dir.join("ledger.db"))).await.unwrap();
    let store = ledger.store(project());
    let hooks = ledger.webhooks(project());
    hooks
        .add_endpoint("https://merchant.example/hooks", "whsec_eQ==")
        .await
        .unwrap();
    let lease = std::time::Duration::from_secs(60);
    let mut tasks = Vec::new();
    for i in 0..200 {
        let (store, hooks) = (Arc::clone(&store), Arc::clone(&hooks));
        tasks.push(tokio::spawn(async move {
            let r = record(&format!("w-{i:03}"), "77011234567", 100, i);
            store
                .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
                .await
                .unwrap();
            let claimed = hooks.claim_due(&format!("w{i}"), lease, 1).await.unwrap();
            let records: Vec<rp_ledger::AttemptRecord> = claimed
                .iter()
                .map(|c| rp_ledger::AttemptRecord {
                    key: c.key.clone(),
                    attempt: rp_ledger::DeliveryAttempt::new(
                        std::time::SystemTime::now(),
                        std::time::Duration::from_millis(1),
                        Some(204),
                        None,
                    ),
                    after: rp_ledger::AfterAttempt::Delivered,
                })
                .collect();
            let recorded = hooks
                .record_attempts(&format!("w{i}"), &records)
                .await
                .unwrap();
            assert!(recorded.iter().all(|r| *r), "{recorded:?}");
            records.len()
        }));
    }
    let mut sent = 0;
    for task in tasks {
        sent += task.await.unwrap();
    }
    // Every delivery claimed once, by one of them, and recorded.
    assert_eq!(sent, 200);
    assert!(hooks.claim_due("late", lease, 10).await.unwrap().is_empty());
    let stats = ledger.stats();
    // 200 inserts, 201 claims, 200 attempts' records: all in the groups.
    assert_eq!(stats.writes, 601, "{stats:?}");
    assert!(stats.commits < 601, "{stats:?}: nothing was grouped");
}

/// Two handles on one file (as two processes would be): one payment ID, one record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_handles_on_one_file_record_a_payment_id_once() {
    let dir = crate::scratch("two-handles");
    let path = dir.join("ledger.db");
    let a = Ledger::open(&url(&path)).await.unwrap().store(project());
    let b = Ledger::open(&url(&path)).await.unwrap().store(project());
    let mut tasks = Vec::new();
    for (i, store) in [a.clone(), b.clone()]
        .into_iter()
        .cycle()
        .take(20)
        .enumerate()
    {
        tasks.push(tokio::spawn(async move {
            let r = record("same", "77011234567", 100 + i as u64, 1);
            matches!(
                store
                    .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
                    .await
                    .unwrap(),
                Inserted::New(_)
            )
        }));
    }
    let mut new = 0;
    for task in tasks {
        new += usize::from(task.await.unwrap());
    }
    assert_eq!(new, 1);
    // A change through one handle is seen through the other.
    let current = a
        .get(&record("same", "77011234567", 1, 1).payment_id)
        .await
        .unwrap()
        .unwrap();
    let mut next = current.clone();
    next.state = PayoutState::Accepted;
    let event = PayoutEvent::new(
        current.created_at,
        EventSource::Answer,
        Some(PayoutState::Created),
        PayoutState::Accepted,
    );
    assert!(matches!(
        a.update(current.version, next, event).await.unwrap(),
        Updated::Done(_)
    ));
    let seen = b.list(&PayoutQuery::new().state("accepted")).await.unwrap();
    assert_eq!(seen.len(), 1);
}

/// The recorded request never changes: an update carrying another request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_request_is_immutable() {
    let ledger = Ledger::open("sqlite::memory:").await.unwrap();
    let store = ledger.store(project());
    let r = record("fixed", "77011234567", 100, 1);
    store
        .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
        .await
        .unwrap();
    let mut other = record("fixed", "77011234567", 999, 1);
    other.state = PayoutState::Accepted;
    let error = store
        .update(0, other, first_event(&r))
        .await
        .unwrap_err()
        .to_string();
    assert!(error.contains("immutable"), "{error}");
    assert_eq!(store.get(&r.payment_id).await.unwrap().unwrap(), r);
    assert_eq!(store.events(&r.payment_id).await.unwrap().len(), 1);
}

/// A ledger written by schema version 1 (before the limits) is migrated on open: every payout
/// it holds counts against the limits, except the ones the platform refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_ledger_counts_its_payouts_against_the_limits_after_migration() {
    let dir = crate::scratch("v1-usage");
    let path = dir.join("ledger.db");
    let now = std::time::SystemTime::now();
    {
        let ledger = Ledger::open(&url(&path)).await.unwrap();
        let store = ledger.store(project());
        for (id, tenge, refused) in [
            ("v1-a", 100, false),
            ("v1-b", 250, false),
            ("v1-c", 900, true),
        ] {
            let mut r = record(id, "77011234567", tenge, 0);
            r.created_at = now;
            store
                .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
                .await
                .unwrap();
            if refused {
                let mut next = r.clone();
                next.state = PayoutState::Status(rp_model::PaymentStatus::Decline);
                let event = PayoutEvent::new(now, EventSource::Callback, None, next.state.clone());
                store.update(0, next, event).await.unwrap();
            }
        }
    }
    // Back to what version 1 had: no usage table, no limit columns, no batches, no operators.
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "DROP TRIGGER payout_attention_to_webhooks; DROP TRIGGER payout_events_to_webhooks; DROP TABLE webhook_attempts; DROP TABLE webhook_deliveries; DROP TABLE webhook_endpoints; \
             DROP TABLE project_api_keys; DROP TABLE project_sessions; DROP TABLE project_operators; DROP TABLE batch_rows; DROP TABLE batches; DROP TRIGGER payouts_written_by_schema_1; DROP TABLE limit_usage; \
             ALTER TABLE payouts DROP COLUMN metadata; ALTER TABLE payouts DROP COLUMN amount; ALTER TABLE payouts DROP COLUMN currency; \
             ALTER TABLE payouts DROP COLUMN counts; ALTER TABLE payouts DROP COLUMN usage_hour; \
             PRAGMA user_version = 1;",
        )
        .unwrap();
    }
    let ledger = Ledger::open(&url(&path)).await.unwrap();
    let usage = ledger
        .store(project())
        .usage(rp_model::Currency::KZT)
        .await
        .unwrap();
    assert_eq!(
        (usage.day_amount, usage.day_count),
        (35_000, 2),
        "{usage:?}"
    );
    assert_eq!((usage.month_amount, usage.month_count), (35_000, 2));

    // A process of the older rp, still holding the file, inserts as schema 1 did: refused,
    // since the limits would never see that payout.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let old_insert = conn.execute(
        "INSERT INTO payouts (project_id, payment_id, request, request_sha256, phone, state, \
         state_label, settled, version, created_at, updated_at, maybe_sent, attempts) \
         VALUES (1234, 'old-writer', '{}', '', '77011234567', '{\"kind\":\"created\"}', \
         'created', 0, 0, 0, 0, 0, 0)",
        [],
    );
    let error = old_insert.unwrap_err().to_string();
    assert!(error.contains("upgrade this process"), "{error}");
}

/// A ledger of schema version 5 (before batch rows were indexed by payment ID) is brought to
/// the current version on open, its batches kept and found by payment ID.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_5_ledger_gets_its_batch_rows_indexed_by_payment() {
    let dir = crate::scratch("v5");
    let path = dir.join("ledger.db");
    let id = crate::batches::batch_id(7);
    {
        let ledger = Ledger::open(&url(&path)).await.unwrap();
        let batches = ledger.batches(project());
        batches
            .register(
                crate::batches::new_batch(&id, 2, &[]),
                crate::batches::rows_of(&id, 2, &[]),
            )
            .await
            .unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "DROP INDEX batch_rows_by_payment; DROP TRIGGER payout_attention_to_webhooks; {UNDO_V9}"
        ))
        .unwrap();
        conn.pragma_update(None, "user_version", 5).unwrap();
    }
    let ledger = Ledger::open(&url(&path)).await.unwrap();
    let held = ledger
        .batches(project())
        .held_elsewhere(
            &crate::batches::batch_id(8),
            &[format!("pid-{}-2", &id[..8])],
        )
        .await
        .unwrap();
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0].line, 3);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

/// Undoes schema 9: the operators, sessions and API keys of the whole ledger, as schema 4 to 8
/// kept them (for tests that make an older ledger from a new one).
pub(crate) const UNDO_V9: &str = "
    DROP TABLE project_sessions; DROP TABLE project_api_keys; DROP TABLE project_operators;
    CREATE TABLE operators (name TEXT NOT NULL PRIMARY KEY, password_hash TEXT NOT NULL,
        role TEXT NOT NULL, totp_secret TEXT, updated_at INTEGER NOT NULL);
    CREATE TABLE sessions (token_sha256 TEXT NOT NULL PRIMARY KEY,
        operator TEXT NOT NULL REFERENCES operators (name), csrf TEXT NOT NULL,
        created_at INTEGER NOT NULL, expires_at INTEGER NOT NULL);
    CREATE INDEX sessions_by_operator ON sessions (operator);
    CREATE TABLE api_keys (name TEXT NOT NULL PRIMARY KEY, key_sha256 TEXT NOT NULL UNIQUE,
        role TEXT NOT NULL, created_at INTEGER NOT NULL, revoked_at INTEGER);";

/// A ledger of schema 8 (operators, sessions and API keys of the whole ledger) is migrated on
/// open: its operators and keys kept, bound to no project until adopted; their sessions end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_8_ledger_keeps_its_operators_and_keys_for_adoption() {
    let dir = crate::scratch("v8");
    let path = dir.join("ledger.db");
    drop(Ledger::open(&url(&path)).await.unwrap());
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(&format!(
            "{UNDO_V9}
             INSERT INTO operators VALUES ('anna', '$argon2id$v=19$h', 'pay', 'JBSWY3DP', 5);
             INSERT INTO sessions VALUES ('t', 'anna', 'c', 1, 9223372036854775807);
             INSERT INTO api_keys VALUES ('backend', 'ab', 'view', 7, NULL);
             PRAGMA user_version = 8;"
        ))
        .unwrap();
    }
    let ledger = Ledger::open(&url(&path)).await.unwrap();
    crate::access::version_8_rows_adopted(&ledger).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}
