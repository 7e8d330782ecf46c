//! Mass payouts: `/batches` (the list as the Dashboard shows it: batch ID, file, rows,
//! +success/−decline, state, date), `/batches/{id}` (progress, live) and
//! `/batches/{id}/report.csv` (every row with its payout's outcome, from the ledger).

use std::io::{Read as _, Seek as _, SeekFrom};
use std::str::FromStr as _;
use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use maud::{Markup, html};
use rp_batch::BatchId;
use rp_ledger::{BatchProgress, BatchState};
use rp_model::{Currency, Money};
use tokio::sync::mpsc;

use super::layout::{badge, notice, page, utc};
use super::{ChannelStream, html, ledger_failed, problem};
use crate::{Desk, Me};

/// Batches listed on the page.
const LIST: usize = 100;

/// `/batches`.
pub(crate) async fn list(State(desk): State<Desk>, Extension(me): Extension<Me>) -> Response {
    let batches = match desk.batches().list(None, LIST).await {
        Ok(batches) => batches,
        Err(error) => return ledger_failed(Some(&me), &error),
    };
    let body = html! {
        h1 { "Mass payouts" }
        @if me.role.may_pay() { p { a.button href="/batches/new" { "New mass payout" } } }
        p.muted { "Batches uploaded here or run with " code { "rp batch run FILE" } " on this ledger; a stopped batch is resumed by the batch worker of " code { "rp serve" } "." }
        @if batches.is_empty() {
            p.muted { "No batches yet." }
        } @else {
            div.table-wrap { table {
                thead { tr {
                    th { "Created (UTC)" } th { "Batch" } th { "File" } th.num { "Rows" }
                    th.num { "Total" } th.num { "+ success" } th.num { "− decline" } th { "State" }
                } }
                tbody { @for batch in &batches { (batch_row(batch)) } }
            } }
        }
    };
    html(page("Mass payouts", Some(&me), "/batches", body))
}

fn batch_row(batch: &BatchProgress) -> Markup {
    let info = &batch.info.batch;
    html! {
        tr {
            td { (utc(batch.info.created_at)) }
            td { a href={"/batches/" (info.id)} { code { (info.id.get(..12).unwrap_or(&info.id)) } } }
            td { (info.file_name) }
            td.num { (info.rows) }
            td.num { (totals(&info.totals)) }
            td.num { (batch.count("success")) }
            td.num { (batch.count("decline")) }
            td { (state_badge(batch.state())) }
        }
    }
}

fn state_badge(state: BatchState) -> Markup {
    let label = match state {
        BatchState::Done => "success",
        BatchState::Stopped | BatchState::Paused => "error",
        _ => "processing",
    };
    html! { span class={"badge " (if label == "success" { "good" } else if label == "error" { "bad" } else { "wait" })} { (state.as_str()) } }
}

/// Totals per currency in Kazakh formatting.
fn totals(totals: &[(String, u64)]) -> String {
    totals
        .iter()
        .map(|(code, minor)| {
            Currency::from_code(code).map_or_else(
                || format!("{minor} {code} (minor units)"),
                |currency| Money::from_minor(*minor, currency).to_string(),
            )
        })
        .collect::<Vec<_>>()
        .join(" + ")
}

/// The batch of the path, or a 404 page.
async fn find(desk: &Desk, me: &Me, id: &str) -> Result<BatchProgress, Response> {
    let Ok(batch) = BatchId::from_str(id) else {
        return Err(problem(
            StatusCode::NOT_FOUND,
            Some(me),
            "Not a batch ID (64 hex digits).",
        ));
    };
    match desk.batches().progress(&batch.to_string()).await {
        Ok(Some(progress)) => Ok(progress),
        Ok(None) => Err(problem(
            StatusCode::NOT_FOUND,
            Some(me),
            &format!("No batch {batch} in the ledger."),
        )),
        Err(error) => Err(ledger_failed(Some(me), &error)),
    }
}

