//! [`PostgresWebhooks`]: the webhook endpoints, deliveries and logs of one project in a
//! PostgreSQL ledger, as a [`WebhookStore`]. Due times and leases are the server's clock
//! (`clock_timestamp()`), shared by every instance; a claim skips the deliveries another
//! claim is taking (`FOR UPDATE SKIP LOCKED`), so each is sent by one instance at a time.
//! The sender's path (claims, records) is in [`super::delivery`], the set-aside in
//! [`super::aside`].

use std::time::Duration;

use deadpool_postgres::GenericClient as _;
use rp_model::{PaymentId, ProjectId};
use rp_payout::Error;
use rp_transport::BoxFuture;
use tokio_postgres::Row;

use super::PostgresLedger;
use super::sql::{column, execute, failed, query};
use crate::stored::time;
use crate::webhook::{
    AttemptRecord, ClaimedDelivery, DeliveryAttempt, DeliveryInfo, DeliveryKey, DeliveryState,
    WebhookEndpoint, WebhookStore,
};

/// The webhooks of one project in a [`PostgresLedger`].
#[derive(Debug, Clone)]
pub struct PostgresWebhooks {
    pub(super) ledger: PostgresLedger,
    pub(super) project: i64,
}

impl PostgresWebhooks {
    pub(super) fn new(ledger: PostgresLedger, project: ProjectId) -> PostgresWebhooks {
        PostgresWebhooks {
            ledger,
            project: crate::stored::project_key(project),
        }
    }
}

/// The server's clock in nanoseconds since the Unix epoch.
pub(super) const NOW: &str = "(extract(epoch FROM clock_timestamp()) * 1000000000)::bigint";

const ENDPOINT_COLUMNS: &str = "e.id, e.url, e.secret, e.created_at, e.disabled_at, \
     e.disabled_reason, \
     (SELECT count(*) FROM rp_ledger.webhook_deliveries d WHERE d.endpoint_id = e.id \
      AND d.delivered_at IS NULL AND d.failed_at IS NULL), \
     (SELECT count(*) FROM rp_ledger.webhook_deliveries d WHERE d.endpoint_id = e.id \
      AND d.failed_at IS NOT NULL)";

pub(super) fn endpoint(row: &Row) -> Result<WebhookEndpoint, String> {
    Ok(WebhookEndpoint {
        id: column(row, 0)?,
        url: column(row, 1)?,
        secret: column(row, 2)?,
        created_at: time(column(row, 3)?),
        disabled_at: column::<Option<i64>>(row, 4)?.map(time),
        disabled_reason: column(row, 5)?,
        pending: u64::try_from(column::<i64>(row, 6)?).unwrap_or(0),
        failed: u64::try_from(column::<i64>(row, 7)?).unwrap_or(0),
    })
}

pub(super) fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// The longest delay a due time takes: 200 years ("never"). The server adds a delay to its
/// clock, and nanoseconds since 1970 end in 2262: a longer one would be out of range.
const LONGEST_DELAY: Duration = Duration::from_secs(200 * 365 * 24 * 3600);

/// A lease or retry delay in nanoseconds, at most [`LONGEST_DELAY`].
pub(super) fn nanos_of(duration: Duration) -> i64 {
    i64::try_from(duration.min(LONGEST_DELAY).as_nanos()).unwrap_or(i64::MAX)
}

impl PostgresWebhooks {
    async fn read_endpoint(
        &self,
        client: &impl deadpool_postgres::GenericClient,
        what: &str,
        id: i64,
    ) -> Result<Option<WebhookEndpoint>, Error> {
        let sql = format!(
            "SELECT {ENDPOINT_COLUMNS} FROM rp_ledger.webhook_endpoints e \
             WHERE e.project_id = $1 AND e.id = $2"
        );
        let rows = query(client, what, &sql, &[&self.project, &id]).await?;
        rows.first()
            .map(endpoint)
            .transpose()
            .map_err(|e| Error::store(what, e))
    }
}

