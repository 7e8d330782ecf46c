//! The Gate endpoints: operator list, mobile payout, payment status; checked like the platform.

use std::pin::Pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, StatusCode, Uri, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use rp_model::wire::{ErrorItem, Extra, GateResponse, PayoutRequest, StatusResponse};
use rp_model::{
    Currency, Msisdn, OperationStatus, Operator, PaymentId, PaymentStatus, PrefixInfo,
    RequestStatus, ResponseCode, mask_phone,
};
use serde_json::{Value, json};

use crate::lifecycle::{account_object, code_message, customer_object, payment_object};
use crate::limits::{self, Exceeded};
use crate::server::{ConnectionHandle, Shared};
use crate::state::{Entry, Key, RequestRecord, SimOperation, SimPayment, State as SimState, now};
use crate::{Magic, Rate, control, lifecycle};

pub use rp_model::wire::{OPERATORS_PATH, PAYOUT_PATH, STATUS_PATH};

/// The longest `callback.delay` the platform accepts, in seconds.
const MAX_CALLBACK_DELAY_SECONDS: u64 = 600;

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(OPERATORS_PATH, post(operators))
        .route(PAYOUT_PATH, post(payout))
        .route(STATUS_PATH, post(status))
        .route(
            "/_sim/config",
            get(control::config).post(control::set_config),
        )
        .route("/_sim/payments", get(control::payments))
        .route("/_sim/payments/{payment_id}", get(control::payment))
        .route("/_sim/payments/{payment_id}/force", post(control::force))
        .route("/_sim/requests", get(control::requests))
        .route("/_sim/callbacks", get(control::callbacks))
        .route("/_sim/limits", get(control::limits))
        .route("/_sim/reset", post(control::reset))
        .fallback(unknown_path)
        // Bodies are read (within the limit and the timeout) before any handler runs.
        .layer(DefaultBodyLimit::max(shared.body_limit))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&shared),
            read_body,
        ))
        .with_state(shared)
}

/// Reads the whole request body before the handler: 413 when it is over the body limit
/// (by `Content-Length` before reading, or while reading), 408 when it does not arrive within
/// the body read timeout, 400 when the client breaks off. Nothing is applied in any of them.
async fn read_body(State(shared): State<Arc<Shared>>, request: Request, next: Next) -> Response {
    let limit = shared.body_limit;
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    let path = request.uri().path().to_owned();
    if declared.is_some_and(|length| length > u64::try_from(limit).unwrap_or(u64::MAX)) {
        return body_problem(&path, StatusCode::PAYLOAD_TOO_LARGE, limit);
    }
    let (parts, mut body) = request.into_parts();
    let read = async {
        let mut buffer = Vec::new();
        while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await
        {
            let Ok(frame) = frame else {
                return Err(StatusCode::BAD_REQUEST);
            };
            if let Ok(data) = frame.into_data() {
                if buffer.len().saturating_add(data.len()) > limit {
                    return Err(StatusCode::PAYLOAD_TOO_LARGE);
                }
                buffer.extend_from_slice(&data);
            }
        }
        Ok(buffer)
    };
    match tokio::time::timeout(shared.body_read_timeout, read).await {
        Ok(Ok(buffer)) => {
            next.run(Request::from_parts(parts, Body::from(buffer)))
                .await
        }
        Ok(Err(status)) => body_problem(&path, status, limit),
        Err(_) => body_problem(&path, StatusCode::REQUEST_TIMEOUT, limit),
    }
}

fn body_problem(path: &str, status: StatusCode, limit: usize) -> Response {
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => format!("Request body over {limit} bytes"),
        StatusCode::REQUEST_TIMEOUT => "Request body not received in time".to_owned(),
        _ => "Request body broken off".to_owned(),
    };
    tracing::info!(path, http_status = status.as_u16(), %message, "rp-sim request refused");
    let mut response = (
        status,
        axum::Json(json!({"status": "error", "message": message})),
    )
        .into_response();
    // The rest of the body is not read: the connection cannot be reused.
    response
        .headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    response
}

