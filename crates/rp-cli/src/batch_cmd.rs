//! `rp batch`: mass payouts from a CSV file. `check` validates a file and sends nothing.

use std::path::PathBuf;

use rp_batch::{CheckReport, Headroom, LimitKind, Limits, RowError, check_file};
use rp_model::{Currency, Money};

use crate::common::{EXIT_USAGE, Failure, print_json};

/// `rp batch`.
#[derive(Debug, clap::Args)]
pub(crate) struct BatchArgs {
    #[command(subcommand)]
    command: BatchCommand,
}

#[derive(Debug, clap::Subcommand)]
enum BatchCommand {
    /// Validate a payout file: every problem on its own line (line, column, reason), then a
    /// summary. Sends nothing and needs no key. Exit 0 when every row is valid and within the
    /// limits, 2 otherwise.
    #[command(after_help = CHECK_HELP)]
    Check(CheckArgs),
    /// Pay every row of a payout file: checked whole first, confirmed, sent at a bounded rate,
    /// resumable by running the same file again.
    #[command(after_help = crate::batch_run::RUN_HELP)]
    Run(Box<crate::batch_run::RunArgs>),
    /// The batches in the ledger, newest first, as the Dashboard shows them: batch ID, file,
    /// rows, total, +success, -decline, state, created.
    List(crate::batch_list::ListArgs),
    /// One batch: its counts by state, and with --report every row with what became of it.
    Show(crate::batch_list::ShowArgs),
}

const CHECK_HELP: &str = "\
The file (our format; the platform does not publish its Dashboard template): a header row, then
one payout per row. Columns in any order, names case-insensitive: payment_id (optional), phone,
amount, currency (default KZT), customer_id, first_name, last_name, email, ip_address,
description, operator. Delimiter , or ; (detected from the header); UTF-8 with or without BOM.
A row without payment_id gets rpb-<first 20 hex digits of the file's SHA-256>-<row>: run the
same file unchanged to resume it; an edited file is a new batch with new IDs.

Limits are amounts in tenge as people write them (--max-amount '100 000') or counts; each flag
also reads its RP_LIMIT_* variable. Rows are counted against them in file order from zero: what
was already paid today is in the ledger, which `rp batch check` does not read.";

/// `rp batch check FILE`.
#[derive(Debug, clap::Args)]
pub(crate) struct CheckArgs {
    /// The CSV file.
    file: PathBuf,
    #[command(flatten)]
    limits: LimitArgs,
    /// Print one JSON object (errors, totals, operators, limits) instead of text.
    #[arg(long)]
    json: bool,
}

/// The project's limits, as flags (or `RP_LIMIT_*`), or a file.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LimitArgs {
    /// A TOML file of limits (keys as the flags, with `_`: `daily_amount = "5 000 000"`,
    /// `daily_count = 1000`); a flag or variable also given wins over the file.
    #[arg(long = "limits", env = "RP_LIMITS_FILE", value_name = "FILE")]
    limits_file: Option<PathBuf>,
    /// The smallest amount of one payout, in tenge (e.g. 100).
    #[arg(long, env = "RP_LIMIT_MIN_AMOUNT", value_name = "TENGE")]
    min_amount: Option<String>,
    /// The largest amount of one payout, in tenge (e.g. '100 000').
    #[arg(long, env = "RP_LIMIT_MAX_AMOUNT", value_name = "TENGE")]
    max_amount: Option<String>,
    /// The most paid out per day, in tenge.
    #[arg(long, env = "RP_LIMIT_DAILY_AMOUNT", value_name = "TENGE")]
    daily_amount: Option<String>,
    /// The most paid out per week, in tenge.
    #[arg(long, env = "RP_LIMIT_WEEKLY_AMOUNT", value_name = "TENGE")]
    weekly_amount: Option<String>,
    /// The most paid out per month, in tenge.
    #[arg(long, env = "RP_LIMIT_MONTHLY_AMOUNT", value_name = "TENGE")]
    monthly_amount: Option<String>,
    /// The most payouts per day.
    #[arg(long, env = "RP_LIMIT_DAILY_COUNT", value_name = "N")]
    daily_count: Option<u64>,
    /// The most payouts per week.
    #[arg(long, env = "RP_LIMIT_WEEKLY_COUNT", value_name = "N")]
    weekly_count: Option<u64>,
    /// The most payouts per month.
    #[arg(long, env = "RP_LIMIT_MONTHLY_COUNT", value_name = "N")]
    monthly_count: Option<u64>,
}

