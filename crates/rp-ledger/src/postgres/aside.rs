//! Setting aside the due webhook deliveries no claim can take now, so that claims do not read
//! them again and again (an endpoint down or disabled for days: every payout's deliveries, at
//! every claim), as the SQLite ledger does:
//!
//! - a **disabled endpoint's** deliveries wait with no time; enabling it makes every one due;
//! - a delivery **behind an earlier change** of its payout to its endpoint that waits (for a
//!   retry, or in flight until its lease ends) is due then, no sooner; a delivered attempt
//!   makes the later changes due at once ([`PULL_LATER`]).
//!
//! Only a timing: the order per payout is the claim's. Several instances share the ledger, so
//! what a set-aside reads is locked before it writes, and it never waits for a lock
//! (`SKIP LOCKED`: what another transaction holds is left for a later pass), so it takes part
//! in no deadlock. The endpoints it parks deliveries of are locked `FOR SHARE`: enabling one
//! waits for it, then makes everything due (or, under way, is skipped). The earlier deliveries
//! a later one waits for are locked `FOR SHARE` too: recording one waits for the set-aside,
//! then pulls what it set aside (or, under way, is skipped and nothing waits for it).
//!
//! Each pass reads at most [`PASS`] due deliveries in the claim's order (the claim's index);
//! a claim that finds fewer than it may take runs one.

use std::collections::{BTreeSet, HashMap};

use deadpool_postgres::GenericClient as _;
use rp_payout::Error;

use super::sql::{column, execute, failed, query};

/// Due deliveries read by one pass, at most, for each kind.
const PASS: i64 = 1000;

/// The server's clock in nanoseconds since the Unix epoch.
const NOW: &str = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint";

/// A delivered attempt: the later changes of its payout to its endpoint, set aside behind it,
/// are due now (`$5`: the server's clock).
pub(super) const PULL_LATER: &str = "UPDATE rp_ledger.webhook_deliveries \
     SET next_attempt_at = $5 \
     WHERE endpoint_id = $1 AND project_id = $2 AND payment_id = $3 AND version > $4 \
     AND next_attempt_at > $5";

/// The disabled endpoints of project `$1`, locked so that enabling one waits for the pass.
const DISABLED: &str = "SELECT id FROM rp_ledger.webhook_endpoints \
     WHERE project_id = $1 AND disabled_at IS NOT NULL ORDER BY id FOR SHARE SKIP LOCKED";

/// Parks the due deliveries of the endpoints `$2` (no time) as of `$3`.
fn park() -> String {
    format!(
        "UPDATE rp_ledger.webhook_deliveries w SET next_attempt_at = NULL \
         FROM (SELECT d.endpoint_id, d.payment_id, d.version \
             FROM rp_ledger.webhook_deliveries d \
             WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $3 \
             AND d.project_id = $1 AND d.endpoint_id = ANY($2) \
             AND (d.lease_until IS NULL OR d.lease_until <= $3) \
             ORDER BY d.next_attempt_at LIMIT {PASS} \
             FOR UPDATE OF d SKIP LOCKED) p \
         WHERE w.endpoint_id = p.endpoint_id AND w.project_id = $1 \
         AND w.payment_id = p.payment_id AND w.version = p.version"
    )
}

/// The due deliveries (as of `$2`) behind an earlier change of their payout to their endpoint
/// that waits: endpoint, payment ID, version. Locked, for the pass to change them.
fn blocked() -> String {
    format!(
        "SELECT d.endpoint_id, d.payment_id, d.version FROM rp_ledger.webhook_deliveries d \
         WHERE d.next_attempt_at IS NOT NULL AND d.next_attempt_at <= $2 \
         AND d.project_id = $1 AND (d.lease_until IS NULL OR d.lease_until <= $2) \
         AND EXISTS (SELECT 1 FROM rp_ledger.webhook_deliveries o \
             WHERE o.endpoint_id = d.endpoint_id AND o.project_id = d.project_id \
             AND o.payment_id = d.payment_id AND o.version < d.version \
             AND o.next_attempt_at > $2) \
         ORDER BY d.next_attempt_at LIMIT {PASS} \
         FOR UPDATE OF d SKIP LOCKED"
    )
}

