//! `rp batch run FILE`: check the whole file, confirm, pay every row at a bounded rate,
//! resumable by running the same file again; `--wait` for final statuses, `--report` of every
//! row.

use std::io::{IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use rp_batch::run::{self, RowOutcome, RunOptions, RunSummary};
use rp_batch::{BatchId, CheckReport, Limits, check_file, report};
use rp_ledger::{BatchStore, OnClash, Registered};
use rp_payout::{Client, PayoutStore};

use crate::batch_cmd::LimitArgs;
use crate::common::{
    EXIT_DECLINED, EXIT_NOT_SENT, EXIT_OUTCOME_UNKNOWN, Failure, GateArgs, destination, runtime,
};

/// `rp batch run FILE`.
#[derive(Debug, clap::Args)]
pub(crate) struct RunArgs {
    /// The CSV file (see `rp batch check --help` for the format).
    file: PathBuf,
    /// Send the valid rows even if some rows are invalid, over a limit, or hold a payment ID
    /// the ledger has for another payout; those rows are reported, never sent.
    #[arg(long)]
    skip_invalid: bool,
    /// Do not ask for confirmation (scripts). Without it, `rp` asks on a terminal and refuses
    /// elsewhere.
    #[arg(long)]
    yes: bool,
    /// Payouts in flight at once (1 to 64).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    concurrency: u16,
    /// New payouts started per second at most (1 to 1000). A 429 answer's Retry-After is also
    /// honoured.
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    rate: u32,
    /// How long this worker's claim on rows holds unless renewed (5 to 3600 s): it renews it
    /// while it makes progress, so this is how long the rows of a worker that died on another
    /// machine, or stalled, wait before another worker takes them over.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(5..=3600))]
    lease: u64,
    /// After sending, wait up to this many seconds (1 to 86400) for every payout of the file
    /// to be final, asking the status of the ones still open.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    wait: Option<u64>,
    /// Receive the platform's callbacks on this address while the batch runs and waits (e.g.
    /// 0.0.0.0:9000; the project's callback URL must lead here), and apply each one, verified,
    /// to the ledger: --wait then asks the status only of payouts whose callback is overdue.
    #[arg(long, value_name = "ADDR")]
    listen: Option<std::net::SocketAddr>,
    /// Write every row of the file, in file order, with its payment ID, state, status, code,
    /// message, operation ID, request ID and last change, to this CSV file.
    #[arg(long, value_name = "OUT.csv")]
    report: Option<PathBuf>,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    ledger: crate::ledger_cmd::LedgerArgs,
    #[command(flatten)]
    gate: GateArgs,
}

pub(crate) const RUN_HELP: &str = "\
The file is the batch: its SHA-256 is the batch's identity, and a row without payment_id gets
rpb-<first 20 hex digits of the SHA-256>-<row>. Every payout is recorded in the ledger before it
is sent, so running the SAME file again resumes it: rows already paid are never paid again, and
only what the platform does not have is sent (under the same payment ID). Edit the file and it is
a new batch with new derived IDs: resume a partly run file unchanged.

Before anything is sent, every row is checked (as `rp batch check`), and every payment ID the
ledger holds for a different payout is refused. The limits the batch is first run with are kept
with it: a rerun or another worker applies the stricter of those and its own. Ctrl-C stops taking new rows, lets the payouts in
flight be recorded, and prints the command that resumes; a second Ctrl-C exits at once (the rerun
then asks the platform about the payouts that were in flight).

Exit status: 0 every row accepted or paid; 1 a row refused or declined; 3 a row's outcome is
unknown (rerun, or `rp reconcile`); 4 rows not sent (stopped, or not sent); 2 the file or the
input is wrong (nothing sent), or, every row being paid, only the report could not be written.

Examples:
  rp batch run payouts.csv --yes --rate 10 --report report.csv
  rp batch run payouts.csv --yes --wait 120 --daily-amount '5 000 000' --report report.csv";

/// Runs `rp batch run`.
pub(crate) fn run_batch(args: &RunArgs) -> Result<(), Failure> {
    let runtime = runtime()?;
    // Every input checked before the ledger is opened (or created).
    let limits = args.limits.limits()?;
    let config = args.gate.config()?.with_limits(limits);
    let transport = config.default_transport()?;
    let file = args.file.display().to_string();
    let report = check_file(&args.file, &limits, |problem| println!("{problem}"))
        .map_err(|e| Failure::usage(format!("{file}: {e}")))?;
    // Every later read of the file checks it is still the file checked here.
    let batch = report.batch;
    if report.valid_rows == 0 {
        return Err(Failure::usage(format!("{file}: no valid row to pay")));
    }
    if !report.is_valid() && !args.skip_invalid {
        return Err(Failure::usage(format!(
            "{file}: {} invalid, {} over a limit, of {} rows; nothing was sent. Fix the lines \
             above, or pass --skip-invalid to send the valid rows only",
            report.invalid_rows, report.over_limit_rows, report.rows
        )));
    }

    // The report's place is checked before anything is registered or sent.
    if let Some(out) = &args.report {
        check_writable(out)?;
    }
    // The callback address is taken before anything is registered or sent: a busy port is a
    // usage error, not a surprise after the payouts went out.
    let listener = match args.listen {
        Some(addr) => Some(runtime.block_on(bind(addr))?),
        None => None,
    };
    let ledger = runtime.block_on(args.ledger.open())?;
    let project = config.project_id;
    let store = ledger.store(project);
    let batches = ledger.batches(project);
    let clashes = runtime
        .block_on(run::preflight(
            &args.file,
            batch,
            store.as_ref(),
            batches.as_ref(),
            project,
        ))
        .map_err(|e| Failure::usage(format!("{file}: {e}")))?;
    for clash in &clashes {
        println!("{clash}");
    }
    if !clashes.is_empty() && !args.skip_invalid {
        return Err(Failure::usage(format!(
            "{file}: {}; nothing was sent",
            clash_summary(&clashes)
        )));
    }
    // A row another batch's unpaid row holds cannot be skipped: whichever batch ran first
    // would take the ID (a recorded payout's ID is safe to skip: the row is never paid).
    let held = clashes
        .iter()
        .filter(|clash| matches!(clash.holder, run::Holder::Batch { .. }))
        .count();
    if held > 0 {
        return Err(Failure::usage(format!(
            "{file}: {held} row(s) use a payment ID another batch holds for a different payout, \
             not paid yet; they cannot be skipped (whichever batch ran first would take the ID): \
             give them new payment IDs, or pay that batch first; nothing was sent"
        )));
    }
    confirm(args, &config, &report, batch)?;
    let registered = runtime
        .block_on(run::register(
            &args.file,
            &report,
            batches.as_ref(),
            project,
            limits,
            // --skip-invalid sends the other rows: a clashing row is registered and never
            // paid (a `conflict` row), as preflight said.
            if args.skip_invalid {
                OnClash::Register
            } else {
                OnClash::Refuse
            },
        ))
        .map_err(|e| Failure::new(EXIT_NOT_SENT, format!("{file}: {e}")))?;
    match registered {
        Registered::New => eprintln!("batch {batch} registered in the ledger"),
        Registered::Existing => eprintln!("batch {batch} is in the ledger already: resuming it"),
        Registered::Clashes(found) => {
            let clashes: Vec<run::Clash> = found
                .iter()
                .filter_map(run::Clash::of_registration)
                .collect();
            for clash in &clashes {
                println!("{clash}");
            }
            return Err(Failure::usage(format!(
                "{file}: since the check, {}; nothing was registered or sent",
                clash_summary(&clashes)
            )));
        }
    }
    // Every worker holds the batch to the limits it was confirmed with, and to its own.
    let applied = runtime
        .block_on(batches.info(&batch.to_string()))?
        .map(|info| run::registered_limits(&info.batch))
        .transpose()
        .map(Option::flatten)
        .and_then(|registered| applied_limits(limits, registered))
        .map_err(|why| {
            Failure::usage(format!(
                "{file}: batch {} cannot be paid by this rp: {why}; nothing was sent (run it \
                 with the rp that registered it)",
                batch.short()
            ))
        })?;
    if applied != limits {
        eprintln!(
            "the batch was registered with stricter limits than given here: this run applies \
             the stricter of each"
        );
    }
    let client = Arc::new(crate::common::ledger_client(
        config.with_limits(applied),
        transport,
        store,
        // Receiving callbacks, a payout is asked about only when its callback is late.
        if args.listen.is_some() {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(1)
        },
    )?);

    let callbacks = listener.map(|listener| {
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let app = rp_payout::axum::callback_router(Arc::clone(&client));
        let server = runtime.spawn(rp_payout::axum::serve_with_shutdown(
            listener,
            app,
            rp_payout::axum::ConnectionLimits::default(),
            async {
                let _ = stopped.await;
            },
        ));
        (stop, server)
    });
    let stop = Arc::new(AtomicBool::new(false));
    let mut progress = Progress::new(report.valid_rows);
    let summary = runtime.block_on(async {
        // An explicit run resumes a batch that was stopped on purpose.
        if let Err(error) = batches.set_paused(&batch.to_string(), false).await {
            eprintln!("rp batch run: could not mark the batch running: {error}");
        }
        let stopper = Arc::clone(&stop);
        let pauser = Arc::clone(&batches);
        let signals = tokio::spawn(async move {
            crate::gate_cmd::interrupted().await;
            stopper.store(true, Ordering::SeqCst);
            // Stopped on purpose: no background worker (`rp serve`) picks the rest up.
            if let Err(error) = pauser.set_paused(&batch.to_string(), true).await {
                eprintln!("rp batch run: could not mark the batch paused: {error}");
            }
            eprintln!(
                "stopping: no new rows are started; the payouts in flight are being recorded \
                 (Ctrl-C again exits at once)"
            );
            crate::gate_cmd::interrupted().await;
            eprintln!("exiting at once: {}", resume_hint());
            std::process::exit(i32::from(EXIT_OUTCOME_UNKNOWN));
        });
        let options = RunOptions::default()
            .concurrency(usize::from(args.concurrency))
            .rate(Some(args.rate))
            .lease(Duration::from_secs(args.lease));
        let result = run::run(
            batch,
            Arc::clone(&client),
            Arc::clone(&batches),
            options,
            &stop,
            |outcome, so_far| progress.row(outcome, so_far),
        )
        .await;
        signals.abort();
        result
    });
    let summary = summary.map_err(|e| Failure::new(EXIT_NOT_SENT, format!("{file}: {e}")))?;
    eprintln!("{}", progress.finish(&summary));
    print_summary(&summary);
    if summary.stopped() {
        eprintln!(
            "stopped: {} row(s) not paid yet. Resume with: {}",
            summary.not_started,
            resume_hint()
        );
    } else if let Some(seconds) = args.wait {
        let listening = callbacks.is_some();
        runtime.block_on(wait_final(
            batches.as_ref(),
            batch,
            &client,
            seconds,
            listening,
        ))?;
    }
    let report_failed = args.report.as_ref().and_then(|out| {
        let written = runtime.block_on(write_report(
            batches.as_ref(),
            client.store().as_ref(),
            batch,
            out,
        ));
        written.err().map(|failure| {
            eprintln!(
                "rp batch run: {}; the payouts are as reported above: `rp batch show {} --report {}` writes the report again",
                failure.message,
                batch.short(),
                out.display()
            );
        })
    });
    if let Some((stop, server)) = callbacks {
        let _ = stop.send(());
        let _ = runtime.block_on(server);
    }
    let states = runtime
        .block_on(batches.progress(&batch.to_string()))?
        .map(|progress| progress.by_label)
        .unwrap_or_default();
    println!("the batch in the ledger now: {}", counts_text(&states));
    verdict(&summary, &states).and_then(|()| match report_failed {
        Some(()) => Err(Failure::usage("only the report could not be written")),
        None => Ok(()),
    })
}

/// The limits a run applies: its own (`own`), and the stricter of each that the batch was
/// registered with; refused when the batch's amount limits are in another currency.
fn applied_limits(own: Limits, registered: Option<Limits>) -> Result<Limits, String> {
    match registered {
        None => Ok(own),
        Some(registered) if registered.currency != own.currency && registered.has_amounts() => {
            Err(format!(
                "its amount limits are in {}, this run's in {}",
                registered.currency.code(),
                own.currency.code()
            ))
        }
        Some(registered) => Ok(own.strictest(registered)),
    }
}

/// Shows what is about to be paid, and asks on a terminal unless `--yes`.
fn confirm(
    args: &RunArgs,
    config: &rp_payout::Config,
    report: &CheckReport,
    batch: BatchId,
) -> Result<(), Failure> {
    let totals: Vec<String> = report.totals.iter().map(ToString::to_string).collect();
    eprintln!(
        "batch {batch}: {} payout(s), total {} {}",
        report.valid_rows,
        totals.join(" + "),
        destination(&config.base_url, config.project_id)
    );
    if args.yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(Failure::usage(
            "not a terminal, so no one can confirm: pass --yes to pay this batch",
        ));
    }
    eprint!("Pay them? Type yes to go on: ");
    let _ = std::io::stderr().flush();
    let mut answer = String::new();
    std::io::stdin()
        .read_line(&mut answer)
        .map_err(|e| Failure::usage(format!("cannot read the answer: {e}")))?;
    if answer.trim().eq_ignore_ascii_case("yes") {
        Ok(())
    } else {
        Err(Failure::usage("not confirmed; nothing was sent"))
    }
}

