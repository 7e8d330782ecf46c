//! Who is asking: operators' passwords (argon2id), session tokens, the signed-in operator of
//! a request ([`Me`]), CSRF tokens on every form, and the guard against guessing passwords.
//!
//! A session token is 32 random bytes from the operating system, sent in an `HttpOnly;
//! Secure; SameSite=Strict` cookie; the ledger keeps only its SHA-256 (see
//! [`rp_ledger::AccessStore`]). Every `POST` of a signed-in operator carries the session's
//! CSRF token in a form field (`csrf`) or the `x-csrf-token` header, compared in constant
//! time; the login form, before any session, carries one tied to a cookie of its own.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use argon2::Argon2;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use rp_ledger::Role;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::Desk;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "rp_session";

/// The cookie that ties the login form's CSRF token to the browser that loaded it.
pub const LOGIN_COOKIE: &str = "rp_login";

/// The shortest password `rp serve add-operator` accepts, in characters.
pub const MIN_PASSWORD_CHARS: usize = 12;

/// Failed logins of one operator name allowed per [`LOGIN_WINDOW`]; then every attempt for
/// that name is refused until the window has passed.
pub const MAX_FAILED_LOGINS: u32 = 5;

/// The window of [`MAX_FAILED_LOGINS`].
pub const LOGIN_WINDOW: Duration = Duration::from_secs(300);

/// Why a password could not be hashed or is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    /// Too short.
    #[error("the password has {chars} characters; use at least {MIN_PASSWORD_CHARS}")]
    TooShort {
        /// How many it has.
        chars: usize,
    },
    /// The operating system gave no random salt, or argon2 failed.
    #[error("could not hash the password: {0}")]
    Hashing(String),
}

/// Hashes a new operator's password with argon2id (a random salt, the crate's default
/// costs), as a PHC string for [`rp_ledger::OperatorAccount::password_hash`].
///
/// # Errors
///
/// [`PasswordError::TooShort`] under [`MIN_PASSWORD_CHARS`] characters;
/// [`PasswordError::Hashing`] when no random salt can be had.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let chars = password.chars().count();
    if chars < MIN_PASSWORD_CHARS {
        return Err(PasswordError::TooShort { chars });
    }
    let mut salt = [0u8; 16];
    getrandom::fill(&mut salt).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(|e| PasswordError::Hashing(e.to_string()))?;
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|hash| hash.to_string())
        .map_err(|e| PasswordError::Hashing(e.to_string()))
}

/// Whether `password` matches `hash` (a PHC string); `false` for a hash that cannot be read.
pub fn verify_password(hash: &str, password: &str) -> bool {
    PasswordHash::new(hash).is_ok_and(|parsed| {
        Argon2::default()
            .verify_password(password.as_bytes(), &parsed)
            .is_ok()
    })
}

/// A hash no password matches, verified when the operator does not exist, so that the
/// answer takes as long as for a wrong password (nothing tells which names exist).
pub(crate) fn decoy_hash() -> &'static str {
    use std::sync::OnceLock;
    static DECOY: OnceLock<String> = OnceLock::new();
    DECOY.get_or_init(|| hash_password("no operator has this password").unwrap_or_default())
}

/// 32 random bytes as 64 hex digits: a session or CSRF token.
pub(crate) fn new_token() -> Result<String, String> {
    let mut bytes = [0u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| format!("no random bytes from the system: {e}"))?;
    Ok(hex(&bytes))
}

/// Lowercase hex of `bytes`.
pub(crate) fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut out, b| {
            let _ = write!(out, "{b:02x}");
            out
        })
}

/// Hex SHA-256 of a token: what the ledger keeps.
pub(crate) fn token_sha256(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Whether two tokens are equal, in constant time.
pub(crate) fn same_token(a: &str, b: &str) -> bool {
    !a.is_empty() && a.as_bytes().ct_eq(b.as_bytes()).into()
}

/// The value of cookie `name` in the request's `Cookie` headers.
pub(crate) fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// A `Set-Cookie` value: `HttpOnly; SameSite=Strict; Path=/`, `Secure` unless turned off
/// for plain-HTTP tests, and `Max-Age` when given (0 deletes it).
pub(crate) fn set_cookie(name: &str, value: &str, max_age: Option<u64>, secure: bool) -> String {
    let mut cookie = format!("{name}={value}; HttpOnly; SameSite=Strict; Path=/");
    if secure {
        cookie.push_str("; Secure");
    }
    if let Some(seconds) = max_age {
        cookie.push_str(&format!("; Max-Age={seconds}"));
    }
    cookie
}

/// The operator signed in on this request (put there by the login check of every signed-in page).
#[derive(Clone)]
pub struct Me {
    /// The operator's name.
    pub name: String,
    /// Their role now.
    pub role: Role,
    /// The session's CSRF token, for the forms of the page.
    pub csrf: String,
    /// The SHA-256 of the session's token (to log out).
    pub(crate) token_sha256: String,
}

impl fmt::Debug for Me {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Me")
            .field("name", &self.name)
            .field("role", &self.role)
            .finish_non_exhaustive()
    }
}