/// `/batches/{id}`.
pub(crate) async fn show(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    let batch = match find(&desk, &me, &id).await {
        Ok(batch) => batch,
        Err(response) => return response,
    };
    let info = &batch.info.batch;
    let body = html! {
        h1 { "Batch " code { (info.id.get(..12).unwrap_or(&info.id)) } }
        div.card {
            dl.facts {
                dt { "Batch ID" } dd { code { (info.id) } }
                dt { "File" } dd { (info.file_name) }
                dt { "Registered (UTC)" } dd { (utc(batch.info.created_at)) }
                dt { "Rows" } dd { (info.rows) " (" (info.valid_rows) " valid)" }
                dt { "Total" } dd { (totals(&info.totals)) }
            }
        }
        div.card #progress data-refresh={"/batches/" (info.id) "/progress"} data-every="1500" { (progress_part(&batch, &me)) }
        p.actions {
            a.button href={"/batches/" (info.id) "/report.csv"} { "Download the report" }
            a href={"/payments?batch=" (info.id)} { "Its payouts" }
        }
    };
    html(page("Batch", Some(&me), "/batches", body))
}

fn progress_part(batch: &BatchProgress, me: &Me) -> Markup {
    let valid = batch.info.batch.valid_rows.max(1);
    let settled: u64 = batch
        .by_label
        .iter()
        .filter(|(label, _)| matches!(label.as_str(), "success" | "decline" | "rejected"))
        .map(|(_, n)| n)
        .sum();
    let state = batch.state();
    html! {
        h2 { "Progress" }
        p { (state_badge(state)) " · " (settled) " of " (batch.info.batch.valid_rows) " valid rows final"
            " · " (batch.undone) " left in this pass · " (batch.waiting) " waiting for their status" }
        progress max=(valid) value=(settled.min(valid)) {}
        @if state == BatchState::Done { span data-final="1" {} }
        @if state == BatchState::Stopped { (notice("info", "Stopped: rows are left and no worker holds them (a worker stopped without finishing). The batch worker of rp serve resumes it.")) }
        @if state == BatchState::Paused {
            (notice("info", "Paused: stopped on purpose, rows left. Nothing resumes it by itself."))
            @if me.role.may_pay() {
                form method="post" action={"/batches/" (batch.info.batch.id) "/resume"} {
                    (super::layout::csrf_field(me))
                    button type="submit" { "Resume" }
                }
            }
        }
        ul { @for (label, count) in &batch.by_label { li { (badge(label)) " " (count) } } }
    }
}

/// `POST /batches/{id}/resume`: a paused batch is no longer paused, and this instance pays
/// it (under the stricter of the project's limits and the batch's).
pub(crate) async fn resume(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    if let Err(response) = super::payment::require_pay(&me) {
        return response;
    }
    let batch = match find(&desk, &me, &id).await {
        Ok(batch) => batch,
        Err(response) => return response,
    };
    let id = batch.info.batch.id.clone();
    if let Err(error) = desk.batches().set_paused(&id, false).await {
        return ledger_failed(Some(&me), &error);
    }
    tracing::info!(operator = %me.name, batch = %id, "batch resumed from the console");
    match crate::serve::batch_client(&desk, &batch.info.batch) {
        Ok(client) => {
            if let Ok(batch_id) = BatchId::from_str(&id) {
                // Its payouts are recorded as the resuming operator's.
                super::upload::start(&desk, batch_id, Arc::new(client.recording_as(me.source())));
            }
        }
        Err(reason) => {
            return problem(
                StatusCode::CONFLICT,
                Some(&me),
                &format!("This batch cannot be paid by this rp: {reason}."),
            );
        }
    }
    axum::response::Redirect::to(&format!("/batches/{id}")).into_response()
}

/// `/batches/{id}/progress`: the live part alone.
pub(crate) async fn progress_fragment(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    match find(&desk, &me, &id).await {
        Ok(batch) => html(progress_part(&batch, &me)),
        Err(response) => response,
    }
}

/// `/batches/{id}/report.csv`: written from the ledger into a temporary file, then streamed
/// (memory stays flat for a million rows).
pub(crate) async fn report(
    State(desk): State<Desk>,
    Extension(me): Extension<Me>,
    Path(id): Path<String>,
) -> Response {
    let batch = match find(&desk, &me, &id).await {
        Ok(batch) => batch,
        Err(response) => return response,
    };
    match report_download(&desk, &batch).await {
        Ok(response) => {
            tracing::info!(operator = %me.name, batch = %batch.info.batch.id, "batch report downloaded");
            response
        }
        Err(text) => problem(StatusCode::SERVICE_UNAVAILABLE, Some(&me), &text),
    }
}