/// The exact command that resumes this run, unchanged, with `--yes`.
fn resume_hint() -> String {
    let mut words: Vec<String> = std::env::args().map(|a| shell_quote(&a)).collect();
    if !words.iter().any(|w| w == "--yes") {
        words.push("--yes".to_owned());
    }
    words.join(" ")
}

/// `word` quoted for a POSIX shell when it needs to be.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_./:=@,+".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// Progress on stderr: on a terminal a progress bar (done/total, counts by state, rate,
/// ETA); elsewhere one line every few seconds. Each failed row is printed as it ends.
struct Progress {
    total: u64,
    started: Instant,
    last_line: Instant,
    bar: Option<indicatif::ProgressBar>,
}

/// How often a progress line is printed.
const PROGRESS_EVERY: Duration = Duration::from_secs(2);

impl Progress {
    fn new(total: u64) -> Progress {
        let now = Instant::now();
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(total);
            let style = indicatif::ProgressStyle::with_template(
                "{bar:30} {pos}/{len} {per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
            bar.set_style(style);
            bar
        });
        Progress {
            total,
            started: now,
            last_line: now,
            bar,
        }
    }

    fn row(&mut self, outcome: &RowOutcome, summary: &RunSummary) {
        if let run::RowResult::Failed(failure) = &outcome.result {
            let id = outcome
                .payment_id
                .as_ref()
                .map_or_else(|| format!("row {}", outcome.row), ToString::to_string);
            let line = format!("line {}: {id}: {}", outcome.line, failure.message);
            match &self.bar {
                Some(bar) => bar.println(line),
                None => eprintln!("{line}"),
            }
        }
        if let Some(bar) = &self.bar {
            bar.set_position(summary.done);
            bar.set_message(counts_text(&summary.by_label));
        } else if self.last_line.elapsed() >= PROGRESS_EVERY {
            self.last_line = Instant::now();
            eprintln!("{}", self.line(summary));
        }
    }

    /// The closing line (the bar, if any, is cleared first).
    fn finish(&self, summary: &RunSummary) -> String {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
        self.line(summary)
    }

    fn line(&self, summary: &RunSummary) -> String {
        let elapsed = self.started.elapsed().as_secs_f64().max(0.001);
        #[allow(clippy::cast_precision_loss)] // a rate for people, not money
        let rate = summary.done as f64 / elapsed;
        let left = self.total.saturating_sub(summary.done);
        #[allow(clippy::cast_precision_loss)]
        let eta = if rate > 0.0 { left as f64 / rate } else { 0.0 };
        format!(
            "batch: {}/{} done ({}), {rate:.1}/s, about {eta:.0} s left",
            summary.done,
            self.total,
            counts_text(&summary.by_label)
        )
    }
}

