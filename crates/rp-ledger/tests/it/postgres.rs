//! The PostgreSQL ledger against a real server: the conformance suite with the same
//! assertions as the memory store and SQLite, then what only a ledger has (a reopen, two
//! instances on one database, schema versions, opening errors).
//!
//! The server is `RP_TEST_POSTGRES_URL` (`cargo xtask ci` and `cargo xtask test-postgres`
//! start a throwaway one and set it). Each test makes its own database there
//! (`rp_test_<name>`, dropped first if a failed run left it), so tests run in parallel.
//! Without a server: every test here fails under `CI=true`, and elsewhere says loudly that
//! it was skipped.

use std::io::Write as _;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rp_ledger::{Ledger, LedgerError, POSTGRES_SCHEMA_VERSION};
use rp_model::ProjectId;
use rp_payout::conformance::{self, record};
use rp_payout::{
    EventSource, Inserted, PayoutEvent, PayoutQuery, PayoutRecord, PayoutState, PayoutStore,
    Updated,
};
use tokio_postgres::NoTls;

mod aside;
mod batched;
mod held;
mod review3;
mod review_access;
mod review_clash;
mod review_onclash_pg;
mod review_pg_aside;
mod review_pg_replay_locks;
mod review_reg;
mod review_unsettled_pg;
mod review_webhooks;

const HOW: &str = "run `cargo xtask test-postgres` (or `cargo xtask ci`), which starts a throwaway \
     PostgreSQL (needs Debian's postgresql-15 server binaries: apt-get install postgresql-15), \
     or set RP_TEST_POSTGRES_URL=postgres://USER:PASSWORD@HOST:PORT/postgres \
     (a server where these tests may create and drop databases named rp_test_*)";

/// The server's URL, or `None` after saying loudly that `test` is skipped. Under `CI=true`
/// a missing server fails the test.
fn server(test: &str) -> Option<String> {
    match std::env::var("RP_TEST_POSTGRES_URL") {
        Ok(url) if !url.trim().is_empty() => Some(url.trim().to_owned()),
        _ => {
            if under_ci() {
                panic!(
                    "{test}: no PostgreSQL (RP_TEST_POSTGRES_URL is not set) under CI=true: {HOW}"
                );
            }
            // Straight to the terminal in one write: libtest hides what a passing test prints.
            static HOW_SHOWN: std::sync::Once = std::sync::Once::new();
            let mut message = format!(
                "\n!!! SKIPPED rp-ledger PostgreSQL test `{test}`: RP_TEST_POSTGRES_URL is not set\n"
            );
            HOW_SHOWN.call_once(|| message.push_str(&format!("!!! To run these tests: {HOW}\n")));
            let _ = std::io::stderr().lock().write_all(message.as_bytes());
            None
        }
    }
}

/// Whether this is a CI run (`CI=true`), where nothing may be skipped.
fn under_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// `url` with its database replaced by `database`.
fn with_database(url: &str, database: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let query = tail.find('?').map_or("", |i| &tail[i..]);
    format!("{scheme}://{authority}/{database}{query}")
}

/// A connection to `url` for the test's own SQL.
async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the test server: {e}"));
    tokio::spawn(connection);
    client
}

/// A fresh, empty database of its own.
struct Database {
    admin: String,
    name: String,
    url: String,
}

impl Database {
    async fn fresh(admin: &str, name: &str) -> Database {
        let name = format!("rp_test_{name}");
        let client = connect(admin).await;
        // Two statements: neither may run inside a transaction block.
        for sql in [
            format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)"),
            format!("CREATE DATABASE \"{name}\""),
        ] {
            client
                .batch_execute(&sql)
                .await
                .unwrap_or_else(|e| panic!("cannot create database {name}: {e:?}"));
        }
        Database {
            admin: admin.to_owned(),
            url: with_database(admin, &name),
            name,
        }
    }

    /// A connection to this database, for the test's own SQL.
    async fn sql(&self) -> tokio_postgres::Client {
        connect(&self.url).await
    }

    async fn open(&self) -> Ledger {
        Ledger::open(&self.url)
            .await
            .unwrap_or_else(|e| panic!("cannot open the ledger in {}: {e}", self.name))
    }

    async fn remove(self) {
        let client = connect(&self.admin).await;
        let _ = client
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS \"{}\" WITH (FORCE)",
                self.name
            ))
            .await;
    }
}

fn project(id: u64) -> ProjectId {
    ProjectId::new(id).unwrap()
}

