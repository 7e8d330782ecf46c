//! [`SqliteAccess`]: the console's operators and sessions, and the API's keys, of one project
//! in an SQLite ledger.

use std::time::SystemTime;

use rp_model::ProjectId;
use rp_payout::Error;
use rp_transport::BoxFuture;
use rusqlite::{OptionalExtension as _, params};

use super::SqliteLedger;
use crate::access::{
    AccessStore, Adoption, ApiKey, OperatorAccount, Role, Session, adoption, refusal, unknown_role,
};
use crate::stored::{nanos, time};

/// The operators and sessions, and the API's keys, of one project in an [`SqliteLedger`].
#[derive(Debug, Clone)]
pub struct SqliteAccess {
    ledger: SqliteLedger,
    project: i64,
}

impl SqliteAccess {
    pub(super) fn new(ledger: SqliteLedger, project: ProjectId) -> SqliteAccess {
        SqliteAccess {
            ledger,
            project: crate::stored::project_key(project),
        }
    }
}

/// How many operators and API keys are bound to no project (made before schema 9).
const UNBOUND: &str = "SELECT (SELECT count(*) FROM project_operators WHERE project_id = 0), \
     (SELECT count(*) FROM project_api_keys WHERE project_id = 0)";

/// Whether the ledger holds anything of a project other than ?1 (each table read by its
/// index, on both sides of ?1: no scan of ?1's own rows), and whether it holds payouts,
/// batches or webhook endpoints of ?1.
const PROJECTS: &str = "SELECT EXISTS (SELECT 1 FROM payouts WHERE project_id < ?1) \
     OR EXISTS (SELECT 1 FROM payouts WHERE project_id > ?1) \
     OR EXISTS (SELECT 1 FROM batches WHERE project_id < ?1) \
     OR EXISTS (SELECT 1 FROM batches WHERE project_id > ?1) \
     OR EXISTS (SELECT 1 FROM webhook_endpoints WHERE project_id <> ?1) \
     OR EXISTS (SELECT 1 FROM project_operators WHERE project_id NOT IN (0, ?1)) \
     OR EXISTS (SELECT 1 FROM project_api_keys WHERE project_id NOT IN (0, ?1)), \
     EXISTS (SELECT 1 FROM payouts WHERE project_id = ?1) \
     OR EXISTS (SELECT 1 FROM batches WHERE project_id = ?1) \
     OR EXISTS (SELECT 1 FROM webhook_endpoints WHERE project_id = ?1)";

/// Removes the unbound API keys and operators (no session can be theirs).
const REMOVE_UNBOUND: [&str; 2] = [
    "DELETE FROM project_api_keys WHERE project_id = 0",
    "DELETE FROM project_operators WHERE project_id = 0",
];

/// How many unbound operators and API keys have a name ?1 does not have (those it can bind).
const BINDABLE: &str = "SELECT \
     (SELECT count(*) FROM project_operators WHERE project_id = 0 \
      AND name NOT IN (SELECT name FROM project_operators WHERE project_id = ?1)), \
     (SELECT count(*) FROM project_api_keys WHERE project_id = 0 \
      AND name NOT IN (SELECT name FROM project_api_keys WHERE project_id = ?1))";

/// Binds the unbound rows of `table` (`project_operators` or `project_api_keys`) to ?1, but
/// for names ?1 has.
fn adopt(table: &str) -> String {
    format!(
        "UPDATE {table} SET project_id = ?1 WHERE project_id = 0 \
         AND name NOT IN (SELECT name FROM {table} WHERE project_id = ?1)"
    )
}

/// A stored role, or a conversion error naming it.
fn role(column: usize, text: &str) -> rusqlite::Result<Role> {
    Role::parse(text).ok_or_else(|| {
        rusqlite::Error::FromSqlConversionFailure(
            column,
            rusqlite::types::Type::Text,
            unknown_role(text).into(),
        )
    })
}

fn operator(row: &rusqlite::Row<'_>) -> rusqlite::Result<OperatorAccount> {
    let mut account = OperatorAccount::new(
        row.get::<_, String>(0)?,
        row.get::<_, String>(1)?,
        role(2, &row.get::<_, String>(2)?)?,
    );
    account.totp_secret = row.get(3)?;
    account.updated_at = time(row.get(4)?);
    Ok(account)
}

fn api_key(row: &rusqlite::Row<'_>) -> rusqlite::Result<ApiKey> {
    let mut key = ApiKey::new(
        row.get::<_, String>(0)?,
        row.get::<_, String>(1)?,
        role(2, &row.get::<_, String>(2)?)?,
    );
    key.created_at = time(row.get(3)?);
    key.revoked_at = row.get::<_, Option<i64>>(4)?.map(time);
    Ok(key)
}

