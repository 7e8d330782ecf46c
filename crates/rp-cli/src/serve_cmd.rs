//! `rp serve`: the payout desk (rp-console) on the ledger; `rp serve add-operator`,
//! `remove-operator`, `operators`: who may sign in to its console.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use rp_console::{Desk, ServeOptions, Settings, hash_password};
use rp_ledger::{OperatorAccount, Role, check_operator_name};

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
handled once. Sign-in needs an operator: `rp serve add-operator NAME --role pay`.

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
    /// Add an operator of the console, or give one a new password or role (their sessions
    /// end). The password is read from --password-file, or `RP_OPERATOR_PASSWORD`, or made up
    /// and printed once.
    AddOperator(AddOperatorArgs),
    /// Remove an operator (their sessions end).
    RemoveOperator {
        /// The operator's name.
        name: String,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// List the operators.
    Operators {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Make a key for the JSON API (`Authorization: Bearer KEY`): printed once, kept in the
    /// ledger as its SHA-256. `pay` may pay; `read` only reads.
    AddApiKey {
        /// The key's name (letters A-Z, digits, `.`, `_`, `-`, `@`); never reused.
        name: String,
        /// `pay` or `read`.
        #[arg(long, value_parser = ["pay", "read"])]
        role: String,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// Revoke an API key: it is refused from now on (by every instance).
    RevokeApiKey {
        /// The key's name.
        name: String,
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    /// List the API keys (names, roles, revocations; never the keys).
    ApiKeys {
        #[command(flatten)]
        ledger: LedgerArgs,
    },
    #[command(flatten)]
    Webhooks(crate::webhook_cmd::WebhookAction),
}

#[derive(Debug, clap::Args)]
struct AddOperatorArgs {
    /// The operator's name: letters A-Z, digits, `.`, `_`, `-`, `@`.
    name: String,
    /// `view` (see payouts) or `pay` (also pay, resend, ask statuses).
    #[arg(long, value_parser = ["view", "pay"])]
    role: String,
    /// Read the password from this file (`-`: standard input); one trailing newline ignored.
    #[arg(long, value_name = "PATH")]
    password_file: Option<PathBuf>,
    /// Require a second factor: a new TOTP secret is made and shown once (for an
    /// authenticator app). An existing operator keeps theirs unless --totp or --no-totp.
    #[arg(long, conflicts_with = "no_totp")]
    totp: bool,
    /// Remove the operator's second factor.
    #[arg(long)]
    no_totp: bool,
    #[command(flatten)]
    ledger: LedgerArgs,
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
        Some(ServeAction::AddOperator(add)) => runtime()?.block_on(add_operator(add)),
        Some(ServeAction::RemoveOperator { name, ledger }) => {
            runtime()?.block_on(remove_operator(name, ledger))
        }
        Some(ServeAction::Operators { ledger }) => runtime()?.block_on(list_operators(ledger)),
        Some(ServeAction::AddApiKey { name, role, ledger }) => {
            runtime()?.block_on(add_api_key(name, role, ledger))
        }
        Some(ServeAction::RevokeApiKey { name, ledger }) => {
            runtime()?.block_on(revoke_api_key(name, ledger))
        }
        Some(ServeAction::ApiKeys { ledger }) => runtime()?.block_on(list_api_keys(ledger)),
        Some(ServeAction::Webhooks(action)) => runtime()?.block_on(crate::webhook_cmd::run(action)),
        None => run(&args.run),
    }
}

/// The new operator's password, and whether it was made up here (then it is printed).
fn password(args: &AddOperatorArgs) -> Result<(String, bool), Failure> {
    if let Some(path) = &args.password_file {
        let (name, bytes) = crate::common::read_input(path)?;
        let mut text = String::from_utf8(bytes)
            .map_err(|_| Failure::usage(format!("the password in {name} is not UTF-8")))?;
        if text.ends_with('\n') {
            text.pop();
            if text.ends_with('\r') {
                text.pop();
            }
        }
        return Ok((text, false));
    }
    if let Ok(text) = std::env::var("RP_OPERATOR_PASSWORD") {
        return Ok((text, false));
    }
    made_up_password()
}

/// A new random password (20 characters of an alphabet without look-alikes), marked made up.
fn made_up_password() -> Result<(String, bool), Failure> {
    let mut bytes = [0u8; 64];
    getrandom::fill(&mut bytes)
        .map_err(|e| Failure::unreachable(format!("no random bytes from the system: {e}")))?;
    const ALPHABET: &[u8] = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    // 256 is not a multiple of 56: bytes of 224 and above are skipped, so every character is
    // equally likely (64 bytes leave 20 characters but for a chance below 10^-20).
    let mut text = String::new();
    let mut pool = bytes.iter().copied();
    while text.len() < 20 {
        let Some(byte) = pool.next() else {
            return made_up_password();
        };
        if usize::from(byte) < 224 {
            text.push(char::from(ALPHABET[usize::from(byte) % 56]));
        }
    }
    Ok((text, true))
}

async fn add_operator(args: &AddOperatorArgs) -> Result<(), Failure> {
    check_operator_name(&args.name).map_err(|e| Failure::usage(format!("{:?}: {e}", args.name)))?;
    let role = Role::parse(&args.role)
        .ok_or_else(|| Failure::usage(format!("unknown role {:?}: view or pay", args.role)))?;
    let (password, made_up) = password(args)?;
    let hash = tokio::task::spawn_blocking(move || hash_password(&password).map(|h| (h, password)))
        .await
        .map_err(|e| Failure::unreachable(e.to_string()))?
        .map_err(|e| Failure::usage(e.to_string()))?;
    let ledger = args.ledger.open().await?;
    let existing = ledger
        .access()
        .operator(&args.name)
        .await
        .map_err(Failure::from)?;
    let existed = existing.is_some();
    let mut account = OperatorAccount::new(&args.name, hash.0, role);
    account.totp_secret = match (args.totp, args.no_totp) {
        (true, _) => Some(rp_console::new_totp_secret().map_err(Failure::unreachable)?),
        (false, true) => None,
        (false, false) => existing.and_then(|e| e.totp_secret),
    };
    let new_secret = args.totp.then(|| account.totp_secret.clone()).flatten();
    ledger
        .access()
        .put_operator(account)
        .await
        .map_err(Failure::from)?;
    let verb = if existed {
        "updated (their sessions ended)"
    } else {
        "added"
    };
    println!("operator {} ({role}) {verb} in {}", args.name, ledger.url());
    if made_up {
        println!("password (shown once): {}", hash.1);
    }
    if let Some(secret) = new_secret {
        println!("two-factor secret (shown once): {secret}");
        println!(
            "authenticator URI: {}",
            rp_console::totp_uri(&secret, &args.name, "rp serve")
        );
    }
    Ok(())
}

async fn remove_operator(name: &str, ledger: &LedgerArgs) -> Result<(), Failure> {
    let ledger = ledger.open().await?;
    if ledger
        .access()
        .remove_operator(name)
        .await
        .map_err(Failure::from)?
    {
        println!("operator {name} removed; their sessions ended");
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "no operator {name:?} in {}",
            ledger.url()
        )))
    }
}

