//! The webhook sender's path through an SQLite ledger: claiming due deliveries (and setting
//! aside those no claim can take now), reading what to send, and recording each attempt.
//! [`super::SqliteWebhooks`] runs them in the writer's group commits.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use rusqlite::{Connection, OptionalExtension as _, params};

use super::rows::{self, nanos};
use super::webhook::{count, endpoint};
use crate::stored::{EVENT_COLUMNS, RECORD_COLUMNS, nanos_after, version};
use crate::webhook::{
    AfterAttempt, ClaimedDelivery, DeliveryAttempt, DeliveryKey, MAX_LOGGED_ATTEMPTS,
    WebhookEndpoint,
};

/// Claims due deliveries (see [`claim`]). The due index is named: it holds only the
/// deliveries not yet delivered, by project and time, so a claim reads the few due ones of
/// its project and stops at its limit; without it, SQLite prefers the index by payment (every
/// delivery ever made, then sorted), and claims slow down as the ledger grows. A claimed
/// delivery is next due when its lease ends (its attempt, recorded, sets the real time): the
/// deliveries in flight are out of the range every later claim and set-aside reads, and one
/// that is blocked behind them is set aside until then (or until their delivery pulls it
/// forward), not read again by each claim.
const CLAIM: &str = "UPDATE webhook_deliveries SET claimed_by = ?2, lease_until = ?3, \
     next_attempt_at = ?3 \
     WHERE rowid IN (SELECT d.rowid FROM webhook_deliveries d \
         INDEXED BY webhook_deliveries_due \
         JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?4 \
         AND d.project_id = ?1 AND e.disabled_at IS NULL \
         AND (d.lease_until IS NULL OR d.lease_until <= ?4) \
         AND NOT EXISTS (SELECT 1 FROM webhook_deliveries o \
             WHERE o.endpoint_id = d.endpoint_id AND o.project_id = d.project_id \
             AND o.payment_id = d.payment_id AND o.version < d.version \
             AND o.next_attempt_at IS NOT NULL) \
         ORDER BY d.next_attempt_at LIMIT ?5) \
     RETURNING endpoint_id, payment_id, version, attempts, failures";

/// A claimed delivery's key and counts: endpoint, payment ID, version, attempts, failures.
pub(super) type ClaimedKey = (i64, String, i64, i64, i64);

/// Sets aside the due deliveries no claim can take now, so that claims do not read them again
/// and again (an endpoint down for days, thousands of payouts): those of a disabled endpoint
/// wait with no time (enabling it makes every one due), and one behind an earlier change of
/// its payout that waits for a retry is due at that retry, no sooner (a delivered attempt
/// makes the later changes due at once: [`PULL_LATER`]). Only a timing: the order per payout
/// is the claim's `NOT EXISTS`.
const SET_ASIDE_DISABLED: &str = "UPDATE webhook_deliveries SET next_attempt_at = NULL \
     WHERE rowid IN (SELECT d.rowid FROM webhook_deliveries d \
         INDEXED BY webhook_deliveries_due \
         JOIN webhook_endpoints e ON e.id = d.endpoint_id \
         WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?2 \
         AND d.project_id = ?1 AND e.disabled_at IS NOT NULL \
         AND (d.lease_until IS NULL OR d.lease_until <= ?2))";

/// See [`SET_ASIDE_DISABLED`].
const SET_ASIDE_BLOCKED: &str = "UPDATE webhook_deliveries AS w SET next_attempt_at = \
     (SELECT max(o.next_attempt_at) FROM webhook_deliveries o \
         WHERE o.endpoint_id = w.endpoint_id AND o.project_id = w.project_id \
         AND o.payment_id = w.payment_id AND o.version < w.version) \
     WHERE rowid IN (SELECT d.rowid FROM webhook_deliveries d \
         INDEXED BY webhook_deliveries_due \
         WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= ?2 \
         AND d.project_id = ?1 AND (d.lease_until IS NULL OR d.lease_until <= ?2) \
         AND EXISTS (SELECT 1 FROM webhook_deliveries o \
             WHERE o.endpoint_id = d.endpoint_id AND o.project_id = d.project_id \
             AND o.payment_id = d.payment_id AND o.version < d.version \
             AND o.next_attempt_at > ?2))";

/// A delivered attempt: the later changes of its payout to its endpoint set aside behind it
/// ([`SET_ASIDE_BLOCKED`]) are due now.
const PULL_LATER: &str = "UPDATE webhook_deliveries SET next_attempt_at = ?5 \
     WHERE endpoint_id = ?1 AND project_id = ?2 AND payment_id = ?3 AND version > ?4 \
     AND next_attempt_at > ?5";

