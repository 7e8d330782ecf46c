//! [`LedgerError`]: why a ledger could not be opened. Failures of single operations on an open
//! ledger are [`rp_payout::Error::Store`], as the [`PayoutStore`](rp_payout::PayoutStore)
//! trait says.

/// Why a ledger could not be opened. Every message names the URL or file and what to do; a
/// password is never shown.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LedgerError {
    /// The URL is not one this crate reads.
    #[error("invalid ledger URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given (a password in it is hidden).
        url: String,
        /// What is wrong, and what is expected.
        reason: String,
    },
    /// The URL names a backend this build does not have.
    #[error("ledger {url}: {reason}")]
    Unsupported {
        /// The URL (a password in it is hidden).
        url: String,
        /// Why, and what to use instead.
        reason: String,
    },
    /// The ledger file or its directory cannot be used.
    #[error("ledger {path}: {reason}")]
    File {
        /// The file.
        path: String,
        /// What is wrong.
        reason: String,
    },
    /// The file is read-only: a ledger must be written before any payout is sent.
    #[error(
        "ledger {path} is read-only: payouts are recorded before they are sent, so the ledger must be writable (check the file's and its directory's permissions)"
    )]
    ReadOnly {
        /// The file.
        path: String,
    },
    /// The file exists but is not a ledger (not an SQLite database, or another application's).
    #[error("{path} is not an rp ledger: {reason}")]
    NotALedger {
        /// The file.
        path: String,
        /// What was found.
        reason: String,
    },
    /// The ledger was written by a newer version of rp, whose schema this one does not know.
    /// It is refused, never altered.
    #[error(
        "ledger {path} has schema version {found}, newer than this rp understands ({supported}): use the newer rp, or another ledger"
    )]
    NewerSchema {
        /// The file.
        path: String,
        /// Its schema version.
        found: i64,
        /// The newest this build knows.
        supported: i64,
    },
    /// The database server cannot be reached (PostgreSQL): refused, unknown host, timed out.
    #[error("ledger {url}: cannot connect to {server}: {reason}")]
    Unreachable {
        /// The URL (its password hidden).
        url: String,
        /// The server(s) tried, `host:port`.
        server: String,
        /// What happened, and what to check.
        reason: String,
    },
    /// The server refused the user name or password (PostgreSQL).
    #[error(
        "ledger {url}: the server refused user {user:?}: {reason} (check the user name and password of the URL, and the server's pg_hba.conf)"
    )]
    Authentication {
        /// The URL (its password hidden).
        url: String,
        /// The user name that was refused.
        user: String,
        /// The server's message (it never contains the password).
        reason: String,
    },
    /// The database named in the URL does not exist on the server (PostgreSQL).
    #[error(
        "ledger {url}: database {database:?} does not exist on {server}; create it first, e.g. `createdb -h HOST -p PORT -U USER {database}` or `CREATE DATABASE \"{database}\";` in psql"
    )]
    MissingDatabase {
        /// The URL (its password hidden).
        url: String,
        /// The database that is missing.
        database: String,
        /// The server, `host:port`.
        server: String,
    },
    /// The server accepts no writes (PostgreSQL): a standby, or read-only transactions by
    /// default.
    #[error(
        "ledger {url} is read-only: {reason}; payouts are recorded before they are sent, so the ledger must be writable (connect to the primary)"
    )]
    ReadOnlyServer {
        /// The URL (its password hidden).
        url: String,
        /// Why the server is read-only.
        reason: String,
    },
    /// The backend failed.
    #[error("ledger: could not {operation}: {reason}")]
    Backend {
        /// What was being done.
        operation: &'static str,
        /// The backend's message.
        reason: String,
    },
}
