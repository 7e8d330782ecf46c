//! [`PostgresAccess`]: the console's operators and sessions, and the API's keys, of one
//! project in a PostgreSQL ledger, shared by every instance.

use std::time::SystemTime;

use deadpool_postgres::GenericClient as _;
use rp_model::ProjectId;
use rp_payout::Error;
use rp_transport::BoxFuture;
use tokio_postgres::Row;

use super::PostgresLedger;
use super::sql::{column, execute, failed, query};
use crate::access::{
    AccessStore, Adoption, ApiKey, OperatorAccount, Role, Session, adoption, refusal, unknown_role,
};
use crate::stored::{nanos, time};

/// The operators and sessions, and the API's keys, of one project in a [`PostgresLedger`].
#[derive(Debug, Clone)]
pub struct PostgresAccess {
    ledger: PostgresLedger,
    project: i64,
}

impl PostgresAccess {
    pub(super) fn new(ledger: PostgresLedger, project: ProjectId) -> PostgresAccess {
        PostgresAccess {
            ledger,
            project: crate::stored::project_key(project),
        }
    }
}

// Every statement names the project: `$1` in each.

const OPERATOR: &str = "SELECT name, password_hash, role, totp_secret, updated_at \
     FROM rp_ledger.project_operators WHERE project_id = $1 AND name = $2";
const OPERATORS: &str = "SELECT name, password_hash, role, totp_secret, updated_at \
     FROM rp_ledger.project_operators WHERE project_id = $1 ORDER BY name";
const UPSERT_OPERATOR: &str = "INSERT INTO rp_ledger.project_operators \
     (project_id, name, password_hash, role, totp_secret, updated_at) \
     VALUES ($1, $2, $3, $4, $5, $6) \
     ON CONFLICT (project_id, name) DO UPDATE SET password_hash = excluded.password_hash, \
     role = excluded.role, totp_secret = excluded.totp_secret, updated_at = excluded.updated_at";
const CLOSE_SESSIONS_OF: &str =
    "DELETE FROM rp_ledger.project_sessions WHERE project_id = $1 AND operator = $2";
const DELETE_OPERATOR: &str =
    "DELETE FROM rp_ledger.project_operators WHERE project_id = $1 AND name = $2";
const OPEN_SESSION: &str = "INSERT INTO rp_ledger.project_sessions \
     (project_id, token_sha256, operator, csrf, created_at, expires_at) \
     SELECT $1, $2, name, $4, $5, $6 FROM rp_ledger.project_operators \
     WHERE project_id = $1 AND name = $3 AND password_hash = $7";
const SESSION: &str = "SELECT s.token_sha256, s.operator, o.role, s.csrf, s.created_at, \
     s.expires_at FROM rp_ledger.project_sessions s \
     JOIN rp_ledger.project_operators o ON o.project_id = s.project_id AND o.name = s.operator \
     WHERE s.project_id = $1 AND s.token_sha256 = $2 AND s.expires_at > $3";
const CLOSE_SESSION: &str =
    "DELETE FROM rp_ledger.project_sessions WHERE project_id = $1 AND token_sha256 = $2";
/// Of every project: an ended session is no one's.
const PURGE_SESSIONS: &str = "DELETE FROM rp_ledger.project_sessions WHERE expires_at <= $1";

const ADD_API_KEY: &str = "INSERT INTO rp_ledger.project_api_keys \
     (project_id, name, key_sha256, role, created_at, revoked_at) \
     VALUES ($1, $2, $3, $4, $5, NULL) ON CONFLICT DO NOTHING";
const API_KEY: &str = "SELECT name, key_sha256, role, created_at, revoked_at \
     FROM rp_ledger.project_api_keys WHERE project_id = $1 AND key_sha256 = $2";
const API_KEYS: &str = "SELECT name, key_sha256, role, created_at, revoked_at \
     FROM rp_ledger.project_api_keys WHERE project_id = $1 ORDER BY name";
const REVOKE_API_KEY: &str = "UPDATE rp_ledger.project_api_keys SET revoked_at = $3 \
     WHERE project_id = $1 AND name = $2 AND revoked_at IS NULL";

/// How many operators and API keys are bound to no project (made before schema 9).
const UNBOUND: &str = "SELECT \
     (SELECT count(*) FROM rp_ledger.project_operators WHERE project_id = 0), \
     (SELECT count(*) FROM rp_ledger.project_api_keys WHERE project_id = 0)";
