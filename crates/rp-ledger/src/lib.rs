//! A durable payout ledger for [`rp_payout`]: every payout recorded before its first byte is
//! sent, and every change with the event that explains it, in one transaction.
//!
//! [`Ledger::open`] takes a URL and hands out one [`PayoutStore`] per
//! project ([`Ledger::store`]): the platform's payment IDs are unique per project, so a test
//! project and a production project share one ledger without seeing each other's payouts.
//! It also keeps each project's **batches** ([`Ledger::batches`], a [`BatchStore`]): a file of
//! payouts registered whole, whose rows any number of workers claim with leases.
//!
//! | URL | Ledger |
//! | --- | --- |
//! | `sqlite:PATH` (or `sqlite://PATH`) | an SQLite file (created if missing; its directory must exist) |
//! | `sqlite::memory:` | an in-memory SQLite database, gone when the ledger is dropped (tests) |
//! | `postgres://…` or `postgresql://…` | PostgreSQL (feature `postgres`), for many instances on many machines |
//!
//! The SQLite ledger (feature `sqlite`, on by default; SQLite is compiled in) runs in WAL mode
//! with `synchronous=FULL`, so a recorded payout survives a power cut, not only a crash;
//! foreign keys on; a busy timeout, so several processes can share one file. All writes go
//! through one writer thread that commits whatever is queued in one transaction (**group
//! commit**: concurrent payouts share an fsync); reads run concurrently on their own
//! connections. The schema is versioned and migrated on open; a ledger written by a newer
//! version is refused, never altered.
//!
//! The PostgreSQL ledger (feature `postgres`; tokio-postgres with a deadpool pool, no TLS)
//! has the same semantics: each write atomic (the record and its event, in one statement),
//! `synchronous_commit` at least `on`, its tables only in the schema `rp_ledger` (nothing
//! else in the database is touched), the same versioned migrations and refusals. Its docs
//! (`PostgresLedger`) say how the URL, TLS (`sslmode=require` is refused: this build has
//! none) and the pool are handled.
//!
//! # Example
//!
//! ```
//! # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(async {
//! use rp_model::ProjectId;
//! use rp_payout::{Client, Config, PayoutQuery};
//! use rp_sign::SecretKey;
//!
//! let ledger = rp_ledger::Ledger::open("sqlite::memory:").await?;
//! let project = ProjectId::new(1234)?;
//! let client = Client::builder(Config::new(project, SecretKey::from("project-secret")))
//!     .store(ledger.store(project))
//!     .build()?;
//! let page = client.store().list(&PayoutQuery::new().state("unknown")).await?;
//! assert!(page.is_empty());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # }).unwrap();
//! ```

mod access;
mod batch;
mod error;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
mod origin;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
mod stored;
mod url;
mod webhook;

use std::fmt;
use std::sync::Arc;

use rp_model::ProjectId;
use rp_payout::PayoutStore;

pub use access::{
    AccessStore, Adoption, ApiKey, MAX_OPERATOR_NAME, OperatorAccount, Role, Session, Unadopted,
    check_operator_name,
};
pub use batch::{
    BatchInfo, BatchProgress, BatchRow, BatchState, BatchStore, ClaimedRow, HeldRow, MAX_CLASHES,
    MAX_HELD_QUERY, MAX_LEASE, NewBatch, NewBatchRow, OnClash, Registered, RowClash, RowSource,
    request_sha256,
};
pub use error::LedgerError;
#[cfg(feature = "postgres")]
pub use postgres::{
    CONNECT_TIMEOUT, MAX_CONNECTIONS, POSTGRES_SCHEMA, POSTGRES_SCHEMA_VERSION, PostgresAccess,
    PostgresBatches, PostgresLedger, PostgresStore, PostgresWebhooks,
};
#[cfg(feature = "sqlite")]
pub use sqlite::{
    MAX_GROUP, SCHEMA_VERSION, SqliteAccess, SqliteBatches, SqliteLedger, SqliteStore,
    SqliteWebhooks,
};
pub use url::LedgerUrl;
pub use webhook::{
    AfterAttempt, AttemptRecord, ClaimedDelivery, DeliveryAttempt, DeliveryInfo, DeliveryKey,
    DeliveryState, MAX_LOGGED_ATTEMPTS, WebhookEndpoint, WebhookStore,
};

/// An open ledger. Cheap to clone; every clone shares the same connections.
#[derive(Clone)]
pub struct Ledger {
    backend: Backend,
    url: LedgerUrl,
}

#[derive(Clone)]
enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(SqliteLedger),
    #[cfg(feature = "postgres")]
    Postgres(PostgresLedger),
}

