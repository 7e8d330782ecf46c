//! `POST /api/v1/batches` (a CSV file, or a JSON array of payouts), `GET
//! /api/v1/batches/{id}`, `GET /api/v1/batches/{id}/report.csv`: the batch rules of the
//! console and `rp batch run` — every row checked before anything is sent (422 with every
//! row's problem), payment IDs the ledger holds for other payouts refused (409), the same file
//! never a second batch (its ID is the SHA-256 of its bytes: the same body again answers the
//! batch as it stands), resumable by any instance.

use std::str::FromStr as _;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::body::Body;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use rp_batch::run::{Clash, preflight, register};
use rp_batch::{BatchId, RowError, check_file};
use rp_ledger::{BatchProgress, OnClash, Registered};
use rp_model::{Currency, Money};
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::body::FIELDS;
use super::{Caller, json_answer, problem, require_pay, rfc3339};
use crate::Desk;

/// How long a batch body has to arrive.
const BODY_TIMEOUT: Duration = Duration::from_secs(120);

/// Row problems listed in a 422 answer, at most (`rp-problem-count` says how many there are).
const LISTED_PROBLEMS: usize = 1000;

/// The largest JSON batch: it is read whole before it is checked (a CSV file is streamed,
/// up to the upload limit). About 40,000 payouts.
pub(crate) const MAX_JSON_BATCH_BYTES: usize = 8 * 1024 * 1024;

/// The batch's directory under the uploads, removed when the request ends however it ends
/// (a client that hangs up mid-check included).
struct Scratch(std::path::PathBuf);

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The members a payout of a JSON batch takes: a single payout's but its `metadata` (a
/// batch's rows carry none), which [`FIELDS`] lists last.
const ITEM_FIELDS: &[&str] = match FIELDS.split_last() {
    Some((_metadata, rest)) => rest,
    None => &[],
};

/// `?check_only=true` and `?file_name=`.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct CreateQuery {
    check_only: Option<String>,
    file_name: Option<String>,
}

fn failed(status: StatusCode, kind: &str, detail: &str) -> Response {
    problem(status, kind, detail, None)
}

fn unavailable(detail: &str) -> Response {
    tracing::error!(error = %detail, "API batch failed");
    failed(StatusCode::SERVICE_UNAVAILABLE, "unavailable", detail)
}

/// One currency's total as the API shows it: the code, minor units, and the decimal amount
/// when the currency is one rp knows.
fn total_json(code: &str, minor: u64) -> Value {
    let amount = Currency::from_code(code).map(|c| Money::from_minor(minor, c).decimal());
    json!({"currency": code, "amount_minor": minor, "amount": amount})
}

/// A batch as the API shows it.
pub(crate) fn batch_json(progress: &BatchProgress) -> Value {
    let info = &progress.info.batch;
    let totals: Vec<Value> = info
        .totals
        .iter()
        .map(|(code, minor)| total_json(code, *minor))
        .collect();
    let counts: Map<String, Value> = progress
        .by_label
        .iter()
        .map(|(label, n)| (label.clone(), json!(n)))
        .collect();
    json!({
        "id": info.id,
        "file_name": info.file_name,
        "rows": info.rows,
        "valid_rows": info.valid_rows,
        "totals": totals,
        "state": progress.state().as_str(),
        "paused": progress.info.paused,
        "by_state": counts,
        "undone": progress.undone,
        "waiting": progress.waiting,
        "created_at": rfc3339(progress.info.created_at),
        "report": format!("/api/v1/batches/{}/report.csv", info.id),
    })
}

