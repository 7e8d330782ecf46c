//! `rp operators`, `rp payout`, `rp status`: the Gate from the command line, against any Gate
//! (the production host by default; `--base-url` for `rp sim`).

use std::time::{Duration, Instant};

use rp_model::{Currency, CustomerId, Money, Msisdn, Operator, PaymentId, PaymentStatus, Payout};
use rp_payout::{
    Acceptance, Client, PaymentIdGenerator as _, PayoutReceipt, PayoutState, RandomPaymentIds,
    StatusReport,
};
use serde_json::json;

use crate::common::{
    EXIT_DECLINED, EXIT_NOT_SENT, EXIT_OUTCOME_UNKNOWN, EXIT_SIGNATURE_OR_PROJECT, Failure,
    GateArgs, outcome_class, print_json, runtime,
};

/// Arguments of `rp operators`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = OPERATORS_HELP, after_help = "Run with --help for examples.")]
pub(crate) struct OperatorsArgs {
    #[command(flatten)]
    gate: GateArgs,
}

const OPERATORS_HELP: &str = "\
Examples:
  RP_PROJECT_ID=1234 RP_SECRET_KEY=... rp operators
  RP_SECRET_KEY=sim-secret-key rp operators --base-url http://127.0.0.1:8080 --project-id 1234 --json";

/// Arguments of `rp payout`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = PAYOUT_HELP, after_help = "Run with --help for examples.")]
pub(crate) struct PayoutArgs {
    /// The phone number to credit, in any common form: +7 701 123 45 67, 8 (701) 123-45-67, 7011234567.
    #[arg(long, value_name = "NUMBER")]
    phone: String,
    /// The amount in tenge as people write it: 1500, 1 500,00, 1500.50, 1 500 тг (KZT only).
    #[arg(long, value_name = "TENGE", allow_hyphen_values = true)]
    amount: String,
    /// Your ID of the customer being paid.
    #[arg(long, value_name = "ID")]
    customer_id: String,
    /// The payment ID: the idempotency key. Reuse it (never a new one) to retry this payout.
    /// Default: a fresh random ID, printed.
    #[arg(long, value_name = "ID")]
    payment_id: Option<String>,
    /// The operator (ACTIV, ALTEL, BEELINE, KCELL, TELE2), if you know it. The number's prefix is
    /// only a hint: numbers move between operators.
    #[arg(long, value_name = "ID")]
    operator: Option<String>,
    /// A description of the payout.
    #[arg(long)]
    description: Option<String>,
    #[command(flatten)]
    ledger: crate::ledger_cmd::LedgerArgs,
    /// After acceptance, ask for the status until it is final or this many seconds have passed
    /// (1 to 86400). Exit 0 only if the payout was paid.
    #[arg(long, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    wait: Option<u64>,
    #[command(flatten)]
    limits: crate::batch_cmd::LimitArgs,
    #[command(flatten)]
    gate: GateArgs,
}

const PAYOUT_HELP: &str = "\
The payout is signed and sent once. If the answer is lost (timeout, dropped connection, 5xx),
the status endpoint is asked and the payout is resent only under the SAME payment ID, and only
if the platform does not have it. Acceptance means the request was registered; the result comes
later (see --wait, or `rp status`).

With limits (--max-amount, --daily-amount, …, or RP_LIMIT_*), the payout is checked against
them and what the ledger already counts (the last 24 hours, 7 days, 31 days), atomically with
recording it: over a limit, nothing is recorded or sent (exit 4), and the error names the
limit and what is left.

Examples:
  RP_PROJECT_ID=1234 RP_SECRET_KEY=... rp payout --phone '+7 701 123 45 67' --amount '1 500' --customer-id c-42
  rp payout --phone 87051234567 --amount 1500.50 --customer-id c-42 --payment-id order-9 --wait 60
  # against the local simulator (rp sim):
  RP_SECRET_KEY=sim-secret-key rp payout --base-url http://127.0.0.1:8080 --project-id 1234 \\
      --phone '+7 701 123 0001' --amount 1500 --customer-id c-1 --wait 10   # magic 0001: a decline";

/// Arguments of `rp status`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = STATUS_HELP, after_help = "Run with --help for examples.")]
pub(crate) struct StatusArgs {
    /// The payment ID.
    payment_id: String,
    #[command(flatten)]
    gate: GateArgs,
}

const STATUS_HELP: &str = "\
The status response is signed by the platform; its signature is verified when present.

Examples:
  RP_PROJECT_ID=1234 RP_SECRET_KEY=... rp status order-9
  rp status order-9 --json";

