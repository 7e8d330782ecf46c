//! The JSON API under `/api/v1`, for backends in any language: exactly-once payouts with one
//! HTTP call. Keys (`Authorization: Bearer rpk_…`) are made with `rp serve add-api-key NAME
//! --role pay|read`, kept in the ledger as their SHA-256, revocable, rate-limited per key;
//! errors are RFC 9457 problem details. The `OpenAPI` 3.1 document is `/api/v1/openapi.json`
//! ([`openapi::document`], committed as `crates/rp-console/openapi.json`).

// Handlers stop early with a finished answer (`Err(Response)`), as the console's do.
#![allow(clippy::result_large_err)]

mod batches;
pub(crate) mod body;
pub(crate) mod openapi;
pub(crate) mod payouts;
mod webhooks;

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rp_ledger::Role;
use serde_json::{Value, json};

use crate::Desk;
use crate::auth::{same_token, token_sha256};

/// The prefix of every key (so a leaked one is easy to recognise in a scan).
pub const API_KEY_PREFIX: &str = "rpk_";

/// Requests a key may make per second, on average.
pub const KEY_RATE: u32 = 20;

/// Requests a key may make at once, above the rate.
pub const KEY_BURST: u32 = 40;

/// `POST /api/v1/payouts?wait=` answers held at once, for every key together; past that, the
/// answer comes at once (the connections they hold are shared with the console and, on one
/// listener, the platform's callbacks).
pub const MAX_WAITERS: usize = 64;

/// A new API key: [`API_KEY_PREFIX`] and 64 random hex digits.
///
/// # Errors
///
/// When the operating system gives no random bytes.
pub fn new_api_key() -> Result<String, String> {
    Ok(format!("{API_KEY_PREFIX}{}", crate::auth::new_token()?))
}

/// The SHA-256 the ledger keeps of a key.
pub fn api_key_sha256(key: &str) -> String {
    token_sha256(key)
}

/// The key of a request, as it is allowed to act.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The key's name.
    pub(crate) name: String,
    /// What it may do.
    pub(crate) role: Role,
}

impl Caller {
    /// The history's source for what this key does: `operator:api:NAME`.
    pub(crate) fn source(&self) -> rp_payout::EventSource {
        rp_payout::EventSource::Operator(format!("api:{}", self.name))
    }
}

/// The API's routes but [`batch_upload_router`]'s.
pub(crate) fn router(desk: Desk) -> Router<Desk> {
    let keyed = Router::new()
        .route("/api/v1/payouts", get(payouts::list).post(payouts::create))
        .route("/api/v1/payouts/{payment_id}", get(payouts::show))
        .route("/api/v1/payouts/{payment_id}/events", get(payouts::events))
        .route(
            "/api/v1/payouts/{payment_id}/deliveries",
            get(webhooks::deliveries),
        )
        .route(
            "/api/v1/payouts/{payment_id}/deliveries/replay",
            post(webhooks::replay),
        )
        .route("/api/v1/batches/{id}", get(batches::show))
        .route("/api/v1/batches/{id}/report.csv", get(batches::report))
        .route("/api/v1/webhooks", get(webhooks::list))
        .route("/api/v1/webhooks/{id}/enable", post(webhooks::enable))
        .route("/api/v1/operators", get(webhooks::operators))
        .route("/api/v1/limits", get(payouts::limits))
        .route_layer(middleware::from_fn_with_state(desk, require_key));
    Router::new()
        .route("/api/v1/openapi.json", get(openapi::serve))
        .merge(keyed)
}

/// `POST /api/v1/batches`: apart from the other routes because it reads its own body (a file
/// up to the upload size, in its own time), where every other request's body is read whole,
/// small and in time, before its handler runs.
pub(crate) fn batch_upload_router(desk: Desk) -> Router<Desk> {
    Router::new()
        .route("/api/v1/batches", post(batches::create))
        .route_layer(middleware::from_fn_with_state(desk, require_key))
}

/// An RFC 9457 problem: `kind` is the last part of its `type`.
pub(crate) fn problem(
    status: StatusCode,
    kind: &str,
    detail: &str,
    errors: Option<Value>,
) -> Response {
    let mut body = json!({
        "type": format!("urn:rp:problem:{kind}"),
        "title": status.canonical_reason().unwrap_or("Error"),
        "status": status.as_u16(),
        "detail": detail,
    });
    if let Some(errors) = errors {
        body["errors"] = errors;
    }
    let mut response = (status, body.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/problem+json"),
    );
    response
}

/// Turns an error answer of an `/api/` path that is not a problem already (a body too large,
/// a query or path axum could not read, a method not allowed) into one, keeping its status.
pub(crate) async fn problems_only(request: Request, next: Next) -> Response {
    let api = request.uri().path().starts_with("/api/");
    let response = next.run(request).await;
    let status = response.status();
    let is_problem = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/problem+json"));
    if !api || status.as_u16() < 400 || is_problem {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 4096).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&text).trim().to_owned();
    let detail = if detail.is_empty() {
        status.canonical_reason().unwrap_or("error").to_owned()
    } else {
        detail
    };
    let mut answer = problem(status, "http", &detail, None);
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            answer.headers_mut().insert(name.clone(), value.clone());
        }
    }
    answer
}

