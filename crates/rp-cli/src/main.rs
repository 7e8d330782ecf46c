//! The `rp` command line: payouts to mobile phone balances in Kazakhstan through the Rocketpay
//! Gate API, and the tools around them.
//!
//! Each subcommand is one variant of [`Command`] and lives in its own module; what they share
//! (exit codes, one-line failures, the secret key, the Gate connection) is in `common`.

mod access_cmd;
mod batch_cmd;
mod batch_list;
mod batch_run;
mod common;
mod demo;
mod gate_cmd;
mod ledger_cmd;
mod limits_file;
mod listen;
mod serve_cmd;
mod sign_cmd;
mod webhook_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// mimalloc instead of the system's allocator: `rp serve` allocates on many threads at once
/// (HTTP server and client, the ledger's threads, the webhook sender), and glibc's malloc
/// took about a sixth of the API bench's CPU time (perf), with more in the futex waits of its
/// locks. Built without transparent huge pages (`no_thp`, the workspace's Cargo.toml): with
/// them, the kernel zeroed 2 MB at each fresh page, a tenth of the API bench's CPU time. With
/// both, `cargo xtask bench` measured about a quarter more payouts per second through the API
/// and for the library on SQLite, and four fifths more on the memory store (the benches use
/// it too).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Payouts to Kazakhstan mobile phone balances through the Rocketpay Gate API.
#[derive(Debug, Parser)]
#[command(name = "rp", version, long_about = None)]
#[command(after_help = AFTER_HELP)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

const AFTER_HELP: &str = "\
Configuration: RP_BASE_URL (default https://api.rocketpay.kz), RP_PROJECT_ID, and the secret key
from RP_SECRET_KEY or --secret-file (never a flag value). Logs: RP_LOG=debug.

Start here:
  rp demo                     the whole job against the embedded simulator
  rp sim                      run the simulator (magic values: rp sim --help)

Exit status (with --json, a failure is also one JSON object on stdout: outcome, exit_code,
payment_id, message):
  0  success (rp payout --wait: paid)
  1  declined: the platform refused or declined the payout; another try needs a NEW payment ID
  2  input error: usage, a phone number, an amount, configuration, a file; nothing was sent
  3  outcome unknown: it may have been paid; NEVER resend under a new payment ID: rerun with
     the same --payment-id, or ask rp status ID / rp reconcile
  4  not sent: nothing reached the platform (or the payout ended in status error, unpaid);
     safe to run again with the same --payment-id
  5  payment unknown: the platform (code 3061) or the ledger has no payment under this ID
  6  signature or project problem: wrong key, project ID or base URL (codes 3261, 3262, 2442,
     310, 3193; a signature that does not verify; a URL that is not a Gate)
  7  rp demo: an outcome was not the expected one";

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Run the whole job against the embedded simulator: payouts, callbacks, reconciliation.
    Demo(demo::DemoArgs),
    /// Run the local Gate simulator (state, signed callbacks, magic values).
    Sim(rp_sim::SimArgs),
    /// List the operators available for payouts.
    Operators(gate_cmd::OperatorsArgs),
    /// Pay out to a mobile phone balance.
    Payout(gate_cmd::PayoutArgs),
    /// Ask the status of a payment.
    Status(gate_cmd::StatusArgs),
    /// The payouts in the ledger: list them, show one with its history.
    Payouts(ledger_cmd::PayoutsArgs),
    /// Ask about overdue payouts and send again (same payment ID) what the platform lacks.
    Reconcile(ledger_cmd::ReconcileArgs),
    /// Receive callbacks: verify, print, answer as the platform expects.
    Listen(listen::ListenArgs),
    /// Sign a JSON payload (key from `RP_SECRET_KEY` or `--secret-file`).
    Sign(sign_cmd::SignArgs),
    /// Verify the signature of a callback or signed response.
    Verify(sign_cmd::VerifyArgs),
    /// Mass payouts from a CSV file: `rp batch check FILE` validates one (sends nothing).
    Batch(batch_cmd::BatchArgs),
    /// The payout desk: callback endpoint, reconciler, batch worker and web console.
    Serve(serve_cmd::ServeArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let server = matches!(&cli.command, Command::Serve(args) if args.is_server())
        || matches!(&cli.command, Command::Demo(args) if args.console);
    init_logging(server);
    // Every subcommand's `--json` means the same: failures too are printed as JSON.
    let json = std::env::args_os().any(|arg| arg == "--json");
    let finish = |command: &str, outcome: Result<(), common::Failure>| {
        common::finish(command, json, outcome)
    };
    match cli.command {
        Command::Demo(args) => finish("rp demo", demo::demo(&args)),
        Command::Sim(args) => finish("rp sim", run_sim(args)),
        Command::Operators(args) => finish("rp operators", gate_cmd::operators(&args)),
        Command::Payout(args) => finish("rp payout", gate_cmd::payout(&args)),
        Command::Status(args) => finish("rp status", gate_cmd::status(&args)),
        Command::Payouts(args) => finish("rp payouts", ledger_cmd::payouts(&args)),
        Command::Reconcile(args) => finish("rp reconcile", ledger_cmd::reconcile(&args)),
        Command::Listen(args) => finish("rp listen", listen::listen(&args)),
        Command::Sign(args) => sign_cmd::sign(&args),
        Command::Verify(args) => sign_cmd::verify(&args),
        Command::Batch(args) => finish(args.name(), batch_cmd::batch(&args)),
        Command::Serve(args) => finish("rp serve", serve_cmd::serve(&args)),
    }
}

fn run_sim(args: rp_sim::SimArgs) -> Result<(), common::Failure> {
    common::runtime()?
        .block_on(rp_sim::run(args))
        .map_err(|e| common::Failure::usage(e.to_string()))
}

/// Logs go to stderr when `RP_LOG` is set (e.g. `RP_LOG=debug`, `RP_LOG=rp_payout=trace`);
/// a server (`rp serve`, `rp demo --console`) logs at `info` without it. `RP_LOG_FORMAT=json`:
/// one JSON object a line, for a log collector.
fn init_logging(server: bool) {
    let filter = match std::env::var("RP_LOG") {
        Ok(filter) => filter,
        Err(_) if server => "info".to_owned(),
        Err(_) => return,
    };
    let json = std::env::var("RP_LOG_FORMAT").is_ok_and(|format| format == "json");
    let builder = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