/// The deliveries of the pairs (endpoint `$2[i]`, payment ID `$3[i]`) that wait (due after
/// `$4`), locked so that recording one waits for the pass: endpoint, payment ID, version,
/// when due.
const WAITING: &str = "SELECT o.endpoint_id, o.payment_id, o.version, o.next_attempt_at \
     FROM unnest($2::bigint[], $3::text[]) AS k(endpoint_id, payment_id) \
     JOIN rp_ledger.webhook_deliveries o ON o.endpoint_id = k.endpoint_id \
     AND o.project_id = $1 AND o.payment_id = k.payment_id \
     WHERE o.next_attempt_at > $4 FOR SHARE OF o SKIP LOCKED";

/// Sets the deliveries (`$2[i]`, `$3[i]`, `$4[i]`) due at `$5[i]`.
const DUE_AT: &str = "UPDATE rp_ledger.webhook_deliveries w SET next_attempt_at = u.at \
     FROM unnest($2::bigint[], $3::text[], $4::bigint[], $5::bigint[]) \
         AS u(endpoint_id, payment_id, version, at) \
     WHERE w.endpoint_id = u.endpoint_id AND w.project_id = $1 \
     AND w.payment_id = u.payment_id AND w.version = u.version";

/// One pass over project `project`'s due deliveries (see the module docs), in a transaction of
/// its own on `client`.
pub(super) async fn set_aside(
    client: &mut deadpool_postgres::Object,
    project: i64,
) -> Result<(), Error> {
    let what = "set aside the webhook deliveries no claim can take";
    let tx = client.transaction().await.map_err(failed(what))?;
    let read = |e: String| Error::store(what, e);
    let now: i64 = column(&query(&tx, what, NOW, &[]).await?[0], 0).map_err(read)?;

    let disabled: Vec<i64> = query(&tx, what, DISABLED, &[&project])
        .await?
        .iter()
        .map(|row| column(row, 0))
        .collect::<Result<_, _>>()
        .map_err(read)?;
    if !disabled.is_empty() {
        execute(&tx, what, &park(), &[&project, &disabled, &now]).await?;
    }

    let mut later: Vec<(i64, String, i64)> = Vec::new();
    for row in query(&tx, what, &blocked(), &[&project, &now]).await? {
        later.push((
            column(&row, 0).map_err(read)?,
            column(&row, 1).map_err(read)?,
            column(&row, 2).map_err(read)?,
        ));
    }
    if later.is_empty() {
        return tx.commit().await.map_err(failed(what));
    }
    let pairs: BTreeSet<(i64, &str)> = later.iter().map(|(e, p, _)| (*e, p.as_str())).collect();
    let (endpoints, payments): (Vec<i64>, Vec<&str>) = pairs.into_iter().unzip();
    // Per pair, the deliveries that wait: (version, when due).
    let mut waiting: HashMap<(i64, String), Vec<(i64, i64)>> = HashMap::new();
    for row in query(&tx, what, WAITING, &[&project, &endpoints, &payments, &now]).await? {
        let key = (
            column::<i64>(&row, 0).map_err(read)?,
            column::<String>(&row, 1).map_err(read)?,
        );
        let entry = (
            column::<i64>(&row, 2).map_err(read)?,
            column::<i64>(&row, 3).map_err(read)?,
        );
        waiting.entry(key).or_default().push(entry);
    }
    let (mut e, mut p, mut v, mut at) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    for (endpoint, payment, version) in later {
        // Due when the last earlier one that waits is: only those this pass holds count (one
        // being recorded is skipped: its record pulls nothing it does not see).
        let until = waiting.get(&(endpoint, payment.clone())).and_then(|w| {
            w.iter()
                .filter(|(o, _)| *o < version)
                .map(|(_, t)| *t)
                .max()
        });
        if let Some(until) = until {
            e.push(endpoint);
            p.push(payment);
            v.push(version);
            at.push(until);
        }
    }
    if !e.is_empty() {
        execute(&tx, what, DUE_AT, &[&project, &e, &p, &v, &at]).await?;
    }
    tx.commit().await.map_err(failed(what))
}
