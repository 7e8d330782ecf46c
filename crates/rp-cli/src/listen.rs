//! `rp listen`: a callback receiver that verifies each callback, prints it, and answers as the
//! platform expects (200 `OK` when valid; 401 / 403 / 400 otherwise, so the platform redelivers).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use rp_model::{ProjectId, mask_phone, wire};
use rp_payout::axum::{ConnectionLimits, RequestLimits, limit_requests, serve_with_shutdown};
use rp_sign::Signer;

use crate::common::{Failure, KeyArgs, runtime};

const LISTEN_HELP: &str = "\
Point the project's callback URL (or `rp sim --callback-url`) at http://HOST:PORT/ (any path).
Each callback is verified with the key from RP_SECRET_KEY or --secret-file, and with
--project-id when given, then printed on one line. Stop with Ctrl-C.

Limits (a callback is a few KiB): a body over --body-limit is answered 413, a request head
or body that does not arrive within --read-timeout-ms is cut off (connection closed, or 408),
at most --max-connections connections are served at once (more wait) and 64 requests are
handled at once (more get 503). Nothing refused this way is printed as a callback.

Examples:
  RP_SECRET_KEY=sim-secret-key rp listen --port 9000
  rp sim --callback-url http://127.0.0.1:9000/ &   # in another terminal
  rp listen --port 9000 --project-id 1234 --secret-file ~/.rp/key --json";

/// Arguments of `rp listen`.
#[derive(Debug, clap::Args)]
#[command(after_long_help = LISTEN_HELP, after_help = "Run with --help for examples.")]
pub(crate) struct ListenArgs {
    /// The port to listen on (0: any free port, printed).
    #[arg(long, value_name = "N")]
    port: u16,
    /// The address to listen on.
    #[arg(long, default_value = "127.0.0.1", value_name = "IP")]
    host: IpAddr,
    /// Accept callbacks of this project only.
    #[arg(long, env = "RP_PROJECT_ID", value_name = "N")]
    project_id: Option<ProjectId>,
    #[command(flatten)]
    key: KeyArgs,
    /// Print each callback as one JSON object per line.
    #[arg(long)]
    json: bool,
    /// The largest callback body in bytes; above it: 413.
    #[arg(long, value_name = "BYTES", default_value_t = rp_payout::axum::DEFAULT_BODY_LIMIT)]
    body_limit: usize,
    /// Milliseconds a client has for a request head (then the connection is closed; also the
    /// idle keep-alive time) and, separately, for its body (then 408).
    #[arg(long, value_name = "MS", default_value_t = 10_000)]
    read_timeout_ms: u64,
    /// Connections served at once; more wait until one closes.
    #[arg(long, value_name = "N", default_value_t = rp_payout::axum::DEFAULT_MAX_CONNECTIONS)]
    max_connections: usize,
    /// Also apply each callback to the payouts in this ledger (`sqlite:PATH`), as a payout
    /// service would: de-duplicated, checked against the recorded payout, and answered by what
    /// was recorded. Needs --project-id.
    #[arg(long, value_name = "URL")]
    ledger: Option<String>,
}

struct Receiver {
    signer: Signer,
    project: Option<ProjectId>,
    json: bool,
    /// With `--ledger`: the client that applies callbacks to it.
    recorder: Option<rp_payout::Client>,
}