impl LimitArgs {
    /// The limits in KZT, amounts parsed exactly (`1 500,50`, `100000`, `100 000 ₸`): those of
    /// `--limits FILE` first, then each flag (or variable) set, which wins over the file.
    pub(crate) fn limits(&self) -> Result<Limits, Failure> {
        let mut limits = match &self.limits_file {
            Some(path) => crate::limits_file::read(path)?,
            None => Limits::none(Currency::KZT),
        };
        let amounts = [
            (LimitKind::MinAmount, "--min-amount", &self.min_amount),
            (LimitKind::MaxAmount, "--max-amount", &self.max_amount),
            (LimitKind::DailyAmount, "--daily-amount", &self.daily_amount),
            (
                LimitKind::WeeklyAmount,
                "--weekly-amount",
                &self.weekly_amount,
            ),
            (
                LimitKind::MonthlyAmount,
                "--monthly-amount",
                &self.monthly_amount,
            ),
        ];
        for (kind, flag, text) in amounts {
            if let Some(text) = text {
                let money = Money::parse(text, Currency::KZT)
                    .map_err(|e| Failure::usage(format!("{flag}: {e}")))?;
                limits.set(kind, Some(money.minor_units()));
            }
        }
        let counts = [
            (LimitKind::DailyCount, self.daily_count),
            (LimitKind::WeeklyCount, self.weekly_count),
            (LimitKind::MonthlyCount, self.monthly_count),
        ];
        for (kind, count) in counts {
            if count.is_some() {
                limits.set(kind, count);
            }
        }
        Ok(limits)
    }
}

impl BatchArgs {
    /// The command, as its messages name it: `rp batch check`, `rp batch run`, ….
    pub(crate) fn name(&self) -> &'static str {
        match &self.command {
            BatchCommand::Check(_) => "rp batch check",
            BatchCommand::Run(_) => "rp batch run",
            BatchCommand::List(_) => "rp batch list",
            BatchCommand::Show(_) => "rp batch show",
        }
    }
}

/// Runs `rp batch …`.
pub(crate) fn batch(args: &BatchArgs) -> Result<(), Failure> {
    match &args.command {
        BatchCommand::Check(args) => check(args),
        BatchCommand::Run(args) => crate::batch_run::run_batch(args),
        BatchCommand::List(args) => crate::batch_list::list(args),
        BatchCommand::Show(args) => crate::batch_list::show(args),
    }
}

fn check(args: &CheckArgs) -> Result<(), Failure> {
    let limits = args.limits.limits()?;
    let file = args.file.display().to_string();
    let mut errors = Vec::new();
    let result = check_file(&args.file, &limits, |problem| {
        if args.json {
            errors.push(problem_json(problem));
        } else {
            // Streamed: a file with many bad rows never piles up in memory.
            println!("{problem}");
        }
    });
    let report = result.map_err(|e| Failure::usage(format!("{file}: {e}")))?;
    if args.json {
        print_json(&report_json(&file, &report, &limits, &errors));
    } else {
        print_summary(&file, &report, &limits);
    }
    if report.is_valid() {
        return Ok(());
    }
    let mut failure = Failure::usage(verdict(&report));
    failure.json_printed = args.json;
    Err(failure)
}

/// Why the file is not valid, in one line.
fn verdict(report: &CheckReport) -> String {
    if report.rows == 0 {
        return "the file has a header but no rows; nothing to pay".to_owned();
    }
    let mut parts = Vec::new();
    if report.invalid_rows > 0 {
        parts.push(format!(
            "{} of {} rows invalid",
            report.invalid_rows, report.rows
        ));
    }
    if report.over_limit_rows > 0 {
        parts.push(format!("{} over a limit", report.over_limit_rows));
    }
    format!("{}; fix the lines above and check again", parts.join(", "))
}

