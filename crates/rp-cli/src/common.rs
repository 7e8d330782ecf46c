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
use rp_transport::ReqwestTransport;

/// Exit status: declined. The platform refused or declined the payout; it will not be paid
/// under this payment ID, and another try needs a new payment ID.
pub(crate) const EXIT_DECLINED: u8 = 1;
/// Exit status: an input error (usage, a phone number, an amount, missing configuration, a
/// file, a payment ID used by another payout). Nothing was sent.
pub(crate) const EXIT_USAGE: u8 = 2;
/// Exit status: the outcome is unknown. The payout may have been paid: never resend it under a
/// new payment ID; rerun with the same `--payment-id`, `rp status`, or `rp reconcile`.
pub(crate) const EXIT_OUTCOME_UNKNOWN: u8 = 3;
/// Exit status: not sent. Nothing reached the platform (or a read-only request failed, or the
/// payout ended in status `error`, unpaid): running it again with the same payment ID is safe.
pub(crate) const EXIT_NOT_SENT: u8 = 4;
/// Exit status: payment unknown. The platform (code 3061) or the ledger has no payment under
/// this ID.
pub(crate) const EXIT_PAYMENT_UNKNOWN: u8 = 5;
/// Exit status: a signature or project problem. The key, the project ID or the base URL is
/// wrong (codes 3261, 3262, 2442, …; a response whose signature does not verify; a URL that
/// is not a Gate), or a signature does not verify (`rp verify`).
pub(crate) const EXIT_SIGNATURE_OR_PROJECT: u8 = 6;
/// Exit status: `rp demo` saw an outcome other than the expected one.
pub(crate) const EXIT_DEMO_MISMATCH: u8 = 7;

/// The outcome class of an exit status, as `--json` prints it.
pub(crate) fn outcome_class(code: u8) -> &'static str {
    match code {
        0 => "success",
        EXIT_DECLINED => "declined",
        EXIT_USAGE => "input_error",
        EXIT_OUTCOME_UNKNOWN => "outcome_unknown",
        EXIT_NOT_SENT => "not_sent",
        EXIT_PAYMENT_UNKNOWN => "payment_unknown",
        EXIT_SIGNATURE_OR_PROJECT => "signature_or_project",
        EXIT_DEMO_MISMATCH => "demo_mismatch",
        _ => "failure",
    }
}

/// Platform codes that mean the key, the project or its settings are wrong, not the payout:
/// 3261 invalid signature, 3262 empty signature, 2442 project not found, 310 operation not
/// allowed by the project's settings, 3193 not allowed for this project.
const SIGNATURE_OR_PROJECT_CODES: [u32; 5] = [3261, 3262, 2442, 310, 3193];

/// The environment variable holding the secret key.
pub(crate) const KEY_VARIABLE: &str = "RP_SECRET_KEY";

/// A failure: the one line to print, the exit status, and the payment ID it is about.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) code: u8,
    pub(crate) message: String,
    /// The payment ID the failure is about, when there is one (printed with `--json`).
    pub(crate) payment_id: Option<String>,
    /// True when the command already printed its JSON object (with the outcome), so `--json`
    /// prints no second one.
    pub(crate) json_printed: bool,
}

impl Failure {
    /// A failure with this exit status.
    pub(crate) fn new(code: u8, message: impl Into<String>) -> Failure {
        Failure {
            code,
            message: message.into(),
            payment_id: None,
            json_printed: false,
        }
    }

    /// Bad usage or input (exit 2).
    pub(crate) fn usage(message: impl Into<String>) -> Failure {
        Failure::new(EXIT_USAGE, message)
    }

    /// A refusal because the payment is not known here, e.g. not in the ledger (exit 5,
    /// payment unknown). Declines are `Failure::new(EXIT_DECLINED, …)`.
    pub(crate) fn refused(message: impl Into<String>) -> Failure {
        Failure::new(EXIT_PAYMENT_UNKNOWN, message)
    }

    /// The outcome is unknown (exit 3).
    pub(crate) fn unreachable(message: impl Into<String>) -> Failure {
        Failure::new(EXIT_OUTCOME_UNKNOWN, message)
    }

    /// The same failure, about `payment_id`.
    pub(crate) fn about(mut self, payment_id: impl std::fmt::Display) -> Failure {
        self.payment_id = Some(payment_id.to_string());
        self
    }
}

