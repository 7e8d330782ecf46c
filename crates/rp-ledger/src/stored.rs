//! The stored forms every backend shares: times as nanoseconds since the Unix epoch (exact, so
//! a record reads back equal), versions as signed 64-bit integers, states as tagged JSON (never
//! `Display`), the request as JSON with its SHA-256 in hex (the request of a record never
//! changes, and an update carrying another is refused by comparing the hashes).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rp_model::wire;
use rp_payout::PayoutState;
use sha2::{Digest as _, Sha256};

/// The columns a record is read from, in order (both backends' readers follow it).
pub(crate) const RECORD_COLUMNS: &str = "payment_id, request, state, version, created_at, \
     updated_at, request_id, last_code, last_message, attention, maybe_sent, claimed_by, \
     attempts, lease_until, next_check_at, metadata";

/// The columns an event is read from, in order.
pub(crate) const EVENT_COLUMNS: &str = "at, source, previous, state, code, message, note, raw";

/// The columns a record's write changes (everything but the key, the request and its hash,
/// the phone, `created_at` and `version`), in the order each backend binds them.
pub(crate) const MUTABLE_COLUMNS: [&str; 13] = [
    "state",
    "state_label",
    "settled",
    "updated_at",
    "request_id",
    "last_code",
    "last_message",
    "attention",
    "maybe_sent",
    "claimed_by",
    "attempts",
    "lease_until",
    "next_check_at",
];

/// A project's key in the ledger's `project_id` columns: its ID, which fits (`ProjectId`
/// refuses IDs above `i64::MAX`, so no two projects share a key).
pub(crate) fn project_key(project: rp_model::ProjectId) -> i64 {
    i64::try_from(project.get()).unwrap_or(i64::MAX)
}

/// Nanoseconds since the Unix epoch (0 before it, `i64::MAX` after 2262).
pub(crate) fn nanos(time: SystemTime) -> i64 {
    time.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_nanos()).unwrap_or(i64::MAX))
}

/// [`nanos`] of `after` past `now`; the largest time when that is beyond what a clock holds
/// (a lease or a retry delay of `Duration::MAX` from a caller: never a panic).
pub(crate) fn nanos_after(now: SystemTime, after: Duration) -> i64 {
    now.checked_add(after).map_or(i64::MAX, nanos)
}

/// The time of [`nanos`].
pub(crate) fn time(nanos: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_nanos(u64::try_from(nanos).unwrap_or(0))
}

/// A version as stored.
pub(crate) fn version(version: u64) -> i64 {
    i64::try_from(version).unwrap_or(i64::MAX)
}

/// The request as stored, and its SHA-256 in hex.
pub(crate) fn request_text(
    request: &wire::PayoutRequest,
) -> Result<(String, String), serde_json::Error> {
    let text = serde_json::to_string(request)?;
    let digest = Sha256::digest(text.as_bytes());
    let hex = digest.iter().map(|b| format!("{b:02x}")).collect();
    Ok((text, hex))
}

/// A state as stored.
pub(crate) fn state_text(state: &PayoutState) -> Result<String, serde_json::Error> {
    serde_json::to_string(state)
}

/// Says that the record of `payment_id` cannot be read by this rp (its state written by a
/// newer one, say) and is left out of a page of many (reconcile's walk, a list), which goes
/// on without it.
pub(crate) fn unreadable(payment_id: &str, error: &dyn std::fmt::Display) {
    tracing::warn!(
        %payment_id,
        %error,
        "a payout record this rp cannot read is left out of reconcile and of lists until it can be read"
    );
}
