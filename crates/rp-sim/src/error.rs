//! The crate's error type.

use std::net::SocketAddr;

/// Everything that can go wrong while configuring, starting or controlling the simulator.
///
/// No variant ever contains a secret key.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The listening socket could not be bound.
    #[error(
        "could not listen on {addr}: {source}; choose another address or port (port 0 picks a free one)"
    )]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// The configuration is inconsistent.
    #[error("invalid simulator configuration: {problem}")]
    Config {
        /// What is wrong, and how to fix it.
        problem: String,
    },
    /// A time scale could not be read.
    #[error(
        "invalid time scale {input:?}: write a non-negative decimal number with at most 6 decimal places, e.g. 1, 0.5 or 0.001"
    )]
    InvalidTimeScale {
        /// The text given.
        input: String,
    },
    /// The HTTP client for callbacks could not be built.
    #[error("could not build the HTTP client for callbacks: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// No payment has this ID.
    #[error("no payment with ID {payment_id:?} was recorded by the simulator")]
    UnknownPayment {
        /// The payment ID asked for.
        payment_id: String,
    },
    /// The payment cannot be forced: it is not `processing` any more.
    #[error(
        "payment {payment_id:?} has status {status:?}; only a `processing` payment can be forced to an outcome"
    )]
    NotProcessing {
        /// The payment ID.
        payment_id: String,
        /// Its current status.
        status: String,
    },
    /// The simulator's server failed or waiting for Ctrl-C failed.
    #[error("the simulator stopped with an I/O error: {0}")]
    Io(#[source] std::io::Error),
}
