//! Integration tests for rp-transport.