/// A JSON answer.
pub(crate) fn json_answer(status: StatusCode, value: &Value) -> Response {
    let mut response = (status, value.to_string()).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Finds the request's key (`Authorization: Bearer KEY`): 401 without a valid, unrevoked one;
/// 429 past its rate (with `Retry-After`). The key's role is checked by each handler. Guards
/// `/metrics` too (any role).
pub(crate) async fn require_key(
    State(desk): State<Desk>,
    mut request: Request,
    next: Next,
) -> Response {
    let Some(key) = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().split_once([' ', '\t']))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, key)| key.trim())
    else {
        return unauthorized("send the API key as `Authorization: Bearer KEY`");
    };
    let hash = api_key_sha256(key);
    let found = match desk.access().api_key(&hash).await {
        Ok(found) => found,
        Err(error) => {
            tracing::error!(%error, "API: the ledger failed reading a key");
            return problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "ledger-unavailable",
                "The ledger did not answer; try again.",
                None,
            );
        }
    };
    // Found by its hash; the hash compared again in constant time all the same.
    let Some(found) = found.filter(|k| same_token(&k.key_sha256, &hash)) else {
        return unauthorized("unknown API key");
    };
    if found.revoked_at.is_some() {
        tracing::warn!(key = %found.name, "API: a revoked key was used");
        return unauthorized("this API key was revoked");
    }
    if let Err(wait) = desk.api_limiter().take(&found.name) {
        let mut response = problem(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            &format!(
                "more than {} requests a second with this key; slow down",
                desk.api_limiter().rate()
            ),
            None,
        );
        if let Ok(value) = HeaderValue::from_str(&wait.to_string()) {
            response.headers_mut().insert(header::RETRY_AFTER, value);
        }
        return response;
    }
    request.extensions_mut().insert(Caller {
        name: found.name,
        role: found.role,
    });
    next.run(request).await
}

fn unauthorized(detail: &str) -> Response {
    let mut response = problem(StatusCode::UNAUTHORIZED, "unauthorized", detail, None);
    response.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"rp\""),
    );
    response
}

/// 403 unless the key may pay.
pub(crate) fn require_pay(caller: &Caller) -> Result<(), Response> {
    if caller.role.may_pay() {
        return Ok(());
    }
    Err(problem(
        StatusCode::FORBIDDEN,
        "forbidden",
        "this API key has the role \"read\": it cannot pay",
        None,
    ))
}

/// A token bucket per key, in one process: `rate` a second, twice that at once (by default
/// [`KEY_RATE`] and [`KEY_BURST`]).
#[derive(Debug)]
pub(crate) struct KeyLimiter {
    rate: u32,
    burst: u32,
    buckets: Mutex<HashMap<String, (f64, Instant)>>,
}

impl Default for KeyLimiter {
    fn default() -> Self {
        KeyLimiter::new(KEY_RATE)
    }
}

impl KeyLimiter {
    /// `rate` requests a second per key (at least 1), bursts of twice that.
    pub(crate) fn new(rate: u32) -> KeyLimiter {
        let rate = rate.max(1);
        KeyLimiter {
            rate,
            burst: rate.saturating_mul(2),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Requests a second per key.
    pub(crate) fn rate(&self) -> u32 {
        self.rate
    }

    /// Takes a request's token for `key`, or `Err(seconds to wait)`.
    pub(crate) fn take(&self, key: &str) -> Result<(), u64> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let (tokens, last) = buckets
            .entry(key.to_owned())
            .or_insert((f64::from(self.burst), now));
        let refill = now.duration_since(*last).as_secs_f64() * f64::from(self.rate);
        *tokens = (*tokens + refill).min(f64::from(self.burst));
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            Ok(())
        } else {
            Err(1)
        }
    }
}

/// `2026-11-27T10:00:00Z`.
pub(crate) fn rfc3339(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let gate = rp_model::GateTime::from_unix_seconds(i64::try_from(seconds).unwrap_or(0));
    format!("{}Z", gate.as_str().trim_end_matches("+0000"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_prefixed_random_and_hashed() {
        let (a, b) = (new_api_key().unwrap(), new_api_key().unwrap());
        assert!(a.starts_with("rpk_") && a.len() == 68, "{a}");
        assert_ne!(a, b);
        assert_eq!(api_key_sha256(&a).len(), 64);
        assert_ne!(api_key_sha256(&a), api_key_sha256(&b));
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let limiter = KeyLimiter::default();
        for _ in 0..KEY_BURST {
            assert!(limiter.take("k").is_ok());
        }
        assert_eq!(limiter.take("k"), Err(1));
        assert!(limiter.take("other").is_ok(), "per key");
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00Z");
    }
}