async fn unknown_path(uri: Uri) -> Response {
    tracing::info!(path = %uri.path(), "rp-sim unknown path");
    (
        StatusCode::NOT_FOUND,
        axum::Json(json!({
            "status": "error",
            "message": format!(
                "Unknown endpoint {}: the simulator serves POST {OPERATORS_PATH}, {PAYOUT_PATH}, {STATUS_PATH} and /_sim/…",
                uri.path()
            ),
        })),
    )
        .into_response()
}

/// What the request said about itself, for the error envelope and the request log.
#[derive(Clone, Debug, Default)]
struct Context {
    project_id: Option<u64>,
    payment_id: Option<String>,
}

/// A synchronous rejection with a platform code.
#[derive(Clone, Debug)]
struct Reject {
    code: u32,
    field: Option<String>,
    detail: Option<String>,
}

impl Reject {
    fn code(code: u32) -> Reject {
        Reject {
            code,
            field: None,
            detail: None,
        }
    }

    fn detail(code: u32, detail: impl Into<String>) -> Reject {
        Reject {
            code,
            field: None,
            detail: Some(detail.into()),
        }
    }

    fn field(code: u32, field: &str, detail: impl Into<String>) -> Reject {
        Reject {
            code,
            field: Some(field.to_owned()),
            detail: Some(detail.into()),
        }
    }

    /// A refusal by a project limit (3358, 3104, 3109/3108/3106, 3112/3111/3110).
    fn limit(exceeded: Exceeded) -> Reject {
        Reject {
            code: exceeded.code,
            field: exceeded.amount_field.then(|| "payment.amount".to_owned()),
            detail: Some(exceeded.detail),
        }
    }

    /// 2004 naming the field.
    fn missing(field: &str) -> Reject {
        Reject::field(ResponseCode::FIELD_MISSING, field, field)
    }

    /// 2004 naming the field and what it must be.
    fn wrong_type(field: &str, must: &str) -> Reject {
        Reject::field(
            ResponseCode::FIELD_MISSING,
            field,
            format!("{field} ({must})"),
        )
    }

