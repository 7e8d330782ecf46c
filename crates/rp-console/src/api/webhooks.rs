//! `GET /api/v1/webhooks` (the endpoints, never their secrets), `POST
//! /api/v1/webhooks/{id}/enable`, `GET /api/v1/payouts/{payment_id}/deliveries` (each event's
//! delivery and its log), `POST /api/v1/payouts/{payment_id}/deliveries/replay`, and `GET
//! /api/v1/operators` (the mobile operators a payout can go to).

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use rp_ledger::{DeliveryInfo, WebhookEndpoint};
use rp_model::{Operator, PrefixInfo};
use serde_json::{Value, json};

use super::payouts::{found, ledger_failed, payment_id};
use super::{Caller, json_answer, problem, require_pay, rfc3339};
use crate::Desk;
use crate::webhooks::message::message_id;
use crate::webhooks::shown_url;

/// An endpoint as the API shows it: no secret; its URL whole only to a `pay` key.
pub(crate) fn endpoint_json(endpoint: &WebhookEndpoint, caller: &Caller) -> Value {
    json!({
        "id": endpoint.id,
        "url": shown_url(&endpoint.url, caller.role.may_pay()),
        "enabled": endpoint.enabled(),
        "disabled_at": endpoint.disabled_at.map(rfc3339),
        "disabled_reason": endpoint.disabled_reason,
        "pending": endpoint.pending,
        "failed": endpoint.failed,
        "created_at": rfc3339(endpoint.created_at),
    })
}

fn delivery_json(desk: &Desk, delivery: &DeliveryInfo, caller: &Caller) -> Value {
    let attempts: Vec<Value> = delivery
        .attempts
        .iter()
        .map(|a| {
            json!({
                "at": rfc3339(a.at),
                "status": a.status,
                "error": a.error,
                "took_ms": u64::try_from(a.took.as_millis()).unwrap_or(u64::MAX),
            })
        })
        .collect();
    json!({
        "endpoint": delivery.key.endpoint,
        "url": shown_url(&delivery.url, caller.role.may_pay()),
        "version": delivery.key.version,
        "webhook_id": message_id(
            desk.client().project_id(),
            delivery.key.payment_id.as_str(),
            delivery.key.version,
        ),
        "state": delivery.state.as_str(),
        "created_at": rfc3339(delivery.created_at),
        "next_attempt_at": delivery.next_attempt_at.map(rfc3339),
        "delivered_at": delivery.delivered_at.map(rfc3339),
        "attempts": attempts,
    })
}

/// `GET /api/v1/webhooks`.
pub(crate) async fn list(
    State(desk): State<Desk>,
    Extension(caller): Extension<Caller>,
) -> Response {
    match desk.webhooks().endpoints().await {
        Ok(endpoints) => {
            let data: Vec<Value> = endpoints
                .iter()
                .map(|e| endpoint_json(e, &caller))
                .collect();
            json_answer(StatusCode::OK, &json!({ "data": data }))
        }
        Err(error) => ledger_failed(&error),
    }
}

/// `POST /api/v1/webhooks/{id}/enable`: sends what waited for it, its schedule anew.
pub(crate) async fn enable(
    State(desk): State<Desk>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = require_pay(&caller) {
        return response;
    }
    let not_found = || {
        problem(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("no webhook endpoint {id}"),
            None,
        )
    };
    let Ok(number) = id.parse::<i64>() else {
        return not_found();
    };
    match desk.webhooks().set_disabled(number, None).await {
        Ok(true) => {}
        Ok(false) => return not_found(),
        Err(error) => return ledger_failed(&error),
    }
    tracing::info!(endpoint = number, key = %caller.name, "API: webhook endpoint enabled");
    desk.wake_webhooks();
    match desk.webhooks().endpoints().await {
        Ok(endpoints) => match endpoints.iter().find(|e| e.id == number) {
            Some(endpoint) => json_answer(StatusCode::OK, &endpoint_json(endpoint, &caller)),
            None => not_found(),
        },
        Err(error) => ledger_failed(&error),
    }
}

