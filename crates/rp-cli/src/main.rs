//! The `rp` command line: payouts to mobile phone balances in Kazakhstan through the Rocketpay
//! Gate API, and tools around it.
//!
//! Each subcommand is one variant of [`Command`] and lives in its own module.

mod sign_cmd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Rocketpay Gate payouts to Kazakh mobile phone balances, and tools around them.
#[derive(Debug, Parser)]
#[command(name = "rp", version, about, long_about = None)]
#[command(
    after_help = "Exit status: 0 success, 1 invalid signature (rp verify), 2 usage or input error."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Sign a JSON payload (key from `RP_SECRET_KEY` or `--secret-file`).
    Sign(sign_cmd::SignArgs),
    /// Verify the signature of a callback or signed response.
    Verify(sign_cmd::VerifyArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Sign(args) => sign_cmd::sign(&args),
        Command::Verify(args) => sign_cmd::verify(&args),
    }
}