/// `POST /api/v1/batches`.
pub(crate) async fn create(
    State(desk): State<Desk>,
    Extension(caller): Extension<Caller>,
    Query(query): Query<CreateQuery>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    if let Err(response) = require_pay(&caller) {
        return response;
    }
    let limit = desk.settings().max_upload_bytes;
    let bytes = match tokio::time::timeout(BODY_TIMEOUT, axum::body::to_bytes(body, limit)).await {
        Ok(Ok(bytes)) => bytes,
        Ok(Err(error)) => {
            return match crate::web::unreadable("the batch", &error) {
                (StatusCode::PAYLOAD_TOO_LARGE, _) => failed(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "too-large",
                    &format!("a batch is at most {} MiB", limit / (1024 * 1024)),
                ),
                (status, text) => failed(status, "unreadable", &text),
            };
        }
        Err(_) => {
            return failed(
                StatusCode::REQUEST_TIMEOUT,
                "timeout",
                "the batch did not arrive in time",
            );
        }
    };
    let kind = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    let (csv, from_json) = if kind.starts_with("application/json") {
        if bytes.len() > MAX_JSON_BATCH_BYTES {
            return failed(
                StatusCode::PAYLOAD_TOO_LARGE,
                "too-large",
                &format!(
                    "a JSON batch is at most {} MiB; send a larger one as text/csv",
                    MAX_JSON_BATCH_BYTES / (1024 * 1024)
                ),
            );
        }
        match json_to_csv(&bytes) {
            Ok(batch) => (batch.csv, Some((batch.items, batch.problems))),
            Err(errors) => {
                return problem(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid",
                    "the batch is not a JSON array of payouts",
                    Some(Value::Array(errors)),
                );
            }
        }
    } else if kind.starts_with("text/csv") || kind.starts_with("text/plain") {
        (bytes.to_vec(), None)
    } else {
        return failed(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "send the batch as text/csv (a file with a header) or application/json (an array of payouts)",
        );
    };
    let file_name = match checked_file_name(query.file_name.as_deref(), from_json.is_some()) {
        Ok(name) => name,
        Err(detail) => return failed(StatusCode::UNPROCESSABLE_ENTITY, "invalid", &detail),
    };
    let check_only = match query.check_only.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return failed(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                &format!("check_only is true or false, not {other:?}"),
            );
        }
    };
    // The file, under the name the batch will show, in a directory of its own.
    let dir = Scratch(
        desk.settings()
            .uploads
            .join(format!("api-{}", random_hex())),
    );
    if let Err(error) = tokio::fs::create_dir_all(&dir.0).await {
        return unavailable(&format!("cannot make {}: {error}", dir.0.display()));
    }
    let path = dir.0.join(&file_name);
    checked_and_registered(&desk, &caller, &path, &csv, from_json.as_ref(), check_only).await
}

async fn checked_and_registered(
    desk: &Desk,
    caller: &Caller,
    path: &std::path::Path,
    csv: &[u8],
    from_json: Option<&(Vec<usize>, Vec<Value>)>,
    check_only: bool,
) -> Response {
    // A JSON batch: which item each row is, and the items' own problems.
    let (items, item_problems) = match from_json {
        Some((items, problems)) => (Some(items.clone()), problems.clone()),
        None => (None, Vec::new()),
    };
    if let Err(error) = tokio::fs::write(path, csv).await {
        return unavailable(&format!("cannot keep the batch: {error}"));
    }
    let limits = desk.client().config().limits;
    let checked = {
        let path = path.to_owned();
        let items = items.clone();
        let mut problems = item_problems;
        let mut count = problems.len() as u64;
        tokio::task::spawn_blocking(move || {
            let report = check_file(&path, &limits, |problem: &RowError| {
                count += 1;
                if problems.len() < LISTED_PROBLEMS {
                    problems.push(row_problem(problem, items.as_deref()));
                }
            });
            report.map(|report| (report, problems, count))
        })
        .await
    };
    let (report, problems, count) = match checked {
        Ok(Ok(checked)) => checked,
        Ok(Err(error)) => {
            return failed(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid",
                &format!("the batch cannot be read: {error}"),
            );
        }
        Err(error) => return unavailable(&format!("the check stopped: {error}")),
    };
    let summary = json!({
        "id": report.batch.to_string(),
        "rows": report.rows,
        "valid_rows": report.valid_rows,
        "totals": report
            .totals
            .iter()
            .map(|m| total_json(m.currency().code(), m.minor_units()))
            .collect::<Vec<_>>(),
    });
    if count > 0 {
        let detail = format!("{count} problem(s) in the batch: nothing was recorded or sent");
        let mut answer = problem(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid-rows",
            &detail,
            Some(Value::Array(problems)),
        );
        // How many there are, when the list stops at LISTED_PROBLEMS.
        if let Ok(value) = axum::http::HeaderValue::from_str(&count.to_string()) {
            answer.headers_mut().insert("rp-problem-count", value);
        }
        return answer;
    }
    if report.valid_rows == 0 {
        return failed(
            StatusCode::UNPROCESSABLE_ENTITY,
            "empty",
            "the batch has no row to pay",
        );
    }
    let project = desk.client().project_id();
    let batch = report.batch;
    // Registered before: the batch as it stands, nothing paid again.
    match desk.batches().progress(&batch.to_string()).await {
        Ok(Some(progress)) => return json_answer(StatusCode::OK, &batch_json(&progress)),
        Ok(None) => {}
        Err(error) => return unavailable(&error.to_string()),
    }
    match preflight(
        path,
        batch,
        desk.client().store().as_ref(),
        desk.batches().as_ref(),
        project,
    )
    .await
    {
        Ok(clashes) if clashes.is_empty() => {}
        Ok(clashes) => return clashed(&clashes, items.as_deref()),
        Err(error) => return unavailable(&error.to_string()),
    }
    if check_only {
        return json_answer(StatusCode::OK, &summary);
    }
    let registered = register(
        path,
        &report,
        desk.batches().as_ref(),
        project,
        limits,
        OnClash::Refuse,
    );
    let status = match registered.await {
        Ok(Registered::New) => {
            tracing::info!(key = %caller.name, batch = %batch, rows = report.valid_rows, "batch from the API; paying");
            let client = desk
                .client()
                .with_limits(limits)
                .recording_as(caller.source());
            crate::web::upload::start(desk, batch, Arc::new(client));
            StatusCode::ACCEPTED
        }
        // Since the preflight, the ledger took some of its payment IDs for other payouts.
        Ok(Registered::Clashes(found)) => {
            let clashes: Vec<Clash> = found.iter().filter_map(Clash::of_registration).collect();
            return clashed(&clashes, items.as_deref());
        }
        // Registered by a request at the same moment: the batch as it stands.
        Ok(_) => StatusCode::OK,
        Err(error) => return unavailable(&error.to_string()),
    };
    match desk.batches().progress(&batch.to_string()).await {
        Ok(Some(progress)) => json_answer(status, &batch_json(&progress)),
        Ok(None) => unavailable("the batch was registered but cannot be read back"),
        Err(error) => unavailable(&error.to_string()),
    }
}

