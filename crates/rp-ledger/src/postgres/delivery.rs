//! The webhook sender's path through a PostgreSQL ledger: claiming due deliveries with what
//! each is sent with, and recording attempts ([`super::PostgresWebhooks`]'s `claim_due` and
//! `record_attempts`). What no claim can take now is set aside by [`super::aside`].

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;
use std::time::Duration;

use deadpool_postgres::GenericClient as _;
use rp_payout::Error;

use super::aside::{self, PULL_LATER};
use super::rows::{self, qualified};
use super::sql::{column, execute, failed, query};
use super::webhook::{NOW, PostgresWebhooks, count, endpoint, nanos_of};
use crate::stored::{EVENT_COLUMNS, RECORD_COLUMNS, version};
use crate::webhook::{
    AfterAttempt, AttemptRecord, ClaimedDelivery, DeliveryKey, MAX_LOGGED_ATTEMPTS,
};

/// [`NOW`] as of the statement's start: the same throughout the statement, so the planner
/// takes it as a bound of an index range (the claim reads only the due part of the due index,
/// not the deliveries waiting for a later time; `clock_timestamp()` would be a filter on each).
const STATEMENT_NOW: &str = "(extract(epoch FROM statement_timestamp()) * 1000000000)::bigint";

/// Gives back the claimed deliveries (`$2[i]`, `$3[i]`, `$4[i]`, owner `$5`) behind an earlier
/// change of their payout to their endpoint that waits: due now, unclaimed. Their keys.
static GIVE_BACK: LazyLock<String> = LazyLock::new(|| {
    format!(
        "UPDATE rp_ledger.webhook_deliveries w SET claimed_by = NULL, lease_until = NULL, \
         next_attempt_at = {NOW} \
         FROM unnest($2::bigint[], $3::text[], $4::bigint[]) AS k(endpoint_id, payment_id, version) \
         WHERE w.endpoint_id = k.endpoint_id AND w.project_id = $1 \
         AND w.payment_id = k.payment_id AND w.version = k.version AND w.claimed_by = $5 \
         AND EXISTS (SELECT 1 FROM rp_ledger.webhook_deliveries o \
             WHERE o.endpoint_id = w.endpoint_id AND o.project_id = w.project_id \
             AND o.payment_id = w.payment_id AND o.version < w.version \
             AND o.next_attempt_at IS NOT NULL) \
         RETURNING w.endpoint_id, w.payment_id, w.version"
    )
});

/// Locks, in key order, the deliveries a record of attempts changes: each attempt's
/// (`$2[i]`, `$3[i]`, `$4[i]`) and, when it was delivered (`$5[i]`), the later changes of its
/// payout to its endpoint ([`PULL_LATER`]).
const LOCK_RECORDED: &str = "SELECT 1 FROM unnest($2::bigint[], $3::text[], $4::bigint[], \
         $5::bool[]) AS k(endpoint_id, payment_id, version, pulls) \
     JOIN rp_ledger.webhook_deliveries d ON d.endpoint_id = k.endpoint_id \
     AND d.project_id = $1 AND d.payment_id = k.payment_id \
     AND (d.version = k.version OR (k.pulls AND d.version > k.version)) \
     ORDER BY d.endpoint_id, d.payment_id, d.version FOR UPDATE OF d";