/// Runs `rp operators`.
pub(crate) fn operators(args: &OperatorsArgs) -> Result<(), Failure> {
    let client = args.gate.client()?;
    let list = runtime()?
        .block_on(client.operators())
        .map_err(|e| at_gate(e, client.config().base_url.as_str()))?;
    if args.gate.json {
        let ids: Vec<&str> = list.operators.iter().map(Operator::id).collect();
        print_json(&json!({ "operators": ids }));
    } else {
        println!("{} operators available for payouts:", list.operators.len());
        for operator in &list.operators {
            println!("  {:<8} {}", operator.id(), operator.name());
        }
    }
    Ok(())
}

/// Runs `rp payout`.
pub(crate) fn payout(args: &PayoutArgs) -> Result<(), Failure> {
    let runtime = runtime()?;
    // Every input checked before the ledger is opened (or created).
    let config = args.gate.config()?.with_limits(args.limits.limits()?);
    let transport = config.default_transport()?;
    let payout = build_payout(args)?;
    let ledger = runtime.block_on(args.ledger.open())?;
    let store = ledger.store(config.project_id);
    let client = crate::common::ledger_client(config, transport, store, Duration::from_secs(600))?;
    let id = payout.payment_id();
    // On stderr before the first byte is sent: a kill, a crash or a closed terminal never
    // loses the ID that a rerun must reuse.
    // The destination in the same line: a forgotten --base-url with a test key shows here.
    eprintln!(
        "payout {id}: sending {} to {} {}; if this command is interrupted, rerun it with --payment-id {id} (never a new ID)",
        payout.amount(),
        payout.phone(),
        crate::common::destination(&client.config().base_url, client.config().project_id),
    );
    let Some(result) = runtime.block_on(until_interrupted(client.payout(&payout))) else {
        // Recorded as unknown, so that the rerun asks the status at once instead of taking
        // the payout for one still being sent.
        if let Err(error) = runtime.block_on(client.abandon(id)) {
            eprintln!("rp payout: could not record the interruption in the ledger: {error}");
        }
        return Err(Failure::unreachable(format!(
            "interrupted: the outcome of payout {id} is unknown (it may have been sent); \
             rerun with --payment-id {id}, never under a new ID"
        ))
        .about(id));
    };
    let receipt = match result {
        Ok(receipt) => receipt,
        Err(error) => {
            let base_url = client.config().base_url.clone();
            let not_a_gate = error.is_outcome_unknown()
                && runtime.block_on(answers_not_found_everywhere(&client, id));
            let failure = for_the_command_line(error, &base_url).about(id);
            return Err(if not_a_gate {
                not_a_gate_failure(&base_url, id)
            } else {
                failure
            });
        }
    };
    let id = &receipt.payment_id;
    if !args.gate.json {
        // Printed before any waiting, so the payment ID is never lost.
        println!(
            "accepted: payout {id} of {} to {} ({})",
            payout.amount(),
            payout.phone(),
            acceptance_text(&receipt)
        );
    }
    let report = match args.wait {
        Some(seconds) => Some(
            runtime
                .block_on(until_interrupted(wait_final(&client, &receipt, seconds)))
                .ok_or_else(|| {
                    Failure::unreachable(format!(
                        "interrupted while waiting: payout {id} was accepted, its result is not \
                         known yet; ask: rp status {id}"
                    ))
                    .about(id)
                })?
                .map_err(|failure| {
                    Failure::unreachable(format!(
                        "payout {id} was accepted, but its status could not be read ({}); ask \
                         again: rp status {id}",
                        failure.message
                    ))
                    .about(id)
                })?,
        ),
        None => None,
    };
    let verdict = match &report {
        Some(report) => verdict(report, args.wait.unwrap_or_default()),
        None => Ok(()),
    };
    if args.gate.json {
        let mut out = json!({
            "ok": verdict.is_ok(),
            "outcome": outcome_class(verdict.as_ref().err().map_or(0, |f| f.code)),
            "payment_id": id.as_str(),
            "accepted": true,
            "acceptance": acceptance_name(&receipt.acceptance),
            "request_id": receipt.request_id,
            "attempts": receipt.attempts,
            "phone": payout.phone().masked(),
            // In tenge as a decimal string (exact); minor units beside it for programs.
            "amount": payout.amount().decimal(),
            "amount_minor": payout.amount().minor_units(),
            "currency": payout.amount().currency().code(),
        });
        if let Some(report) = &report {
            out["status"] = json!(report.status.as_str());
            out["final"] = json!(report.status.is_final());
            out["code"] = json!(report.last_code.as_ref().map(|c| c.as_str()));
            out["message"] = json!(report.last_message);
        }
        print_json(&out);
    } else {
        match &report {
            Some(report) => print_status(report),
            None => println!("the result comes in the callback, or ask: rp status {id}"),
        }
    }
    verdict.map_err(|mut failure| {
        failure.json_printed = args.gate.json;
        failure.about(id)
    })
}

