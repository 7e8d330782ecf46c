//! `rp serve`: the payout desk (rp-console) on the ledger, and `rp demo --console`. Its
//! subcommands: operators and API keys in `access_cmd.rs`, webhook endpoints in
//! `webhook_cmd.rs`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rp_console::{Desk, ServeOptions, Settings, hash_password};
use rp_ledger::{Ledger, OperatorAccount, Role};
use rp_model::ProjectId;

use crate::batch_cmd::LimitArgs;
use crate::common::{Failure, GateArgs, destination, ledger_client, runtime};
use crate::ledger_cmd::LedgerArgs;

/// `rp serve`.
#[derive(Debug, clap::Args)]
#[command(args_conflicts_with_subcommands = true, after_help = SERVE_HELP)]
pub(crate) struct ServeArgs {
    #[command(subcommand)]
    action: Option<ServeAction>,
    #[command(flatten)]
    run: RunArgs,
}

const SERVE_HELP: &str = "\
Runs the callback endpoint, the reconciler, the batch worker and the web console on the ledger.
Several instances on one PostgreSQL ledger share the work: each payout, callback and batch row is
handled once. Sign-in needs an operator: `rp serve add-operator NAME --role pay`. Operators and
API keys belong to the project (RP_PROJECT_ID): another project on the same ledger does not know
them.

The console listens on 127.0.0.1 unless told otherwise. To reach it from another machine, give
it TLS of its own (--tls-cert and --tls-key: PEM files, checked before anything listens; the
callback listener of --callback-listen uses them too), or put a TLS-terminating reverse proxy in
front and pass --insecure-bind (a non-loopback address without either is refused). The callback
endpoint (on the console's address, or on --callback-listen) carries no session and accepts only
signed callbacks, so it may listen on any address.

Every change of a payout's state is pushed to the project's webhook endpoints (`rp serve
add-webhook URL`), signed as Standard Webhooks, retried for 3 days 15 hours; with several
instances each delivery is sent by one of them (--no-webhooks: not by this one).

Ctrl-C or SIGTERM: no new work is taken; payouts and batch rows in flight are finished and
recorded (30 s at most), then rp exits.";

#[derive(Debug, clap::Subcommand)]
enum ServeAction {
    #[command(flatten)]
    Access(crate::access_cmd::AccessAction),
    #[command(flatten)]
    Webhooks(crate::webhook_cmd::WebhookAction),
}

#[derive(Debug, clap::Args)]
struct RunArgs {
    /// The console's address.
    #[arg(long, default_value = "127.0.0.1:8080", value_name = "ADDR")]
    listen: SocketAddr,
    /// Allow the console on an address other than loopback without TLS (behind a TLS proxy).
    #[arg(long)]
    insecure_bind: bool,
    /// Serve HTTPS with this certificate chain (PEM: the server's certificate first, then
    /// its intermediates), on the console's and the callbacks' listeners.
    #[arg(long, value_name = "PEM", requires = "tls_key")]
    tls_cert: Option<PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1, unencrypted).
    #[arg(long, value_name = "PEM", requires = "tls_cert")]
    tls_key: Option<PathBuf>,
    /// Receive callbacks on this address instead of the console's (e.g. 0.0.0.0:9000).
    #[arg(long, value_name = "ADDR")]
    callback_listen: Option<SocketAddr>,
    /// The callback endpoint's path (the project's callback URL must lead here).
    #[arg(long, default_value = rp_console::DEFAULT_CALLBACK_PATH, value_name = "PATH")]
    callback_path: String,
    /// Ask about overdue payouts every this many seconds (0: never).
    #[arg(long, default_value_t = 30, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(0..=86_400))]
    reconcile_every: u64,
    /// A payout unchanged for this many seconds is overdue: the reconciler asks about it.
    #[arg(long, default_value_t = 60, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..=86_400))]
    overdue_after: u64,
    /// Do not resume stopped batches here (another instance, or `rp batch run`, does).
    #[arg(long)]
    no_batch_worker: bool,
    /// Requests a second each API key may make (bursts of twice that), per instance.
    #[arg(long, value_name = "N", default_value_t = rp_console::KEY_RATE, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    api_rate: u32,
    /// Do not send webhooks from this instance (another one does).
    #[arg(long)]
    no_webhooks: bool,
    /// Seconds one webhook delivery may take before it counts as failed (1 to 60).
    #[arg(long, value_name = "SECONDS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..=60))]
    webhook_timeout: u64,
    /// Batch payouts in flight at once (1 to 64), per batch this instance pays.
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u16).range(1..=64))]
    batch_concurrency: u16,
    /// New batch payouts started per second at most (1 to 1000).
    #[arg(long, value_name = "N", default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=1000))]
    batch_rate: u32,
    /// How long this instance's claim on batch rows holds unless renewed (2 to 3600 s): how
    /// long the rows of an instance that died wait before another takes them over.
    #[arg(long, value_name = "SECONDS", default_value_t = 60, value_parser = clap::value_parser!(u64).range(2..=3600))]
    batch_lease: u64,
    #[command(flatten)]
    limits: LimitArgs,
    #[command(flatten)]
    ledger: LedgerArgs,
    #[command(flatten)]
    gate: GateArgs,
}

