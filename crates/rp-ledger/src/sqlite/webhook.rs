//! [`SqliteWebhooks`]: the webhook endpoints, deliveries and logs of one project in an SQLite
//! ledger, as a [`WebhookStore`]. Claims and attempts share the writer's group transactions
//! with the payouts' writes; the endpoints' changes run in their own. Times are this machine's
//! clock (every process sharing the file shares it).

use std::time::{Duration, SystemTime};

use rp_model::{PaymentId, ProjectId};
use rp_payout::Error;
use rp_transport::BoxFuture;
use rusqlite::{Connection, OptionalExtension as _, Row, params};

use super::SqliteLedger;
use super::delivery::{claim, details, record_attempt};
use super::rows::nanos;
use crate::stored::{time, version};
use crate::webhook::{
    AttemptRecord, ClaimedDelivery, DeliveryAttempt, DeliveryInfo, DeliveryKey, DeliveryState,
    WebhookEndpoint, WebhookStore,
};

/// The webhooks of one project in an [`SqliteLedger`].
#[derive(Debug, Clone)]
pub struct SqliteWebhooks {
    ledger: SqliteLedger,
    project: i64,
}

impl SqliteWebhooks {
    pub(super) fn new(ledger: SqliteLedger, project: ProjectId) -> SqliteWebhooks {
        SqliteWebhooks {
            ledger,
            project: crate::stored::project_key(project),
        }
    }
}

/// Enabling an endpoint: every delivery of it not delivered (pending, or given up while it
/// failed) is due now, its schedule anew; a send in flight loses its claim (its outcome is
/// not recorded, and the delivery goes out again under the same ID).
const REQUEUE: &str = "UPDATE webhook_deliveries SET next_attempt_at = ?3, failures = 0, \
     failed_at = NULL, claimed_by = NULL, lease_until = NULL \
     WHERE endpoint_id = ?1 AND project_id = ?2 AND delivered_at IS NULL";

const ENDPOINT_COLUMNS: &str = "e.id, e.url, e.secret, e.created_at, e.disabled_at, \
     e.disabled_reason, \
     (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id \
      AND d.delivered_at IS NULL AND d.failed_at IS NULL), \
     (SELECT count(*) FROM webhook_deliveries d WHERE d.endpoint_id = e.id \
      AND d.failed_at IS NOT NULL)";

pub(super) fn endpoint(row: &Row<'_>) -> rusqlite::Result<WebhookEndpoint> {
    Ok(WebhookEndpoint {
        id: row.get(0)?,
        url: row.get(1)?,
        secret: row.get(2)?,
        created_at: time(row.get(3)?),
        disabled_at: row.get::<_, Option<i64>>(4)?.map(time),
        disabled_reason: row.get(5)?,
        pending: u64::try_from(row.get::<_, i64>(6)?).unwrap_or(0),
        failed: u64::try_from(row.get::<_, i64>(7)?).unwrap_or(0),
    })
}

fn read_endpoint(conn: &Connection, project: i64, id: i64) -> rusqlite::Result<WebhookEndpoint> {
    conn.query_row(
        &format!(
            "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e \
             WHERE e.project_id = ?1 AND e.id = ?2"
        ),
        params![project, id],
        endpoint,
    )
}

