//! `POST /api/v1/payouts` (exactly once: the payment ID is the idempotency key), `GET
//! /api/v1/payouts/{payment_id}`, `GET /api/v1/payouts` (keyset pages), `GET
//! /api/v1/payouts/{payment_id}/events`, `GET /api/v1/limits`.

use std::time::{Duration, UNIX_EPOCH};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rp_model::{LimitKind, PaymentId};
use rp_payout::{PayoutEvent, PayoutQuery, PayoutRecord};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::body::{field_error, metadata_json, read_payout};
use super::{Caller, json_answer, problem, require_pay, rfc3339};
use crate::Desk;
use crate::submit::{self, NotSubmitted, Submitted};

/// The longest `?wait=` in seconds.
pub(crate) const MAX_WAIT: u64 = 60;

/// Payouts in a page of `GET /api/v1/payouts`, by default and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// A payout as the API shows it; `masked`: the phone number masked (lists).
pub(crate) fn payout_json(record: &PayoutRecord, masked: bool) -> Value {
    let request = &record.request;
    let payment = &request.payment;
    let phone = if masked {
        crate::web::layout::masked_phone(record)
    } else {
        request.account.number.clone()
    };
    json!({
        "payment_id": record.payment_id.as_str(),
        "state": record.state.label(),
        "settled": record.state.is_settled(),
        "attention": record.attention,
        "phone": phone,
        "amount": crate::web::layout::decimal_amount(record),
        "amount_minor": payment.amount,
        "currency": payment.currency,
        "customer_id": request.customer.id.to_string(),
        "description": payment.description,
        "code": record.last_code.as_ref().map(ToString::to_string),
        "message": record.last_message,
        "request_id": record.request_id,
        "attempts": record.attempts,
        "created_at": rfc3339(record.created_at),
        "updated_at": rfc3339(record.updated_at),
        "metadata": metadata_json(record.metadata.as_deref()),
    })
}

/// `?wait=SECONDS`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Wait {
    wait: Option<String>,
}

/// `POST /api/v1/payouts`: 202 with the new payout (recorded, being sent); 200 with the payout
/// as it stands when the same payout was already recorded under its ID; 409 when another was;
/// 422 with every field's problem.
pub(crate) async fn create(
    State(desk): State<Desk>,
    Extension(caller): Extension<Caller>,
    Query(wait): Query<Wait>,
    body: Bytes,
) -> Response {
    if let Err(response) = require_pay(&caller) {
        return response;
    }
    let wait = match wait.wait.as_deref().map(str::parse::<u64>) {
        None => 0,
        Some(Ok(seconds)) if seconds <= MAX_WAIT => seconds,
        Some(_) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                &format!("wait: a whole number of seconds, 0 to {MAX_WAIT}"),
                Some(json!([field_error("wait", format!("0 to {MAX_WAIT}"))])),
            );
        }
    };
    let (payout, metadata) = match read_payout(&body) {
        Ok(read) => read,
        Err(errors) => {
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                "validation",
                "the payout is not valid; nothing was recorded or sent",
                Some(Value::Array(errors)),
            );
        }
    };
    let payment_id = payout.payment_id().clone();
    let submitted = submit::submit(&desk, payout, caller.source(), metadata).await;
    let (status, record) = match submitted {
        Ok(Submitted::Existing(record)) => (StatusCode::OK, Some(record)),
        Ok(Submitted::New(record)) => {
            tracing::info!(key = %caller.name, payment_id = %payment_id, "payout from the API");
            (StatusCode::ACCEPTED, record)
        }
        Err(NotSubmitted::Conflict(holder)) => {
            return problem(
                StatusCode::CONFLICT,
                "payment-id-conflict",
                &submit::held(&holder, &payment_id),
                None,
            );
        }
        Err(NotSubmitted::Held(error)) => {
            return problem(
                StatusCode::CONFLICT,
                "payment-id-conflict",
                &error.to_string(),
                None,
            );
        }
        Err(NotSubmitted::Refused(error)) => {
            let kind = if matches!(error, rp_payout::Error::OverLimit { .. }) {
                "over-limit"
            } else {
                "refused"
            };
            return problem(
                StatusCode::UNPROCESSABLE_ENTITY,
                kind,
                &submit::refusal(&error),
                None,
            );
        }
        Err(NotSubmitted::Ledger(error)) => return ledger_failed(&error),
        Err(NotSubmitted::NotYetRecorded(wait)) => {
            return not_yet_recorded(&payment_id, wait);
        }
    };
    // At most MAX_WAITERS answers are held at once: past that, the answer comes at once.
    let waiting = (wait > 0)
        .then(|| desk.api_waiters().try_acquire_owned().ok())
        .flatten();
    let record = if waiting.is_some() {
        settled_within(&desk, &payment_id, Duration::from_secs(wait)).await
    } else {
        record
    };
    drop(waiting);
    match record {
        Some(record) => json_answer(status, &payout_json(&record, false)),
        None => match desk.client().store().get(&payment_id).await {
            Ok(Some(record)) => json_answer(status, &payout_json(&record, false)),
            // Never answered as recorded before the ledger has it.
            Ok(None) => not_yet_recorded(&payment_id, desk.settings().record_wait),
            Err(error) => ledger_failed(&error),
        },
    }
}