    fn http_status(&self) -> StatusCode {
        match self.code {
            2442 | 3261 | 3262 => StatusCode::FORBIDDEN,
            3041 | 3060 => StatusCode::CONFLICT,
            3061 => StatusCode::NOT_FOUND,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    fn message(&self) -> String {
        let base = code_message(&ResponseCode::from_number(self.code));
        match &self.detail {
            Some(detail) => format!("{base}: {detail}"),
            None => base,
        }
    }

    fn into_answer(self, context: &Context) -> Answer {
        let code = ResponseCode::from_number(self.code);
        let message = self.message();
        let body = GateResponse {
            status: Some(RequestStatus::Error),
            request_id: None,
            project_id: context.project_id,
            payment_id: context.payment_id.clone(),
            code: Some(code.clone()),
            message: Some(message.clone()),
            errors: vec![ErrorItem {
                code: Some(code.clone()),
                message: Some(message),
                field: self.field.clone(),
                description: None,
                extra: Extra::new(),
            }],
            extra: Extra::new(),
        };
        Answer::json(self.http_status(), Some(code.to_string()), to_value(&body))
    }
}

/// How a request is answered.
enum Answer {
    Json {
        http: StatusCode,
        code: Option<String>,
        body: Value,
        retry_after: Option<u64>,
    },
    Drop(ConnectionHandle),
}

impl Answer {
    fn json(http: StatusCode, code: Option<String>, body: Value) -> Answer {
        Answer::Json {
            http,
            code,
            body,
            retry_after: None,
        }
    }
}

fn to_value<T: serde::Serialize>(value: &T) -> Value {
    serde_json::to_value(value).unwrap_or(Value::Null)
}

/// Records the request, logs it and turns the answer into a response.
fn respond(shared: &Shared, path: &str, context: Context, answer: Answer) -> Response {
    let (http_status, code) = match &answer {
        Answer::Json { http, code, .. } => (Some(http.as_u16()), code.clone()),
        Answer::Drop(_) => (None, None),
    };
    tracing::info!(
        path,
        project_id = context.project_id,
        payment_id = context.payment_id.as_deref(),
        http_status,
        code = code.as_deref(),
        "rp-sim request"
    );
    shared.state().requests.push(RequestRecord {
        at: now(),
        path: path.to_owned(),
        project_id: context.project_id,
        payment_id: context.payment_id,
        http_status,
        code,
    });
    match answer {
        Answer::Json {
            http,
            body,
            retry_after,
            ..
        } => {
            let mut response = (http, axum::Json(body)).into_response();
            if let Some(seconds) = retry_after {
                response
                    .headers_mut()
                    .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
            }
            response
        }
        Answer::Drop(connection) => {
            connection.drop_connection();
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

/// What every Gate request shares: a JSON object, a known project, a valid signature.
struct Checked<'a> {
    value: Value,
    project_id: u64,
    project: &'a crate::server::ProjectEntry,
}

/// Reads what the request says about itself, leniently (for the envelope and the log).
fn context_of(value: &Value) -> Context {
    let general = value.get("general");
    Context {
        project_id: general
            .and_then(|g| g.get("project_id"))
            .and_then(read_project_id),
        payment_id: general
            .and_then(|g| g.get("payment_id"))
            .and_then(Value::as_str)
            .map(str::to_owned),
    }
}

fn read_project_id(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) => {
            s.parse().ok()
        }
        _ => None,
    }
    .filter(|id| *id != 0)
}

/// Parses the body (2003), finds the project (2004, 2442) and checks the signature (3262, 3261).
fn check_common<'a>(shared: &'a Shared, body: &[u8]) -> (Context, Result<Checked<'a>, Reject>) {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(error) => {
            return (
                Context::default(),
                Err(Reject::detail(
                    ResponseCode::INVALID_JSON,
                    error.to_string(),
                )),
            );
        }
    };
    let context = context_of(&value);
    let result = check_parsed(shared, value);
    (context, result)
}

fn check_parsed(shared: &Shared, value: Value) -> Result<Checked<'_>, Reject> {
    if !value.is_object() {
        return Err(Reject::detail(
            ResponseCode::INVALID_JSON,
            "the body must be a JSON object",
        ));
    }
    let general = match value.get("general") {
        Some(Value::Object(general)) => general,
        Some(_) => return Err(Reject::wrong_type("general", "must be an object")),
        None => return Err(Reject::missing("general")),
    };
    let project_id = match general.get("project_id") {
        None | Some(Value::Null) => return Err(Reject::missing("general.project_id")),
        Some(raw) => read_project_id(raw).ok_or_else(|| {
            Reject::wrong_type("general.project_id", "must be a positive integer")
        })?,
    };
    let project = shared.projects.get(&project_id).ok_or_else(|| {
        Reject::field(
            ResponseCode::PROJECT_NOT_FOUND,
            "general.project_id",
            format!("{project_id}"),
        )
    })?;
    match general.get("signature") {
        None | Some(Value::Null) => {
            return Err(Reject::field(
                ResponseCode::EMPTY_SIGNATURE,
                "general.signature",
                "general.signature",
            ));
        }
        Some(Value::String(s)) if s.is_empty() => {
            return Err(Reject::field(
                ResponseCode::EMPTY_SIGNATURE,
                "general.signature",
                "general.signature",
            ));
        }
        Some(_) => {}
    }
    match project.signer.verify_value(&value) {
        Ok(_) => {}
        Err(rp_sign::Error::MissingSignature) => {
            return Err(Reject::field(
                ResponseCode::EMPTY_SIGNATURE,
                "general.signature",
                "general.signature",
            ));
        }
        Err(error) => {
            return Err(Reject::field(
                ResponseCode::INVALID_SIGNATURE,
                "general.signature",
                error.to_string(),
            ));
        }
    }
    Ok(Checked {
        value,
        project_id,
        project,
    })
}