/// How much a ledger has committed since it was opened.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct LedgerStats {
    /// Transactions committed (each one fsync with SQLite's `synchronous=FULL`; one per
    /// write with PostgreSQL, which shares WAL flushes between concurrent commits itself).
    pub commits: u64,
    /// Writes committed in them (inserts and updates). More writes than commits is group
    /// commit at work.
    pub writes: u64,
}

impl fmt::Debug for Ledger {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ledger").field("url", &self.url).finish()
    }
}

impl Ledger {
    /// Opens (creating and migrating if needed) the ledger at `url` (see the crate docs).
    ///
    /// # Errors
    ///
    /// [`LedgerError`], naming what is wrong: a malformed URL, a backend this build lacks, a
    /// missing directory, a read-only file, a file that is not a ledger, a ledger written by a
    /// newer version; for PostgreSQL also a refused connection (`host:port`), a refused user
    /// or password, a missing database, a read-only server or standby, TLS asked for.
    pub async fn open(url: &str) -> Result<Ledger, LedgerError> {
        let url = LedgerUrl::parse(url)?;
        Self::open_url(url).await
    }

    /// Opens the ledger at an already parsed URL.
    ///
    /// # Errors
    ///
    /// As [`Ledger::open`].
    pub async fn open_url(url: LedgerUrl) -> Result<Ledger, LedgerError> {
        let backend = match &url {
            #[cfg(feature = "sqlite")]
            LedgerUrl::SqliteFile(path) => {
                let path = path.clone();
                Backend::Sqlite(blocking(move || SqliteLedger::open_file(&path)).await?)
            }
            #[cfg(feature = "sqlite")]
            LedgerUrl::SqliteMemory => Backend::Sqlite(blocking(SqliteLedger::open_memory).await?),
            #[cfg(feature = "postgres")]
            LedgerUrl::Postgres(text) => {
                Backend::Postgres(PostgresLedger::open(text, &url.to_string()).await?)
            }
            // A backend this build lacks (none when every feature is on).
            #[allow(unreachable_patterns)]
            other => {
                return Err(LedgerError::Unsupported {
                    url: other.to_string(),
                    reason: other.unsupported_reason(),
                });
            }
        };
        Ok(Ledger { backend, url })
    }

    /// The payouts of `project`, as a [`PayoutStore`] for [`rp_payout::Client`].
    pub fn store(&self, project: ProjectId) -> Arc<dyn PayoutStore> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(ledger) => Arc::new(ledger.store(project)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(ledger) => Arc::new(ledger.store(project)),
        }
    }

    /// The batches of `project`, as a [`BatchStore`] for `rp-batch`.
    pub fn batches(&self, project: ProjectId) -> Arc<dyn BatchStore> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(ledger) => Arc::new(ledger.batches(project)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(ledger) => Arc::new(ledger.batches(project)),
        }
    }

    /// The webhook endpoints of `project` and the deliveries of its payouts' changes (a
    /// transactional outbox: see [`WebhookStore`]).
    pub fn webhooks(&self, project: ProjectId) -> Arc<dyn WebhookStore> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(ledger) => Arc::new(ledger.webhooks(project)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(ledger) => Arc::new(ledger.webhooks(project)),
        }
    }

    /// The operators of `rp serve`'s console for `project`, their sessions and the API's
    /// keys, shared by every instance on this ledger (another project's are not seen).
    pub fn access(&self, project: ProjectId) -> Arc<dyn AccessStore> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(ledger) => Arc::new(ledger.access(project)),
            #[cfg(feature = "postgres")]
            Backend::Postgres(ledger) => Arc::new(ledger.access(project)),
        }
    }

    /// Notified each time this process recorded or changed a payout in the ledger, once the
    /// change (and the webhook deliveries it made) committed; another process's changes are
    /// not told. A webhook sender waits on it (notifications while it is busy make one).
    pub fn payout_changes(&self) -> Arc<tokio::sync::Notify> {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(ledger) => ledger.payout_changes(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(ledger) => ledger.payout_changes(),
        }
    }

    /// How much the ledger has committed since it was opened.
    pub fn stats(&self) -> LedgerStats {
        match &self.backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(ledger) => ledger.stats(),
            #[cfg(feature = "postgres")]
            Backend::Postgres(ledger) => ledger.stats(),
        }
    }

    /// The URL it was opened with (a password, if any, is never shown).
    pub fn url(&self) -> &LedgerUrl {
        &self.url
    }
}

/// Runs blocking work (opening files, migrating) off the async threads when a runtime is
/// there.
#[cfg(feature = "sqlite")]
async fn blocking<T, F>(work: F) -> Result<T, LedgerError>
where
    F: FnOnce() -> Result<T, LedgerError> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| LedgerError::Backend {
            operation: "open",
            reason: format!("the opening task failed: {e}"),
        })?
}