/// The payout once it is settled, or as it stands when `limit` has passed or the process
/// began to shut down (a held answer must not hold the shutdown's grace).
async fn settled_within(desk: &Desk, id: &PaymentId, limit: Duration) -> Option<PayoutRecord> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let record = desk.client().store().get(id).await.ok().flatten();
        if record.as_ref().is_some_and(|r| r.state.is_settled())
            || tokio::time::Instant::now() >= deadline
            || desk.is_stopping()
        {
            return record;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

pub(crate) fn ledger_failed(error: &rp_payout::Error) -> Response {
    tracing::error!(%error, "API: the ledger failed");
    problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "ledger-unavailable",
        "The ledger did not answer; nothing was changed by this request. Try again.",
        None,
    )
}

/// 503 `not-yet-recorded`: the ledger may still record (and send) the payout; the same
/// request again tells.
fn not_yet_recorded(payment_id: &PaymentId, wait: Duration) -> Response {
    tracing::warn!(payment_id = %payment_id, "API: the ledger has not recorded the payout in time; it may still");
    let mut response = problem(
        StatusCode::SERVICE_UNAVAILABLE,
        "not-yet-recorded",
        &submit::not_yet_recorded(payment_id, wait),
        None,
    );
    response.headers_mut().insert(
        axum::http::header::RETRY_AFTER,
        axum::http::HeaderValue::from_static("1"),
    );
    response
}

pub(crate) fn payment_id(text: &str) -> Result<PaymentId, Response> {
    PaymentId::new(text)
        .map_err(|e| problem(StatusCode::NOT_FOUND, "not-found", &e.to_string(), None))
}

pub(crate) async fn found(desk: &Desk, id: &PaymentId) -> Result<PayoutRecord, Response> {
    match desk.client().store().get(id).await {
        Ok(Some(record)) => Ok(record),
        Ok(None) => Err(problem(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("no payout {id}"),
            None,
        )),
        Err(error) => Err(ledger_failed(&error)),
    }
}

