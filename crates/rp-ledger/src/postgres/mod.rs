//! The PostgreSQL ledger (feature `postgres`): see [`PostgresLedger`].

mod access;
mod aside;
mod batch;
mod batched;
mod clock;
mod connect;
mod delivery;
mod register;
mod rows;
mod schema;
mod sql;
mod store;
mod webhook;
mod writes;

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use deadpool_postgres::{Manager, Pool, PoolError, Runtime};
use rp_model::ProjectId;
use rp_payout::Error;
use tokio_postgres::NoTls;

use crate::{LedgerError, LedgerStats};

pub use access::PostgresAccess;
pub use batch::PostgresBatches;
pub use schema::{POSTGRES_SCHEMA, SCHEMA_VERSION as POSTGRES_SCHEMA_VERSION};
pub use store::PostgresStore;
pub use webhook::PostgresWebhooks;

/// Connections the pool of one [`PostgresLedger`] keeps at most.
pub const MAX_CONNECTIONS: usize = 16;

/// How long opening a connection may take, unless the URL sets `connect_timeout`.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long an operation waits for a free connection of the pool.
const WAIT_TIMEOUT: Duration = Duration::from_secs(30);

/// An open PostgreSQL ledger (feature `postgres`): a pool of connections (deadpool), one
/// [`PostgresStore`] per project, the same semantics as the SQLite ledger, for many
/// instances on many machines. Cheap to clone: clones share the pool.
///
/// - **Where it writes**: only in its own schema, [`POSTGRES_SCHEMA`] (`rp_ledger`): the
///   tables `schema_version`, `payouts`, `payout_events`, `limit_usage`, `batches` and
///   `batch_rows`. The rest of the database is
///   never read or altered, so the ledger can live beside other applications' tables. A
///   schema `rp_ledger` that exists but was not made by rp (it has tables, but no
///   `schema_version`) is refused ([`LedgerError::NotALedger`]), never altered. The user
///   needs the right to create that schema (`CREATE` on the database), or an empty
///   `rp_ledger` schema it owns.
/// - **Durability**: every write is one statement (the record and its event in one CTE, so
///   atomic, in one round trip), committed
///   with `synchronous_commit` at least `on`: a server or role default of `off` or `local`
///   is raised to `on` for the ledger's sessions; a stronger one (`remote_write`,
///   `remote_apply`) is kept. A write returns only after its commit.
/// - **Isolation**: `READ COMMITTED` whatever the server's default (a `SERIALIZABLE` default
///   would turn racing compare-and-sets into errors): the insert is
///   `INSERT … ON CONFLICT DO NOTHING` on the primary key `(project_id, payment_id)`, the
///   update a compare-and-set `UPDATE … WHERE version = $expected`.
/// - **Stored forms**: as in SQLite: times as nanoseconds since the Unix epoch (`BIGINT`,
///   exact), states as tagged JSON, the request as JSON with its SHA-256, so a record reads
///   back equal. Text that is compared (payment IDs, phone numbers, state labels) uses the
///   `"C"` collation, so pages are in byte order whatever the database's locale.
/// - **TLS**: this build connects without TLS. `sslmode=disable` and `sslmode=prefer` (the
///   default, as in libpq: TLS if available, which it is not here) connect in plain text;
///   `sslmode=require`, `verify-ca` and `verify-full` are refused with
///   [`LedgerError::Unsupported`] rather than silently downgraded. Use a local socket, a
///   trusted network, or a TLS proxy on the same host.
/// - **Opening**: the URL is parsed as libpq does (`postgres://USER:PASSWORD@HOST:PORT/DB?…`;
///   a missing database name defaults to the user name), a connection is made and checked
///   (reachable, authenticated, the database exists, writable, not a standby), then the
///   schema is migrated under an advisory lock, so instances opening at once migrate once.
///   Unless the URL sets them, `connect_timeout` is [`CONNECT_TIMEOUT`] and
///   `application_name` is `rp-ledger`.
#[derive(Clone)]
pub struct PostgresLedger {
    shared: Arc<Shared>,
}

struct Shared {
    pool: Pool,
    /// The URL without its password, for messages.
    name: String,
    commits: AtomicU64,
    /// Notified when a payout was recorded or changed ([`PostgresLedger::payout_changes`]).
    changes: Arc<tokio::sync::Notify>,
    /// The server's clock, for leases and limits, without a round trip per reading.
    clock: clock::ServerClock,
    /// The compare-and-sets waiting to be written together.
    updates: writes::Queue<batched::Update>,
    /// The inserts (without limits) waiting to be written together.
    inserts: writes::Queue<batched::Insert>,
    /// The reads of records by payment ID waiting to be read together.
    reads: writes::Queue<batched::Read>,
}

impl fmt::Debug for PostgresLedger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresLedger")
            .field("ledger", &self.shared.name)
            .finish_non_exhaustive()
    }
}