pub(super) fn count(n: i64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn deliveries(
    conn: &Connection,
    project: i64,
    payment_id: &str,
) -> rusqlite::Result<Vec<DeliveryInfo>> {
    let mut found: Vec<DeliveryInfo> = conn
        .prepare_cached(
            "SELECT d.endpoint_id, d.version, e.url, d.created_at, d.next_attempt_at, \
             d.delivered_at, d.failed_at FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             WHERE d.project_id = ?1 AND d.payment_id = ?2 ORDER BY d.version, d.endpoint_id",
        )?
        .query_map(params![project, payment_id], |row| {
            let failed: Option<i64> = row.get(6)?;
            let delivered_at = row.get::<_, Option<i64>>(5)?.map(time);
            let state = match (delivered_at, failed) {
                (Some(_), _) => DeliveryState::Delivered,
                (None, Some(_)) => DeliveryState::Failed,
                (None, None) => DeliveryState::Pending,
            };
            let payment_id = PaymentId::new(payment_id.to_owned()).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Text,
                    e.to_string().into(),
                )
            })?;
            Ok(DeliveryInfo {
                key: DeliveryKey {
                    endpoint: row.get(0)?,
                    payment_id,
                    version: u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0),
                },
                url: row.get(2)?,
                state,
                created_at: time(row.get(3)?),
                next_attempt_at: row.get::<_, Option<i64>>(4)?.map(time),
                delivered_at,
                attempts: Vec::new(),
            })
        })?
        .collect::<rusqlite::Result<_>>()?;
    let mut attempts = conn.prepare_cached(
        "SELECT at, took_ms, status, error FROM webhook_attempts \
         WHERE endpoint_id = ?1 AND project_id = ?2 AND payment_id = ?3 AND version = ?4 \
         ORDER BY attempt",
    )?;
    for delivery in &mut found {
        delivery.attempts = attempts
            .query_map(
                params![
                    delivery.key.endpoint,
                    project,
                    payment_id,
                    version(delivery.key.version)
                ],
                |row| {
                    Ok(DeliveryAttempt::new(
                        time(row.get(0)?),
                        Duration::from_millis(u64::try_from(row.get::<_, i64>(1)?).unwrap_or(0)),
                        row.get::<_, Option<u16>>(2)?,
                        row.get(3)?,
                    ))
                },
            )?
            .collect::<rusqlite::Result<_>>()?;
    }
    Ok(found)
}