/// A non-empty string at `path` (2004 otherwise).
fn required_str<'v>(value: &'v Value, path: &str) -> Result<&'v str, Reject> {
    let mut current = value;
    for part in path.split('.') {
        current = match current.get(part) {
            Some(next) => next,
            None => return Err(Reject::missing(path)),
        };
    }
    match current {
        Value::String(s) if !s.is_empty() => Ok(s),
        Value::Null | Value::String(_) => Err(Reject::missing(path)),
        _ => Err(Reject::wrong_type(path, "must be a string")),
    }
}

async fn operators(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let (context, checked) = check_common(&shared, &body);
    let answer = match checked {
        Ok(checked) => {
            let operators: Vec<Value> = Operator::KNOWN
                .iter()
                .map(|op| json!({"id": op.id(), "name": op.name()}))
                .collect();
            Answer::json(
                StatusCode::OK,
                None,
                json!({"project_id": checked.project_id, "operators": operators}),
            )
        }
        Err(reject) => reject.into_answer(&context),
    };
    respond(&shared, OPERATORS_PATH, context, answer)
}

async fn status(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let (context, checked) = check_common(&shared, &body);
    let answer = match checked.and_then(|checked| status_answer(&shared, &checked)) {
        Ok(answer) => answer,
        Err(reject) => reject.into_answer(&context),
    };
    respond(&shared, STATUS_PATH, context, answer)
}

fn status_answer(shared: &Shared, checked: &Checked<'_>) -> Result<Answer, Reject> {
    let payment_id = required_str(&checked.value, "general.payment_id")?;
    let key = (checked.project_id, payment_id.to_owned());
    let lag = shared.status_lag();
    // Within the status lag a recorded payment is not found yet, like on the platform.
    let found = shared
        .state()
        .get(&key)
        .filter(|entry| entry.recorded_at.elapsed() >= lag)
        .map(|entry| entry.payment.clone());
    let Some(payment) = found else {
        return not_found(shared, checked, payment_id);
    };
    let date = payment
        .last_operation()
        .map_or_else(|| payment.created_at.clone(), |op| op.date.clone());
    let response = StatusResponse {
        project_id: Some(payment.project_id),
        payment: Some(payment_object(&payment, &date)),
        account: Some(account_object(&payment)),
        customer: Some(customer_object(&payment)),
        operations: payment
            .operations
            .iter()
            .map(|operation| lifecycle::operation_object(&payment, operation))
            .collect(),
        errors: payment.errors(),
        ..StatusResponse::default()
    };
    // A status response carries payment details, so the platform signs it; never send one
    // unsigned (a client might trust it).
    match checked.project.signer.sign_callback(&response) {
        Ok(signed) => Ok(Answer::json(StatusCode::OK, None, signed)),
        Err(error) => {
            tracing::error!(%error, payment_id = %payment.payment_id, "rp-sim could not sign a status response");
            Ok(Answer::json(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                json!({"status": "error", "message": "Internal server error"}),
            ))
        }
    }
}

/// 3061 for a payment the status endpoint does not know (yet): by default HTTP 200 with a
/// signed body (`status`, `code`, `message`, `errors[]`), as the platform is seen to answer;
/// with `not_found_404`, the unsigned HTTP 404 envelope.
fn not_found(shared: &Shared, checked: &Checked<'_>, payment_id: &str) -> Result<Answer, Reject> {
    let reject = Reject::code(ResponseCode::TRANSACTION_NOT_FOUND);
    if shared.not_found_404() {
        return Err(reject);
    }
    let code = ResponseCode::from_number(ResponseCode::TRANSACTION_NOT_FOUND);
    let message = reject.message();
    let mut extra = Extra::new();
    extra.insert("payment_id".to_owned(), Value::from(payment_id));
    let response = StatusResponse {
        project_id: Some(checked.project_id),
        status: Some(RequestStatus::Error),
        code: Some(code.clone()),
        message: Some(message.clone()),
        errors: vec![ErrorItem {
            code: Some(code.clone()),
            message: Some(message),
            field: None,
            description: None,
            extra: Extra::new(),
        }],
        extra,
        ..StatusResponse::default()
    };
    match checked.project.signer.sign_callback(&response) {
        Ok(signed) => Ok(Answer::json(StatusCode::OK, Some(code.to_string()), signed)),
        Err(error) => {
            tracing::error!(%error, "rp-sim could not sign a 3061 answer; answering 404");
            Err(reject)
        }
    }
}