impl PostgresLedger {
    /// Opens the ledger at `url` (`postgres://…` or `postgresql://…`): connects, checks that
    /// the server can be written, migrates the schema, and keeps a pool of connections.
    /// `name` is the URL as shown in messages (without its password).
    ///
    /// # Errors
    ///
    /// [`LedgerError`] naming what is wrong: a malformed URL, TLS asked for, a refused or
    /// unreachable server (`host:port`), a refused user or password, a missing database, a
    /// read-only server or standby, a schema `rp_ledger` that is not a ledger, a ledger written
    /// by a newer version.
    pub async fn open(url: &str, name: &str) -> Result<PostgresLedger, LedgerError> {
        let mut config = connect::config(url, name)?;
        let session = connect::check(&config, name).await?;
        schema::migrate(session.client, name).await?;
        // Every write is one autocommitted statement whose compare-and-set relies on READ
        // COMMITTED re-checking a concurrently updated row; a server default of SERIALIZABLE
        // would turn those races into errors instead.
        let mut options = config.get_options().unwrap_or_default().to_owned();
        options.push_str(" -c default_transaction_isolation=read\\ committed");
        if session.raise_synchronous_commit {
            options.push_str(" -c synchronous_commit=on");
        }
        config.options(options.trim_start());
        let pool = Pool::builder(Manager::new(config, NoTls))
            .max_size(MAX_CONNECTIONS)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(WAIT_TIMEOUT))
            .build()
            .map_err(|e| LedgerError::Backend {
                operation: "build the connection pool",
                reason: format!("{name}: {e}"),
            })?;
        let ledger = PostgresLedger {
            shared: Arc::new(Shared {
                pool,
                name: name.to_owned(),
                commits: AtomicU64::new(0),
                changes: Arc::default(),
                clock: clock::ServerClock::new(),
                updates: writes::Queue::default(),
                inserts: writes::Queue::default(),
                reads: writes::Queue::default(),
            }),
        };
        ledger.check_pool().await?;
        Ok(ledger)
    }

    /// Checks one pooled connection: it commits at least with `synchronous_commit=on`, and
    /// runs `READ COMMITTED`.
    async fn check_pool(&self) -> Result<(), LedgerError> {
        let name = &self.shared.name;
        let failed = |reason: String| LedgerError::Backend {
            operation: "check a pooled connection",
            reason: format!("{name}: {reason}"),
        };
        let client = self
            .shared
            .pool
            .get()
            .await
            .map_err(|e| failed(pool_error(&e)))?;
        let row = client
            .query_one(
                "SELECT current_setting('synchronous_commit'), \
                 current_setting('default_transaction_isolation')",
                &[],
            )
            .await
            .map_err(|e| failed(connect::describe(&e)))?;
        let level: String = row.try_get(0).map_err(|e| failed(connect::describe(&e)))?;
        if connect::weak_commit(&level) {
            return Err(failed(format!(
                "synchronous_commit is {level} on the ledger's connections even after asking for on; \
                 a payout must not be sent before its record is durable"
            )));
        }
        // A pooler that drops the `options` startup parameter would silently leave the
        // server's default in place.
        let isolation: String = row.try_get(1).map_err(|e| failed(connect::describe(&e)))?;
        if isolation != "read committed" {
            return Err(failed(format!(
                "the ledger's connections run {isolation} even after asking for read committed \
                 (does a connection pooler drop the options parameter?); its compare-and-sets \
                 rely on read committed"
            )));
        }
        Ok(())
    }

    /// The payouts of `project`.
    pub fn store(&self, project: ProjectId) -> PostgresStore {
        PostgresStore::new(self.clone(), project)
    }

    /// The batches of `project`.
    pub fn batches(&self, project: ProjectId) -> PostgresBatches {
        PostgresBatches::new(self.clone(), project)
    }

    /// The webhook endpoints and deliveries of `project`.
    pub fn webhooks(&self, project: ProjectId) -> PostgresWebhooks {
        PostgresWebhooks::new(self.clone(), project)
    }

    /// The console's operators and sessions, and the API's keys, of `project`.
    pub fn access(&self, project: ProjectId) -> PostgresAccess {
        PostgresAccess::new(self.clone(), project)
    }

    /// Notified each time this process recorded or changed a payout in the ledger (the
    /// change, and the webhook deliveries it made, committed; another instance's changes are
    /// not told): a webhook sender waits on it.
    pub fn payout_changes(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.shared.changes)
    }

    /// Says a payout was recorded or changed (see [`PostgresLedger::payout_changes`]).
    pub(crate) fn payout_changed(&self) {
        self.shared.changes.notify_one();
    }

    /// How much the ledger has committed since it was opened (every write is its own
    /// transaction: PostgreSQL shares WAL flushes between concurrent commits by itself).
    pub fn stats(&self) -> LedgerStats {
        let commits = self.shared.commits.load(Ordering::Relaxed);
        LedgerStats {
            commits,
            writes: commits,
        }
    }

    /// A connection of the pool, for `what`.
    async fn client(&self, what: &str) -> Result<deadpool_postgres::Client, Error> {
        self.shared
            .pool
            .get()
            .await
            .map_err(|e| Error::store(what, format!("{}: {}", self.shared.name, pool_error(&e))))
    }

    /// The server's clock now, read off an offset measured on a pooled connection every few
    /// seconds (see [`clock::ServerClock`]): within milliseconds of `clock_timestamp()`.
    async fn server_now(&self, what: &str) -> Result<std::time::SystemTime, Error> {
        self.shared.clock.now(&self.shared.pool).await.map_err(|e| {
            let reason = match e {
                clock::ClockError::Pool(e) => pool_error(&e),
                clock::ClockError::Sql(e) => connect::describe(&e),
                clock::ClockError::NoReading => "no reading".to_owned(),
            };
            Error::store(what, format!("{}: {reason}", self.shared.name))
        })
    }

    /// Counts a committed write.
    fn committed(&self) {
        self.shared.commits.fetch_add(1, Ordering::Relaxed);
    }
}

/// A pool error in words (a connection error with the server's message).
fn pool_error(error: &PoolError) -> String {
    match error {
        PoolError::Backend(e) => connect::describe(e),
        PoolError::Timeout(_) => format!(
            "no connection of the pool came free within {WAIT_TIMEOUT:?} ({MAX_CONNECTIONS} at most); is the server slow or unreachable?"
        ),
        other => other.to_string(),
    }
}
