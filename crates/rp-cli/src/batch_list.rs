//! `rp batch list` and `rp batch show BATCH`: the batches in the ledger as the Dashboard shows
//! them, and one batch's rows, with its report written from the ledger alone.

use std::path::PathBuf;
use std::time::SystemTime;

use rp_batch::BatchId;
use rp_ledger::{BatchProgress, BatchStore};
use rp_model::{Currency, Money};
use serde_json::{Value, json};

use crate::common::{Failure, print_json, runtime};
use crate::ledger_cmd::utc;

/// Options every `rp batch list|show` takes: the project, the ledger, JSON.
#[derive(Debug, clap::Args)]
pub(crate) struct LedgerView {
    #[command(flatten)]
    project: crate::common::ProjectArg,
    #[command(flatten)]
    ledger: crate::ledger_cmd::LedgerArgs,
    /// Print JSON for scripts instead of text for people.
    #[arg(long)]
    json: bool,
}

/// `rp batch list`.
#[derive(Debug, clap::Args)]
pub(crate) struct ListArgs {
    /// How many batches (1 to 500), newest first.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u16).range(1..=500))]
    limit: u16,
    #[command(flatten)]
    view: LedgerView,
}

/// `rp batch show BATCH`.
#[derive(Debug, clap::Args)]
pub(crate) struct ShowArgs {
    /// The batch: its ID (the file's SHA-256) or the first 8 or more of its hex digits, as
    /// `rp batch list` shows it.
    batch: String,
    /// Write every row of the batch, in file order, with what became of it, to this CSV
    /// file (from the ledger alone: the file is not needed).
    #[arg(long, value_name = "OUT.csv")]
    report: Option<PathBuf>,
    #[command(flatten)]
    view: LedgerView,
}

/// Runs `rp batch list`.
pub(crate) fn list(args: &ListArgs) -> Result<(), Failure> {
    let project = args.view.project.id()?;
    runtime()?.block_on(async {
        let ledger = args.view.ledger.open().await?;
        let batches = ledger.batches(project);
        let page = batches.list(None, usize::from(args.limit)).await?;
        if args.view.json {
            let items: Vec<Value> = page.iter().map(batch_json).collect();
            print_json(&json!({ "batches": items }));
            return Ok(());
        }
        if page.is_empty() {
            println!(
                "no batches in this ledger for project {project} (rp batch run FILE makes one)"
            );
            return Ok(());
        }
        println!(
            "{:<20}  {:<20}  {:<24}  {:>7}  {:>20}  {:>8}  {:>8}  state",
            "created (UTC)", "batch", "file", "rows", "total", "+success", "-decline"
        );
        for batch in &page {
            let info = &batch.info.batch;
            println!(
                "{:<20}  {:<20}  {:<24}  {:>7}  {:>20}  {:>8}  {:>8}  {}",
                utc(batch.info.created_at),
                info.id.get(..20).unwrap_or(&info.id),
                shorten(&printable(&info.file_name), 24),
                info.rows,
                totals_text(&info.totals),
                batch.count("success"),
                batch.count("decline"),
                batch.state()
            );
        }
        Ok(())
    })
}

/// Runs `rp batch show BATCH`.
pub(crate) fn show(args: &ShowArgs) -> Result<(), Failure> {
    let project = args.view.project.id()?;
    runtime()?.block_on(async {
        let ledger = args.view.ledger.open().await?;
        let batches = ledger.batches(project);
        let batch = find(batches.as_ref(), &args.batch).await?;
        let id = batch.info.batch.id.clone();
        if let Some(out) = &args.report {
            let batch_id = id.parse::<BatchId>().map_err(Failure::usage)?;
            crate::batch_run::write_report(
                batches.as_ref(),
                ledger.store(project).as_ref(),
                batch_id,
                out,
            )
            .await?;
        }
        if args.view.json {
            print_json(&batch_json(&batch));
            return Ok(());
        }
        let info = &batch.info.batch;
        println!("batch     {id}");
        println!("file      {}", printable(&info.file_name));
        println!("created   {}", utc(batch.info.created_at));
        println!(
            "rows      {} ({} valid, {} invalid)",
            info.rows,
            info.valid_rows,
            info.rows.saturating_sub(info.valid_rows)
        );
        println!("total     {}", totals_text(&info.totals));
        println!("state     {}", batch.state());
        let counts: Vec<String> = batch
            .by_label
            .iter()
            .map(|(label, n)| format!("{label} {n}"))
            .collect();
        println!("payouts   {}", counts.join(", "));
        if batch.undone > 0 {
            println!(
                "left      {} row(s) not paid yet ({} held by a running worker)",
                batch.undone, batch.claimed
            );
        }
        if args.report.is_none() {
            println!("rows: rp batch show {} --report OUT.csv", &id[..20]);
        }
        Ok(())
    })
}