impl Me {
    /// The history's source for what this operator does.
    pub fn source(&self) -> rp_payout::EventSource {
        rp_payout::EventSource::Operator(self.name.clone())
    }
}

const CSRF_REFUSED: &str = "this form is out of date or was not sent from the console (CSRF token missing or wrong); reload the page";

/// Finds the signed-in operator, or sends the browser to `/login` (a `GET`) or answers 401.
/// A `POST` must also carry the session's CSRF token (see [`check_csrf`]), else 403.
pub(crate) async fn require_login(
    State(desk): State<Desk>,
    mut request: Request,
    next: Next,
) -> Response {
    let me = match signed_in(&desk, request.headers()).await {
        Ok(Some(me)) => me,
        Ok(None) if request.method() == Method::GET => {
            let next_page = request
                .uri()
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default();
            let target = format!("/login?next={}", crate::web::layout::url_encode(&next_page));
            return Redirect::to(&target).into_response();
        }
        Ok(None) => {
            return (StatusCode::UNAUTHORIZED, "sign in first: /login").into_response();
        }
        Err(error) => {
            tracing::error!(%error, "could not read the session from the ledger");
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                "the ledger is not answering; try again",
            )
                .into_response();
        }
    };
    if is_multipart(request.headers()) {
        // A file upload: its body is streamed to disk by the handler, never buffered here,
        // so the form carries its token in the query (`?csrf=`).
        let token = request
            .uri()
            .query()
            .and_then(|q| form_field(q.as_bytes(), "csrf"))
            .unwrap_or_default();
        if !same_token(&token, &me.csrf) {
            tracing::warn!(operator = %me.name, path = request.uri().path(), "refused an upload without the session's CSRF token");
            return (StatusCode::FORBIDDEN, CSRF_REFUSED).into_response();
        }
    } else if request.method() != Method::GET && request.method() != Method::HEAD {
        let (parts, body) = request.into_parts();
        let bytes = match axum::body::to_bytes(body, crate::web::MAX_FORM_BYTES).await {
            Ok(bytes) => bytes,
            Err(error) => {
                let (status, text) = crate::web::unreadable("the form", &error);
                return (status, [(header::CONNECTION, "close")], text).into_response();
            }
        };
        if !check_csrf(&parts.headers, &bytes, &me.csrf) {
            tracing::warn!(operator = %me.name, path = parts.uri.path(), "refused a POST without the session's CSRF token");
            return (StatusCode::FORBIDDEN, CSRF_REFUSED).into_response();
        }
        request = Request::from_parts(parts, axum::body::Body::from(bytes));
    }
    request.extensions_mut().insert(me);
    next.run(request).await
}

/// Whether a request is a file upload (`multipart/form-data`): its body is streamed by its
/// handler, never read ahead.
pub(crate) fn is_multipart(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("multipart/form-data"))
}

/// Whether a `POST` carries `expected` as its `x-csrf-token` header or its `csrf` form
/// field (URL-encoded forms).
pub(crate) fn check_csrf(headers: &HeaderMap, body: &[u8], expected: &str) -> bool {
    if let Some(token) = headers.get("x-csrf-token").and_then(|v| v.to_str().ok()) {
        return same_token(token, expected);
    }
    form_field(body, "csrf").is_some_and(|token| same_token(&token, expected))
}

/// The first value of `name` in a URL-encoded form.
pub(crate) fn form_field(body: &[u8], name: &str) -> Option<String> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == name)
        .map(|(_, value)| value.into_owned())
}

/// The operator whose session cookie this request carries, if it is open.
pub(crate) async fn signed_in(desk: &Desk, headers: &HeaderMap) -> Result<Option<Me>, String> {
    let Some(token) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    let hash = token_sha256(token);
    let session = desk
        .access()
        .session(&hash, SystemTime::now())
        .await
        .map_err(|e| e.to_string())?;
    Ok(session.map(|s| Me {
        name: s.operator,
        role: s.role,
        csrf: s.csrf,
        token_sha256: hash,
    }))
}

/// Counts login attempts per operator name, in one process, and refuses further ones past
/// [`MAX_FAILED_LOGINS`] failures in a [`LOGIN_WINDOW`]. An attempt is counted as failed
/// when it starts ([`LoginGuard::begin`]), before its password is verified, and given back
/// when it succeeds: attempts sent at once cannot outrun the count.
#[derive(Debug, Default)]
pub(crate) struct LoginGuard {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
    /// The last TOTP step each operator signed in with: a code is accepted once.
    totp_steps: Mutex<HashMap<String, u64>>,
}

