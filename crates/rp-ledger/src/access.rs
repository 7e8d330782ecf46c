//! Who may use `rp serve`'s console, and their sessions: the [`AccessStore`] trait, kept in
//! the ledger so that several instances on one PostgreSQL ledger share their operators and
//! their logins.
//!
//! Operators, sessions and API keys belong to one project, as its payouts do: on a ledger
//! that two projects share (a test and a production one, say), a key or an operator of one
//! is unknown to the other. Those made before the ledger kept them per project (schema 8
//! and older) are bound to no project until [`AccessStore::adopt_unbound`] binds them.
//!
//! The ledger keeps only what it is given: a password's hash (argon2, made by the console)
//! and the SHA-256 of a session's token, never the token itself, so a copy of the ledger
//! opens no session.

use std::fmt;
use std::time::SystemTime;

use rp_payout::Error;
use rp_transport::BoxFuture;

/// What an operator of the console may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum Role {
    /// See payouts, batches, limits.
    View,
    /// Also pay: single payouts, batches, resends, status checks.
    Pay,
}

impl Role {
    /// The stored form: `view` or `pay`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::View => "view",
            Role::Pay => "pay",
        }
    }

    /// Reads [`Role::as_str`]; `None` for anything else.
    pub fn parse(text: &str) -> Option<Role> {
        match text {
            "view" => Some(Role::View),
            "pay" => Some(Role::Pay),
            _ => None,
        }
    }

    /// Whether this role may pay.
    pub fn may_pay(self) -> bool {
        self == Role::Pay
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The longest operator name, in bytes.
pub const MAX_OPERATOR_NAME: usize = 64;

/// Checks an operator name: 1 to [`MAX_OPERATOR_NAME`] bytes of ASCII letters, digits, `.`,
/// `_`, `-` and `@` (it is shown in pages and written into payout histories as
/// `operator:NAME`).
///
/// # Errors
///
/// A sentence saying what is wrong with it.
pub fn check_operator_name(name: &str) -> Result<(), String> {
    if name.is_empty() || name.len() > MAX_OPERATOR_NAME {
        return Err(format!(
            "an operator name has 1 to {MAX_OPERATOR_NAME} characters"
        ));
    }
    match name
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '@')))
    {
        Some(c) => Err(format!(
            "an operator name has only letters A-Z, digits and . _ - @ (found {c:?})"
        )),
        None => Ok(()),
    }
}

/// An operator of the console.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperatorAccount {
    /// The login name (see [`check_operator_name`]).
    pub name: String,
    /// The password's hash, a PHC string (`$argon2id$…`).
    pub password_hash: String,
    /// What the operator may do.
    pub role: Role,
    /// The operator's TOTP secret (Base32), when a second factor is required.
    pub totp_secret: Option<String>,
    /// When the operator was added or last changed.
    pub updated_at: SystemTime,
}

impl OperatorAccount {
    /// An operator with no second factor.
    pub fn new(name: impl Into<String>, password_hash: impl Into<String>, role: Role) -> Self {
        OperatorAccount {
            name: name.into(),
            password_hash: password_hash.into(),
            role,
            totp_secret: None,
            updated_at: SystemTime::now(),
        }
    }
}

impl fmt::Debug for OperatorAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Neither the hash nor the TOTP secret.
        f.debug_struct("OperatorAccount")
            .field("name", &self.name)
            .field("role", &self.role)
            .field("totp", &self.totp_secret.is_some())
            .finish_non_exhaustive()
    }
}

/// A logged-in session, found by the SHA-256 of its token.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Session {
    /// Hex SHA-256 of the token in the operator's cookie.
    pub token_sha256: String,
    /// Who is logged in.
    pub operator: String,
    /// The operator's role now (read with the session, so a changed role applies at once).
    pub role: Role,
    /// The token every form of this session carries (CSRF).
    pub csrf: String,
    /// When it was opened.
    pub created_at: SystemTime,
    /// When it ends.
    pub expires_at: SystemTime,
}

