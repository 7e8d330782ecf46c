//! Reading the URL and the first connection: every reason a PostgreSQL ledger cannot be
//! opened, named.

use std::error::Error as _;
use std::str::FromStr as _;

use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config, NoTls};

use super::CONNECT_TIMEOUT;
use crate::LedgerError;

/// The `sslmode` values that ask for TLS, which this build does not have.
const TLS_MODES: &[&str] = &["require", "verify-ca", "verify-full"];

/// The URL as a connection configuration, with the ledger's defaults.
pub(super) fn config(url: &str, name: &str) -> Result<Config, LedgerError> {
    if let Some(mode) = query_value(url, "sslmode")
        && TLS_MODES.contains(&mode.as_str())
    {
        return Err(no_tls(name, &format!("sslmode={mode}")));
    }
    let mut config = Config::from_str(url.trim()).map_err(|e| LedgerError::InvalidUrl {
        url: name.to_owned(),
        reason: describe(&e),
    })?;
    // `SslMode` may gain variants; only `disable` and `prefer` can connect without TLS.
    if !matches!(config.get_ssl_mode(), SslMode::Disable | SslMode::Prefer) {
        return Err(no_tls(name, "the URL's sslmode"));
    }
    if config.get_hosts().is_empty() && config.get_hostaddrs().is_empty() {
        return Err(LedgerError::InvalidUrl {
            url: name.to_owned(),
            reason: "it names no host; use postgres://USER:PASSWORD@HOST:PORT/DATABASE".to_owned(),
        });
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(CONNECT_TIMEOUT);
    }
    if config.get_application_name().is_none() {
        config.application_name("rp-ledger");
    }
    Ok(config)
}

fn no_tls(name: &str, asked: &str) -> LedgerError {
    LedgerError::Unsupported {
        url: name.to_owned(),
        reason: format!(
            "{asked} asks for TLS, and this build connects to PostgreSQL without TLS; \
             connect over a local socket or a trusted network with sslmode=disable, \
             or through a TLS proxy on this host"
        ),
    }
}

/// The value of `key` in the URL's query string (`?a=b&key=value`), percent-decoding not
/// needed for the keys looked up here.
fn query_value(url: &str, key: &str) -> Option<String> {
    let (_, query) = url.split_once('?')?;
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=')?;
        (k == key).then(|| v.to_ascii_lowercase())
    })
}

/// The first connection, checked: reachable, authenticated, the database exists, writable.
pub(super) struct Session {
    /// The connection (its I/O runs on a spawned task until the client is dropped).
    pub(super) client: Client,
    /// Whether the session's `synchronous_commit` is weaker than `on` and must be raised.
    pub(super) raise_synchronous_commit: bool,
}

/// Connects once and checks that the ledger can be written there.
pub(super) async fn check(config: &Config, name: &str) -> Result<Session, LedgerError> {
    let (client, connection) = config
        .connect(NoTls)
        .await
        .map_err(|e| classify(config, name, &e))?;
    tokio::spawn(async move {
        if let Err(error) = connection.await {
            tracing::debug!(error = %describe(&error), "ledger: the opening connection ended");
        }
    });
    let failed = |e: tokio_postgres::Error| LedgerError::Backend {
        operation: "check the server",
        reason: format!("{name}: {}", describe(&e)),
    };
    let row = client
        .query_one(
            "SELECT pg_is_in_recovery(), current_setting('transaction_read_only'), \
             current_setting('synchronous_commit')",
            &[],
        )
        .await
        .map_err(failed)?;
    let standby: bool = row.try_get(0).map_err(failed)?;
    let read_only: String = row.try_get(1).map_err(failed)?;
    let commit: String = row.try_get(2).map_err(failed)?;
    if standby {
        return Err(LedgerError::ReadOnlyServer {
            url: name.to_owned(),
            reason: "the server is a standby (in recovery), which accepts no writes".to_owned(),
        });
    }
    if read_only == "on" {
        return Err(LedgerError::ReadOnlyServer {
            url: name.to_owned(),
            reason: "the server starts every transaction read-only \
                     (default_transaction_read_only is on for this server, database or user)"
                .to_owned(),
        });
    }
    Ok(Session {
        client,
        raise_synchronous_commit: weak_commit(&commit),
    })
}