const API_KEY_COLUMNS: &str = "name, key_sha256, role, created_at, revoked_at";

const OPERATOR_COLUMNS: &str = "name, password_hash, role, totp_secret, updated_at";

impl AccessStore for SqliteAccess {
    fn adopt_unbound(&self, sole: bool) -> BoxFuture<'_, Result<Adoption, Error>> {
        let project = self.project;
        Box::pin(async move {
            let unbound = |conn: &rusqlite::Connection| -> rusqlite::Result<(u64, u64)> {
                conn.prepare_cached(UNBOUND)?
                    .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))
            };
            // The common case, every start: nothing unbound, a read.
            let found = self
                .ledger
                .read("count unbound operators and keys".to_owned(), unbound)
                .await?;
            if found == (0, 0) {
                return Ok(Adoption::default());
            }
            let what = "bind the operators and keys made before they were per project";
            self.ledger
                .exclusive(what.to_owned(), move |tx| {
                    let bind = || -> rusqlite::Result<Adoption> {
                        let (operators, api_keys) = unbound(tx)?;
                        let refused = if sole {
                            let (others, mine) = tx.query_row(PROJECTS, params![project], |r| {
                                Ok((r.get(0)?, r.get(1)?))
                            })?;
                            refusal(others, mine)
                        } else {
                            None
                        };
                        if refused.is_none() {
                            tx.execute(&adopt("project_operators"), params![project])?;
                            tx.execute(&adopt("project_api_keys"), params![project])?;
                        }
                        let bindable = tx.query_row(BINDABLE, params![project], |r| {
                            Ok((r.get(0)?, r.get(1)?))
                        })?;
                        Ok(adoption(
                            (operators, api_keys),
                            unbound(tx)?,
                            bindable,
                            refused,
                        ))
                    };
                    bind().map_err(|e| Error::store(what, e))
                })
                .await
        })
    }

    fn remove_unbound(&self) -> BoxFuture<'_, Result<(u64, u64), Error>> {
        let what = "remove the operators and keys of no project";
        Box::pin(self.ledger.exclusive(what.to_owned(), move |tx| {
            let [keys, operators] = REMOVE_UNBOUND;
            let remove = || -> rusqlite::Result<(u64, u64)> {
                let keys = tx.execute(keys, [])?;
                let operators = tx.execute(operators, [])?;
                Ok((operators as u64, keys as u64))
            };
            remove().map_err(|e| Error::store(what, e))
        }))
    }

    fn put_operator(&self, account: OperatorAccount) -> BoxFuture<'_, Result<(), Error>> {
        let what = format!("save operator {}", account.name);
        let project = self.project;
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "DELETE FROM project_sessions WHERE project_id = ?1 AND operator = ?2",
                params![project, account.name],
            )
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO project_operators \
                     (project_id, name, password_hash, role, totp_secret, updated_at) \
                     VALUES (?6, ?1, ?2, ?3, ?4, ?5) ON CONFLICT (project_id, name) DO UPDATE SET \
                     password_hash = excluded.password_hash, role = excluded.role, \
                     totp_secret = excluded.totp_secret, updated_at = excluded.updated_at",
                    params![
                        account.name,
                        account.password_hash,
                        account.role.as_str(),
                        account.totp_secret,
                        nanos(account.updated_at),
                        project,
                    ],
                )
            })
            .map(|_| ())
            .map_err(|e| Error::store(&what, e))
        }))
    }

    fn operator<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<OperatorAccount>, Error>> {
        let (name, project) = (name.to_owned(), self.project);
        Box::pin(
            self.ledger
                .read(format!("read operator {name}"), move |conn| {
                    conn.prepare_cached(&format!(
                        "SELECT {OPERATOR_COLUMNS} FROM project_operators \
                         WHERE project_id = ?1 AND name = ?2"
                    ))?
                    .query_row(params![project, name], operator)
                    .optional()
                }),
        )
    }

    fn operators(&self) -> BoxFuture<'_, Result<Vec<OperatorAccount>, Error>> {
        let project = self.project;
        Box::pin(self.ledger.read("list operators".to_owned(), move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {OPERATOR_COLUMNS} FROM project_operators WHERE project_id = ?1 \
                 ORDER BY name"
            ))?
            .query_map(params![project], operator)?
            .collect()
        }))
    }

    fn remove_operator<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let (name, project) = (name.to_owned(), self.project);
        let what = format!("remove operator {name}");
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "DELETE FROM project_sessions WHERE project_id = ?1 AND operator = ?2",
                params![project, name],
            )
            .and_then(|_| {
                tx.execute(
                    "DELETE FROM project_operators WHERE project_id = ?1 AND name = ?2",
                    params![project, name],
                )
            })
            .map(|removed| removed > 0)
            .map_err(|e| Error::store(&what, e))
        }))
    }

    fn open_session<'a>(
        &'a self,
        session: Session,
        password_hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let what = format!("open a session for {}", session.operator);
        let (hash, project) = (password_hash.to_owned(), self.project);
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "INSERT INTO project_sessions \
                 (token_sha256, project_id, operator, csrf, created_at, expires_at) \
                 SELECT ?1, project_id, name, ?3, ?4, ?5 FROM project_operators \
                 WHERE project_id = ?7 AND name = ?2 AND password_hash = ?6",
                params![
                    session.token_sha256,
                    session.operator,
                    session.csrf,
                    nanos(session.created_at),
                    nanos(session.expires_at),
                    hash,
                    project,
                ],
            )
            .map(|inserted| inserted == 1)
            .map_err(|e| Error::store(&what, e))
        }))
    }

    fn session<'a>(
        &'a self,
        token_sha256: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Option<Session>, Error>> {
        let (token, project) = (token_sha256.to_owned(), self.project);
        Box::pin(self.ledger.read("read a session".to_owned(), move |conn| {
            conn.prepare_cached(
                "SELECT s.token_sha256, s.operator, o.role, s.csrf, s.created_at, s.expires_at \
                 FROM project_sessions s \
                 JOIN project_operators o ON o.project_id = s.project_id AND o.name = s.operator \
                 WHERE s.token_sha256 = ?1 AND s.expires_at > ?2 AND s.project_id = ?3",
            )?
            .query_row(params![token, nanos(now), project], |row| {
                let mut session = Session::new(
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, String>(3)?,
                    time(row.get(4)?),
                    time(row.get(5)?),
                );
                session.role = role(2, &row.get::<_, String>(2)?)?;
                Ok(session)
            })
            .optional()
        }))
    }

    fn close_session<'a>(&'a self, token_sha256: &'a str) -> BoxFuture<'a, Result<(), Error>> {
        let (token, project) = (token_sha256.to_owned(), self.project);
        let what = "close a session".to_owned();
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "DELETE FROM project_sessions WHERE token_sha256 = ?1 AND project_id = ?2",
                params![token, project],
            )
            .map(|_| ())
            .map_err(|e| Error::store(&what, e))
        }))
    }

    fn purge_sessions(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, Error>> {
        let what = "delete ended sessions".to_owned();
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "DELETE FROM project_sessions WHERE expires_at <= ?1",
                params![nanos(now)],
            )
            .map(|n| n as u64)
            .map_err(|e| Error::store(&what, e))
        }))
    }

    fn add_api_key(&self, key: ApiKey) -> BoxFuture<'_, Result<bool, Error>> {
        let what = format!("add API key {}", key.name);
        let project = self.project;
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "INSERT INTO project_api_keys \
                 (project_id, name, key_sha256, role, created_at, revoked_at) \
                 VALUES (?5, ?1, ?2, ?3, ?4, NULL) ON CONFLICT DO NOTHING",
                params![
                    key.name,
                    key.key_sha256,
                    key.role.as_str(),
                    nanos(key.created_at),
                    project,
                ],
            )
            .map(|inserted| inserted == 1)
            .map_err(|e| Error::store(&what, e))
        }))
    }

    fn api_key<'a>(&'a self, key_sha256: &'a str) -> BoxFuture<'a, Result<Option<ApiKey>, Error>> {
        let (hash, project) = (key_sha256.to_owned(), self.project);
        Box::pin(self.ledger.read("read an API key".to_owned(), move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM project_api_keys \
                 WHERE key_sha256 = ?1 AND project_id = ?2"
            ))?
            .query_row(params![hash, project], api_key)
            .optional()
        }))
    }

    fn api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKey>, Error>> {
        let project = self.project;
        Box::pin(self.ledger.read("list API keys".to_owned(), move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM project_api_keys WHERE project_id = ?1 ORDER BY name"
            ))?
            .query_map(params![project], api_key)?
            .collect()
        }))
    }

    fn revoke_api_key<'a>(
        &'a self,
        name: &'a str,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let (name, project) = (name.to_owned(), self.project);
        let what = format!("revoke API key {name}");
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "UPDATE project_api_keys SET revoked_at = ?2 \
                 WHERE project_id = ?3 AND name = ?1 AND revoked_at IS NULL",
                params![name, nanos(at), project],
            )
            .map(|changed| changed == 1)
            .map_err(|e| Error::store(&what, e))
        }))
    }
}