impl From<rp_payout::Error> for Failure {
    fn from(error: rp_payout::Error) -> Failure {
        use rp_payout::Error as E;
        let payment_id = match &error {
            E::PaymentIdConflict { payment_id, .. }
            | E::PaymentIdHeld { payment_id, .. }
            | E::NotFound { payment_id, .. }
            | E::OutcomeUnknown { payment_id, .. }
            | E::InFlight { payment_id, .. }
            | E::RecordFailed { payment_id, .. }
            | E::NotSent { payment_id, .. }
            | E::OverLimit { payment_id, .. }
            | E::UnsignedStatus { payment_id } => Some(payment_id.to_string()),
            E::Rejected { payment_id, .. } => payment_id.as_ref().map(ToString::to_string),
            _ => None,
        };
        let (code, message) = match &error {
            E::Config { .. }
            | E::InvalidRequest(_)
            | E::Sign { .. }
            | E::PaymentIdConflict { platform: None, .. }
            | E::PaymentIdHeld { .. } => (EXIT_USAGE, error.to_string()),
            E::PaymentIdConflict { .. } => (EXIT_DECLINED, error.to_string()),
            E::Rejected { code, .. }
                if code
                    .number()
                    .is_some_and(|n| SIGNATURE_OR_PROJECT_CODES.contains(&n)) =>
            {
                (
                    EXIT_SIGNATURE_OR_PROJECT,
                    format!(
                        "{error}; check the project ID and the secret key (RP_PROJECT_ID, \
                         RP_SECRET_KEY or --secret-file); `rp sign --explain FILE` shows the \
                         string our signature is computed over"
                    ),
                )
            }
            E::Rejected { what: "payout", .. } => (
                EXIT_DECLINED,
                format!(
                    "{error}; the payout was not registered: another try needs a new payment ID"
                ),
            ),
            E::Rejected { .. } => (EXIT_USAGE, error.to_string()),
            E::NotFound { .. } => (EXIT_PAYMENT_UNKNOWN, error.to_string()),
            E::OutcomeUnknown { .. } | E::InFlight { .. } | E::RecordFailed { .. } => {
                (EXIT_OUTCOME_UNKNOWN, error.to_string())
            }
            E::OverLimit { .. } => (
                EXIT_NOT_SENT,
                format!(
                    "{error}; nothing was recorded or sent: the same payment ID can be paid once \
                     the limit allows it"
                ),
            ),
            E::NotSent { .. } | E::Transport { .. } | E::Store { .. } => {
                (EXIT_NOT_SENT, error.to_string())
            }
            E::UnexpectedResponse {
                http_status: 404, ..
            } => (
                EXIT_SIGNATURE_OR_PROJECT,
                format!(
                    "{error}; the base URL does not serve the Gate's API (HTTP 404 for its \
                     paths): check --base-url or RP_BASE_URL (production: {})",
                    rp_payout::DEFAULT_BASE_URL
                ),
            ),
            E::UnexpectedResponse { .. } => (EXIT_NOT_SENT, error.to_string()),
            E::InvalidResponseSignature { .. } => (
                EXIT_SIGNATURE_OR_PROJECT,
                format!("{error}; check that the secret key is this project's"),
            ),
            E::UnsignedStatus { payment_id } => (
                EXIT_SIGNATURE_OR_PROJECT,
                format!(
                    "the status response for payment ID {payment_id} is not signed, so it was \
                     not applied to the ledger; if your project's responses are unsigned, ask \
                     Rocketpay support to sign them"
                ),
            ),
            // Anything new: assume the worst for money, that it may have been paid.
            _ => (EXIT_OUTCOME_UNKNOWN, error.to_string()),
        };
        Failure {
            code,
            message,
            payment_id,
            json_printed: false,
        }
    }
}

