//! rp-sign (work in progress).