impl ServeArgs {
    /// Whether this runs the server (not an operator command).
    pub(crate) fn is_server(&self) -> bool {
        self.action.is_none()
    }
}

/// `rp serve …`.
pub(crate) fn serve(args: &ServeArgs) -> Result<(), Failure> {
    match &args.action {
        Some(ServeAction::Access(action)) => runtime()?.block_on(crate::access_cmd::run(action)),
        Some(ServeAction::Webhooks(action)) => runtime()?.block_on(crate::webhook_cmd::run(action)),
        None => run(&args.run),
    }
}

/// Why `addr` is refused for the console, if it is: not loopback, without TLS (`tls`) or
/// `--insecure-bind` (`insecure`).
fn refused_bind(addr: SocketAddr, tls: bool, insecure: bool) -> Option<String> {
    (!addr.ip().is_loopback() && !tls && !insecure).then(|| {
        format!(
            "--listen {addr} is not a loopback address, and without TLS operators' passwords and \
             sessions would cross the network in clear. Give rp serve a certificate with --tls-cert \
             CERT.pem --tls-key KEY.pem, or put a TLS-terminating reverse proxy in front and pass \
             --insecure-bind, or listen on 127.0.0.1"
        )
    })
}

/// The certificate and key of `--tls-cert` and `--tls-key`, loaded and checked.
fn tls(args: &RunArgs) -> Result<Option<rp_console::Tls>, Failure> {
    match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => rp_console::Tls::load(cert, key)
            .map(Some)
            .map_err(|e| Failure::usage(e.to_string())),
        (None, None) => Ok(None),
        _ => Err(Failure::usage(
            "--tls-cert and --tls-key go together".to_owned(),
        )),
    }
}

fn run(args: &RunArgs) -> Result<(), Failure> {
    // Before anything listens: a bad certificate or key is told, not served.
    let tls = tls(args)?;
    if let Some(reason) = refused_bind(args.listen, tls.is_some(), args.insecure_bind) {
        return Err(Failure::usage(reason));
    }
    if !args.callback_path.starts_with('/') || args.callback_path.len() < 2 {
        return Err(Failure::usage(format!(
            "--callback-path {:?} must be a path such as /rocketpay/callback",
            args.callback_path
        )));
    }
    let limits = args.limits.limits()?;
    let config = args.gate.config()?.with_limits(limits);
    let project = config.project_id;
    let base_url = config.base_url.clone();
    let transport = config.default_transport().map_err(Failure::from)?;
    runtime()?.block_on(async {
        let console = tokio::net::TcpListener::bind(args.listen)
            .await
            .map_err(|e| Failure::usage(format!("cannot listen on {}: {e}", args.listen)))?;
        let callbacks = match args.callback_listen {
            Some(addr) => Some(
                tokio::net::TcpListener::bind(addr)
                    .await
                    .map_err(|e| Failure::usage(format!("cannot listen on {addr}: {e}")))?,
            ),
            None => None,
        };
        let ledger = args.ledger.open().await?;
        let client = ledger_client(
            config,
            transport,
            ledger.store(project),
            Duration::from_secs(args.overdue_after),
        )?;
        let operators = crate::access_cmd::access(&ledger, project)
            .await?
            .operators()
            .await
            .map_err(Failure::from)?;
        let mut settings = Settings::default();
        settings.api_key_rate = args.api_rate;
        settings.batch_options = rp_batch::run::RunOptions::default()
            .concurrency(usize::from(args.batch_concurrency))
            .rate(Some(args.batch_rate))
            .lease(Duration::from_secs(args.batch_lease));
        let desk = Desk::new(Arc::new(client), ledger.clone(), settings);
        let console_addr = console.local_addr().map_err(|e| Failure::usage(e.to_string()))?;
        let callback_addr = match &callbacks {
            Some(listener) => listener.local_addr().map_err(|e| Failure::usage(e.to_string()))?,
            None => console_addr,
        };
        let scheme = if tls.is_some() { "https" } else { "http" };
        println!("rp serve {}", destination(&base_url, project));
        println!("  console    {scheme}://{console_addr}/");
        println!("  callbacks  {scheme}://{callback_addr}{}", args.callback_path);
        println!("  ledger     {}", ledger.url());
        let endpoints = ledger
            .webhooks(project)
            .endpoints()
            .await
            .map_err(Failure::from)?;
        let disabled = endpoints.iter().filter(|e| !e.enabled()).count();
        match (endpoints.len(), disabled, args.no_webhooks) {
            (0, _, _) => println!("  webhooks   none (rp serve add-webhook URL)"),
            (n, _, true) => println!("  webhooks   {n} endpoint(s), sent by another instance (--no-webhooks)"),
            (n, 0, false) => println!("  webhooks   {n} endpoint(s)"),
            (n, d, false) => println!("  webhooks   {n} endpoint(s), {d} DISABLED after failing (rp serve webhooks)"),
        }
        if operators.is_empty() {
            println!(
                "  no operators yet: rp serve add-operator NAME --role pay (same --ledger and project) to sign in"
            );
        }
        let mut options = ServeOptions::new(console);
        options.callbacks = callbacks;
        options.callback_path = args.callback_path.clone();
        options.tls = tls;
        options.reconcile_every =
            (args.reconcile_every > 0).then(|| Duration::from_secs(args.reconcile_every));
        if args.no_batch_worker {
            options.batches_every = None;
        }
        if args.no_webhooks {
            options.webhooks_every = None;
        }
        options.webhook_timeout = Duration::from_secs(args.webhook_timeout);
        let started = SystemTime::now();
        rp_console::serve(desk, options, shutdown_signal()).await;
        let ran = started.elapsed().unwrap_or_default().as_secs();
        eprintln!("rp serve: stopped after {ran} s");
        Ok(())
    })
}