impl WebhookStore for SqliteWebhooks {
    fn add_endpoint<'a>(
        &'a self,
        url: &'a str,
        secret: &'a str,
    ) -> BoxFuture<'a, Result<WebhookEndpoint, Error>> {
        let project = self.project;
        let (url, secret) = (url.to_owned(), secret.to_owned());
        Box::pin(
            self.ledger
                .exclusive("add a webhook endpoint".to_owned(), move |tx| {
                    let what = "add a webhook endpoint";
                    let id: i64 = tx
                        .query_row(
                            "INSERT INTO webhook_endpoints (project_id, url, secret, created_at) \
                         VALUES (?1, ?2, ?3, ?4) RETURNING id",
                            params![project, url, secret, nanos(SystemTime::now())],
                            |row| row.get(0),
                        )
                        .map_err(|e| Error::store(what, e))?;
                    read_endpoint(tx, project, id).map_err(|e| Error::store(what, e))
                }),
        )
    }

    fn endpoints(&self) -> BoxFuture<'_, Result<Vec<WebhookEndpoint>, Error>> {
        let project = self.project;
        Box::pin(
            self.ledger
                .read("read the webhook endpoints".to_owned(), move |conn| {
                    conn.prepare_cached(&format!(
                        "SELECT {ENDPOINT_COLUMNS} FROM webhook_endpoints e \
                         WHERE e.project_id = ?1 ORDER BY e.id"
                    ))?
                    .query_map(params![project], endpoint)?
                    .collect()
                }),
        )
    }

    fn remove_endpoint(&self, id: i64) -> BoxFuture<'_, Result<bool, Error>> {
        let project = self.project;
        Box::pin(
            self.ledger
                .exclusive(format!("remove webhook endpoint {id}"), move |tx| {
                    let run = || -> rusqlite::Result<bool> {
                        let mine = tx
                            .query_row(
                                "SELECT 1 FROM webhook_endpoints WHERE id = ?1 AND project_id = ?2",
                                params![id, project],
                                |_| Ok(()),
                            )
                            .optional()?
                            .is_some();
                        if mine {
                            tx.execute(
                                "DELETE FROM webhook_attempts WHERE endpoint_id = ?1",
                                params![id],
                            )?;
                            tx.execute(
                                "DELETE FROM webhook_deliveries WHERE endpoint_id = ?1",
                                params![id],
                            )?;
                            tx.execute("DELETE FROM webhook_endpoints WHERE id = ?1", params![id])?;
                        }
                        Ok(mine)
                    };
                    run().map_err(|e| Error::store(format!("remove webhook endpoint {id}"), e))
                }),
        )
    }

    fn set_disabled<'a>(
        &'a self,
        id: i64,
        reason: Option<&'a str>,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let project = self.project;
        let reason = reason.map(str::to_owned);
        let what = format!("change webhook endpoint {id}");
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            let run = || -> rusqlite::Result<bool> {
                let now = nanos(SystemTime::now());
                let changed = match &reason {
                    Some(reason) => tx.execute(
                        "UPDATE webhook_endpoints SET disabled_at = coalesce(disabled_at, ?3), \
                         disabled_reason = ?4 WHERE id = ?1 AND project_id = ?2",
                        params![id, project, now, reason],
                    )?,
                    None => {
                        let changed = tx.execute(
                            "UPDATE webhook_endpoints SET disabled_at = NULL, \
                             disabled_reason = NULL WHERE id = ?1 AND project_id = ?2",
                            params![id, project],
                        )?;
                        if changed > 0 {
                            tx.execute(REQUEUE, params![id, project, now])?;
                        }
                        changed
                    }
                };
                Ok(changed > 0)
            };
            run().map_err(|e| Error::store(&what, e))
        }))
    }

    fn claim_due<'a>(
        &'a self,
        owner: &'a str,
        lease: Duration,
        limit: usize,
    ) -> BoxFuture<'a, Result<Vec<ClaimedDelivery>, Error>> {
        let project = self.project;
        let owner = owner.to_owned();
        Box::pin(async move {
            let what = "claim webhook deliveries";
            let keys = self
                .ledger
                .grouped(what.to_owned(), move |tx| {
                    claim(tx, project, &owner, lease, limit).map_err(|e| Error::store(what, e))
                })
                .await?;
            if keys.is_empty() {
                return Ok(Vec::new());
            }
            self.ledger
                .read(what.to_owned(), move |conn| details(conn, project, keys))
                .await
        })
    }

    fn record_attempts<'a>(
        &'a self,
        owner: &'a str,
        attempts: &'a [AttemptRecord],
    ) -> BoxFuture<'a, Result<Vec<bool>, Error>> {
        let project = self.project;
        let (owner, attempts) = (owner.to_owned(), attempts.to_vec());
        let what = format!("record {} webhook attempt(s)", attempts.len());
        Box::pin(self.ledger.grouped(what.clone(), move |tx| {
            attempts
                .iter()
                .map(|a| record_attempt(tx, project, &a.key, &owner, &a.attempt, &a.after))
                .collect::<rusqlite::Result<Vec<bool>>>()
                .map_err(|e| Error::store(&what, e))
        }))
    }

    fn deliveries<'a>(
        &'a self,
        payment_id: &'a PaymentId,
    ) -> BoxFuture<'a, Result<Vec<DeliveryInfo>, Error>> {
        let project = self.project;
        let id = payment_id.as_str().to_owned();
        Box::pin(self.ledger.read(
            format!("read the webhook deliveries of {id}"),
            move |conn| deliveries(conn, project, &id),
        ))
    }

    fn replay<'a>(
        &'a self,
        payment_id: &'a PaymentId,
        version: Option<u64>,
        endpoint: Option<i64>,
    ) -> BoxFuture<'a, Result<u64, Error>> {
        let project = self.project;
        let id = payment_id.as_str().to_owned();
        let what = format!("replay the webhooks of {id}");
        let version = version.map(crate::stored::version);
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.prepare_cached(
                "INSERT INTO webhook_deliveries \
                 (endpoint_id, project_id, payment_id, version, created_at, next_attempt_at) \
                 SELECT e.id, v.project_id, v.payment_id, v.version, v.at, ?5 \
                 FROM payout_events v JOIN webhook_endpoints e ON e.project_id = v.project_id \
                 WHERE v.project_id = ?1 AND v.payment_id = ?2 \
                 AND (?3 IS NULL OR v.version = ?3) AND (?4 IS NULL OR e.id = ?4) \
                 AND (v.previous IS NULL OR v.previous <> v.state OR v.note = (SELECT p.attention \
                 FROM payouts p WHERE p.project_id = v.project_id AND p.payment_id = v.payment_id) \
                 OR EXISTS (SELECT 1 FROM webhook_deliveries d WHERE d.project_id = v.project_id \
                 AND d.payment_id = v.payment_id AND d.version = v.version)) \
                 ON CONFLICT (endpoint_id, project_id, payment_id, version) DO UPDATE SET \
                 next_attempt_at = excluded.next_attempt_at, failures = 0, \
                 delivered_at = NULL, failed_at = NULL, claimed_by = NULL, lease_until = NULL",
            )
            .and_then(|mut s| {
                s.execute(params![
                    project,
                    id,
                    version,
                    endpoint,
                    nanos(SystemTime::now())
                ])
            })
            .map(|n| n as u64)
            .map_err(|e| Error::store(&what, e))
        }))
    }
}