impl PostgresWebhooks {
    /// Claims up to `limit` due deliveries for `owner` with a lease of `lease`
    /// ([`crate::WebhookStore::claim_due`]).
    pub(super) async fn claim(
        &self,
        owner: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<ClaimedDelivery>, Error> {
        let what = "claim webhook deliveries";
        let mut client = self.ledger.client(what).await?;
        // One statement: the claim and what each delivery is sent with (its endpoint, the
        // payout, the event), read in the claim's snapshot. The foreign keys keep the
        // three; nothing is claimed unless everything is read.
        let sql = format!(
            "WITH due AS (SELECT d.endpoint_id, d.project_id, d.payment_id, d.version \
                 FROM rp_ledger.webhook_deliveries d \
                 WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= {STATEMENT_NOW} \
                 AND d.project_id = $1 \
                 AND (d.lease_until IS NULL OR d.lease_until <= {STATEMENT_NOW}) \
                 AND EXISTS (SELECT 1 FROM rp_ledger.webhook_endpoints e \
                     WHERE e.id = d.endpoint_id AND e.disabled_at IS NULL) \
                 AND NOT EXISTS (SELECT 1 FROM rp_ledger.webhook_deliveries o \
                     WHERE o.endpoint_id = d.endpoint_id AND o.project_id = d.project_id \
                     AND o.payment_id = d.payment_id AND o.version < d.version \
                     AND o.next_attempt_at IS NOT NULL) \
                 ORDER BY d.next_attempt_at LIMIT $4 \
                 FOR UPDATE OF d SKIP LOCKED), \
             claimed AS (UPDATE rp_ledger.webhook_deliveries w \
                 SET claimed_by = $2, lease_until = {STATEMENT_NOW} + $3, \
                 next_attempt_at = {STATEMENT_NOW} + $3 \
                 FROM due \
                 WHERE w.endpoint_id = due.endpoint_id AND w.project_id = due.project_id \
                 AND w.payment_id = due.payment_id AND w.version = due.version \
                 RETURNING w.endpoint_id, w.payment_id, w.version, w.attempts, w.failures) \
             SELECT e.id, e.url, e.secret, e.created_at, e.disabled_at, e.disabled_reason, \
                 0::bigint, 0::bigint, c.version, c.attempts, c.failures, {}, {} \
             FROM claimed c \
             JOIN rp_ledger.webhook_endpoints e ON e.id = c.endpoint_id \
             JOIN rp_ledger.payout_events v ON v.project_id = $1 \
                 AND v.payment_id = c.payment_id AND v.version = c.version \
             JOIN rp_ledger.payouts p ON p.project_id = $1 AND p.payment_id = c.payment_id",
            qualified(EVENT_COLUMNS, "v"),
            qualified(RECORD_COLUMNS, "p"),
        );
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = query(
            &client,
            what,
            &sql,
            &[&self.project, &owner, &nanos_of(lease), &limit],
        )
        .await?;
        self.ledger.committed();
        // Fewer than it may take: every due delivery was read. Those no claim can take
        // now are set aside (a failure only leaves them to be read again).
        if rows.len() < usize::try_from(limit).unwrap_or(usize::MAX)
            && let Err(error) = aside::set_aside(&mut client, self.project).await
        {
            tracing::warn!(%error, "webhooks: could not set aside deliveries");
        }
        // The columns: the endpoint's (without its counts: they scan its deliveries),
        // the delivery's, the event's, the payout's.
        const DELIVERY: usize = 8;
        const EVENT: usize = DELIVERY + 3;
        let event_columns = EVENT_COLUMNS.split(", ").count();
        // A row that cannot be read (its payout's state written by a newer rp, say) is left
        // claimed until its lease ends, and holds up none of the others; when none could be
        // read, the first failure is the answer.
        let mut claimed: Vec<ClaimedDelivery> = Vec::with_capacity(rows.len());
        let mut first_failure = None;
        for row in &rows {
            let read = || -> Result<ClaimedDelivery, String> {
                let endpoint = endpoint(row)?;
                let event = rows::event_at(row, EVENT)?;
                let payout = rows::record_at(row, EVENT + event_columns)?;
                Ok(ClaimedDelivery {
                    key: DeliveryKey {
                        endpoint: endpoint.id,
                        payment_id: payout.payment_id.clone(),
                        version: u64::try_from(column::<i64>(row, DELIVERY)?).unwrap_or(0),
                    },
                    endpoint,
                    payout,
                    event,
                    attempts: count(column(row, DELIVERY + 1)?),
                    failures: count(column(row, DELIVERY + 2)?),
                })
            };
            match read() {
                Ok(delivery) => claimed.push(delivery),
                Err(error) => {
                    tracing::warn!(
                        endpoint = column::<i64>(row, 0).ok(),
                        payment_id = column::<String>(row, EVENT + event_columns).ok(),
                        version = column::<i64>(row, DELIVERY).ok(),
                        %error,
                        "webhooks: a claimed delivery cannot be read; it is tried again when \
                         its lease ends"
                    );
                    first_failure.get_or_insert(error);
                }
            }
        }
        if let Some(error) = first_failure
            && claimed.is_empty()
        {
            return Err(Error::store(what, error));
        }
        // The claim's check for an earlier change still waiting read the statement's
        // snapshot: a replay committed while it ran is seen only now. A delivery behind
        // one is given back (due, so set aside behind it), never sent out of order.
        if !claimed.is_empty() {
            let (mut e, mut p, mut v) = (Vec::new(), Vec::new(), Vec::new());
            for c in &claimed {
                e.push(c.key.endpoint);
                p.push(c.key.payment_id.as_str());
                v.push(version(c.key.version));
            }
            let back = query(
                &client,
                what,
                &GIVE_BACK,
                &[&self.project, &e, &p, &v, &owner],
            )
            .await?;
            if !back.is_empty() {
                let read = |e: String| Error::store(what, e);
                let mut given: Vec<(i64, String, i64)> = Vec::with_capacity(back.len());
                for row in &back {
                    given.push((
                        column(row, 0).map_err(read)?,
                        column(row, 1).map_err(read)?,
                        column(row, 2).map_err(read)?,
                    ));
                }
                claimed.retain(|c| {
                    !given.iter().any(|(e, p, v)| {
                        *e == c.key.endpoint
                            && p == c.key.payment_id.as_str()
                            && *v == version(c.key.version)
                    })
                });
            }
        }
        Ok(claimed)
    }

    /// Records `owner`'s attempts in one transaction ([`crate::WebhookStore::record_attempts`]).
    pub(super) async fn record(
        &self,
        owner: &str,
        attempts: &[AttemptRecord],
    ) -> Result<Vec<bool>, Error> {
        let what = &format!("record {} webhook attempt(s)", attempts.len());
        let mut client = self.ledger.client(what).await?;
        let tx = client.transaction().await.map_err(failed(what))?;
        // The endpoints first, in order, as removal takes them: FOR UPDATE where an
        // attempt gives up (it disables the endpoint), else FOR SHARE. No lock is ever
        // upgraded, so neither a removal nor another instance's attempts wait for this in
        // the opposite order. An endpoint gone: nothing to record for it.
        let mut endpoints: BTreeMap<i64, bool> = BTreeMap::new();
        for a in attempts {
            *endpoints.entry(a.key.endpoint).or_default() |=
                matches!(a.after, AfterAttempt::GiveUp(_));
        }
        let mut present = BTreeSet::new();
        for (id, exclusive) in endpoints {
            let lock = if exclusive {
                "SELECT 1 FROM rp_ledger.webhook_endpoints WHERE id = $1 AND project_id = $2 \
                 FOR UPDATE"
            } else {
                "SELECT 1 FROM rp_ledger.webhook_endpoints WHERE id = $1 AND project_id = $2 \
                 FOR SHARE"
            };
            if execute(&tx, what, lock, &[&id, &self.project]).await? > 0 {
                present.insert(id);
            }
        }
        // Then every delivery this record changes, in one order shared by every record:
        // its own, and for one delivered the later changes it may pull. Taken one by one,
        // two records pulling each other's rows crossed and deadlocked.
        let (mut e, mut p, mut v, mut pulls) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for a in attempts
            .iter()
            .filter(|a| present.contains(&a.key.endpoint))
        {
            e.push(a.key.endpoint);
            p.push(a.key.payment_id.as_str());
            v.push(version(a.key.version));
            pulls.push(a.after == AfterAttempt::Delivered);
        }
        if !e.is_empty() {
            execute(
                &tx,
                what,
                LOCK_RECORDED,
                &[&self.project, &e, &p, &v, &pulls],
            )
            .await?;
        }
        let mut recorded = Vec::with_capacity(attempts.len());
        for a in attempts {
            let done =
                present.contains(&a.key.endpoint) && self.record_one(&tx, what, owner, a).await?;
            recorded.push(done);
        }
        tx.commit().await.map_err(failed(what))?;
        self.ledger.committed();
        Ok(recorded)
    }

    /// One attempt in `tx` (its endpoint locked): `false` when the claim is not `owner`'s.
    async fn record_one(
        &self,
        tx: &deadpool_postgres::Transaction<'_>,
        what: &str,
        owner: &str,
        record: &AttemptRecord,
    ) -> Result<bool, Error> {
        let (key, attempt, after) = (&record.key, &record.attempt, &record.after);
        let (delivered, failed_now, retry_in, failure): (bool, bool, Option<i64>, i64) = match after
        {
            AfterAttempt::Delivered => (true, false, None, 0),
            AfterAttempt::RetryIn(delay) => (false, false, Some(nanos_of(*delay)), 1),
            AfterAttempt::GiveUp(_) => (false, true, None, 1),
        };
        let id = key.payment_id.as_str();
        let event_version = version(key.version);
        let sql = format!(
            "WITH now AS (SELECT {NOW} AS t) \
             UPDATE rp_ledger.webhook_deliveries SET attempts = attempts + 1, \
             failures = failures + $6, next_attempt_at = now.t + $7, \
             delivered_at = CASE WHEN $8 THEN now.t END, \
             failed_at = CASE WHEN $9 THEN now.t END, \
             claimed_by = NULL, lease_until = NULL FROM now \
             WHERE endpoint_id = $1 AND project_id = $2 AND payment_id = $3 \
             AND version = $4 AND claimed_by = $5 RETURNING attempts, now.t"
        );
        let rows = query(
            tx,
            what,
            &sql,
            &[
                &key.endpoint,
                &self.project,
                &id,
                &event_version,
                &owner,
                &failure,
                &retry_in,
                &delivered,
                &failed_now,
            ],
        )
        .await?;
        let Some(row) = rows.first() else {
            return Ok(false);
        };
        let number: i64 = column(row, 0).map_err(|e| Error::store(what, e))?;
        if delivered {
            let now: i64 = column(row, 1).map_err(|e| Error::store(what, e))?;
            execute(
                tx,
                what,
                PULL_LATER,
                &[&key.endpoint, &self.project, &id, &event_version, &now],
            )
            .await?;
        }
        let took = i64::try_from(attempt.took.as_millis()).unwrap_or(i64::MAX);
        let status = attempt.status.map(i32::from);
        execute(
            tx,
            what,
            "INSERT INTO rp_ledger.webhook_attempts (endpoint_id, project_id, payment_id, \
             version, attempt, at, took_ms, status, error) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            &[
                &key.endpoint,
                &self.project,
                &id,
                &event_version,
                &number,
                &crate::stored::nanos(attempt.at),
                &took,
                &status,
                &attempt.error,
            ],
        )
        .await?;
        // The log keeps the last MAX_LOGGED_ATTEMPTS: the oldest goes once there are more.
        if number > i64::from(MAX_LOGGED_ATTEMPTS) {
            execute(
                tx,
                what,
                "DELETE FROM rp_ledger.webhook_attempts WHERE endpoint_id = $1 \
                 AND project_id = $2 AND payment_id = $3 AND version = $4 AND attempt <= $5",
                &[
                    &key.endpoint,
                    &self.project,
                    &id,
                    &event_version,
                    &(number - i64::from(MAX_LOGGED_ATTEMPTS)),
                ],
            )
            .await?;
        }
        if let AfterAttempt::GiveUp(reason) = after {
            let sql = format!(
                "UPDATE rp_ledger.webhook_endpoints SET disabled_at = {NOW}, \
                 disabled_reason = $3 \
                 WHERE id = $1 AND project_id = $2 AND disabled_at IS NULL"
            );
            execute(tx, what, &sql, &[&key.endpoint, &self.project, reason]).await?;
        }
        Ok(true)
    }
}