/// 409: rows use payment IDs the ledger holds for other payouts, each named where it is
/// (`line 4, column payment_id`; `[2].payment_id` in a JSON array, its message without the
/// line).
fn clashed(clashes: &[Clash], items: Option<&[usize]>) -> Response {
    let errors: Vec<Value> = clashes
        .iter()
        .map(|c| {
            let message = if items.is_some() {
                c.reason()
            } else {
                c.to_string()
            };
            json!({"field": location(c.line, c.row, items, "payment_id"), "message": message})
        })
        .collect();
    problem(
        StatusCode::CONFLICT,
        "payment-id-conflict",
        "some rows use payment IDs the ledger holds for other payouts; nothing was recorded or sent",
        Some(Value::Array(errors)),
    )
}

/// Where a row problem is: `line 4, column amount` in a file; `[2].amount` in a JSON array.
fn location(line: u64, row: u64, items: Option<&[usize]>, column: &str) -> String {
    if let Some(items) = items {
        let index = usize::try_from(row.saturating_sub(1))
            .ok()
            .and_then(|r| items.get(r))
            .copied()
            .unwrap_or_default();
        // The member of the item the column came from.
        let column = match column {
            "customer_id" => "customer.id",
            "first_name" => "customer.first_name",
            "last_name" => "customer.last_name",
            "email" => "customer.email",
            "ip_address" => "customer.ip",
            other => other,
        };
        if column.is_empty() {
            format!("[{index}]")
        } else {
            format!("[{index}].{column}")
        }
    } else if column.is_empty() {
        format!("line {line}")
    } else {
        format!("line {line}, column {column}")
    }
}

fn row_problem(problem: &RowError, items: Option<&[usize]>) -> Value {
    let column = problem.column.map_or("", |c| c.name());
    json!({
        "field": location(problem.line, problem.row, items, column),
        "message": problem.message,
        "line": problem.line,
        "row": problem.row,
    })
}

/// The batch's file name: `?file_name=` (a plain name), or `api.csv` / `api.json`.
fn checked_file_name(given: Option<&str>, from_json: bool) -> Result<String, String> {
    let Some(name) = given.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(if from_json { "api.json" } else { "api.csv" }.to_owned());
    };
    let plain = name.len() <= 200
        && !name.starts_with('.')
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '.' | '_' | '-' | ' ' | '(' | ')'));
    if plain {
        Ok(name.to_owned())
    } else {
        Err(format!(
            "file_name {name:?}: a plain name (letters, digits, . _ - space, at most 200 characters)"
        ))
    }
}