/// Adoptions wait for each other, and for operators and keys being added: each then sees
/// what the other bound.
const LOCK_ACCESS: &str = "LOCK TABLE rp_ledger.project_operators, rp_ledger.project_api_keys \
     IN SHARE ROW EXCLUSIVE MODE";
/// Whether the ledger holds anything of a project other than $1 (each table read by its
/// index, on both sides of $1: no scan of $1's own rows), and whether it holds payouts,
/// batches or webhook endpoints of $1.
const PROJECTS: &str = "SELECT \
     EXISTS (SELECT 1 FROM rp_ledger.payouts WHERE project_id < $1) \
     OR EXISTS (SELECT 1 FROM rp_ledger.payouts WHERE project_id > $1) \
     OR EXISTS (SELECT 1 FROM rp_ledger.batches WHERE project_id < $1) \
     OR EXISTS (SELECT 1 FROM rp_ledger.batches WHERE project_id > $1) \
     OR EXISTS (SELECT 1 FROM rp_ledger.webhook_endpoints WHERE project_id <> $1) \
     OR EXISTS (SELECT 1 FROM rp_ledger.project_operators WHERE project_id NOT IN (0, $1)) \
     OR EXISTS (SELECT 1 FROM rp_ledger.project_api_keys WHERE project_id NOT IN (0, $1)), \
     EXISTS (SELECT 1 FROM rp_ledger.payouts WHERE project_id = $1) \
     OR EXISTS (SELECT 1 FROM rp_ledger.batches WHERE project_id = $1) \
     OR EXISTS (SELECT 1 FROM rp_ledger.webhook_endpoints WHERE project_id = $1)";
/// Removes the unbound API keys, then operators (no session can be theirs).
const REMOVE_UNBOUND_KEYS: &str = "DELETE FROM rp_ledger.project_api_keys WHERE project_id = 0";
const REMOVE_UNBOUND_OPERATORS: &str =
    "DELETE FROM rp_ledger.project_operators WHERE project_id = 0";
/// How many unbound operators and API keys have a name $1 does not have (those it can bind).
const BINDABLE: &str = "SELECT \
     (SELECT count(*) FROM rp_ledger.project_operators WHERE project_id = 0 \
      AND name NOT IN (SELECT name FROM rp_ledger.project_operators WHERE project_id = $1)), \
     (SELECT count(*) FROM rp_ledger.project_api_keys WHERE project_id = 0 \
      AND name NOT IN (SELECT name FROM rp_ledger.project_api_keys WHERE project_id = $1))";
/// Binds the unbound operators to $1, but for names $1 has.
const ADOPT_OPERATORS: &str = "UPDATE rp_ledger.project_operators SET project_id = $1 \
     WHERE project_id = 0 \
     AND name NOT IN (SELECT name FROM rp_ledger.project_operators WHERE project_id = $1)";
/// Binds the unbound API keys to $1, but for names $1 has.
const ADOPT_API_KEYS: &str = "UPDATE rp_ledger.project_api_keys SET project_id = $1 \
     WHERE project_id = 0 \
     AND name NOT IN (SELECT name FROM rp_ledger.project_api_keys WHERE project_id = $1)";

fn api_key(row: &Row) -> Result<ApiKey, String> {
    let mut key = ApiKey::new(
        column::<String>(row, 0)?,
        column::<String>(row, 1)?,
        role(&column::<String>(row, 2)?)?,
    );
    key.created_at = time(column(row, 3)?);
    key.revoked_at = column::<Option<i64>>(row, 4)?.map(time);
    Ok(key)
}

fn role(text: &str) -> Result<Role, String> {
    Role::parse(text).ok_or_else(|| unknown_role(text))
}

fn operator(row: &Row) -> Result<OperatorAccount, String> {
    let mut account = OperatorAccount::new(
        column::<String>(row, 0)?,
        column::<String>(row, 1)?,
        role(&column::<String>(row, 2)?)?,
    );
    account.totp_secret = column(row, 3)?;
    account.updated_at = time(column(row, 4)?);
    Ok(account)
}

