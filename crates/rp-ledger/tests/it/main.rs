//! Integration tests of rp-ledger: the conformance suite of rp-payout against the memory store
//! and the SQLite ledger side by side, then what only a ledger has: durability across a
//! reopen, opening errors, schema versions, group commit, several handles on one file; with
//! the `postgres` feature, the same against PostgreSQL (`postgres.rs`: `RP_TEST_POSTGRES_URL`).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod access;
mod batches;
mod conformance;
#[cfg(feature = "postgres")]
mod postgres;
mod review;
mod review_access;
mod review_aside;
mod review_grouped;
mod review_held;
mod review_reg;
mod review_s2;
mod review_unsettled;
mod review_webhooks;
mod sqlite;
mod unreadable;
mod webhooks;

/// A fresh directory under the target directory, removed first if it exists.
pub(crate) fn scratch(name: &str) -> std::path::PathBuf {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join("rp-ledger")
        .join(name);
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}