impl Session {
    /// A session for `operator` (its role is read back by [`AccessStore::session`]).
    pub fn new(
        token_sha256: impl Into<String>,
        operator: impl Into<String>,
        csrf: impl Into<String>,
        created_at: SystemTime,
        expires_at: SystemTime,
    ) -> Self {
        Session {
            token_sha256: token_sha256.into(),
            operator: operator.into(),
            role: Role::View,
            csrf: csrf.into(),
            created_at,
            expires_at,
        }
    }
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Not the CSRF token; the token's hash is harmless but says nothing useful either.
        f.debug_struct("Session")
            .field("operator", &self.operator)
            .field("role", &self.role)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

/// A key of `rp serve`'s JSON API (`Authorization: Bearer KEY`), found by the SHA-256 of the
/// key: the ledger never holds the key itself.
#[derive(Clone, PartialEq, Eq, Debug)]
#[non_exhaustive]
pub struct ApiKey {
    /// Its name (see [`check_operator_name`]): written into the history of what it does as
    /// `operator:api:NAME`.
    pub name: String,
    /// Hex SHA-256 of the key.
    pub key_sha256: String,
    /// [`Role::Pay`] or [`Role::View`] (shown as `read`).
    pub role: Role,
    /// When it was made.
    pub created_at: SystemTime,
    /// When it was revoked, if it was (a revoked key is refused).
    pub revoked_at: Option<SystemTime>,
}

impl ApiKey {
    /// A new key's record.
    pub fn new(name: impl Into<String>, key_sha256: impl Into<String>, role: Role) -> Self {
        ApiKey {
            name: name.into(),
            key_sha256: key_sha256.into(),
            role,
            created_at: SystemTime::now(),
            revoked_at: None,
        }
    }
}

/// What [`AccessStore::adopt_unbound`] did with the operators and API keys that were made
/// before the ledger kept them per project.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Adoption {
    /// Operators bound to this project now.
    pub operators: u64,
    /// API keys bound to this project now.
    pub api_keys: u64,
    /// Operators still bound to no project (refused by every project).
    pub operators_left: u64,
    /// API keys still bound to no project (refused by every project).
    pub api_keys_left: u64,
    /// Why those left were not bound, when some are.
    pub why_left: Option<Unadopted>,
}

impl Adoption {
    /// Whether operators or keys are still bound to no project.
    pub fn left_any(&self) -> bool {
        self.operators_left + self.api_keys_left > 0
    }
}

/// Why operators or keys made before the ledger kept them per project were left unbound.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Unadopted {
    /// The ledger holds another project's payouts, batches, webhook endpoints, operators or
    /// keys: whose they are cannot be told.
    OtherProjects,
    /// The ledger holds no payout, batch or webhook endpoint of this project either: a
    /// mistyped project ID would take them.
    NothingOfThisProject,
    /// This project has operators or keys of their names.
    SameNames,
}

/// The console's operators and sessions, and the API's keys, of one project, shared by every
/// instance on the ledger. Names are the project's own: another project on the ledger may
/// have an operator or a key of the same name, and neither sees the other's.
pub trait AccessStore: Send + Sync {
    /// Binds the operators and API keys made before the ledger kept them per project (they
    /// belong to no project, and every project refuses them) to this project. With `sole`,
    /// only when they can only be this project's: the ledger holds payouts, batches or
    /// webhook endpoints of this project and nothing of another. Without it, whatever the
    /// ledger holds (the administrator says they are this project's). One whose name this
    /// project already has is left unbound. Binding is one transaction; once none is
    /// unbound, it costs one read.
    fn adopt_unbound(&self, sole: bool) -> BoxFuture<'_, Result<Adoption, Error>>;

    /// Removes the operators and API keys made before the ledger kept them per project that
    /// are still bound to no project (every project refuses them: each adds its own);
    /// `(operators, keys)` removed.
    fn remove_unbound(&self) -> BoxFuture<'_, Result<(u64, u64), Error>>;

    /// Adds the operator, or replaces the one of that name (a new password or role). A
    /// replaced operator's sessions are closed.
    fn put_operator(&self, operator: OperatorAccount) -> BoxFuture<'_, Result<(), Error>>;