impl WebhookStore for PostgresWebhooks {
    fn add_endpoint<'a>(
        &'a self,
        url: &'a str,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<WebhookEndpoint, Error>> {
        Box::pin(async move {
            let what = "add a webhook endpoint";
            let client = self.ledger.client(what).await?;
            let sql = format!(
                "INSERT INTO rp_ledger.webhook_endpoints (project_id, url, secret, created_at) \
                 VALUES ($1, $2, $3, {NOW}) RETURNING id"
            );
            let rows = query(&client, what, &sql, &[&self.project, &url, &secret]).await?;
            self.ledger.committed();
            let id: i64 = rows
                .first()
                .map(|row| column(row, 0))
                .transpose()
                .map_err(|e| Error::store(what, e))?
                .ok_or_else(|| Error::store(what, "no endpoint number returned"))?;
            self.read_endpoint(&client, what, id)
                .await?
                .ok_or_else(|| Error::store(what, "the endpoint vanished"))
        })
    }

    fn endpoints(&self) -> BoxFuture<'_, Result<Vec<WebhookEndpoint>, Error>> {
        Box::pin(async move {
            let what = "read the webhook endpoints";
            let client = self.ledger.client(what).await?;
            let sql = format!(
                "SELECT {ENDPOINT_COLUMNS} FROM rp_ledger.webhook_endpoints e \
                 WHERE e.project_id = $1 ORDER BY e.id"
            );
            query(&client, what, &sql, &[&self.project])
                .await?
                .iter()
                .map(endpoint)
                .collect::<Result<_, _>>()
                .map_err(|e| Error::store(what, e))
        })
    }

    fn remove_endpoint(&self, id: i64) -> BoxFuture<'_, Result<bool, Error>> {
        Box::pin(async move {
            let what = &format!("remove webhook endpoint {id}");
            let mut client = self.ledger.client(what).await?;
            let tx = client.transaction().await.map_err(failed(what))?;
            let mine = execute(
                &tx,
                what,
                "SELECT 1 FROM rp_ledger.webhook_endpoints WHERE id = $1 AND project_id = $2 \
                 FOR UPDATE",
                &[&id, &self.project],
            )
            .await?
                > 0;
            if mine {
                for sql in [
                    "DELETE FROM rp_ledger.webhook_attempts WHERE endpoint_id = $1",
                    "DELETE FROM rp_ledger.webhook_deliveries WHERE endpoint_id = $1",
                    "DELETE FROM rp_ledger.webhook_endpoints WHERE id = $1",
                ] {
                    execute(&tx, what, sql, &[&id]).await?;
                }
            }
            tx.commit().await.map_err(failed(what))?;
            self.ledger.committed();
            Ok(mine)
        })
    }

    fn set_disabled<'a>(
        &'a self,
        id: i64,
        reason: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let what = &format!("change webhook endpoint {id}");
            let mut client = self.ledger.client(what).await?;
            let tx = client.transaction().await.map_err(failed(what))?;
            let changed = match reason {
                Some(reason) => {
                    let sql = format!(
                        "UPDATE rp_ledger.webhook_endpoints SET \
                         disabled_at = coalesce(disabled_at, {NOW}), disabled_reason = $3 \
                         WHERE id = $1 AND project_id = $2"
                    );
                    execute(&tx, what, &sql, &[&id, &self.project, &reason]).await?
                }
                None => {
                    let changed = execute(
                        &tx,
                        what,
                        "UPDATE rp_ledger.webhook_endpoints SET disabled_at = NULL, \
                         disabled_reason = NULL WHERE id = $1 AND project_id = $2",
                        &[&id, &self.project],
                    )
                    .await?;
                    if changed > 0 {
                        // Every delivery not delivered is due now, its schedule anew; a send in
                        // flight loses its claim (sent again under the same ID).
                        let sql = format!(
                            "UPDATE rp_ledger.webhook_deliveries SET next_attempt_at = {NOW}, \
                             failures = 0, failed_at = NULL, claimed_by = NULL, lease_until = NULL \
                             WHERE endpoint_id = $1 AND project_id = $2 AND delivered_at IS NULL"
                        );
                        execute(&tx, what, &sql, &[&id, &self.project]).await?;
                    }
                    changed
                }
            };
            tx.commit().await.map_err(failed(what))?;
            self.ledger.committed();
            Ok(changed > 0)
        })
    }

    fn claim_due<'a>(
        &'a self,
        owner: &'a str,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ClaimedDelivery>, Error>> {
        Box::pin(self.claim(owner, lease, limit))
    }
    fn record_attempts<'a>(
        &'a self,
        owner: &'a str,
        attempts: &'a [AttemptRecord],
    ) -> BoxFuture<'a, Result<Vec<bool>, Error>> {
        Box::pin(self.record(owner, attempts))
    }
    fn deliveries<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Vec<DeliveryInfo>, Error>> {
        Box::pin(async move {
            let what = &format!("read the webhook deliveries of {payment_id}");
            let client = self.ledger.client(what).await?;
            let id = payment_id.as_str();
            let rows = query(
                &client,
                what,
                "SELECT d.endpoint_id, d.version, e.url, d.created_at, d.next_attempt_at, \
                 d.delivered_at, d.failed_at FROM rp_ledger.webhook_deliveries d \
                 JOIN rp_ledger.webhook_endpoints e ON e.id = d.endpoint_id \
                 WHERE d.project_id = $1 AND d.payment_id = $2 ORDER BY d.version, d.endpoint_id",
                &[&self.project, &id],
            )
            .await?;
            let attempt_rows = query(
                &client,
                what,
                "SELECT endpoint_id, version, at, took_ms, status, error \
                 FROM rp_ledger.webhook_attempts WHERE project_id = $1 AND payment_id = $2 \
                 ORDER BY endpoint_id, version, attempt",
                &[&self.project, &id],
            )
            .await?;
            let read = |row: &Row| -> Result<DeliveryInfo, String> {
                let delivered_at = column::<Option<i64>>(row, 5)?.map(time);
                let failed_at = column::<Option<i64>>(row, 6)?;
                let state = match (delivered_at, failed_at) {
                    (Some(_), _) => DeliveryState::Delivered,
                    (None, Some(_)) => DeliveryState::Failed,
                    (None, None) => DeliveryState::Pending,
                };
                let endpoint: i64 = column(row, 0)?;
                let event_version: i64 = column(row, 1)?;
                let mut attempts = Vec::new();
                for a in &attempt_rows {
                    if column::<i64>(a, 0)? == endpoint && column::<i64>(a, 1)? == event_version {
                        attempts.push(DeliveryAttempt::new(
                            time(column(a, 2)?),
                            Duration::from_millis(u64::try_from(column::<i64>(a, 3)?).unwrap_or(0)),
                            column::<Option<i32>>(a, 4)?.and_then(|s| u16::try_from(s).ok()),
                            column(a, 5)?,
                        ));
                    }
                }
                Ok(DeliveryInfo {
                    key: DeliveryKey {
                        endpoint,
                        payment_id: payment_id.clone(),
                        version: u64::try_from(event_version).unwrap_or(0),
                    },
                    url: column(row, 2)?,
                    state,
                    created_at: time(column(row, 3)?),
                    next_attempt_at: column::<Option<i64>>(row, 4)?.map(time),
                    delivered_at,
                    attempts,
                })
            };
            rows.iter()
                .map(read)
                .collect::<Result<_, _>>()
                .map_err(|e| Error::store(what, e))
        })
    }

    fn replay<'a>(
        &'a self,
        payment_id: &'a PaymentId,
        version: Option<u64>,
        endpoint: Option<i64>,
    ) -> BoxFuture<'a, Result<u64, Error>> {
        Box::pin(async move {
            let what = &format!("replay the webhooks of {payment_id}");
            let mut client = self.ledger.client(what).await?;
            let id = payment_id.as_str();
            let event_version = version.map(crate::stored::version);
            let tx = client.transaction().await.map_err(failed(what))?;
            // In the order records and removals take them: the endpoints (a removal waits,
            // or is waited for), then the deliveries in key order. Taken as the upsert below
            // reaches them, they crossed a record's or a removal's and deadlocked.
            execute(
                &tx,
                what,
                "SELECT 1 FROM rp_ledger.webhook_endpoints WHERE project_id = $1 \
                 AND ($2::bigint IS NULL OR id = $2) ORDER BY id FOR SHARE",
                &[&self.project, &endpoint],
            )
            .await?;
            execute(
                &tx,
                what,
                "SELECT 1 FROM rp_ledger.webhook_deliveries WHERE project_id = $1 \
                 AND payment_id = $2 AND ($3::bigint IS NULL OR version = $3) \
                 AND ($4::bigint IS NULL OR endpoint_id = $4) \
                 ORDER BY endpoint_id, payment_id, version FOR UPDATE",
                &[&self.project, &id, &event_version, &endpoint],
            )
            .await?;
            let sql = format!(
                "INSERT INTO rp_ledger.webhook_deliveries \
                 (endpoint_id, project_id, payment_id, version, created_at, next_attempt_at) \
                 SELECT e.id, v.project_id, v.payment_id, v.version, v.at, {NOW} \
                 FROM rp_ledger.payout_events v \
                 JOIN rp_ledger.webhook_endpoints e ON e.project_id = v.project_id \
                 WHERE v.project_id = $1 AND v.payment_id = $2 \
                 AND ($3::bigint IS NULL OR v.version = $3) \
                 AND ($4::bigint IS NULL OR e.id = $4) \
                 AND (v.previous IS NULL OR v.previous <> v.state OR v.note = (SELECT p.attention \
                 FROM rp_ledger.payouts p WHERE p.project_id = v.project_id AND p.payment_id = v.payment_id) \
                 OR EXISTS (SELECT 1 FROM rp_ledger.webhook_deliveries d WHERE d.project_id = v.project_id \
                 AND d.payment_id = v.payment_id AND d.version = v.version)) \
                 ON CONFLICT (endpoint_id, project_id, payment_id, version) DO UPDATE SET \
                 next_attempt_at = excluded.next_attempt_at, failures = 0, \
                 delivered_at = NULL, failed_at = NULL, claimed_by = NULL, lease_until = NULL"
            );
            let n = execute(
                &tx,
                what,
                &sql,
                &[&self.project, &id, &event_version, &endpoint],
            )
            .await?;
            tx.commit().await.map_err(failed(what))?;
            self.ledger.committed();
            Ok(n)
        })
    }
}