fn first_event(r: &PayoutRecord) -> PayoutEvent {
    PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_ledger_conforms() {
    let Some(admin) = server("the_postgres_ledger_conforms") else {
        return;
    };
    let n = AtomicU64::new(0);
    let made = std::sync::Mutex::new(Vec::new());
    conformance::run_all(|| {
        let name = format!("conforms_{}", n.fetch_add(1, Ordering::Relaxed));
        let admin = admin.clone();
        let made = &made;
        async move {
            let db = Database::fresh(&admin, &name).await;
            let store = db.open().await.store(project(1234));
            made.lock().unwrap().push(db);
            store
        }
    })
    .await;
    let made = std::mem::take(&mut *made.lock().unwrap());
    for db in made {
        db.remove().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_projects_are_apart() {
    let Some(admin) = server("postgres_projects_are_apart") else {
        return;
    };
    let db = Database::fresh(&admin, "projects").await;
    let ledger = db.open().await;
    conformance::projects_are_apart(
        ledger.store(project(1234)).as_ref(),
        ledger.store(project(77)).as_ref(),
    )
    .await;
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_pages_cover_everything_once() {
    let Some(admin) = server("postgres_pages_cover_everything_once") else {
        return;
    };
    let db = Database::fresh(&admin, "many").await;
    let ledger = db.open().await;
    conformance::pages_cover_everything_once(ledger.store(project(1234))).await;
    assert_eq!(ledger.stats().writes, conformance::MANY as u64);
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recorded_payout_and_its_history_survive_a_reopen() {
    let Some(admin) = server("a_recorded_payout_and_its_history_survive_a_reopen") else {
        return;
    };
    let db = Database::fresh(&admin, "reopen").await;
    let r = record("kept", "77011234567", 1500, 1);
    let stored = {
        let ledger = db.open().await;
        let store = ledger.store(project(1234));
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
        next.last_message = Some("тайм-аут — ұтыс".to_owned());
        let event = PayoutEvent::new(
            r.created_at,
            EventSource::Answer,
            Some(PayoutState::Created),
            PayoutState::Unknown,
        )
        .with_raw(Some("{\"status\":\"processing\"}".to_owned()));
        match store.update(0, next, event).await.unwrap() {
            Updated::Done(stored) => stored,
            other => panic!("update: {other:?}"),
        }
    };
    let ledger = db.open().await;
    let store = ledger.store(project(1234));
    let back = store.get(&r.payment_id).await.unwrap().unwrap();
    assert_eq!(
        back, stored,
        "the record reads back equal, times to the nanosecond"
    );
    let events = store.events(&r.payment_id).await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(
        events[1].raw.as_deref(),
        Some("{\"status\":\"processing\"}")
    );
    assert_eq!(store.unsettled(None, 10).await.unwrap().len(), 1);
    db.remove().await;
}

/// Inserts `records` all at once, spread over `stores` in turn; how many answered `New`.
async fn racing_inserts(
    stores: &[Arc<dyn PayoutStore>],
    records: impl Iterator<Item = PayoutRecord>,
) -> usize {
    let mut tasks = Vec::new();
    for (store, r) in stores.iter().cycle().zip(records) {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let inserted = store
                .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
                .await
                .unwrap();
            matches!(inserted, Inserted::New(_))
        }));
    }
    let mut new = 0;
    for task in tasks {
        new += usize::from(task.await.unwrap());
    }
    new
}

/// `tasks` compare-and-sets of `current` to accepted, all at once, spread over `stores` in
/// turn; how many answered `Done` (the others must answer a conflict).
async fn racing_accepts(
    stores: &[Arc<dyn PayoutStore>],
    current: &PayoutRecord,
    tasks: usize,
) -> usize {
    let mut updates = Vec::new();
    for store in stores.iter().cycle().take(tasks) {
        let (store, current) = (store.clone(), current.clone());
        updates.push(tokio::spawn(async move {
            let (next, event) = accepted(&current);
            match store.update(current.version, next, event).await {
                Ok(Updated::Done(_)) => true,
                Ok(Updated::Conflict(Some(_))) => false,
                other => panic!("a racing compare-and-set answered {other:?}"),
            }
        }));
    }
    let mut done = 0;
    for task in updates {
        done += usize::from(task.await.unwrap());
    }
    done
}

/// `current` accepted by the platform, and the event that says so.
fn accepted(current: &PayoutRecord) -> (PayoutRecord, PayoutEvent) {
    let mut next = current.clone();
    next.state = PayoutState::Accepted;
    let event = PayoutEvent::new(
        current.created_at,
        EventSource::Answer,
        Some(PayoutState::Created),
        PayoutState::Accepted,
    );
    (next, event)
}

/// Two ledgers on one database (as two instances on two machines): one payment ID, one
/// record, and a change through one is seen through the other.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_record_a_payment_id_once() {
    let Some(admin) = server("two_instances_record_a_payment_id_once") else {
        return;
    };
    let db = Database::fresh(&admin, "two_instances").await;
    // Opened at once: the migration runs once, under its advisory lock.
    let (a, b) = tokio::join!(db.open(), db.open());
    let (a, b) = (a.store(project(1234)), b.store(project(1234)));
    let records = (0..20).map(|i| record("same", "77011234567", 100 + i, 1));
    let new = racing_inserts(&[a.clone(), b.clone()], records).await;
    assert_eq!(new, 1, "exactly one New");
    let id = record("same", "77011234567", 1, 1).payment_id;
    assert_eq!(b.events(&id).await.unwrap().len(), 1);
    let current = a.get(&id).await.unwrap().unwrap();
    let (next, event) = accepted(&current);
    assert!(matches!(
        a.update(current.version, next.clone(), event.clone())
            .await
            .unwrap(),
        Updated::Done(_)
    ));
    // The other instance's stale version is a conflict, not a lost change.
    assert!(matches!(
        b.update(current.version, next, event).await.unwrap(),
        Updated::Conflict(Some(_))
    ));
    let seen = b.list(&PayoutQuery::new().state("accepted")).await.unwrap();
    assert_eq!(seen.len(), 1);
    db.remove().await;
}

/// The recorded request never changes: an update carrying another request is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_recorded_request_is_immutable() {
    let Some(admin) = server("the_recorded_request_is_immutable") else {
        return;
    };
    let db = Database::fresh(&admin, "immutable").await;
    let store = db.open().await.store(project(1234));
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
    db.remove().await;
}

