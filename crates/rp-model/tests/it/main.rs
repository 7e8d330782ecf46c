//! Integration tests of rp-model (one binary, several modules).

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod codes;
mod money_props;
mod phone_props;
mod seed;
