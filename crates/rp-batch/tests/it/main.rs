//! Integration tests of rp-batch.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod corpus;
mod reader;
mod roundtrip;