fn random_hex() -> String {
    let mut bytes = [0u8; 8];
    let _ = getrandom::fill(&mut bytes);
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A JSON batch as the CSV file the batch rules read.
struct JsonBatch {
    /// `;`-separated, a header, a row per item that could be written.
    csv: Vec<u8>,
    /// The item (index in the array) of each row, in order.
    items: Vec<usize>,
    /// The items' own problems (not an object, an unknown member, a value of the wrong type,
    /// an empty payout); the rows' are found by the batch rules.
    problems: Vec<Value>,
}

/// A JSON array of payouts as the CSV file the batch rules read, with each item's own
/// problems; `Err` when it is not an array of payouts at all.
fn json_to_csv(body: &[u8]) -> Result<JsonBatch, Vec<Value>> {
    let field = |name: String, message: &str| json!({"field": name, "message": message});
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| vec![field(String::new(), &format!("not JSON: {e}"))])?;
    let Some(items) = value.as_array() else {
        return Err(vec![field(String::new(), "a JSON array of payouts")]);
    };
    let header = [
        "payment_id",
        "phone",
        "amount",
        "currency",
        "customer_id",
        "first_name",
        "last_name",
        "email",
        "ip_address",
        "description",
        "operator",
    ];
    let mut writer = csv::WriterBuilder::new()
        .delimiter(b';')
        .from_writer(Vec::new());
    let mut errors = Vec::new();
    let mut rows = Vec::with_capacity(items.len());
    let _ = writer.write_record(header);
    for (index, item) in items.iter().enumerate() {
        let at = |name: &str| format!("[{index}].{name}");
        if errors.len() >= LISTED_PROBLEMS {
            break;
        }
        let Some(object) = item.as_object() else {
            errors.push(field(format!("[{index}]"), "a payout is a JSON object"));
            continue;
        };
        for name in object.keys() {
            if !ITEM_FIELDS.contains(&name.as_str()) {
                errors.push(field(at(name), "unknown member"));
            }
        }
        let text = |name: &str, errors: &mut Vec<Value>| -> String {
            match object.get(name) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    errors.push(field(at(name), "a string"));
                    String::new()
                }
            }
        };
        let customer_text = |name: &str, errors: &mut Vec<Value>| -> String {
            match object.get("customer").and_then(|c| c.get(name)) {
                None | Some(Value::Null) => String::new(),
                Some(Value::String(s)) => s.clone(),
                Some(_) => {
                    errors.push(field(at(&format!("customer.{name}")), "a string"));
                    String::new()
                }
            }
        };
        if let Some(customer) = object.get("customer") {
            match customer.as_object() {
                Some(members) => {
                    for name in members.keys() {
                        if !["id", "first_name", "last_name", "email", "ip"]
                            .contains(&name.as_str())
                        {
                            errors.push(field(at(&format!("customer.{name}")), "unknown member"));
                        }
                    }
                }
                None => errors.push(field(at("customer"), "an object with id")),
            }
        }
        let currency = text("currency", &mut errors);
        let amount = match (object.get("amount"), object.get("amount_minor")) {
            (Some(_), Some(_)) => {
                errors.push(field(at("amount"), "amount or amount_minor, not both"));
                String::new()
            }
            (_, Some(minor)) => match minor.as_u64() {
                Some(minor) => {
                    let code = if currency.is_empty() {
                        "KZT"
                    } else {
                        &currency
                    };
                    match Currency::from_code(code) {
                        Some(c) => Money::from_minor(minor, c).decimal(),
                        None => {
                            errors.push(field(at("currency"), "an ISO 4217 code this rp knows"));
                            String::new()
                        }
                    }
                }
                None => {
                    errors.push(field(at("amount_minor"), "a whole number of minor units"));
                    String::new()
                }
            },
            _ => text("amount", &mut errors),
        };
        let record = [
            text("payment_id", &mut errors),
            text("phone", &mut errors),
            amount,
            currency,
            customer_text("id", &mut errors),
            customer_text("first_name", &mut errors),
            customer_text("last_name", &mut errors),
            customer_text("email", &mut errors),
            customer_text("ip", &mut errors),
            text("description", &mut errors),
            text("operator", &mut errors),
        ];
        // A row of blank cells is a blank line to the batch rules, skipped: refused here, so
        // that no payout goes missing.
        if record.iter().all(|cell| cell.trim().is_empty()) {
            errors.push(field(format!("[{index}]"), "an empty payout"));
            continue;
        }
        let _ = writer.write_record(&record);
        rows.push(index);
    }
    if items.is_empty() {
        return Err(vec![field(String::new(), "the array has no payout")]);
    }
    let csv = writer
        .into_inner()
        .map_err(|e| vec![field(String::new(), &e.to_string())])?;
    Ok(JsonBatch {
        csv,
        items: rows,
        problems: errors,
    })
}

