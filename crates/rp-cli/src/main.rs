//! The `rp` command line (work in progress).
fn main() {}