async fn list_operators(ledger: &LedgerArgs) -> Result<(), Failure> {
    let ledger = ledger.open().await?;
    let operators = ledger.access().operators().await.map_err(Failure::from)?;
    if operators.is_empty() {
        println!(
            "no operators in {}: rp serve add-operator NAME --role pay",
            ledger.url()
        );
    }
    for operator in operators {
        println!(
            "{:<24} {:<5} {}",
            operator.name,
            operator.role.as_str(),
            crate::ledger_cmd::utc(operator.updated_at)
        );
    }
    Ok(())
}

async fn add_api_key(name: &str, role: &str, ledger: &LedgerArgs) -> Result<(), Failure> {
    check_operator_name(name).map_err(|e| Failure::usage(format!("{name:?}: {e}")))?;
    let role = if role == "pay" { Role::Pay } else { Role::View };
    let key = rp_console::new_api_key().map_err(Failure::unreachable)?;
    let ledger = ledger.open().await?;
    let added = ledger
        .access()
        .add_api_key(rp_ledger::ApiKey::new(
            name,
            rp_console::api_key_sha256(&key),
            role,
        ))
        .await
        .map_err(Failure::from)?;
    if !added {
        return Err(Failure::usage(format!(
            "an API key named {name:?} exists (or existed) in {}: names are never reused, choose another",
            ledger.url()
        )));
    }
    println!(
        "API key {name} ({}) added in {}",
        api_role(role),
        ledger.url()
    );
    println!("key (shown once): {key}");
    Ok(())
}

async fn revoke_api_key(name: &str, ledger: &LedgerArgs) -> Result<(), Failure> {
    let ledger = ledger.open().await?;
    if ledger
        .access()
        .revoke_api_key(name, SystemTime::now())
        .await
        .map_err(Failure::from)?
    {
        println!("API key {name} revoked");
        Ok(())
    } else {
        Err(Failure::usage(format!(
            "no API key {name:?} in use in {}",
            ledger.url()
        )))
    }
}

async fn list_api_keys(ledger: &LedgerArgs) -> Result<(), Failure> {
    let ledger = ledger.open().await?;
    let keys = ledger.access().api_keys().await.map_err(Failure::from)?;
    if keys.is_empty() {
        println!(
            "no API keys in {}: rp serve add-api-key NAME --role pay",
            ledger.url()
        );
    }
    for key in keys {
        let state = key.revoked_at.map_or_else(
            || "in use".to_owned(),
            |at| format!("revoked {}", crate::ledger_cmd::utc(at)),
        );
        println!(
            "{:<24} {:<5} {} {}",
            key.name,
            api_role(key.role),
            crate::ledger_cmd::utc(key.created_at),
            state
        );
    }
    Ok(())
}

/// An API key's role as the command line names it.
fn api_role(role: Role) -> &'static str {
    if role.may_pay() { "pay" } else { "read" }
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
        let operators = ledger.access().operators().await.map_err(Failure::from)?;
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
                "  no operators yet: rp serve add-operator NAME --role pay (same --ledger) to sign in"
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
    let project = rp_model::ProjectId::new(DEFAULT_PROJECT_ID)
        .map_err(|e| Failure::unreachable(e.to_string()))?;
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
    let ledger = rp_ledger::Ledger::open("sqlite::memory:")
        .await
        .map_err(|e| Failure::unreachable(e.to_string()))?;
    let config = rp_payout::Config::new(project, rp_sign::SecretKey::from(DEFAULT_SECRET_KEY))
        .with_base_url(sim.base_url())
        .with_overdue_after(Duration::from_secs(5));
    let client = rp_payout::Client::builder(config)
        .store(ledger.store(project))
        .build()
        .map_err(Failure::from)?;
    let (password, _) = made_up_password()?;
    let hash = hash_password(&password).map_err(|e| Failure::unreachable(e.to_string()))?;
    ledger
        .access()
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
