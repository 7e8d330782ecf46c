//! rp-sim (work in progress).