/// A batch's report as a CSV download (phone numbers masked, formula cells defused), or why
/// it could not be made. Shared by the console and the API.
pub(crate) async fn report_download(
    desk: &Desk,
    batch: &BatchProgress,
) -> Result<Response, String> {
    let batch_id =
        BatchId::from_str(&batch.info.batch.id).map_err(|_| "not a batch ID".to_owned())?;
    let mut file =
        tempfile().map_err(|e| format!("Could not make a temporary file for the report: {e}"))?;
    rp_batch::report::write_report(
        desk.batches().as_ref(),
        desk.client().store().as_ref(),
        batch_id,
        &mut file,
    )
    .await
    .map_err(|e| format!("Could not write the report: {e}"))?;
    let delimiter = batch.info.batch.delimiter;
    let phone = phone_position(&batch.info.batch.header, delimiter);
    let mut file = tokio::task::spawn_blocking(move || {
        file.seek(SeekFrom::Start(0))?;
        for_people(file, delimiter, phone)
    })
    .await
    .map_err(std::io::Error::other)
    .and_then(|made| made)
    .map_err(|e| format!("Could not read the report back: {e}"))?;
    let (sender, receiver) = mpsc::channel(4);
    tokio::task::spawn_blocking(move || {
        let mut chunk = vec![0u8; 64 * 1024];
        loop {
            match file.read(&mut chunk) {
                Ok(0) => return,
                Ok(n) => {
                    if sender
                        .blocking_send(Ok(Bytes::copy_from_slice(&chunk[..n])))
                        .is_err()
                    {
                        return;
                    }
                }
                Err(error) => {
                    let _ = sender.blocking_send(Err(error));
                    return;
                }
            }
        }
    });
    let name = format!(
        "attachment; filename=\"report-{}.csv\"",
        batch.info.batch.id.get(..12).unwrap_or_default()
    );
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, name),
        ],
        axum::body::Body::from_stream(ChannelStream(receiver)),
    )
        .into_response())
}

/// Where the phone numbers are in a batch's rows, from its header.
fn phone_position(header: &[u8], delimiter: u8) -> Option<usize> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .from_reader(header);
    let record = reader.records().next()?.ok()?;
    rp_batch::Header::parse(record.iter())
        .ok()?
        .position(rp_batch::Column::Phone)
}

/// The report as the console serves it (to any operator, "view" ones included): phone numbers
/// masked, and a cell a spreadsheet would run as a formula (`=`, `+`, `-`, `@` first)
/// prefixed with `'`. (`rp batch show --report` on the ledger's machine gives the cells as
/// they were.)
fn for_people(
    report: std::fs::File,
    delimiter: u8,
    phone: Option<usize>,
) -> std::io::Result<std::fs::File> {
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(delimiter)
        .has_headers(false)
        .flexible(true)
        .from_reader(std::io::BufReader::new(report));
    let out = tempfile()?;
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .flexible(true)
        .from_writer(std::io::BufWriter::new(out));
    for (index, record) in reader.records().enumerate() {
        let record = record.map_err(std::io::Error::other)?;
        let cells = record.iter().enumerate().map(|(position, cell)| {
            if index == 0 {
                return cell.to_owned();
            }
            let cell = if Some(position) == phone {
                rp_model::Msisdn::parse(cell).map_or_else(
                    |_| super::layout::mask_digits(cell),
                    |number| number.masked(),
                )
            } else {
                cell.to_owned()
            };
            if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
                format!("'{cell}")
            } else {
                cell
            }
        });
        writer
            .write_record(cells.collect::<Vec<_>>())
            .map_err(std::io::Error::other)?;
    }
    let mut out = writer
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?
        .into_inner()
        .map_err(|e| std::io::Error::other(e.to_string()))?;
    out.seek(SeekFrom::Start(0))?;
    Ok(out)
}

/// A new temporary file, already unlinked (nothing is left behind, whatever happens).
fn tempfile() -> std::io::Result<std::fs::File> {
    let name = crate::auth::new_token().map_err(std::io::Error::other)?;
    let path = std::env::temp_dir().join(format!("rp-report-{}.csv", &name[..16]));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}