/// The batch `text` names: a whole ID, or a prefix of at least 8 hex digits that only one
/// batch of the project has.
async fn find(batches: &dyn BatchStore, text: &str) -> Result<BatchProgress, Failure> {
    let wanted = text.trim().to_ascii_lowercase();
    if wanted.len() < 8 || wanted.len() > 64 || !wanted.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(Failure::usage(format!(
            "{text:?} is not a batch ID: give the file's SHA-256, or at least its first 8 hex \
             digits, as `rp batch list` shows them"
        )));
    }
    if wanted.len() == 64 {
        return batches
            .progress(&wanted)
            .await?
            .ok_or_else(|| Failure::refused(not_found(&wanted)));
    }
    let mut found = Vec::new();
    let mut before: Option<(SystemTime, String)> = None;
    loop {
        let page = batches.list(before.clone(), 500).await?;
        let Some(last) = page.last() else { break };
        before = Some((last.info.created_at, last.info.batch.id.clone()));
        found.extend(
            page.into_iter()
                .filter(|b| b.info.batch.id.starts_with(&wanted)),
        );
    }
    match found.len() {
        0 => Err(Failure::refused(not_found(&wanted))),
        1 => Ok(found.remove(0)),
        n => Err(Failure::usage(format!(
            "{n} batches start with {wanted}: give more of the ID"
        ))),
    }
}

fn not_found(id: &str) -> String {
    format!("no batch {id} in this ledger for this project (check --ledger and --project-id)")
}

fn batch_json(batch: &BatchProgress) -> Value {
    let info = &batch.info.batch;
    let totals: Vec<Value> = info
        .totals
        .iter()
        .map(|(currency, minor)| json!({ "currency": currency, "amount_minor": minor }))
        .collect();
    let counts: serde_json::Map<String, Value> = batch
        .by_label
        .iter()
        .map(|(label, n)| (label.clone(), json!(n)))
        .collect();
    json!({
        "batch_id": info.id,
        "file_name": info.file_name,
        "created_at": utc(batch.info.created_at),
        "rows": info.rows,
        "valid_rows": info.valid_rows,
        "totals": totals,
        "state": batch.state().as_str(),
        "success": batch.count("success"),
        "decline": batch.count("decline"),
        "by_state": counts,
        "undone": batch.undone,
        "claimed": batch.claimed,
        "waiting": batch.waiting,
    })
}

/// `1 500,50 ₸ + 10,00 $`, in Kazakh formatting.
fn totals_text(totals: &[(String, u64)]) -> String {
    let parts: Vec<String> = totals
        .iter()
        .map(|(code, minor)| match Currency::from_code(code) {
            Some(currency) => Money::from_minor(*minor, currency).to_string(),
            None => format!("{minor} {code} (minor units)"),
        })
        .collect();
    if parts.is_empty() {
        "0".to_owned()
    } else {
        parts.join(" + ")
    }
}

/// `text` safe for a terminal: control characters (escape sequences, line breaks) written
/// as escapes, never sent raw.
fn printable(text: &str) -> String {
    text.chars()
        .map(|c| {
            if c.is_control() {
                c.escape_default().to_string()
            } else {
                c.to_string()
            }
        })
        .collect()
}

/// `text`, cut to `width` characters with `…` when longer.
fn shorten(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(width.saturating_sub(1)).collect();
    short.push('…');
    short
}