/// The refusal of a payout request for an existing payment ID whose status is not `error`:
/// 3041, or the refusal code of its magic value (`0024`: 3028, `0025`: 3109).
fn refuse_existing(state: &SimState, key: &Key) -> Option<Reject> {
    let payment = &state.get(key)?.payment;
    if payment.status == PaymentStatus::Error {
        return None;
    }
    Some(match payment.magic.and_then(Magic::resend_refusal_code) {
        Some(code) => Reject::code(code),
        None => Reject::detail(
            ResponseCode::PAYMENT_ID_EXISTS,
            format!("{} (status {})", payment.payment_id, payment.status),
        ),
    })
}

/// 3041 is checked right after the signature, before the other fields: a resend of an
/// existing payment ID is refused as a duplicate even when its body is broken.
fn check_existing(shared: &Shared, checked: &Checked<'_>) -> Result<(), Reject> {
    let Some(payment_id) = checked
        .value
        .get("general")
        .and_then(|g| g.get("payment_id"))
        .and_then(Value::as_str)
        .filter(|id| !id.is_empty())
    else {
        return Ok(());
    };
    let key = (checked.project_id, payment_id.to_owned());
    match refuse_existing(&shared.state(), &key) {
        Some(reject) => Err(reject),
        None => Ok(()),
    }
}

/// A payout request that passed every check.
struct Valid {
    project_id: u64,
    payment_id: String,
    phone: Msisdn,
    operator: Operator,
    amount: u64,
    /// The amount in tiyn (converted for another currency), as the limits count it.
    amount_kzt: u64,
    currency: String,
    rate: Option<Rate>,
    customer_id: String,
    description: String,
    callback_url: Option<String>,
    callback_delay: Duration,
    callbacks_disabled: bool,
}