/// Leases of instances on several machines are measured on one clock: the server's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leases_are_measured_on_the_servers_clock() {
    let Some(admin) = server("leases_are_measured_on_the_servers_clock") else {
        return;
    };
    let db = Database::fresh(&admin, "clock").await;
    let store = db.open().await.store(project(1234));
    let first = store.now().await.unwrap().expect("the server's clock");
    let second = store.now().await.unwrap().expect("the server's clock");
    assert!(second >= first, "the server's clock moves forward");
    // The test server runs on this machine: the clocks agree to within seconds.
    let local = std::time::SystemTime::now();
    let skew = local.duration_since(first).unwrap_or_else(|e| e.duration());
    assert!(skew < std::time::Duration::from_secs(5), "{skew:?}");
    db.remove().await;
}

/// The version and relations of the ledger's schema, to see that a refused open changed
/// nothing.
async fn schema_snapshot(client: &tokio_postgres::Client) -> (i64, Vec<String>) {
    let version: i64 = client
        .query_one("SELECT version FROM rp_ledger.schema_version", &[])
        .await
        .unwrap()
        .get(0);
    let relations = client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'rp_ledger' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    (version, relations)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_from_a_newer_version_is_refused_and_left_alone() {
    let Some(admin) = server("a_ledger_from_a_newer_version_is_refused_and_left_alone") else {
        return;
    };
    let db = Database::fresh(&admin, "newer").await;
    drop(db.open().await);
    let sql = db.sql().await;
    sql.execute(
        "UPDATE rp_ledger.schema_version SET version = $1",
        &[&(POSTGRES_SCHEMA_VERSION + 1)],
    )
    .await
    .unwrap();
    let before = schema_snapshot(&sql).await;
    let error = Ledger::open(&db.url).await.unwrap_err();
    assert!(
        matches!(error, LedgerError::NewerSchema { found, supported, .. }
            if found == POSTGRES_SCHEMA_VERSION + 1 && supported == POSTGRES_SCHEMA_VERSION),
        "{error}"
    );
    assert_eq!(schema_snapshot(&sql).await, before, "not altered");
    db.remove().await;
}

/// Other applications' tables are never touched; a schema `rp_ledger` that rp did not make
/// is refused and left alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tables_are_left_alone_and_a_foreign_rp_ledger_schema_is_refused() {
    let Some(admin) =
        server("other_tables_are_left_alone_and_a_foreign_rp_ledger_schema_is_refused")
    else {
        return;
    };
    let shared = Database::fresh(&admin, "shared").await;
    let sql = shared.sql().await;
    sql.batch_execute(
        "CREATE TABLE orders (id BIGINT PRIMARY KEY, total BIGINT); \
         INSERT INTO orders VALUES (1, 500)",
    )
    .await
    .unwrap();
    let ledger = shared.open().await;
    let r = record("beside", "77011234567", 100, 1);
    ledger
        .store(project(1234))
        .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
        .await
        .unwrap();
    let total: i64 = sql
        .query_one("SELECT total FROM orders WHERE id = 1", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(total, 500);
    let public: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(public, 1, "nothing added to the public schema");
    drop(ledger);
    shared.remove().await;

    let foreign = Database::fresh(&admin, "foreign_schema").await;
    let sql = foreign.sql().await;
    sql.batch_execute("CREATE SCHEMA rp_ledger; CREATE TABLE rp_ledger.payouts (id BIGINT)")
        .await
        .unwrap();
    let error = Ledger::open(&foreign.url).await.unwrap_err();
    assert!(
        matches!(&error, LedgerError::NotALedger { reason, .. } if reason.contains("not made by rp")),
        "{error}"
    );
    let tables: i64 = sql
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'rp_ledger'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(tables, 1, "the foreign schema is left alone");
    foreign.remove().await;
}

/// A database whose default is `synchronous_commit=off` still gets durable commits: the
/// ledger raises it for its sessions (and its open checks a pooled session).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn synchronous_commit_off_is_raised_to_on() {
    let Some(admin) = server("synchronous_commit_off_is_raised_to_on") else {
        return;
    };
    let db = Database::fresh(&admin, "sync_off").await;
    db.sql()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET synchronous_commit = off",
            db.name
        ))
        .await
        .unwrap();
    let ledger = db.open().await;
    let r = record("durable", "77011234567", 100, 1);
    ledger
        .store(project(1234))
        .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
        .await
        .unwrap();
    drop(ledger);
    db.remove().await;
}

/// A server whose default isolation is SERIALIZABLE still answers racing compare-and-sets
/// with one winner and conflicts, never with serialization errors, and inserts racing on one
/// payment ID with one record: the ledger's sessions run READ COMMITTED.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_serializable_server_default_still_gives_one_winner_and_conflicts() {
    let Some(admin) = server("a_serializable_server_default_still_gives_one_winner_and_conflicts")
    else {
        return;
    };
    let db = Database::fresh(&admin, "serializable").await;
    db.sql()
        .await
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_isolation = serializable",
            db.name
        ))
        .await
        .unwrap();
    let (a, b) = tokio::join!(db.open(), db.open());
    let (a, b) = (a.store(project(1234)), b.store(project(1234)));
    for round in 0..5 {
        let r = record(&format!("race-{round}"), "77011234567", 100, 1);
        let new = racing_inserts(&[a.clone(), b.clone()], std::iter::repeat_n(r.clone(), 8)).await;
        assert_eq!(new, 1, "round {round}: exactly one New");

        let current = a.get(&r.payment_id).await.unwrap().unwrap();
        let done = racing_accepts(&[a.clone(), b.clone()], &current, 8).await;
        assert_eq!(done, 1, "round {round}: exactly one compare-and-set wins");
        assert_eq!(b.events(&r.payment_id).await.unwrap().len(), 2);
    }
    db.remove().await;
}