    /// The operator named `name`.
    fn operator<'a>(
        &'a self,
        name: &'a str,
    ) -> BoxFuture<'a, Result<Option<OperatorAccount>, Error>>;

    /// Every operator, by name.
    fn operators(&self) -> BoxFuture<'_, Result<Vec<OperatorAccount>, Error>>;

    /// Removes the operator and closes their sessions; whether there was one.
    fn remove_operator<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<bool, Error>>;

    /// Opens a session, if its operator exists and their password's hash is still
    /// `password_hash` (the one the login verified): a login that raced a change of password
    /// or a removal opens nothing. Whether it was opened.
    fn open_session<'a>(
        &'a self,
        session: Session,
        password_hash: &'a str,
    ) -> BoxFuture<'a, Result<bool, Error>>;

    /// The session whose token hashes to `token_sha256`, if it is open at `now` and its
    /// operator still exists; with the operator's current role.
    fn session<'a>(
        &'a self,
        token_sha256: &'a str,
        now: SystemTime,
    ) -> BoxFuture<'a, Result<Option<Session>, Error>>;

    /// Closes a session (logging out); closing one that is not open is not an error.
    fn close_session<'a>(&'a self, token_sha256: &'a str) -> BoxFuture<'a, Result<(), Error>>;

    /// Deletes the sessions that ended before `now`, of every project (an ended session is
    /// no one's); how many.
    fn purge_sessions(&self, now: SystemTime) -> BoxFuture<'_, Result<u64, Error>>;

    /// Adds an API key; `false` (nothing written) when a key of that name exists, revoked or
    /// not (names are never reused: the history names them).
    fn add_api_key(&self, key: ApiKey) -> BoxFuture<'_, Result<bool, Error>>;

    /// The key whose SHA-256 is `key_sha256`, revoked or not.
    fn api_key<'a>(&'a self, key_sha256: &'a str) -> BoxFuture<'a, Result<Option<ApiKey>, Error>>;

    /// Every API key, by name.
    fn api_keys(&self) -> BoxFuture<'_, Result<Vec<ApiKey>, Error>>;

    /// Revokes the key named `name` at `at`; whether a key that was not revoked was.
    fn revoke_api_key<'a>(
        &'a self,
        name: &'a str,
        at: SystemTime,
    ) -> BoxFuture<'a, Result<bool, Error>>;
}

/// Why a `sole` adoption binds nothing, from whether the ledger holds `others`' data and
/// this project's (`mine`); `None`: it binds.
pub(crate) fn refusal(others: bool, mine: bool) -> Option<Unadopted> {
    if others {
        Some(Unadopted::OtherProjects)
    } else if !mine {
        Some(Unadopted::NothingOfThisProject)
    } else {
        None
    }
}

/// What an adoption did: `(operators, keys)` unbound `before` and `after` it, how many of
/// those after it have a name this project does not (`bindable`), and why it bound nothing
/// (`refused`). Those left that no adoption could bind are left for their names.
pub(crate) fn adoption(
    before: (u64, u64),
    after: (u64, u64),
    bindable: (u64, u64),
    refused: Option<Unadopted>,
) -> Adoption {
    let left = after.0 + after.1 > 0;
    let why = match refused {
        Some(why) if bindable.0 + bindable.1 > 0 => why,
        _ => Unadopted::SameNames,
    };
    Adoption {
        operators: before.0.saturating_sub(after.0),
        api_keys: before.1.saturating_sub(after.1),
        operators_left: after.0,
        api_keys_left: after.1,
        why_left: left.then_some(why),
    }
}

/// The error for a stored role this build does not know.
pub(crate) fn unknown_role(text: &str) -> String {
    format!("unknown operator role {text:?} in the ledger (written by a newer rp?)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operator_names_are_checked() {
        assert!(check_operator_name("anna.k@desk-1_2").is_ok());
        for bad in ["", "a b", "ann;a", "аня", &"a".repeat(65), "a\n"] {
            assert!(check_operator_name(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn roles_round_trip_and_secrets_stay_out_of_debug() {
        for role in [Role::View, Role::Pay] {
            assert_eq!(Role::parse(role.as_str()), Some(role));
        }
        assert_eq!(Role::parse("admin"), None);
        let mut op = OperatorAccount::new("anna", "$argon2id$v=19$secret-hash", Role::Pay);
        op.totp_secret = Some("JBSWY3DPEHPK3PXP".to_owned());
        let shown = format!("{op:?}");
        assert!(
            !shown.contains("secret-hash") && !shown.contains("JBSWY3"),
            "{shown}"
        );
        let session = Session::new(
            "ab",
            "anna",
            "csrf-token",
            SystemTime::now(),
            SystemTime::now(),
        );
        assert!(!format!("{session:?}").contains("csrf-token"));
    }
}
