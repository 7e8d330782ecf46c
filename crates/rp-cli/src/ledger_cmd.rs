//! The ledger from the command line: where it is (`--ledger` / `RP_LEDGER`, else a file in the
//! user's data directory), and `rp payouts list|show`, `rp reconcile [--watch]`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rp_ledger::{Ledger, LedgerUrl};
use rp_model::{GateTime, PaymentId, mask_phone};
use rp_payout::{
    PayoutEvent, PayoutQuery, PayoutRecord, PayoutStore, ReconcileReport, ReconcileResult,
    ResendResult,
};
use serde_json::{Value, json};

use crate::common::{Failure, GateArgs, print_json, runtime};

/// Where the ledger is.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct LedgerArgs {
    /// The ledger: `sqlite:PATH`, or `sqlite::memory:` (nothing kept). Default: `ledger.db` in
    /// the user's data directory (`$XDG_DATA_HOME/rp` or `~/.local/share/rp`).
    #[arg(long, env = "RP_LEDGER", value_name = "URL", global = true)]
    pub(crate) ledger: Option<String>,
}

impl LedgerArgs {
    /// Opens the ledger, creating the default one (and saying so on stderr) on first use.
    pub(crate) async fn open(&self) -> Result<Ledger, Failure> {
        let url = match self.ledger.as_deref().filter(|url| !url.trim().is_empty()) {
            Some(url) => {
                LedgerUrl::parse(url).map_err(|e| Failure::usage(format!("--ledger: {e}")))?
            }
            None => default_ledger()?,
        };
        // Only the default ledger is announced: an explicit one is where the user said.
        let fresh = self
            .ledger
            .as_deref()
            .is_none_or(|url| url.trim().is_empty())
            && matches!(&url, LedgerUrl::SqliteFile(path) if !path.exists());
        let ledger = Ledger::open_url(url.clone())
            .await
            .map_err(|e| Failure::usage(e.to_string()))?;
        if fresh {
            eprintln!(
                "rp: created the ledger {url} (every payout is recorded there before it is sent; --ledger or RP_LEDGER chooses another)"
            );
        }
        Ok(ledger)
    }
}

/// `ledger.db` in the user's data directory, which is created if needed.
fn default_ledger() -> Result<LedgerUrl, Failure> {
    let base = std::env::var_os("XDG_DATA_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            std::env::var_os("HOME")
                .filter(|v| !v.is_empty())
                .map(|home| PathBuf::from(home).join(".local").join("share"))
        })
        .ok_or_else(|| {
            Failure::usage(
                "no data directory for the ledger (neither XDG_DATA_HOME nor HOME is set): set RP_LEDGER=sqlite:PATH or pass --ledger",
            )
        })?;
    let dir = base.join("rp");
    std::fs::create_dir_all(&dir).map_err(|e| {
        Failure::usage(format!(
            "cannot create the ledger directory {}: {e}; set RP_LEDGER=sqlite:PATH or pass --ledger",
            dir.display()
        ))
    })?;
    Ok(LedgerUrl::SqliteFile(dir.join("ledger.db")))
}

/// Arguments of `rp payouts`.
#[derive(Debug, clap::Args)]
pub(crate) struct PayoutsArgs {
    #[command(subcommand)]
    command: PayoutsCommand,
    /// Your project ID (the ledger keeps each project's payouts apart).
    #[arg(
        long,
        env = "RP_PROJECT_ID",
        value_name = "N",
        global = true,
        allow_hyphen_values = true
    )]
    project_id: Option<String>,
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Print JSON for scripts instead of text for people.
    #[arg(long, global = true)]
    json: bool,
}

#[derive(Debug, clap::Subcommand)]
enum PayoutsCommand {
    /// List recorded payouts, newest first.
    List(ListArgs),
    /// Show one payout and its whole history.
    Show(ShowArgs),
}

