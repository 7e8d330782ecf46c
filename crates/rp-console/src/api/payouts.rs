//! `POST /api/v1/payouts` (exactly once: the payment ID is the idempotency key), `GET
//! /api/v1/payouts/{payment_id}`, `GET /api/v1/payouts` (keyset pages), `GET
//! /api/v1/payouts/{payment_id}/events`, `GET /api/v1/limits`.

use std::net::IpAddr;
use std::time::{Duration, UNIX_EPOCH};

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use rp_model::{Currency, CustomerId, LimitKind, Money, Msisdn, Operator, PaymentId, Payout};
use rp_payout::{PayoutEvent, PayoutQuery, PayoutRecord};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::{Caller, json_answer, problem, require_pay, rfc3339};
use crate::Desk;
use crate::submit::{self, NotSubmitted, Submitted};

/// The longest `?wait=` in seconds.
pub(crate) const MAX_WAIT: u64 = 60;

/// Payouts in a page of `GET /api/v1/payouts`, by default and at most.
const PAGE: usize = 50;
const MAX_PAGE: usize = 500;

/// The members `POST /api/v1/payouts` takes.
pub(crate) const FIELDS: [&str; 9] = [
    "payment_id",
    "phone",
    "amount",
    "amount_minor",
    "currency",
    "customer",
    "description",
    "operator",
    "metadata",
];

/// JSON read as a [`Value`], refusing an object with a member given twice (a gateway, a log
/// or the sender's own code could read the first where `serde_json` keeps the last).
struct Strict(Value);

impl<'de> Deserialize<'de> for Strict {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(Strict)
    }
}

struct StrictVisitor;

impl<'de> serde::de::Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(Strict(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut members = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let Strict(value) = map.next_value()?;
            if members.insert(key.clone(), value).is_some() {
                return Err(serde::de::Error::custom(format!(
                    "member {key:?} given twice"
                )));
            }
        }
        Ok(Value::Object(members))
    }
}

/// A field's problem.
fn field_error(field: &str, message: impl Into<String>) -> Value {
    json!({"field": field, "message": message.into()})
}

