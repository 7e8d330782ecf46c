//! rp-transport (work in progress).