fn validate_payout(shared: &Shared, checked: &Checked<'_>) -> Result<Valid, Reject> {
    let value = &checked.value;
    let payment_id = required_str(value, "general.payment_id")?;
    required_str(value, "customer.id")?;
    required_str(value, "account.number")?;
    match value.get("payment").and_then(|p| p.get("amount")) {
        None | Some(Value::Null) => return Err(Reject::missing("payment.amount")),
        Some(amount) if amount.as_u64().is_none() => {
            return Err(Reject::wrong_type(
                "payment.amount",
                "must be a non-negative integer number of minor units",
            ));
        }
        Some(_) => {}
    }
    required_str(value, "payment.currency")?;
    let request: PayoutRequest = serde_json::from_value(value.clone())
        .map_err(|error| Reject::detail(ResponseCode::FIELD_MISSING, error.to_string()))?;
    PaymentId::new(payment_id)
        .map_err(|error| Reject::field(3024, "general.payment_id", error.to_string()))?;
    let currency = request.payment.currency.as_str();
    let rate = if currency == "KZT" {
        None
    } else {
        match (Currency::from_code(currency), shared.rates.get(currency)) {
            (Some(known), Some(rate)) => Some((known, *rate)),
            _ => {
                let enabled: Vec<&str> = std::iter::once("KZT")
                    .chain(shared.rates.keys().map(String::as_str))
                    .collect();
                return Err(Reject::field(
                    ResponseCode::CURRENCY_DISABLED,
                    "payment.currency",
                    format!(
                        "{} (the project has no conversion rate for it; enabled: {})",
                        currency.chars().take(8).collect::<String>(),
                        enabled.join(", ")
                    ),
                ));
            }
        }
    };
    let amount = request.payment.amount;
    if amount == 0 {
        return Err(Reject::field(
            ResponseCode::PAYOUT_AMOUNT_LIMIT,
            "payment.amount",
            "the amount must be positive",
        ));
    }
    // The limit is in the project's currency (KZT): a converted amount is checked after
    // conversion.
    let in_kzt = match rate {
        None => Some(amount),
        Some((from, rate)) => rate.convert(amount, from),
    };
    if in_kzt == Some(0) {
        return Err(Reject::field(
            3118,
            "payment.amount",
            "the amount is less than one tiyn after conversion",
        ));
    }
    let amount_kzt = match in_kzt {
        Some(kzt) if kzt <= shared.amount_limit => kzt,
        _ => {
            return Err(Reject::field(
                ResponseCode::PAYOUT_AMOUNT_LIMIT,
                "payment.amount",
                format!(
                    "{amount} {currency} exceeds the per-operation limit of {} KZT minor units",
                    shared.amount_limit
                ),
            ));
        }
    };
    // The project's own minimum and maximum per payout (also in tenge).
    if let Some(exceeded) = limits::check_payout(
        &shared.limits,
        amount_kzt,
        &limits::describe(amount, currency, amount_kzt),
    ) {
        return Err(Reject::limit(exceeded));
    }
    let number = request.account.number.as_str();
    let phone = parse_phone(number)?;
    let operator = match request.account.service_provider.clone() {
        Some(operator) => operator,
        None => PrefixInfo::lookup(phone.prefix())
            .and_then(|info| info.operators.first().cloned())
            .ok_or_else(|| {
                Reject::field(
                    20102,
                    "account.number",
                    format!(
                        "no payout operator serves prefix {}; name one in account.service_provider",
                        phone.prefix()
                    ),
                )
            })?,
    };
    let callback_url = request
        .general
        .merchant_callback_url
        .clone()
        .filter(|url| !url.is_empty())
        .or_else(|| {
            shared
                .projects
                .get(&checked.project_id)
                .and_then(|p| p.callback_url.clone())
        })
        .or_else(|| shared.default_callback_url.clone());
    let callback = request.extra.get("callback");
    let callback_delay = callback
        .and_then(|c| c.get("delay"))
        .and_then(Value::as_u64)
        .map_or(Duration::ZERO, |s| {
            Duration::from_secs(s.min(MAX_CALLBACK_DELAY_SECONDS))
        });
    let callbacks_disabled = callback
        .and_then(|c| c.get("force_disable"))
        .is_some_and(|v| v.as_u64() == Some(1) || v.as_bool() == Some(true));
    Ok(Valid {
        project_id: checked.project_id,
        payment_id: payment_id.to_owned(),
        phone,
        operator,
        amount,
        amount_kzt,
        currency: request.payment.currency,
        rate: rate.map(|(_, rate)| rate),
        customer_id: request.customer.id,
        description: request.payment.description.unwrap_or_default(),
        callback_url,
        callback_delay,
        callbacks_disabled,
    })
}

/// `account.number` must be the canonical 11 digits of a payable KZ mobile number.
fn parse_phone(number: &str) -> Result<Msisdn, Reject> {
    let malformed = |why: String| {
        Reject::field(
            20102,
            "account.number",
            format!(
                "{} is not a payable Kazakhstan mobile number: {why}",
                mask_phone(number)
            ),
        )
    };
    if number.len() != 11 || !number.bytes().all(|b| b.is_ascii_digit()) {
        return Err(malformed(
            "write the 11 digits with country code 7 and nothing else (77XXXXXXXXX)".to_owned(),
        ));
    }
    let phone = Msisdn::parse(number).map_err(|error| malformed(error.to_string()))?;
    if phone.as_str() != number {
        return Err(malformed(
            "write the 11 digits with country code 7 and nothing else (77XXXXXXXXX)".to_owned(),
        ));
    }
    Ok(phone)
}