/// The payout a request body describes, or every field's problem (422).
pub(crate) fn read_payout(body: &[u8]) -> Result<(Payout, Option<String>), Vec<Value>> {
    let Strict(value) = serde_json::from_slice(body)
        .map_err(|e| vec![field_error("", format!("not JSON: {e}"))])?;
    let Some(object) = value.as_object() else {
        return Err(vec![field_error("", "the body is a JSON object")]);
    };
    let mut errors = Vec::new();
    for key in object.keys().filter(|k| !FIELDS.contains(&k.as_str())) {
        errors.push(field_error(key, "unknown member"));
    }
    let text = |name: &str, errors: &mut Vec<Value>| -> Option<String> {
        checked_text(name, object.get(name), errors)
    };
    let payment_id = match text("payment_id", &mut errors) {
        None => {
            errors.push(field_error(
                "payment_id",
                "required: your ID of this payout (the idempotency key)",
            ));
            None
        }
        Some(id) => PaymentId::new(id)
            .map_err(|e| errors.push(field_error("payment_id", e.to_string())))
            .ok(),
    };
    let phone = match text("phone", &mut errors) {
        None => {
            errors.push(field_error("phone", "required"));
            None
        }
        Some(phone) => Msisdn::parse(&phone)
            .map_err(|e| errors.push(field_error("phone", e.to_string())))
            .ok(),
    };
    let currency = match text("currency", &mut errors) {
        None => Some(Currency::KZT),
        Some(code) => {
            let found = Currency::from_code(code.trim());
            if found.is_none() {
                errors.push(field_error(
                    "currency",
                    format!("unknown currency {code:?}"),
                ));
            }
            found
        }
    };
    let amount = match (object.get("amount"), object.get("amount_minor"), currency) {
        (Some(_), Some(_), _) => {
            errors.push(field_error(
                "amount",
                "give amount or amount_minor, not both",
            ));
            None
        }
        (None, None, _) => {
            errors.push(field_error(
                "amount",
                "required: amount (\"1 500,00\") or amount_minor (150000)",
            ));
            None
        }
        (_, _, None) => None,
        (Some(Value::String(text)), None, Some(currency)) => Money::parse(text, currency)
            .map_err(|e| errors.push(field_error("amount", e.to_string())))
            .ok(),
        (Some(_), None, _) => {
            errors.push(field_error(
                "amount",
                "a string as people write it, e.g. \"1 500,50\"; or use amount_minor",
            ));
            None
        }
        (None, Some(minor), Some(currency)) => match minor.as_u64() {
            Some(minor) => Some(Money::from_minor(minor, currency)),
            None => {
                errors.push(field_error(
                    "amount_minor",
                    "a whole number of minor units, 1 or more",
                ));
                None
            }
        },
    };
    let mut builder = Payout::builder();
    match object.get("customer") {
        Some(Value::Object(customer)) => {
            for key in customer
                .keys()
                .filter(|k| !["id", "first_name", "last_name", "email", "ip"].contains(&k.as_str()))
            {
                errors.push(field_error(&format!("customer.{key}"), "unknown member"));
            }
            let part = |name: &str, errors: &mut Vec<Value>| -> Option<String> {
                checked_text(&format!("customer.{name}"), customer.get(name), errors)
            };
            match part("id", &mut errors) {
                Some(id) => match CustomerId::new(id) {
                    Ok(id) => builder = builder.customer_id(id),
                    Err(e) => errors.push(field_error("customer.id", e.to_string())),
                },
                None => errors.push(field_error(
                    "customer.id",
                    "required: the customer's ID in your system",
                )),
            }
            match (
                part("first_name", &mut errors),
                part("last_name", &mut errors),
            ) {
                (Some(first), Some(last)) => builder = builder.customer_name(first, last),
                (None, None) => {}
                _ => errors.push(field_error(
                    "customer.last_name",
                    "first_name and last_name go together",
                )),
            }
            if let Some(email) = part("email", &mut errors) {
                builder = builder.customer_email(email);
            }
            if let Some(ip) = part("ip", &mut errors) {
                match ip.parse::<IpAddr>() {
                    Ok(ip) => builder = builder.customer_ip(ip),
                    Err(_) => errors.push(field_error("customer.ip", "an IPv4 or IPv6 address")),
                }
            }
        }
        None | Some(Value::Null) => errors.push(field_error(
            "customer.id",
            "required: customer.id, the customer's ID in your system",
        )),
        Some(_) => errors.push(field_error("customer", "an object: {\"id\": …}")),
    }
    if let Some(description) = text("description", &mut errors) {
        builder = builder.description(description);
    }
    if let Some(operator) = text("operator", &mut errors) {
        let known = operator.len() <= 32
            && operator
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if known {
            builder = builder.operator(
                operator
                    .parse::<Operator>()
                    .unwrap_or_else(|never| match never {}),
            );
        } else {
            errors.push(field_error(
                "operator",
                "an operator's ID: letters, digits, _ and -, 32 at most",
            ));
        }
    }
    // What the builder would refuse, named by field, with the rest.
    let customer = object.get("customer");
    for (field, value) in [
        ("description", object.get("description")),
        (
            "customer.first_name",
            customer.and_then(|c| c.get("first_name")),
        ),
        (
            "customer.last_name",
            customer.and_then(|c| c.get("last_name")),
        ),
        ("customer.email", customer.and_then(|c| c.get("email"))),
    ] {
        if value
            .and_then(Value::as_str)
            .is_some_and(|t| t.contains(';'))
        {
            errors.push(field_error(
                field,
                "no ';' (the platform's signature cannot tell it from its separator)",
            ));
        }
    }
    if amount.is_some_and(Money::is_zero) {
        let field = if object.contains_key("amount") {
            "amount"
        } else {
            "amount_minor"
        };
        errors.push(field_error(field, "more than zero"));
    }
    let metadata = checked_metadata(object.get("metadata"), &mut errors);
    let (Some(payment_id), Some(phone), Some(amount)) = (payment_id, phone, amount) else {
        return Err(errors);
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    let payout = builder
        .payment_id(payment_id)
        .phone(phone)
        .amount(amount)
        .build()
        .map_err(|e| builder_errors(&e))?;
    Ok((payout, metadata))
}

/// Members of `metadata`, at most.
pub(crate) const MAX_METADATA_KEYS: usize = 50;

/// The longest metadata key, in characters.
pub(crate) const MAX_METADATA_KEY: usize = 40;

/// The most bytes `metadata` takes as compact JSON.
pub(crate) const MAX_METADATA_BYTES: usize = 4096;

/// `metadata` as it is kept (compact JSON text), or its problems: a JSON object of at most
/// [`MAX_METADATA_KEYS`] members, keys of 1 to [`MAX_METADATA_KEY`] characters, at most
/// [`MAX_METADATA_BYTES`] bytes in all.
fn checked_metadata(value: Option<&Value>, errors: &mut Vec<Value>) -> Option<String> {
    let members = match value {
        None | Some(Value::Null) => return None,
        Some(Value::Object(members)) => members,
        Some(_) => {
            errors.push(field_error(
                "metadata",
                "a JSON object (your own keys and values)",
            ));
            return None;
        }
    };
    let before = errors.len();
    if members.len() > MAX_METADATA_KEYS {
        errors.push(field_error(
            "metadata",
            format!("at most {MAX_METADATA_KEYS} members"),
        ));
    }
    for key in members.keys() {
        let length = key.chars().count();
        if length == 0 || length > MAX_METADATA_KEY {
            errors.push(field_error(
                &format!("metadata.{key}"),
                format!("a key of 1 to {MAX_METADATA_KEY} characters"),
            ));
        }
    }
    let text = serde_json::to_string(members).unwrap_or_default();
    if text.len() > MAX_METADATA_BYTES {
        errors.push(field_error(
            "metadata",
            format!("at most {MAX_METADATA_BYTES} bytes as JSON"),
        ));
    }
    (errors.len() == before).then_some(text)
}

/// Whether two kept metadata texts say the same (member order aside).
pub(crate) fn same_metadata(a: Option<&str>, b: Option<&str>) -> bool {
    let parse = |text: Option<&str>| text.and_then(|t| serde_json::from_str::<Value>(t).ok());
    parse(a) == parse(b)
}

/// Kept metadata as JSON (`null` when none, or when what is kept does not read as JSON).
pub(crate) fn metadata_json(metadata: Option<&str>) -> Value {
    metadata
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(Value::Null)
}

/// A text member: a string without control characters, or its problem.
fn checked_text(field: &str, value: Option<&Value>, errors: &mut Vec<Value>) -> Option<String> {
    match value {
        None | Some(Value::Null) => None,
        Some(Value::String(text)) if text.chars().any(char::is_control) => {
            errors.push(field_error(
                field,
                "one line of text, without control characters",
            ));
            None
        }
        Some(Value::String(text)) => Some(text.clone()),
        Some(_) => {
            errors.push(field_error(field, "a string"));
            None
        }
    }
}

/// The builder's problems, each named by its field.
fn builder_errors(error: &rp_model::Error) -> Vec<Value> {
    use rp_model::Error as E;
    match error {
        E::Invalid { problems } => problems.iter().flat_map(builder_errors).collect(),
        E::SeparatorInValue { field } => vec![field_error(field, error.to_string())],
        E::ZeroAmount | E::InvalidAmount { .. } | E::AmountOverflow { .. } => {
            vec![field_error("amount", error.to_string())]
        }
        E::PhoneNoPayoutOperator { .. } => vec![field_error("phone", error.to_string())],
        E::MissingField { field } => vec![field_error(field, error.to_string())],
        other => vec![field_error("", other.to_string())],
    }
}

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
        Err(NotSubmitted::Conflict) => {
            return problem(
                StatusCode::CONFLICT,
                "payment-id-conflict",
                &format!(
                    "payment ID {payment_id} is recorded for a different payout; nothing was changed"
                ),
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
            Ok(None) => json_answer(
                StatusCode::ACCEPTED,
                &json!({"payment_id": payment_id.as_str(), "state": "created", "settled": false}),
            ),
            Err(error) => ledger_failed(&error),
        },
    }
}