/// The exit status of `rp payout --wait`: 0 only when money reached the customer.
fn verdict(report: &StatusReport, waited: u64) -> Result<(), Failure> {
    let id = &report.payment_id;
    let code = code_suffix(report);
    match &report.status {
        status if status.is_paid() => Ok(()),
        PaymentStatus::Decline => Err(Failure::new(
            EXIT_DECLINED,
            format!(
                "payout {id} was declined{code}; nothing was paid: another try needs a new \
                 payment ID"
            ),
        )),
        PaymentStatus::Error => Err(Failure::new(
            EXIT_NOT_SENT,
            format!(
                "payout {id} ended in status error{code}: nothing was paid; send it again with \
                 --payment-id {id} (rp reconcile does it too)"
            ),
        )),
        status if status.is_final() => Err(Failure::new(
            EXIT_DECLINED,
            format!("payout {id} ended in status {status}{code}"),
        )),
        status => Err(Failure::unreachable(format!(
            "payout {id} is still {status} after {waited} s; ask again with: rp status {id}"
        ))),
    }
}

/// Runs `rp status`.
pub(crate) fn status(args: &StatusArgs) -> Result<(), Failure> {
    let client = args.gate.client()?;
    let payment_id =
        PaymentId::new(args.payment_id.as_str()).map_err(|e| Failure::usage(e.to_string()))?;
    let report = runtime()?
        .block_on(client.status(&payment_id))
        .map_err(|e| at_gate(e, client.config().base_url.as_str()).about(&payment_id))?;
    if args.gate.json {
        let mut raw = serde_json::to_value(&report.raw).unwrap_or_default();
        // The response is printed as received, but the phone number is personal data.
        if let Some(number) = raw.pointer_mut("/account/number")
            && let Some(text) = number.as_str()
        {
            *number = json!(rp_model::mask_phone(text));
        }
        print_json(&json!({
            "payment_id": report.payment_id.as_str(),
            "status": report.status.as_str(),
            "final": report.status.is_final(),
            "code": report.last_code.as_ref().map(|c| c.as_str()),
            "message": report.last_message,
            "signature_verified": report.signature_verified,
            "response": raw,
        }));
    } else {
        print_status(&report);
    }
    Ok(())
}

/// `work`, unless SIGINT (Ctrl-C) or SIGTERM comes first: then `None`, and `work` is dropped.
async fn until_interrupted<F: Future>(work: F) -> Option<F::Output> {
    tokio::select! {
        output = work => Some(output),
        () = interrupted() => None,
    }
}

/// Resolves on SIGINT or SIGTERM; never, if no handler can be installed.
pub(crate) async fn interrupted() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut terminate) = signal(SignalKind::terminate()) {
            tokio::select! {
                result = tokio::signal::ctrl_c() => if result.is_err() {
                    terminate.recv().await;
                },
                _ = terminate.recv() => {}
            }
            return;
        }
    }
    if tokio::signal::ctrl_c().await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// A failure of a request to the Gate at `base_url`, naming the Gate when the request did not
/// complete (a connection, a timeout, an answer that is not the Gate's).
fn at_gate(error: rp_payout::Error, base_url: &str) -> Failure {
    let names_the_gate = matches!(
        error,
        rp_payout::Error::Transport { .. } | rp_payout::Error::UnexpectedResponse { .. }
    );
    let mut failure = Failure::from(error);
    if names_the_gate {
        failure.message = format!("{} (Gate {base_url})", failure.message);
    }
    failure
}

/// Whether the Gate answers the status request for `id` with HTTP 404 and a body that is not
/// the Gate's: then the base URL serves no Gate, and nothing there took the payout.
async fn answers_not_found_everywhere(client: &Client, id: &PaymentId) -> bool {
    matches!(
        client.status(id).await,
        Err(rp_payout::Error::UnexpectedResponse {
            http_status: 404,
            ..
        })
    )
}