/// Runs `rp listen` until Ctrl-C.
pub(crate) fn listen(args: &ListenArgs) -> Result<(), Failure> {
    let key = args.key.load()?;
    let runtime = runtime()?;
    let recorder = match &args.ledger {
        None => None,
        Some(url) => {
            let project = args.project_id.ok_or_else(|| {
                Failure::usage("--ledger needs --project-id (or RP_PROJECT_ID): the ledger keeps each project's payouts apart")
            })?;
            let ledger = runtime.block_on(
                crate::ledger_cmd::LedgerArgs {
                    ledger: Some(url.clone()),
                }
                .open(),
            )?;
            let client = rp_payout::Client::builder(rp_payout::Config::new(project, key.clone()))
                .store(ledger.store(project))
                .build()
                .map_err(Failure::from)?;
            Some(client)
        }
    };
    let receiver = Arc::new(Receiver {
        signer: Signer::new(&key),
        project: args.project_id,
        json: args.json,
        recorder,
    });
    let addr = SocketAddr::new(args.host, args.port);
    runtime.block_on(async move {
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .map_err(|e| Failure::usage(format!("cannot listen on {addr}: {e}")))?;
        let local = listener
            .local_addr()
            .map_err(|e| Failure::usage(format!("cannot read the bound address: {e}")))?;
        eprintln!("rp listen: waiting for callbacks on http://{local}/ (Ctrl-C to stop)");
        if receiver.project.is_none() {
            eprintln!(
                "rp listen: warning: no --project-id, so callbacks of any project signed with this key are accepted"
            );
        }
        let read_timeout = Duration::from_millis(args.read_timeout_ms);
        let request_limits = RequestLimits::default()
            .with_body_limit(args.body_limit)
            .with_body_read_timeout(read_timeout);
        let connection_limits = ConnectionLimits::default()
            .with_header_read_timeout(read_timeout)
            .with_max_connections(args.max_connections);
        let app = limit_requests(
            Router::new().fallback(post(callback)).with_state(receiver),
            request_limits,
        );
        // Not `axum::serve`: it has no header read timeout and no connection cap.
        serve_with_shutdown(listener, app, connection_limits, async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await;
        Ok(())
    })
}

async fn callback(State(receiver): State<Arc<Receiver>>, body: Bytes) -> (StatusCode, String) {
    let (mut status, mut line) = judge(&receiver, &body);
    if let Some(client) = &receiver.recorder {
        // The ledger's verdict is the answer: verified, checked against the recorded payout,
        // de-duplicated, applied.
        let outcome = client.handle_callback(&body).await;
        status = StatusCode::from_u16(outcome.http_status())
            .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        line = if receiver.json {
            let mut value: serde_json::Value =
                serde_json::from_str(&line).unwrap_or(serde_json::Value::Null);
            value["recorded"] = serde_json::json!(recorded(&outcome));
            value.to_string()
        } else {
            format!("{line} → ledger: {}", recorded(&outcome))
        };
    }
    if receiver.json {
        println!("{line}");
    } else {
        println!("{} {line}", status.as_u16());
    }
    let answer = if status == StatusCode::OK {
        "OK".to_owned()
    } else {
        line
    };
    (status, answer)
}

/// What applying a callback to the ledger did, in a few words (phone numbers masked).
fn recorded(outcome: &rp_payout::CallbackOutcome) -> String {
    use rp_payout::CallbackOutcome as O;
    match outcome {
        O::Applied {
            previous, status, ..
        } => format!("recorded {} → {status}", previous.label()),
        O::Reversed { status, .. } => format!("recorded {status} (ATTENTION: the money came back)"),
        O::Duplicate { .. } => "duplicate, nothing changed".to_owned(),
        O::Stale { current, .. } => format!("stale, kept {current}"),
        O::Conflict { current, .. } => format!("conflicts with {current}: kept, ATTENTION"),
        O::Unrecognised { current, .. } => {
            format!("unknown status after {current}: kept, ATTENTION")
        }
        O::IdentityMismatch { difference, .. } => {
            format!("not this payout ({difference}): not applied, ATTENTION")
        }
        O::Unrecorded { .. } => "no such payout in the ledger".to_owned(),
        O::StoreFailed { reason, .. } => {
            format!("the ledger failed ({reason}); the platform will redeliver")
        }
        other => format!("refused ({})", other.body()),
    }
}

/// Decides what to answer, and the line to print.
fn judge(receiver: &Receiver, body: &[u8]) -> (StatusCode, String) {
    let verified = match receiver.signer.verify_callback(body) {
        Ok(verified) => verified,
        Err(error) => {
            let status = if matches!(
                error,
                rp_sign::Error::InvalidJson { .. } | rp_sign::Error::NotAnObject { .. }
            ) {
                StatusCode::BAD_REQUEST
            } else {
                StatusCode::UNAUTHORIZED
            };
            return (
                status,
                describe_rejection(receiver.json, &error.to_string()),
            );
        }
    };
    let callback: wire::Callback = match serde_json::from_slice(body) {
        Ok(callback) => callback,
        Err(error) => {
            return (
                StatusCode::BAD_REQUEST,
                describe_rejection(receiver.json, &format!("not a callback: {error}")),
            );
        }
    };
    if let Some(expected) = receiver.project
        && callback.project_id != Some(expected.get())
    {
        let message = format!(
            "signed, but for project {} (expected {expected})",
            callback
                .project_id
                .map_or_else(|| "none".to_owned(), |p| p.to_string())
        );
        return (
            StatusCode::FORBIDDEN,
            describe_rejection(receiver.json, &message),
        );
    }
    let operation = callback.operation.as_ref();
    let code = operation.and_then(|o| o.code.as_ref());
    let account = callback.account.as_ref();
    if receiver.json {
        let line = serde_json::json!({
            "valid": true,
            "variant": verified.variant().name(),
            "project_id": callback.project_id,
            "payment_id": callback.payment_id(),
            "status": callback.payment_status().map(|s| s.as_str()),
            "final": callback.payment_status().map(|s| s.is_final()),
            "code": code.map(|c| c.as_str()),
            "message": operation.and_then(|o| o.message.as_deref()),
            "operator": account.and_then(|a| a.operator.as_ref()).map(|o| o.id()),
            "phone": account.and_then(|a| a.number.as_deref()).map(mask_phone),
        });
        return (StatusCode::OK, line.to_string());
    }
    let mut line = format!(
        "callback: payment {} is {}",
        callback.payment_id().unwrap_or("(none)"),
        callback
            .payment_status()
            .map_or("(no status)", |s| s.as_str())
    );
    if let Some(code) = code {
        line.push_str(&format!(
            ", code {code} {}",
            operation.and_then(|o| o.message.as_deref()).unwrap_or("")
        ));
    }
    if let Some(account) = account {
        if let Some(number) = &account.number {
            line.push_str(&format!(", to {}", mask_phone(number)));
        }
        if let Some(operator) = &account.operator {
            line.push_str(&format!(" ({})", operator.name()));
        }
    }
    line.push_str(&format!(
        "; signature valid ({})",
        verified.variant().name()
    ));
    (StatusCode::OK, line)
}

fn describe_rejection(json: bool, reason: &str) -> String {
    if json {
        serde_json::json!({ "valid": false, "reason": reason }).to_string()
    } else {
        format!("rejected: {reason}")
    }
}