/// `success 12, decline 3`, or `nothing`.
fn counts_text(by_label: &[(String, u64)]) -> String {
    if by_label.is_empty() {
        return "nothing".to_owned();
    }
    let counts: Vec<String> = by_label
        .iter()
        .map(|(label, n)| format!("{label} {n}"))
        .collect();
    counts.join(", ")
}

fn print_summary(summary: &RunSummary) {
    println!(
        "sent {} row(s): {}{}",
        summary.done,
        counts_text(&summary.by_label),
        if summary.skipped_invalid > 0 {
            format!("; {} invalid row(s) skipped", summary.skipped_invalid)
        } else {
            String::new()
        }
    );
}

/// Binds the callback address of `--listen`, and says where callbacks are received.
async fn bind(addr: std::net::SocketAddr) -> Result<tokio::net::TcpListener, Failure> {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::usage(format!("--listen {addr}: cannot listen there: {e}")))?;
    let local = listener
        .local_addr()
        .map_err(|e| Failure::usage(format!("--listen {addr}: {e}")))?;
    eprintln!("receiving callbacks on http://{local}/ (the project's callback URL must lead here)");
    Ok(listener)
}

/// Waits until every payout of the batch is final or `seconds` have passed: asking the
/// statuses of the open ones every second, or, when callbacks are received (`listening`),
/// only of those whose callback is overdue, every 10 s.
async fn wait_final(
    batches: &dyn BatchStore,
    batch: BatchId,
    client: &Client,
    seconds: u64,
    listening: bool,
) -> Result<(), Failure> {
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let id = batch.to_string();
    let ask_every = if listening {
        Duration::from_secs(10)
    } else {
        Duration::from_secs(1)
    };
    let mut asked = Instant::now();
    loop {
        let progress = batches.progress(&id).await?;
        let open = progress
            .as_ref()
            .map_or(0, |progress| progress.waiting + progress.undone);
        if open == 0 {
            let unsent = progress.as_ref().map_or(0, |progress| {
                progress.count("not_recorded") + progress.count("conflict")
            });
            if unsent == 0 {
                println!("every payout of the batch is final");
            } else {
                println!(
                    "every payout of the batch is final; {unsent} row(s) were never sent (over \
                     a limit, or a payment ID held by another payout): see the report"
                );
            }
            return Ok(());
        }
        if Instant::now() >= deadline {
            println!(
                "{open} payout(s) not final after {seconds} s; ask again with `rp reconcile`, or \
                 run the file again"
            );
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500).min(deadline - Instant::now())).await;
        if asked.elapsed() >= ask_every {
            asked = Instant::now();
            if let Err(error) = client.reconcile().await {
                eprintln!("asking the statuses failed: {error}; trying again");
            }
        }
    }
}

