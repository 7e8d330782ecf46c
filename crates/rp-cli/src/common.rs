//! What every subcommand shares: exit codes, one-line failures, the secret key, the connection
//! to a Gate, and reading input.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use rp_model::ProjectId;
use rp_payout::{Client, Config, PayoutStore};
use rp_sign::SecretKey;

/// Exit status: the platform (or the signature) said no: a rejected payout, an unknown payment,
/// an invalid signature.
pub(crate) const EXIT_REFUSED: u8 = 1;
/// Exit status: bad usage or input (a phone number, an amount, missing configuration, a file).
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status: the Gate could not be reached, or the outcome of a payout is unknown.
pub(crate) const EXIT_UNREACHABLE: u8 = 3;
/// Exit status: `rp demo` saw an outcome other than the expected one.
pub(crate) const EXIT_DEMO_MISMATCH: u8 = 4;

/// The environment variable holding the secret key.
pub(crate) const KEY_VARIABLE: &str = "RP_SECRET_KEY";

/// A failure: the one line to print and the exit status.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
}

impl Failure {
    /// Bad usage or input (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_USAGE,
            message: message.into(),
        }
    }

    /// A refusal (exit 1).
    pub(crate) fn refused(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_REFUSED,
            message: message.into(),
        }
    }

    /// Unreachable or unknown (exit 3).
    pub(crate) fn unreachable(message: impl Into<String>) -> Failure {
        Failure {
            code: EXIT_UNREACHABLE,
            message: message.into(),
        }
    }
}

impl From<rp_payout::Error> for Failure {
    fn from(error: rp_payout::Error) -> Failure {
        use rp_payout::Error as E;
        let code = match &error {
            E::Config { .. }
            | E::InvalidRequest(_)
            | E::PaymentIdConflict { .. }
            | E::Sign { .. } => EXIT_USAGE,
            E::Rejected { .. } | E::NotFound { .. } | E::InvalidResponseSignature { .. } => {
                EXIT_REFUSED
            }
            _ => EXIT_UNREACHABLE,
        };
        Failure {
            code,
            message: error.to_string(),
        }
    }
}

/// Prints the failure (if any) as one line and turns it into the exit status.
pub(crate) fn finish(command: &str, outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{command}: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}

/// Where the secret key comes from: `RP_SECRET_KEY`, or a file. Never a flag value, which would
/// end up in shell history and in the process list.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct KeyArgs {
    /// Read the secret key from this file instead of `RP_SECRET_KEY`.
    #[arg(long, value_name = "PATH")]
    pub(crate) secret_file: Option<PathBuf>,
}

impl KeyArgs {
    /// The key from `--secret-file` (one trailing newline ignored) or `RP_SECRET_KEY`.
    pub(crate) fn load(&self) -> Result<SecretKey, Failure> {
        let key = match &self.secret_file {
            Some(path) => {
                let mut text = std::fs::read_to_string(path).map_err(|e| {
                    Failure::usage(format!(
                        "cannot read the secret file {}: {e}",
                        path.display()
                    ))
                })?;
                if text.ends_with('\n') {
                    text.pop();
                    if text.ends_with('\r') {
                        text.pop();
                    }
                }
                SecretKey::from(text)
            }
            None => match std::env::var(KEY_VARIABLE) {
                Ok(text) => SecretKey::from(text),
                Err(std::env::VarError::NotPresent) => {
                    return Err(Failure::usage(format!(
                        "no secret key: set {KEY_VARIABLE} or pass --secret-file PATH"
                    )));
                }
                Err(std::env::VarError::NotUnicode(_)) => {
                    return Err(Failure::usage(format!("{KEY_VARIABLE} is not valid UTF-8")));
                }
            },
        };
        if key.is_empty() {
            eprintln!(
                "rp: warning: the secret key is empty (the platform allows it, but it is usually a mistake)"
            );
        }
        Ok(key)
    }
}

/// The bytes of `FILE`, or of standard input for `-`, with a name for messages.
pub(crate) fn read_input(path: &Path) -> Result<(String, Vec<u8>), Failure> {
    if path == Path::new("-") {
        let mut bytes = Vec::new();
        std::io::stdin()
            .read_to_end(&mut bytes)
            .map_err(|e| Failure::usage(format!("cannot read standard input: {e}")))?;
        return Ok(("standard input".to_owned(), bytes));
    }
    let name = path.display().to_string();
    let bytes =
        std::fs::read(path).map_err(|e| Failure::usage(format!("cannot read {name}: {e}")))?;
    Ok((name, bytes))
}

/// How to reach a Gate: the production host by default, or e.g. a local `rp sim`.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct GateArgs {
    /// The Gate's base URL (e.g. `http://127.0.0.1:8080` for `rp sim`).
    #[arg(long, env = "RP_BASE_URL", default_value = rp_payout::DEFAULT_BASE_URL, value_name = "URL")]
    pub(crate) base_url: String,
    /// Your project ID.
    #[arg(long, env = "RP_PROJECT_ID", value_name = "N")]
    pub(crate) project_id: Option<String>,
    #[command(flatten)]
    pub(crate) key: KeyArgs,
    /// Seconds allowed for one HTTP attempt.
    #[arg(long, default_value_t = 30, value_name = "SECONDS")]
    pub(crate) timeout: u64,
    /// Print JSON for scripts instead of text for people.
    #[arg(long)]
    pub(crate) json: bool,
}

/// The project ID from `--project-id` / `RP_PROJECT_ID`.
pub(crate) fn project_id(text: Option<&str>) -> Result<ProjectId, Failure> {
    match text {
        Some(text) => text
            .parse::<ProjectId>()
            .map_err(|e| Failure::usage(e.to_string())),
        None => Err(Failure::usage(
            "no project ID: set RP_PROJECT_ID or pass --project-id N",
        )),
    }
}

impl GateArgs {
    /// A client for this Gate, project and key (payouts kept in memory only).
    pub(crate) fn client(&self) -> Result<Client, Failure> {
        Client::new(self.config()?).map_err(Failure::from)
    }

    /// A client for this Gate, project and key, recording payouts in `store`; reconcile asks
    /// about payouts unchanged for `overdue_after`.
    pub(crate) fn client_with(
        &self,
        store: Arc<dyn PayoutStore>,
        overdue_after: Duration,
    ) -> Result<Client, Failure> {
        Client::builder(self.config()?.with_overdue_after(overdue_after))
            .store(store)
            .build()
            .map_err(Failure::from)
    }

    fn config(&self) -> Result<Config, Failure> {
        let project = project_id(self.project_id.as_deref())?;
        if self.timeout == 0 {
            return Err(Failure::usage("--timeout must be at least 1 second"));
        }
        let attempt = Duration::from_secs(self.timeout);
        Ok(Config::new(project, self.key.load()?)
            .with_base_url(self.base_url.clone())
            .with_timeouts(attempt.min(Duration::from_secs(10)), attempt))
    }
}

/// The tokio runtime a command runs on (two worker threads: the machine this runs on may be small).
pub(crate) fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::unreachable(format!("cannot start the async runtime: {e}")))
}

/// Prints a JSON value, pretty.
pub(crate) fn print_json(value: &serde_json::Value) {
    println!(
        "{}",
        serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string())
    );
}
