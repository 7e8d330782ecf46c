//! [`LedgerUrl`]: where a ledger is, from `sqlite:PATH`, `sqlite::memory:` or `postgres://…`.

use std::fmt;
use std::path::PathBuf;

use crate::LedgerError;

/// Where a ledger is.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum LedgerUrl {
    /// An SQLite file: `sqlite:PATH` or `sqlite://PATH` (`sqlite:///abs/path` too).
    SqliteFile(PathBuf),
    /// An in-memory SQLite ledger: `sqlite::memory:`.
    SqliteMemory,
    /// A PostgreSQL server: `postgres://` or `postgresql://` (kept whole; shown without its
    /// password).
    Postgres(String),
}

impl LedgerUrl {
    /// Parses a ledger URL.
    ///
    /// # Errors
    ///
    /// [`LedgerError::InvalidUrl`] naming what is wrong: an empty URL, an unknown scheme, an
    /// SQLite URL without a path, a PostgreSQL URL without a host.
    pub fn parse(url: &str) -> Result<LedgerUrl, LedgerError> {
        let invalid = |reason: &str| LedgerError::InvalidUrl {
            url: redact(url),
            reason: reason.to_owned(),
        };
        let url = url.trim();
        if url.is_empty() {
            return Err(invalid(
                "it is empty; use sqlite:PATH, sqlite::memory: or postgres://USER@HOST/DATABASE",
            ));
        }
        if url == "sqlite::memory:" || url == "sqlite://:memory:" {
            return Ok(LedgerUrl::SqliteMemory);
        }
        if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.strip_prefix("//").unwrap_or(rest);
            let path = path.split_once('?').map_or(path, |(path, _)| path);
            if path.is_empty() {
                return Err(invalid(
                    "it names no file; use sqlite:PATH (e.g. sqlite:/var/lib/rp/ledger.db) or sqlite::memory:",
                ));
            }
            if url.contains('?') {
                return Err(invalid(
                    "SQLite ledger URLs take no options: the ledger sets WAL, synchronous=FULL and foreign keys itself",
                ));
            }
            return Ok(LedgerUrl::SqliteFile(PathBuf::from(path)));
        }
        if let Some(rest) = url
            .strip_prefix("postgres://")
            .or_else(|| url.strip_prefix("postgresql://"))
        {
            let authority = rest.split(['/', '?']).next().unwrap_or_default();
            let host = authority.rsplit('@').next().unwrap_or_default();
            if host.is_empty() {
                return Err(invalid(
                    "it names no host; use postgres://USER:PASSWORD@HOST:PORT/DATABASE",
                ));
            }
            return Ok(LedgerUrl::Postgres(url.to_owned()));
        }
        let scheme = url.split(':').next().unwrap_or_default();
        Err(invalid(&format!(
            "unknown scheme `{scheme}`; use sqlite:PATH, sqlite::memory: or postgres://USER@HOST/DATABASE"
        )))
    }

    /// Why this build cannot open the ledger, for [`LedgerError::Unsupported`].
    #[cfg_attr(all(feature = "sqlite", feature = "postgres"), allow(dead_code))]
    pub(crate) fn unsupported_reason(&self) -> String {
        match self {
            LedgerUrl::Postgres(_) => {
                "the PostgreSQL ledger is not available in this build (build rp-ledger with the `postgres` feature); use an SQLite ledger (sqlite:PATH)".to_owned()
            }
            _ => "this build has no SQLite ledger (the `sqlite` feature is off)".to_owned(),
        }
    }
}

impl fmt::Display for LedgerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LedgerUrl::SqliteFile(path) => write!(f, "sqlite:{}", path.display()),
            LedgerUrl::SqliteMemory => f.write_str("sqlite::memory:"),
            LedgerUrl::Postgres(url) => f.write_str(&redact(url)),
        }
    }
}

impl fmt::Debug for LedgerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// `url` with the password of `scheme://user:password@host` replaced by `***`.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    match authority.rsplit_once('@') {
        Some((user_info, host)) => {
            let user = user_info.split(':').next().unwrap_or_default();
            let hidden = if user_info.contains(':') { ":***" } else { "" };
            format!("{scheme}://{user}{hidden}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_form() {
        assert_eq!(
            LedgerUrl::parse("sqlite:/var/lib/rp/ledger.db").unwrap(),
            LedgerUrl::SqliteFile("/var/lib/rp/ledger.db".into())
        );
        assert_eq!(
            LedgerUrl::parse("sqlite://ledger.db").unwrap(),
            LedgerUrl::SqliteFile("ledger.db".into())
        );
        assert_eq!(
            LedgerUrl::parse("sqlite:///abs.db").unwrap(),
            LedgerUrl::SqliteFile("/abs.db".into())
        );
        assert_eq!(
            LedgerUrl::parse(" sqlite::memory: ").unwrap(),
            LedgerUrl::SqliteMemory
        );
        assert!(matches!(
            LedgerUrl::parse("postgresql://rp@db.internal/ledger").unwrap(),
            LedgerUrl::Postgres(_)
        ));
    }

    #[test]
    fn every_mistake_is_named_and_no_password_is_shown() {
        for (url, needle) in [
            ("", "it is empty"),
            ("sqlite:", "names no file"),
            ("sqlite:ledger.db?mode=ro", "take no options"),
            ("mysql://x/y", "unknown scheme `mysql`"),
            ("ledger.db", "unknown scheme `ledger.db`"),
            ("postgres://user:hunter2@/db", "names no host"),
        ] {
            let error = LedgerUrl::parse(url).unwrap_err().to_string();
            assert!(error.contains(needle), "{url}: {error}");
            assert!(!error.contains("hunter2"), "{error}");
        }
        let url = LedgerUrl::parse("postgres://rp:hunter2@db:5432/ledger?sslmode=require").unwrap();
        assert_eq!(
            url.to_string(),
            "postgres://rp:***@db:5432/ledger?sslmode=require"
        );
        assert!(!format!("{url:?}").contains("hunter2"));
    }
}
