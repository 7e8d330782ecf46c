//! Mass payouts from the console: `/batches/new` (the upload form) → `POST /batches/upload`
//! (the file kept under its SHA-256, every row checked as `rp batch check` does: each
//! problem with its line; payment IDs the ledger holds for another payout) → `POST
//! /batches/{id}/confirm` (rows and total confirmed: registered in the ledger, then paid in
//! the background by this instance) → `/batches/{id}` (progress, live; the report).
//!
//! A file with a problem cannot be confirmed: the corrected file is uploaded again (it is
//! another batch, with its own ID). The same file uploaded twice is the same batch, never
//! paid twice.

use std::path::{Path as FsPath, PathBuf};
use std::str::FromStr as _;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Multipart, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Redirect, Response};
use maud::html;
use rp_batch::run::{Clash, preflight, register};
use rp_batch::{BatchId, CheckReport, RowError, check_file};
use rp_ledger::{OnClash, Registered};
use tokio::io::AsyncWriteExt as _;

use super::layout::{notice, page};
use super::payment::require_pay;
use super::{UPLOAD_IDLE_TIMEOUT, html, problem};
use crate::{Desk, Me};

/// Problems shown on the check page, at most (the count says how many there are).
const SHOWN_PROBLEMS: usize = 200;

/// `/batches/new`.
pub(crate) async fn new(State(desk): State<Desk>, Extension(me): Extension<Me>) -> Response {
    let limit = desk.settings().max_upload_bytes / (1024 * 1024);
    let body = html! {
        h1 { "New mass payout" }
        @if !me.role.may_pay() {
            (notice("error", "Your role is \"view\": you can see payouts, not make them."))
        } @else {
            p { "A CSV file with a header: " code { "phone;amount;customer_id" } " at least (also "
                code { "payment_id" } ", " code { "description" } ", " code { "operator" } ", …; "
                code { "rp batch check --help" } " has the format). Every row is checked before anything is sent." }
            form.card method="post" action={"/batches/upload?csrf=" (me.csrf)} enctype="multipart/form-data" {
                div.field {
                    label for="file" { "File (at most " (limit) " MiB)" }
                    input #file name="file" type="file" accept=".csv,text/csv" required;
                }
                button type="submit" { "Check the file" }
            }
        }
    };
    html(page("New mass payout", Some(&me), "/batches", body))
}

/// Where an uploaded file waits for its confirmation: `DIR/<batch ID>.csv`.
fn kept(desk: &Desk, batch: BatchId) -> PathBuf {
    desk.settings().uploads.join(format!("{batch}.csv"))
}

/// `POST /batches/upload`: the file streamed to disk (within the size limit), checked, kept
/// under its batch ID, and the check shown.
pub(crate) async fn upload(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    mut multipart: Multipart,
) -> Response {
    if let Err(response) = require_pay(&me) {
        return response;
    }
    let dir = desk.settings().uploads.clone();
    if let Err(error) = tokio::fs::create_dir_all(&dir).await {
        return unavailable(&me, &format!("cannot make {}: {error}", dir.display()));
    }
    let received = match receive(&desk, &mut multipart, &dir).await {
        Ok(received) => received,
        Err(Received::Refused(text)) => return refuse(&me, StatusCode::BAD_REQUEST, &text),
        Err(Received::Failed(text)) => return unavailable(&me, &text),
    };
    let (temp, name) = received;
    let limits = desk.client().config().limits;
    let checked = {
        let temp = temp.clone();
        tokio::task::spawn_blocking(move || {
            let mut problems = Vec::new();
            let mut count = 0u64;
            let report = check_file(&temp, &limits, |problem: &RowError| {
                count += 1;
                if problems.len() < SHOWN_PROBLEMS {
                    problems.push(problem.to_string());
                }
            });
            report.map(|report| (report, problems, count))
        })
        .await
    };
    let (report, problems, problem_count) = match checked {
        Ok(Ok(checked)) => checked,
        Ok(Err(error)) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return refuse(
                &me,
                StatusCode::UNPROCESSABLE_ENTITY,
                &format!("{name}: {error}"),
            );
        }
        Err(error) => {
            let _ = tokio::fs::remove_file(&temp).await;
            return unavailable(&me, &format!("the check stopped: {error}"));
        }
    };
    let path = kept(&desk, report.batch);
    if let Err(error) = tokio::fs::rename(&temp, &path).await {
        let _ = tokio::fs::remove_file(&temp).await;
        return unavailable(&me, &format!("cannot keep the file: {error}"));
    }
    let project = desk.client().project_id();
    let clashes = match preflight(
        &path,
        report.batch,
        desk.client().store().as_ref(),
        desk.batches().as_ref(),
        project,
    )
    .await
    {
        Ok(clashes) => clashes,
        Err(error) => return unavailable(&me, &error.to_string()),
    };
    tracing::info!(operator = %me.name, batch = %report.batch, rows = report.rows, file = %name, "batch file uploaded and checked");
    let mut response = html(check_page(
        &me,
        &name,
        &report,
        &problems,
        problem_count,
        &clashes,
    ));
    if !problems.is_empty() || !clashes.is_empty() {
        *response.status_mut() = StatusCode::UNPROCESSABLE_ENTITY;
    }
    response
}

