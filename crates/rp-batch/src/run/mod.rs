//! `run`: register a file as a batch in the ledger ([`register`]), then pay its rows through
//! a [`Client`](rp_payout::Client) as one of any number of workers ([`run`]), at a bounded concurrency and rate,
//! resumable by running the same file again.
//!
//! The batch is registered whole before a tenge moves: every row with its cells, keyed by the
//! file's SHA-256 ([`BatchId`](crate::BatchId)), so the same file is never a second batch. Workers claim rows
//! with leases ([`rp_ledger::BatchStore`]); each row's payment ID is the file's (or derived
//! from the batch and the row number), and the client records each payout before sending it,
//! so a row taken over from a worker that died is resolved under the same payment ID, never
//! paid twice. A payment ID recorded for a different payout is caught before anything is
//! sent ([`preflight`]).

mod preflight;
mod register;
mod types;
mod worker;

pub use preflight::{Clash, Holder, preflight};
pub use register::{register, registered_limits};
pub use types::{RowFailure, RowOutcome, RowResult, RunError, RunOptions, RunSummary};
pub use worker::run;