/// More writes that change nothing than the pool has connections, at once: a client
/// resubmitting recorded payouts (each insert finds its record) and compare-and-sets racing on
/// one version. Each reads the record that stopped it on its own connection; reading it on a
/// second one left every connection waiting for another until the pool's timeout (found in
/// review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_that_change_nothing_never_exhaust_the_pool() {
    let Some(admin) = server("writes_that_change_nothing_never_exhaust_the_pool") else {
        return;
    };
    let db = Database::fresh(&admin, "pool_dry").await;
    let store = db.open().await.store(project(1234));
    let batch: Vec<_> = (0..40)
        .map(|i| record(&format!("again-{i}"), "77011234567", 100, 1))
        .collect();
    for r in &batch {
        store
            .insert(r.clone(), first_event(r), rp_model::Limits::NONE)
            .await
            .unwrap();
    }
    let within = std::time::Duration::from_secs(20);
    let stores = [store.clone()];
    let new = tokio::time::timeout(within, racing_inserts(&stores, batch.into_iter()))
        .await
        .expect("resubmitting 40 recorded payouts at once did not finish within 20 s");
    assert_eq!(new, 0, "every payout was recorded already");

    let r = record("contended", "77011234567", 100, 1);
    store
        .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
        .await
        .unwrap();
    let current = store.get(&r.payment_id).await.unwrap().unwrap();
    let done = tokio::time::timeout(within, racing_accepts(&stores, &current, 64))
        .await
        .expect("64 racing compare-and-sets did not finish within 20 s");
    assert_eq!(done, 1);
    assert_eq!(store.events(&r.payment_id).await.unwrap().len(), 2);
    db.remove().await;
}