/// Claims due deliveries: oldest first, none behind a pending earlier event of the same
/// payout to the same endpoint, none of a disabled endpoint, none under another's live lease.
/// A claim that finds fewer than `limit` has read every due delivery: it sets aside those it
/// could not take ([`SET_ASIDE_DISABLED`]).
pub(super) fn claim(
    conn: &Connection,
    project: i64,
    owner: &str,
    lease: Duration,
    limit: usize,
) -> rusqlite::Result<Vec<ClaimedKey>> {
    let at = SystemTime::now();
    let now = nanos(at);
    let claimed: Vec<ClaimedKey> = conn
        .prepare_cached(CLAIM)?
        .query_map(
            params![
                project,
                owner,
                nanos_after(at, lease),
                now,
                i64::try_from(limit).unwrap_or(i64::MAX)
            ],
            |row| {
                Ok((
                    row.get(0)?,
                    row.get(1)?,
                    row.get(2)?,
                    row.get(3)?,
                    row.get(4)?,
                ))
            },
        )?
        .collect::<rusqlite::Result<_>>()?;
    if claimed.len() < limit {
        conn.prepare_cached(SET_ASIDE_DISABLED)?
            .execute(params![project, now])?;
        conn.prepare_cached(SET_ASIDE_BLOCKED)?
            .execute(params![project, now])?;
    }
    Ok(claimed)
}

/// What to send for claimed deliveries: each one's endpoint, payout and event (read on a
/// read connection, not the writer's). One whose endpoint was removed since is left out. So
/// is one that cannot be read (its payout's state written by a newer rp, say): it stays
/// claimed until its lease ends, and holds up none of the others. When none could be read,
/// the first failure is the answer.
pub(super) fn details(
    conn: &Connection,
    project: i64,
    keys: Vec<ClaimedKey>,
) -> rusqlite::Result<Vec<ClaimedDelivery>> {
    let mut read = Details::prepare(conn, project)?;
    let mut claimed = Vec::with_capacity(keys.len());
    let mut first_failure = None;
    for key in keys {
        let (endpoint_id, payment_id, event_version) = (key.0, key.1.clone(), key.2);
        match read.delivery(key) {
            Ok(Some(delivery)) => claimed.push(delivery),
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(
                    endpoint = endpoint_id,
                    %payment_id,
                    version = event_version,
                    %error,
                    "webhooks: a claimed delivery cannot be read; it is tried again when its \
                     lease ends"
                );
                first_failure.get_or_insert(error);
            }
        }
    }
    match first_failure {
        Some(error) if claimed.is_empty() => Err(error),
        _ => Ok(claimed),
    }
}

/// The statements [`details`] reads a claimed delivery with, and the endpoints read so far.
struct Details<'c> {
    project: i64,
    /// Each endpoint read once per claim, without its counts (they scan its deliveries).
    endpoints: HashMap<i64, Option<WebhookEndpoint>>,
    endpoint_of: rusqlite::CachedStatement<'c>,
    payout_of: rusqlite::CachedStatement<'c>,
    event_of: rusqlite::CachedStatement<'c>,
}