impl LoginGuard {
    /// Starts an attempt for `name` (counted as failed until [`LoginGuard::succeeded`]), or
    /// `Err(wait)` when attempts for it are refused for now.
    pub(crate) fn begin(&self, name: &str) -> Result<(), Duration> {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        failures.retain(|_, (_, since)| now.duration_since(*since) < LOGIN_WINDOW);
        let (count, since) = failures.entry(name.to_owned()).or_insert((0, now));
        if *count >= MAX_FAILED_LOGINS {
            return Err(LOGIN_WINDOW.saturating_sub(now.duration_since(*since)));
        }
        *count += 1;
        Ok(())
    }

    /// Takes TOTP step `step` for `name`: `false` when it (or a later one) was used already
    /// (a code seen over a shoulder or in a proxy's log is not a second login).
    pub(crate) fn take_totp_step(&self, name: &str, step: u64) -> bool {
        let mut steps = self
            .totp_steps
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match steps.get(name) {
            Some(used) if *used >= step => false,
            _ => {
                steps.insert(name.to_owned(), step);
                true
            }
        }
    }

    /// Forgets the failures of `name` after a successful login (this attempt's included).
    pub(crate) fn succeeded(&self, name: &str) {
        let mut failures = self.failures.lock().unwrap_or_else(PoisonError::into_inner);
        failures.remove(name);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_and_verify() {
        assert!(matches!(
            hash_password("short"),
            Err(PasswordError::TooShort { chars: 5 })
        ));
        let hash = hash_password("correct horse battery").unwrap();
        assert!(hash.starts_with("$argon2id$"), "{hash}");
        assert!(verify_password(&hash, "correct horse battery"));
        assert!(!verify_password(&hash, "correct horse batterY"));
        assert!(!verify_password("not a hash", "correct horse battery"));
        assert!(!verify_password(decoy_hash(), "correct horse battery"));
        // Two hashes of one password differ (random salt).
        assert_ne!(hash, hash_password("correct horse battery").unwrap());
    }

    #[test]
    fn tokens_are_random_hex_and_compared_whole() {
        let (a, b) = (new_token().unwrap(), new_token().unwrap());
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
        assert!(same_token(&a, &a.clone()));
        assert!(!same_token(&a, &b));
        assert!(!same_token(&a, &a[..63]));
        assert!(!same_token("", ""), "an empty token never matches");
        assert_eq!(token_sha256("abc").len(), 64);
    }

    #[test]
    fn csrf_is_read_from_the_header_or_the_form() {
        let mut headers = HeaderMap::new();
        assert!(check_csrf(&headers, b"a=1&csrf=tok&b=2", "tok"));
        assert!(!check_csrf(&headers, b"a=1&csrf=other", "tok"));
        assert!(!check_csrf(&headers, b"a=1", "tok"));
        assert!(!check_csrf(&headers, b"\xff\xfe", "tok"));
        headers.insert("x-csrf-token", "tok".parse().unwrap());
        assert!(check_csrf(&headers, b"", "tok"));
        assert_eq!(form_field(b"x=%D0%B0+b", "x").as_deref(), Some("а b"));
    }

    #[test]
    fn cookies_are_found_by_name() {
        let mut headers = HeaderMap::new();
        headers.append(header::COOKIE, "a=1; rp_session=xyz".parse().unwrap());
        headers.append(header::COOKIE, "rp_login=q".parse().unwrap());
        assert_eq!(cookie(&headers, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&headers, LOGIN_COOKIE), Some("q"));
        assert_eq!(cookie(&headers, "rp"), None);
        let set = set_cookie(SESSION_COOKIE, "v", Some(60), true);
        assert_eq!(
            set,
            "rp_session=v; HttpOnly; SameSite=Strict; Path=/; Secure; Max-Age=60"
        );
    }

    #[test]
    fn guessing_is_stopped_per_name() {
        let guard = LoginGuard::default();
        for _ in 0..MAX_FAILED_LOGINS {
            assert!(guard.begin("anna").is_ok());
        }
        assert!(guard.begin("anna").is_err(), "counted when they start");
        assert!(guard.begin("bob").is_ok(), "another name is not locked");
        guard.succeeded("bob");
        assert!(guard.begin("bob").is_ok());
        assert!(guard.take_totp_step("bob", 7));
        assert!(!guard.take_totp_step("bob", 7), "a code works once");
        assert!(!guard.take_totp_step("bob", 6));
        assert!(guard.take_totp_step("bob", 8));
    }
}