#[derive(Debug, clap::Args)]
#[command(after_long_help = LIST_HELP)]
struct ListArgs {
    /// Only this state: `created`, `accepted`, `unknown`, `not_registered`, `rejected`,
    /// `payment_id_taken`, or a payment status (`success`, `decline`, `processing`, `error`, …).
    #[arg(long, value_name = "STATE")]
    state: Option<String>,
    /// Only payouts recorded at or after this time: 2026-11-27, 2026-11-27T10:00:00Z, or a
    /// duration ago (30m, 2h, 7d).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Only payouts recorded before this time (same forms as --since).
    #[arg(long, value_name = "TIME")]
    until: Option<String>,
    /// Only payouts that need attention (reversals, conflicts, unknown statuses, another
    /// payment under the ID).
    #[arg(long)]
    attention: bool,
    /// Only payouts to this phone number (any written form).
    #[arg(long, value_name = "NUMBER")]
    phone: Option<String>,
    /// At most this many (1 to 1000).
    #[arg(long, default_value_t = 50, value_name = "N",
          value_parser = clap::value_parser!(u16).range(1..=1000))]
    limit: u16,
    /// Continue after this payment ID (the last one of the previous page).
    #[arg(long, value_name = "ID")]
    after: Option<String>,
}

const LIST_HELP: &str = "\
Examples:
  rp payouts list --state unknown
  rp payouts list --attention --since 7d
  rp payouts list --phone '+7 701 123 45 67' --json";

#[derive(Debug, clap::Args)]
struct ShowArgs {
    /// The payment ID.
    payment_id: String,
    /// Also print the signed bodies of callbacks and status responses (phone numbers masked).
    #[arg(long)]
    raw: bool,
}

/// Arguments of `rp reconcile`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = RECONCILE_HELP)]
pub(crate) struct ReconcileArgs {
    #[command(flatten)]
    gate: GateArgs,
    #[command(flatten)]
    ledger: LedgerArgs,
    /// Keep going: a pass every this many seconds until Ctrl-C.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    watch: Option<u64>,
    /// Ask about payouts unchanged for this many seconds (default 600; the platform needs at
    /// least 10 s before it knows a payment).
    #[arg(long, default_value_t = 600, value_name = "SECONDS")]
    overdue_after: u64,
}

const RECONCILE_HELP: &str = "\
Asks the status endpoint about every payout in the ledger whose result is overdue, records the
answers, and sends again, under the SAME payment ID, the payouts the platform does not have or
that ended in status error. Nothing is ever paid under a new payment ID.

Examples:
  rp reconcile
  rp reconcile --watch 60";

/// Runs `rp payouts`.
pub(crate) fn payouts(args: &PayoutsArgs) -> Result<(), Failure> {
    let project = crate::common::project_id(args.project_id.as_deref())?;
    let runtime = runtime()?;
    runtime.block_on(async {
        let ledger = args.ledger.open().await?;
        let store = ledger.store(project);
        match &args.command {
            PayoutsCommand::List(list) => list_payouts(store.as_ref(), list, args.json).await,
            PayoutsCommand::Show(show) => show_payout(store.as_ref(), show, args.json).await,
        }
    })
}