impl<'c> Details<'c> {
    fn prepare(conn: &'c Connection, project: i64) -> rusqlite::Result<Details<'c>> {
        Ok(Details {
            project,
            endpoints: HashMap::new(),
            endpoint_of: conn.prepare_cached(
                "SELECT id, url, secret, created_at, disabled_at, disabled_reason, 0, 0 \
                 FROM webhook_endpoints WHERE project_id = ?1 AND id = ?2",
            )?,
            payout_of: conn.prepare_cached(&format!(
                "SELECT {RECORD_COLUMNS} FROM payouts WHERE project_id = ?1 AND payment_id = ?2"
            ))?,
            event_of: conn.prepare_cached(&format!(
                "SELECT {EVENT_COLUMNS} FROM payout_events \
                 WHERE project_id = ?1 AND payment_id = ?2 AND version = ?3"
            ))?,
        })
    }

    /// The delivery of `key`, or `None` when its endpoint was removed since the claim (its
    /// deliveries went with it).
    fn delivery(&mut self, key: ClaimedKey) -> rusqlite::Result<Option<ClaimedDelivery>> {
        let (endpoint_id, payment_id, event_version, attempts, failures) = key;
        let project = self.project;
        let endpoint = match self.endpoints.get(&endpoint_id) {
            Some(found) => found.clone(),
            None => {
                let found = self
                    .endpoint_of
                    .query_row(params![project, endpoint_id], endpoint)
                    .optional()?;
                self.endpoints.insert(endpoint_id, found.clone());
                found
            }
        };
        let Some(endpoint) = endpoint else {
            return Ok(None);
        };
        let payout = self
            .payout_of
            .query_row(params![project, payment_id], rows::record)?;
        let event = self
            .event_of
            .query_row(params![project, payment_id, event_version], rows::event)?;
        Ok(Some(ClaimedDelivery {
            key: DeliveryKey {
                endpoint: endpoint_id,
                payment_id: payout.payment_id.clone(),
                version: u64::try_from(event_version).unwrap_or(0),
            },
            endpoint,
            payout,
            event,
            attempts: count(attempts),
            failures: count(failures),
        }))
    }
}

pub(super) fn record_attempt(
    conn: &Connection,
    project: i64,
    key: &DeliveryKey,
    owner: &str,
    attempt: &DeliveryAttempt,
    after: &AfterAttempt,
) -> rusqlite::Result<bool> {
    let at = SystemTime::now();
    let now = nanos(at);
    let (delivered_at, failed_at, next, failure) = match after {
        AfterAttempt::Delivered => (Some(now), None, None, 0),
        AfterAttempt::RetryIn(delay) => (None, None, Some(nanos_after(at, *delay)), 1),
        AfterAttempt::GiveUp(_) => (None, Some(now), None, 1),
    };
    let key_params = (
        key.endpoint,
        project,
        key.payment_id.as_str(),
        version(key.version),
    );
    let number: Option<i64> = conn
        .prepare_cached(
            "UPDATE webhook_deliveries SET attempts = attempts + 1, failures = failures + ?6, \
             next_attempt_at = ?7, delivered_at = ?8, failed_at = ?9, \
             claimed_by = NULL, lease_until = NULL \
             WHERE endpoint_id = ?1 AND project_id = ?2 AND payment_id = ?3 AND version = ?4 \
             AND claimed_by = ?5 RETURNING attempts",
        )?
        .query_row(
            params![
                key_params.0,
                key_params.1,
                key_params.2,
                key_params.3,
                owner,
                failure,
                next,
                delivered_at,
                failed_at
            ],
            |row| row.get(0),
        )
        .optional()?;
    let Some(number) = number else {
        return Ok(false);
    };
    conn.prepare_cached(
        "INSERT INTO webhook_attempts \
         (endpoint_id, project_id, payment_id, version, attempt, at, took_ms, status, error) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?
    .execute(params![
        key_params.0,
        key_params.1,
        key_params.2,
        key_params.3,
        number,
        nanos(attempt.at),
        i64::try_from(attempt.took.as_millis()).unwrap_or(i64::MAX),
        attempt.status,
        attempt.error
    ])?;
    // The log keeps the last MAX_LOGGED_ATTEMPTS: the oldest goes once there are more.
    if number > i64::from(MAX_LOGGED_ATTEMPTS) {
        conn.prepare_cached(
            "DELETE FROM webhook_attempts WHERE endpoint_id = ?1 AND project_id = ?2 \
             AND payment_id = ?3 AND version = ?4 AND attempt <= ?5",
        )?
        .execute(params![
            key_params.0,
            key_params.1,
            key_params.2,
            key_params.3,
            number - i64::from(MAX_LOGGED_ATTEMPTS)
        ])?;
    }
    match after {
        AfterAttempt::Delivered => {
            conn.prepare_cached(PULL_LATER)?.execute(params![
                key_params.0,
                key_params.1,
                key_params.2,
                key_params.3,
                now
            ])?;
        }
        AfterAttempt::GiveUp(reason) => {
            conn.prepare_cached(
                "UPDATE webhook_endpoints SET disabled_at = ?3, disabled_reason = ?4 \
                 WHERE id = ?1 AND project_id = ?2 AND disabled_at IS NULL",
            )?
            .execute(params![key.endpoint, project, now, reason])?;
        }
        AfterAttempt::RetryIn(_) => {}
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The claim walks the due index of its project in time order and sorts nothing, however
    /// many deliveries the ledger (and its other projects) hold.
    #[test]
    fn claims_read_the_due_index() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn, "plan").unwrap();
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {CLAIM}"))
            .unwrap()
            .query_map(params![1, "owner", 0, 0, 64], |row| row.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let plan = plan.join("\n");
        assert!(
            plan.contains("SEARCH d USING INDEX webhook_deliveries_due"),
            "{plan}"
        );
        assert!(!plan.contains("TEMP B-TREE"), "{plan}");
        // One project's due deliveries only: another project's are not read.
        assert!(
            plan.contains("USING INDEX webhook_deliveries_due (project_id=? AND next_attempt_at"),
            "{plan}"
        );
    }
}