/// What `clashes` come to, for the line that ends a run: how many rows' payment IDs the
/// ledger holds for a different payout, and how many are a payout with these rows' very
/// details made with the merchant's metadata (its payee may be paid already: the rows above
/// say to check it, not to pay under a new payment ID).
fn clash_summary(clashes: &[run::Clash]) -> String {
    let with_metadata = clashes
        .iter()
        .filter(|clash| matches!(clash.holder, run::Holder::PayoutWithMetadata))
        .count();
    let other = clashes.len() - with_metadata;
    let mut parts = Vec::new();
    if other > 0 {
        parts.push(format!(
            "{other} row(s) use a payment ID the ledger holds for a different payout"
        ));
    }
    if with_metadata > 0 {
        parts.push(format!(
            "{with_metadata} row(s) are a payout the ledger holds with the merchant's metadata \
             (their payee may be paid already: check it before paying them under another \
             payment ID)"
        ));
    }
    parts.join("; ")
}

/// Checks that the report can be written at `out` (its `.csv.partial` beside it is created
/// and removed), before anything is sent.
fn check_writable(out: &Path) -> Result<(), Failure> {
    let refuse = |why: String| {
        Failure::usage(format!(
            "--report {}: cannot write there ({why}); nothing was sent",
            out.display()
        ))
    };
    if out.is_dir() {
        return Err(refuse("it is a directory; name a file".to_owned()));
    }
    if out.exists() {
        std::fs::OpenOptions::new()
            .append(true)
            .open(out)
            .map_err(|e| refuse(e.to_string()))?;
    }
    let partial = out.with_extension("csv.partial");
    std::fs::File::create(&partial)
        .and_then(|_| std::fs::remove_file(&partial))
        .map_err(|e| refuse(e.to_string()))
}