/// Whether a `synchronous_commit` level lets a commit return before its WAL is on disk.
pub(super) fn weak_commit(level: &str) -> bool {
    matches!(level, "off" | "local")
}

/// A failed connection as the [`LedgerError`] that names it.
fn classify(config: &Config, name: &str, error: &tokio_postgres::Error) -> LedgerError {
    let user = config.get_user().unwrap_or_default().to_owned();
    if let Some(db) = error.as_db_error() {
        let code = db.code();
        if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            return LedgerError::Authentication {
                url: name.to_owned(),
                user,
                reason: db.message().to_owned(),
            };
        }
        if *code == SqlState::INVALID_CATALOG_NAME {
            return LedgerError::MissingDatabase {
                url: name.to_owned(),
                database: config.get_dbname().map_or(user, str::to_owned),
                server: servers(config),
            };
        }
        if *code == SqlState::CANNOT_CONNECT_NOW || *code == SqlState::TOO_MANY_CONNECTIONS {
            return LedgerError::Unreachable {
                url: name.to_owned(),
                server: servers(config),
                reason: format!("the server answered: {}", db.message()),
            };
        }
        return LedgerError::Backend {
            operation: "connect",
            reason: format!("{name}: {}", describe(error)),
        };
    }
    let text = describe(error);
    if text.contains("password missing") {
        return LedgerError::Authentication {
            url: name.to_owned(),
            user,
            reason: "the server asks for a password and the URL has none".to_owned(),
        };
    }
    if text.starts_with("authentication error") {
        return LedgerError::Authentication {
            url: name.to_owned(),
            user,
            reason: text,
        };
    }
    if text.starts_with("timeout waiting for server") {
        let timeout = config
            .get_connect_timeout()
            .copied()
            .unwrap_or(CONNECT_TIMEOUT);
        return LedgerError::Unreachable {
            url: name.to_owned(),
            server: servers(config),
            reason: format!("no answer within {timeout:?}; is the host right and reachable?"),
        };
    }
    if let Some(io) = io_source(error) {
        return LedgerError::Unreachable {
            url: name.to_owned(),
            server: servers(config),
            reason: format!("{io}; is PostgreSQL running and listening there?"),
        };
    }
    LedgerError::Backend {
        operation: "connect",
        reason: format!("{name}: {text}"),
    }
}

/// The I/O error under `error`, if any.
fn io_source(error: &tokio_postgres::Error) -> Option<&std::io::Error> {
    let mut source = error.source();
    while let Some(cause) = source {
        if let Some(io) = cause.downcast_ref::<std::io::Error>() {
            return Some(io);
        }
        source = cause.source();
    }
    None
}

/// The servers of `config`, `host:port` (or the socket), comma-separated.
pub(super) fn servers(config: &Config) -> String {
    let ports = config.get_ports();
    let port = |i: usize| {
        ports
            .get(i)
            .or_else(|| ports.first())
            .copied()
            .unwrap_or(5432)
    };
    let mut names: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| match host {
            Host::Tcp(host) => format!("{host}:{}", port(i)),
            #[cfg(unix)]
            Host::Unix(dir) => format!("{}/.s.PGSQL.{}", dir.display(), port(i)),
        })
        .collect();
    if names.is_empty() {
        names = config
            .get_hostaddrs()
            .iter()
            .enumerate()
            .map(|(i, addr)| format!("{addr}:{}", port(i)))
            .collect();
    }
    names.join(", ")
}

/// A PostgreSQL error in words: the server's message and SQLSTATE for a database error,
/// else the client's message with its causes. Never contains a password (neither side puts
/// one in a message).
pub(super) fn describe(error: &tokio_postgres::Error) -> String {
    if let Some(db) = error.as_db_error() {
        let mut text = format!(
            "{}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        );
        if let Some(detail) = db.detail() {
            text.push_str(&format!("; {detail}"));
        }
        if let Some(hint) = db.hint() {
            text.push_str(&format!("; hint: {hint}"));
        }
        return text;
    }
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}
