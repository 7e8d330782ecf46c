//! rp-model (work in progress).