/// `rp demo --console`: the simulator and `rp serve` in this process, on an in-memory
/// ledger, with a demo operator; until Ctrl-C or SIGTERM.
pub(crate) async fn demo_console(listen: SocketAddr, processing: Duration) -> Result<(), Failure> {
    use rp_sim::{DEFAULT_PROJECT_ID, DEFAULT_SECRET_KEY, Simulator};
    if let Some(reason) = refused_bind(listen, false, false) {
        return Err(Failure::usage(reason));
    }
    let console = tokio::net::TcpListener::bind(listen).await.map_err(|e| {
        Failure::usage(format!(
            "cannot listen on {listen}: {e} (choose another with --listen, e.g. 127.0.0.1:0)"
        ))
    })?;
    let addr = console
        .local_addr()
        .map_err(|e| Failure::usage(e.to_string()))?;
    let project =
        ProjectId::new(DEFAULT_PROJECT_ID).map_err(|e| Failure::unreachable(e.to_string()))?;
    let sim = Simulator::builder()
        .project(project, rp_sign::SecretKey::from(DEFAULT_SECRET_KEY))
        .callback_url(format!(
            "http://{addr}{}",
            rp_console::DEFAULT_CALLBACK_PATH
        ))
        .processing_delay(processing)
        .start()
        .await
        .map_err(|e| Failure::unreachable(format!("cannot start the simulator: {e}")))?;
    let ledger = Ledger::open("sqlite::memory:")
        .await
        .map_err(|e| Failure::unreachable(e.to_string()))?;
    let config = rp_payout::Config::new(project, rp_sign::SecretKey::from(DEFAULT_SECRET_KEY))
        .with_base_url(sim.base_url())
        .with_overdue_after(Duration::from_secs(5));
    let client = rp_payout::Client::builder(config)
        .store(ledger.store(project))
        .build()
        .map_err(Failure::from)?;
    let (password, _) = crate::access_cmd::made_up_password()?;
    let hash = hash_password(&password).map_err(|e| Failure::unreachable(e.to_string()))?;
    ledger
        .access(project)
        .put_operator(OperatorAccount::new("demo", hash, Role::Pay))
        .await
        .map_err(Failure::from)?;
    let desk = Desk::new(Arc::new(client), ledger, Settings::default());
    println!(
        "rp demo --console: the simulator and rp serve, on a ledger in memory (nothing is kept)\n"
    );
    println!("  console     http://{addr}/");
    println!("  operator    demo");
    println!("  password    {password}");
    println!(
        "  simulator   {} (project {project}, test key)",
        sim.base_url()
    );
    println!(
        "\nTry +7 701 123 45 67 (success), +7 705 123 0001 (declined), +7 777 123 0016 (callback lost:"
    );
    println!("reconciled). Ctrl-C stops.");
    let mut options = ServeOptions::new(console);
    options.reconcile_every = Some(Duration::from_secs(5));
    options.batches_every = Some(Duration::from_secs(2));
    rp_console::serve(desk, options, shutdown_signal()).await;
    sim.shutdown().await;
    eprintln!("rp demo --console: stopped");
    Ok(())
}

/// Completes at Ctrl-C or SIGTERM. The handlers are installed when this is called, not when
/// the future is first awaited: `serve` starts its listeners (and builds the webhook client)
/// before it awaits the signal, and a SIGTERM in that moment must stop it gracefully, not
/// kill it.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let interrupt = signal(SignalKind::interrupt());
        let terminate = signal(SignalKind::terminate());
        async move {
            match (interrupt, terminate) {
                (Ok(mut interrupt), Ok(mut terminate)) => {
                    tokio::select! {
                        _ = interrupt.recv() => {}
                        _ = terminate.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_without_tls_or_insecure_bind() {
        assert!(refused_bind("127.0.0.1:8080".parse().unwrap(), false, false).is_none());
        assert!(refused_bind("[::1]:8080".parse().unwrap(), false, false).is_none());
        let refused = refused_bind("0.0.0.0:8080".parse().unwrap(), false, false).unwrap();
        assert!(refused.contains("--tls-cert") && refused.contains("--tls-key"));
        assert!(refused_bind("0.0.0.0:8080".parse().unwrap(), false, true).is_none());
        assert!(refused_bind("0.0.0.0:8080".parse().unwrap(), true, false).is_none());
    }
}
