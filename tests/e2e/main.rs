//! End-to-end: the real `rp-payout` client against the real `rp-sim` simulator over loopback,
//! with a real callback endpoint. Every magic outcome of the simulator must end in the right
//! final state, with exactly one payout recorded by the simulator.

// Test code: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod ambiguous;
mod callbacks;
mod concurrency;
mod faults;
mod outcomes;
