//! The `/_sim/` control and inspection endpoints (not part of the Gate API).

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::server::Shared;
use crate::{Error, Magic, Outcome, lifecycle};

fn problem(http: StatusCode, message: &str) -> Response {
    (http, Json(json!({"status": "error", "message": message}))).into_response()
}

/// `GET /_sim/config`: what the simulator was started with (never the keys).
pub(crate) async fn config(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let magic: Vec<Value> = Magic::ALL
        .iter()
        .map(|m| json!({"digits": m.digits(), "name": m}))
        .collect();
    Json(json!({
        "project_ids": shared.project_ids,
        "callback_url": shared.default_callback_url,
        "amount_limit": shared.amount_limit,
        "limits": shared.limits,
        "processing_delay_ms": shared.processing_delay.as_millis(),
        "slow_delay_ms": shared.slow_delay.as_millis(),
        "time_scale": shared.time_scale,
        "seed": shared.seed,
        "status_lag_ms": shared.status_lag().as_millis(),
        "not_found_404": shared.not_found_404(),
        "body_limit": shared.body_limit,
        "header_read_timeout_ms": shared.header_read_timeout.as_millis(),
        "body_read_timeout_ms": shared.body_read_timeout.as_millis(),
        "max_connections": shared.max_connections,
        "magic": magic,
    }))
}

/// What `POST /_sim/config` may change at run time.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Settings {
    /// The status lag in milliseconds of real time.
    status_lag_ms: Option<u64>,
    /// Whether 3061 is the unsigned HTTP 404 envelope.
    not_found_404: Option<bool>,
}

/// `POST /_sim/config` `{"status_lag_ms": N, "not_found_404": bool}` (either member may be
/// left out): changes them from now on and answers the whole configuration.
pub(crate) async fn set_config(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let settings: Settings = match serde_json::from_slice(&body) {
        Ok(settings) => settings,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the body must be {{\"status_lag_ms\":N,\"not_found_404\":true|false}} (either may be left out): {error}"
                ),
            );
        }
    };
    if let Some(ms) = settings.status_lag_ms {
        shared.set_status_lag(std::time::Duration::from_millis(ms));
    }
    if let Some(on) = settings.not_found_404 {
        shared.set_not_found_404(on);
    }
    tracing::info!(
        status_lag_ms = settings.status_lag_ms,
        not_found_404 = settings.not_found_404,
        "rp-sim settings changed"
    );
    config(State(shared)).await.into_response()
}

/// `GET /_sim/payments`.
pub(crate) async fn payments(State(shared): State<Arc<Shared>>) -> Response {
    let payments: Vec<_> = shared
        .state()
        .payments
        .iter()
        .map(|entry| entry.payment.clone())
        .collect();
    Json(payments).into_response()
}

/// `GET /_sim/payments/{payment_id}`.
pub(crate) async fn payment(
    State(shared): State<Arc<Shared>>,
    Path(payment_id): Path<String>,
) -> Response {
    let found = shared
        .state()
        .find(&payment_id)
        .map(|entry| entry.payment.clone());
    match found {
        Some(payment) => Json(payment).into_response(),
        None => problem(
            StatusCode::NOT_FOUND,
            &Error::UnknownPayment { payment_id }.to_string(),
        ),
    }
}

/// `POST /_sim/payments/{payment_id}/force` with `{"status":"success"}` or
/// `{"status":"decline","code":"20000"}`.
pub(crate) async fn force(
    State(shared): State<Arc<Shared>>,
    Path(payment_id): Path<String>,
    body: Bytes,
) -> Response {
    let outcome: Outcome = match serde_json::from_slice(&body) {
        Ok(outcome) => outcome,
        Err(error) => {
            return problem(
                StatusCode::BAD_REQUEST,
                &format!(
                    "the body must be {{\"status\":\"success\"}} or {{\"status\":\"decline\",\"code\":\"20000\"}}: {error}"
                ),
            );
        }
    };
    match lifecycle::force(&shared, &payment_id, outcome) {
        Ok(payment) => Json(payment).into_response(),
        Err(error @ Error::UnknownPayment { .. }) => {
            problem(StatusCode::NOT_FOUND, &error.to_string())
        }
        Err(error) => problem(StatusCode::CONFLICT, &error.to_string()),
    }
}

/// `GET /_sim/requests`.
pub(crate) async fn requests(State(shared): State<Arc<Shared>>) -> Response {
    let requests = shared.state().requests.clone();
    Json(requests).into_response()
}

/// `GET /_sim/callbacks`.
pub(crate) async fn callbacks(State(shared): State<Arc<Shared>>) -> Response {
    let callbacks = shared.state().callbacks.clone();
    Json(callbacks).into_response()
}

/// `GET /_sim/limits`: the project limits (tiyn and counts; `null` when not set), the rolling
/// windows in real milliseconds, and what each project uses of them now.
pub(crate) async fn limits(State(shared): State<Arc<Shared>>) -> Json<Value> {
    let usage: Vec<Value> = shared
        .project_ids
        .iter()
        .map(|&project_id| {
            let mut item = json!(shared.limit_usage(project_id));
            if let Some(object) = item.as_object_mut() {
                object.insert("project_id".to_owned(), json!(project_id));
            }
            item
        })
        .collect();
    let windows = shared.limit_windows;
    Json(json!({
        "limits": shared.limits,
        "windows_ms": {
            "day": windows.day.as_millis(),
            "week": windows.week.as_millis(),
            "month": windows.month.as_millis(),
        },
        "usage": usage,
    }))
}

/// `POST /_sim/reset`.
pub(crate) async fn reset(State(shared): State<Arc<Shared>>) -> Json<Value> {
    lifecycle::reset(&shared);
    Json(json!({"status": "ok"}))
}