/// Writes the report of `batch` (from the ledger) next to `out` and renames it into place,
/// so a reader never sees half.
pub(crate) async fn write_report(
    batches: &dyn BatchStore,
    store: &dyn PayoutStore,
    batch: BatchId,
    out: &Path,
) -> Result<(), Failure> {
    let shown = out.display().to_string();
    let partial = out.with_extension("csv.partial");
    let file = std::fs::File::create(&partial)
        .map_err(|e| Failure::usage(format!("--report {shown}: {e}")))?;
    let writer = std::io::BufWriter::new(file);
    let summary = match report::write_report(batches, store, batch, writer).await {
        Ok(summary) => summary,
        Err(error) => {
            // A half-written report (phone numbers in it) is not left behind.
            let _ = std::fs::remove_file(&partial);
            return Err(Failure::usage(format!("--report {shown}: {error}")));
        }
    };
    if let Err(error) = std::fs::rename(&partial, out) {
        let _ = std::fs::remove_file(&partial);
        return Err(Failure::usage(format!("--report {shown}: {error}")));
    }
    println!(
        "report: {shown} ({} rows, {} final, {} invalid, {} not sent, {} conflicting payment IDs)",
        summary.rows, summary.final_rows, summary.invalid, summary.not_recorded, summary.conflict
    );
    Ok(())
}