/// The batch of the path, or a problem answer.
async fn find(desk: &Desk, id: &str) -> Result<BatchProgress, Response> {
    let not_found = || {
        failed(
            StatusCode::NOT_FOUND,
            "not-found",
            &format!("no batch {id} (a batch ID is 64 hex digits)"),
        )
    };
    let Ok(batch) = BatchId::from_str(id) else {
        return Err(not_found());
    };
    match desk.batches().progress(&batch.to_string()).await {
        Ok(Some(progress)) => Ok(progress),
        Ok(None) => Err(not_found()),
        Err(error) => Err(unavailable(&error.to_string())),
    }
}

/// `GET /api/v1/batches/{id}`.
pub(crate) async fn show(State(desk): State<Desk>, Path(id): Path<String>) -> Response {
    match find(&desk, &id).await {
        Ok(progress) => json_answer(StatusCode::OK, &batch_json(&progress)),
        Err(response) => response,
    }
}

/// `GET /api/v1/batches/{id}/report.csv`: every row with its payout's outcome (phone numbers
/// masked).
pub(crate) async fn report(State(desk): State<Desk>, Path(id): Path<String>) -> Response {
    let progress = match find(&desk, &id).await {
        Ok(progress) => progress,
        Err(response) => return response,
    };
    match crate::web::batches::report_download(&desk, &progress).await {
        Ok(response) => response,
        Err(text) => unavailable(&text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_batch_payout_takes_every_member_of_a_payout_but_metadata() {
        assert_eq!(FIELDS.last(), Some(&"metadata"));
        assert_eq!(ITEM_FIELDS.len(), FIELDS.len() - 1);
        assert!(!ITEM_FIELDS.contains(&"metadata"));
    }

    #[test]
    fn a_json_batch_becomes_the_csv_the_batch_rules_read() {
        let csv = json_to_csv(
            br#"[{"payment_id": "b-1", "phone": "+7 701 123 45 67", "amount": "1 500", "customer": {"id": "c;1"}},
                 {"phone": "87011234568", "amount_minor": 150050, "customer": {"id": "c-2"}, "description": "bonus"}]"#,
        )
        .unwrap();
        assert!(csv.problems.is_empty());
        assert_eq!(csv.items, [0, 1]);
        let text = String::from_utf8(csv.csv).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "payment_id;phone;amount;currency;customer_id;first_name;last_name;email;ip_address;description;operator"
        );
        assert_eq!(lines[1], "b-1;+7 701 123 45 67;1 500;;\"c;1\";;;;;;");
        assert_eq!(lines[2], ";87011234568;1500.50;;c-2;;;;;bonus;");
    }

    #[test]
    fn every_json_problem_is_named_with_its_item() {
        let batch = json_to_csv(
            br#"[{"payment_id": "p", "phone": 7701, "amount": "1", "amount_minor": 1, "customer": "x", "colour": "red"}, 3, {}]"#,
        )
        .unwrap();
        let fields: Vec<&str> = batch
            .problems
            .iter()
            .filter_map(|e| e["field"].as_str())
            .collect();
        for expected in [
            "[0].colour",
            "[0].customer",
            "[0].amount",
            "[0].phone",
            "[1]",
            "[2]",
        ] {
            assert!(fields.contains(&expected), "{expected} in {fields:?}");
        }
        assert_eq!(
            batch.items,
            [0],
            "rows only for the items that could be written"
        );
        assert!(json_to_csv(b"{}").is_err());
        assert!(json_to_csv(b"[]").is_err());
        assert!(json_to_csv(b"[").is_err());
        let many = format!("[{}]", vec!["0"; 5000].join(","));
        assert_eq!(
            json_to_csv(many.as_bytes()).unwrap().problems.len(),
            LISTED_PROBLEMS
        );
    }

    #[test]
    fn file_names_are_plain() {
        assert_eq!(checked_file_name(None, true).unwrap(), "api.json");
        assert_eq!(
            checked_file_name(Some("june payouts.csv"), false).unwrap(),
            "june payouts.csv"
        );
        assert!(checked_file_name(Some("../etc/passwd"), false).is_err());
        assert!(checked_file_name(Some(".hidden"), false).is_err());
        assert!(checked_file_name(Some("a/b.csv"), false).is_err());
    }
}