/// `GET /api/v1/payouts/{payment_id}`.
pub(crate) async fn show(State(desk): State<Desk>, Path(id): Path<String>) -> Response {
    let id = match payment_id(&id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    match found(&desk, &id).await {
        Ok(record) => json_answer(StatusCode::OK, &payout_json(&record, false)),
        Err(response) => response,
    }
}

/// `GET /api/v1/payouts/{payment_id}/events`: the history, oldest first.
pub(crate) async fn events(State(desk): State<Desk>, Path(id): Path<String>) -> Response {
    let id = match payment_id(&id) {
        Ok(id) => id,
        Err(response) => return response,
    };
    if let Err(response) = found(&desk, &id).await {
        return response;
    }
    match desk.client().store().events(&id).await {
        Ok(events) => {
            let data: Vec<Value> = events.iter().map(event_json).collect();
            json_answer(StatusCode::OK, &json!({ "data": data }))
        }
        Err(error) => ledger_failed(&error),
    }
}

fn event_json(event: &PayoutEvent) -> Value {
    json!({
        "at": rfc3339(event.at),
        "source": event.source.as_text(),
        "previous": event.previous.as_ref().map(|p| p.label().to_owned()),
        "state": event.state.label(),
        "code": event.code.as_ref().map(ToString::to_string),
        "message": event.message,
        "note": event.note,
        "raw": event.raw,
    })
}

/// The query of `GET /api/v1/payouts`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ListQuery {
    state: Option<String>,
    since: Option<String>,
    source: Option<String>,
    batch: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// `GET /api/v1/payouts?state=&since=&cursor=&limit=`: newest first, keyset pages
/// (`next_cursor`), phone numbers masked.
pub(crate) async fn list(State(desk): State<Desk>, Query(q): Query<ListQuery>) -> Response {
    let mut errors = Vec::new();
    let limit = match q.limit.as_deref().map(str::parse::<usize>) {
        None => PAGE,
        Some(Ok(n)) if (1..=MAX_PAGE).contains(&n) => n,
        Some(_) => {
            errors.push(field_error("limit", format!("1 to {MAX_PAGE}")));
            PAGE
        }
    };
    if let Some(batch) = q.batch.as_deref().filter(|b| !b.is_empty()) {
        return batch_list(&desk, &q, batch, limit, errors).await;
    }
    let mut query = PayoutQuery::new().limit(limit);
    if let Some(source) = q.source.as_deref().filter(|s| !s.is_empty()) {
        match source.parse::<rp_payout::PayoutOrigin>() {
            Ok(origin) => query = query.source(origin),
            Err(error) => errors.push(field_error("source", error.to_string())),
        }
    }
    if let Some(state) = q.state.as_deref().filter(|s| !s.is_empty()) {
        query = query.state(state);
    }
    if let Some(since) = q.since.as_deref().filter(|s| !s.is_empty()) {
        match rp_model::GateTime::new(since.trim())
            .unix_seconds()
            .ok()
            .and_then(|s| u64::try_from(s).ok())
        {
            Some(seconds) => {
                query = query.between(Some(UNIX_EPOCH + Duration::from_secs(seconds)), None);
            }
            None => errors.push(field_error("since", "a time as 2026-11-27T10:00:00Z")),
        }
    }
    if let Some(cursor) = q.cursor.as_deref().filter(|c| !c.is_empty()) {
        match read_cursor(cursor) {
            Some(after) => query.after = Some(after),
            None => errors.push(field_error("cursor", "not a cursor this API gave")),
        }
    }
    if !errors.is_empty() {
        return invalid_query(errors);
    }
    match desk.client().store().list(&query).await {
        Ok(page) => {
            let next = (page.len() == limit)
                .then(|| page.last().map(write_cursor))
                .flatten();
            let data: Vec<Value> = page.iter().map(|r| payout_json(r, true)).collect();
            json_answer(StatusCode::OK, &json!({"data": data, "next_cursor": next}))
        }
        Err(error) => ledger_failed(&error),
    }
}

/// `GET /api/v1/payouts?batch=ID`: the batch's payouts in file order; the cursor is a row
/// number; `state`, `since` and `source` do not apply (refused, not ignored).
async fn batch_list(
    desk: &Desk,
    q: &ListQuery,
    batch: &str,
    limit: usize,
    mut errors: Vec<Value>,
) -> Response {
    for (name, given) in [
        ("state", &q.state),
        ("since", &q.since),
        ("source", &q.source),
    ] {
        if given.as_deref().is_some_and(|v| !v.is_empty()) {
            errors.push(field_error(
                name,
                "does not apply with batch (its payouts in file order)",
            ));
        }
    }
    let after = q.cursor.as_deref().unwrap_or_default();
    if !after.is_empty() && after.parse::<u64>().is_err() {
        errors.push(field_error("cursor", "not a cursor this API gave"));
    }
    if !errors.is_empty() {
        return invalid_query(errors);
    }
    match crate::batch_page::batch_page(desk, batch, after, limit).await {
        Ok((page, next)) => {
            let data: Vec<Value> = page.iter().map(|r| payout_json(r, true)).collect();
            json_answer(StatusCode::OK, &json!({"data": data, "next_cursor": next}))
        }
        Err(crate::batch_page::BatchPage::Bad(detail)) => problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            &detail,
            Some(json!([field_error("batch", detail.clone())])),
        ),
        Err(crate::batch_page::BatchPage::Ledger(error)) => ledger_failed(&error),
    }
}

/// 422: the query's problems, each field's.
fn invalid_query(errors: Vec<Value>) -> Response {
    problem(
        StatusCode::UNPROCESSABLE_ENTITY,
        "validation",
        "the query is not valid",
        Some(Value::Array(errors)),
    )
}

/// A cursor: the last row's time in nanoseconds and payment ID, hex-encoded (opaque).
fn write_cursor(record: &PayoutRecord) -> String {
    let nanos = record
        .created_at
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    crate::auth::hex(format!("{nanos}.{}", record.payment_id).as_bytes())
}

fn read_cursor(text: &str) -> Option<(std::time::SystemTime, PaymentId)> {
    // A payment ID of 1,020 bytes and a time: about 2,100 hex digits.
    if !text.len().is_multiple_of(2) || text.len() > 4_200 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
        .collect();
    let text = String::from_utf8(bytes?).ok()?;
    let (nanos, id) = text.split_once('.')?;
    let nanos: u64 = nanos.parse().ok()?;
    Some((
        UNIX_EPOCH + Duration::from_nanos(nanos),
        PaymentId::new(id).ok()?,
    ))
}

/// `GET /api/v1/limits`: the configured limits and what each rolling window has used.
pub(crate) async fn limits(State(desk): State<Desk>) -> Response {
    let limits = desk.client().config().limits;
    match desk.client().store().usage(limits.currency).await {
        Ok(usage) => {
            let mut out = Map::new();
            for kind in LimitKind::ALL {
                let used = kind.period().map(|_| usage.of(kind));
                out.insert(
                    kind.key().to_owned(),
                    json!({"limit": limits.get(kind), "used": used,
                           "left": limits.get(kind).zip(used).map(|(l, u)| l.saturating_sub(u))}),
                );
            }
            json_answer(
                StatusCode::OK,
                &json!({"currency": limits.currency.code(), "limits": out}),
            )
        }
        Err(error) => ledger_failed(&error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        assert!(read_cursor("zz").is_none());
        assert!(read_cursor("abc").is_none());
        assert!(read_cursor(&"41".repeat(3_000)).is_none());
        let text = crate::auth::hex(b"5.p-1");
        assert_eq!(read_cursor(&text).unwrap().1.as_str(), "p-1");
    }
}