/// The exit status of a run: from the calls' failures (`summary`) and the rows' states in the
/// ledger now (`states`, after any `--wait`).
fn verdict(summary: &RunSummary, states: &[(String, u64)]) -> Result<(), Failure> {
    let count = |labels: &[&str]| -> u64 {
        labels
            .iter()
            .map(|label| {
                let now = states
                    .iter()
                    .find(|(l, _)| l == label)
                    .map_or(0, |(_, n)| *n);
                summary.get(label).max(now)
            })
            .sum()
    };
    let unknown = count(&["unknown", "in_flight", "record_failed", "created"]);
    let not_sent = count(&["not_sent", "not_registered"]) + summary.not_started;
    let refused = count(&[
        "rejected",
        "decline",
        "conflict",
        "over_limit",
        "payment_id_taken",
        "error",
    ]);
    let failure = if unknown > 0 {
        Failure::new(
            EXIT_OUTCOME_UNKNOWN,
            "payouts with an unknown outcome: run the same file again (or `rp reconcile`); \
             never pay them under new IDs",
        )
    } else if not_sent > 0 {
        Failure::new(
            EXIT_NOT_SENT,
            format!("{not_sent} row(s) not sent: run the same file again to send them"),
        )
    } else if refused > 0 {
        Failure::new(
            EXIT_DECLINED,
            format!("{refused} row(s) refused or declined"),
        )
    } else {
        return Ok(());
    };
    Err(failure)
}