/// The payout once it is settled, or as it stands when `limit` has passed.
async fn settled_within(desk: &Desk, id: &PaymentId, limit: Duration) -> Option<PayoutRecord> {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        let record = desk.client().store().get(id).await.ok().flatten();
        if record.as_ref().is_some_and(|r| r.state.is_settled())
            || tokio::time::Instant::now() >= deadline
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
    let mut query = PayoutQuery::new().limit(limit);
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
        return problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "validation",
            "the query is not valid",
            Some(Value::Array(errors)),
        );
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
    fn every_field_error_is_reported_at_once() {
        let errors = read_payout(
            br#"{"phone": "+7 999 123 45 67", "amount": 5, "customer": {}, "extra": 1}"#,
        )
        .unwrap_err();
        let fields: Vec<&str> = errors
            .iter()
            .map(|e| e["field"].as_str().unwrap())
            .collect();
        for field in ["extra", "payment_id", "phone", "amount", "customer.id"] {
            assert!(fields.contains(&field), "{field} in {fields:?}");
        }
        assert!(read_payout(b"[1]").is_err());
        assert!(read_payout(b"\xff").is_err());
        let (payout, metadata) = read_payout(br#"{"payment_id": "o-1", "phone": "8 701 123 45 67", "amount_minor": 150000, "customer": {"id": "c-1"}}"#).unwrap();
        assert_eq!(payout.amount().minor_units(), 150_000);
        assert_eq!(metadata, None);
        let (payout, metadata) = read_payout(br#"{"payment_id": "o-1", "phone": "+77011234567", "amount": "1 500,50", "currency": "KZT", "customer": {"id": "c-1", "ip": "198.51.100.4"}, "metadata": {"order": 42, "tags": ["a"]}}"#).unwrap();
        assert_eq!(payout.amount().minor_units(), 150_050);
        assert!(same_metadata(
            metadata.as_deref(),
            Some(r#"{"tags":["a"],"order":42}"#)
        ));
        assert!(!same_metadata(
            metadata.as_deref(),
            Some(r#"{"order":43,"tags":["a"]}"#)
        ));
        assert!(!same_metadata(metadata.as_deref(), None));
        let both = read_payout(br#"{"payment_id": "o-1", "phone": "+77011234567", "amount": "1", "amount_minor": 1, "customer": {"id": "c"}}"#).unwrap_err();
        assert_eq!(both[0]["field"], "amount");
    }

    #[test]
    fn metadata_is_an_object_of_bounded_size() {
        let with = |metadata: &str| {
            read_payout(format!(r#"{{"payment_id": "o-1", "phone": "+77011234567", "amount": "1", "customer": {{"id": "c"}}, "metadata": {metadata}}}"#).as_bytes())
        };
        assert!(with("null").unwrap().1.is_none());
        for bad in ["[1]", "\"order 1\"", "5"] {
            let errors = with(bad).unwrap_err();
            assert_eq!(errors[0]["field"], "metadata", "{bad}");
        }
        let long_key = format!(r#"{{"{}": 1}}"#, "k".repeat(41));
        assert_eq!(
            with(&long_key).unwrap_err()[0]["field"],
            format!("metadata.{}", "k".repeat(41))
        );
        let many: Vec<String> = (0..51).map(|i| format!(r#""k{i}": 1"#)).collect();
        assert!(with(&format!("{{{}}}", many.join(", "))).is_err());
        let big = format!(r#"{{"note": "{}"}}"#, "x".repeat(4100));
        assert!(
            with(&big).unwrap_err()[0]["message"]
                .as_str()
                .unwrap()
                .contains("4096")
        );
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        assert!(read_cursor("zz").is_none());
        assert!(read_cursor("abc").is_none());
        assert!(read_cursor(&"41".repeat(3_000)).is_none());
        let text = crate::auth::hex(b"5.p-1");
        assert_eq!(read_cursor(&text).unwrap().1.as_str(), "p-1");
    }
}