/// A payout sent to a base URL that answers 404 to the Gate's paths: a configuration error.
fn not_a_gate_failure(base_url: &str, id: &PaymentId) -> Failure {
    Failure::new(
        EXIT_SIGNATURE_OR_PROJECT,
        format!(
            "{base_url} answers HTTP 404 to the Gate's payout and status paths: it is not a \
             Rocketpay Gate, so the payout was not taken there. Check --base-url or RP_BASE_URL \
             (production: {}). The ledger keeps payout {id} as unknown: once the URL is right, \
             rerun with --payment-id {id} (the status is asked first; it is never paid twice)",
            rp_payout::DEFAULT_BASE_URL
        ),
    )
    .about(id)
}

/// The library's advice assumes a long-running service whose store reconciles later; a command
/// has no such store once it exits, so say what the operator must do, with the payment ID and
/// the Gate (`base_url`).
fn for_the_command_line(error: rp_payout::Error, base_url: &str) -> Failure {
    match error {
        rp_payout::Error::OutcomeUnknown {
            payment_id,
            attempts,
            last,
        } => Failure::new(
            EXIT_OUTCOME_UNKNOWN,
            format!(
                "the outcome of payout {payment_id} is unknown after {attempts} request(s) to \
                 {base_url} ({last}); it may have been paid. Ask `rp status {payment_id}` (wait \
                 10 s or more), and retry only with --payment-id {payment_id}, never under a new ID"
            ),
        )
        .about(&payment_id),
        rp_payout::Error::NotSent {
            payment_id,
            attempts,
            last,
        } => Failure::new(
            EXIT_NOT_SENT,
            format!(
                "payout {payment_id} was not sent to {base_url} after {attempts} attempt(s) \
                 ({last}); nothing was paid. Retry with --payment-id {payment_id}"
            ),
        )
        .about(&payment_id),
        rp_payout::Error::InFlight { payment_id, .. } => Failure::new(
            EXIT_OUTCOME_UNKNOWN,
            format!(
                "payout {payment_id} is being sent by another command or process right now; its \
                 outcome is not known here. Ask `rp status {payment_id}`, and retry only with \
                 --payment-id {payment_id}, never under a new ID"
            ),
        )
        .about(&payment_id),
        other => at_gate(other, base_url),
    }
}

fn build_payout(args: &PayoutArgs) -> Result<Payout, Failure> {
    let usage = |e: rp_model::Error| Failure::usage(e.to_string());
    // The client's own default generator (`Client::new_payment_id`).
    let id = match &args.payment_id {
        Some(id) => id.clone(),
        None => RandomPaymentIds::default().generate(),
    };
    let payment_id = PaymentId::new(id).map_err(usage)?;
    let mut builder = Payout::builder()
        .payment_id(payment_id)
        .phone(Msisdn::parse(&args.phone).map_err(usage)?)
        .amount(Money::parse(&args.amount, Currency::KZT).map_err(usage)?)
        .customer_id(CustomerId::new(args.customer_id.as_str()).map_err(usage)?);
    if let Some(operator) = &args.operator {
        let operator = Operator::from_id(operator);
        if !operator.is_known() {
            return Err(Failure::usage(format!(
                "unknown operator `{operator}`; use one of ACTIV, ALTEL, BEELINE, KCELL, TELE2"
            )));
        }
        builder = builder.operator(operator);
    }
    if let Some(description) = &args.description {
        builder = builder.description(description.as_str());
    }
    builder.build().map_err(usage)
}

/// Asks for the status until it is final or `seconds` have passed.
async fn wait_final(
    client: &Client,
    receipt: &PayoutReceipt,
    seconds: u64,
) -> Result<StatusReport, Failure> {
    if let PayoutState::Status(status) = &receipt.state
        && status.is_final()
    {
        return client
            .status(&receipt.payment_id)
            .await
            .map_err(Failure::from);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let mut pause = Duration::from_millis(500);
    loop {
        tokio::time::sleep(pause.min(deadline.saturating_duration_since(Instant::now()))).await;
        match client.status(&receipt.payment_id).await {
            Ok(report) if report.status.is_final() || Instant::now() >= deadline => {
                return Ok(report);
            }
            // Right after acceptance the platform may not know the payment yet (spec §4).
            Ok(_) | Err(rp_payout::Error::NotFound { .. }) if Instant::now() < deadline => {}
            Ok(report) => return Ok(report),
            Err(error) => return Err(error.into()),
        }
        pause = (pause * 2).min(Duration::from_secs(5));
    }
}

fn acceptance_name(acceptance: &Acceptance) -> &'static str {
    match acceptance {
        Acceptance::Accepted => "accepted",
        Acceptance::FoundByStatus => "found_by_status",
        Acceptance::AlreadyRecorded => "already_recorded",
        _ => "other",
    }
}

