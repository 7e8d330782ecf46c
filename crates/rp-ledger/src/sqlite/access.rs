//! [`SqliteAccess`]: the console's operators and sessions in an SQLite ledger.

use std::time::SystemTime;

use rp_payout::Error;
use rp_transport::BoxFuture;
use rusqlite::{OptionalExtension as _, params};

use super::SqliteLedger;
use crate::access::{AccessStore, ApiKey, OperatorAccount, Role, Session, unknown_role};
use crate::stored::{nanos, time};

/// The operators and sessions of an [`SqliteLedger`].
#[derive(Debug, Clone)]
pub struct SqliteAccess {
    ledger: SqliteLedger,
}

impl SqliteAccess {
    pub(super) fn new(ledger: SqliteLedger) -> SqliteAccess {
        SqliteAccess { ledger }
    }
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
    fn put_operator(&self, account: OperatorAccount) -> BoxFuture<'_, Result<(), Error>> {
        let what = format!("save operator {}", account.name);
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "DELETE FROM sessions WHERE operator = ?1",
                params![account.name],
            )
            .and_then(|_| {
                tx.execute(
                    "INSERT INTO operators (name, password_hash, role, totp_secret, updated_at) \
                     VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (name) DO UPDATE SET \
                     password_hash = excluded.password_hash, role = excluded.role, \
                     totp_secret = excluded.totp_secret, updated_at = excluded.updated_at",
                    params![
                        account.name,
                        account.password_hash,
                        account.role.as_str(),
                        account.totp_secret,
                        nanos(account.updated_at),
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
        let name = name.to_owned();
        Box::pin(
            self.ledger
                .read(format!("read operator {name}"), move |conn| {
                    conn.prepare_cached(&format!(
                        "SELECT {OPERATOR_COLUMNS} FROM operators WHERE name = ?1"
                    ))?
                    .query_row(params![name], operator)
                    .optional()
                }),
        )
    }

    fn operators(&self) -> BoxFuture<'_, Result<Vec<OperatorAccount>, Error>> {
        Box::pin(self.ledger.read("list operators".to_owned(), |conn| {
            conn.prepare_cached(&format!(
                "SELECT {OPERATOR_COLUMNS} FROM operators ORDER BY name"
            ))?
            .query_map([], operator)?
            .collect()
        }))
    }

    fn remove_operator<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>> {
        let name = name.to_owned();
        let what = format!("remove operator {name}");
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute("DELETE FROM sessions WHERE operator = ?1", params![name])
                .and_then(|_| tx.execute("DELETE FROM operators WHERE name = ?1", params![name]))
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
        let hash = password_hash.to_owned();
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "INSERT INTO sessions (token_sha256, operator, csrf, created_at, expires_at) \
                 SELECT ?1, name, ?3, ?4, ?5 FROM operators WHERE name = ?2 AND password_hash = ?6",
                params![
                    session.token_sha256,
                    session.operator,
                    session.csrf,
                    nanos(session.created_at),
                    nanos(session.expires_at),
                    hash,
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
        let token = token_sha256.to_owned();
        Box::pin(self.ledger.read("read a session".to_owned(), move |conn| {
            conn.prepare_cached(
                "SELECT s.token_sha256, s.operator, o.role, s.csrf, s.created_at, s.expires_at \
                 FROM sessions s JOIN operators o ON o.name = s.operator \
                 WHERE s.token_sha256 = ?1 AND s.expires_at > ?2",
            )?
            .query_row(params![token, nanos(now)], |row| {
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
        let token = token_sha256.to_owned();
        let what = "close a session".to_owned();
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "DELETE FROM sessions WHERE token_sha256 = ?1",
                params![token],
            )
            .map(|_| ())
            .map_err(|e| Error::store(&what, e))
        }))
    }

    fn purge_sessions(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, Error>> {
        let what = "delete ended sessions".to_owned();
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "DELETE FROM sessions WHERE expires_at <= ?1",
                params![nanos(now)],
            )
            .map(|n| n as u64)
            .map_err(|e| Error::store(&what, e))
        }))
    }

    fn add_api_key(&self, key: ApiKey) -> BoxFuture<'_, Result<bool, Error>> {
        let what = format!("add API key {}", key.name);
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "INSERT INTO api_keys (name, key_sha256, role, created_at, revoked_at) \
                 VALUES (?1, ?2, ?3, ?4, NULL) ON CONFLICT DO NOTHING",
                params![
                    key.name,
                    key.key_sha256,
                    key.role.as_str(),
                    nanos(key.created_at)
                ],
            )
            .map(|inserted| inserted == 1)
            .map_err(|e| Error::store(&what, e))
        }))
    }

    fn api_key<'a>(&'a self, key_sha256: &'a str) -> BoxFuture<'a, Result<Option<ApiKey>, Error>> {
        let hash = key_sha256.to_owned();
        Box::pin(self.ledger.read("read an API key".to_owned(), move |conn| {
            conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys WHERE key_sha256 = ?1"
            ))?
            .query_row(params![hash], api_key)
            .optional()
        }))
    }

    fn api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKey>, Error>> {
        Box::pin(self.ledger.read("list API keys".to_owned(), |conn| {
            conn.prepare_cached(&format!(
                "SELECT {API_KEY_COLUMNS} FROM api_keys ORDER BY name"
            ))?
            .query_map([], api_key)?
            .collect()
        }))
    }

    fn revoke_api_key<'a>(
        &'a self,
        name: &'a str,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<bool, Error>> {
        let name = name.to_owned();
        let what = format!("revoke API key {name}");
        Box::pin(self.ledger.exclusive(what.clone(), move |tx| {
            tx.execute(
                "UPDATE api_keys SET revoked_at = ?2 WHERE name = ?1 AND revoked_at IS NULL",
                params![name, nanos(at)],
            )
            .map(|changed| changed == 1)
            .map_err(|e| Error::store(&what, e))
        }))
    }
}