async fn list_payouts(store: &dyn PayoutStore, args: &ListArgs, json: bool) -> Result<(), Failure> {
    let mut query = PayoutQuery::new().limit(usize::from(args.limit)).between(
        args.since.as_deref().map(parse_time).transpose()?,
        args.until.as_deref().map(parse_time).transpose()?,
    );
    if let Some(state) = &args.state {
        query = query.state(state.trim().to_ascii_lowercase().replace('-', "_"));
    }
    if args.attention {
        query = query.attention();
    }
    if let Some(phone) = &args.phone {
        let phone =
            rp_model::Msisdn::parse(phone).map_err(|e| Failure::usage(format!("--phone: {e}")))?;
        query = query.phone(phone.as_str());
    }
    if let Some(after) = &args.after {
        let id =
            PaymentId::new(after.as_str()).map_err(|e| Failure::usage(format!("--after: {e}")))?;
        let last = store
            .get(&id)
            .await?
            .ok_or_else(|| Failure::usage(format!("--after: payout {id} is not in the ledger")))?;
        query = query.after(&last);
    }
    let page = store.list(&query).await?;
    if json {
        let items: Vec<Value> = page.iter().map(summary_json).collect();
        print_json(&json!({
            "payouts": items,
            "next_after": (page.len() == query.page_size()).then(|| page.last().map(|r| r.payment_id.as_str())).flatten(),
        }));
        return Ok(());
    }
    if page.is_empty() {
        println!("no payouts match");
        return Ok(());
    }
    println!(
        "{:<20}  {:<28}  {:<18}  {:>16}  {:<12}  attention",
        "recorded (UTC)", "payment ID", "state", "amount", "phone"
    );
    for record in &page {
        println!(
            "{:<20}  {:<28}  {:<18}  {:>16}  {:<12}  {}",
            utc(record.created_at),
            record.payment_id,
            record.state.label(),
            amount(record),
            mask_phone(&record.request.account.number),
            if record.attention.is_some() {
                "yes"
            } else {
                ""
            },
        );
    }
    if page.len() == query.page_size()
        && let Some(last) = page.last()
    {
        println!(
            "more: rp payouts list --after {} (same filters)",
            last.payment_id
        );
    }
    Ok(())
}

async fn show_payout(store: &dyn PayoutStore, args: &ShowArgs, json: bool) -> Result<(), Failure> {
    let id = PaymentId::new(args.payment_id.as_str()).map_err(|e| Failure::usage(e.to_string()))?;
    let record = store.get(&id).await?.ok_or_else(|| {
        Failure::refused(format!(
            "payout {id} is not in this ledger (check --ledger and the project)"
        ))
    })?;
    let events = store.events(&id).await?;
    if json {
        let mut out = summary_json(&record);
        out["request_id"] = json!(record.request_id);
        out["last_code"] = json!(record.last_code.as_ref().map(|c| c.as_str()));
        out["last_message"] = json!(record.last_message);
        out["attention"] = json!(record.attention);
        out["maybe_sent"] = json!(record.maybe_sent);
        out["version"] = json!(record.version);
        out["events"] = events.iter().map(|e| event_json(e, args.raw)).collect();
        print_json(&out);
        return Ok(());
    }
    println!("payment   {}", record.payment_id);
    println!("state     {}", record.state);
    println!("amount    {}", amount(&record));
    println!("phone     {}", mask_phone(&record.request.account.number));
    println!("customer  {}", record.request.customer.id);
    println!("recorded  {}", utc(record.created_at));
    println!("changed   {}", utc(record.updated_at));
    if let Some(request) = &record.request_id {
        println!("request   {request}");
    }
    if let Some(code) = &record.last_code {
        println!(
            "code      {code} {}",
            record.last_message.as_deref().unwrap_or("")
        );
    }
    if let Some(attention) = &record.attention {
        println!("ATTENTION {attention}");
    }
    println!("history");
    for event in &events {
        let previous = event
            .previous
            .as_ref()
            .map_or("-".to_owned(), |p| p.label().to_owned());
        let mut line = format!(
            "  {}  {:<10}  {} → {}",
            utc(event.at),
            event.source,
            previous,
            event.state.label()
        );
        if let Some(code) = &event.code {
            line.push_str(&format!(
                "  code {code} {}",
                event.message.as_deref().unwrap_or("")
            ));
        }
        if let Some(note) = &event.note {
            line.push_str(&format!("  ({note})"));
        }
        println!("{line}");
        if args.raw
            && let Some(raw) = event.raw_masked()
        {
            println!("      {raw}");
        }
    }
    Ok(())
}