impl PostgresAccess {
    /// Runs `first` then `then` in one transaction; how many rows each changed.
    async fn two_steps(
        &self,
        what: &str,
        first: (&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]),
        then: (&str, &[&(dyn tokio_postgres::types::ToSql + Sync)]),
    ) -> Result<(u64, u64), Error> {
        let mut client = self.ledger.client(what).await?;
        let tx = client.transaction().await.map_err(failed(what))?;
        let first = execute(&tx, what, first.0, first.1).await?;
        let then = execute(&tx, what, then.0, then.1).await?;
        tx.commit().await.map_err(failed(what))?;
        self.ledger.committed();
        Ok((first, then))
    }
}

impl AccessStore for PostgresAccess {
    fn adopt_unbound(&self, sole: bool) -> BoxFuture<'_, Result<Adoption, Error>> {
        Box::pin(async move {
            let what = "bind the operators and keys made before they were per project";
            let unbound = |rows: Vec<Row>| -> Result<(u64, u64), Error> {
                let row = rows
                    .first()
                    .ok_or_else(|| Error::store(what, "no answer"))?;
                let count = |i| {
                    column::<i64>(row, i)
                        .map(|n| u64::try_from(n).unwrap_or(0))
                        .map_err(|e| Error::store(what, e))
                };
                Ok((count(0)?, count(1)?))
            };
            let mut client = self.ledger.client(what).await?;
            // The common case, every start: nothing unbound, a read.
            if unbound(query(&client, what, UNBOUND, &[]).await?)? == (0, 0) {
                return Ok(Adoption::default());
            }
            let tx = client.transaction().await.map_err(failed(what))?;
            execute(&tx, what, LOCK_ACCESS, &[]).await?;
            let (operators, api_keys) = unbound(query(&tx, what, UNBOUND, &[]).await?)?;
            let refused = if sole {
                let rows = query(&tx, what, PROJECTS, &[&self.project]).await?;
                let row = rows
                    .first()
                    .ok_or_else(|| Error::store(what, "no answer"))?;
                let flag = |i| column::<bool>(row, i).map_err(|e| Error::store(what, e));
                refusal(flag(0)?, flag(1)?)
            } else {
                None
            };
            if refused.is_none() {
                execute(&tx, what, ADOPT_OPERATORS, &[&self.project]).await?;
                execute(&tx, what, ADOPT_API_KEYS, &[&self.project]).await?;
            }
            let after = unbound(query(&tx, what, UNBOUND, &[]).await?)?;
            let bindable = unbound(query(&tx, what, BINDABLE, &[&self.project]).await?)?;
            tx.commit().await.map_err(failed(what))?;
            self.ledger.committed();
            Ok(adoption((operators, api_keys), after, bindable, refused))
        })
    }

    fn remove_unbound(&self) -> BoxFuture<'_, Result<(u64, u64), Error>> {
        Box::pin(async move {
            let what = "remove the operators and keys of no project";
            let (keys, operators) = self
                .two_steps(
                    what,
                    (REMOVE_UNBOUND_KEYS, &[]),
                    (REMOVE_UNBOUND_OPERATORS, &[]),
                )
                .await?;
            Ok((operators, keys))
        })
    }

    fn put_operator(&self, account: OperatorAccount) -> BoxFuture<'_, Result<(), Error>> {
        Box::pin(async move {
            let what = format!("save operator {}", account.name);
            let (role, at) = (account.role.as_str(), nanos(account.updated_at));
            self.two_steps(
                &what,
                (CLOSE_SESSIONS_OF, &[&self.project, &account.name]),
                (
                    UPSERT_OPERATOR,
                    &[
                        &self.project,
                        &account.name,
                        &account.password_hash,
                        &role,
                        &account.totp_secret,
                        &at,
                    ],
                ),
            )
            .await
            .map(|_| ())
        })
    }

    fn operator<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<OperatorAccount>, Error>> {
        Box::pin(async move {
            let what = format!("read operator {name}");
            let client = self.ledger.client(&what).await?;
            let rows = query(&client, &what, OPERATOR, &[&self.project, &name]).await?;
            rows.first()
                .map(operator)
                .transpose()
                .map_err(|e| Error::store(&what, e))
        })
    }

    fn operators(&self) -> BoxFuture<'_, Result<Vec<OperatorAccount>, Error>> {
        Box::pin(async move {
            let what = "list operators";
            let client = self.ledger.client(what).await?;
            query(&client, what, OPERATORS, &[&self.project])
                .await?
                .iter()
                .map(operator)
                .collect::<Result<_, _>>()
                .map_err(|e| Error::store(what, e))
        })
    }

    fn remove_operator<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let what = format!("remove operator {name}");
            let removed = self
                .two_steps(
                    &what,
                    (CLOSE_SESSIONS_OF, &[&self.project, &name]),
                    (DELETE_OPERATOR, &[&self.project, &name]),
                )
                .await?;
            Ok(removed.1 > 0)
        })
    }

    fn open_session<'a>(
        &'a self,
        session: Session,
        password_hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let what = format!("open a session for {}", session.operator);
            let client = self.ledger.client(&what).await?;
            let (created, expires) = (nanos(session.created_at), nanos(session.expires_at));
            let inserted = execute(
                &client,
                &what,
                OPEN_SESSION,
                &[
                    &self.project,
                    &session.token_sha256,
                    &session.operator,
                    &session.csrf,
                    &created,
                    &expires,
                    &password_hash,
                ],
            )
            .await?;
            self.ledger.committed();
            Ok(inserted == 1)
        })
    }

    fn session<'a>(
        &'a self,
        token_sha256: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Option<Session>, Error>> {
        Box::pin(async move {
            let what = "read a session";
            let client = self.ledger.client(what).await?;
            let rows = query(
                &client,
                what,
                SESSION,
                &[&self.project, &token_sha256, &nanos(now)],
            )
            .await?;
            let Some(row) = rows.first() else {
                return Ok(None);
            };
            let read = || -> Result<Session, String> {
                let mut session = Session::new(
                    column::<String>(row, 0)?,
                    column::<String>(row, 1)?,
                    column::<String>(row, 3)?,
                    time(column(row, 4)?),
                    time(column(row, 5)?),
                );
                session.role = role(&column::<String>(row, 2)?)?;
                Ok(session)
            };
            read().map(Some).map_err(|e| Error::store(what, e))
        })
    }

    fn close_session<'a>(&'a self, token_sha256: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        Box::pin(async move {
            let what = "close a session";
            let client = self.ledger.client(what).await?;
            execute(
                &client,
                what,
                CLOSE_SESSION,
                &[&self.project, &token_sha256],
            )
            .await?;
            self.ledger.committed();
            Ok(())
        })
    }

    fn purge_sessions(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, Error>> {
        Box::pin(async move {
            let what = "delete ended sessions";
            let client = self.ledger.client(what).await?;
            let purged = execute(&client, what, PURGE_SESSIONS, &[&nanos(now)]).await?;
            self.ledger.committed();
            Ok(purged)
        })
    }

    fn add_api_key(&self, key: ApiKey) -> BoxFuture<'_, Result<bool, Error>> {
        Box::pin(async move {
            let what = format!("add API key {}", key.name);
            let client = self.ledger.client(&what).await?;
            let (role, created) = (key.role.as_str(), nanos(key.created_at));
            let inserted = execute(
                &client,
                &what,
                ADD_API_KEY,
                &[&self.project, &key.name, &key.key_sha256, &role, &created],
            )
            .await?;
            self.ledger.committed();
            Ok(inserted == 1)
        })
    }

    fn api_key<'a>(&'a self, key_sha256: &'a str) -> BoxFuture<'a, Result<Option<ApiKey>, Error>> {
        Box::pin(async move {
            let what = "read an API key";
            let client = self.ledger.client(what).await?;
            let rows = query(&client, what, API_KEY, &[&self.project, &key_sha256]).await?;
            rows.first()
                .map(api_key)
                .transpose()
                .map_err(|e| Error::store(what, e))
        })
    }

    fn api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKey>, Error>> {
        Box::pin(async move {
            let what = "list API keys";
            let client = self.ledger.client(what).await?;
            query(&client, what, API_KEYS, &[&self.project])
                .await?
                .iter()
                .map(api_key)
                .collect::<Result<_, _>>()
                .map_err(|e| Error::store(what, e))
        })
    }

    fn revoke_api_key<'a>(
        &'a self,
        name: &'a str,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        Box::pin(async move {
            let what = format!("revoke API key {name}");
            let client = self.ledger.client(&what).await?;
            let changed = execute(
                &client,
                &what,
                REVOKE_API_KEY,
                &[&self.project, &name, &nanos(at)],
            )
            .await?;
            self.ledger.committed();
            Ok(changed == 1)
        })
    }
}