async fn payout(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(connection): ConnectInfo<ConnectionHandle>,
    body: Bytes,
) -> Response {
    let (context, checked) = check_common(&shared, &body);
    let valid = checked.and_then(|checked| {
        check_existing(&shared, &checked)?;
        validate_payout(&shared, &checked)
    });
    let answer = match valid {
        Ok(valid) => accept(&shared, valid, connection).await,
        Err(reject) => reject.into_answer(&context),
    };
    respond(&shared, PAYOUT_PATH, context, answer)
}

/// The refusal of a payout by the project's running limits (day, week, month; amount and
/// count), counted with what the project's accepted payouts use now. A resend after `error`
/// is checked with the recorded amount, which is what it pays.
fn refuse_over_limits(
    shared: &Shared,
    state: &SimState,
    key: &Key,
    valid: &Valid,
) -> Option<Reject> {
    if !shared.limits.has_running() {
        return None;
    }
    let (amount, currency, kzt) = match state.get(key) {
        Some(entry) => {
            let payment = &entry.payment;
            let kzt = limits::in_kzt(payment, payment.amount).unwrap_or(u64::MAX);
            (payment.amount, payment.currency.as_str(), kzt)
        }
        None => (valid.amount, valid.currency.as_str(), valid.amount_kzt),
    };
    let used = limits::usage(state, key.0, Instant::now(), shared.limit_windows);
    limits::check_running(
        &shared.limits,
        &used,
        kzt,
        &limits::describe(amount, currency, kzt),
    )
    .map(Reject::limit)
}