/// Runs `rp reconcile`.
pub(crate) fn reconcile(args: &ReconcileArgs) -> Result<(), Failure> {
    let runtime = runtime()?;
    runtime.block_on(async {
        // Every input checked before the ledger is opened (or created).
        let config = args.gate.config()?;
        let transport = config.default_transport()?;
        let ledger = args.ledger.open().await?;
        // `reconcile` can send payouts again: it names the Gate and the project first.
        eprintln!(
            "{}",
            crate::common::destination(&config.base_url, config.project_id)
        );
        let store = ledger.store(config.project_id);
        let client = crate::common::ledger_client(
            config,
            transport,
            store,
            Duration::from_secs(args.overdue_after),
        )?;
        let client = Arc::new(client);
        loop {
            let pass = tokio::select! {
                report = client.reconcile_and_resume() => Some(report?),
                () = crate::gate_cmd::interrupted() => None,
            };
            let Some(report) = pass else { return Ok(()) };
            print_report(&report, args.gate.json);
            let Some(seconds) = args.watch else {
                return Ok(());
            };
            tokio::select! {
                () = tokio::time::sleep(Duration::from_secs(seconds)) => {}
                () = crate::gate_cmd::interrupted() => return Ok(()),
            }
        }
    })
}

fn print_report(report: &ReconcileReport, json: bool) {
    if json {
        let entries: Vec<Value> = report
            .entries
            .iter()
            .map(|e| {
                let (result, detail) = match &e.result {
                    ReconcileResult::Updated { previous, state } => (
                        "updated",
                        json!({"previous": previous.label(), "state": state.label()}),
                    ),
                    ReconcileResult::Unchanged(state) => {
                        ("unchanged", json!({"state": state.label()}))
                    }
                    ReconcileResult::Failed(reason) => ("failed", json!({"reason": reason})),
                    _ => ("other", Value::Null),
                };
                json!({"payment_id": e.payment_id.as_str(), "result": result, "detail": detail})
            })
            .collect();
        let resent: Vec<Value> = report
            .resent
            .iter()
            .map(|r| match &r.result {
                ResendResult::Sent(receipt) => json!({"payment_id": r.payment_id.as_str(), "sent": true, "state": receipt.state.label()}),
                ResendResult::Failed { error, may_have_reached_platform } => json!({"payment_id": r.payment_id.as_str(), "sent": false, "error": error, "may_have_reached_platform": may_have_reached_platform}),
                _ => json!({"payment_id": r.payment_id.as_str()}),
            })
            .collect();
        print_json(&json!({"asked": entries, "resent": resent}));
        return;
    }
    println!(
        "reconcile: asked about {} overdue payout(s): {} updated, {} failed, {} sent again",
        report.entries.len(),
        report.updated(),
        report.failed(),
        report.resent.len()
    );
    for entry in &report.entries {
        match &entry.result {
            ReconcileResult::Updated { previous, state } => {
                println!(
                    "  {}  {} → {}",
                    entry.payment_id,
                    previous.label(),
                    state.label()
                );
            }
            ReconcileResult::Failed(reason) => println!("  {}  failed: {reason}", entry.payment_id),
            _ => {}
        }
    }
    for resent in &report.resent {
        match &resent.result {
            ResendResult::Sent(receipt) => {
                println!(
                    "  {}  sent again under the same ID: {}",
                    resent.payment_id,
                    receipt.state.label()
                );
            }
            ResendResult::Failed { error, .. } => {
                println!("  {}  resend failed: {error}", resent.payment_id);
            }
            _ => {}
        }
    }
}

fn summary_json(record: &PayoutRecord) -> Value {
    json!({
        "payment_id": record.payment_id.as_str(),
        "state": record.state.label(),
        "settled": record.state.is_settled(),
        "amount": decimal_amount(record),
        "amount_minor": record.request.payment.amount,
        "currency": record.request.payment.currency,
        "phone": mask_phone(&record.request.account.number),
        "created_at": utc(record.created_at),
        "updated_at": utc(record.updated_at),
        "attention": record.attention.is_some(),
    })
}

fn event_json(event: &PayoutEvent, raw: bool) -> Value {
    let mut out = json!({
        "at": utc(event.at),
        "source": event.source.as_text(),
        "previous": event.previous.as_ref().map(|p| p.label().to_owned()),
        "state": event.state.label(),
        "code": event.code.as_ref().map(|c| c.as_str()),
        "message": event.message,
        "note": event.note,
    });
    if raw {
        out["raw"] = json!(event.raw_masked());
    }
    out
}