/// Prints the failure (if any) as one line on stderr and turns it into the exit status; with
/// `json`, also as one JSON object on stdout (outcome class, exit status, payment ID, message),
/// unless the command already printed its object.
pub(crate) fn finish(command: &str, json: bool, outcome: Result<(), Failure>) -> ExitCode {
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{command}: {}", failure.message);
            if json && !failure.json_printed {
                print_json(&serde_json::json!({
                    "ok": false,
                    "outcome": outcome_class(failure.code),
                    "exit_code": failure.code,
                    "payment_id": failure.payment_id,
                    "message": failure.message,
                }));
            }
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
    /// The key from `--secret-file` (one trailing newline ignored) or `RP_SECRET_KEY`. A key
    /// with spaces or line breaks around it is refused: the platform would answer 3261.
    pub(crate) fn load(&self) -> Result<SecretKey, Failure> {
        let (text, from) = match &self.secret_file {
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
                (text, format!("the secret file {}", path.display()))
            }
            None => match std::env::var(KEY_VARIABLE) {
                Ok(text) => (text, KEY_VARIABLE.to_owned()),
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
        let spaced = text.trim() != text;
        let key = SecretKey::from(text);
        if spaced {
            return Err(Failure::usage(format!(
                "the secret key from {from} starts or ends with whitespace; the key is used byte \
                 for byte, so the platform would answer 3261 (invalid signature): remove the \
                 spaces or line breaks around it"
            )));
        }
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
    #[arg(
        long,
        env = "RP_PROJECT_ID",
        value_name = "N",
        allow_hyphen_values = true
    )]
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

/// `--project-id` / `RP_PROJECT_ID` of a command on the ledger.
#[derive(Debug, clap::Args)]
pub(crate) struct ProjectArg {
    /// Your project ID (the ledger keeps each project's payouts, batches and webhook
    /// endpoints apart).
    #[arg(
        long,
        env = "RP_PROJECT_ID",
        value_name = "N",
        allow_hyphen_values = true
    )]
    project_id: Option<String>,
}

impl ProjectArg {
    /// The project ID given, or why there is none.
    pub(crate) fn id(&self) -> Result<ProjectId, Failure> {
        project_id(self.project_id.as_deref())
    }
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

    /// The client's configuration: the project, the key (read here, once: a secret file may
    /// be a pipe), the Gate's base URL and the timeouts.
    pub(crate) fn config(&self) -> Result<Config, Failure> {
        let project = project_id(self.project_id.as_deref())?;
        if self.timeout == 0 {
            return Err(Failure::usage("--timeout must be at least 1 second"));
        }
        let base_url = gate_base_url(&self.base_url)?;
        let attempt = Duration::from_secs(self.timeout);
        Ok(Config::new(project, self.key.load()?)
            .with_base_url(base_url)
            .with_timeouts(attempt.min(Duration::from_secs(10)), attempt))
    }
}

/// A client for `config` over `transport` (built ahead by [`Config::default_transport`], so
/// the Gate's URL is checked before the ledger is opened), recording payouts in `store`;
/// reconcile asks about payouts unchanged for `overdue_after`.
pub(crate) fn ledger_client(
    config: Config,
    transport: ReqwestTransport,
    store: Arc<dyn PayoutStore>,
    overdue_after: Duration,
) -> Result<Client, Failure> {
    Client::builder(config.with_overdue_after(overdue_after))
        .transport(Arc::new(transport))
        .store(store)
        .build()
        .map_err(Failure::from)
}

/// Where money would go: `→ production https://api.rocketpay.kz, project 1234`, or
/// `→ NOT production http://127.0.0.1:8080, project 1234`.
pub(crate) fn destination(base_url: &str, project: ProjectId) -> String {
    let kind = if base_url == rp_payout::DEFAULT_BASE_URL {
        "production"
    } else {
        "NOT production"
    };
    format!("→ {kind} {base_url}, project {project}")
}

/// The Gate's base URL from `--base-url` / `RP_BASE_URL`: a scheme and a host, nothing after.
/// The API's own paths (`…/v2`, `…/v2/payment/…`) are dropped with a warning, because the
/// client adds them; any other path, a query or a fragment is refused.
fn gate_base_url(text: &str) -> Result<String, Failure> {
    let given = text.trim();
    let Some((scheme, rest)) = given.split_once("://") else {
        return Err(Failure::usage(format!(
            "--base-url {given:?} is not a URL; write e.g. {} (or http://127.0.0.1:8080 for rp sim)",
            rp_payout::DEFAULT_BASE_URL
        )));
    };
    if rest.contains(['?', '#']) {
        return Err(Failure::usage(format!(
            "--base-url {given:?} has a query or fragment; write the scheme and host only, e.g. {}",
            rp_payout::DEFAULT_BASE_URL
        )));
    }
    let (host, path) = rest.split_once('/').unwrap_or((rest, ""));
    let origin = format!("{scheme}://{host}");
    let path = path.trim_end_matches('/');
    if path.is_empty() {
        return Ok(origin);
    }
    if path == "v2" || path.starts_with("v2/") {
        eprintln!(
            "rp: warning: --base-url {given} has the API path /{path}, which rp adds itself; using {origin}"
        );
        return Ok(origin);
    }
    Err(Failure::usage(format!(
        "--base-url {given:?} has a path (/{path}); the Gate's base URL is the scheme and host \
         only: write {origin}"
    )))
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