fn acceptance_text(receipt: &PayoutReceipt) -> String {
    let how = match receipt.acceptance {
        Acceptance::Accepted => "accepted for processing".to_owned(),
        Acceptance::FoundByStatus => {
            "the answer was lost or the ID was already used; the signed status showed the platform has this payout".to_owned()
        }
        Acceptance::AlreadyRecorded => "already recorded; nothing was sent".to_owned(),
        _ => "accepted".to_owned(),
    };
    match &receipt.request_id {
        Some(request) => format!("{how}; request {request}, {} attempt(s)", receipt.attempts),
        None => format!("{how}; {} attempt(s)", receipt.attempts),
    }
}

fn code_suffix(report: &StatusReport) -> String {
    match (&report.last_code, &report.last_message) {
        (Some(code), Some(message)) => format!(": code {code} ({message})"),
        (Some(code), None) => format!(": code {code}"),
        _ => String::new(),
    }
}

/// An amount from the platform: as money when its currency is in our table (`1 500,00 ₸`),
/// else its minor units and code as sent.
fn show_sum(sum: &rp_model::wire::Sum) -> String {
    match Currency::from_code(&sum.currency) {
        Some(currency) => Money::from_minor(sum.amount, currency).to_string(),
        None => format!(
            "{} {} (minor units)",
            sum.amount,
            sum.currency.chars().take(8).collect::<String>()
        ),
    }
}

fn print_status(report: &StatusReport) {
    let finality = if report.status.is_final() {
        "final"
    } else {
        "not final yet"
    };
    println!("payment   {}", report.payment_id);
    println!("status    {} ({finality})", report.status);
    if let Some(code) = &report.last_code {
        let message = report.last_message.as_deref().unwrap_or("");
        match code.category() {
            Some(category) => println!("code      {code} {message} [{category}]"),
            None => println!("code      {code} {message}"),
        }
    }
    if let Some(operator) = report
        .raw
        .account
        .as_ref()
        .and_then(|a| a.operator.as_ref())
    {
        println!("operator  {}", operator.name());
    }
    if let Some(sum) = report.raw.payment.as_ref().and_then(|p| p.sum.as_ref()) {
        println!("amount    {}", show_sum(sum));
    }
    for operation in &report.operations {
        println!(
            "operation {} {} {} code {} {}",
            operation.id.map(|id| id.to_string()).unwrap_or_default(),
            operation.kind.as_deref().unwrap_or("-"),
            operation.status.as_ref().map(|s| s.as_str()).unwrap_or("-"),
            operation.code.as_ref().map(|c| c.as_str()).unwrap_or("-"),
            operation.date.as_ref().map(|d| d.as_str()).unwrap_or(""),
        );
        // Both sums: what was asked and what was paid (they differ after a conversion).
        match (&operation.sum_initial, &operation.sum_converted) {
            (Some(initial), Some(converted)) => println!(
                "          asked {}, paid {}",
                show_sum(initial),
                show_sum(converted)
            ),
            (Some(initial), None) => println!("          asked {}", show_sum(initial)),
            (None, Some(converted)) => println!("          paid {}", show_sum(converted)),
            (None, None) => {}
        }
    }
    let signature = if report.signature_verified {
        "verified"
    } else {
        "absent (response not signed)"
    };
    println!("signature {signature}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_outcome_says_which_payment_id_to_reuse() {
        let payment_id = PaymentId::new("order-9").unwrap();
        let failure = for_the_command_line(
            rp_payout::Error::OutcomeUnknown {
                payment_id: payment_id.clone(),
                attempts: 1,
                last: "timed out".to_owned(),
            },
            "https://gate.example",
        );
        assert_eq!(failure.code, EXIT_OUTCOME_UNKNOWN);
        assert_eq!(failure.payment_id.as_deref(), Some("order-9"));
        assert!(
            failure
                .message
                .contains("request(s) to https://gate.example"),
            "{}",
            failure.message
        );
        assert!(
            failure.message.contains("rp status order-9"),
            "{}",
            failure.message
        );
        assert!(
            failure.message.contains("--payment-id order-9"),
            "{}",
            failure.message
        );
        assert!(
            !failure.message.contains("will be reconciled"),
            "{}",
            failure.message
        );

        let failure = for_the_command_line(
            rp_payout::Error::NotSent {
                payment_id,
                attempts: 4,
                last: "connection refused".to_owned(),
            },
            "https://gate.example",
        );
        assert_eq!(failure.code, EXIT_NOT_SENT);
        assert!(
            failure
                .message
                .contains("nothing was paid. Retry with --payment-id order-9")
        );
    }
}
