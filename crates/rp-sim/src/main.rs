//! `rp-sim`: the Rocketpay Gate simulator as a program. See `rp-sim --help`.

use std::process::ExitCode;

use clap::Parser;
use rp_sim::SimArgs;

#[tokio::main]
async fn main() -> ExitCode {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("rp_sim=info"));
    tracing_subscriber::fmt().with_env_filter(filter).init();
    match rp_sim::run(SimArgs::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("rp-sim: {error}");
            ExitCode::FAILURE
        }
    }
}