/// Records a valid payout (or answers 3041 / a magic HTTP behaviour).
async fn accept(shared: &Arc<Shared>, valid: Valid, connection: ConnectionHandle) -> Answer {
    let key = (valid.project_id, valid.payment_id.clone());
    let context = Context {
        project_id: Some(valid.project_id),
        payment_id: Some(valid.payment_id.clone()),
    };
    let (request_id, operation_id, first_attempt, magic, phone, amount) = {
        let mut state = shared.state();
        // Checked again under the lock: a concurrent request may have recorded it meanwhile.
        if let Some(reject) = refuse_existing(&state, &key) {
            return reject.into_answer(&context);
        }
        // The running limits, under the same lock that records the payout: two concurrent
        // requests cannot both take the last of a limit. A refused request is not recorded.
        if let Some(reject) = refuse_over_limits(shared, &state, &key, &valid) {
            return reject.into_answer(&context);
        }
        // A resend after `error` re-processes the recorded payment: its magic, amount and
        // phone, not the new body's.
        let magic = match state.get(&key) {
            Some(entry) => entry.payment.magic,
            None => Magic::from_number(valid.phone.as_str()),
        };
        let attempts = state.attempts.entry(key.clone()).or_insert(0);
        *attempts = attempts.saturating_add(1);
        let first_attempt = *attempts == 1;
        if magic == Some(Magic::RateLimited) && first_attempt {
            return Answer::Json {
                http: StatusCode::TOO_MANY_REQUESTS,
                code: Some("429".to_owned()),
                body: json!({"status": "error", "code": "429", "message": "Too many requests"}),
                retry_after: Some(1),
            };
        }
        let request_id = state.next_request_id();
        let operation_id = state.next_operation_id();
        let at = now();
        let operation = SimOperation {
            id: operation_id,
            kind: "payout".to_owned(),
            status: OperationStatus::Processing,
            amount: valid.amount,
            code: ResponseCode::new("9999"),
            message: code_message(&ResponseCode::new("9999")),
            request_id: request_id.clone(),
            created_date: at.clone(),
            date: at.clone(),
        };
        if let Some(entry) = state.get_mut(&key) {
            // A resend after status `error`: the recorded payment is processed again under
            // the same payment ID (a new operation); what the resend says about the amount,
            // phone, customer or callbacks is not taken.
            entry.accepted_at = Instant::now();
            let payment = &mut entry.payment;
            payment.status = PaymentStatus::Processing;
            payment.accepted_requests = payment.accepted_requests.saturating_add(1);
            let mut operation = operation;
            operation.amount = payment.amount;
            payment.operations.push(operation);
            (
                request_id,
                operation_id,
                first_attempt,
                magic,
                payment.phone,
                payment.amount,
            )
        } else {
            state.insert(Entry {
                payment: SimPayment {
                    project_id: valid.project_id,
                    payment_id: valid.payment_id.clone(),
                    status: PaymentStatus::Processing,
                    amount: valid.amount,
                    currency: valid.currency,
                    rate: valid.rate,
                    phone: valid.phone,
                    operator: valid.operator,
                    customer_id: valid.customer_id,
                    description: valid.description,
                    magic,
                    accepted_requests: 1,
                    operations: vec![operation],
                    callbacks_sent: 0,
                    created_at: at,
                },
                callback_url: valid.callback_url,
                callback_delay: valid.callback_delay,
                callbacks_disabled: valid.callbacks_disabled,
                recorded_at: Instant::now(),
                accepted_at: Instant::now(),
            });
            (
                request_id,
                operation_id,
                first_attempt,
                magic,
                valid.phone,
                valid.amount,
            )
        }
    };
    tracing::info!(
        payment_id = %valid.payment_id,
        phone = %phone,
        amount,
        magic = magic.map(Magic::digits),
        "rp-sim payout recorded"
    );
    lifecycle::spawn_processing(shared, key, operation_id);
    let accepted = GateResponse {
        status: Some(RequestStatus::Success),
        request_id: Some(request_id),
        project_id: Some(valid.project_id),
        payment_id: Some(valid.payment_id),
        ..GateResponse::default()
    };
    match magic {
        Some(magic) if magic.server_error_after_record() && first_attempt => Answer::json(
            StatusCode::INTERNAL_SERVER_ERROR,
            None,
            json!({"status": "error", "message": "Internal server error"}),
        ),
        Some(Magic::DropConnection) if first_attempt => Answer::Drop(connection),
        Some(Magic::SlowResponse) if first_attempt => {
            shared.sleep(shared.slow_delay).await;
            Answer::json(StatusCode::OK, None, to_value(&accepted))
        }
        _ => Answer::json(StatusCode::OK, None, to_value(&accepted)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phones_must_be_canonical_payable_numbers() {
        assert_eq!(parse_phone("77011234567").unwrap().as_str(), "77011234567");
        for bad in [
            "87011234567",
            "+77011234567",
            "7701123456",
            "77031234567",
            "79121234567",
            "7701123456x",
        ] {
            let reject = parse_phone(bad).unwrap_err();
            assert_eq!(reject.code, 20102, "{bad}");
            assert_eq!(reject.field.as_deref(), Some("account.number"));
            assert!(
                !reject.message().contains("1234567"),
                "unmasked: {}",
                reject.message()
            );
        }
    }

    #[test]
    fn rejections_map_to_the_contract_http_statuses() {
        let status = |code| Reject::code(code).http_status().as_u16();
        assert_eq!(status(2003), 400);
        assert_eq!(status(2004), 400);
        assert_eq!(status(2442), 403);
        assert_eq!(status(3261), 403);
        assert_eq!(status(3262), 403);
        assert_eq!(status(3041), 409);
        assert_eq!(status(3023), 400);
        assert_eq!(status(3104), 400);
        assert_eq!(status(20102), 400);
        assert_eq!(status(3061), 404);
        assert_eq!(
            Reject::missing("customer.id").message(),
            "Required field not provided: customer.id"
        );
    }

    #[test]
    fn project_ids_are_read_leniently() {
        assert_eq!(read_project_id(&json!(1234)), Some(1234));
        assert_eq!(read_project_id(&json!("1234")), Some(1234));
        assert_eq!(read_project_id(&json!(0)), None);
        assert_eq!(read_project_id(&json!(-1)), None);
        assert_eq!(read_project_id(&json!(1.5)), None);
        assert_eq!(read_project_id(&json!("12a")), None);
    }
}