/// The amount in Kazakh formatting (`1 500,00 ₸`), or in minor units for a currency we do
/// not know.
fn amount(record: &PayoutRecord) -> String {
    let payment = &record.request.payment;
    rp_model::Currency::from_code(&payment.currency)
        .map(|currency| rp_model::Money::from_minor(payment.amount, currency).to_string())
        .unwrap_or_else(|| format!("{} {} (minor units)", payment.amount, payment.currency))
}

/// The amount as a decimal string in major units (`1500.00`), exact; minor units for a
/// currency we do not know.
fn decimal_amount(record: &PayoutRecord) -> String {
    let payment = &record.request.payment;
    rp_model::Currency::from_code(&payment.currency).map_or_else(
        || payment.amount.to_string(),
        |currency| rp_model::Money::from_minor(payment.amount, currency).decimal(),
    )
}

/// `YYYY-MM-DD HH:MM:SS` in UTC.
pub(crate) fn utc(time: SystemTime) -> String {
    let seconds = time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let gate = GateTime::from_unix_seconds(i64::try_from(seconds).unwrap_or(0));
    // `YYYY-MM-DDTHH:MM:SS+0000` without its offset, with a space for the `T`.
    gate.as_str()
        .trim_end_matches("+0000")
        .replacen('T', " ", 1)
}

/// `2026-11-27`, `2026-11-27T10:00:00Z` (or with a space, seconds optional), or a duration
/// ago: `30m`, `2h`, `7d`, `90s`.
fn parse_time(text: &str) -> Result<SystemTime, Failure> {
    let text = text.trim();
    let bad = || {
        Failure::usage(format!(
            "invalid time {text:?}: write 2026-11-27, 2026-11-27T10:00:00Z (UTC), or a duration ago such as 30m, 2h, 7d"
        ))
    };
    if let Some(unit) = text.chars().last().filter(char::is_ascii_alphabetic)
        && let Ok(n) = text[..text.len() - 1].parse::<u64>()
    {
        let seconds = match unit {
            's' => n,
            'm' => n.saturating_mul(60),
            'h' => n.saturating_mul(3600),
            'd' => n.saturating_mul(86_400),
            _ => return Err(bad()),
        };
        return SystemTime::now()
            .checked_sub(Duration::from_secs(seconds))
            .ok_or_else(bad);
    }
    // The platform's timestamp format, in UTC, checks every field (month lengths included).
    let (date, clock) = match text.split_once(['T', ' ']) {
        Some((date, clock)) => (date, clock.strip_suffix('Z').unwrap_or(clock)),
        None => (text, "00:00:00"),
    };
    let seconds_optional = if clock.len() == 5 { ":00" } else { "" };
    let seconds = GateTime::new(format!("{date}T{clock}{seconds_optional}Z"))
        .unix_seconds()
        .map_err(|_| bad())?;
    let seconds = u64::try_from(seconds).map_err(|_| bad())?;
    Ok(UNIX_EPOCH + Duration::from_secs(seconds))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_read_and_print_in_utc() {
        let t = parse_time("2026-11-27T10:05:09Z").unwrap();
        assert_eq!(utc(t), "2026-11-27 10:05:09");
        assert_eq!(
            utc(parse_time("2024-02-29").unwrap()),
            "2024-02-29 00:00:00"
        );
        assert_eq!(
            utc(parse_time("1999-12-31 23:59").unwrap()),
            "1999-12-31 23:59:00"
        );
        let ago = parse_time("2h").unwrap();
        let elapsed = SystemTime::now().duration_since(ago).unwrap().as_secs();
        assert!((7199..=7201).contains(&elapsed), "{elapsed}");
        for bad in [
            "yesterday",
            "2026-13-01",
            "2026-11-27T25:00",
            "5y",
            "",
            "2026/11/27",
            "2026-02-31",
            "2025-02-29",
            "2026-04-31T10:00:00Z",
        ] {
            let message = parse_time(bad).unwrap_err().message;
            assert!(message.contains("invalid time"), "{bad}: {message}");
        }
    }
}
