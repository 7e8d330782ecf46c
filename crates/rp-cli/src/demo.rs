//! `rp demo`: the whole job on the embedded simulator, end to end.
//!
//! Starts the simulator and a callback endpoint on free loopback ports, then drives the real
//! client through it: the operator list, a payout that succeeds, one that is declined, one whose
//! answer is lost after the platform recorded it (HTTP 500), and one whose callback is lost and
//! is reconciled through the status endpoint. Prints what happened and exits 0 only if every
//! outcome was the expected one.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rp_model::{
    Currency, CustomerId, Money, Msisdn, Operator, PaymentId, PaymentStatus, Payout, ProjectId,
};
use rp_payout::{
    Acceptance, CallbackOutcome, Client, Config, PayoutState, ReconcileResult, RetryPolicy,
};
use rp_sign::SecretKey;
use rp_sim::{DEFAULT_PROJECT_ID, DEFAULT_SECRET_KEY, RunningSimulator, Simulator, TimeScale};

use crate::common::{EXIT_DEMO_MISMATCH, Failure, runtime};

const DEMO_HELP: &str = "\
Nothing to configure: the simulator runs in-process with its default test project (1234) and
test key. The payouts use the simulator's magic phone numbers (see `rp sim --help`):
  +7 701 123 45 67  success
  +7 705 123 0001   declined, code 20000
  +7 707 123 0020   HTTP 500 after the payout was recorded: resolved by a status request, not resent
  +7 777 123 0016   the callback is lost: reconciled through the status endpoint

Examples:
  cargo run -p rp-cli -- demo
  cargo run -p rp-cli -- demo --console   # the web console in a browser, until Ctrl-C
  rp demo --processing-ms 1000     # the simulator takes 1 s per payout
  RP_LOG=rp_payout=debug rp demo   # with the client's logs on stderr

Exit status: 0 every outcome as expected, 4 otherwise.";

/// Arguments of `rp demo`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = DEMO_HELP, after_help = "Run with --help for what it does.")]
pub(crate) struct DemoArgs {
    /// How long the simulator keeps a payout `processing`, in milliseconds.
    #[arg(long, default_value_t = 300, value_name = "MS")]
    processing_ms: u64,
    /// Instead: start the simulator and `rp serve` with a demo operator, print the console's
    /// address and the credentials, and run until Ctrl-C (nothing is kept).
    #[arg(long)]
    pub(crate) console: bool,
    /// With --console: the console's address.
    #[arg(
        long,
        default_value = "127.0.0.1:8080",
        value_name = "ADDR",
        requires = "console"
    )]
    listen: std::net::SocketAddr,
}

/// How the client may learn a payout's result.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Learned {
    /// From the signed callback.
    Callback,
    /// From the callback or from the status request that resolved a lost answer, whichever
    /// comes first (both are legitimate; on a loaded machine either may win).
    CallbackOrStatus,
    /// Only from reconciliation: the callback is lost.
    Reconcile,
}

/// One payout of the demo and the outcome it must reach.
struct Case {
    label: &'static str,
    phone: &'static str,
    tenge: u64,
    expected: PaymentStatus,
    learned: Learned,
}

const CASES: [Case; 4] = [
    Case {
        label: "success",
        phone: "+7 701 123 45 67",
        tenge: 1_500,
        expected: PaymentStatus::Success,
        learned: Learned::Callback,
    },
    Case {
        label: "decline",
        phone: "+7 705 123 0001",
        tenge: 2_000,
        expected: PaymentStatus::Decline,
        learned: Learned::Callback,
    },
    Case {
        label: "answer-lost",
        phone: "+7 707 123 0020",
        tenge: 750,
        expected: PaymentStatus::Success,
        learned: Learned::CallbackOrStatus,
    },
    Case {
        label: "callback-lost",
        phone: "+7 777 123 0016",
        tenge: 12_000,
        expected: PaymentStatus::Success,
        learned: Learned::Reconcile,
    },
];

/// Runs `rp demo`.
pub(crate) fn demo(args: &DemoArgs) -> Result<(), Failure> {
    if args.console {
        return runtime()?.block_on(crate::serve_cmd::demo_console(
            args.listen,
            Duration::from_millis(args.processing_ms.max(1_000)),
        ));
    }
    runtime()?.block_on(run(args))
}

