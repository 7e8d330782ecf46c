//! Integration tests of the `rp` binary, one module per subcommand group.

// Test helpers outside `#[test]` functions may unwrap too: a panic is a failed test.
#![allow(clippy::unwrap_used, clippy::panic)]

mod sign_cmd;