fn print_summary(file: &str, report: &CheckReport, limits: &Limits) {
    println!(
        "{file}: {} rows, {} valid, {} invalid, {} over a limit ({} separated)",
        report.rows,
        report.valid_rows,
        report.invalid_rows,
        report.over_limit_rows,
        if report.delimiter == b';' { ";" } else { "," },
    );
    let totals: Vec<String> = report.totals.iter().map(ToString::to_string).collect();
    println!(
        "total of valid rows: {}",
        if totals.is_empty() {
            "nothing".to_owned()
        } else {
            totals.join(" + ")
        }
    );
    if !report.operators.is_empty() {
        let operators: Vec<String> = report
            .operators
            .iter()
            .map(|o| format!("{} {}", o.label, o.rows))
            .collect();
        println!(
            "operators (named, or the number's range: a hint, numbers are portable): {}",
            operators.join(", ")
        );
    }
    if report.headroom.is_empty() {
        println!("limits: none set (--min-amount, --max-amount, --daily-amount, --daily-count, …)");
    } else {
        for headroom in &report.headroom {
            println!("limit: {}", headroom_text(headroom, limits.currency));
        }
    }
    println!(
        "batch {} (rows without payment_id get rpb-{}-ROW)",
        report.batch,
        report.batch.short()
    );
}

fn headroom_text(headroom: &Headroom, currency: Currency) -> String {
    let kind = headroom.kind;
    if kind.is_count() {
        format!(
            "{} {} payouts: {} in this file, {} left",
            kind.label(),
            headroom.limit,
            headroom.used,
            headroom.remaining
        )
    } else if kind.period().is_none() {
        format!(
            "{} {}",
            kind.label(),
            Money::from_minor(headroom.limit, currency)
        )
    } else {
        format!(
            "{} {}: {} in this file, {} left",
            kind.label(),
            Money::from_minor(headroom.limit, currency),
            Money::from_minor(headroom.used, currency),
            Money::from_minor(headroom.remaining, currency)
        )
    }
}

fn problem_json(problem: &RowError) -> serde_json::Value {
    serde_json::json!({
        "line": problem.line,
        "row": problem.row,
        "column": problem.column.map(|c| c.name()),
        "kind": problem.kind.key(),
        "message": problem.message,
    })
}

fn report_json(
    file: &str,
    report: &CheckReport,
    limits: &Limits,
    errors: &[serde_json::Value],
) -> serde_json::Value {
    let valid = report.is_valid();
    let totals: Vec<serde_json::Value> = report
        .totals
        .iter()
        .map(|total| {
            serde_json::json!({
                "currency": total.currency().code(),
                "amount": total.decimal(),
                "amount_minor": total.minor_units(),
            })
        })
        .collect();
    let operators: Vec<serde_json::Value> = report
        .operators
        .iter()
        .map(|o| serde_json::json!({"operator": o.label, "named": o.named, "rows": o.rows}))
        .collect();
    let limits_json: Vec<serde_json::Value> = report
        .headroom
        .iter()
        .map(|h| {
            if h.kind.is_count() {
                serde_json::json!({
                    "limit": h.kind.key(), "value": h.limit, "used": h.used, "remaining": h.remaining,
                })
            } else {
                let money = |minor: u64| Money::from_minor(minor, limits.currency).decimal();
                serde_json::json!({
                    "limit": h.kind.key(),
                    "currency": limits.currency.code(),
                    "value": money(h.limit), "value_minor": h.limit,
                    "used": money(h.used), "used_minor": h.used,
                    "remaining": money(h.remaining), "remaining_minor": h.remaining,
                })
            }
        })
        .collect();
    serde_json::json!({
        "ok": valid,
        "outcome": if valid { "success" } else { "input_error" },
        "exit_code": if valid { 0 } else { EXIT_USAGE },
        "file": file,
        "batch_id": report.batch.to_string(),
        "derived_payment_id_prefix": report.batch.derived_prefix(),
        "delimiter": if report.delimiter == b';' { ";" } else { "," },
        "columns": report.columns.iter().map(|c| c.name()).collect::<Vec<_>>(),
        "rows": report.rows,
        "valid_rows": report.valid_rows,
        "invalid_rows": report.invalid_rows,
        "over_limit_rows": report.over_limit_rows,
        "errors": errors,
        "totals": totals,
        "operators": operators,
        "limits": limits_json,
        "message": if valid { None } else { Some(verdict(report)) },
    })
}