async fn run(args: &DemoArgs) -> Result<(), Failure> {
    let internal = |what: &str, e: &dyn std::fmt::Display| {
        Failure::new(EXIT_DEMO_MISMATCH, format!("demo: cannot {what}: {e}"))
    };
    println!("rp demo: the real rp-payout client against the embedded Rocketpay Gate simulator\n");

    // The callback endpoint first (the simulator needs its URL), then the simulator.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| internal("bind a loopback port", &e))?;
    let callback_addr = listener
        .local_addr()
        .map_err(|e| internal("read the bound address", &e))?;
    let project =
        ProjectId::new(DEFAULT_PROJECT_ID).map_err(|e| internal("use the project", &e))?;
    let sim = Simulator::builder()
        .project(project, SecretKey::from(DEFAULT_SECRET_KEY))
        .callback_url(format!("http://{callback_addr}/"))
        .processing_delay(Duration::from_millis(args.processing_ms))
        .time_scale(TimeScale::per_million(1_000))
        .seed(2026)
        .start()
        .await
        .map_err(|e| internal("start the simulator", &e))?;
    println!(
        "  simulator   {}  (project {project}, test key)",
        sim.base_url()
    );
    println!("  callbacks   http://{callback_addr}/  (verified by the client)\n");

    // The client, exactly as a merchant builds it; only the waits are shortened.
    let retry = RetryPolicy {
        status_delay: Duration::from_millis(500),
        initial_backoff: Duration::from_millis(100),
        ..RetryPolicy::default()
    };
    let config = Config::new(project, SecretKey::from(DEFAULT_SECRET_KEY))
        .with_base_url(sim.base_url())
        .with_timeouts(Duration::from_secs(2), Duration::from_secs(5))
        .with_retry(retry)
        .with_overdue_after(Duration::ZERO);
    let client = Arc::new(Client::new(config).map_err(Failure::from)?);
    let outcomes = Arc::new(Mutex::new(Vec::<CallbackOutcome>::new()));
    let seen = Arc::clone(&outcomes);
    let router = rp_payout::axum::callback_router_with_observer(
        Arc::clone(&client),
        Arc::new(move |outcome: &CallbackOutcome| {
            if let Ok(mut all) = seen.lock() {
                all.push(outcome.clone());
            }
        }),
    );
    let receiver = tokio::spawn(async move {
        let _ = axum::serve(listener, router).await;
    });

    let result = drive(&client, &sim, &outcomes).await;
    receiver.abort();
    sim.shutdown().await;
    result
}