enum Received {
    /// The upload is not acceptable (no file, too large, a bad name).
    Refused(String),
    /// This side failed.
    Failed(String),
}

/// Streams the `file` part to a new file in `dir`: its path and the file's name as sent.
async fn receive(
    desk: &Desk,
    multipart: &mut Multipart,
    dir: &FsPath,
) -> Result<(PathBuf, String), Received> {
    let max = desk.settings().max_upload_bytes;
    loop {
        // The next part's headers (and the rest of a part skipped) in time too.
        let field = match tokio::time::timeout(UPLOAD_IDLE_TIMEOUT, multipart.next_field()).await {
            Ok(Ok(Some(field))) => field,
            Ok(Ok(None)) => return Err(Received::Refused("no file was sent".to_owned())),
            Ok(Err(error)) => {
                return Err(Received::Refused(format!(
                    "the upload is not a readable form: {error}"
                )));
            }
            Err(_) => {
                return Err(Received::Refused(format!(
                    "the upload stalled for {} s",
                    UPLOAD_IDLE_TIMEOUT.as_secs()
                )));
            }
        };
        if field.name() != Some("file") {
            continue;
        }
        let name = field
            .file_name()
            .map(|n| {
                n.rsplit(['/', '\\'])
                    .next()
                    .unwrap_or("payouts.csv")
                    .chars()
                    .filter(|c| !c.is_control())
                    .take(128)
                    .collect::<String>()
            })
            .filter(|n| !n.trim().is_empty())
            .unwrap_or_else(|| "payouts.csv".to_owned());
        let token = crate::auth::new_token().map_err(Received::Failed)?;
        let temp = dir.join(format!("upload-{}.part", &token[..16]));
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| Received::Failed(format!("cannot store the upload: {e}")))?;
        let mut size = 0usize;
        let mut field = field;
        loop {
            let chunk = match tokio::time::timeout(UPLOAD_IDLE_TIMEOUT, field.chunk()).await {
                Ok(Ok(Some(chunk))) => chunk,
                Ok(Ok(None)) => break,
                Ok(Err(error)) => {
                    let _ = tokio::fs::remove_file(&temp).await;
                    return Err(Received::Refused(format!("the upload broke off: {error}")));
                }
                Err(_) => {
                    let _ = tokio::fs::remove_file(&temp).await;
                    return Err(Received::Refused(format!(
                        "the upload stalled for {} s",
                        UPLOAD_IDLE_TIMEOUT.as_secs()
                    )));
                }
            };
            size += chunk.len();
            if size > max {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(Received::Refused(format!(
                    "the file is larger than {} MiB; split it into several batches",
                    max / (1024 * 1024)
                )));
            }
            if let Err(error) = file.write_all(&chunk).await {
                let _ = tokio::fs::remove_file(&temp).await;
                return Err(Received::Failed(format!(
                    "cannot store the upload: {error}"
                )));
            }
        }
        if let Err(error) = file.sync_all().await {
            let _ = tokio::fs::remove_file(&temp).await;
            return Err(Received::Failed(format!(
                "cannot store the upload: {error}"
            )));
        }
        return Ok((temp, name));
    }
}

fn check_page(
    me: &Me,
    name: &str,
    report: &CheckReport,
    problems: &[String],
    problem_count: u64,
    clashes: &[Clash],
) -> maud::Markup {
    let totals: Vec<String> = report.totals.iter().map(ToString::to_string).collect();
    let payable = problem_count == 0 && clashes.is_empty() && report.valid_rows > 0;
    let body = html! {
        h1 { "Check of " (name) }
        div.card {
            dl.facts {
                dt { "Batch ID" } dd { code { (report.batch) } }
                dt { "Rows" } dd { (report.rows) }
                dt { "Valid" } dd { (report.valid_rows) }
                dt { "Invalid" } dd { (report.invalid_rows) }
                dt { "Over a limit" } dd { (report.over_limit_rows) }
                dt { "Total" } dd { strong { (totals.join(" + ")) } }
                @for operator in &report.operators { dt { (operator.label) } dd { (operator.rows) " rows" } }
            }
        }
        @if !problems.is_empty() {
            h2 { (problem_count) " problem(s): nothing can be sent until the file is corrected" }
            ul.problems { @for problem in problems { li.error-text { (problem) } } }
            @if problem_count > problems.len() as u64 { p.muted { "… and " (problem_count - problems.len() as u64) " more (rp batch check FILE lists them all)." } }
        }
        @if !clashes.is_empty() {
            h2 { "Payment IDs the ledger holds for other payouts" }
            ul { @for clash in clashes { li.error-text { (clash) } } }
        }
        @if payable {
            form.card method="post" action={"/batches/" (report.batch) "/confirm"} {
                input type="hidden" name="csrf" value=(me.csrf);
                p { "Pay " strong { (report.valid_rows) " payouts" } ", " strong { (totals.join(" + ")) } " in all?" }
                button type="submit" { "Confirm and pay" }
            }
        } @else if report.valid_rows == 0 && problems.is_empty() {
            (notice("error", "The file has no row to pay."))
        } @else {
            p { a.button href="/batches/new" { "Upload the corrected file" } }
        }
    };
    page("Check a mass payout", Some(me), "/batches", body)
}

