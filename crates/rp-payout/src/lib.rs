//! rp-payout (work in progress).