/// Options in the URL, even one asking for SERIALIZABLE, do not undo the ledger's READ
/// COMMITTED: racing compare-and-sets still give one winner and conflicts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn url_options_do_not_undo_read_committed() {
    let Some(admin) = server("url_options_do_not_undo_read_committed") else {
        return;
    };
    let db = Database::fresh(&admin, "url_options").await;
    let sep = if db.url.contains('?') { '&' } else { '?' };
    let url = format!(
        "{}{sep}options=-c%20default_transaction_isolation%3Dserializable%20-c%20statement_timeout%3D60000",
        db.url
    );
    let (a, b) = tokio::join!(Ledger::open(&url), Ledger::open(&url));
    let (a, b) = (
        a.unwrap().store(project(1234)),
        b.unwrap().store(project(1234)),
    );
    let r = record("options", "77011234567", 100, 1);
    a.insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
        .await
        .unwrap();
    let current = a.get(&r.payment_id).await.unwrap().unwrap();
    assert_eq!(racing_accepts(&[a, b], &current, 8).await, 1);
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opening_errors_name_what_is_wrong() {
    let Some(admin) = server("opening_errors_name_what_is_wrong") else {
        return;
    };
    let no_secret = |error: &LedgerError| {
        let text = format!("{error} {error:?}");
        assert!(!text.contains("hunter2"), "a password is shown: {text}");
    };

    // A malformed URL.
    let error = Ledger::open("postgres://rp:hunter2@localhost:notaport/ledger")
        .await
        .unwrap_err();
    assert!(matches!(error, LedgerError::InvalidUrl { .. }), "{error}");
    assert!(error.to_string().contains("port"), "{error}");
    no_secret(&error);

    // TLS asked for: this build has none, and says so rather than connecting in plain text.
    for mode in ["require", "verify-full"] {
        let url = format!("postgres://rp:hunter2@127.0.0.1:1/ledger?sslmode={mode}");
        let error = Ledger::open(&url).await.unwrap_err();
        assert!(
            matches!(&error, LedgerError::Unsupported { reason, .. } if reason.contains("without TLS")),
            "{error}"
        );
        no_secret(&error);
    }

    // Nothing listens there: the host and port are named.
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let error = Ledger::open(&format!("postgres://rp:hunter2@127.0.0.1:{port}/ledger"))
        .await
        .unwrap_err();
    assert!(
        matches!(&error, LedgerError::Unreachable { server, .. } if *server == format!("127.0.0.1:{port}")),
        "{error}"
    );
    assert!(
        error.to_string().contains(&format!("127.0.0.1:{port}")),
        "{error}"
    );
    no_secret(&error);

    // A database that does not exist: named, with how to create it.
    let missing = with_database(&admin, "rp_test_no_such_database");
    let error = Ledger::open(&missing).await.unwrap_err();
    assert!(
        matches!(&error, LedgerError::MissingDatabase { database, .. } if database == "rp_test_no_such_database"),
        "{error}"
    );
    assert!(error.to_string().contains("createdb"), "{error}");

    // A refused password (the user exists, the password is wrong).
    let admin_sql = connect(&admin).await;
    admin_sql
        .batch_execute(
            "DROP ROLE IF EXISTS rp_test_auth; \
             CREATE ROLE rp_test_auth LOGIN PASSWORD 'the-right-one'",
        )
        .await
        .unwrap();
    let wrong = with_user(
        &with_database(&admin, "postgres"),
        "rp_test_auth",
        "hunter2",
    );
    match Ledger::open(&wrong).await {
        Err(error) => {
            assert!(
                matches!(&error, LedgerError::Authentication { user, .. } if user == "rp_test_auth"),
                "{error}"
            );
            no_secret(&error);
        }
        Ok(_) => {
            assert!(
                !under_ci(),
                "the test server accepted a wrong password: cargo xtask's cluster asks for one"
            );
            let _ = writeln!(
                std::io::stderr(),
                "\n!!! opening_errors_name_what_is_wrong: the server of RP_TEST_POSTGRES_URL trusts rp_test_auth \
                 without a password; the wrong-password check was SKIPPED\n"
            );
        }
    }
    // A user that does not exist.
    let nobody = with_user(
        &with_database(&admin, "postgres"),
        "rp_test_nobody",
        "hunter2",
    );
    let error = Ledger::open(&nobody).await.unwrap_err();
    assert!(
        matches!(&error, LedgerError::Authentication { user, .. } if user == "rp_test_nobody"),
        "{error}"
    );
    no_secret(&error);
    admin_sql
        .batch_execute("DROP ROLE IF EXISTS rp_test_auth")
        .await
        .unwrap();

    // A server (here: a database) that starts every transaction read-only.
    let db = Database::fresh(&admin, "read_only").await;
    admin_sql
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET default_transaction_read_only = on",
            db.name
        ))
        .await
        .unwrap();
    let error = Ledger::open(&db.url).await.unwrap_err();
    assert!(
        matches!(error, LedgerError::ReadOnlyServer { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("read-only"), "{error}");
    db.remove().await;
}

/// `url` with `user:password` as its user info.
fn with_user(url: &str, user: &str, password: &str) -> String {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{user}:{password}@{host}{tail}")
}

/// Pages are in byte order (as Rust compares payment IDs, and as the memory store and SQLite
/// list them) even in a database whose locale sorts otherwise: an ICU `en-US` database puts
/// `a` before `B`, byte order puts `B` first.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_are_in_byte_order_whatever_the_locale() {
    let Some(admin) = server("pages_are_in_byte_order_whatever_the_locale") else {
        return;
    };
    let name = "rp_test_icu";
    let client = connect(&admin).await;
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
    let icu = client
        .batch_execute(&format!(
            "CREATE DATABASE {name} TEMPLATE template0 ENCODING 'UTF8' \
             LOCALE_PROVIDER icu ICU_LOCALE 'en-US' LOCALE 'C.UTF-8'"
        ))
        .await;
    if let Err(error) = icu {
        assert!(
            !under_ci(),
            "the test server cannot make an ICU database: {error:?}"
        );
        let _ = std::io::stderr().lock().write_all(
            format!(
                "\n!!! pages_are_in_byte_order_whatever_the_locale: SKIPPED, the server cannot make an ICU database: {error}\n"
            )
            .as_bytes(),
        );
        return;
    }
    let db = Database {
        admin: admin.clone(),
        name: name.to_owned(),
        url: with_database(&admin, name),
    };
    let store = db.open().await.store(project(1234));
    let memory = rp_payout::MemoryStore::new();
    for id in ["a-1", "B-1", "b-2", "A-2", "Ä-3", "z", "Z"] {
        let r = record(id, "77011234567", 100, 5);
        store
            .insert(r.clone(), first_event(&r), rp_model::Limits::NONE)
            .await
            .unwrap();
        PayoutStore::insert(&memory, r.clone(), first_event(&r), rp_model::Limits::NONE)
            .await
            .unwrap();
    }
    let ids = |records: Vec<PayoutRecord>| -> Vec<String> {
        records
            .into_iter()
            .map(|r| r.payment_id.as_str().to_owned())
            .collect()
    };
    let query = PayoutQuery::new();
    let expected = ids(PayoutStore::list(&memory, &query).await.unwrap());
    assert_eq!(ids(store.list(&query).await.unwrap()), expected, "list");
    let expected = ids(PayoutStore::unsettled(&memory, None, 100).await.unwrap());
    assert_eq!(
        ids(store.unsettled(None, 100).await.unwrap()),
        expected,
        "unsettled"
    );
    // Keyset pages of 2 walk the same order.
    let mut walked = Vec::new();
    let mut query = PayoutQuery::new().limit(2);
    loop {
        let page = store.list(&query).await.unwrap();
        let Some(last) = page.last().cloned() else {
            break;
        };
        walked.extend(ids(page));
        query = query.after(&last);
    }
    assert_eq!(
        walked,
        ids(PayoutStore::list(&memory, &PayoutQuery::new())
            .await
            .unwrap())
    );
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_ledger_keeps_operators_and_sessions() {
    let Some(admin) = server("the_postgres_ledger_keeps_operators_and_sessions") else {
        return;
    };
    let db = Database::fresh(&admin, "access").await;
    let ledger = db.open().await;
    crate::access::run_all(&ledger).await;
    // Another instance on the database shares the operators.
    let other = db.open().await;
    let anna = other
        .access(project(2))
        .operator("anna")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(anna.role, rp_ledger::Role::Pay);
    drop((ledger, other));
    db.remove().await;
}

/// Writes an operator or key bound to no project (as schema 9 keeps those made before it).
async fn postgres_legacy(sql: &tokio_postgres::Client, what: &str) {
    let words: Vec<&str> = what.split(' ').collect();
    match words.as_slice() {
        ["operator", name] => {
            sql.execute(
                "INSERT INTO rp_ledger.project_operators \
                 (project_id, name, password_hash, role, updated_at) \
                 VALUES (0, $1, '$argon2id$v=19$old', 'pay', 0)",
                &[name],
            )
            .await
        }
        ["key", name, hash] => {
            let hash = hash.repeat(32);
            sql.execute(
                "INSERT INTO rp_ledger.project_api_keys \
                 (project_id, name, key_sha256, role, created_at) \
                 VALUES (0, $1, $2, 'pay', 0)",
                &[name, &hash],
            )
            .await
        }
        _ => panic!("{what}"),
    }
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_ledger_adopts_operators_and_keys_of_no_project() {
    let Some(admin) = server("the_postgres_ledger_adopts_operators_and_keys_of_no_project") else {
        return;
    };
    let db = Database::fresh(&admin, "adoption").await;
    let ledger = db.open().await;
    let sql = db.sql().await;
    crate::access::adoption(&ledger, |what| postgres_legacy(&sql, what)).await;
    drop((ledger, sql));
    db.remove().await;
    let mut dbs = Vec::new();
    for n in 0..3 {
        let db = Database::fresh(&admin, &format!("adoption{n}")).await;
        let ledger = db.open().await;
        let sql = db.sql().await;
        dbs.push((db, ledger, sql));
    }
    crate::access::adoption_sees_other_projects([&dbs[0].1, &dbs[1].1, &dbs[2].1], |n| {
        postgres_legacy(&dbs[n].2, "operator old-dana")
    })
    .await;
    for (db, ledger, sql) in dbs {
        drop((ledger, sql));
        db.remove().await;
    }
}

/// Undoes schema 9: the operators, sessions and API keys of the whole ledger, as schema 4 to 8
/// kept them (for tests that make an older ledger from a new one).
pub(crate) const UNDO_V9: &str = r#"
    DROP TABLE rp_ledger.project_sessions; DROP TABLE rp_ledger.project_api_keys;
    DROP TABLE rp_ledger.project_operators;
    CREATE TABLE rp_ledger.operators (name TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        password_hash TEXT NOT NULL, role TEXT NOT NULL, totp_secret TEXT,
        updated_at BIGINT NOT NULL);
    CREATE TABLE rp_ledger.sessions (token_sha256 TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        operator TEXT COLLATE "C" NOT NULL REFERENCES rp_ledger.operators (name),
        csrf TEXT NOT NULL, created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
    CREATE INDEX sessions_by_operator ON rp_ledger.sessions (operator);
    CREATE TABLE rp_ledger.api_keys (name TEXT COLLATE "C" NOT NULL PRIMARY KEY,
        key_sha256 TEXT COLLATE "C" NOT NULL UNIQUE, role TEXT NOT NULL,
        created_at BIGINT NOT NULL, revoked_at BIGINT);"#;

/// A ledger of schema 8 (operators, sessions and API keys of the whole ledger) is migrated on
/// open: its operators and keys kept, bound to no project until adopted; their sessions end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_8_ledger_keeps_its_operators_and_keys_for_adoption() {
    let Some(admin) = server("a_version_8_ledger_keeps_its_operators_and_keys_for_adoption") else {
        return;
    };
    let db = Database::fresh(&admin, "v8access").await;
    drop(db.open().await);
    db.sql()
        .await
        .batch_execute(
            &format!(
                r#"{UNDO_V9}
             INSERT INTO rp_ledger.operators VALUES ('anna', '$argon2id$v=19$h', 'pay', 'JBSWY3DP', 5);
             INSERT INTO rp_ledger.sessions VALUES ('t', 'anna', 'c', 1, 9223372036854775807);
             INSERT INTO rp_ledger.api_keys VALUES ('backend', 'ab', 'view', 7, NULL);
             UPDATE rp_ledger.schema_version SET version = 8;"#
            ),
        )
        .await
        .unwrap();
    let ledger = db.open().await;
    crate::access::version_8_rows_adopted(&ledger).await;
    drop(ledger);
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_ledger_keeps_a_webhook_outbox() {
    let Some(admin) = server("the_postgres_ledger_keeps_a_webhook_outbox") else {
        return;
    };
    let db = Database::fresh(&admin, "webhooks").await;
    let ledger = db.open().await;
    crate::webhooks::run_all(&ledger).await;
    crate::webhooks::a_refused_change_makes_no_delivery(&ledger).await;
    crate::webhooks::attempts_are_recorded_together(&ledger).await;
    crate::webhooks::the_log_keeps_the_last_attempts(&ledger).await;
    crate::webhooks::an_attention_mark_makes_deliveries(&ledger).await;
    crate::webhooks::payout_changes_are_told(&ledger).await;
    // Two instances claiming at once never get the same delivery.
    let other = db.open().await;
    let project = ProjectId::new(1234).unwrap();
    let hooks = ledger.webhooks(project);
    for n in 0..20 {
        let r = record(&format!("wh-many-{n}"), "77011234567", 100, 10 + n);
        let event = PayoutEvent::new(r.created_at, EventSource::Call, None, PayoutState::Created);
        ledger
            .store(project)
            .insert(r, event, rp_model::Limits::NONE)
            .await
            .unwrap();
    }
    let lease = std::time::Duration::from_secs(60);
    let other_hooks = other.webhooks(project);
    let (one, two) = tokio::join!(
        hooks.claim_due("one", lease, 15),
        other_hooks.claim_due("two", lease, 15)
    );
    let mut keys: Vec<_> = one
        .unwrap()
        .into_iter()
        .chain(two.unwrap())
        .map(|c| c.key)
        .collect();
    let claimed = keys.len();
    keys.sort_by(|a, b| {
        (a.endpoint, a.payment_id.as_str(), a.version).cmp(&(
            b.endpoint,
            b.payment_id.as_str(),
            b.version,
        ))
    });
    keys.dedup();
    assert_eq!(keys.len(), claimed, "a delivery claimed twice");
    assert!(claimed >= 20, "{claimed}");
    drop((ledger, other));
    db.remove().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_ledger_keeps_batches() {
    let Some(admin) = server("the_postgres_ledger_keeps_batches") else {
        return;
    };
    let db = Database::fresh(&admin, "batches").await;
    let ledger = db.open().await;
    crate::batches::run_all(&ledger).await;
    // Another instance on the database sees the same batches.
    let other = db.open().await;
    let progress = other
        .batches(project(1234))
        .progress(&crate::batches::batch_id(5))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(progress.count("success"), 1);
    drop((ledger, other));
    db.remove().await;
}

/// Two ledgers on one database (two instances on two machines) register a file at the same
/// moment: one registers it, the other finds it, neither fails. Then their workers race to
/// claim its rows: every row is claimed once, and finished by the worker that claimed it; and
/// both start the next pass at once: it starts once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_a_batch_without_sharing_a_row() {
    let Some(admin) = server("two_instances_share_a_batch_without_sharing_a_row") else {
        return;
    };
    let db = Database::fresh(&admin, "batch_instances").await;
    let (a, b) = tokio::join!(db.open(), db.open());
    let (a, b) = (a.batches(project(1234)), b.batches(project(1234)));
    const ROWS: u64 = 400;
    for n in 20..25 {
        let id = crate::batches::batch_id(n);
        let register = |store: &Arc<dyn rp_ledger::BatchStore>| {
            let (store, id) = (Arc::clone(store), id.clone());
            tokio::spawn(async move {
                store
                    .register(
                        crate::batches::new_batch(&id, ROWS, &[]),
                        crate::batches::rows_of(&id, ROWS, &[]),
                    )
                    .await
                    .unwrap()
            })
        };
        let (first, second) = (register(&a), register(&b));
        let mut answers = [first.await.unwrap(), second.await.unwrap()];
        answers.sort_by_key(|r| *r == rp_ledger::Registered::Existing);
        assert_eq!(
            answers,
            [rp_ledger::Registered::New, rp_ledger::Registered::Existing],
            "batch {n}"
        );
        let progress = b.progress(&id).await.unwrap().unwrap();
        assert_eq!(progress.undone, ROWS, "every row was written");
    }

    let id = crate::batches::batch_id(20);
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..6 {
        let store = Arc::clone(if w % 2 == 0 { &a } else { &b });
        let id = id.clone();
        workers.spawn(async move {
            let owner = format!("instance-{}-worker-{w}", w % 2);
            let lease = std::time::Duration::from_secs(60);
            let mut mine = Vec::new();
            loop {
                let rows = store.claim(&id, &owner, lease, 5).await.unwrap();
                if rows.is_empty() {
                    return mine;
                }
                let numbers: Vec<u64> = rows.iter().map(|r| r.row).collect();
                assert_eq!(
                    store.finish(&id, &owner, &numbers).await.unwrap(),
                    numbers.len() as u64,
                    "{owner} finishes every row it claimed"
                );
                mine.extend(numbers);
            }
        });
    }
    let mut all = Vec::new();
    while let Some(mine) = workers.join_next().await {
        all.extend(mine.unwrap());
    }
    all.sort_unstable();
    assert_eq!(
        all,
        (1..=ROWS).collect::<Vec<_>>(),
        "every row claimed once"
    );
    let progress = a.progress(&id).await.unwrap().unwrap();
    assert_eq!((progress.undone, progress.claimed), (0, 0));
    // Both instances start the next pass at once (no payout was recorded: every row goes
    // again): one reopens the rows, the other finds the pass going.
    let (first, second) = tokio::join!(a.reopen(&id), b.reopen(&id));
    let mut reopened = [first.unwrap(), second.unwrap()];
    reopened.sort_unstable();
    assert_eq!(reopened, [0, ROWS]);
    drop((a, b));
    db.remove().await;
}

/// A large file registers in one transaction within seconds (its rows go in by chunks), and
/// a claim on it stays quick.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_100000_rows_registers_in_seconds() {
    let Some(admin) = server("a_batch_of_100000_rows_registers_in_seconds") else {
        return;
    };
    let db = Database::fresh(&admin, "batch_large").await;
    let ledger = db.open().await;
    let store = ledger.batches(project(1234));
    const ROWS: u64 = 100_000;
    let id = crate::batches::batch_id(30);
    let started = std::time::Instant::now();
    let registered = store
        .register(
            crate::batches::new_batch(&id, ROWS, &[]),
            crate::batches::rows_of(&id, ROWS, &[]),
        )
        .await
        .unwrap();
    let took = started.elapsed();
    assert_eq!(registered, rp_ledger::Registered::New);
    let _ = writeln!(
        std::io::stderr(),
        "rp-ledger PostgreSQL: {ROWS} batch rows registered in {took:?}"
    );
    assert!(took < std::time::Duration::from_secs(60), "{took:?}");

    let lease = std::time::Duration::from_secs(60);
    for w in 0..20 {
        store.claim(&id, &format!("w{w}"), lease, 50).await.unwrap();
    }
    let started = std::time::Instant::now();
    let rows = store.claim(&id, "last", lease, 50).await.unwrap();
    let took = started.elapsed();
    assert_eq!(rows.first().map(|r| r.row), Some(1001));
    let _ = writeln!(
        std::io::stderr(),
        "rp-ledger PostgreSQL: a claim of 50 rows beside 20 claimants took {took:?}"
    );
    let progress = store.progress(&id).await.unwrap().unwrap();
    assert_eq!((progress.undone, progress.claimed), (ROWS, 1050));
    drop(ledger);
    db.remove().await;
}

/// A ledger written by schema version 1 (before the limits) is migrated on open: every payout
/// it holds counts against the limits, except the ones the platform refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_version_1_ledger_counts_its_payouts_against_the_limits_after_migration() {
    let Some(admin) =
        server("a_version_1_ledger_counts_its_payouts_against_the_limits_after_migration")
    else {
        return;
    };
    let db = Database::fresh(&admin, "v1usage").await;
    let now = std::time::SystemTime::now();
    {
        let ledger = db.open().await;
        let store = ledger.store(project(1234));
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
    db.sql()
        .await
        .batch_execute(
            "DROP TABLE rp_ledger.webhook_attempts; DROP TABLE rp_ledger.webhook_deliveries; \
             DROP TABLE rp_ledger.webhook_endpoints; \
             DROP TRIGGER payout_events_to_webhooks ON rp_ledger.payout_events; \
             DROP FUNCTION rp_ledger.payout_events_to_webhooks(); \
             DROP TABLE rp_ledger.project_api_keys; DROP TABLE rp_ledger.project_sessions; DROP TABLE rp_ledger.project_operators; \
             DROP TABLE rp_ledger.batch_rows; DROP TABLE rp_ledger.batches; \
             DROP TABLE rp_ledger.limit_usage; \
             ALTER TABLE rp_ledger.payouts DROP COLUMN metadata, DROP COLUMN amount, DROP COLUMN currency, DROP COLUMN counts, \
             DROP COLUMN usage_hour; \
             UPDATE rp_ledger.schema_version SET version = 1;",
        )
        .await
        .unwrap();
    let ledger = db.open().await;
    let usage = ledger
        .store(project(1234))
        .usage(rp_model::Currency::KZT)
        .await
        .unwrap();
    assert_eq!(
        (usage.day_amount, usage.day_count),
        (35_000, 2),
        "{usage:?}"
    );
    assert_eq!((usage.month_amount, usage.month_count), (35_000, 2));
    // An instance of the older rp, still running, inserts as schema 1 did: refused, since the
    // limits would never see that payout.
    let old_insert = db
        .sql()
        .await
        .execute(
            "INSERT INTO rp_ledger.payouts (project_id, payment_id, request, request_sha256, \
             phone, state, state_label, settled, version, created_at, updated_at, maybe_sent, \
             attempts) VALUES (1234, 'old-writer', '{}', '', '77011234567', '{}', 'created', \
             false, 0, 0, 0, false, 0)",
            &[],
        )
        .await;
    let error = old_insert.unwrap_err();
    assert!(format!("{error:?}").contains("null value"), "{error:?}");
    drop(ledger);
    db.remove().await;
}

/// The due deliveries are indexed by project, then time: a claim seeks its own project's,
/// and never reads another project's (a project whose sender is not running, say).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn due_deliveries_are_sought_by_project() {
    let Some(admin) = server("due_deliveries_are_sought_by_project") else {
        return;
    };
    let db = Database::fresh(&admin, "due_by_project").await;
    drop(db.open().await);
    let sql = db.sql().await;
    // An empty table: without this the planner would scan it, whatever the indexes.
    sql.batch_execute("SET enable_seqscan = off").await.unwrap();
    let plan: Vec<String> = sql
        .query(
            "EXPLAIN SELECT endpoint_id FROM rp_ledger.webhook_deliveries \
             WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= 5 AND project_id = 7 \
             ORDER BY next_attempt_at LIMIT 10",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|row| row.get(0))
        .collect();
    let plan = plan.join("\n");
    assert!(plan.contains("webhook_deliveries_due"), "{plan}");
    let condition = plan
        .lines()
        .find(|l| l.contains("Index Cond"))
        .unwrap_or_default();
    assert!(condition.contains("project_id = 7"), "{plan}");
    assert!(!plan.contains("Sort"), "{plan}");
    db.remove().await;
}

/// `review_s2::an_earlier_attention_mark_can_be_replayed` on PostgreSQL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_s2_an_earlier_attention_mark_can_be_replayed_postgres() {
    let Some(admin) = server("review_s2_an_earlier_attention_mark_can_be_replayed_postgres") else {
        return;
    };
    let db = Database::fresh(&admin, "review_s2_marks").await;
    let ledger = db.open().await;
    crate::review_s2::an_earlier_attention_mark_can_be_replayed(&ledger).await;
    drop(ledger);
    db.remove().await;
}