/// `POST /batches/{id}/confirm`: the kept file checked again, registered in the ledger (the
/// same file is never a second batch), then paid in the background.
pub(crate) async fn confirm(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = require_pay(&me) {
        return response;
    }
    let Ok(batch) = BatchId::from_str(&id) else {
        return refuse(&me, StatusCode::NOT_FOUND, "Not a batch ID.");
    };
    let path = kept(&desk, batch);
    if !tokio::fs::try_exists(&path).await.unwrap_or(false) {
        // Already registered (confirmed twice, or on another instance): its page.
        if let Ok(Some(_)) = desk.batches().info(&batch.to_string()).await {
            return Redirect::to(&format!("/batches/{batch}")).into_response();
        }
        return refuse(
            &me,
            StatusCode::GONE,
            "This upload is no longer here (confirmed on another instance, or the server restarted): upload the file again.",
        );
    }
    let limits = desk.client().config().limits;
    let checked = {
        let path = path.clone();
        tokio::task::spawn_blocking(move || check_file(&path, &limits, |_| {})).await
    };
    let report = match checked {
        Ok(Ok(report)) if report.batch == batch && report.is_valid() && report.valid_rows > 0 => {
            report
        }
        Ok(Ok(_)) => {
            return refuse(
                &me,
                StatusCode::CONFLICT,
                "The file no longer passes its check (or is another file): upload it again.",
            );
        }
        Ok(Err(error)) => return refuse(&me, StatusCode::UNPROCESSABLE_ENTITY, &error.to_string()),
        Err(error) => return unavailable(&me, &error.to_string()),
    };
    let project = desk.client().project_id();
    match preflight(
        &path,
        batch,
        desk.client().store().as_ref(),
        desk.batches().as_ref(),
        project,
    )
    .await
    {
        Ok(clashes) if clashes.is_empty() => {}
        Ok(_) => {
            return refuse(
                &me,
                StatusCode::CONFLICT,
                "Some rows use payment IDs the ledger holds for other payouts; nothing was sent. Upload the file again to see them.",
            );
        }
        Err(error) => return unavailable(&me, &error.to_string()),
    }
    let registered = register(
        &path,
        &report,
        desk.batches().as_ref(),
        project,
        limits,
        OnClash::Refuse,
    )
    .await;
    let _ = tokio::fs::remove_file(&path).await;
    match registered {
        Ok(Registered::New) => {
            tracing::info!(operator = %me.name, batch = %batch, rows = report.valid_rows, "batch confirmed from the console; paying");
            // Registered just now with the project's limits, which the desk's client applies;
            // its payouts are recorded as the confirming operator's.
            let client = desk.client().with_limits(limits).recording_as(me.source());
            start(&desk, batch, Arc::new(client));
        }
        Ok(Registered::Clashes(_)) => {
            return refuse(
                &me,
                StatusCode::CONFLICT,
                "Since the check, the ledger took some of these payment IDs for other payouts (another batch, or a payout); nothing was sent. Upload the file again to see them.",
            );
        }
        Ok(Registered::Existing) => {
            tracing::info!(operator = %me.name, batch = %batch, "batch confirmed again: already registered");
        }
        Err(error) => return unavailable(&me, &error.to_string()),
    }
    Redirect::to(&format!("/batches/{batch}")).into_response()
}

/// Pays `batch` in the background with `client` (as one more worker: others on the ledger
/// may join).
pub(crate) fn start(desk: &Desk, batch: BatchId, client: Arc<rp_payout::Client>) {
    let batches = Arc::clone(desk.batches());
    let stop = desk.stopping();
    let options = desk.settings().batch_options;
    desk.run_in_background(async move {
        match rp_batch::run::run(batch, client, batches, options, &stop, |_, _| {}).await {
            Ok(summary) => tracing::info!(batch = %batch, ?summary, "console batch: pass finished"),
            Err(error) => tracing::warn!(batch = %batch, %error, "console batch failed; the batch worker resumes it"),
        }
    });
}

fn refuse(me: &Me, status: StatusCode, text: &str) -> Response {
    problem(status, Some(me), text)
}

fn unavailable(me: &Me, text: &str) -> Response {
    tracing::error!(error = %text, "console upload failed");
    problem(StatusCode::SERVICE_UNAVAILABLE, Some(me), text)
}