/// `GET /api/v1/payouts/{payment_id}/deliveries`.
pub(crate) async fn deliveries(
    State(desk): State<Desk>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
) -> Response {
    let id = match payment_id(&id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    if let Err(response) = found(&desk, &id).await {
        return response;
    }
    match desk.webhooks().deliveries(&id).await {
        Ok(deliveries) => {
            let data: Vec<Value> = deliveries
                .iter()
                .map(|d| delivery_json(&desk, d, &caller))
                .collect();
            json_answer(StatusCode::OK, &json!({ "data": data }))
        }
        Err(error) => ledger_failed(&error),
    }
}

/// `POST /api/v1/payouts/{payment_id}/deliveries/replay`, body `{}` or with `version` and/or
/// `endpoint`: those events sent again (same `webhook-id`), written into the payout's history
/// with the key's name.
pub(crate) async fn replay(
    State(desk): State<Desk>,
    Extension(caller): Extension<Caller>,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(response) = require_pay(&caller) {
        return response;
    }
    let id = match payment_id(&id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    let (version, endpoint) = match replay_body(&body) {
        Ok(parsed) => parsed,
        Err(errors) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                "the replay request is not valid",
                Some(Value::Array(errors)),
            );
        }
    };
    if let Err(response) = found(&desk, &id).await {
        return response;
    }
    let queued = match desk.webhooks().replay(&id, version, endpoint).await {
        Ok(queued) => queued,
        Err(error) => return ledger_failed(&error),
    };
    if queued == 0 {
        return problem(
            StatusCode::NOT_FOUND,
            "not-found",
            "no such event (a state change of this payout) or endpoint",
            None,
        );
    }
    let note = match version {
        Some(version) => format!("webhook of version {version} sent again ({queued} deliveries)"),
        None => format!("webhooks sent again ({queued} deliveries)"),
    };
    if let Err(error) = desk.client().note(&id, caller.source(), note).await {
        return ledger_failed(&error);
    }
    desk.wake_webhooks();
    json_answer(StatusCode::ACCEPTED, &json!({ "queued": queued }))
}

/// `version` and `endpoint` of a replay body (empty: everything), or every field's problem.
fn replay_body(body: &[u8]) -> Result<(Option<u64>, Option<i64>), Vec<Value>> {
    let field = |name: &str, message: &str| json!({"field": name, "message": message});
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok((None, None));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![field("", &format!("the body is not JSON: {e}"))])?;
    let Some(object) = value.as_object() else {
        return Err(vec![field("", "the body is a JSON object")]);
    };
    let mut errors = Vec::new();
    for name in object.keys() {
        if name != "version" && name != "endpoint" {
            errors.push(field(
                name,
                "unknown member: version and endpoint are taken",
            ));
        }
    }
    let version = match object.get("version") {
        None | Some(Value::Null) => None,
        Some(v) => v.as_u64().or_else(|| {
            errors.push(field("version", "a whole number from 0"));
            None
        }),
    };
    let endpoint = match object.get("endpoint") {
        None | Some(Value::Null) => None,
        Some(v) => v.as_i64().filter(|n| *n > 0).or_else(|| {
            errors.push(field("endpoint", "an endpoint's number"));
            None
        }),
    };
    if errors.is_empty() {
        Ok((version, endpoint))
    } else {
        Err(errors)
    }
}

/// `GET /api/v1/operators`: the mobile operators payouts go to, with the prefixes originally
/// allocated to each (a hint only: numbers move between operators).
pub(crate) async fn operators() -> Response {
    let data: Vec<Value> = Operator::KNOWN
        .iter()
        .map(|operator| {
            let prefixes: Vec<&str> = PrefixInfo::all()
                .iter()
                .filter(|info| info.operators.contains(operator))
                .map(|info| info.prefix)
                .collect();
            json!({"id": operator.id(), "name": operator.name(), "prefixes": prefixes})
        })
        .collect();
    json_answer(
        StatusCode::OK,
        &json!({
            "data": data,
            "note": "Prefixes are those originally allocated; since 2016 a number may have moved to another operator. The platform reports the real one.",
        }),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_replay_body_is_checked_member_by_member() {
        assert_eq!(replay_body(b"").unwrap(), (None, None));
        assert_eq!(replay_body(b"{}").unwrap(), (None, None));
        assert_eq!(
            replay_body(br#"{"version": 3, "endpoint": 2}"#).unwrap(),
            (Some(3), Some(2))
        );
        let errors = replay_body(br#"{"version": -1, "endpoint": "x", "all": true}"#).unwrap_err();
        let fields: Vec<&str> = errors.iter().filter_map(|e| e["field"].as_str()).collect();
        assert_eq!(fields, ["all", "version", "endpoint"]);
        assert!(replay_body(b"[1]").is_err());
        assert!(replay_body(b"{").is_err());
    }
}