async fn drive(
    client: &Client,
    sim: &RunningSimulator,
    outcomes: &Mutex<Vec<CallbackOutcome>>,
) -> Result<(), Failure> {
    println!("1. Operators (POST /v2/info/mobile/payout/list)");
    let operators = client.operators().await.map_err(Failure::from)?;
    let ids: Vec<&str> = operators.operators.iter().map(Operator::id).collect();
    println!("   {}\n", ids.join(", "));

    println!("2. Payouts (POST /v2/payment/mobile/payout, signed; recorded before sending)");
    let mut payouts = Vec::new();
    for (index, case) in CASES.iter().enumerate() {
        let payout = build(case, index)?;
        print!(
            "   {:<24} {:>12} to {}: ",
            payout.payment_id().as_str(),
            payout.amount().to_string(),
            payout.phone()
        );
        match client.payout(&payout).await {
            Ok(receipt) => {
                let how = match receipt.acceptance {
                    Acceptance::FoundByStatus => format!(
                        "answer lost (HTTP 500); the status endpoint showed the platform has it, so it was NOT resent ({} attempt)",
                        receipt.attempts
                    ),
                    _ => format!(
                        "accepted, request {}",
                        receipt.request_id.as_deref().unwrap_or("?")
                    ),
                };
                println!("{how}");
            }
            Err(error) => println!("FAILED: {error}"),
        }
        payouts.push(payout);
    }

    println!("\n3. Callbacks (signed by the platform, verified and de-duplicated by the client)");
    let expecting_callbacks: Vec<&Payout> = CASES
        .iter()
        .zip(&payouts)
        .filter(|(case, _)| case.learned == Learned::Callback)
        .map(|(_, payout)| payout)
        .collect();
    wait_until(Duration::from_secs(10), || {
        let all = outcomes.lock().map(|o| o.clone()).unwrap_or_default();
        expecting_callbacks
            .iter()
            .all(|p| all.iter().any(|o| o.payment_id() == Some(p.payment_id())))
    })
    .await;
    let received = outcomes.lock().map(|o| o.clone()).unwrap_or_default();
    for outcome in &received {
        println!("   {}", describe_callback(outcome));
    }

    println!("\n4. Reconciliation (POST /v2/payment/status for payouts whose result is overdue)");
    let lost: Vec<&Payout> = CASES
        .iter()
        .zip(&payouts)
        .filter(|(case, _)| case.learned == Learned::Reconcile)
        .map(|(_, payout)| payout)
        .collect();
    // Wait until the platform has settled them, as time would in production.
    wait_until(Duration::from_secs(10), || {
        lost.iter().all(|p| {
            sim.payment(p.payment_id().as_str())
                .is_some_and(|s| s.status.is_final())
        })
    })
    .await;
    let report = client.reconcile().await.map_err(Failure::from)?;
    for entry in &report.entries {
        let what = match &entry.result {
            ReconcileResult::Updated { previous, state } => format!(
                "{} -> {} (no callback came; the signed status response told)",
                state_text(previous),
                state_text(state)
            ),
            ReconcileResult::Unchanged(state) => format!("still {}", state_text(state)),
            ReconcileResult::Failed(reason) => format!("status request failed: {reason}"),
            _ => "other".to_owned(),
        };
        println!("   {:<24} {what}", entry.payment_id.as_str());
    }

    println!("\n5. Summary");
    println!(
        "   {:<24} {:<9} {:<15} {:<28} simulator",
        "payment", "expected", "final", "learned from"
    );
    let mut all_ok = true;
    for (case, payout) in CASES.iter().zip(&payouts) {
        let record = client
            .record(payout.payment_id())
            .await
            .map_err(Failure::from)?;
        let state = record.as_ref().map(|r| r.state.clone());
        let mut final_status = state
            .as_ref()
            .map_or_else(|| "(not recorded)".to_owned(), state_text);
        if let Some(code) = record
            .as_ref()
            .and_then(|r| r.last_code.as_ref())
            .filter(|c| !c.is(0))
        {
            final_status = format!("{final_status} {code}");
        }
        let via_callback = received.iter().any(|o| {
            o.payment_id() == Some(payout.payment_id())
                && matches!(o, CallbackOutcome::Applied { .. })
        });
        let via_reconcile = report.entries.iter().any(|e| {
            &e.payment_id == payout.payment_id()
                && matches!(e.result, ReconcileResult::Updated { .. })
        });
        let learned = if via_callback {
            "callback"
        } else if via_reconcile {
            "status endpoint (reconcile)"
        } else {
            "status endpoint"
        };
        let learned_as_expected = match case.learned {
            Learned::Callback => via_callback,
            Learned::CallbackOrStatus => !via_reconcile,
            Learned::Reconcile => via_reconcile && !via_callback,
        };
        let recorded = sim.payment(payout.payment_id().as_str());
        let accepted_once = recorded.as_ref().is_some_and(|p| p.accepted_requests == 1);
        let ok = state == Some(PayoutState::Status(case.expected.clone()))
            && accepted_once
            && learned_as_expected;
        all_ok &= ok;
        println!(
            "   {:<24} {:<9} {:<15} {:<28} {} {}",
            payout.payment_id().as_str(),
            case.expected.as_str(),
            final_status,
            learned,
            if accepted_once {
                "paid once"
            } else {
                "NOT paid exactly once"
            },
            if ok { "ok" } else { "UNEXPECTED" },
        );
    }
    let recorded = sim.payments().len();
    println!(
        "\n   The simulator recorded {recorded} payouts for {} requests to pay.",
        CASES.len()
    );
    if all_ok && recorded == CASES.len() {
        println!("\nEvery outcome was the expected one.");
        Ok(())
    } else {
        Err(Failure::new(
            EXIT_DEMO_MISMATCH,
            "some outcomes were not the expected ones (see the summary above)",
        ))
    }
}

fn build(case: &Case, index: usize) -> Result<Payout, Failure> {
    let invalid = |e: rp_model::Error| Failure::new(EXIT_DEMO_MISMATCH, format!("demo: {e}"));
    Payout::builder()
        .payment_id(PaymentId::new(format!("demo-{}-{}", index + 1, case.label)).map_err(invalid)?)
        .phone(Msisdn::parse(case.phone).map_err(invalid)?)
        .amount(Money::from_major(case.tenge, Currency::KZT).map_err(invalid)?)
        .customer_id(CustomerId::new(format!("customer-{}", index + 1)).map_err(invalid)?)
        .description(format!("rp demo: {}", case.label))
        .build()
        .map_err(invalid)
}

fn describe_callback(outcome: &CallbackOutcome) -> String {
    let id = outcome
        .payment_id()
        .map_or_else(|| "(untrusted)".to_owned(), ToString::to_string);
    let what = match outcome {
        CallbackOutcome::Applied {
            status, previous, ..
        } => {
            format!("{status}: applied (was {})", state_text(previous))
        }
        CallbackOutcome::Duplicate { status, .. } => format!("{status}: duplicate, ignored"),
        CallbackOutcome::Stale {
            status, current, ..
        } => {
            format!("{status}: stale after {current}, ignored")
        }
        other => format!("{other:?}"),
    };
    format!(
        "<- {id:<24} {what}; answered HTTP {}",
        outcome.http_status()
    )
}

/// A payout state for the summary: a status alone (`success`), anything else as `PayoutState`
/// shows itself.
fn state_text(state: &PayoutState) -> String {
    match state {
        PayoutState::Status(status) => status.to_string(),
        other => other.to_string(),
    }
}

async fn wait_until(limit: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !done() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
